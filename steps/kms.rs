//! KMS step: the stack's customer-managed key (rotation on) and its alias
//! `alias/fintech-<suffix>`. Aurora, CloudWatch Logs, SNS, S3, SQS, DynamoDB, Secrets Manager
//! and ECR encrypt with it.
//!
//! Teardown deletes the alias and schedules the key's deletion: KMS never deletes a key at
//! once, the shortest window is 7 days.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};
use serde_json::json;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::state::ResourceRecord;
use crate::step::{Found, Step, StepCtx};

pub const KEY: &str = "kms:key";
pub const ALIAS: &str = "kms:alias";

/// Output keys other steps read.
pub const OUT_KEY_ARN: &str = "kms_key_arn";
pub const OUT_KEY_ID: &str = "kms_key_id";

pub struct Kms;

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

impl Kms {
    /// The key the alias points at, if the alias exists.
    async fn find_by_alias(
        ctx: &StepCtx,
        alias: &str,
    ) -> Result<Option<(String, String, KeyState)>> {
        let out = ctx
            .aws()
            .kms()
            .describe_key()
            .key_id(alias)
            .send()
            .await
            .aws("kms:DescribeKey", alias)
            .not_found_ok()?;
        Ok(out.and_then(|o| o.key_metadata).map(|m| {
            (
                m.key_id.clone(),
                m.arn.clone().unwrap_or_default(),
                m.key_state.unwrap_or(KeyState::Enabled),
            )
        }))
    }

    /// A key recorded by an earlier run that died before creating the alias.
    async fn find_recorded(ctx: &StepCtx) -> Result<Option<(String, String, KeyState)>> {
        for rec in ctx.records(Some(KEY)) {
            let out = ctx
                .aws()
                .kms()
                .describe_key()
                .key_id(&rec.id)
                .send()
                .await
                .aws("kms:DescribeKey", &rec.id)
                .not_found_ok()?;
            if let Some(m) = out.and_then(|o| o.key_metadata) {
                return Ok(Some((
                    m.key_id.clone(),
                    m.arn.clone().unwrap_or_default(),
                    m.key_state.unwrap_or(KeyState::Enabled),
                )));
            }
        }
        Ok(None)
    }

    /// An enabled key tagged with this stack: one whose CreateKey answer was lost (a crash or
    /// a dropped connection right after KMS made it) has neither an alias nor a record, only
    /// the tags it was created with. KMS cannot look keys up by tag; the tagging API can.
    async fn find_tagged(ctx: &StepCtx) -> Result<Option<(String, String, KeyState)>> {
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
            let meta = ctx
                .aws()
                .kms()
                .describe_key()
                .key_id(arn)
                .send()
                .await
                .aws("kms:DescribeKey", arn)
                .not_found_ok()?;
            if let Some(m) = meta.and_then(|o| o.key_metadata) {
                // A key `down` scheduled for deletion stays so (unless its alias still
                // points at it, which `find_by_alias` handles).
                if m.key_state == Some(KeyState::Enabled) {
                    return Ok(Some((
                        m.key_id.clone(),
                        m.arn.clone().unwrap_or_default(),
                        KeyState::Enabled,
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Creates (or finds, or restores from pending deletion) the stack's key in the context's
    /// region, with rotation on and the alias `alias/fintech-<suffix>`. The disaster-recovery
    /// step calls it with a context in the DR region.
    pub(crate) async fn ensure_key(ctx: &StepCtx) -> Result<Found> {
        let alias = ctx.names().kms_alias();
        let kms = ctx.aws().kms();
        let by_alias = Self::find_by_alias(ctx, &alias).await?;
        let alias_exists = by_alias.is_some();
        let existing = match by_alias {
            Some(k) => Some(k),
            None => match Self::find_recorded(ctx).await? {
                Some(k) => Some(k),
                None => Self::find_tagged(ctx).await?,
            },
        };
        let key_name = format!("fintech-{}", ctx.suffix());
        let existing_state = existing.as_ref().map(|(_, _, s)| s.clone());
        let key = ctx
            .ensure(
                KEY,
                &key_name,
                || async { Ok(existing.map(|(id, arn, _)| Found::new(id).arn(arn))) },
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
                        .aws("kms:CreateKey", &key_name)?;
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
                KEY,
                &key_name,
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
                ctx.change(KEY, &key_name, what, apply).await?;
            }
        }

        ctx.ensure(
            ALIAS,
            &alias,
            || async { Ok(alias_exists.then(|| Found::new(&alias).attr("key_id", &key.id))) },
            || async {
                kms.create_alias()
                    .alias_name(&alias)
                    .target_key_id(&key.id)
                    .send()
                    .await
                    .aws("kms:CreateAlias", &alias)?;
                Ok(Found::new(&alias).attr("key_id", &key.id))
            },
        )
        .await?;
        Ok(key)
    }

    /// Deletes the recorded aliases and schedules the recorded keys' deletion (in the
    /// context's region).
    pub(crate) async fn delete_keys(ctx: &StepCtx) -> Result<()> {
        let kms = ctx.aws().kms();
        ctx.delete_recorded(ALIAS, |rec| async move {
            kms.delete_alias()
                .alias_name(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("kms:DeleteAlias", &rec.id)
        })
        .await?;
        let window = ctx.cfg().kms.deletion_window_days.0;
        for rec in ctx.records(Some(KEY)) {
            ctx.check_cancelled()?;
            let meta = kms
                .describe_key()
                .key_id(&rec.id)
                .send()
                .await
                .aws("kms:DescribeKey", &rec.id)
                .not_found_ok()?
                .and_then(|o| o.key_metadata);
            match meta {
                Some(m) if m.key_state != Some(KeyState::PendingDeletion) => {
                    let out = kms
                        .schedule_key_deletion()
                        .key_id(&rec.id)
                        .pending_window_in_days(window)
                        .send()
                        .await
                        .aws("kms:ScheduleKeyDeletion", &rec.id)?;
                    let when = out
                        .deletion_date
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| format!("in {window} days"));
                    ctx.sh.reporter.message(
                        ctx.step,
                        &format!(
                            "KMS key {} is scheduled for deletion on {when} (KMS's minimum \
                             waiting period); until then it can be restored with \
                             `aws kms cancel-key-deletion`",
                            rec.id
                        ),
                    );
                }
                _ => {}
            }
            ctx.deleted(KEY, &rec.id)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step for Kms {
    fn name(&self) -> &'static str {
        "kms"
    }

    fn deps(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn estimate_secs(&self) -> u64 {
        5
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let key = Self::ensure_key(ctx).await?;
        if !key.is_pending() {
            ctx.set_output(OUT_KEY_ID, key.id.clone())?;
            ctx.set_output(OUT_KEY_ARN, key.arn.clone().unwrap_or_default())?;
            ctx.set_output("kms_alias", ctx.names().kms_alias())?;
        }
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        Self::delete_keys(ctx).await?;
        for key in [OUT_KEY_ID, OUT_KEY_ARN, "kms_alias"] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let out = ctx
            .aws()
            .kms()
            .describe_key()
            .key_id(&rec.id)
            .send()
            .await
            .aws("kms:DescribeKey", &rec.id)
            .not_found_ok()?;
        Ok(out.and_then(|o| o.key_metadata).map(|m| {
            m.key_state
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "exists".into())
        }))
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
