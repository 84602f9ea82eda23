//! `lambda:event-source-mapping`: the mapping that has Lambda poll an SQS queue and invoke a
//! function with batches, reporting partial batch failures (`ReportBatchItemFailures`: only
//! the failing messages become visible again), its concurrency capped
//! (`ScalingConfig.MaximumConcurrency`).
//!
//! Found by function and queue (a mapping being deleted does not count), tagged at creation
//! (mappings take tags since November 2024), updated in place when it drifted. Teardown:
//! DeleteEventSourceMapping is refused (ResourceInUseException) while the mapping is still
//! being created or updated, so it is retried until it settles; then the mapping is
//! `Deleting` for a while, and is waited for until gone: the function must not go before its
//! mapping.

use std::time::Duration;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_lambda::types::{EventSourceMappingConfiguration, FunctionResponseType, ScalingConfig};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "lambda:event-source-mapping";

/// A deleted mapping stays `Deleting` for a while.
const GONE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub struct EventSourceMapping;

/// The settings of a mapping as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedMapping {
    /// `Some(true)`: enabled, as the stack runs it; `None`: left as it is (the validator's
    /// circuit breaker disabled it and enables it again itself).
    pub enabled: Option<bool>,
    pub batch_size: i32,
    /// AWS requires a batching window of at least 1 s for SQS batches above 10.
    pub batching_window_secs: i32,
    /// `ScalingConfig.MaximumConcurrency` (2 to 1000), none for a reserved concurrency of 1.
    pub max_concurrency: Option<i32>,
}

/// A mapping the stack wants: `function` polling `queue_arn`.
#[derive(Debug, Clone)]
pub struct MappingSpec<'a> {
    /// The name it is recorded and reported under (`<function> <- <queue>`).
    pub label: &'a str,
    pub function: &'a str,
    /// The queue's ARN (a plan-mode placeholder until the queue exists).
    pub queue_arn: &'a str,
    pub settings: WantedMapping,
}

/// What differs between a mapping and the wanted one.
pub fn drift(m: &EventSourceMappingConfiguration, w: &WantedMapping) -> Vec<&'static str> {
    let mut d = Vec::new();
    if m.batch_size() != Some(w.batch_size) {
        d.push("batch size");
    }
    if m.maximum_batching_window_in_seconds().unwrap_or(0) != w.batching_window_secs {
        d.push("batching window");
    }
    if !m
        .function_response_types()
        .contains(&FunctionResponseType::ReportBatchItemFailures)
    {
        d.push("ReportBatchItemFailures");
    }
    if m.scaling_config().and_then(|s| s.maximum_concurrency()) != w.max_concurrency {
        d.push("maximum concurrency");
    }
    if w.enabled == Some(true) && matches!(m.state(), Some("Disabled" | "Disabling")) {
        d.push("enable");
    }
    d
}

/// Finds or creates the mapping `spec` (recorded by UUID with its queue's ARN) and updates
/// it if it drifted.
pub async fn ensure(ctx: &StepCtx, spec: &MappingSpec<'_>) -> Result<Found> {
    let lambda = ctx.aws().lambda();
    let (label, name, queue_arn) = (spec.label, spec.function, spec.queue_arn);
    let w = &spec.settings;
    let current = if is_pending(queue_arn) {
        None
    } else {
        lambda
            .list_event_source_mappings()
            .function_name(name)
            .event_source_arn(queue_arn)
            .send()
            .await
            .aws("lambda:ListEventSourceMappings", name)
            .not_found_ok()?
            .and_then(|o| {
                o.event_source_mappings()
                    .iter()
                    .find(|m| !matches!(m.state(), Some("Deleting")))
                    .cloned()
            })
    };
    let found = |uuid: &str| Found::new(uuid).attr("queue_arn", queue_arn);
    let existing = current.clone();
    let scaling = w
        .max_concurrency
        .map(|n| ScalingConfig::builder().maximum_concurrency(n).build());
    let mapping = ctx
        .ensure(
            KIND,
            label,
            || async { Ok(existing.as_ref().and_then(|m| m.uuid()).map(&found)) },
            || async {
                let out = lambda
                    .create_event_source_mapping()
                    .function_name(name)
                    .event_source_arn(queue_arn)
                    .batch_size(w.batch_size)
                    .maximum_batching_window_in_seconds(w.batching_window_secs)
                    .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                    .set_scaling_config(scaling.clone())
                    .enabled(w.enabled.unwrap_or(true))
                    .set_tags(Some(ctx.tags(Some(label)).into_iter().collect()))
                    .send()
                    .await
                    .aws("lambda:CreateEventSourceMapping", label)?;
                Ok(found(
                    out.uuid()
                        .context("CreateEventSourceMapping returned no UUID")?,
                ))
            },
        )
        .await?;
    let Some(current) = current else {
        return Ok(mapping);
    };
    let changed = drift(&current, w);
    if !changed.is_empty() {
        let what = format!("update {}", changed.join(", "));
        ctx.change(KIND, label, &what, || async {
            lambda
                .update_event_source_mapping()
                .uuid(&mapping.id)
                .batch_size(w.batch_size)
                .maximum_batching_window_in_seconds(w.batching_window_secs)
                .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                .set_scaling_config(scaling.clone())
                .set_enabled(w.enabled)
                .send()
                .await
                .aws("lambda:UpdateEventSourceMapping", label)?;
            Ok(())
        })
        .await?;
    }
    Ok(mapping)
}

/// Deletes the mapping `uuid` and waits until it is gone; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, uuid: &str) -> Result<()> {
    let lambda = ctx.aws().lambda();
    // Refused (ResourceInUseException) while the mapping is still being created or
    // updated: retried until it settles; "not found" counts as deleted.
    ctx.retry_dependency(&format!("event source mapping {uuid}"), || async {
        lambda
            .delete_event_source_mapping()
            .uuid(uuid)
            .send()
            .await
            .map(|_| ())
            .aws("lambda:DeleteEventSourceMapping", uuid)
    })
    .await?;
    // Deleting takes a while; the function must not go before its mapping.
    ctx.wait_for(
        &format!("event source mapping {uuid} to be deleted"),
        GONE_TIMEOUT,
        || async {
            let gone = lambda
                .get_event_source_mapping()
                .uuid(uuid)
                .send()
                .await
                .aws("lambda:GetEventSourceMapping", uuid)
                .not_found_ok()?
                .is_none();
            Ok(gone.then_some(()))
        },
    )
    .await
}

#[async_trait]
impl Provider for EventSourceMapping {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .lambda()
            .get_event_source_mapping()
            .uuid(&rec.id)
            .send()
            .await
            .aws("lambda:GetEventSourceMapping", &rec.id)
            .not_found_ok()?
            .map(|m| m.state().unwrap_or("exists").to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
