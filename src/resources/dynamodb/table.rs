//! `dynamodb:table`: an on-demand DynamoDB table with a string hash key, one global secondary
//! index (projection ALL), server-side encryption with a customer-managed KMS key,
//! point-in-time recovery and TTL on one attribute.
//!
//! A table is found by name with its stack tag checked (another stack's or a hand-made table
//! of the same name is never adopted). A new table is CREATING for about 20 s; PITR and TTL
//! can only be changed once it is ACTIVE, so the table is recorded, then waited for, then
//! completed. Each UpdateTable puts the table in UPDATING, and DynamoDB takes one such change
//! at a time, so every repair waits for ACTIVE again. A table's hash key and an index's keys
//! cannot change: a mismatch is an error, not a change. Teardown waits for ACTIVE (DeleteTable
//! is refused while CREATING, UPDATING or DELETING), deletes, and waits until DescribeTable
//! stops answering (DELETING counts as still there).

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
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "dynamodb:table";

pub struct Table;

/// A table the stack wants.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec<'a> {
    pub name: &'a str,
    /// The stack key's ARN (a plan-mode placeholder until the key exists).
    pub key_arn: &'a str,
    /// The table's hash key attribute (type S).
    pub hash_key: &'a str,
    /// The global secondary index and its hash key attribute (type S).
    pub index_name: &'a str,
    pub index_key: &'a str,
    /// The TTL attribute (epoch seconds).
    pub ttl_attribute: &'a str,
}

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

pub async fn describe(ctx: &StepCtx, name: &str) -> Result<Option<TableDescription>> {
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
async fn find(ctx: &StepCtx, spec: &TableSpec<'_>) -> Result<Option<TableDescription>> {
    let (name, hk) = (spec.name, spec.hash_key);
    let Some(t) = describe(ctx, name).await? else {
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
            wait_gone(ctx, name).await?;
        }
        return Ok(None);
    }
    if let Some(h) = hash_of(t.key_schema()) {
        if h != hk {
            bail!(
                "DynamoDB table {name} has hash key `{h}`, this tool expects `{hk}`; \
                 a table's key cannot change: run `down` first"
            );
        }
    }
    Ok(Some(t))
}

/// Waits until the table (and its indexes) are ACTIVE; returns its description.
pub async fn wait_active(ctx: &StepCtx, name: &str) -> Result<TableDescription> {
    ctx.wait_for(
        &format!("DynamoDB table {name} to be ACTIVE"),
        TABLE_TIMEOUT,
        || async {
            let t = describe(ctx, name)
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

pub async fn wait_gone(ctx: &StepCtx, name: &str) -> Result<()> {
    ctx.wait_for(
        &format!("DynamoDB table {name} to be deleted"),
        TABLE_TIMEOUT,
        || async { Ok(describe(ctx, name).await?.is_none().then_some(())) },
    )
    .await
}

async fn create(ctx: &StepCtx, spec: &TableSpec<'_>) -> Result<Found> {
    let TableSpec {
        name,
        key_arn,
        hash_key: hk,
        index_name: index,
        index_key: ik,
        ..
    } = *spec;
    let tags = ctx
        .tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building DynamoDB tags")?;
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(index)
        .key_schema(hash_key(ik)?)
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
        .attribute_definitions(attr(hk)?)
        .attribute_definitions(attr(ik)?)
        .key_schema(hash_key(hk)?)
        .global_secondary_indexes(gsi)
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
async fn fix_table(ctx: &StepCtx, spec: &TableSpec<'_>, mut t: TableDescription) -> Result<()> {
    let TableSpec {
        name,
        key_arn,
        index_name: index,
        index_key: ik,
        ..
    } = *spec;
    let ddb = ctx.aws().dynamodb();
    if !is_on_demand(&t) {
        ctx.change(
            KIND,
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
            t = wait_active(ctx, name).await?;
        }
    }
    if !key_arn.is_empty() && !is_pending(key_arn) && !sse_matches(&t, key_arn) {
        ctx.change(KIND, name, "encrypt with the stack's KMS key", || async {
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
            t = wait_active(ctx, name).await?;
        }
    }
    match t
        .global_secondary_indexes()
        .iter()
        .find(|i| i.index_name() == Some(index))
    {
        Some(i) => {
            let h = hash_of(i.key_schema());
            if h != Some(ik) {
                bail!(
                    "DynamoDB table {name}: index {index} is keyed on `{}`, not \
                     `{ik}`; an index's keys cannot change: delete the index and rerun \
                     `up`",
                    h.unwrap_or("?")
                );
            }
        }
        None => {
            let what = format!("add global secondary index {index} on {ik}");
            ctx.change(KIND, name, &what, || async {
                let create = CreateGlobalSecondaryIndexAction::builder()
                    .index_name(index)
                    .key_schema(hash_key(ik)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .context("building the by-user index")?;
                ddb.update_table()
                    .table_name(name)
                    .attribute_definitions(attr(ik)?)
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
                wait_active(ctx, name).await?;
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
        ctx.change(KIND, name, "enable point-in-time recovery", apply)
            .await
    }
}

/// TTL on the configured attribute. DynamoDB allows one TTL change per table at a time
/// (disabling takes up to an hour), so moving TTL to another attribute may need a rerun.
async fn ensure_ttl(ctx: &StepCtx, name: &str, want: &str, created: bool) -> Result<()> {
    let ddb = ctx.aws().dynamodb();
    let want = want.to_string();
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
            ctx.change(KIND, name, &what, || async {
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
            ctx.change(KIND, name, &what, || set(true, want.clone()))
                .await
        }
    }
}

/// Finds or creates the table `spec`, waits until it is ACTIVE, and brings billing,
/// encryption, index, PITR and TTL in line. Pending (plan mode) while it is still to be
/// created.
pub async fn ensure(ctx: &StepCtx, spec: &TableSpec<'_>) -> Result<Found> {
    let name = spec.name;
    let existing = find(ctx, spec).await?;
    let created = existing.is_none();
    let found = existing
        .as_ref()
        .map(|t| Found::new(name).arn(t.table_arn().unwrap_or_default()));
    let table = ctx
        .ensure(KIND, name, || async { Ok(found) }, || create(ctx, spec))
        .await?;
    if table.is_pending() {
        return Ok(table);
    }

    // PITR and TTL can only be set on an ACTIVE table (the table is recorded already).
    let active = match existing {
        Some(t) if t.table_status() == Some(&TableStatus::Active) || ctx.is_plan() => t,
        _ => wait_active(ctx, name).await?,
    };
    if !created {
        fix_table(ctx, spec, active).await?;
    }
    ensure_pitr(ctx, name, created).await?;
    ensure_ttl(ctx, name, spec.ttl_attribute, created).await?;
    Ok(table)
}

/// Deletes the table `name` and waits until it is gone.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let ddb = ctx.aws().dynamodb();
    // DeleteTable is refused while the table is CREATING or UPDATING (a crash right after
    // create) and again while DELETING (a rerun after a crash mid-down): wait for ACTIVE,
    // delete, then wait until the table is gone.
    ctx.wait_for(
        &format!("DynamoDB table {name} to be deleted"),
        TABLE_TIMEOUT,
        || async {
            let Some(t) = describe(ctx, name).await? else {
                return Ok(Some(()));
            };
            if t.table_status() == Some(&TableStatus::Active) {
                ctx.check_cancelled()?;
                ddb.delete_table()
                    .table_name(name)
                    .send()
                    .await
                    .aws("dynamodb:DeleteTable", name)
                    .not_found_ok()?;
            }
            Ok(None)
        },
    )
    .await
}

#[async_trait]
impl Provider for Table {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(describe(ctx, &rec.id).await?.map(|t| {
            t.table_status()
                .map(|s| s.as_str().to_string())
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
    use aws_sdk_dynamodb::types::{BillingModeSummary, SseDescription};

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/k1";

    fn table(sse: Option<SseDescription>, billing: Option<BillingMode>) -> TableDescription {
        let mut b = TableDescription::builder()
            .table_name("sessions-prod")
            .key_schema(hash_key("session_id").unwrap());
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
        assert_eq!(hash_of(t.key_schema()), Some("session_id"));
        assert_eq!(hash_of(&[]), None);
    }
}
