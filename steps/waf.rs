//! WAF step: a regional WAFv2 web ACL `waf-<s>` in front of the ALB, when `[waf] enabled`.
//!
//! Rules, in evaluation order: AWS's managed common rule set (OWASP-style protections), AWS's
//! known-bad-inputs set (Log4j, exploit payloads), and a rate-based rule blocking any client IP
//! that sends more than `waf.rate_limit` requests in 5 minutes. The ACL is associated with the
//! ALB.
//!
//! The step is always in the graph, and does nothing without `[waf] enabled` and without
//! records: that way `down` still removes a web ACL an earlier `up` created although the config
//! no longer enables it (and an `up` with WAF disabled removes it, as the config says), without
//! `steps::all` having to read the state.
//!
//! Teardown: disassociate from the ALB, then delete the ACL with its current lock token.
//!
//! The web ACL helpers here (`ensure_web_acl`, `delete_web_acls`) also serve the cdn step,
//! which keeps the distribution's own ACL (Security Hub CloudFront.6): Scope CLOUDFRONT, in
//! us-east-1 only, named in the distribution's `WebACLId` rather than associated.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_wafv2::types::{
    AllowAction, BlockAction, DefaultAction, ManagedRuleGroupStatement, NoneAction, OverrideAction,
    RateBasedStatement, RateBasedStatementAggregateKeyType, Rule, RuleAction, Scope, Statement,
    Tag, VisibilityConfig, WebAcl,
};

use crate::aws::{AwsError, AwsResultExt, NotFoundOk};
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};

pub const WEB_ACL: &str = "wafv2:web-acl";
pub const ASSOCIATION: &str = "wafv2:web-acl-association";

pub const OUT_ARN: &str = "waf_web_acl_arn";
pub const OUT_ID: &str = "waf_web_acl_id";

/// The AWS managed rule groups the ACL runs, in order.
pub const MANAGED_GROUPS: [&str; 2] = [
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
];
pub const RATE_RULE: &str = "rate-limit-per-ip";

/// The region CLOUDFRONT-scope web ACLs are managed in (AWS refuses the scope elsewhere:
/// `WAFInvalidParameterException`, field `SCOPE_VALUE`).
pub const CLOUDFRONT_REGION: &str = "us-east-1";

/// How long AWS may report a new web ACL as unavailable for association.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Waf;

fn visibility(metric: &str) -> Result<VisibilityConfig> {
    VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name(metric)
        .build()
        .context("building the WAF visibility config")
}

/// The rules of the web ACL.
pub fn rules(rate_limit: i64) -> Result<Vec<Rule>> {
    let mut v = Vec::new();
    for (i, group) in MANAGED_GROUPS.iter().enumerate() {
        let name = format!("AWS-{group}");
        v.push(
            Rule::builder()
                .name(&name)
                .priority(i as i32)
                .statement(
                    Statement::builder()
                        .managed_rule_group_statement(
                            ManagedRuleGroupStatement::builder()
                                .vendor_name("AWS")
                                .name(*group)
                                .build()
                                .context("building a managed rule group statement")?,
                        )
                        .build(),
                )
                // The group's own actions (block) apply.
                .override_action(
                    OverrideAction::builder()
                        .none(NoneAction::builder().build())
                        .build(),
                )
                .visibility_config(visibility(&name)?)
                .build()
                .context("building a WAF rule")?,
        );
    }
    v.push(
        Rule::builder()
            .name(RATE_RULE)
            .priority(MANAGED_GROUPS.len() as i32)
            .statement(
                Statement::builder()
                    .rate_based_statement(
                        RateBasedStatement::builder()
                            .limit(rate_limit)
                            .aggregate_key_type(RateBasedStatementAggregateKeyType::Ip)
                            .build()
                            .context("building the rate-based statement")?,
                    )
                    .build(),
            )
            .action(
                RuleAction::builder()
                    .block(BlockAction::builder().build())
                    .build(),
            )
            .visibility_config(visibility(RATE_RULE)?)
            .build()
            .context("building a WAF rule")?,
    );
    Ok(v)
}

/// Whether an ACL's rules are the ones the config asks for.
fn rules_match(acl: &WebAcl, rate_limit: i64) -> bool {
    let names: Vec<&str> = acl.rules().iter().map(|r| r.name()).collect();
    let want: Vec<String> = MANAGED_GROUPS
        .iter()
        .map(|g| format!("AWS-{g}"))
        .chain([RATE_RULE.to_string()])
        .collect();
    let rate = acl
        .rules()
        .iter()
        .find(|r| r.name() == RATE_RULE)
        .and_then(|r| r.statement())
        .and_then(|s| s.rate_based_statement())
        .map(|s| s.limit());
    names == want.iter().map(String::as_str).collect::<Vec<_>>() && rate == Some(rate_limit)
}

/// The scope of a web ACL, from its ARN: CloudFront's are `...:global/webacl/...`.
pub fn scope_of(arn: &str) -> Scope {
    if arn.contains(":global/webacl/") {
        Scope::Cloudfront
    } else {
        Scope::Regional
    }
}

/// The ACL `name` of `scope` if it exists: (id, ARN).
async fn find(ctx: &StepCtx, scope: &Scope, name: &str) -> Result<Option<(String, String)>> {
    let waf = ctx.aws().waf();
    let mut marker = None;
    loop {
        let out = waf
            .list_web_acls()
            .scope(scope.clone())
            .set_next_marker(marker)
            .limit(100)
            .send()
            .await
            .aws("wafv2:ListWebACLs", name)?;
        if let Some(s) = out.web_acls().iter().find(|s| s.name() == Some(name)) {
            return Ok(Some((
                s.id().unwrap_or_default().to_string(),
                s.arn().unwrap_or_default().to_string(),
            )));
        }
        marker = out.next_marker().map(str::to_string);
        if marker.is_none() || out.web_acls().is_empty() {
            return Ok(None);
        }
    }
}

/// The ACL and its current lock token.
async fn get(
    ctx: &StepCtx,
    scope: &Scope,
    name: &str,
    id: &str,
) -> Result<Option<(WebAcl, String)>> {
    let out = ctx
        .aws()
        .waf()
        .get_web_acl()
        .name(name)
        .scope(scope.clone())
        .id(id)
        .send()
        .await
        .aws("wafv2:GetWebACL", name)
        .not_found_ok()?;
    Ok(out.and_then(|o| {
        let token = o.lock_token().unwrap_or_default().to_string();
        o.web_acl.map(|a| (a, token))
    }))
}

/// Makes sure the web ACL `name` of `scope` exists with the stack's rules (recorded as
/// [`WEB_ACL`] by the calling step, in `ctx`'s region), repairing rules that drifted.
/// `protects` says what for, in its description. A CLOUDFRONT-scope ACL is only served in
/// us-east-1: pass a context in that region ([`CLOUDFRONT_REGION`]).
pub async fn ensure_web_acl(
    ctx: &StepCtx,
    scope: Scope,
    name: &str,
    protects: &str,
    rate_limit: i64,
) -> Result<Found> {
    let waf = ctx.aws().waf();
    let existing = find(ctx, &scope, name).await?;
    let acl = ctx
        .ensure(
            WEB_ACL,
            name,
            || async {
                Ok(existing
                    .as_ref()
                    .map(|(id, arn)| Found::new(arn).arn(arn).attr("id", id)))
            },
            || async {
                let tags = ctx
                    .tags(Some(name))
                    .into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building WAF tags")?;
                let out = waf
                    .create_web_acl()
                    .name(name)
                    .scope(scope.clone())
                    .description(format!(
                        "fintech-infra stack {} {protects} protection",
                        ctx.suffix()
                    ))
                    .default_action(
                        DefaultAction::builder()
                            .allow(AllowAction::builder().build())
                            .build(),
                    )
                    .set_rules(Some(rules(rate_limit)?))
                    .visibility_config(visibility(name)?)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .aws("wafv2:CreateWebACL", name)?;
                let s = out.summary.context("CreateWebACL returned no summary")?;
                let arn = s.arn.context("CreateWebACL returned no ARN")?;
                Ok(Found::new(&arn)
                    .arn(&arn)
                    .attr("id", s.id.unwrap_or_default()))
            },
        )
        .await?;
    if let Some((id, _)) = &existing {
        if let Some((current, token)) = get(ctx, &scope, name, id).await? {
            if !rules_match(&current, rate_limit) {
                ctx.change(
                    WEB_ACL,
                    name,
                    &format!("rules: AWS managed common + known bad inputs, rate limit {rate_limit} per 5 min per IP"),
                    || async {
                        waf.update_web_acl()
                            .name(name)
                            .scope(scope.clone())
                            .id(id)
                            .lock_token(token)
                            .default_action(
                                DefaultAction::builder()
                                    .allow(AllowAction::builder().build())
                                    .build(),
                            )
                            .set_rules(Some(rules(rate_limit)?))
                            .visibility_config(visibility(name)?)
                            .send()
                            .await
                            .aws("wafv2:UpdateWebACL", name)?;
                        Ok(())
                    },
                )
                .await?;
            }
        }
    }
    Ok(acl)
}

/// Deletes every web ACL the step recorded in `ctx`'s region, each with its current lock
/// token. An ACL still in use (associated, or named by a distribution whose update is
/// propagating) is retried until [`PROPAGATION_TIMEOUT`].
pub async fn delete_web_acls(ctx: &StepCtx) -> Result<()> {
    let waf = ctx.aws().waf();
    for rec in ctx.records(Some(WEB_ACL)) {
        ctx.check_cancelled()?;
        let name = rec.name.clone();
        let id = rec.attrs.get("id").cloned().unwrap_or_default();
        let scope = scope_of(&rec.id);
        // A stale lock token (someone changed the ACL meanwhile) is retried with a fresh one.
        ctx.wait_for(
            &format!("web ACL {name} to be deleted"),
            PROPAGATION_TIMEOUT,
            || async {
                let Some((_, token)) = get(ctx, &scope, &name, &id).await? else {
                    return Ok(Some(()));
                };
                let r = waf
                    .delete_web_acl()
                    .name(&name)
                    .scope(scope.clone())
                    .id(&id)
                    .lock_token(token)
                    .send()
                    .await
                    .aws("wafv2:DeleteWebACL", &name);
                match r {
                    Ok(_) => Ok(Some(())),
                    Err(e) if e.is_not_found() => Ok(Some(())),
                    Err(e) if retryable(&e) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            },
        )
        .await?;
        ctx.deleted(WEB_ACL, &rec.id)?;
    }
    Ok(())
}

/// `status`'s probe of a recorded web ACL (`ctx` in the record's region).
pub async fn probe_web_acl(ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
    let id = rec.attrs.get("id").cloned().unwrap_or_default();
    Ok(get(ctx, &scope_of(&rec.id), &rec.name, &id)
        .await?
        .map(|_| "exists".to_string()))
}

impl Waf {
    /// Disassociates and deletes every recorded web ACL.
    async fn remove(&self, ctx: &StepCtx) -> Result<()> {
        let waf = ctx.aws().waf();
        ctx.delete_recorded(ASSOCIATION, |rec| async move {
            waf.disassociate_web_acl()
                .resource_arn(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("wafv2:DisassociateWebACL", &rec.id)
        })
        .await?;
        delete_web_acls(ctx).await?;
        for key in [OUT_ARN, OUT_ID] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }
}

/// WAF's answers that resolve by retrying: a stale lock token, an ACL still associated while
/// the disassociation propagates, a new ACL not yet usable.
fn retryable(e: &AwsError) -> bool {
    matches!(
        e.code.as_deref(),
        Some(
            "WAFOptimisticLockException"
                | "WAFAssociatedItemException"
                | "WAFUnavailableEntityException"
        )
    )
}

#[async_trait]
impl Step for Waf {
    fn name(&self) -> &'static str {
        "waf"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["alb"]
    }

    fn estimate_secs(&self) -> u64 {
        15
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let cfg = &ctx.cfg().waf;
        if !cfg.enabled {
            let recorded = ctx.records(Some(WEB_ACL));
            if let Some(rec) = recorded.first() {
                ctx.change(WEB_ACL, &rec.name, "remove: [waf] is not enabled", || {
                    self.remove(ctx)
                })
                .await?;
            }
            return Ok(());
        }
        let waf = ctx.aws().waf();
        let alb_arn = ctx.input_str(crate::steps::alb::OUT_ARN)?;
        let name = ctx.names().of("waf");
        let rate_limit = cfg.rate_limit.0;
        let acl = ensure_web_acl(ctx, Scope::Regional, &name, "ALB", rate_limit).await?;

        let associated = if is_pending(&alb_arn) || acl.is_pending() {
            false
        } else {
            waf.get_web_acl_for_resource()
                .resource_arn(&alb_arn)
                .send()
                .await
                .aws("wafv2:GetWebACLForResource", &alb_arn)
                .not_found_ok()?
                .and_then(|o| o.web_acl)
                .is_some_and(|a| a.arn() == acl.id)
        };
        ctx.ensure(
            ASSOCIATION,
            &format!("{name} -> {}", ctx.names().of("alb")),
            || async { Ok(associated.then(|| Found::new(&alb_arn).attr("web_acl_arn", &acl.id))) },
            || async {
                // A new web ACL can take a moment before WAF lets it be associated.
                ctx.wait_for(
                    "the web ACL to become available",
                    PROPAGATION_TIMEOUT,
                    || async {
                        match waf
                            .associate_web_acl()
                            .web_acl_arn(&acl.id)
                            .resource_arn(&alb_arn)
                            .send()
                            .await
                            .aws("wafv2:AssociateWebACL", &alb_arn)
                        {
                            Ok(_) => Ok(Some(())),
                            Err(e) if retryable(&e) => Ok(None),
                            Err(e) => Err(e.into()),
                        }
                    },
                )
                .await?;
                Ok(Found::new(&alb_arn).attr("web_acl_arn", &acl.id))
            },
        )
        .await?;
        if !acl.is_pending() {
            ctx.set_output(OUT_ARN, acl.id.clone())?;
            ctx.set_output(OUT_ID, acl.attrs.get("id").cloned().unwrap_or_default())?;
        }
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        self.remove(ctx).await
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        match rec.kind.as_str() {
            WEB_ACL => probe_web_acl(ctx, rec).await,
            _ => Ok(ctx
                .aws()
                .waf()
                .get_web_acl_for_resource()
                .resource_arn(&rec.id)
                .send()
                .await
                .aws("wafv2:GetWebACLForResource", &rec.id)
                .not_found_ok()?
                .and_then(|o| o.web_acl)
                .map(|a| format!("associated with {}", a.name()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_the_two_managed_groups_then_the_rate_limit() {
        let r = rules(2000).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].name(), "AWS-AWSManagedRulesCommonRuleSet");
        assert_eq!(r[1].name(), "AWS-AWSManagedRulesKnownBadInputsRuleSet");
        let rate = r[2].statement().unwrap().rate_based_statement().unwrap();
        assert_eq!(rate.limit(), 2000);
        assert_eq!(
            rate.aggregate_key_type(),
            &RateBasedStatementAggregateKeyType::Ip
        );
        assert!(r[2].action().unwrap().block().is_some());
        let priorities: Vec<i32> = r.iter().map(|r| r.priority()).collect();
        assert_eq!(priorities, [0, 1, 2]);
        let acl = WebAcl::builder()
            .name("w")
            .id("i")
            .arn("a")
            .default_action(DefaultAction::builder().build())
            .set_rules(Some(r))
            .visibility_config(visibility("w").unwrap())
            .build()
            .unwrap();
        assert!(rules_match(&acl, 2000));
        assert!(!rules_match(&acl, 1000));
    }
}
