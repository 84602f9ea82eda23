//! `kms:key`: the stack's customer-managed key (symmetric, rotation on) in one region: find it
//! (by alias, by record, by tag), create it with its key policy, restore it from a pending
//! deletion, probe its state, schedule its deletion.
//!
//! KMS never deletes a key at once: deletion schedules it after the configured window
//! (`kms.deletion_window_days`; KMS's shortest is 7 days), and until then the key can be
//! restored, which `ensure` does for a key an interrupted `down` left pending deletion.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyState, KeyUsageType, Tag};
use serde_json::json;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "kms:key";

pub struct Key;

/// A key found in KMS: its ID, ARN and state.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub id: String,
    pub arn: String,
    pub state: KeyState,
}

impl From<KeyMetadata> for KeyInfo {
    fn from(m: KeyMetadata) -> KeyInfo {
        KeyInfo {
            id: m.key_id.clone(),
            arn: m.arn.clone().unwrap_or_default(),
            state: m.key_state.unwrap_or(KeyState::Enabled),
        }
    }
}

/// The key policy: the account administers the key through IAM; the AWS services that
/// encrypt the stack's data may use it on the account's behalf (`kms:ViaService`); CloudWatch
/// Logs and CloudWatch alarms (publishing to the encrypted SNS topic) need their service
/// principals named, as they call KMS directly.
///
/// Set only when the key is created, never reconciled here: the cdn step adds the statement
/// `CloudFrontDecryptsAssets` (`crate::steps::cdn::KEY_SID`, scoped to the distribution, whose
/// ID exists only after the key) with GetKeyPolicy/PutKeyPolicy. Any future reconciliation of
/// this policy must merge by `Sid` and keep that statement, or CloudFront's reads of the
/// SSE-KMS assets fail with 403.
pub fn key_policy(account: &str, region: &str) -> serde_json::Value {
    let via: Vec<String> = [
        "rds",
        "dynamodb",
        "s3",
        "sns",
        "sqs",
        "secretsmanager",
        "ecr",
        "lambda",
    ]
    .iter()
    .map(|s| format!("{s}.{region}.amazonaws.com"))
    .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministersKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "AwsServicesUseKeyForAccount",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                           "kms:CreateGrant", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"kms:CallerAccount": account, "kms:ViaService": via}
                }
            },
            {
                "Sid": "CloudWatchLogsEncryptsLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": format!("logs.{region}.amazonaws.com")},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                           "kms:Describe*"],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                        format!("arn:aws:logs:{region}:{account}:log-group:*")}
                }
            },
            {
                "Sid": "ServicePrincipalsPublishToEncryptedTopicsAndQueues",
                "Effect": "Allow",
                "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com",
                                          "sns.amazonaws.com"]},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*"
            }
        ]
    })
}

/// DescribeKey of `key_id` (a key ID, ARN or alias name); `None` if there is no such key.
pub async fn describe(ctx: &StepCtx, key_id: &str) -> Result<Option<KeyMetadata>> {
    Ok(ctx
        .aws()
        .kms()
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .aws("kms:DescribeKey", key_id)
        .not_found_ok()?
        .and_then(|o| o.key_metadata))
}

/// The key the alias points at, if the alias exists.
pub async fn find_by_alias(ctx: &StepCtx, alias: &str) -> Result<Option<KeyInfo>> {
    Ok(describe(ctx, alias).await?.map(KeyInfo::from))
}

/// A key recorded by an earlier run that died before creating the alias.
pub async fn find_recorded(ctx: &StepCtx) -> Result<Option<KeyInfo>> {
    for rec in ctx.records(Some(KIND)) {
        if let Some(m) = describe(ctx, &rec.id).await? {
            return Ok(Some(m.into()));
        }
    }
    Ok(None)
}

/// An enabled key tagged with this stack: one whose CreateKey answer was lost (a crash or a
/// dropped connection right after KMS made it) has neither an alias nor a record, only the
/// tags it was created with. KMS cannot look keys up by tag; the tagging API can.
pub async fn find_tagged(ctx: &StepCtx) -> Result<Option<KeyInfo>> {
    // Its own read, not the new-stack check's (`step::fresh`): the key may be
    // this very run's, from a create whose answer was lost.
    let out = ctx
        .aws()
        .tagging()
        .get_resources()
        .resource_type_filters("kms:key")
        .tag_filters(
            aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                .key(crate::naming::STACK_TAG)
                .values(ctx.suffix())
                .build(),
        )
        .send()
        .await
        .aws("tagging:GetResources", "the stack's KMS keys")?;
    for m in out.resource_tag_mapping_list() {
        let Some(arn) = m.resource_arn() else {
            continue;
        };
        let ours = m
            .tags()
            .iter()
            .any(|t| t.key() == crate::naming::STACK_TAG && t.value() == ctx.suffix());
        if !ours {
            continue;
        }
        if let Some(m) = describe(ctx, arn).await? {
            // A key `down` scheduled for deletion stays so (unless its alias still points at
            // it, which `find_by_alias` handles).
            if m.key_state == Some(KeyState::Enabled) {
                return Ok(Some(m.into()));
            }
        }
    }
    Ok(None)
}

/// Records `existing` (the key found by the `find_*` functions) as `key_name` or creates the
/// key, brings it back from a pending deletion, and turns automatic rotation on.
pub async fn ensure(ctx: &StepCtx, key_name: &str, existing: Option<KeyInfo>) -> Result<Found> {
    let kms = ctx.aws().kms();
    let existing_state = existing.as_ref().map(|k| k.state.clone());
    let key = ctx
        .ensure(
            KIND,
            key_name,
            || async { Ok(existing.map(|k| Found::new(k.id).arn(k.arn))) },
            || async {
                let account = ctx.account_id().await?;
                let policy = key_policy(&account, ctx.region()).to_string();
                let tags = ctx
                    .tags(None)
                    .into_iter()
                    .map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building KMS tags")?;
                let out = kms
                    .create_key()
                    .description(format!("fintech-infra stack {} data key", ctx.suffix()))
                    .key_spec(KeySpec::SymmetricDefault)
                    .key_usage(KeyUsageType::EncryptDecrypt)
                    .policy(policy)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .aws("kms:CreateKey", key_name)?;
                let m = out
                    .key_metadata
                    .context("CreateKey returned no key metadata")?;
                Ok(Found::new(m.key_id).arn(m.arn.unwrap_or_default()))
            },
        )
        .await?;

    // A key left pending deletion by an interrupted `down`: bring it back.
    if existing_state == Some(KeyState::PendingDeletion) {
        ctx.change(
            KIND,
            key_name,
            "cancel scheduled deletion and re-enable",
            || async {
                kms.cancel_key_deletion()
                    .key_id(&key.id)
                    .send()
                    .await
                    .aws("kms:CancelKeyDeletion", &key.id)?;
                kms.enable_key()
                    .key_id(&key.id)
                    .send()
                    .await
                    .aws("kms:EnableKey", &key.id)?;
                Ok(())
            },
        )
        .await?;
    }

    let rotation_on = if key.is_pending() || existing_state.is_none() {
        false
    } else {
        kms.get_key_rotation_status()
            .key_id(&key.id)
            .send()
            .await
            .aws("kms:GetKeyRotationStatus", &key.id)?
            .key_rotation_enabled
    };
    if !rotation_on {
        let what = "enable automatic key rotation";
        let apply = || async {
            kms.enable_key_rotation()
                .key_id(&key.id)
                .send()
                .await
                .aws("kms:EnableKeyRotation", &key.id)?;
            Ok(())
        };
        if existing_state.is_none() {
            // Part of creating the key, not a change to an existing one.
            if !ctx.is_plan() {
                apply().await?;
            }
        } else {
            ctx.change(KIND, key_name, what, apply).await?;
        }
    }
    Ok(key)
}

/// Schedules the deletion of the key `key_id` after the configured window (unless it is
/// pending deletion already) and says when; a key that is gone counts as deleted.
pub async fn delete(ctx: &StepCtx, key_id: &str) -> Result<()> {
    let window = ctx.cfg().kms.deletion_window_days.0;
    match describe(ctx, key_id).await? {
        Some(m) if m.key_state != Some(KeyState::PendingDeletion) => {
            let out = ctx
                .aws()
                .kms()
                .schedule_key_deletion()
                .key_id(key_id)
                .pending_window_in_days(window)
                .send()
                .await
                .aws("kms:ScheduleKeyDeletion", key_id)?;
            let when = out
                .deletion_date
                .map(|d| d.to_string())
                .unwrap_or_else(|| format!("in {window} days"));
            ctx.sh.reporter.message(
                ctx.step,
                &format!(
                    "KMS key {key_id} is scheduled for deletion on {when} (KMS's minimum \
                     waiting period); until then it can be restored with \
                     `aws kms cancel-key-deletion`"
                ),
            );
        }
        _ => {}
    }
    Ok(())
}

/// `status` of a key (or, through its alias name, of the key an alias points at): its key
/// state, e.g. `Enabled` or `PendingDeletion`.
pub(super) async fn state(ctx: &StepCtx, key_id: &str) -> Result<Option<String>> {
    Ok(describe(ctx, key_id).await?.map(|m| {
        m.key_state
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "exists".into())
    }))
}

#[async_trait]
impl Provider for Key {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        state(ctx, &rec.id).await
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_the_account_and_the_services() {
        let p = key_policy("123456789012", "us-east-1");
        let s = p.to_string();
        assert!(s.contains("arn:aws:iam::123456789012:root"));
        for svc in ["rds", "dynamodb", "s3", "sns"] {
            assert!(
                s.contains(&format!("{svc}.us-east-1.amazonaws.com")),
                "{svc}"
            );
        }
        assert!(s.contains("logs.us-east-1.amazonaws.com"));
    }
}
