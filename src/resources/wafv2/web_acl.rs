//! `wafv2:web-acl`: a web ACL with the stack's rules, in either scope: REGIONAL in front of
//! the ALB (the waf step, `waf-<s>`), CLOUDFRONT on the distribution (the cdn step,
//! `waf-cdn-<s>`, managed in [`super::CLOUDFRONT_REGION`] whatever the stack's region). Find by name,
//! create, repair drifted rules, delete with the current lock token, probe.
//!
//! Rules, in evaluation order: AWS's managed common rule set (OWASP-style protections), AWS's
//! known-bad-inputs set (Log4j, exploit payloads), and a rate-based rule blocking any client IP
//! that sends more than the rate limit in 5 minutes. The record's ID is the ACL's ARN (which
//! tells the scope, see [`scope_of`]), its attribute `id` the ACL's ID: WAF's calls need the
//! name, the scope and the ID together.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_wafv2::types::{
    AllowAction, BlockAction, DefaultAction, ManagedRuleGroupStatement, NoneAction, OverrideAction,
    RateBasedStatement, RateBasedStatementAggregateKeyType, Rule, RuleAction, Scope, Statement,
    Tag, VisibilityConfig, WebAcl,
};

use super::{retryable, PROPAGATION_TIMEOUT};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "wafv2:web-acl";

/// The AWS managed rule groups the ACL runs, in order.
pub const MANAGED_GROUPS: [&str; 2] = [
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
];
pub const RATE_RULE: &str = "rate-limit-per-ip";

pub struct WebAclProvider;

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
/// [`KIND`] by the calling step, in `ctx`'s region), repairing rules that drifted.
/// `protects` says what for, in its description. A CLOUDFRONT-scope ACL is only served in
/// us-east-1: pass a context in that region ([`super::CLOUDFRONT_REGION`]).
pub async fn ensure(
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
            KIND,
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
                    KIND,
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

/// Deletes the recorded web ACL with its current lock token. An ACL still in use
/// (associated, or named by a distribution whose update is propagating) is retried until
/// [`PROPAGATION_TIMEOUT`]; a stale lock token (someone changed the ACL meanwhile) is retried
/// with a fresh one.
pub async fn delete(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
    let waf = ctx.aws().waf();
    let name = rec.name.clone();
    let id = rec.attrs.get("id").cloned().unwrap_or_default();
    let scope = scope_of(&rec.id);
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
    .await
}

/// Deletes every web ACL the calling step recorded in `ctx`'s region.
pub async fn delete_recorded(ctx: &StepCtx) -> Result<()> {
    crate::resources::delete_recorded(ctx, KIND).await
}

/// `status`'s probe of a recorded web ACL (`ctx` in the record's region).
pub async fn probe(ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
    let id = rec.attrs.get("id").cloned().unwrap_or_default();
    Ok(get(ctx, &scope_of(&rec.id), &rec.name, &id)
        .await?
        .map(|_| "exists".to_string()))
}

#[async_trait]
impl Provider for WebAclProvider {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        probe(ctx, rec).await
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, rec).await
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
