//! `events:rule`: a scheduled EventBridge rule on the default bus together with its one
//! target, recorded by name.
//!
//! AWS quirks held here:
//! - `PutRule` is an upsert: it answers with the existing rule's ARN instead of "already
//!   exists", so the lookup checks the stack tag before anything is adopted.
//! - `PutTargets` and `RemoveTargets` report a refused target in the answer's
//!   `FailedEntryCount` / `FailedEntries` with HTTP 200, not as an error: both are checked.
//! - `DeleteRule` refuses a rule that still has targets (`ValidationException`): the targets
//!   are removed first.
//! - Tags are only taken at create; a later `PutRule` keeps them.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_eventbridge::types::{RuleState, Tag, Target};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "events:rule";

pub struct Rule;

/// A rule that sends a fixed JSON input to one target on a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    pub name: String,
    pub description: String,
    /// `rate(5 minutes)` or `cron(...)`.
    pub schedule: String,
    /// The target's ID within the rule.
    pub target_id: String,
    pub target_arn: String,
    /// The JSON the target receives instead of the scheduled event.
    pub input: String,
}

/// What the rule is today, as far as the spec covers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub arn: String,
    pub schedule: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
}

/// The settings of the rule that differ from `spec`, for the plan's wording.
pub fn rule_drift(spec: &ScheduleSpec, cur: &Current) -> Vec<&'static str> {
    let mut d = Vec::new();
    if cur.schedule.as_deref() != Some(spec.schedule.as_str()) {
        d.push("schedule");
    }
    if cur.description.as_deref() != Some(spec.description.as_str()) {
        d.push("description");
    }
    if !cur.enabled {
        d.push("state (disabled)");
    }
    d
}

/// Whether `targets` are exactly the one the spec wants.
pub fn targets_match(spec: &ScheduleSpec, targets: &[Target]) -> bool {
    matches!(targets, [t] if t.id() == spec.target_id
        && t.arn() == spec.target_arn
        && t.input() == Some(spec.input.as_str()))
}

/// The rule `name` if it exists; an error if it exists but is not this stack's.
pub async fn find(ctx: &StepCtx, name: &str) -> Result<Option<Current>> {
    let events = ctx.aws().events();
    let Some(rule) = events
        .describe_rule()
        .name(name)
        .send()
        .await
        .aws("events:DescribeRule", name)
        .not_found_ok()?
    else {
        return Ok(None);
    };
    let arn = rule
        .arn()
        .with_context(|| format!("events:DescribeRule {name} answered without an ARN"))?
        .to_string();
    let Some(tags) = events
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .aws("events:ListTagsForResource", name)
        .not_found_ok()?
    else {
        return Ok(None); // deleted between the two calls
    };
    let tag = tags.tags().iter().find(|t| t.key() == STACK_TAG);
    ctx.check_ours("EventBridge rule", name, tag.map(|t| t.value()))?;
    Ok(Some(Current {
        arn,
        schedule: rule.schedule_expression().map(str::to_string),
        description: rule.description().map(str::to_string),
        enabled: rule.state() == Some(&RuleState::Enabled),
    }))
}

async fn put_rule(ctx: &StepCtx, spec: &ScheduleSpec, tags: Option<Vec<Tag>>) -> Result<String> {
    let out = ctx
        .aws()
        .events()
        .put_rule()
        .name(&spec.name)
        .description(&spec.description)
        .schedule_expression(&spec.schedule)
        .state(RuleState::Enabled)
        .set_tags(tags)
        .send()
        .await
        .aws("events:PutRule", &spec.name)?;
    out.rule_arn()
        .map(str::to_string)
        .with_context(|| format!("events:PutRule {} answered without an ARN", spec.name))
}

/// The rule's targets (a rule has at most five; one page).
async fn targets(ctx: &StepCtx, name: &str) -> Result<Option<Vec<Target>>> {
    Ok(ctx
        .aws()
        .events()
        .list_targets_by_rule()
        .rule(name)
        .send()
        .await
        .aws("events:ListTargetsByRule", name)
        .not_found_ok()?
        .map(|o| o.targets.unwrap_or_default()))
}

/// Removes the targets `ids` of the rule `name`; a refused entry is an error with its code.
async fn remove_targets(ctx: &StepCtx, name: &str, ids: Vec<String>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let out = ctx
        .aws()
        .events()
        .remove_targets()
        .rule(name)
        .set_ids(Some(ids))
        .send()
        .await
        .aws("events:RemoveTargets", name)
        .not_found_ok()?;
    if let Some(e) = out.and_then(|o| o.failed_entries.unwrap_or_default().into_iter().next()) {
        anyhow::bail!(
            "events:RemoveTargets {name}: target {} refused: {} ({})",
            e.target_id().unwrap_or("?"),
            e.error_message().unwrap_or(""),
            e.error_code().unwrap_or("no code"),
        );
    }
    Ok(())
}

/// Finds or creates the rule of `spec`, sets back a drifted schedule, description or state,
/// and makes the spec's target its only one. In plan mode with the rule or the target still
/// to be created, only the rule is reported.
pub async fn ensure(ctx: &StepCtx, spec: &ScheduleSpec) -> Result<Found> {
    let name = &spec.name;
    let existing = find(ctx, name).await?;
    let found = |arn: &str| {
        Found::new(name.clone())
            .arn(arn)
            .attr("target", &spec.target_arn)
    };
    let rule = ctx
        .ensure(
            KIND,
            name,
            || async { Ok(existing.as_ref().map(|c| found(&c.arn))) },
            || async {
                let tags = ctx
                    .tags(Some(name))
                    .into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building the rule's tags")?;
                Ok(found(&put_rule(ctx, spec, Some(tags)).await?))
            },
        )
        .await?;
    if let Some(cur) = &existing {
        let drift = rule_drift(spec, cur);
        if !drift.is_empty() {
            let what = format!("set {}", drift.join(", "));
            ctx.change(KIND, name, &what, || async {
                put_rule(ctx, spec, None).await.map(|_| ())
            })
            .await?;
        }
    }
    if rule.is_pending() || crate::step::is_pending(&spec.target_arn) {
        return Ok(rule);
    }
    // A rule this run just created has no targets; one found may have others or a stale one.
    let current = match &existing {
        Some(_) => targets(ctx, name).await?.unwrap_or_default(),
        None => Vec::new(),
    };
    if !targets_match(spec, &current) {
        let what = format!("target {} -> {}", spec.target_id, spec.target_arn);
        ctx.change(KIND, name, &what, || async {
            let stale = current
                .iter()
                .filter(|t| t.id() != spec.target_id)
                .map(|t| t.id().to_string())
                .collect();
            remove_targets(ctx, name, stale).await?;
            let target = Target::builder()
                .id(&spec.target_id)
                .arn(&spec.target_arn)
                .input(&spec.input)
                .build()
                .context("building the rule's target")?;
            let out = ctx
                .aws()
                .events()
                .put_targets()
                .rule(name)
                .targets(target)
                .send()
                .await
                .aws("events:PutTargets", name)?;
            if let Some(e) = out.failed_entries().first() {
                anyhow::bail!(
                    "events:PutTargets {name}: target {} refused: {} ({})",
                    e.target_id().unwrap_or("?"),
                    e.error_message().unwrap_or(""),
                    e.error_code().unwrap_or("no code"),
                );
            }
            Ok(())
        })
        .await?;
    }
    Ok(rule)
}

/// Deletes the rule `name` after its targets; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let Some(current) = targets(ctx, name).await? else {
        return Ok(());
    };
    remove_targets(
        ctx,
        name,
        current.iter().map(|t| t.id().to_string()).collect(),
    )
    .await?;
    ctx.aws()
        .events()
        .delete_rule()
        .name(name)
        .send()
        .await
        .aws("events:DeleteRule", name)
        .not_found_ok()?;
    Ok(())
}

#[async_trait]
impl Provider for Rule {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let out = ctx
            .aws()
            .events()
            .describe_rule()
            .name(&rec.id)
            .send()
            .await
            .aws("events:DescribeRule", &rec.id)
            .not_found_ok()?;
        Ok(out.map(|r| {
            r.state()
                .map(|s| s.as_str().to_lowercase())
                .unwrap_or_else(|| "exists".into())
        }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ScheduleSpec {
        ScheduleSpec {
            name: "sched-breaker-t".into(),
            description: "d".into(),
            schedule: "rate(5 minutes)".into(),
            target_id: "validator".into(),
            target_arn: "arn:aws:lambda:us-east-1:1:function:f".into(),
            input: r#"{"breaker":"reconcile"}"#.into(),
        }
    }

    fn target(id: &str, arn: &str, input: Option<&str>) -> Target {
        Target::builder()
            .id(id)
            .arn(arn)
            .set_input(input.map(str::to_string))
            .build()
            .expect("target")
    }

    #[test]
    fn a_rule_drifts_in_schedule_description_and_state() {
        let s = spec();
        let same = Current {
            arn: "a".into(),
            schedule: Some(s.schedule.clone()),
            description: Some(s.description.clone()),
            enabled: true,
        };
        assert!(rule_drift(&s, &same).is_empty());
        let off = Current {
            schedule: Some("rate(1 hour)".into()),
            enabled: false,
            ..same
        };
        assert_eq!(rule_drift(&s, &off), ["schedule", "state (disabled)"]);
    }

    #[test]
    fn only_the_one_wanted_target_matches() {
        let s = spec();
        let ok = target(&s.target_id, &s.target_arn, Some(&s.input));
        assert!(targets_match(&s, std::slice::from_ref(&ok)));
        assert!(!targets_match(&s, &[]));
        assert!(!targets_match(
            &s,
            &[ok.clone(), target("x", "arn:x", None)]
        ));
        assert!(!targets_match(
            &s,
            &[target(&s.target_id, &s.target_arn, None)]
        ));
        assert!(!targets_match(
            &s,
            &[target(&s.target_id, "arn:other", Some(&s.input))]
        ));
    }
}
