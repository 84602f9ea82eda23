//! `lambda:function`: a Lambda function deployed from a zip built by the caller, in VPC
//! subnets, with its environment encrypted by a customer-managed key, active tracing and
//! reserved concurrency.
//!
//! Idempotency: the code's SHA-256 (Lambda's `CodeSha256`, base64 of the zip's SHA-256, so
//! the caller's zip must be deterministic), the configuration and the concurrency are
//! compared with what is wanted, and only differences are applied (UpdateFunctionCode,
//! UpdateFunctionConfiguration, PutFunctionConcurrency). Lambda takes one update at a time:
//! each waits until the function is ready (`Active`, no update in progress) before and after.
//! A VPC function is `Pending` for a while after creation, as Lambda sets up its ENIs.
//!
//! The function has no `DeadLetterConfig`: it only applies to asynchronous invocations (an
//! SQS-triggered function is invoked synchronously, the queue's redrive moves failures), and
//! one left by an earlier version is drift and removed (an empty target).
//!
//! Teardown: DeleteFunction. The function's VPC ENIs outlive it for many minutes on AWS and
//! hold its subnets and security group: the network step's teardown waits for and removes
//! them (see [`crate::resources::ec2::network_interface::remove_lambda_enis`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    DeadLetterConfig, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State, TracingConfig, TracingMode, VpcConfig,
};
use futures::FutureExt as _;
use sha2::Digest as _;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "lambda:function";

/// A VPC function is `Pending` while Lambda sets up its ENIs (up to a few minutes on AWS).
const READY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct Function;

/// The function as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub name: String,
    pub runtime: Runtime,
    /// The `Handler` setting (`<module>.<function>`).
    pub handler: String,
    pub tracing: TracingMode,
    pub description: String,
    pub role_arn: String,
    pub memory_mb: i32,
    pub timeout_secs: i32,
    pub subnet_ids: Vec<String>,
    pub security_group_id: String,
    pub environment: BTreeMap<String, String>,
    pub kms_key_arn: String,
    pub reserved_concurrency: i32,
}

/// Lambda's `CodeSha256`: base64 of the SHA-256 of the zip.
pub fn code_sha256(zip: &[u8]) -> String {
    aws_smithy_types::base64::encode(sha2::Sha256::digest(zip).as_slice())
}

/// What differs between the function's configuration and the wanted one (empty: nothing).
/// Any `DeadLetterConfig` target is drift: the function has none (see the module doc).
pub fn config_drift(c: &FunctionConfiguration, w: &FunctionSpec) -> Vec<&'static str> {
    let mut d = Vec::new();
    if c.runtime() != Some(&w.runtime) {
        d.push("runtime");
    }
    if c.handler() != Some(w.handler.as_str()) {
        d.push("handler");
    }
    if c.role() != Some(w.role_arn.as_str()) {
        d.push("role");
    }
    if c.memory_size() != Some(w.memory_mb) {
        d.push("memory");
    }
    if c.timeout() != Some(w.timeout_secs) {
        d.push("timeout");
    }
    if c.description().unwrap_or_default() != w.description {
        d.push("description");
    }
    let vpc = c.vpc_config();
    let subnets: BTreeSet<&str> = vpc
        .map(|v| v.subnet_ids().iter().map(String::as_str).collect())
        .unwrap_or_default();
    let sgs: BTreeSet<&str> = vpc
        .map(|v| v.security_group_ids().iter().map(String::as_str).collect())
        .unwrap_or_default();
    if subnets != w.subnet_ids.iter().map(String::as_str).collect()
        || sgs != BTreeSet::from([w.security_group_id.as_str()])
    {
        d.push("VPC subnets/security groups");
    }
    let env: BTreeMap<String, String> = c
        .environment()
        .and_then(|e| e.variables())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if env != w.environment {
        d.push("environment");
    }
    if c.kms_key_arn() != Some(w.kms_key_arn.as_str()) {
        d.push("KMS key");
    }
    if c.tracing_config().and_then(|t| t.mode()) != Some(&w.tracing) {
        d.push("tracing");
    }
    if c.dead_letter_config()
        .and_then(|x| x.target_arn())
        .is_some_and(|t| !t.is_empty())
    {
        d.push("dead-letter target");
    }
    d
}

/// The function's configuration and reserved concurrency, if it exists; an error if it is
/// not this stack's.
pub async fn find(
    ctx: &StepCtx,
    name: &str,
) -> Result<Option<(FunctionConfiguration, Option<i32>)>> {
    let out = ctx
        .aws()
        .lambda()
        .get_function()
        .function_name(name)
        .send()
        .await
        .aws("lambda:GetFunction", name)
        .not_found_ok()?;
    let Some(out) = out else {
        return Ok(None);
    };
    ctx.check_ours(
        "Lambda function",
        name,
        out.tags()
            .and_then(|t| t.get(STACK_TAG))
            .map(String::as_str),
    )?;
    let concurrency = out
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions());
    Ok(out.configuration.map(|c| (c, concurrency)))
}

/// Waits until the function can be invoked and updated: `Active`, no update in progress.
pub async fn wait_ready(ctx: &StepCtx, name: &str) -> Result<()> {
    let lambda = ctx.aws().lambda();
    ctx.wait_for(
        &format!("Lambda function {name} to be ready"),
        READY_TIMEOUT,
        || async {
            let c = lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .aws("lambda:GetFunctionConfiguration", name)?;
            if c.state() == Some(&State::Failed)
                || c.last_update_status() == Some(&LastUpdateStatus::Failed)
            {
                bail!(
                    "Lambda function {name} failed: {}",
                    c.state_reason()
                        .or(c.last_update_status_reason())
                        .unwrap_or("no reason given")
                );
            }
            let ready = matches!(c.state(), None | Some(State::Active | State::Inactive))
                && c.last_update_status() != Some(&LastUpdateStatus::InProgress);
            Ok(ready.then_some(()))
        },
    )
    .await
}

fn vpc_config(w: &FunctionSpec) -> VpcConfig {
    VpcConfig::builder()
        .set_subnet_ids(Some(w.subnet_ids.clone()))
        .security_group_ids(&w.security_group_id)
        .build()
}

fn environment(w: &FunctionSpec) -> Environment {
    Environment::builder()
        .set_variables(Some(w.environment.clone().into_iter().collect()))
        .build()
}

fn tracing(w: &FunctionSpec) -> TracingConfig {
    TracingConfig::builder().mode(w.tracing.clone()).build()
}

/// An empty target: how UpdateFunctionConfiguration removes a dead-letter queue.
fn no_dead_letter() -> DeadLetterConfig {
    DeadLetterConfig::builder().target_arn("").build()
}

/// The function `name` while its inputs are not known yet (plan mode): recorded if it
/// exists, pending otherwise; nothing to compare with.
pub async fn ensure_unknown(ctx: &StepCtx, name: &str) -> Result<Found> {
    ctx.ensure(
        KIND,
        name,
        || async {
            Ok(find(ctx, name)
                .await?
                .map(|(c, _)| Found::new(name).arn(c.function_arn().unwrap_or_default())))
        },
        || async { bail!("inputs of {name} are not known yet") },
    )
    .await
}

/// Creates or updates the function from `zip`; returns its ARN (a placeholder in plan mode).
pub async fn ensure(ctx: &StepCtx, w: &FunctionSpec, zip: &[u8]) -> Result<Found> {
    let lambda = ctx.aws().lambda();
    let name = &w.name;
    let sha = code_sha256(zip);
    let existing = find(ctx, name).await?;
    let current = existing.clone();
    let function = ctx
        .ensure(
            KIND,
            name,
            || async {
                Ok(
                    current
                        .map(|(c, _)| Found::new(name).arn(c.function_arn().unwrap_or_default())),
                )
            },
            || async {
                // A role made moments ago may not be assumable by Lambda yet.
                let out = ctx
                    .retry_iam(&format!("Lambda function {name}"), || {
                        lambda
                            .create_function()
                            .function_name(name)
                            .runtime(w.runtime.clone())
                            .handler(&w.handler)
                            .role(&w.role_arn)
                            .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
                            .description(&w.description)
                            .memory_size(w.memory_mb)
                            .timeout(w.timeout_secs)
                            .vpc_config(vpc_config(w))
                            .environment(environment(w))
                            .kms_key_arn(&w.kms_key_arn)
                            .tracing_config(tracing(w))
                            .set_tags(Some(ctx.tags(Some(name)).into_iter().collect()))
                            .send()
                            .map(|r| r.aws("lambda:CreateFunction", name))
                    })
                    .await;
                let out = match out {
                    Ok(o) => o,
                    Err(e) => {
                        return Err(e).with_context(|| format!("creating Lambda function {name}"))
                    }
                };
                Ok(Found::new(name).arn(out.function_arn().unwrap_or_default()))
            },
        )
        .await?;
    if function.is_pending() {
        return Ok(function);
    }
    let concurrency = w.reserved_concurrency;
    let put_concurrency = || async {
        lambda
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(concurrency)
            .send()
            .await
            .aws("lambda:PutFunctionConcurrency", name)?;
        Ok(())
    };
    let Some((config, current_concurrency)) = existing else {
        // New: a VPC function is Pending while Lambda attaches it to the subnets.
        put_concurrency().await?;
        wait_ready(ctx, name).await?;
        return Ok(function);
    };

    if config.code_sha256() != Some(sha.as_str()) {
        ctx.change(KIND, name, "deploy the current handler code", || async {
            wait_ready(ctx, name).await?;
            lambda
                .update_function_code()
                .function_name(name)
                .zip_file(Blob::new(zip))
                .send()
                .await
                .aws("lambda:UpdateFunctionCode", name)?;
            wait_ready(ctx, name).await
        })
        .await?;
    }
    let drift = config_drift(&config, w);
    if !drift.is_empty() {
        let what = format!("update {}", drift.join(", "));
        ctx.change(KIND, name, &what, || async {
            wait_ready(ctx, name).await?;
            ctx.retry_iam(&format!("Lambda function {name}"), || {
                lambda
                    .update_function_configuration()
                    .function_name(name)
                    .runtime(w.runtime.clone())
                    .handler(&w.handler)
                    .role(&w.role_arn)
                    .description(&w.description)
                    .memory_size(w.memory_mb)
                    .timeout(w.timeout_secs)
                    .vpc_config(vpc_config(w))
                    .environment(environment(w))
                    .kms_key_arn(&w.kms_key_arn)
                    .tracing_config(tracing(w))
                    .dead_letter_config(no_dead_letter())
                    .send()
                    .map(|r| r.aws("lambda:UpdateFunctionConfiguration", name))
            })
            .await?;
            wait_ready(ctx, name).await
        })
        .await?;
    }
    if current_concurrency != Some(concurrency) {
        let what = format!("reserve {concurrency} concurrent executions");
        ctx.change(KIND, name, &what, put_concurrency).await?;
    }
    Ok(function)
}

/// The statement `sid` of the function's resource policy as (principal service, source
/// ARN), if it has one.
/// The resource policy of the function `name` as JSON; `None` without one.
pub async fn resource_policy(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> Result<Option<serde_json::Value>> {
    let out = lambda
        .get_policy()
        .function_name(name)
        .send()
        .await
        .aws("lambda:GetPolicy", name)
        .not_found_ok()?;
    out.and_then(|o| o.policy)
        .map(|p| serde_json::from_str(&p))
        .transpose()
        .with_context(|| format!("reading the resource policy of {name}"))
}

async fn permission(ctx: &StepCtx, name: &str, sid: &str) -> Result<Option<(String, String)>> {
    let Some(doc) = resource_policy(ctx.aws().lambda(), name).await? else {
        return Ok(None);
    };
    Ok(doc["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|st| st["Sid"] == sid)
        .map(|st| {
            (
                st["Principal"]["Service"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                st["Condition"]["ArnLike"]["AWS:SourceArn"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }))
}

/// Whether the resource policy `policy` (Lambda's JSON) lets the AWS service `principal`
/// invoke the function for `source_arn`: an Allow of `lambda:InvokeFunction` (or
/// `lambda:*`) to that service, conditioned on that source ARN or on none.
pub fn allows_service_invoke(
    policy: &serde_json::Value,
    principal: &str,
    source_arn: &str,
) -> bool {
    let has = |v: &serde_json::Value, want: &[&str]| match v {
        serde_json::Value::String(s) => want.contains(&s.as_str()),
        serde_json::Value::Array(a) => a
            .iter()
            .any(|x| x.as_str().is_some_and(|s| want.contains(&s))),
        _ => false,
    };
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|st| {
            let cond = &st["Condition"];
            let source = ["ArnLike", "ArnEquals", "StringEquals", "StringLike"]
                .iter()
                .find_map(|op| cond[op].get("AWS:SourceArn"));
            st["Effect"] == "Allow"
                && has(&st["Principal"]["Service"], &[principal])
                && has(&st["Action"], &["lambda:InvokeFunction", "lambda:*"])
                && source.is_none_or(|s| has(s, &[source_arn]))
        })
}

/// Lets the AWS service `principal` invoke the function `name` on behalf of `source_arn`
/// only (statement `sid` of its resource policy), or, when not `wanted`, removes that
/// statement. A statement with another principal or source is replaced. The statement is
/// part of the function: it goes with it.
pub async fn ensure_permission(
    ctx: &StepCtx,
    name: &str,
    sid: &str,
    principal: &str,
    source_arn: &str,
    wanted: bool,
) -> Result<()> {
    let lambda = ctx.aws().lambda();
    let current = permission(ctx, name, sid).await?;
    let right = current
        .as_ref()
        .is_some_and(|(p, s)| p == principal && s == source_arn);
    let remove = || async {
        lambda
            .remove_permission()
            .function_name(name)
            .statement_id(sid)
            .send()
            .await
            .aws("lambda:RemovePermission", name)
            .not_found_ok()?;
        Ok(())
    };
    if !wanted {
        if current.is_some() {
            ctx.change(KIND, name, &format!("remove permission {sid}"), remove)
                .await?;
        }
        return Ok(());
    }
    if right {
        return Ok(());
    }
    let what = format!("let {principal} invoke it for {source_arn}");
    ctx.change(KIND, name, &what, || async {
        if current.is_some() {
            remove().await?;
        }
        lambda
            .add_permission()
            .function_name(name)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal(principal)
            .source_arn(source_arn)
            .send()
            .await
            .aws("lambda:AddPermission", name)?;
        Ok(())
    })
    .await
}

/// Deletes the function `name`; "not found" counts as deleted. Its ENIs stay behind for a
/// while (see the module doc).
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let lambda = ctx.aws().lambda();
    ctx.retry_dependency(&format!("{KIND} {name}"), || async {
        lambda
            .delete_function()
            .function_name(name)
            .send()
            .await
            .map(|_| ())
            .aws("lambda:DeleteFunction", name)
    })
    .await
}

#[async_trait]
impl Provider for Function {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(ctx
            .aws()
            .lambda()
            .get_function_configuration()
            .function_name(&rec.id)
            .send()
            .await
            .aws("lambda:GetFunctionConfiguration", &rec.id)
            .not_found_ok()?
            .map(|c| {
                c.state()
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
    use super::allows_service_invoke;
    use serde_json::json;

    #[test]
    fn a_service_may_invoke_only_for_its_source() {
        let rule = "arn:aws:events:us-east-1:1:rule/r";
        let policy = |service: &str, source: &str| {
            json!({"Statement": [{"Sid": "s", "Effect": "Allow",
                "Principal": {"Service": service}, "Action": "lambda:InvokeFunction",
                "Condition": {"ArnLike": {"AWS:SourceArn": source}}}]})
        };
        let events = "events.amazonaws.com";
        assert!(allows_service_invoke(&policy(events, rule), events, rule));
        assert!(!allows_service_invoke(
            &policy(events, "arn:aws:events:us-east-1:1:rule/x"),
            events,
            rule
        ));
        assert!(!allows_service_invoke(
            &policy("sns.amazonaws.com", rule),
            events,
            rule
        ));
        assert!(!allows_service_invoke(&json!({}), events, rule));
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": {"Service": events},
            "Action": "lambda:InvokeFunction"}]});
        assert!(!allows_service_invoke(&deny, events, rule));
    }
}
