//! `secretsmanager:secret`: the Aurora cluster's master secret, which RDS creates, owns and
//! deletes with the cluster (`ManageMasterUserPassword`). The stack only keeps its posture:
//! rotated automatically every `database.secret_rotation_days` days and tagged like the stack
//! (AWS-CONTRACTS B11).
//!
//! It is not recorded, so it has no provider: nothing probes or deletes it by kind. The kind
//! names it in plan items and in `retag`, which tags it from the database's
//! `db_secret_arn` output. (Secrets Manager refuses DeleteSecret on a secret RDS manages; it
//! goes when the cluster does.)

use anyhow::Result;
use aws_sdk_secretsmanager::types::{RotationRulesType, Tag};

use crate::aws::AwsResultExt;
use crate::step::StepCtx;

/// The kind of the RDS-managed master secret in plan items. It is not recorded: RDS owns it
/// and deletes it with the cluster.
pub const KIND: &str = "secretsmanager:secret";

/// Whether a described secret rotates automatically every `days` days. Managed rotation may
/// be described by `AutomaticallyAfterDays` or by the schedule expression `rate(N days)`
/// (Secrets Manager API reference, RotationRulesType).
pub fn rotation_ok(enabled: Option<bool>, rules: Option<&RotationRulesType>, days: i64) -> bool {
    if enabled != Some(true) {
        return false;
    }
    let Some(r) = rules else {
        return false;
    };
    let expr = r.schedule_expression().map(|e| e.replace(' ', ""));
    r.automatically_after_days() == Some(days)
        || expr.as_deref() == Some(format!("rate({days}days)").as_str())
        || (days == 1 && expr.as_deref() == Some("rate(1day)"))
}

/// The tags of `want` that `got` lacks or has with another value.
pub fn missing_tags(got: &[Tag], want: &[(String, String)]) -> Vec<(String, String)> {
    want.iter()
        .filter(|(k, v)| {
            !got.iter()
                .any(|t| t.key() == Some(k.as_str()) && t.value() == Some(v.as_str()))
        })
        .cloned()
        .collect()
}

/// The RDS-managed master secret `arn`: rotated automatically every `days` days and tagged
/// like the stack (AWS-CONTRACTS B11). RDS turns managed rotation on with a 7-day schedule;
/// RotateSecret with RotationRules changes the schedule of a managed secret (Secrets Manager
/// User Guide, "Managed rotation for AWS Secrets Manager secrets"), and with
/// RotateImmediately=false it does not rotate the password now, which would make every
/// running task reconnect for nothing. Called only when DescribeSecret shows a different
/// schedule or rotation off, so a second `up` changes nothing.
pub async fn ensure_posture(ctx: &StepCtx, arn: &str, days: i64) -> Result<()> {
    let sm = ctx.aws().secrets();
    let desc = sm
        .describe_secret()
        .secret_id(arn)
        .send()
        .await
        .aws("secretsmanager:DescribeSecret", arn)?;
    if !rotation_ok(desc.rotation_enabled(), desc.rotation_rules(), days) {
        let was = match (desc.rotation_enabled(), desc.rotation_rules()) {
            (Some(true), Some(r)) => r
                .schedule_expression()
                .map(str::to_string)
                .or(r
                    .automatically_after_days()
                    .map(|d| format!("every {d} days")))
                .unwrap_or_else(|| "on".into()),
            _ => "off".into(),
        };
        let what = format!("rotation {was} -> every {days} days");
        ctx.change(KIND, arn, &what, || async {
            sm.rotate_secret()
                .secret_id(arn)
                .rotation_rules(
                    RotationRulesType::builder()
                        .automatically_after_days(days)
                        .build(),
                )
                .rotate_immediately(false)
                .send()
                .await
                .aws("secretsmanager:RotateSecret", arn)?;
            Ok(())
        })
        .await?;
    }
    let name = desc.name().unwrap_or(arn);
    let missing = missing_tags(desc.tags(), &ctx.tags(Some(name)));
    if !missing.is_empty() {
        let keys: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
        let what = format!("tag {}", keys.join(", "));
        ctx.change(KIND, arn, &what, || async {
            let tags = missing
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            sm.tag_resource()
                .secret_id(arn)
                .set_tags(Some(tags))
                .send()
                .await
                .aws("secretsmanager:TagResource", arn)?;
            Ok(())
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_schedule_is_read_from_days_or_a_rate_expression() {
        let days = |n| {
            RotationRulesType::builder()
                .automatically_after_days(n)
                .build()
        };
        let rate = |e: &str| RotationRulesType::builder().schedule_expression(e).build();
        assert!(rotation_ok(Some(true), Some(&days(7)), 7));
        assert!(rotation_ok(Some(true), Some(&rate("rate(7 days)")), 7));
        assert!(rotation_ok(Some(true), Some(&rate("rate(1 day)")), 1));
        assert!(!rotation_ok(Some(true), Some(&days(30)), 7));
        assert!(!rotation_ok(Some(false), Some(&days(7)), 7), "rotation off");
        assert!(
            !rotation_ok(None, None, 7),
            "never configured (moto's fresh secret)"
        );
        assert!(!rotation_ok(
            Some(true),
            Some(&rate("cron(0 4 ? * SUN *)")),
            7
        ));
    }

    #[test]
    fn only_missing_or_different_tags_are_added() {
        let got = vec![
            Tag::builder().key("Team").value("platform").build(),
            Tag::builder().key("Environment").value("old").build(),
        ];
        let want = vec![
            ("Team".to_string(), "platform".to_string()),
            ("Environment".to_string(), "dev".to_string()),
            ("fintech-infra:stack".to_string(), "dev".to_string()),
        ];
        let m = missing_tags(&got, &want);
        assert_eq!(m, want[1..].to_vec());
        assert!(missing_tags(&got, &want[..1]).is_empty());
    }
}
