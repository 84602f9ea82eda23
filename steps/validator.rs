//! Validator step: the Lambda function `fn-validator-<suffix>` that validates the transactions
//! arriving on the SQS transaction queue.
//!
//! - The handler (`steps/validator/handler.py`, Python 3.12, its own unit tests next to it) is
//!   shipped inside the tool and zipped at run time, deterministically (fixed timestamps and
//!   permissions), so the zip's SHA-256 is stable and compares with Lambda's `CodeSha256`.
//! - It answers with a partial batch response (`batchItemFailures`): the event source mapping
//!   has `ReportBatchItemFailures`, so only the failing messages become visible again (after
//!   the delay the handler sets on each with `ChangeMessageVisibility`: `retry_base_secs` x
//!   2^(receives - 1), at most `retry_max_secs`, from its `TRANSACTION_QUEUE_URL`,
//!   `RETRY_BASE_SECS` and `RETRY_MAX_SECS` environment; seed 002's exponential backoff) and,
//!   after the queue's
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
//! - Circuit breaker (seed 002, `validator.breaker`): the handler reports each batch's
//!   processed and failed transactions as metrics; the alarms step's
//!   `alarm-validator-breaker-<suffix>` invokes the function on ALARM and on OK, and the
//!   handler disables or enables its own event source mappings. This step lets that alarm
//!   (and only it) invoke the function (resource policy statement `breaker-alarm` for
//!   `lambda.alarms.cloudwatch.amazonaws.com`), lets the role list mappings and update those
//!   of this function (condition `lambda:FunctionArn`), and leaves a mapping alone while the
//!   alarm is in ALARM (enabling it would undo the breaker). A lost alarm invocation is
//!   caught by the scheduled reconciler ([`breaker`]).
//!
//! Idempotency: code SHA-256, configuration, concurrency and the mapping are compared with
//! what is wanted, and only differences are applied (UpdateFunctionCode,
//! UpdateFunctionConfiguration, PutFunctionConcurrency, UpdateEventSourceMapping): see
//! [`crate::resources::lambda::function`] and [`crate::resources::lambda::event_source_mapping`].
//!
//! `down` takes the order from the edges in `src/resources/deps.rs`. `BUILT_ON`: the mapping
//! is built on the function and the queue, so it goes first (the event source mapping
//! provider waits until it is gone: it is `Deleting` for a while); the function is built on
//! its role, subnets, security groups, log group, key and queues, which go after it. The
//! function's VPC ENIs outlive it for many minutes on AWS: a `DELETE_RULES` rule holds the
//! subnets and security groups back until the functions are gone and its hook has waited for
//! and deleted those ENIs.

/// The `[validator]` section this step owns (re-exported by `crate::config`).
pub mod config;
/// The breaker's scheduled reconciler and its state.
pub mod breaker;

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_lambda::types::{Runtime, TracingMode};
use serde_json::{json, Value};

use crate::resources::iam::{self, partition_of, RoleSpec};
use crate::resources::lambda::event_source_mapping::{self, MappingSpec, WantedMapping};
use crate::resources::lambda::function::{self, FunctionSpec};
use crate::resources::logs::log_group;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::outputs::{kms, queue, sessions};

pub use crate::outputs::validator::*;

pub const FUNCTION: &str = function::KIND;
pub const MAPPING: &str = event_source_mapping::KIND;
pub use crate::resources::lambda::function::code_sha256;
pub use crate::resources::logs::log_group::KIND as LOG_GROUP;

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
    // The breaker lists its function's mappings: Lambda's ListEventSourceMappings takes no
    // resource (its IAM reference lists none).
    "lambda:ListEventSourceMappings",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
];

pub use crate::outputs::validator::BREAKER_ALARM;
/// The statement of the function's resource policy that lets the breaker alarm invoke it.
pub const BREAKER_PERMISSION: &str = "breaker-alarm";
/// CloudWatch's principal for alarm actions that invoke a Lambda function.
pub const ALARM_PRINCIPAL: &str = "lambda.alarms.cloudwatch.amazonaws.com";
/// The EC2 actions of [`RESOURCE_STAR_ACTIONS`].
const EC2_DESCRIBE_ACTIONS: &[&str] = &["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"];
/// What Lambda needs to send the traces of an actively traced function (what the AWS managed
/// `AWSXRayDaemonWriteAccess` policy grants, minus the sampling-rule reads Lambda does not
/// make with the function's role).
const XRAY_ACTIONS: &[&str] = &["xray:PutTelemetryRecords", "xray:PutTraceSegments"];
/// The function's tracing mode: Active (Lambda.7).
pub const TRACING_MODE: TracingMode = TracingMode::Active;

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
    /// `validator.breaker`: the function pauses and resumes its own event source mappings.
    pub breaker: bool,
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
    let mut doc = json!({
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
    });
    if inp.breaker {
        let statements = doc["Statement"].as_array_mut().expect("statements");
        statements.push(statement(
            "BreakerListsMappings",
            &["lambda:ListEventSourceMappings"],
            vec!["*".into()],
        ));
        // Only the mappings that invoke this function (Lambda's `lambda:FunctionArn`
        // condition key on event source mapping calls).
        let mut toggle = statement(
            "BreakerTogglesMappings",
            &["lambda:UpdateEventSourceMapping"],
            vec![format!(
                "arn:{}:lambda:{}:{}:event-source-mapping:*",
                inp.partition, inp.region, inp.account
            )],
        );
        toggle["Condition"] = json!({"StringEquals": {"lambda:FunctionArn": format!(
            "arn:{}:lambda:{}:{}:function:{}",
            inp.partition,
            inp.region,
            inp.account,
            function_name(&inp.suffix)
        )}});
        statements.push(toggle);
        // The reconciler reads the breaker's state (CloudWatch takes the alarm as resource).
        statements.push(statement(
            "BreakerReadsItsAlarm",
            &["cloudwatch:DescribeAlarms"],
            vec![breaker::alarm(inp).1],
        ));
    }
    doc
}

/// The event source mapping's settings from `[validator]`.
pub fn wanted_mapping(cfg: &crate::config::Config) -> WantedMapping {
    let v = &cfg.validator;
    WantedMapping {
        enabled: Some(true),
        batch_size: v.batch_size.0,
        batching_window_secs: if v.batch_size.0 > 10 { 1 } else { 0 },
        // With the breaker, one reserved execution stays free of SQS batches: the breaker
        // alarm's (asynchronous) invocation must not be throttled by the very batches it
        // is to stop (ESM's maximum is at least 2, so from 3 reserved executions on).
        max_concurrency: (v.reserved_concurrency.0 >= 2).then_some(
            if v.breaker && v.reserved_concurrency.0 >= 3 {
                v.reserved_concurrency.0 - 1
            } else {
                v.reserved_concurrency.0
            }
            .min(1000),
        ),
    }
}

impl Validator {
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
        let partition = partition_of(&kms_key_arn).to_string();
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
            breaker: ctx.cfg().validator.breaker,
        };
        let group_name = log_group_name(ctx.suffix());
        let (log_group, (role, _)) = tokio::try_join!(
            log_group::ensure(ctx, &group_name, &kms_key_arn, &[]),
            Self::ensure_role(ctx, &inp),
        )?;
        let v = &ctx.cfg().validator;
        let wanted = FunctionSpec {
            name: function_name(ctx.suffix()),
            runtime: RUNTIME,
            handler: HANDLER.to_string(),
            tracing: TRACING_MODE,
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
                // Exponential backoff of failed transactions (handler.py): the queue the
                // handler changes visibilities on, and the delays.
                (
                    "TRANSACTION_QUEUE_URL".to_string(),
                    ctx.input_str(crate::outputs::queue::OUT_QUEUE_URL)?,
                ),
                (
                    "RETRY_BASE_SECS".to_string(),
                    v.retry_base_secs.0.to_string(),
                ),
                ("RETRY_MAX_SECS".to_string(), v.retry_max_secs.0.to_string()),
            ])
            .into_iter()
            .chain(v.breaker.then(|| (breaker::ALARM_ENV.to_string(), breaker::alarm(&inp).0)))
            .collect(),
            kms_key_arn,
            reserved_concurrency: v.reserved_concurrency.0,
        };
        let function = if role.is_pending() || inp.is_pending() {
            // Plan mode: nothing to compare with yet.
            function::ensure_unknown(ctx, &wanted.name).await?
        } else {
            function::ensure(ctx, &wanted, &build_zip()?).await?
        };
        breaker::ensure(ctx, &function, &inp).await?;
        let label = format!("{} <- {}", wanted.name, crate::naming::queue_name(ctx.suffix()));
        let mut settings = wanted_mapping(ctx.cfg());
        if v.breaker && breaker::open(ctx).await? {
            // The breaker paused consumption: enabling the mapping now would undo it. The
            // function enables it itself when the alarm goes back to OK.
            ctx.sh.reporter.message(
                ctx.step,
                "the circuit breaker is open (alarm-validator-breaker in ALARM): the event \
                 source mapping stays as the breaker left it",
            );
            settings.enabled = None;
        }
        let mapping = MappingSpec {
            label: &label,
            function: &wanted.name,
            queue_arn: &inp.queue_arn,
            settings,
        };
        event_source_mapping::ensure(ctx, &mapping).await?;

        if !function.is_pending() && !log_group.is_pending() {
            ctx.set_output(OUT_FUNCTION_NAME, function_name(ctx.suffix()))?;
            ctx.set_output(OUT_FUNCTION_ARN, function.arn.clone().unwrap_or_default())?;
            ctx.set_output(OUT_LOG_GROUP, log_group.id.clone())?;
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lambda::event_source_mapping::drift as mapping_drift;
    use crate::resources::lambda::function::config_drift;
    use aws_sdk_lambda::types::{
        DeadLetterConfig, EnvironmentResponse, EventSourceMappingConfiguration,
        FunctionConfiguration, FunctionResponseType, ScalingConfig, VpcConfigResponse,
    };

    pub(super) fn inputs() -> PolicyInputs {
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
            breaker: true,
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
    fn the_handler_reports_the_metrics_the_breaker_alarm_reads() {
        assert!(HANDLER_SOURCE.contains(&format!(
            "METRICS_NAMESPACE = \"{}\"",
            crate::outputs::validator::METRICS_NAMESPACE
        )));
        for m in ["\"Processed\"", "\"Failed\"", "\"FunctionName\""] {
            assert!(HANDLER_SOURCE.contains(m), "{m}");
        }
    }

    #[test]
    fn the_breaker_may_toggle_only_its_own_mappings() {
        let doc = validator_policy(&inputs());
        let toggle = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["Sid"] == "BreakerTogglesMappings")
            .unwrap();
        assert_eq!(
            toggle["Condition"]["StringEquals"]["lambda:FunctionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:fn-validator-prod"
        );
        let off = validator_policy(&PolicyInputs {
            breaker: false,
            ..inputs()
        });
        assert!(!off.to_string().contains("EventSourceMapping"), "{off}");
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
                    st["Sid"] == "DescribeVpcEnis"
                        || st["Sid"] == "SendTraces"
                        || st["Sid"] == "BreakerListsMappings",
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

    fn wanted() -> FunctionSpec {
        FunctionSpec {
            name: "fn-validator-prod".into(),
            runtime: RUNTIME,
            handler: HANDLER.into(),
            tracing: TRACING_MODE,
            reserved_concurrency: 5,
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
        w: &FunctionSpec,
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
        let w = wanted_mapping(&cfg);
        assert_eq!(
            w,
            WantedMapping {
                enabled: Some(true),
                batch_size: 10,
                batching_window_secs: 0,
                // One of the 5 reserved executions stays free for the breaker alarm.
                max_concurrency: Some(4)
            }
        );
        cfg.validator.breaker = false;
        assert_eq!(wanted_mapping(&cfg).max_concurrency, Some(5));
        cfg.validator.breaker = true;
        cfg.validator.batch_size = crate::config::BatchSize(100);
        cfg.validator.reserved_concurrency = crate::config::ReservedConcurrency(1);
        let big = wanted_mapping(&cfg);
        assert_eq!((big.batching_window_secs, big.max_concurrency), (1, None));

        let good = EventSourceMappingConfiguration::builder()
            .batch_size(10)
            .function_response_types(FunctionResponseType::ReportBatchItemFailures)
            .scaling_config(ScalingConfig::builder().maximum_concurrency(4).build())
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
        // The open breaker disabled it: not drift.
        let held = WantedMapping {
            enabled: None,
            ..w.clone()
        };
        assert!(!mapping_drift(&bad, &held).contains(&"enable"));
    }

    #[test]
    fn names() {
        assert_eq!(function_name("prod"), "fn-validator-prod");
        assert_eq!(log_group_name("prod"), "/aws/lambda/fn-validator-prod");
        assert!(function_name(&"s".repeat(23)).len() <= 64);
        assert!(format!("role-validator-{}", "s".repeat(23)).len() <= 64);
    }
}
