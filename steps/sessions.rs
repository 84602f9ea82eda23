//! Sessions step: the DynamoDB table `sessions-<suffix>` holding the web app's sessions.
//!
//! On-demand billing (PAY_PER_REQUEST: session traffic follows user traffic, nothing to size),
//! point-in-time recovery, server-side encryption with the stack's KMS key, TTL on the
//! configured attribute (`sessions.ttl_attribute`, epoch seconds) so expired sessions delete
//! themselves, and a global secondary index `by-user` for "all sessions of this user" (log out
//! everywhere). Hash key `session_id` (S); the index is keyed on `user_id` (S), projection ALL.
//!
//! A new table is CREATING for about 20 s; PITR and TTL can only be changed once it is ACTIVE,
//! so the table is recorded, then waited for, then completed. Teardown deletes it and waits
//! until DescribeTable stops answering (DELETING counts as still there).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, Projection, ProjectionType,
    ScalarAttributeType, SseSpecification, SseStatus, SseType, TableDescription, TableStatus, Tag,
    TimeToLiveSpecification, TimeToLiveStatus,
};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};

pub const TABLE: &str = "dynamodb:table";

/// Output keys other steps read.
pub const OUT_TABLE_NAME: &str = "sessions_table_name";
pub const OUT_TABLE_ARN: &str = "sessions_table_arn";

/// The table's hash key.
pub const HASH_KEY: &str = "session_id";
/// The index for lookups by user, and its hash key.
pub const USER_INDEX: &str = "by-user";
pub const USER_KEY: &str = "user_id";

/// How long a table may take to become ACTIVE or to go away (AWS: ~20 s, longer under load;
/// adding an index to a large table takes far longer, but this table is created with it).
const TABLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct Sessions;

fn attr(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .context("building a DynamoDB attribute definition")
}

fn hash_key(name: &str) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(KeyType::Hash)
        .build()
        .context("building a DynamoDB key schema")
}

fn sse(key_arn: &str) -> SseSpecification {
    SseSpecification::builder()
        .enabled(true)
        .sse_type(SseType::Kms)
        .kms_master_key_id(key_arn)
        .build()
}

/// The hash key attribute of a key schema.
fn hash_of(schema: &[KeySchemaElement]) -> Option<&str> {
    schema
        .iter()
        .find(|k| k.key_type() == &KeyType::Hash)
        .map(|k| k.attribute_name())
}

/// Whether the table is encrypted with `key_arn` (SSE type KMS). AWS reports no
/// SSEDescription at all for a table encrypted with the AWS-owned key.
fn sse_matches(t: &TableDescription, key_arn: &str) -> bool {
    t.sse_description().is_some_and(|d| {
        matches!(
            d.status(),
            Some(SseStatus::Enabled | SseStatus::Enabling | SseStatus::Updating)
        ) && d.sse_type() == Some(&SseType::Kms)
            && d.kms_master_key_arn() == Some(key_arn)
    })
}

fn is_on_demand(t: &TableDescription) -> bool {
    t.billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .is_some_and(|m| m == &BillingMode::PayPerRequest)
}

impl Sessions {
    async fn describe(ctx: &StepCtx, name: &str) -> Result<Option<TableDescription>> {
        Ok(ctx
            .aws()
            .dynamodb()
            .describe_table()
            .table_name(name)
            .send()
            .await
            .aws("dynamodb:DescribeTable", name)
            .not_found_ok()?
            .and_then(|o| o.table))
    }

    /// The table if it exists, is this stack's (stack tag checked: another stack's or a
    /// hand-made table of the same name is never adopted) and is not on its way out.
    async fn find(ctx: &StepCtx, name: &str) -> Result<Option<TableDescription>> {
        let Some(t) = Self::describe(ctx, name).await? else {
            return Ok(None);
        };
        let arn = t.table_arn().unwrap_or_default().to_string();
        let tags = ctx
            .aws()
            .dynamodb()
            .list_tags_of_resource()
            .resource_arn(&arn)
            .send()
            .await
            .aws("dynamodb:ListTagsOfResource", name)
            .not_found_ok()?;
        let Some(tags) = tags else {
            return Ok(None); // deleted between the two calls
        };
        let tag = tags
            .tags()
            .iter()
            .find(|t| t.key() == STACK_TAG)
            .map(|t| t.value());
        ctx.check_ours("DynamoDB table", name, tag)?;
        if t.table_status() == Some(&TableStatus::Deleting) {
            // An interrupted `down` deleted it: a new table can be created once it is gone.
            if !ctx.is_plan() {
                Self::wait_gone(ctx, name).await?;
            }
            return Ok(None);
        }
        if let Some(h) = hash_of(t.key_schema()) {
            if h != HASH_KEY {
                bail!(
                    "DynamoDB table {name} has hash key `{h}`, this tool expects `{HASH_KEY}`; \
                     a table's key cannot change: run `down` first"
                );
            }
        }
        Ok(Some(t))
    }

    /// Waits until the table (and its indexes) are ACTIVE; returns its description.
    async fn wait_active(ctx: &StepCtx, name: &str) -> Result<TableDescription> {
        ctx.wait_for(
            &format!("DynamoDB table {name} to be ACTIVE"),
            TABLE_TIMEOUT,
            || async {
                let t = Self::describe(ctx, name)
                    .await?
                    .with_context(|| format!("DynamoDB table {name} disappeared"))?;
                let indexes_ready = t
                    .global_secondary_indexes()
                    .iter()
                    .all(|i| i.index_status().is_none_or(|s| s == &IndexStatus::Active));
                Ok((t.table_status() == Some(&TableStatus::Active) && indexes_ready).then_some(t))
            },
        )
        .await
    }

    async fn wait_gone(ctx: &StepCtx, name: &str) -> Result<()> {
        ctx.wait_for(
            &format!("DynamoDB table {name} to be deleted"),
            TABLE_TIMEOUT,
            || async { Ok(Self::describe(ctx, name).await?.is_none().then_some(())) },
        )
        .await
    }

    async fn create(ctx: &StepCtx, name: &str, key_arn: &str) -> Result<Found> {
        let tags = ctx
            .tags(Some(name))
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .context("building DynamoDB tags")?;
        let index = GlobalSecondaryIndex::builder()
            .index_name(USER_INDEX)
            .key_schema(hash_key(USER_KEY)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .context("building the by-user index")?;
        let out = ctx
            .aws()
            .dynamodb()
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(HASH_KEY)?)
            .attribute_definitions(attr(USER_KEY)?)
            .key_schema(hash_key(HASH_KEY)?)
            .global_secondary_indexes(index)
            .sse_specification(sse(key_arn))
            .set_tags(Some(tags))
            .send()
            .await
            .aws("dynamodb:CreateTable", name)?;
        let arn = out
            .table_description()
            .and_then(|t| t.table_arn())
            .context("CreateTable returned no table ARN")?;
        Ok(Found::new(name).arn(arn))
    }

    /// Brings an existing table's billing, encryption and index in line (each UpdateTable
    /// puts the table in UPDATING, and DynamoDB takes one such change at a time).
    async fn fix_table(
        ctx: &StepCtx,
        name: &str,
        key_arn: &str,
        mut t: TableDescription,
    ) -> Result<()> {
        let ddb = ctx.aws().dynamodb();
        if !is_on_demand(&t) {
            ctx.change(
                TABLE,
                name,
                "switch to on-demand (PAY_PER_REQUEST) billing",
                || async {
                    ddb.update_table()
                        .table_name(name)
                        .billing_mode(BillingMode::PayPerRequest)
                        .send()
                        .await
                        .aws("dynamodb:UpdateTable", name)?;
                    Ok(())
                },
            )
            .await?;
            if !ctx.is_plan() {
                t = Self::wait_active(ctx, name).await?;
            }
        }
        if !key_arn.is_empty() && !is_pending(key_arn) && !sse_matches(&t, key_arn) {
            ctx.change(TABLE, name, "encrypt with the stack's KMS key", || async {
                ddb.update_table()
                    .table_name(name)
                    .sse_specification(sse(key_arn))
                    .send()
                    .await
                    .aws("dynamodb:UpdateTable", name)?;
                Ok(())
            })
            .await?;
            if !ctx.is_plan() {
                t = Self::wait_active(ctx, name).await?;
            }
        }
        match t
            .global_secondary_indexes()
            .iter()
            .find(|i| i.index_name() == Some(USER_INDEX))
        {
            Some(i) => {
                let h = hash_of(i.key_schema());
                if h != Some(USER_KEY) {
                    bail!(
                        "DynamoDB table {name}: index {USER_INDEX} is keyed on `{}`, not \
                         `{USER_KEY}`; an index's keys cannot change: delete the index and rerun \
                         `up`",
                        h.unwrap_or("?")
                    );
                }
            }
            None => {
                let what = format!("add global secondary index {USER_INDEX} on {USER_KEY}");
                ctx.change(TABLE, name, &what, || async {
                    let create = CreateGlobalSecondaryIndexAction::builder()
                        .index_name(USER_INDEX)
                        .key_schema(hash_key(USER_KEY)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .context("building the by-user index")?;
                    ddb.update_table()
                        .table_name(name)
                        .attribute_definitions(attr(USER_KEY)?)
                        .global_secondary_index_updates(
                            GlobalSecondaryIndexUpdate::builder().create(create).build(),
                        )
                        .send()
                        .await
                        .aws("dynamodb:UpdateTable", name)?;
                    Ok(())
                })
                .await?;
                if !ctx.is_plan() {
                    Self::wait_active(ctx, name).await?;
                }
            }
        }
        Ok(())
    }

    /// Point-in-time recovery on. For a table created in this run it is part of creating it;
    /// otherwise a change.
    async fn ensure_pitr(ctx: &StepCtx, name: &str, created: bool) -> Result<()> {
        let ddb = ctx.aws().dynamodb();
        let status = ddb
            .describe_continuous_backups()
            .table_name(name)
            .send()
            .await
            .aws("dynamodb:DescribeContinuousBackups", name)?
            .continuous_backups_description
            .and_then(|d| d.point_in_time_recovery_description)
            .and_then(|p| p.point_in_time_recovery_status);
        if status == Some(PointInTimeRecoveryStatus::Enabled) {
            return Ok(());
        }
        let apply = || async {
            let spec = PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .context("building the PITR specification")?;
            ddb.update_continuous_backups()
                .table_name(name)
                .point_in_time_recovery_specification(spec)
                .send()
                .await
                .aws("dynamodb:UpdateContinuousBackups", name)?;
            Ok(())
        };
        if created {
            apply().await
        } else {
            ctx.change(TABLE, name, "enable point-in-time recovery", apply)
                .await
        }
    }

    /// TTL on the configured attribute. DynamoDB allows one TTL change per table at a time
    /// (disabling takes up to an hour), so moving TTL to another attribute may need a rerun.
    async fn ensure_ttl(ctx: &StepCtx, name: &str, created: bool) -> Result<()> {
        let ddb = ctx.aws().dynamodb();
        let want = ctx.cfg().sessions.ttl_attribute.0.clone();
        let d = ddb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .aws("dynamodb:DescribeTimeToLive", name)?
            .time_to_live_description;
        let status = d
            .as_ref()
            .and_then(|d| d.time_to_live_status().cloned())
            .unwrap_or(TimeToLiveStatus::Disabled);
        let current = d.as_ref().and_then(|d| d.attribute_name()).unwrap_or("");
        let set = |enabled: bool, attribute: String| async move {
            let spec = TimeToLiveSpecification::builder()
                .enabled(enabled)
                .attribute_name(&attribute)
                .build()
                .context("building the TTL specification")?;
            ddb.update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .aws("dynamodb:UpdateTimeToLive", name)
                .with_context(|| {
                    format!(
                        "setting TTL on {name} (attribute `{attribute}`, enabled: {enabled}); \
                         DynamoDB takes up to an hour to finish a TTL change and refuses \
                         another meanwhile: rerun `up` later"
                    )
                })?;
            Ok(())
        };
        match status {
            TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling if current == want => Ok(()),
            TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling => {
                let what = format!("move TTL from attribute `{current}` to `{want}`");
                let old = current.to_string();
                ctx.change(TABLE, name, &what, || async {
                    set(false, old).await?;
                    set(true, want.clone()).await
                })
                .await
            }
            TimeToLiveStatus::Disabling => bail!(
                "DynamoDB table {name}: TTL is still being disabled (on `{current}`), and \
                 DynamoDB refuses to enable it on `{want}` until that finishes (up to an hour): \
                 rerun `up` later"
            ),
            _ if created => set(true, want.clone()).await,
            _ => {
                let what = format!("enable TTL on attribute `{want}`");
                ctx.change(TABLE, name, &what, || set(true, want.clone()))
                    .await
            }
        }
    }
}

#[async_trait]
impl Step for Sessions {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["kms"]
    }

    fn estimate_secs(&self) -> u64 {
        // CREATING lasts ~20 s; PITR and TTL follow.
        30
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let name = ctx.names().of("sessions");
        let key_arn = ctx.input_str(crate::steps::kms::OUT_KEY_ARN)?;
        let existing = Self::find(ctx, &name).await?;
        let created = existing.is_none();
        let found = existing
            .as_ref()
            .map(|t| Found::new(&name).arn(t.table_arn().unwrap_or_default()));
        let table = ctx
            .ensure(
                TABLE,
                &name,
                || async { Ok(found) },
                || Self::create(ctx, &name, &key_arn),
            )
            .await?;
        if table.is_pending() {
            return Ok(());
        }

        // PITR and TTL can only be set on an ACTIVE table (the table is recorded already).
        let active = match existing {
            Some(t) if t.table_status() == Some(&TableStatus::Active) || ctx.is_plan() => t,
            _ => Self::wait_active(ctx, &name).await?,
        };
        if !created {
            Self::fix_table(ctx, &name, &key_arn, active).await?;
        }
        Self::ensure_pitr(ctx, &name, created).await?;
        Self::ensure_ttl(ctx, &name, created).await?;

        ctx.set_output(OUT_TABLE_NAME, name.clone())?;
        ctx.set_output(OUT_TABLE_ARN, table.arn.clone().unwrap_or_default())?;
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let ddb = ctx.aws().dynamodb();
        for rec in ctx.records(Some(TABLE)) {
            ctx.check_cancelled()?;
            let name = rec.id.clone();
            // DeleteTable is refused while the table is CREATING or UPDATING (a crash right
            // after create) and again while DELETING (a rerun after a crash mid-down): wait
            // for ACTIVE, delete, then wait until the table is gone.
            ctx.wait_for(
                &format!("DynamoDB table {name} to be deleted"),
                TABLE_TIMEOUT,
                || async {
                    let Some(t) = Self::describe(ctx, &name).await? else {
                        return Ok(Some(()));
                    };
                    if t.table_status() == Some(&TableStatus::Active) {
                        ctx.check_cancelled()?;
                        ddb.delete_table()
                            .table_name(&name)
                            .send()
                            .await
                            .aws("dynamodb:DeleteTable", &name)
                            .not_found_ok()?;
                    }
                    Ok(None)
                },
            )
            .await?;
            ctx.deleted(TABLE, &rec.id)?;
        }
        for key in [OUT_TABLE_NAME, OUT_TABLE_ARN] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(Self::describe(ctx, &rec.id).await?.map(|t| {
            t.table_status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|| "exists".into())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::{BillingModeSummary, SseDescription};

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/k1";

    fn table(sse: Option<SseDescription>, billing: Option<BillingMode>) -> TableDescription {
        let mut b = TableDescription::builder()
            .table_name("sessions-prod")
            .key_schema(hash_key(HASH_KEY).unwrap());
        if let Some(s) = sse {
            b = b.sse_description(s);
        }
        if let Some(m) = billing {
            b = b.billing_mode_summary(BillingModeSummary::builder().billing_mode(m).build());
        }
        b.build()
    }

    fn kms(key: &str, status: SseStatus) -> SseDescription {
        SseDescription::builder()
            .status(status)
            .sse_type(SseType::Kms)
            .kms_master_key_arn(key)
            .build()
    }

    #[test]
    fn encryption_must_be_kms_with_the_stack_key() {
        assert!(sse_matches(
            &table(Some(kms(KEY, SseStatus::Enabled)), None),
            KEY
        ));
        assert!(sse_matches(
            &table(Some(kms(KEY, SseStatus::Updating)), None),
            KEY
        ));
        assert!(!sse_matches(
            &table(Some(kms("arn:other", SseStatus::Enabled)), None),
            KEY
        ));
        assert!(!sse_matches(
            &table(Some(kms(KEY, SseStatus::Disabled)), None),
            KEY
        ));
        // No SSEDescription: the AWS owned key.
        assert!(!sse_matches(&table(None, None), KEY));
    }

    #[test]
    fn billing_must_be_on_demand() {
        assert!(is_on_demand(&table(None, Some(BillingMode::PayPerRequest))));
        assert!(!is_on_demand(&table(None, Some(BillingMode::Provisioned))));
        // Old provisioned tables report no billing mode summary at all.
        assert!(!is_on_demand(&table(None, None)));
    }

    #[test]
    fn the_hash_key_is_read_from_the_schema() {
        let t = table(None, None);
        assert_eq!(hash_of(t.key_schema()), Some(HASH_KEY));
        assert_eq!(hash_of(&[]), None);
    }
}
