//! The asynchronous paths: producers → the transaction queue → the validator, and the validator's
//! dead-letter target.

use anyhow::{Context as _, Result};

use super::{ctx, through, Check, Service, FIX_UP};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::outputs::{queue, validator};
use crate::verify::eval::{self, Ctx};
use crate::verify::live::Live;
use crate::verify::{Finding, Stack};

/// A producer service → the transaction queue: the task role and the queue policy allow
/// SendMessage, and the queue's key lets the role generate data keys through SQS.
pub(super) async fn producer_to_queue(live: &Live, st: &Stack, svc: &Service) -> Finding {
    let mut c = Check::new(format!("{} → transaction queue", svc.label()));
    let r: Result<()> = async {
        let url = st.out(queue::OUT_QUEUE_URL).context("no queue URL")?;
        let q = live.queue(url).await?;
        let Some(role) = &svc.task_role else {
            c.fail("the task definition has no task role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        let sec = ctx(&[("aws:SecureTransport", "true")]);
        c.need(
            eval::role_resource(&role, q.policy.as_ref(), "sqs:SendMessage", &q.arn, &sec),
            "give the service the `queue` permission (`services[].permissions`) and run `fintech-infra up`",
        );
        if let Some(key) = &q.kms_key {
            let (key_arn, policy) = live.key(key, live.region()).await?;
            let via = format!("sqs.{}.amazonaws.com", live.region());
            let kctx = through(live, &via);
            c.need(
                eval::kms_role(&policy, &role, "kms:GenerateDataKey", &key_arn, &kctx),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes.push("the task role and the queue policy allow SendMessage; the key allows GenerateDataKey through SQS".into());
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// The breaker's schedule → validator (seed 002): the reconciler's rule is enabled, sends
/// the reconcile input to the function, and the function's resource policy lets that rule
/// invoke it. Without it a lost alarm invocation leaves consumption paused (or running)
/// until the next `up`.
pub(super) async fn reconciler_to_validator(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("breaker schedule → validator");
    let r: Result<()> = async {
        let Some(name) = st.out(validator::OUT_FUNCTION_NAME) else {
            c.fail("the validator is not built", FIX_UP);
            return Ok(());
        };
        let rule_name = validator::schedule_name(&st.suffix);
        let events = live.aws.events();
        let rule = events
            .describe_rule()
            .name(&rule_name)
            .send()
            .await
            .aws("events:DescribeRule", &rule_name)
            .not_found_ok()?;
        let Some(rule) = rule else {
            c.fail(
                format!("no schedule {rule_name}: a lost alarm invocation would leave the breaker out of step with its alarm"),
                FIX_UP,
            );
            return Ok(());
        };
        if rule.state() != Some(&aws_sdk_eventbridge::types::RuleState::Enabled) {
            c.fail(format!("the schedule {rule_name} is not enabled"), FIX_UP);
        }
        let f = live.function(name).await?;
        let fn_arn = f.function_arn().unwrap_or_default();
        let targets = events
            .list_targets_by_rule()
            .rule(&rule_name)
            .send()
            .await
            .aws("events:ListTargetsByRule", &rule_name)?;
        let aimed = targets
            .targets()
            .iter()
            .any(|t| t.arn() == fn_arn && t.input() == Some(validator::RECONCILE_INPUT));
        if !aimed {
            c.fail(
                format!("the schedule {rule_name} does not send the reconcile input to {name}"),
                FIX_UP,
            );
        }
        let policy = crate::resources::lambda::function::resource_policy(live.aws.lambda(), name)
            .await?
            .unwrap_or(serde_json::Value::Null);
        let rule_arn = rule.arn().unwrap_or_default();
        if !crate::resources::lambda::function::allows_service_invoke(
            &policy,
            validator::EVENTS_PRINCIPAL,
            rule_arn,
        ) {
            c.fail(
                format!("the resource policy of {name} does not let {rule_arn} invoke it"),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "{rule_name} is enabled ({}) and may invoke {name} with the reconcile input",
                rule.schedule_expression().unwrap_or("no schedule")
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// transaction queue → validator: an enabled mapping, and the function's role may receive,
/// delete and read attributes (and decrypt through SQS).
pub(super) async fn queue_to_validator(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("transaction queue → validator");
    let r: Result<()> = async {
        let url = st.out(queue::OUT_QUEUE_URL).context("no queue URL")?;
        let Some(name) = st.out(validator::OUT_FUNCTION_NAME) else {
            c.fail("the validator is not built", FIX_UP);
            return Ok(());
        };
        let q = live.queue(url).await?;
        let maps = live
            .aws
            .lambda()
            .list_event_source_mappings()
            .function_name(name)
            .send()
            .await
            .aws("lambda:ListEventSourceMappings", name)?;
        let mapping = maps
            .event_source_mappings()
            .iter()
            .find(|m| m.event_source_arn() == Some(q.arn.as_str()));
        match mapping {
            None => c.fail(
                format!("no event source mapping feeds {name} from the queue"),
                FIX_UP,
            ),
            Some(m)
                if !matches!(
                    m.state(),
                    Some("Enabled" | "Creating" | "Updating" | "Enabling")
                ) =>
            {
                // Disabled on purpose while the circuit breaker is open; disabled with the
                // breaker's alarm back to OK means the alarm's resume never arrived.
                let breaker =
                    crate::outputs::alarms::alarm_name(validator::BREAKER_ALARM, &st.suffix);
                let alarm = live
                    .aws
                    .cloudwatch()
                    .describe_alarms()
                    .alarm_names(&breaker)
                    .send()
                    .await
                    .aws("cloudwatch:DescribeAlarms", &breaker)?;
                let state = alarm.metric_alarms().first().map(|a| {
                    (
                        a.state_value().map(|v| v.as_str().to_string()),
                        a.state_reason().unwrap_or_default().to_string(),
                    )
                });
                let mapping = format!(
                    "the mapping {} is {}",
                    m.uuid().unwrap_or_default(),
                    m.state().unwrap_or("in no state")
                );
                match state {
                    Some((Some(v), reason)) if v == "ALARM" => c.fail(
                        format!(
                            "{mapping}: the circuit breaker is open ({breaker} in ALARM: \
                             {reason}); consumption resumes when it returns to OK"
                        ),
                        "find what fails the transactions in the validator's log group; the \
                         breaker closes by itself once the failures stop",
                    ),
                    Some(_) => c.fail(
                        format!(
                            "{mapping} while the circuit breaker's alarm {breaker} is not in \
                             ALARM: its resume never arrived"
                        ),
                        FIX_UP,
                    ),
                    None => c.fail(mapping, FIX_UP),
                }
            }
            Some(_) => {}
        }
        let f = live.function(name).await?;
        let role = live.role(f.role().unwrap_or_default()).await?;
        let fn_arn = f.function_arn().unwrap_or_default().to_string();
        c.need(
            eval::trusts(
                &role,
                "lambda.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", &fn_arn),
                ]),
            ),
            FIX_UP,
        );
        let sec = ctx(&[("aws:SecureTransport", "true")]);
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ] {
            c.need(
                eval::role_resource(&role, q.policy.as_ref(), action, &q.arn, &sec),
                FIX_UP,
            );
        }
        if let Some(key) = &q.kms_key {
            let (key_arn, policy) = live.key(key, live.region()).await?;
            let via = format!("sqs.{}.amazonaws.com", live.region());
            let kctx = through(live, &via);
            c.need(
                eval::kms_role(&policy, &role, "kms:Decrypt", &key_arn, &kctx),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes
                .push("mapping enabled; the role may receive, delete and decrypt".into());
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// validator → its dead-letter target: none by design (the queue's redrive moves failures);
/// one that exists must be writable by the role, or Lambda refuses the configuration.
pub(super) async fn validator_dead_letter(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("validator failures → dead-letter queue");
    let r: Result<()> = async {
        let url = st.out(queue::OUT_QUEUE_URL).context("no queue URL")?;
        let q = live.queue(url).await?;
        match &q.redrive_target {
            Some(t) => c.notes.push(format!(
                "the queue redrives to {}",
                t.rsplit(':').next().unwrap_or(t)
            )),
            None => c.fail(
                "the transaction queue has no redrive policy: failing messages are retried forever",
                FIX_UP,
            ),
        }
        if let Some(name) = st.out(validator::OUT_FUNCTION_NAME) {
            let f = live.function(name).await?;
            if let Some(target) = f
                .dead_letter_config()
                .and_then(|d| d.target_arn())
                .filter(|t| !t.is_empty())
            {
                let role = live.role(f.role().unwrap_or_default()).await?;
                let action = if target.contains(":sns:") {
                    "sns:Publish"
                } else {
                    "sqs:SendMessage"
                };
                c.need(eval::identity(&role, action, target, &Ctx::new()), FIX_UP);
            }
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}
