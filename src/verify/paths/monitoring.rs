//! The monitoring paths: every alarm → the alert topic, and every log group's KMS key.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::{ctx, Check, FIX_UP};
use crate::aws::AwsResultExt;
use crate::outputs::services;
use crate::steps::alarms;
use crate::verify::eval::{self, Ctx};
use crate::verify::live::Live;
use crate::verify::{Finding, Stack};

/// every alarm → the alert topic: each alarm's action is the topic, the topic policy lets
/// CloudWatch publish, and the topic's key lets CloudWatch use it.
pub(super) async fn alarms_to_topic(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("alarms → alert topic");
    let r: Result<()> = async {
        let topic = st.out(alarms::OUT_TOPIC_ARN).context("no topic")?;
        let names = st.ids_of(alarms::ALARM);
        let mut found = Vec::new();
        for chunk in names.chunks(100) {
            let out = live
                .aws
                .cloudwatch()
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .max_records(100)
                .send()
                .await
                .aws("cloudwatch:DescribeAlarms", "the stack's alarms")?;
            found.extend(out.metric_alarms().iter().cloned());
        }
        let attrs = live
            .aws
            .sns()
            .get_topic_attributes()
            .topic_arn(topic)
            .send()
            .await
            .aws("sns:GetTopicAttributes", topic)?;
        let attrs = attrs.attributes().cloned().unwrap_or_default();
        let policy: Option<Value> = attrs.get("Policy").and_then(|p| serde_json::from_str(p).ok());
        for name in &names {
            let Some(a) = found.iter().find(|a| a.alarm_name() == Some(name.as_str())) else {
                c.fail(format!("alarm {name} is gone"), FIX_UP);
                continue;
            };
            if !a.alarm_actions().iter().any(|x| x == topic) {
                c.fail(format!("alarm {name} does not notify the topic"), FIX_UP);
            }
            let alarm_arn = a.alarm_arn().unwrap_or_default();
            if policy.is_some() {
                c.need(
                    eval::service_resource(
                        "cloudwatch.amazonaws.com",
                        policy.as_ref(),
                        "sns:Publish",
                        topic,
                        &ctx(&[("aws:SourceArn", alarm_arn), ("aws:SourceAccount", &live.account), ("aws:SourceOwner", &live.account)]),
                    )
                    .map_err(|e| format!("topic policy refuses alarm {name}: {e}")),
                    FIX_UP,
                );
                break_after_first(&mut c);
            }
        }
        if let Some(key) = attrs.get("KmsMasterKeyId").filter(|k| !k.is_empty()) {
            let (key_arn, kp) = live.key(key, live.region()).await?;
            for action in ["kms:Decrypt", "kms:GenerateDataKey"] {
                c.need(
                    eval::kms_service(&kp, "cloudwatch.amazonaws.com", action, &key_arn, &Ctx::new())
                        .map_err(|e| format!("the topic's key does not let CloudWatch {action}: {e} (alarms fire, nobody is notified)")),
                    FIX_UP,
                );
            }
        }
        if c.problems.is_empty() {
            c.notes.truncate(0);
            c.notes.push(format!("{} alarms notify the topic; CloudWatch may publish and use its key", names.len()));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// Keeps the alarm loop's notes short: one topic-policy note is enough.
fn break_after_first(c: &mut Check) {
    if c.notes.len() > 1 {
        c.notes.truncate(1);
    }
}

/// every log group's key lets CloudWatch Logs use it for that group.
pub(super) async fn log_groups_keys(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("log groups → their KMS key");
    let r: Result<()> = async {
        let mut names: BTreeSet<(String, String)> = st
            .resources
            .iter()
            .filter(|r| r.kind == crate::resources::logs::log_group::KIND)
            .map(|r| {
                (
                    r.id.clone(),
                    if r.region.is_empty() {
                        live.region().to_string()
                    } else {
                        r.region.clone()
                    },
                )
            })
            .collect();
        for g in st.out_map(services::OUT_LOG_GROUPS).into_values() {
            names.insert((g, live.region().to_string()));
        }
        let mut checked = 0;
        for (name, region) in &names {
            let aws = live.in_region(region);
            let out = aws
                .logs()
                .describe_log_groups()
                .log_group_name_prefix(name)
                .send()
                .await
                .aws("logs:DescribeLogGroups", name)?;
            let Some(g) = out
                .log_groups()
                .iter()
                .find(|g| g.log_group_name() == Some(name.as_str()))
            else {
                c.fail(format!("log group {name} is gone"), FIX_UP);
                continue;
            };
            let Some(key) = g.kms_key_id() else {
                c.fail(format!("log group {name} is not KMS-encrypted"), FIX_UP);
                continue;
            };
            let (key_arn, kp) = live.key(key, region).await?;
            let group_arn = format!("arn:aws:logs:{region}:{}:log-group:{name}", live.account);
            let principal = format!("logs.{region}.amazonaws.com");
            for action in ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"] {
                c.need(
                    eval::kms_service(
                        &kp,
                        &principal,
                        action,
                        &key_arn,
                        &ctx(&[("kms:EncryptionContext:aws:logs:arn", &group_arn)]),
                    )
                    .map_err(|e| {
                        format!("{name}: the key does not let CloudWatch Logs {action}: {e}")
                    }),
                    FIX_UP,
                );
            }
            checked += 1;
        }
        if c.problems.is_empty() {
            c.notes.truncate(0);
            c.notes.push(format!(
                "{checked} log groups; each key lets CloudWatch Logs use it"
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}
