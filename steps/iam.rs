//! IAM step: the roles the ECS tasks run with.
//!
//! - `role-task-execution-<suffix>`: the ECS agent's role (pull the services' images from
//!   their ECR repositories, write the services' log streams, read the database secret to
//!   inject it, decrypt with the stack key), policy `policy-task-execution-<suffix>`.
//! - `role-task-<service>-<suffix>` per configured service: what the service's code may call,
//!   from its `permissions` in the config, and, with `[tracing]` on, the X-Ray calls of the
//!   collector sidecar, policy `policy-task-<service>-<suffix>`.
//!
//! The documents are built by pure functions below and checked by [`check_least_privilege`]
//! before use: every statement names its resources; no action has a wildcard except
//! CloudWatch Logs ones; `Resource: "*"` only for `ecr:GetAuthorizationToken` and the X-Ray
//! trace and sampling actions, which take no resource. The roles, policies and attachments themselves (versioning, drift, teardown
//! order) are the resource layer's: [`crate::resources::iam`].
//!
//! IAM is eventually consistent: a role created here can be refused for several seconds by
//! ECS ("ECS was unable to assume the role"). Consumers (the services step) wrap their calls
//! that pass these roles in [`StepCtx::retry_iam`]; nothing here waits.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::Permission;
use crate::resources::iam::{attachment, policy, role, RoleSpec};
use crate::step::{is_pending, Step, StepCtx};
use crate::outputs::{kms, registry, sessions};

/// The IAM kinds, now in the resource layer (kept here for the code that names them so).
pub const ROLE: &str = role::KIND;
pub const POLICY: &str = policy::KIND;
pub const ATTACHMENT: &str = attachment::KIND;

/// The policy document helpers, now in the resource layer (kept here for the steps and tests
/// that use them from this module).
pub use crate::resources::iam::{
    check_least_privilege, check_least_privilege_with, decode_document, partition_of, same_document,
};

pub use crate::outputs::iam::*;

/// Outputs of the database step this step reads.
pub const IN_DB_SECRET_ARN: &str = "db_secret_arn";
pub const IN_DB_RESOURCE_ID: &str = "db_cluster_resource_id";
/// Output of the queue step (a dependency): see [`task_policy`].
pub const IN_QUEUE_ARN: &str = "queue_arn";

/// Everything the policy documents are built from.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInputs {
    /// `aws`, `aws-cn`, `aws-us-gov`: taken from the stack key's ARN.
    pub partition: String,
    pub region: String,
    pub account: String,
    pub suffix: String,
    pub kms_key_arn: String,
    /// The configured services, in config order.
    pub services: Vec<String>,
    /// ECR repository ARN per service.
    pub repository_arns: BTreeMap<String, String>,
    pub sessions_table_arn: String,
    pub db_secret_arn: String,
    pub db_resource_id: String,
    pub db_user: String,
    /// The transaction queue, once a queue step publishes `queue_arn`.
    pub queue_arn: Option<String>,
}

impl PolicyInputs {
    /// True in plan mode when an upstream output does not exist yet: the documents then hold
    /// placeholders and cannot be compared with what exists.
    pub fn is_pending(&self) -> bool {
        [
            &self.kms_key_arn,
            &self.sessions_table_arn,
            &self.db_secret_arn,
            &self.db_resource_id,
        ]
        .iter()
        .any(|s| is_pending(s))
            || self
                .services
                .iter()
                .any(|s| !self.repository_arns.contains_key(s))
    }

    fn service_principal_of(&self, service: &str) -> String {
        format!("{service}.{}.amazonaws.com", self.region)
    }
}

/// `role-task-execution-<suffix>` / `role-task-<service>-<suffix>`.
pub fn role_name(suffix: &str, service: Option<&str>) -> String {
    format!("role-task-{}-{suffix}", service.unwrap_or("execution"))
}

/// `policy-task-execution-<suffix>` / `policy-task-<service>-<suffix>`.
pub fn policy_name(suffix: &str, service: Option<&str>) -> String {
    format!("policy-task-{}-{suffix}", service.unwrap_or("execution"))
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources})
}

/// Who may assume the roles: ECS tasks of this account only (`aws:SourceAccount` guards
/// against the confused deputy). Task roles also pin `aws:SourceArn` to this account's ECS
/// resources in the region, as AWS recommends for task roles.
pub fn trust_policy(inp: &PolicyInputs, task_role: bool) -> Value {
    let mut condition = json!({"StringEquals": {"aws:SourceAccount": inp.account}});
    if task_role {
        condition["ArnLike"] = json!({
            "aws:SourceArn": format!("arn:{}:ecs:{}:{}:*", inp.partition, inp.region, inp.account)
        });
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EcsTasksAssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": condition
        }]
    })
}

/// The task execution role's policy: what the ECS agent needs to start the services' tasks.
pub fn execution_policy(inp: &PolicyInputs) -> Value {
    let mut st = vec![
        // GetAuthorizationToken is account-wide: IAM accepts no narrower resource for it.
        statement(
            "EcrAuthorizationToken",
            &["ecr:GetAuthorizationToken"],
            vec!["*".into()],
        ),
    ];
    let repos: Vec<String> = inp
        .services
        .iter()
        .filter_map(|s| inp.repository_arns.get(s).cloned())
        .collect();
    if !repos.is_empty() {
        st.push(statement(
            "PullServiceImages",
            &[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            repos,
        ));
    }
    // The services' own log groups (`/ecs/<service>-<suffix>`, created by the services step),
    // their streams included (`:*`), rather than every `/ecs/*` group of the account.
    let log_groups: Vec<String> = inp
        .services
        .iter()
        .map(|s| {
            format!(
                "arn:{}:logs:{}:{}:log-group:/ecs/{s}-{}:*",
                inp.partition, inp.region, inp.account, inp.suffix
            )
        })
        .collect();
    st.push(statement(
        "WriteServiceLogs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        log_groups,
    ));
    st.push(statement(
        "InjectDatabaseSecret",
        &["secretsmanager:GetSecretValue"],
        vec![inp.db_secret_arn.clone()],
    ));
    let mut decrypt = statement(
        "DecryptWithStackKey",
        &["kms:Decrypt"],
        vec![inp.kms_key_arn.clone()],
    );
    decrypt["Condition"] = json!({"StringEquals": {"kms:ViaService": [
        inp.service_principal_of("ecr"),
        inp.service_principal_of("secretsmanager"),
    ]}});
    st.push(decrypt);
    json!({"Version": "2012-10-17", "Statement": st})
}

/// A service's task role policy, from its `permissions`; `None` if it grants nothing (no
/// permissions, or only `queue` while no queue exists yet): the role then has no policy.
///
/// - `sessions`: item reads and writes on the session table, Query on its `by-user` index.
/// - `database`: read the database secret; `rds-db:connect` as the master user for IAM
///   database authentication, on this cluster only.
/// - `queue`: send to the transaction queue (`queue_arn` of the queue step, a dependency; in
///   plan mode before the queue exists the grant is left out of the preview).
///
/// Plus the stack key, used only through the services above (`kms:ViaService`): Decrypt to
/// read their encrypted data, GenerateDataKey to write it.
/// What the tracing collector (`[tracing]`) sends spans and sampling requests with. X-Ray
/// defines no resource type for these actions, so `Resource` can only be `*`.
pub const XRAY_ACTIONS: &[&str] = &[
    "xray:GetSamplingRules",
    "xray:GetSamplingStatisticSummaries",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
];

pub fn task_policy(inp: &PolicyInputs, permissions: &[Permission], tracing: bool) -> Option<Value> {
    let mut st = Vec::new();
    if tracing {
        // The collector sidecar runs with the task role: the app's traces go to X-Ray.
        st.push(statement("SendTracesToXRay", XRAY_ACTIONS, vec!["*".into()]));
    }
    let mut via = BTreeSet::new();
    let mut writes = false;
    for p in permissions {
        match p {
            Permission::Sessions => {
                st.push(statement(
                    "SessionTableItems",
                    &[
                        "dynamodb:BatchGetItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:ConditionCheckItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:GetItem",
                        "dynamodb:PutItem",
                        "dynamodb:Query",
                        "dynamodb:UpdateItem",
                    ],
                    vec![inp.sessions_table_arn.clone()],
                ));
                st.push(statement(
                    "SessionLookupsByUser",
                    &["dynamodb:Query"],
                    vec![format!(
                        "{}/index/{}",
                        inp.sessions_table_arn,
                        crate::naming::SESSIONS_USER_INDEX
                    )],
                ));
                via.insert(inp.service_principal_of("dynamodb"));
                writes = true;
            }
            Permission::Database => {
                st.push(statement(
                    "ReadDatabaseSecret",
                    &["secretsmanager:GetSecretValue"],
                    vec![inp.db_secret_arn.clone()],
                ));
                st.push(statement(
                    "ConnectToDatabaseWithIam",
                    &["rds-db:connect"],
                    vec![format!(
                        "arn:{}:rds-db:{}:{}:dbuser:{}/{}",
                        inp.partition, inp.region, inp.account, inp.db_resource_id, inp.db_user
                    )],
                ));
                via.insert(inp.service_principal_of("secretsmanager"));
            }
            Permission::Queue => {
                if let Some(q) = &inp.queue_arn {
                    st.push(statement(
                        "SendToTransactionQueue",
                        &[
                            "sqs:GetQueueAttributes",
                            "sqs:GetQueueUrl",
                            "sqs:SendMessage",
                        ],
                        vec![q.clone()],
                    ));
                    via.insert(inp.service_principal_of("sqs"));
                    writes = true;
                }
            }
        }
    }
    if st.is_empty() {
        return None;
    }
    if via.is_empty() {
        // Only X-Ray: no service of the stack key is used.
        return Some(json!({"Version": "2012-10-17", "Statement": st}));
    }
    let actions: &[&str] = if writes {
        &["kms:Decrypt", "kms:GenerateDataKey"]
    } else {
        &["kms:Decrypt"]
    };
    let mut key = statement(
        "UseStackKeyThroughServices",
        actions,
        vec![inp.kms_key_arn.clone()],
    );
    key["Condition"] =
        json!({"StringEquals": {"kms:ViaService": via.into_iter().collect::<Vec<_>>()}});
    st.push(key);
    Some(json!({"Version": "2012-10-17", "Statement": st}))
}

pub struct Iam;

impl Iam {
    fn specs(ctx: &StepCtx, inp: &PolicyInputs) -> Vec<RoleSpec> {
        let s = ctx.suffix();
        let mut v = vec![RoleSpec {
            service: None,
            role: role_name(s, None),
            policy: policy_name(s, None),
            trust: trust_policy(inp, false),
            document: Some(execution_policy(inp)),
            description: format!(
                "fintech-infra {s}: ECS task execution role (image pulls, logs, secrets)"
            ),
            policy_description: format!("fintech-infra {s}: ECS task execution"),
            resource_star_actions: &["ecr:GetAuthorizationToken"],
        }];
        for svc in &ctx.cfg().services.0 {
            let name = svc.name.0.as_str();
            v.push(RoleSpec {
                service: Some(name.to_string()),
                role: role_name(s, Some(name)),
                policy: policy_name(s, Some(name)),
                trust: trust_policy(inp, true),
                document: task_policy(inp, &svc.permissions, ctx.cfg().tracing.enabled),
                description: format!("fintech-infra {s}: task role of service {name}"),
                policy_description: format!("fintech-infra {s}: task role of {name}"),
                resource_star_actions: XRAY_ACTIONS,
            });
        }
        v
    }

    async fn inputs(ctx: &StepCtx) -> Result<PolicyInputs> {
        let kms_key_arn = ctx.input_str(kms::OUT_KEY_ARN)?;
        let partition = if is_pending(&kms_key_arn) {
            "aws".to_string()
        } else {
            partition_of(&kms_key_arn).to_string()
        };
        let queue_arn = ctx
            .output(IN_QUEUE_ARN)
            .and_then(|v| v.as_str().map(str::to_string));
        Ok(PolicyInputs {
            partition,
            region: ctx.region().to_string(),
            account: ctx.account_id().await?,
            suffix: ctx.suffix().to_string(),
            kms_key_arn,
            services: ctx
                .cfg()
                .services
                .0
                .iter()
                .map(|s| s.name.0.clone())
                .collect(),
            repository_arns: ctx.input_map(registry::OUT_ARNS)?,
            sessions_table_arn: ctx.input_str(sessions::OUT_TABLE_ARN)?,
            db_secret_arn: ctx.input_str(IN_DB_SECRET_ARN)?,
            db_resource_id: ctx.input_str(IN_DB_RESOURCE_ID)?,
            db_user: ctx.cfg().database.master_username.clone(),
            queue_arn,
        })
    }
}

#[async_trait]
impl Step for Iam {
    fn name(&self) -> &'static str {
        "iam"
    }

    fn deps(&self) -> Vec<&'static str> {
        // The database's secret and resource ID, published before Aurora is available.
        vec!["kms", "~database", "sessions", "registry", "queue"]
    }

    fn estimate_secs(&self) -> u64 {
        // A few seconds of calls; IAM propagation is waited for by the consumers.
        10
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let inp = Self::inputs(ctx).await?;
        // The roles do not depend on each other: all at once.
        let specs = Self::specs(ctx, &inp);
        let built = futures::future::try_join_all(specs.iter().map(|spec| {
            let inp = &inp;
            async move {
                let role = role::ensure(ctx, spec).await?;
                match &spec.document {
                    Some(doc) => {
                        let policy = policy::ensure(
                            ctx,
                            &inp.partition,
                            &inp.account,
                            inp.is_pending(),
                            spec,
                            doc,
                        )
                        .await?;
                        attachment::ensure(ctx, &spec.role, &policy.id, &spec.policy, true)
                            .await?;
                    }
                    None => {
                        // Nothing to grant (e.g. only `queue`, and no queue yet): no policy,
                        // and a policy attached by an earlier run with other permissions
                        // comes off.
                        let arn = policy::arn(&inp.partition, &inp.account, &spec.policy);
                        if !role.is_pending() {
                            attachment::ensure(ctx, &spec.role, &arn, &spec.policy, false)
                                .await?;
                        }
                    }
                }
                anyhow::Ok(role)
            }
        }))
        .await?;
        let mut execution_arn = String::new();
        let mut task_arns = serde_json::Map::new();
        let mut any_pending = false;
        for (spec, role) in specs.iter().zip(built) {
            let arn = role.arn.clone().unwrap_or_default();
            any_pending |= role.is_pending();
            match &spec.service {
                None => execution_arn = arn,
                Some(s) => {
                    task_arns.insert(s.clone(), Value::from(arn));
                }
            }
        }
        if !any_pending {
            ctx.set_output(OUT_EXECUTION_ROLE_ARN, execution_arn)?;
            ctx.set_output(OUT_TASK_ROLE_ARNS, Value::Object(task_arns))?;
        }
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::iam::as_list;

    fn inputs() -> PolicyInputs {
        PolicyInputs {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account: "123456789012".into(),
            suffix: "prod".into(),
            kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/1234abcd".into(),
            services: vec!["web".into(), "worker".into()],
            repository_arns: [
                (
                    "web",
                    "arn:aws:ecr:us-east-1:123456789012:repository/repo-web-prod",
                ),
                (
                    "worker",
                    "arn:aws:ecr:us-east-1:123456789012:repository/repo-worker-prod",
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            sessions_table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/sessions-prod"
                .into(),
            db_secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-prod-AbCdEf"
                .into(),
            db_resource_id: "cluster-ABCDEFGHIJKL".into(),
            db_user: "fintech_admin".into(),
            queue_arn: None,
        }
    }

    fn all_permissions() -> Vec<Permission> {
        vec![
            Permission::Sessions,
            Permission::Database,
            Permission::Queue,
        ]
    }

    /// (actions, resources) of every statement.
    fn grants(doc: &Value) -> Vec<(Vec<String>, Vec<String>)> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (as_list(s.get("Action")), as_list(s.get("Resource"))))
            .collect()
    }

    fn every_document() -> Vec<(String, Value)> {
        let mut inp = inputs();
        let mut docs = vec![("execution".to_string(), execution_policy(&inp))];
        for perms in [
            vec![Permission::Sessions],
            vec![Permission::Database],
            all_permissions(),
        ] {
            docs.push((format!("{perms:?}"), task_policy(&inp, &perms, false).unwrap()));
        }
        inp.queue_arn = Some("arn:aws:sqs:us-east-1:123456789012:tx-prod".into());
        docs.push((
            "queue".to_string(),
            task_policy(&inp, &all_permissions(), true).unwrap(),
        ));
        docs
    }

    #[test]
    fn no_wildcard_actions_except_logs() {
        for (what, doc) in every_document() {
            for (actions, _) in grants(&doc) {
                for a in actions {
                    assert!(
                        !a.contains('*') || a.starts_with("logs:"),
                        "{what}: wildcard action {a}"
                    );
                }
            }
        }
    }

    #[test]
    fn resource_star_only_for_actions_without_a_resource_type() {
        for (what, doc) in every_document() {
            for (actions, resources) in grants(&doc) {
                if resources.iter().any(|r| r == "*") {
                    let allowed: &[&str] = if what == "execution" {
                        &["ecr:GetAuthorizationToken"]
                    } else {
                        XRAY_ACTIONS
                    };
                    assert_eq!(actions, allowed, "{what}");
                }
            }
        }
    }

    #[test]
    fn every_statement_names_its_resources() {
        for (what, doc) in every_document() {
            for s in doc["Statement"].as_array().unwrap() {
                assert!(s.get("Resource").is_some(), "{what}: {s}");
                assert!(s.get("NotResource").is_none() && s.get("NotAction").is_none());
                let (actions, resources) = (as_list(s.get("Action")), as_list(s.get("Resource")));
                assert!(!actions.is_empty() && !resources.is_empty(), "{what}: {s}");
                assert!(resources.iter().all(|r| !r.is_empty()), "{what}: {s}");
            }
            let star: &[&str] = if what == "execution" { &["ecr:GetAuthorizationToken"] } else { XRAY_ACTIONS };
            check_least_privilege_with(&doc, star).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }

    #[test]
    fn execution_policy_is_limited_to_the_stack() {
        let inp = inputs();
        let doc = execution_policy(&inp);
        let g = grants(&doc);
        let resources_of = |action: &str| -> Vec<String> {
            g.iter()
                .filter(|(a, _)| a.iter().any(|x| x == action))
                .flat_map(|(_, r)| r.clone())
                .collect()
        };
        assert_eq!(resources_of("ecr:GetAuthorizationToken"), ["*"]);
        let mut repos: Vec<String> = inp.repository_arns.values().cloned().collect();
        repos.sort();
        for a in [
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        ] {
            let mut r = resources_of(a);
            r.sort();
            assert_eq!(r, repos, "{a}");
        }
        assert_eq!(
            resources_of("logs:PutLogEvents"),
            [
                "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/web-prod:*",
                "arn:aws:logs:us-east-1:123456789012:log-group:/ecs/worker-prod:*"
            ]
        );
        assert_eq!(
            resources_of("secretsmanager:GetSecretValue"),
            std::slice::from_ref(&inp.db_secret_arn)
        );
        assert_eq!(
            resources_of("kms:Decrypt"),
            std::slice::from_ref(&inp.kms_key_arn)
        );
        assert!(resources_of("logs:CreateLogGroup").is_empty());
    }

    #[test]
    fn task_policy_follows_the_permissions() {
        let inp = inputs();
        let sessions = task_policy(&inp, &[Permission::Sessions], false).unwrap();
        let s = sessions.to_string();
        assert!(s.contains(&inp.sessions_table_arn));
        assert!(s.contains("sessions-prod/index/by-user"));
        assert!(s.contains("dynamodb:PutItem") && s.contains("dynamodb:Query"));
        assert!(!s.contains("dynamodb:Scan") && !s.contains("dynamodb:DeleteTable"));
        assert!(!s.contains("secretsmanager") && !s.contains("rds-db"));
        assert!(
            s.contains("dynamodb.us-east-1.amazonaws.com"),
            "key via DynamoDB"
        );

        let db = task_policy(&inp, &[Permission::Database], false).unwrap();
        let d = db.to_string();
        assert!(d.contains(&inp.db_secret_arn));
        assert!(d.contains(
            "arn:aws:rds-db:us-east-1:123456789012:dbuser:cluster-ABCDEFGHIJKL/fintech_admin"
        ));
        assert!(!d.contains("dynamodb:"));
        assert!(!d.contains("kms:GenerateDataKey"), "reads only: {d}");

        // No queue yet: queue-only grants nothing; with the queue, SendMessage on it only.
        assert!(task_policy(&inp, &[Permission::Queue], false).is_none());
        assert!(task_policy(&inp, &[], false).is_none());
        let traced = task_policy(&inp, &[], true).unwrap();
        assert_eq!(grants(&traced), vec![(XRAY_ACTIONS.iter().map(|a| a.to_string()).collect::<Vec<_>>(), vec!["*".to_string()])]);
        let mut with_queue = inp.clone();
        with_queue.queue_arn = Some("arn:aws:sqs:us-east-1:123456789012:tx-prod".into());
        let q = task_policy(&with_queue, &[Permission::Queue], false)
            .unwrap()
            .to_string();
        assert!(q.contains("sqs:SendMessage") && q.contains(":tx-prod"));
        assert!(!q.contains("sqs:ReceiveMessage") && !q.contains("sqs:DeleteMessage"));
    }

    #[test]
    fn trust_policy_pins_the_account() {
        let inp = inputs();
        for task in [false, true] {
            let t = trust_policy(&inp, task);
            let s = &t["Statement"][0];
            assert_eq!(s["Principal"]["Service"], "ecs-tasks.amazonaws.com");
            assert_eq!(s["Action"], "sts:AssumeRole");
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:SourceAccount"],
                "123456789012"
            );
            assert_eq!(
                s["Condition"].get("ArnLike").is_some(),
                task,
                "SourceArn on task roles"
            );
        }
    }

    #[test]
    fn documents_compare_url_decoded_and_canonical() {
        let doc = execution_policy(&inputs());
        let encoded: String = percent_encoding::utf8_percent_encode(
            &doc.to_string(),
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        assert_eq!(decode_document(&encoded).unwrap(), doc);
        assert_eq!(decode_document(&doc.to_string()).unwrap(), doc);

        // IAM keeps the text it was given, but a hand-edited version may use a single string
        // or another order: the same grant.
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["b:B", "a:A"], "Resource": "arn:x"}]});
        let b = json!({"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Action": ["a:A", "b:B"], "Resource": ["arn:x"]}});
        assert!(same_document(&a, &b));
        let c = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["a:A"], "Resource": "arn:x"}]});
        assert!(!same_document(&a, &c));
    }

    #[test]
    fn names_and_partition() {
        assert_eq!(role_name("prod", None), "role-task-execution-prod");
        assert_eq!(role_name("prod", Some("web")), "role-task-web-prod");
        assert_eq!(policy_name("prod", Some("web")), "policy-task-web-prod");
        let longest = role_name(&"s".repeat(23), Some(&"w".repeat(30)));
        assert!(longest.len() <= 64, "{longest}");
        assert_eq!(partition_of("arn:aws-cn:kms:cn-north-1:1:key/x"), "aws-cn");
        assert_eq!(partition_of("not-an-arn"), "aws");
    }

    #[test]
    fn pending_inputs_are_detected() {
        let mut inp = inputs();
        assert!(!inp.is_pending());
        inp.repository_arns.remove("worker");
        assert!(inp.is_pending());
        let mut inp = inputs();
        inp.db_secret_arn = format!("{} output db_secret_arn)", crate::step::PENDING_PREFIX);
        assert!(inp.is_pending());
    }
}
