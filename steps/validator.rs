//! Validator step: the Lambda function `fn-validator-<suffix>` that validates the transactions
//! arriving on the SQS transaction queue.
//!
//! - The handler (`steps/validator/handler.py`, Python 3.12, its own unit tests next to it) is
//!   shipped inside the tool and zipped at run time, deterministically (fixed timestamps and
//!   permissions), so the zip's SHA-256 is stable and compares with Lambda's `CodeSha256`.
//! - It answers with a partial batch response (`batchItemFailures`): the event source mapping
//!   has `ReportBatchItemFailures`, so only the failing messages become visible again (after
//!   the queue's visibility timeout: that is the retry backoff) and, after the queue's
//!   `maxReceiveCount`, land in the DLQ through the queue's redrive policy. The function has
//!   no `DeadLetterConfig` of its own: it only applies to asynchronous invocations, and
//!   SQS-triggered ones are synchronous, so the queue's redrive is what moves failures. (A
//!   function-level DLQ would also need `sqs:SendMessage` on the DLQ in the role, or Lambda
//!   refuses the create with `InvalidParameterValueException`; an existing one left by an
//!   earlier version is removed.)
//! - Role `role-validator-<suffix>` (trusted by lambda.amazonaws.com) with the customer-managed
//!   policy `policy-validator-<suffix>`: receive/delete/change visibility on the transaction
//!   queue, GetItem on the session table, write its own log group, manage its VPC ENIs,
//!   decrypt with the stack key through SQS, Lambda and DynamoDB, send X-Ray traces.
//!   `ec2:DescribeNetworkInterfaces`, `ec2:DescribeSubnets`, `xray:PutTraceSegments` and
//!   `xray:PutTelemetryRecords` are the only grants on `Resource: "*"`: EC2 accepts no narrower
//!   resource for Describe calls (Lambda checks them when attaching the function to the VPC),
//!   and X-Ray supports no resource-level permissions for sending traces.
//! - Active X-Ray tracing (`TracingConfig.Mode = Active`, Security Hub Lambda.7): Lambda
//!   samples invocations and sends their segments with the function's role, hence the X-Ray
//!   grants; set at create and restored by the configuration drift check.
//! - Log group `/aws/lambda/fn-validator-<suffix>` created beforehand with the stack key and
//!   `logs.retention_days` (the role cannot create log groups, so Lambda never makes an
//!   unencrypted, never-expiring one).
//! - In the private subnets with the Lambda security group; reserved concurrency from
//!   `validator.reserved_concurrency`, which also caps the mapping's concurrency
//!   (`ScalingConfig.MaximumConcurrency`), so SQS polling never causes throttles that would
//!   count as receives and push good messages to the DLQ.
//!
//! Idempotency: code SHA-256, configuration, concurrency and the mapping are compared with
//! what is wanted, and only differences are applied (UpdateFunctionCode,
//! UpdateFunctionConfiguration, PutFunctionConcurrency, UpdateEventSourceMapping).
//!
//! Teardown: the mapping (waited until gone: it is `Deleting` for a while), the function, its
//! log group, then its policy and role. The function's VPC ENIs outlive it for many minutes on
//! AWS: the network step's teardown waits for and removes them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    DeadLetterConfig, Environment, EventSourceMappingConfiguration, FunctionCode,
    FunctionConfiguration, FunctionResponseType, LastUpdateStatus, Runtime, ScalingConfig, State,
    TracingConfig, TracingMode, VpcConfig,
};
use futures::FutureExt as _;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::iam::{self, RoleSpec};
use crate::resources::logs::log_group;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::{kms, queue, sessions};

pub const FUNCTION: &str = "lambda:function";
pub const MAPPING: &str = "lambda:event-source-mapping";
pub use crate::resources::logs::log_group::KIND as LOG_GROUP;

/// Output keys.
pub const OUT_FUNCTION_NAME: &str = "validator_function_name";
pub const OUT_FUNCTION_ARN: &str = "validator_function_arn";
pub const OUT_LOG_GROUP: &str = "validator_log_group";

/// Outputs of the network step this step reads.
pub const IN_PRIVATE_SUBNETS: &str = "private_subnet_ids";
pub const IN_LAMBDA_SG: &str = "sg_lambda_id";

/// The handler's source, shipped in the binary.
pub const HANDLER_SOURCE: &str = include_str!("validator/handler.py");
/// The handler's file name in the zip and the `Handler` setting (`<module>.<function>`).
pub const HANDLER_FILE: &str = "handler.py";
pub const HANDLER: &str = "handler.handler";
pub const RUNTIME: Runtime = Runtime::Python312;

/// Actions the policy grants on `Resource: "*"`: EC2 Describe calls take no resource, and
/// X-Ray has no resource-level permissions for sending traces (its IAM reference lists no
/// resource type for `PutTraceSegments` / `PutTelemetryRecords`).
pub const RESOURCE_STAR_ACTIONS: &[&str] = &[
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
];
/// The EC2 actions of [`RESOURCE_STAR_ACTIONS`].
const EC2_DESCRIBE_ACTIONS: &[&str] = &["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"];
/// What Lambda needs to send the traces of an actively traced function (what the AWS managed
/// `AWSXRayDaemonWriteAccess` policy grants, minus the sampling-rule reads Lambda does not
/// make with the function's role).
const XRAY_ACTIONS: &[&str] = &["xray:PutTelemetryRecords", "xray:PutTraceSegments"];
/// The function's tracing mode: Active (Lambda.7).
pub const TRACING_MODE: TracingMode = TracingMode::Active;

/// A VPC function is `Pending` while Lambda sets up its ENIs (up to a few minutes on AWS).
const READY_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A deleted mapping stays `Deleting` for a while.
const MAPPING_GONE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub struct Validator;

/// `fn-validator-<suffix>`.
pub fn function_name(suffix: &str) -> String {
    format!("fn-validator-{suffix}")
}

/// `/aws/lambda/fn-validator-<suffix>`: the group Lambda writes the function's logs to.
pub fn log_group_name(suffix: &str) -> String {
    format!("/aws/lambda/{}", function_name(suffix))
}

/// The deployment package: `handler.py` alone, with a fixed timestamp (1980-01-01, the zip
/// epoch) and permissions, so the same source always gives the same bytes and SHA-256.
pub fn build_zip() -> Result<Vec<u8>> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644);
        w.start_file(HANDLER_FILE, opts)
            .context("zipping the validator handler")?;
        w.write_all(HANDLER_SOURCE.as_bytes())
            .context("zipping the validator handler")?;
        w.finish().context("zipping the validator handler")?;
    }
    Ok(buf.into_inner())
}

/// Lambda's `CodeSha256`: base64 of the SHA-256 of the zip.
pub fn code_sha256(zip: &[u8]) -> String {
    aws_smithy_types::base64::encode(sha2::Sha256::digest(zip).as_slice())
}

/// Everything the role's policy is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInputs {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub suffix: String,
    pub kms_key_arn: String,
    pub queue_arn: String,
    pub sessions_table_arn: String,
    pub subnet_ids: Vec<String>,
    pub security_group_id: String,
}

impl PolicyInputs {
    pub fn is_pending(&self) -> bool {
        [
            &self.kms_key_arn,
            &self.queue_arn,
            &self.sessions_table_arn,
            &self.security_group_id,
        ]
        .iter()
        .any(|s| is_pending(s))
            || self.subnet_ids.iter().any(|s| is_pending(s))
    }

    fn ec2_arn(&self, what: &str) -> String {
        format!(
            "arn:{}:ec2:{}:{}:{what}",
            self.partition, self.region, self.account
        )
    }
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources})
}

/// Lambda may assume the role.
pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "LambdaAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The validator's policy: see the module documentation.
pub fn validator_policy(inp: &PolicyInputs) -> Value {
    let log_group = format!(
        "arn:{}:logs:{}:{}:log-group:{}",
        inp.partition,
        inp.region,
        inp.account,
        log_group_name(&inp.suffix)
    );
    let eni = inp.ec2_arn("network-interface/*");
    let mut create_on = vec![eni.clone()];
    create_on.extend(
        inp.subnet_ids
            .iter()
            .map(|s| inp.ec2_arn(&format!("subnet/{s}"))),
    );
    create_on.push(inp.ec2_arn(&format!("security-group/{}", inp.security_group_id)));
    let mut key = statement(
        "DecryptWithStackKey",
        &["kms:Decrypt"],
        vec![inp.kms_key_arn.clone()],
    );
    // Messages (SQS SSE-KMS), environment variables (Lambda) and session items (DynamoDB).
    key["Condition"] = json!({"StringEquals": {"kms:ViaService": [
        format!("dynamodb.{}.amazonaws.com", inp.region),
        format!("lambda.{}.amazonaws.com", inp.region),
        format!("sqs.{}.amazonaws.com", inp.region),
    ]}});
    json!({
        "Version": "2012-10-17",
        "Statement": [
            statement(
                "ConsumeTransactionQueue",
                &[
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                ],
                vec![inp.queue_arn.clone()],
            ),
            statement(
                "ReadSessions",
                &["dynamodb:GetItem"],
                vec![inp.sessions_table_arn.clone()],
            ),
            statement(
                "WriteOwnLogs",
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                vec![format!("{log_group}:*")],
            ),
            statement(
                "CreateVpcEnis",
                &["ec2:CreateNetworkInterface"],
                create_on,
            ),
            statement(
                "ManageVpcEnis",
                &[
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:DeleteNetworkInterface",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                vec![eni],
            ),
            // EC2 Describe calls accept no resource-level restriction.
            statement("DescribeVpcEnis", EC2_DESCRIBE_ACTIONS, vec!["*".into()]),
            // Neither does X-Ray: `Resource: "*"` is the only form these actions take.
            statement("SendTraces", XRAY_ACTIONS, vec!["*".into()]),
            key
        ]
    })
}

/// The function as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedFunction {
    pub description: String,
    pub role_arn: String,
    pub memory_mb: i32,
    pub timeout_secs: i32,
    pub subnet_ids: Vec<String>,
    pub security_group_id: String,
    pub environment: BTreeMap<String, String>,
    pub kms_key_arn: String,
}

/// What differs between the function's configuration and the wanted one (empty: nothing).
/// Any `DeadLetterConfig` target is drift: the function has none (see the module doc).
pub fn config_drift(c: &FunctionConfiguration, w: &WantedFunction) -> Vec<&'static str> {
    let mut d = Vec::new();
    if c.runtime() != Some(&RUNTIME) {
        d.push("runtime");
    }
    if c.handler() != Some(HANDLER) {
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
    if c.tracing_config().and_then(|t| t.mode()) != Some(&TRACING_MODE) {
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

/// The event source mapping as it should be.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedMapping {
    pub batch_size: i32,
    /// AWS requires a batching window of at least 1 s for SQS batches above 10.
    pub batching_window_secs: i32,
    /// `ScalingConfig.MaximumConcurrency` (2 to 1000), none for a reserved concurrency of 1.
    pub max_concurrency: Option<i32>,
}

impl WantedMapping {
    pub fn from_config(cfg: &crate::config::Config) -> WantedMapping {
        let v = &cfg.validator;
        WantedMapping {
            batch_size: v.batch_size.0,
            batching_window_secs: if v.batch_size.0 > 10 { 1 } else { 0 },
            max_concurrency: (v.reserved_concurrency.0 >= 2)
                .then_some(v.reserved_concurrency.0.min(1000)),
        }
    }
}

/// What differs between a mapping and the wanted one.
pub fn mapping_drift(m: &EventSourceMappingConfiguration, w: &WantedMapping) -> Vec<&'static str> {
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
    if matches!(m.state(), Some("Disabled" | "Disabling")) {
        d.push("enable");
    }
    d
}

impl Validator {
    /// The function's configuration and tags, if it exists; an error if it is not this
    /// stack's.
    async fn find_function(
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
    async fn wait_ready(ctx: &StepCtx, name: &str) -> Result<()> {
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

    async fn ensure_role(ctx: &StepCtx, inp: &PolicyInputs) -> Result<(Found, RoleSpec)> {
        let s = ctx.suffix();
        let doc = validator_policy(inp);
        let spec = RoleSpec {
            service: None,
            role: format!("role-validator-{s}"),
            policy: format!("policy-validator-{s}"),
            trust: trust_policy(),
            document: Some(doc),
            description: format!("fintech-infra {s}: transaction validator Lambda function"),
            policy_description: format!("fintech-infra {s}: transaction validator"),
            resource_star_actions: RESOURCE_STAR_ACTIONS,
        };
        let role = iam::ensure_role_with_policy(
            ctx,
            &spec,
            &inp.partition,
            &inp.account,
            inp.is_pending(),
        )
        .await?;
        Ok((role, spec))
    }

    fn vpc_config(w: &WantedFunction) -> VpcConfig {
        VpcConfig::builder()
            .set_subnet_ids(Some(w.subnet_ids.clone()))
            .security_group_ids(&w.security_group_id)
            .build()
    }

    fn environment(w: &WantedFunction) -> Environment {
        Environment::builder()
            .set_variables(Some(w.environment.clone().into_iter().collect()))
            .build()
    }

    fn tracing() -> TracingConfig {
        TracingConfig::builder().mode(TRACING_MODE).build()
    }

    /// An empty target: how UpdateFunctionConfiguration removes a dead-letter queue.
    fn no_dead_letter() -> DeadLetterConfig {
        DeadLetterConfig::builder().target_arn("").build()
    }

    /// Creates or updates the function; returns its ARN (a placeholder in plan mode).
    async fn ensure_function(ctx: &StepCtx, w: &WantedFunction) -> Result<Found> {
        let lambda = ctx.aws().lambda();
        let name = function_name(ctx.suffix());
        let name = &name;
        let zip = build_zip()?;
        let sha = code_sha256(&zip);
        let existing = Self::find_function(ctx, name).await?;
        let current = existing.clone();
        let function = ctx
            .ensure(
                FUNCTION,
                name,
                || async {
                    Ok(current
                        .map(|(c, _)| Found::new(name).arn(c.function_arn().unwrap_or_default())))
                },
                || async {
                    // A role made moments ago may not be assumable by Lambda yet.
                    let out = ctx
                        .retry_iam(&format!("Lambda function {name}"), || {
                            lambda
                                .create_function()
                                .function_name(name)
                                .runtime(RUNTIME)
                                .handler(HANDLER)
                                .role(&w.role_arn)
                                .code(
                                    FunctionCode::builder()
                                        .zip_file(Blob::new(zip.clone()))
                                        .build(),
                                )
                                .description(&w.description)
                                .memory_size(w.memory_mb)
                                .timeout(w.timeout_secs)
                                .vpc_config(Self::vpc_config(w))
                                .environment(Self::environment(w))
                                .kms_key_arn(&w.kms_key_arn)
                                .tracing_config(Self::tracing())
                                .set_tags(Some(ctx.tags(Some(name)).into_iter().collect()))
                                .send()
                                .map(|r| r.aws("lambda:CreateFunction", name))
                        })
                        .await;
                    let out = match out {
                        Ok(o) => o,
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("creating Lambda function {name}"))
                        }
                    };
                    Ok(Found::new(name).arn(out.function_arn().unwrap_or_default()))
                },
            )
            .await?;
        if function.is_pending() {
            return Ok(function);
        }
        let concurrency = ctx.cfg().validator.reserved_concurrency.0;
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
            Self::wait_ready(ctx, name).await?;
            return Ok(function);
        };

        if config.code_sha256() != Some(sha.as_str()) {
            ctx.change(
                FUNCTION,
                name,
                "deploy the current handler code",
                || async {
                    Self::wait_ready(ctx, name).await?;
                    lambda
                        .update_function_code()
                        .function_name(name)
                        .zip_file(Blob::new(zip.clone()))
                        .send()
                        .await
                        .aws("lambda:UpdateFunctionCode", name)?;
                    Self::wait_ready(ctx, name).await
                },
            )
            .await?;
        }
        let drift = config_drift(&config, w);
        if !drift.is_empty() {
            let what = format!("update {}", drift.join(", "));
            ctx.change(FUNCTION, name, &what, || async {
                Self::wait_ready(ctx, name).await?;
                ctx.retry_iam(&format!("Lambda function {name}"), || {
                    lambda
                        .update_function_configuration()
                        .function_name(name)
                        .runtime(RUNTIME)
                        .handler(HANDLER)
                        .role(&w.role_arn)
                        .description(&w.description)
                        .memory_size(w.memory_mb)
                        .timeout(w.timeout_secs)
                        .vpc_config(Self::vpc_config(w))
                        .environment(Self::environment(w))
                        .kms_key_arn(&w.kms_key_arn)
                        .tracing_config(Self::tracing())
                        .dead_letter_config(Self::no_dead_letter())
                        .send()
                        .map(|r| r.aws("lambda:UpdateFunctionConfiguration", name))
                })
                .await?;
                Self::wait_ready(ctx, name).await
            })
            .await?;
        }
        if current_concurrency != Some(concurrency) {
            let what = format!("reserve {concurrency} concurrent executions");
            ctx.change(FUNCTION, name, &what, put_concurrency).await?;
        }
        Ok(function)
    }

    async fn ensure_mapping(ctx: &StepCtx, queue_arn: &str) -> Result<()> {
        let lambda = ctx.aws().lambda();
        let name = function_name(ctx.suffix());
        let name = &name;
        let w = WantedMapping::from_config(ctx.cfg());
        let label = format!("{name} <- {}", queue::queue_name(ctx.suffix()));
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
                MAPPING,
                &label,
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
                        .enabled(true)
                        .set_tags(Some(ctx.tags(Some(&label)).into_iter().collect()))
                        .send()
                        .await
                        .aws("lambda:CreateEventSourceMapping", &label)?;
                    Ok(found(
                        out.uuid()
                            .context("CreateEventSourceMapping returned no UUID")?,
                    ))
                },
            )
            .await?;
        let Some(current) = current else {
            return Ok(());
        };
        let drift = mapping_drift(&current, &w);
        if !drift.is_empty() {
            let what = format!("update {}", drift.join(", "));
            ctx.change(MAPPING, &label, &what, || async {
                lambda
                    .update_event_source_mapping()
                    .uuid(&mapping.id)
                    .batch_size(w.batch_size)
                    .maximum_batching_window_in_seconds(w.batching_window_secs)
                    .function_response_types(FunctionResponseType::ReportBatchItemFailures)
                    .set_scaling_config(scaling.clone())
                    .enabled(true)
                    .send()
                    .await
                    .aws("lambda:UpdateEventSourceMapping", &label)?;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Step for Validator {
    fn name(&self) -> &'static str {
        "validator"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["network", "kms", "queue", "sessions"]
    }

    fn estimate_secs(&self) -> u64 {
        // IAM propagation (~10 s), CreateFunction, then Pending while Lambda attaches the
        // function to the VPC (up to a minute or two).
        90
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let kms_key_arn = ctx.input_str(kms::OUT_KEY_ARN)?;
        // `aws` while the key is still to be created (a placeholder is not an ARN).
        let partition = iam::partition_of(&kms_key_arn).to_string();
        let mut subnet_ids = ctx.input_list(IN_PRIVATE_SUBNETS)?;
        subnet_ids.sort();
        let inp = PolicyInputs {
            partition,
            region: ctx.region().to_string(),
            account: ctx.account_id().await?,
            suffix: ctx.suffix().to_string(),
            kms_key_arn: kms_key_arn.clone(),
            queue_arn: ctx.input_str(queue::OUT_QUEUE_ARN)?,
            sessions_table_arn: ctx.input_str(sessions::OUT_TABLE_ARN)?,
            subnet_ids,
            security_group_id: ctx.input_str(IN_LAMBDA_SG)?,
        };
        let log_group =
            log_group::ensure(ctx, &log_group_name(ctx.suffix()), &kms_key_arn, &[]).await?;
        let (role, _) = Self::ensure_role(ctx, &inp).await?;
        let v = &ctx.cfg().validator;
        let wanted = WantedFunction {
            description: format!(
                "fintech-infra {}: validates transactions from the transaction queue",
                ctx.suffix()
            ),
            role_arn: role.arn.clone().unwrap_or_else(|| role.id.clone()),
            memory_mb: v.memory_mb.0,
            timeout_secs: v.timeout_secs.0,
            subnet_ids: inp.subnet_ids.clone(),
            security_group_id: inp.security_group_id.clone(),
            environment: BTreeMap::from([
                (
                    "SESSIONS_TABLE".to_string(),
                    ctx.input_str(sessions::OUT_TABLE_NAME)?,
                ),
                (
                    "SESSIONS_TTL_ATTRIBUTE".to_string(),
                    ctx.cfg().sessions.ttl_attribute.0.clone(),
                ),
            ]),
            kms_key_arn,
        };
        let function = if role.is_pending() || inp.is_pending() {
            // Plan mode: nothing to compare with yet.
            let name = function_name(ctx.suffix());
            ctx.ensure(
                FUNCTION,
                &name,
                || async {
                    Ok(Self::find_function(ctx, &name)
                        .await?
                        .map(|(c, _)| Found::new(&name).arn(c.function_arn().unwrap_or_default())))
                },
                || async { bail!("inputs of {name} are not known yet") },
            )
            .await?
        } else {
            Self::ensure_function(ctx, &wanted).await?
        };
        Self::ensure_mapping(ctx, &inp.queue_arn).await?;

        if !function.is_pending() && !log_group.is_pending() {
            ctx.set_output(OUT_FUNCTION_NAME, function_name(ctx.suffix()))?;
            ctx.set_output(OUT_FUNCTION_ARN, function.arn.clone().unwrap_or_default())?;
            ctx.set_output(OUT_LOG_GROUP, log_group.id.clone())?;
        }
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let lambda = ctx.aws().lambda();
        for rec in ctx.records(Some(MAPPING)) {
            ctx.check_cancelled()?;
            let uuid = rec.id.clone();
            // Refused (ResourceInUseException) while the mapping is still being created or
            // updated: retried until it settles; "not found" counts as deleted.
            ctx.retry_dependency(&format!("event source mapping {uuid}"), || async {
                lambda
                    .delete_event_source_mapping()
                    .uuid(&uuid)
                    .send()
                    .await
                    .map(|_| ())
                    .aws("lambda:DeleteEventSourceMapping", &uuid)
            })
            .await?;
            // Deleting takes a while; the function must not go before its mapping.
            ctx.wait_for(
                &format!("event source mapping {uuid} to be deleted"),
                MAPPING_GONE_TIMEOUT,
                || async {
                    let gone = lambda
                        .get_event_source_mapping()
                        .uuid(&uuid)
                        .send()
                        .await
                        .aws("lambda:GetEventSourceMapping", &uuid)
                        .not_found_ok()?
                        .is_none();
                    Ok(gone.then_some(()))
                },
            )
            .await?;
            ctx.deleted(MAPPING, &rec.id)?;
        }

        ctx.delete_recorded(FUNCTION, |rec| async move {
            lambda
                .delete_function()
                .function_name(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("lambda:DeleteFunction", &rec.id)
        })
        .await?;

        crate::resources::delete_recorded(ctx, LOG_GROUP).await?;

        iam::delete_recorded_roles(ctx).await?;
        for key in [OUT_FUNCTION_NAME, OUT_FUNCTION_ARN, OUT_LOG_GROUP] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let lambda = ctx.aws().lambda();
        match rec.kind.as_str() {
            FUNCTION => Ok(lambda
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
                })),
            MAPPING => Ok(lambda
                .get_event_source_mapping()
                .uuid(&rec.id)
                .send()
                .await
                .aws("lambda:GetEventSourceMapping", &rec.id)
                .not_found_ok()?
                .map(|m| m.state().unwrap_or("exists").to_string())),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::{EnvironmentResponse, VpcConfigResponse};

    fn inputs() -> PolicyInputs {
        PolicyInputs {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            suffix: "prod".into(),
            kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
            queue_arn: "arn:aws:sqs:us-east-1:123456789012:queue-transactions-prod".into(),
            sessions_table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/sessions-prod"
                .into(),
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            security_group_id: "sg-l".into(),
        }
    }

    #[test]
    fn zip_is_deterministic_and_holds_the_handler() {
        let a = build_zip().unwrap();
        let b = build_zip().unwrap();
        assert_eq!(a, b);
        assert_eq!(code_sha256(&a), code_sha256(&b));
        assert_eq!(code_sha256(&a).len(), 44, "base64 of 32 bytes");
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        assert_eq!(z.len(), 1);
        let mut f = z.by_name(HANDLER_FILE).unwrap();
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o644));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut f, &mut text).unwrap();
        assert_eq!(text, HANDLER_SOURCE);
        assert!(text.contains("batchItemFailures") && text.contains("def handler("));
    }

    #[test]
    fn code_sha256_is_base64_of_sha256() {
        // sha256("") = e3b0c442...; base64 of it:
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn policy_is_least_privilege() {
        let doc = validator_policy(&inputs());
        iam::check_least_privilege_with(&doc, RESOURCE_STAR_ACTIONS).unwrap();
        // The strict rule set (no Resource "*" at all besides ECR's token) rejects it for the
        // Describe statement (the first on "*").
        let e = iam::check_least_privilege(&doc).unwrap_err();
        assert!(e.contains("DescribeVpcEnis"), "{e}");
        // Exactly these four actions on "*", and nothing else there.
        let mut on_star: Vec<&str> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|st| st["Resource"].as_array().unwrap().iter().any(|r| r == "*"))
            .flat_map(|st| st["Action"].as_array().unwrap().iter())
            .map(|a| a.as_str().unwrap())
            .collect();
        on_star.sort();
        assert_eq!(on_star, RESOURCE_STAR_ACTIONS);
        let s = doc.to_string();
        for a in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
            "dynamodb:GetItem",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
            "kms:Decrypt",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        ] {
            assert!(s.contains(a), "{a} missing");
        }
        for forbidden in ["sqs:SendMessage", "dynamodb:PutItem", "logs:CreateLogGroup"] {
            assert!(!s.contains(forbidden), "{forbidden} granted");
        }
        for st in doc["Statement"].as_array().unwrap() {
            let resources = st["Resource"].as_array().unwrap();
            if resources.iter().any(|r| r == "*") {
                assert!(
                    st["Sid"] == "DescribeVpcEnis" || st["Sid"] == "SendTraces",
                    "{st}"
                );
            }
            for a in st["Action"].as_array().unwrap() {
                assert!(!a.as_str().unwrap().contains('*'), "wildcard action {a}");
            }
        }
        assert!(s.contains(
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn-validator-prod:*"
        ));
        assert!(s.contains("arn:aws:ec2:us-east-1:123456789012:subnet/subnet-a"));
        assert!(s.contains("arn:aws:ec2:us-east-1:123456789012:security-group/sg-l"));
        assert_eq!(
            trust_policy()["Statement"][0]["Principal"]["Service"],
            "lambda.amazonaws.com"
        );
    }

    fn wanted() -> WantedFunction {
        WantedFunction {
            description: "d".into(),
            role_arn: "arn:aws:iam::123456789012:role/role-validator-prod".into(),
            memory_mb: 256,
            timeout_secs: 30,
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            security_group_id: "sg-l".into(),
            environment: BTreeMap::from([("SESSIONS_TABLE".into(), "sessions-prod".into())]),
            kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
        }
    }

    fn config_of(
        w: &WantedFunction,
    ) -> aws_sdk_lambda::types::builders::FunctionConfigurationBuilder {
        FunctionConfiguration::builder()
            .runtime(RUNTIME)
            .handler(HANDLER)
            .role(&w.role_arn)
            .memory_size(w.memory_mb)
            .timeout(w.timeout_secs)
            .description(&w.description)
            .vpc_config(
                VpcConfigResponse::builder()
                    .subnet_ids("subnet-b")
                    .subnet_ids("subnet-a")
                    .security_group_ids("sg-l")
                    .vpc_id("vpc-123abc")
                    .build(),
            )
            .environment(
                EnvironmentResponse::builder()
                    .set_variables(Some(w.environment.clone().into_iter().collect()))
                    .build(),
            )
            .kms_key_arn(&w.kms_key_arn)
            .tracing_config(
                aws_sdk_lambda::types::TracingConfigResponse::builder()
                    .mode(TracingMode::Active)
                    .build(),
            )
    }

    #[test]
    fn configuration_drift() {
        let w = wanted();
        assert!(config_drift(&config_of(&w).build(), &w).is_empty());
        let c = config_of(&w).memory_size(512).timeout(3).build();
        assert_eq!(config_drift(&c, &w), ["memory", "timeout"]);
        let c = config_of(&w)
            .vpc_config(VpcConfigResponse::builder().subnet_ids("subnet-a").build())
            .build();
        assert_eq!(config_drift(&c, &w), ["VPC subnets/security groups"]);
        // A dead-letter target left by an earlier version is drift (it is removed); the
        // empty target Lambda may report after such a removal is not.
        let c = config_of(&w)
            .dead_letter_config(DeadLetterConfig::builder().target_arn("arn:other").build())
            .build();
        assert_eq!(config_drift(&c, &w), ["dead-letter target"]);
        let c = config_of(&w)
            .dead_letter_config(DeadLetterConfig::builder().target_arn("").build())
            .build();
        assert!(config_drift(&c, &w).is_empty());
        let c = config_of(&w).runtime(Runtime::Python39).build();
        assert_eq!(config_drift(&c, &w), ["runtime"]);
        // PassThrough (Lambda's default) or no tracing reported: not Active, drift.
        let c = config_of(&w)
            .tracing_config(
                aws_sdk_lambda::types::TracingConfigResponse::builder()
                    .mode(TracingMode::PassThrough)
                    .build(),
            )
            .build();
        assert_eq!(config_drift(&c, &w), ["tracing"]);
        let c = config_of(&w).set_tracing_config(None).build();
        assert_eq!(config_drift(&c, &w), ["tracing"]);
    }

    #[test]
    fn mapping_settings_and_drift() {
        let mut cfg = crate::config::Config::default();
        let w = WantedMapping::from_config(&cfg);
        assert_eq!(
            w,
            WantedMapping {
                batch_size: 10,
                batching_window_secs: 0,
                max_concurrency: Some(5)
            }
        );
        cfg.validator.batch_size = crate::config::BatchSize(100);
        cfg.validator.reserved_concurrency = crate::config::ReservedConcurrency(1);
        let big = WantedMapping::from_config(&cfg);
        assert_eq!((big.batching_window_secs, big.max_concurrency), (1, None));

        let good = EventSourceMappingConfiguration::builder()
            .batch_size(10)
            .function_response_types(FunctionResponseType::ReportBatchItemFailures)
            .scaling_config(ScalingConfig::builder().maximum_concurrency(5).build())
            .state("Enabled")
            .build();
        assert!(mapping_drift(&good, &w).is_empty());
        let bad = EventSourceMappingConfiguration::builder()
            .batch_size(5)
            .state("Disabled")
            .build();
        assert_eq!(
            mapping_drift(&bad, &w),
            [
                "batch size",
                "ReportBatchItemFailures",
                "maximum concurrency",
                "enable"
            ]
        );
    }

    #[test]
    fn names() {
        assert_eq!(function_name("prod"), "fn-validator-prod");
        assert_eq!(log_group_name("prod"), "/aws/lambda/fn-validator-prod");
        assert!(function_name(&"s".repeat(23)).len() <= 64);
        assert!(format!("role-validator-{}", "s".repeat(23)).len() <= 64);
    }
}
