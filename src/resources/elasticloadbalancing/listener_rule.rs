//! `elasticloadbalancing:listener-rule`: the path rules that send a path-routed service's
//! requests to its own target group, on the forwarding listener (HTTPS with a certificate,
//! else HTTP). Rules anywhere else on the ALB, or for paths no longer configured, are
//! removed; priorities are kept in a deterministic order (more specific paths first).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{
    PathPatternConditionConfig, Rule, RuleCondition, RulePriorityPair,
};

use super::{elb_tags, ListenerDefault};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "elasticloadbalancing:listener-rule";

pub struct ListenerRule;

/// One path-routed service: its requests under `path` go to `target_group` (an ARN).
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    pub service: String,
    pub path: String,
    pub target_group: String,
}

/// Listener rule priorities for the path-routed services: more specific patterns (more literal
/// characters) are evaluated first; ties in path order. Deterministic for a given config.
pub fn rule_priorities(paths: &[(&str, &str)]) -> BTreeMap<String, i32> {
    let mut v: Vec<(&str, &str)> = paths.to_vec();
    let literal = |p: &str| p.chars().filter(|c| *c != '*' && *c != '?').count();
    v.sort_by(|a, b| literal(b.1).cmp(&literal(a.1)).then(a.1.cmp(b.1)));
    v.into_iter()
        .enumerate()
        .map(|(i, (svc, _))| (svc.to_string(), 10 * (i as i32 + 1)))
        .collect()
}

fn path_pattern(rule: &Rule) -> Option<&str> {
    rule.conditions()
        .iter()
        .find(|c| c.field() == Some("path-pattern"))
        .and_then(|c| {
            c.path_pattern_config()
                .and_then(|p| p.values().first())
                .or_else(|| c.values().first())
        })
        .map(String::as_str)
}

/// The listener's rules but its default one; none for a listener not made yet (plan).
pub async fn list(ctx: &StepCtx, listener: &str) -> Result<Vec<Rule>> {
    if is_pending(listener) {
        return Ok(Vec::new());
    }
    let out = ctx
        .aws()
        .elb()
        .describe_rules()
        .listener_arn(listener)
        .send()
        .await
        .aws("elasticloadbalancing:DescribeRules", listener)
        .not_found_ok()?;
    Ok(out
        .map(|o| o.rules().to_vec())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.is_default() != Some(true))
        .collect())
}

/// Removes the rule `arn` the config no longer asks for (`why`, as `plan` reports it).
pub async fn remove(ctx: &StepCtx, arn: &str, why: &str) -> Result<()> {
    let elb = ctx.aws().elb();
    ctx.change(KIND, arn, why, || async {
        elb.delete_rule()
            .rule_arn(arn)
            .send()
            .await
            .aws("elasticloadbalancing:DeleteRule", arn)
            .not_found_ok()?;
        ctx.forget(KIND, arn)?; // a no-op when it was not recorded
        Ok(())
    })
    .await
}

/// The path rules on the forwarding listener; rules anywhere else on the ALB (left on the
/// HTTP listener when HTTPS took over, or for services no longer routed) are removed.
pub async fn ensure_all(
    ctx: &StepCtx,
    forwarding: &str,
    other: Option<&str>,
    wanted: &[PathRule],
) -> Result<()> {
    let elb = ctx.aws().elb();
    if let Some(other) = other {
        for r in list(ctx, other).await? {
            let arn = r.rule_arn().unwrap_or_default().to_string();
            remove(
                ctx,
                &arn,
                "remove: path rules belong on the forwarding listener",
            )
            .await?;
        }
    }
    let paths: Vec<(&str, &str)> = wanted
        .iter()
        .map(|w| (w.service.as_str(), w.path.as_str()))
        .collect();
    let priorities = rule_priorities(&paths);
    let existing = list(ctx, forwarding).await?;
    // Rules for paths no longer configured, or for a path now routed elsewhere.
    let mut kept: BTreeMap<String, Rule> = BTreeMap::new();
    for r in existing {
        let arn = r.rule_arn().unwrap_or_default().to_string();
        let svc = wanted
            .iter()
            .find(|w| Some(w.path.as_str()) == path_pattern(&r));
        match svc {
            Some(w) if !kept.contains_key(&w.service) => {
                kept.insert(w.service.clone(), r);
            }
            _ => remove(ctx, &arn, "remove: no service is routed by this path").await?,
        }
    }
    // Priorities first (one atomic call), so that new rules find their numbers free.
    let moves: Vec<RulePriorityPair> = kept
        .iter()
        .filter(|(svc, r)| r.priority() != Some(priorities[*svc].to_string().as_str()))
        .map(|(svc, r)| {
            RulePriorityPair::builder()
                .rule_arn(r.rule_arn().unwrap_or_default())
                .priority(priorities[svc])
                .build()
        })
        .collect();
    if !moves.is_empty() {
        ctx.change(KIND, forwarding, "reorder path rule priorities", || async {
            elb.set_rule_priorities()
                .set_rule_priorities(Some(moves.clone()))
                .send()
                .await
                .aws("elasticloadbalancing:SetRulePriorities", forwarding)?;
            Ok(())
        })
        .await?;
    }
    for w in wanted {
        let (n, path, tg) = (&w.service, w.path.as_str(), &w.target_group);
        let name = format!("rule-{n}-{}", ctx.suffix());
        let forward = ListenerDefault::Forward(vec![(tg.clone(), 1)]);
        let current = kept.get(n);
        let found = ctx
            .ensure(
                KIND,
                &name,
                || async {
                    Ok(current.and_then(|r| {
                        r.rule_arn().map(|a| {
                            Found::new(a)
                                .arn(a)
                                .attr("path", path)
                                .attr("listener_arn", forwarding)
                        })
                    }))
                },
                || async {
                    let out = elb
                        .create_rule()
                        .listener_arn(forwarding)
                        .priority(priorities[n])
                        .conditions(
                            RuleCondition::builder()
                                .field("path-pattern")
                                .path_pattern_config(
                                    PathPatternConditionConfig::builder().values(path).build(),
                                )
                                .build(),
                        )
                        .actions(forward.action())
                        .set_tags(Some(elb_tags(ctx, &name)))
                        .send()
                        .await
                        .aws("elasticloadbalancing:CreateRule", &name)?;
                    let arn = out
                        .rules()
                        .first()
                        .and_then(|r| r.rule_arn())
                        .context("CreateRule returned no ARN")?;
                    Ok(Found::new(arn)
                        .arn(arn)
                        .attr("path", path)
                        .attr("listener_arn", forwarding))
                },
            )
            .await?;
        if let Some(r) = current {
            if !is_pending(tg) && !forward.matches(r.actions()) {
                ctx.change(KIND, &name, &forward.describe(), || async {
                    elb.modify_rule()
                        .rule_arn(&found.id)
                        .actions(forward.action())
                        .send()
                        .await
                        .aws("elasticloadbalancing:ModifyRule", &name)?;
                    Ok(())
                })
                .await?;
            }
        }
    }
    Ok(())
}

/// Deletes the rule `arn`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, arn: &str) -> Result<()> {
    let elb = ctx.aws().elb();
    ctx.retry_dependency(&format!("{KIND} {arn}"), || async {
        elb.delete_rule()
            .rule_arn(arn)
            .send()
            .await
            .map(|_| ())
            .aws("elasticloadbalancing:DeleteRule", arn)
    })
    .await
}

#[async_trait]
impl Provider for ListenerRule {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .elb()
            .describe_rules()
            .rule_arns(id)
            .send()
            .await
            .aws("elasticloadbalancing:DescribeRules", id)
            .not_found_ok()?
            .filter(|o| !o.rules().is_empty())
            .map(|_| "exists".into()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_specific_paths_come_first() {
        let p = rule_priorities(&[("api", "/api/*"), ("v2", "/api/v2/*"), ("img", "/i/*")]);
        assert_eq!(p["v2"], 10);
        assert_eq!(p["api"], 20);
        assert_eq!(p["img"], 30);
        // Independent of the order given.
        let q = rule_priorities(&[("img", "/i/*"), ("api", "/api/*"), ("v2", "/api/v2/*")]);
        assert_eq!(p, q);
    }
}
