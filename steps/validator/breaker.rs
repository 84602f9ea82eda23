//! The validator's circuit breaker beyond its alarm (seed 002): the scheduled reconciler and
//! the breaker's state as `up` reads it.
//!
//! The breaker alarm invokes the function on ALARM and on OK, and the handler pauses or
//! resumes its mappings. An alarm action is one asynchronous invocation: if it is lost
//! (throttled past Lambda's retries, or failed on a Lambda error), consumption would stay
//! paused after the alarm returned to OK, or go on while it is in ALARM, until the next
//! `up`. So the EventBridge rule `sched-validator-breaker-<suffix>` invokes the function
//! every `validator.breaker_reconcile_mins` minutes with [`RECONCILE_INPUT`]; the handler
//! then reads the alarm's state and sets its mappings to match (paused exactly while the
//! alarm is in ALARM). The function's resource policy lets that rule, and only it, invoke it
//! (statement [`SCHEDULE_PERMISSION`] for `events.amazonaws.com` with the rule's ARN as
//! source), and its role may read that one alarm (`cloudwatch:DescribeAlarms`).
//!
//! Without the breaker the rule and the permission go.

use anyhow::Result;

use super::PolicyInputs;
use crate::aws::AwsResultExt as _;
use crate::resources::events::rule::{self, ScheduleSpec};
use crate::resources::lambda::function;
use crate::step::{Found, StepCtx};

/// The statement of the function's resource policy that lets the reconciler's rule invoke it.
pub const SCHEDULE_PERMISSION: &str = "breaker-schedule";
pub use crate::outputs::validator::{schedule_name, EVENTS_PRINCIPAL, RECONCILE_INPUT};
/// The rule's target ID.
pub const TARGET_ID: &str = "validator";
/// The environment variable that names the breaker alarm to the handler.
pub const ALARM_ENV: &str = "BREAKER_ALARM";

/// The rule's ARN (EventBridge's format: `rule/<name>` on the default bus).
pub fn schedule_arn(inp: &PolicyInputs) -> String {
    format!(
        "arn:{}:events:{}:{}:rule/{}",
        inp.partition,
        inp.region,
        inp.account,
        schedule_name(&inp.suffix)
    )
}

/// The breaker alarm's name and ARN.
pub fn alarm(inp: &PolicyInputs) -> (String, String) {
    let name = crate::outputs::alarms::alarm_name(super::BREAKER_ALARM, &inp.suffix);
    let arn = format!(
        "arn:{}:cloudwatch:{}:{}:alarm:{name}",
        inp.partition, inp.region, inp.account
    );
    (name, arn)
}

/// The reconciler's rule for the function `function_arn`.
pub fn schedule_spec(inp: &PolicyInputs, function_arn: &str, minutes: i32) -> ScheduleSpec {
    ScheduleSpec {
        name: schedule_name(&inp.suffix),
        description: format!(
            "fintech-infra {}: reconciles the validator's circuit breaker with its alarm",
            inp.suffix
        ),
        // EventBridge wants the singular unit for 1 (`rate(1 minute)`) and refuses
        // `rate(1 minutes)`.
        schedule: if minutes == 1 {
            "rate(1 minute)".to_string()
        } else {
            format!("rate({minutes} minutes)")
        },
        target_id: TARGET_ID.to_string(),
        target_arn: function_arn.to_string(),
        input: RECONCILE_INPUT.to_string(),
    }
}

/// The breaker alarm's invoke permission, then the reconciler (permission first, so its
/// first run is not refused), or, without the breaker, their removal (rule first, so
/// nothing fires into a refusal).
pub async fn ensure(ctx: &StepCtx, function: &Found, inp: &PolicyInputs) -> Result<()> {
    let v = &ctx.cfg().validator;
    let name = super::function_name(ctx.suffix());
    if function.is_pending() {
        if v.breaker {
            let spec = schedule_spec(inp, &function.id, v.breaker_reconcile_mins.0);
            rule::ensure(ctx, &spec).await?;
        }
        return Ok(());
    }
    // The breaker alarm invokes the function: its resource policy lets CloudWatch do so for
    // that alarm only (without it the alarm's action fails and nothing pauses).
    let (_, alarm_arn) = alarm(inp);
    let perm = |sid, principal, source: String| {
        let name = name.clone();
        async move {
            function::ensure_permission(ctx, &name, sid, principal, &source, v.breaker).await
        }
    };
    perm(super::BREAKER_PERMISSION, super::ALARM_PRINCIPAL, alarm_arn).await?;
    if v.breaker {
        perm(SCHEDULE_PERMISSION, EVENTS_PRINCIPAL, schedule_arn(inp)).await?;
        let arn = function.arn.clone().unwrap_or_else(|| function.id.clone());
        rule::ensure(ctx, &schedule_spec(inp, &arn, v.breaker_reconcile_mins.0)).await?;
    } else {
        crate::resources::delete_recorded(ctx, rule::KIND).await?;
        perm(SCHEDULE_PERMISSION, EVENTS_PRINCIPAL, schedule_arn(inp)).await?;
    }
    Ok(())
}

/// Whether the breaker alarm is in ALARM (the breaker is open). `false` when it does not
/// exist yet (the alarms step makes it after this one).
pub async fn open(ctx: &StepCtx) -> Result<bool> {
    let name = crate::outputs::alarms::alarm_name(super::BREAKER_ALARM, ctx.suffix());
    let out = ctx
        .aws()
        .cloudwatch()
        .describe_alarms()
        .alarm_names(&name)
        .send()
        .await
        .aws("cloudwatch:DescribeAlarms", &name)?;
    Ok(out
        .metric_alarms()
        .iter()
        .any(|a| a.state_value() == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_names_its_unit_as_eventbridge_wants() {
        let inp = super::super::tests::inputs();
        let one = schedule_spec(&inp, "arn:f", 1);
        assert_eq!(one.schedule, "rate(1 minute)");
        assert_eq!(schedule_spec(&inp, "arn:f", 5).schedule, "rate(5 minutes)");
        assert_eq!(one.input, RECONCILE_INPUT);
        assert!(schedule_arn(&inp).ends_with(&format!(":rule/{}", one.name)));
        // EventBridge rule names: at most 64 of [.-_A-Za-z0-9].
        assert!(one.name.len() <= 64);
    }
}
