//! IAM step: the roles the ECS tasks run with.
//!
//! - `role-task-execution-<suffix>`: the ECS agent's role (pull the services' images from
//!   their ECR repositories, write the services' log streams, read the database secret to
//!   inject it, decrypt with the stack key), policy `policy-task-execution-<suffix>`.
//! - `role-task-<service>-<suffix>` per configured service: what the service's code may call,
//!   from its `permissions` in the config, policy `policy-task-<service>-<suffix>`.
//!
//! Only customer-managed policies, never inline ones (they can be versioned, reviewed and
//! listed; an inline policy found on one of these roles is removed as drift). The documents
//! are built by pure functions below and checked by [`check_least_privilege`] before use:
//! every statement names its resources; no action has a wildcard except CloudWatch Logs ones;
//! `Resource: "*"` only for `ecr:GetAuthorizationToken`, which takes no resource.
//!
//! A changed document becomes a new default policy version (IAM keeps at most 5, so the
//! oldest non-default one is deleted first); a changed trust policy is updated in place.
//!
//! IAM is eventually consistent: a role created here can be refused for several seconds by
//! ECS ("ECS was unable to assume the role"). Consumers (the services step) wrap their calls
//! that pass these roles in [`StepCtx::retry_iam`]; nothing here waits.
//!
//! Teardown: detach the policies, delete their non-default versions, delete the policies
//! (IAM refuses to delete an attached or multi-version policy: DeleteConflict), delete the
//! roles.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use futures::FutureExt as _;
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::config::Permission;
use crate::naming::STACK_TAG;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::{kms, registry, sessions};

pub const ROLE: &str = "iam:role";
pub const POLICY: &str = "iam:policy";
pub const ATTACHMENT: &str = "iam:role-policy-attachment";

/// Output keys other steps read.
pub const OUT_EXECUTION_ROLE_ARN: &str = "iam_task_execution_role_arn";
pub const OUT_TASK_ROLE_ARNS: &str = "iam_task_role_arns";

/// Outputs of the database step this step reads.
pub const IN_DB_SECRET_ARN: &str = "db_secret_arn";
pub const IN_DB_RESOURCE_ID: &str = "db_cluster_resource_id";
/// Output of the queue step (a dependency): see [`task_policy`].
pub const IN_QUEUE_ARN: &str = "queue_arn";

/// IAM keeps at most this many versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

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

/// The partition of an ARN (`arn:<partition>:...`), `aws` if it is not an ARN.
pub fn partition_of(arn: &str) -> &str {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", p, ..] if !p.is_empty() => p,
        _ => "aws",
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
pub fn task_policy(inp: &PolicyInputs, permissions: &[Permission]) -> Option<Value> {
    let mut st = Vec::new();
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
                        sessions::USER_INDEX
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

/// A string-or-list policy element as a list.
fn as_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The rules every identity policy of this step follows: Allow statements with explicit
/// actions and resources (no NotAction/NotResource), no `*` in an action except CloudWatch
/// Logs actions, and `Resource: "*"` only on a statement granting nothing but
/// `ecr:GetAuthorizationToken`.
pub fn check_least_privilege(doc: &Value) -> Result<(), String> {
    check_least_privilege_with(doc, &["ecr:GetAuthorizationToken"])
}

/// [`check_least_privilege`] with another set of actions that may (must) use `Resource: "*"`
/// because IAM accepts no narrower resource for them: a statement with `Resource: "*"` may
/// grant only those.
pub fn check_least_privilege_with(
    doc: &Value,
    resource_star_actions: &[&str],
) -> Result<(), String> {
    let statements = doc["Statement"]
        .as_array()
        .ok_or("the policy has no Statement list")?;
    if statements.is_empty() {
        return Err("the policy has no statements".into());
    }
    for s in statements {
        let sid = s["Sid"].as_str().unwrap_or("(no Sid)");
        if s["Effect"] != "Allow" {
            return Err(format!("{sid}: only Allow statements are expected"));
        }
        for k in ["NotAction", "NotResource", "NotPrincipal", "Principal"] {
            if s.get(k).is_some() {
                return Err(format!("{sid}: {k} is not allowed in these policies"));
            }
        }
        let actions = as_list(s.get("Action"));
        if actions.is_empty() {
            return Err(format!("{sid}: no actions"));
        }
        for a in &actions {
            let (service, name) = a.split_once(':').unwrap_or(("", a));
            if (a.contains('*') || name.is_empty()) && service != "logs" {
                return Err(format!(
                    "{sid}: wildcard action `{a}` (only CloudWatch Logs actions may use one)"
                ));
            }
        }
        let resources = as_list(s.get("Resource"));
        if resources.is_empty() || resources.iter().any(|r| r.is_empty()) {
            return Err(format!("{sid}: every statement must name its resources"));
        }
        if resources.iter().any(|r| r == "*")
            && !actions
                .iter()
                .all(|a| resource_star_actions.contains(&a.as_str()))
        {
            return Err(format!(
                "{sid}: `Resource: \"*\"` is only allowed for {} alone",
                resource_star_actions.join(", ")
            ));
        }
    }
    Ok(())
}

/// A policy document as IAM returns it: URL-encoded (RFC 3986) JSON. Some emulators return it
/// as plain JSON, which is accepted too.
pub fn decode_document(raw: &str) -> Result<Value> {
    let text = if raw.trim_start().starts_with('{') {
        raw.to_string()
    } else {
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .context("policy document is not UTF-8 after URL-decoding")?
            .into_owned()
    };
    serde_json::from_str(&text).context("policy document is not JSON")
}

/// A document in a canonical form for comparison: single strings in Action, Resource and
/// condition values become one-element lists, and lists whose order IAM ignores are sorted.
pub fn normalize(doc: &Value) -> Value {
    fn list(v: &Value) -> Value {
        let mut l = as_list(Some(v));
        l.sort();
        Value::from(l)
    }
    let mut d = doc.clone();
    if let Some(Value::Object(_)) = d.get("Statement") {
        d["Statement"] = Value::from(vec![d["Statement"].clone()]);
    }
    if let Some(Value::Array(sts)) = d.get_mut("Statement") {
        for s in sts {
            let Value::Object(m) = s else { continue };
            for k in ["Action", "Resource"] {
                if let Some(v) = m.get(k).map(list) {
                    m.insert(k.into(), v);
                }
            }
            if let Some(Value::Object(cond)) = m.get_mut("Condition") {
                for (_, keys) in cond.iter_mut() {
                    if let Value::Object(keys) = keys {
                        for (_, v) in keys.iter_mut() {
                            *v = list(v);
                        }
                    }
                }
            }
            if let Some(Value::Object(p)) = m.get_mut("Principal") {
                for (_, v) in p.iter_mut() {
                    *v = list(v);
                }
            }
        }
    }
    d
}

/// Whether two documents grant the same (compared in canonical form).
pub fn same_document(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

/// One role and its customer-managed policy (also used by other steps that need a role, e.g.
/// the validator's Lambda role).
pub(crate) struct RoleSpec {
    /// `None` for the execution role.
    pub(crate) service: Option<String>,
    pub(crate) role: String,
    pub(crate) policy: String,
    pub(crate) trust: Value,
    pub(crate) document: Option<Value>,
    pub(crate) description: String,
    pub(crate) policy_description: String,
    /// Actions the policy may grant on `Resource: "*"` (see [`check_least_privilege_with`]).
    pub(crate) resource_star_actions: &'static [&'static str],
}

pub struct Iam;

fn iam_tags(ctx: &StepCtx, name: &str) -> Result<Vec<Tag>> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .context("building IAM tags")
}

/// The stack tag's value among IAM tags.
fn stack_tag(tags: &[Tag]) -> Option<&str> {
    tags.iter()
        .find(|t| t.key() == STACK_TAG)
        .map(|t| t.value())
}

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
                document: task_policy(inp, &svc.permissions),
                description: format!("fintech-infra {s}: task role of service {name}"),
                policy_description: format!("fintech-infra {s}: task role of {name}"),
                resource_star_actions: &[],
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

    /// The role of a step that has one (the validator's, the DR replication and backup
    /// roles): the role, its customer-managed policy from `spec.document`, and the
    /// attachment. `pending`: some inputs of the document are plan-mode placeholders.
    pub(crate) async fn ensure_role_with_policy(
        ctx: &StepCtx,
        spec: &RoleSpec,
        partition: &str,
        account: &str,
        pending: bool,
    ) -> Result<Found> {
        let doc = spec
            .document
            .as_ref()
            .context("a role with a policy needs a policy document")?;
        let role = Self::ensure_role(ctx, spec).await?;
        let policy = Self::ensure_policy(ctx, partition, account, pending, spec, doc).await?;
        Self::ensure_attachment(ctx, &spec.role, &policy.id, &spec.policy, true).await?;
        Ok(role)
    }

    pub(crate) async fn ensure_role(ctx: &StepCtx, spec: &RoleSpec) -> Result<Found> {
        let iam = ctx.aws().iam();
        let name = &spec.role;
        let existing = iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .aws("iam:GetRole", name)
            .not_found_ok()?
            .and_then(|o| o.role);
        if let Some(r) = &existing {
            ctx.check_ours("IAM role", name, stack_tag(r.tags()))?;
        }
        let found = existing.as_ref().map(|r| Found::new(name).arn(r.arn()));
        let trust = spec.trust.to_string();
        let role = ctx
            .ensure(
                ROLE,
                name,
                || async { Ok(found) },
                || async {
                    let out = iam
                        .create_role()
                        .role_name(name)
                        .assume_role_policy_document(&trust)
                        .description(&spec.description)
                        .set_tags(Some(iam_tags(ctx, name)?))
                        .send()
                        .await
                        .aws("iam:CreateRole", name)?;
                    let arn = out
                        .role
                        .map(|r| r.arn)
                        .context("CreateRole returned no role")?;
                    Ok(Found::new(name).arn(arn))
                },
            )
            .await?;
        let Some(existing) = existing else {
            return Ok(role); // new: its trust policy is the wanted one, it has no inline policy
        };

        let current = existing
            .assume_role_policy_document()
            .map(decode_document)
            .transpose()
            .with_context(|| format!("reading the trust policy of role {name}"))?;
        if !current.is_some_and(|c| same_document(&c, &spec.trust)) {
            ctx.change(ROLE, name, "update the trust policy", || async {
                iam.update_assume_role_policy()
                    .role_name(name)
                    .policy_document(&trust)
                    .send()
                    .await
                    .aws("iam:UpdateAssumeRolePolicy", name)?;
                Ok(())
            })
            .await?;
        }

        // Inline policies bypass the reviewed, versioned managed policies: drift to remove.
        let inline = iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .aws("iam:ListRolePolicies", name)?;
        for p in inline.policy_names() {
            let what = format!("delete inline policy {p} (only managed policies are used)");
            ctx.change(ROLE, name, &what, || async {
                iam.delete_role_policy()
                    .role_name(name)
                    .policy_name(p)
                    .send()
                    .await
                    .aws("iam:DeleteRolePolicy", name)?;
                Ok(())
            })
            .await?;
        }
        Ok(role)
    }

    /// Creates or updates `spec`'s policy with `doc`. `pending`: some inputs of the document
    /// are plan-mode placeholders.
    pub(crate) async fn ensure_policy(
        ctx: &StepCtx,
        partition: &str,
        account: &str,
        pending: bool,
        spec: &RoleSpec,
        doc: &Value,
    ) -> Result<Found> {
        let iam = ctx.aws().iam();
        let name = &spec.policy;
        check_least_privilege_with(doc, spec.resource_star_actions)
            .map_err(|e| anyhow::anyhow!("policy {name} breaks the least-privilege rules: {e}"))?;
        let arn = format!("arn:{partition}:iam::{account}:policy/{name}");
        let existing = iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .aws("iam:GetPolicy", name)
            .not_found_ok()?
            .and_then(|o| o.policy);
        if let Some(p) = &existing {
            ctx.check_ours("IAM policy", name, stack_tag(p.tags()))?;
        }
        let found = existing.as_ref().map(|_| Found::new(&arn));
        let text = doc.to_string();
        let policy = ctx
            .ensure(
                POLICY,
                name,
                || async { Ok(found) },
                || async {
                    let out = iam
                        .create_policy()
                        .policy_name(name)
                        .policy_document(&text)
                        .description(&spec.policy_description)
                        .set_tags(Some(iam_tags(ctx, name)?))
                        .send()
                        .await
                        .aws("iam:CreatePolicy", name)?;
                    let arn = out
                        .policy
                        .and_then(|p| p.arn)
                        .context("CreatePolicy returned no ARN")?;
                    Ok(Found::new(arn))
                },
            )
            .await?;
        let Some(existing) = existing else {
            return Ok(policy);
        };

        let default = existing.default_version_id().unwrap_or("v1");
        let current = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(default)
            .send()
            .await
            .aws("iam:GetPolicyVersion", name)?
            .policy_version
            .and_then(|v| v.document)
            .map(|d| decode_document(&d))
            .transpose()
            .with_context(|| format!("reading policy {name} version {default}"))?;
        if current.is_some_and(|c| same_document(&c, doc)) {
            return Ok(policy);
        }
        // In plan mode with upstream outputs still unknown (e.g. a new service's repository)
        // the wanted document holds placeholders: it differs, and says so.
        let what = if pending {
            "new default policy version (some values known after up)"
        } else {
            "new default policy version"
        };
        ctx.change(POLICY, name, what, || async {
            let versions = iam
                .list_policy_versions()
                .policy_arn(&arn)
                .send()
                .await
                .aws("iam:ListPolicyVersions", name)?;
            if versions.versions().len() >= MAX_POLICY_VERSIONS {
                // IAM keeps 5 versions: drop the oldest one that is not the default.
                let oldest = versions
                    .versions()
                    .iter()
                    .filter(|v| !v.is_default_version())
                    .min_by_key(|v| {
                        (
                            v.create_date().map(|d| d.as_nanos()),
                            v.version_id()
                                .and_then(|id| id.trim_start_matches('v').parse::<u64>().ok()),
                        )
                    })
                    .and_then(|v| v.version_id())
                    .context("no non-default policy version to delete")?;
                iam.delete_policy_version()
                    .policy_arn(&arn)
                    .version_id(oldest)
                    .send()
                    .await
                    .aws("iam:DeletePolicyVersion", name)?;
            }
            iam.create_policy_version()
                .policy_arn(&arn)
                .policy_document(&text)
                .set_as_default(true)
                .send()
                .await
                .aws("iam:CreatePolicyVersion", name)?;
            Ok(())
        })
        .await?;
        Ok(policy)
    }

    /// Attaches, or (for a role whose policy grants nothing any more) detaches, the policy.
    pub(crate) async fn ensure_attachment(
        ctx: &StepCtx,
        role: &str,
        policy_arn: &str,
        policy_name: &str,
        wanted: bool,
    ) -> Result<()> {
        let iam = ctx.aws().iam();
        let attached = if is_pending(policy_arn) {
            false
        } else {
            iam.list_attached_role_policies()
                .role_name(role)
                .send()
                .await
                .aws("iam:ListAttachedRolePolicies", role)
                .not_found_ok()?
                .is_some_and(|o| {
                    o.attached_policies()
                        .iter()
                        .any(|p| p.policy_arn() == Some(policy_arn))
                })
        };
        let id = format!("{role}|{policy_arn}");
        let found = || {
            Found::new(&id)
                .attr("role", role)
                .attr("policy_arn", policy_arn)
        };
        if !wanted {
            if attached {
                let what = format!("detach {policy_name}: the service's permissions grant nothing");
                ctx.change(ROLE, role, &what, || async {
                    iam.detach_role_policy()
                        .role_name(role)
                        .policy_arn(policy_arn)
                        .send()
                        .await
                        .aws("iam:DetachRolePolicy", role)?;
                    Ok(())
                })
                .await?;
                ctx.forget(ATTACHMENT, &id)?;
            }
            return Ok(());
        }
        ctx.ensure(
            ATTACHMENT,
            &format!("{policy_name} on {role}"),
            || async { Ok(attached.then(found)) },
            || async {
                iam.attach_role_policy()
                    .role_name(role)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .aws("iam:AttachRolePolicy", role)?;
                Ok(found())
            },
        )
        .await?;
        Ok(())
    }

    /// Deletes the step's recorded attachments, policies (with their non-default versions) and
    /// roles, in the order IAM requires. Used by every step that records IAM roles.
    pub(crate) async fn delete_recorded_roles(ctx: &StepCtx) -> Result<()> {
        let iam = ctx.aws().iam();
        let our_roles: BTreeSet<String> =
            ctx.records(Some(ROLE)).into_iter().map(|r| r.id).collect();

        for rec in ctx.records(Some(ATTACHMENT)) {
            ctx.check_cancelled()?;
            let role = rec.attrs.get("role").cloned().unwrap_or_default();
            let arn = rec.attrs.get("policy_arn").cloned().unwrap_or_default();
            Self::detach(ctx, &role, &arn).await?;
            ctx.deleted(ATTACHMENT, &rec.id)?;
        }

        for rec in ctx.records(Some(POLICY)) {
            ctx.check_cancelled()?;
            let arn = rec.id.clone();
            // An attachment made just before a crash may not be recorded: detach the policy
            // from this stack's roles (only) before deleting it.
            let entities = iam
                .list_entities_for_policy()
                .policy_arn(&arn)
                .send()
                .await
                .aws("iam:ListEntitiesForPolicy", &rec.name)
                .not_found_ok()?;
            let Some(entities) = entities else {
                ctx.deleted(POLICY, &rec.id)?;
                continue;
            };
            for r in entities.policy_roles() {
                if let Some(role) = r.role_name().filter(|n| our_roles.contains(*n)) {
                    Self::detach(ctx, role, &arn).await?;
                }
            }
            // IAM refuses to delete a policy with versions besides the default one.
            let versions = iam
                .list_policy_versions()
                .policy_arn(&arn)
                .send()
                .await
                .aws("iam:ListPolicyVersions", &rec.name)
                .not_found_ok()?;
            for v in versions.iter().flat_map(|o| o.versions()) {
                if let (false, Some(id)) = (v.is_default_version(), v.version_id()) {
                    iam.delete_policy_version()
                        .policy_arn(&arn)
                        .version_id(id)
                        .send()
                        .await
                        .aws("iam:DeletePolicyVersion", &rec.name)
                        .not_found_ok()?;
                }
            }
            // Detaching is eventually consistent: DeletePolicy can still see the attachment
            // for a moment (DeleteConflict), which retry_dependency waits out.
            ctx.retry_dependency(&format!("IAM policy {}", rec.name), || {
                iam.delete_policy()
                    .policy_arn(&arn)
                    .send()
                    .map(|r| r.map(|_| ()).aws("iam:DeletePolicy", &rec.name))
            })
            .await?;
            ctx.deleted(POLICY, &rec.id)?;
        }

        for rec in ctx.records(Some(ROLE)) {
            ctx.check_cancelled()?;
            let name = rec.id.clone();
            // A role can only be deleted once it has no policies: whatever is still attached
            // (by hand, or unrecorded) comes off, inline policies are deleted.
            let attached = iam
                .list_attached_role_policies()
                .role_name(&name)
                .send()
                .await
                .aws("iam:ListAttachedRolePolicies", &name)
                .not_found_ok()?;
            let Some(attached) = attached else {
                ctx.deleted(ROLE, &rec.id)?;
                continue;
            };
            for p in attached.attached_policies() {
                if let Some(arn) = p.policy_arn() {
                    Self::detach(ctx, &name, arn).await?;
                }
            }
            let inline = iam
                .list_role_policies()
                .role_name(&name)
                .send()
                .await
                .aws("iam:ListRolePolicies", &name)
                .not_found_ok()?;
            for p in inline.iter().flat_map(|o| o.policy_names()) {
                iam.delete_role_policy()
                    .role_name(&name)
                    .policy_name(p)
                    .send()
                    .await
                    .aws("iam:DeleteRolePolicy", &name)
                    .not_found_ok()?;
            }
            ctx.retry_dependency(&format!("IAM role {name}"), || {
                iam.delete_role()
                    .role_name(&name)
                    .send()
                    .map(|r| r.map(|_| ()).aws("iam:DeleteRole", &name))
            })
            .await?;
            ctx.deleted(ROLE, &rec.id)?;
        }
        Ok(())
    }

    /// Detaches `policy_arn` from `role` (already detached or gone counts as done).
    async fn detach(ctx: &StepCtx, role: &str, policy_arn: &str) -> Result<()> {
        ctx.aws()
            .iam()
            .detach_role_policy()
            .role_name(role)
            .policy_arn(policy_arn)
            .send()
            .await
            .aws("iam:DetachRolePolicy", role)
            .not_found_ok()?;
        Ok(())
    }
}

#[async_trait]
impl Step for Iam {
    fn name(&self) -> &'static str {
        "iam"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["kms", "database", "sessions", "registry", "queue"]
    }

    fn estimate_secs(&self) -> u64 {
        // A few seconds of calls; IAM propagation is waited for by the consumers.
        10
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let inp = Self::inputs(ctx).await?;
        let mut execution_arn = String::new();
        let mut task_arns = serde_json::Map::new();
        let mut any_pending = false;
        for spec in Self::specs(ctx, &inp) {
            let role = Self::ensure_role(ctx, &spec).await?;
            match &spec.document {
                Some(doc) => {
                    let policy = Self::ensure_policy(
                        ctx,
                        &inp.partition,
                        &inp.account,
                        inp.is_pending(),
                        &spec,
                        doc,
                    )
                    .await?;
                    Self::ensure_attachment(ctx, &spec.role, &policy.id, &spec.policy, true)
                        .await?;
                }
                None => {
                    // Nothing to grant (e.g. only `queue`, and no queue yet): no policy, and a
                    // policy attached by an earlier run with other permissions comes off.
                    let arn = format!(
                        "arn:{}:iam::{}:policy/{}",
                        inp.partition, inp.account, spec.policy
                    );
                    if !role.is_pending() {
                        Self::ensure_attachment(ctx, &spec.role, &arn, &spec.policy, false).await?;
                    }
                }
            }
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

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        Self::delete_recorded_roles(ctx).await?;
        for key in [OUT_EXECUTION_ROLE_ARN, OUT_TASK_ROLE_ARNS] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let iam = ctx.aws().iam();
        match rec.kind.as_str() {
            ROLE => Ok(iam
                .get_role()
                .role_name(&rec.id)
                .send()
                .await
                .aws("iam:GetRole", &rec.id)
                .not_found_ok()?
                .map(|_| "exists".to_string())),
            POLICY => Ok(iam
                .get_policy()
                .policy_arn(&rec.id)
                .send()
                .await
                .aws("iam:GetPolicy", &rec.name)
                .not_found_ok()?
                .map(|o| {
                    o.policy
                        .and_then(|p| p.default_version_id)
                        .map(|v| format!("default version {v}"))
                        .unwrap_or_else(|| "exists".into())
                })),
            ATTACHMENT => {
                let role = rec.attrs.get("role").cloned().unwrap_or_default();
                let arn = rec.attrs.get("policy_arn").cloned().unwrap_or_default();
                let out = iam
                    .list_attached_role_policies()
                    .role_name(&role)
                    .send()
                    .await
                    .aws("iam:ListAttachedRolePolicies", &role)
                    .not_found_ok()?;
                Ok(out
                    .filter(|o| {
                        o.attached_policies()
                            .iter()
                            .any(|p| p.policy_arn() == Some(arn.as_str()))
                    })
                    .map(|_| "attached".to_string()))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            docs.push((format!("{perms:?}"), task_policy(&inp, &perms).unwrap()));
        }
        inp.queue_arn = Some("arn:aws:sqs:us-east-1:123456789012:tx-prod".into());
        docs.push((
            "queue".to_string(),
            task_policy(&inp, &all_permissions()).unwrap(),
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
    fn resource_star_only_for_ecr_authorization_token() {
        for (what, doc) in every_document() {
            for (actions, resources) in grants(&doc) {
                if resources.iter().any(|r| r == "*") {
                    assert_eq!(actions, ["ecr:GetAuthorizationToken"], "{what}");
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
            check_least_privilege(&doc).unwrap_or_else(|e| panic!("{what}: {e}"));
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
        let sessions = task_policy(&inp, &[Permission::Sessions]).unwrap();
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

        let db = task_policy(&inp, &[Permission::Database]).unwrap();
        let d = db.to_string();
        assert!(d.contains(&inp.db_secret_arn));
        assert!(d.contains(
            "arn:aws:rds-db:us-east-1:123456789012:dbuser:cluster-ABCDEFGHIJKL/fintech_admin"
        ));
        assert!(!d.contains("dynamodb:"));
        assert!(!d.contains("kms:GenerateDataKey"), "reads only: {d}");

        // No queue yet: queue-only grants nothing; with the queue, SendMessage on it only.
        assert!(task_policy(&inp, &[Permission::Queue]).is_none());
        assert!(task_policy(&inp, &[]).is_none());
        let mut with_queue = inp.clone();
        with_queue.queue_arn = Some("arn:aws:sqs:us-east-1:123456789012:tx-prod".into());
        let q = task_policy(&with_queue, &[Permission::Queue])
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
    fn the_checker_rejects_what_the_rules_forbid() {
        let bad = [
            json!({"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "arn:x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:x"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken",
                                   "ecr:BatchGetImage"], "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]}),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": []}]}),
            json!({"Statement": [{"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "arn:x"}]}),
            json!({"Statement": []}),
        ];
        for doc in bad {
            assert!(check_least_privilege(&doc).is_err(), "accepted {doc}");
        }
        let ok = json!({"Statement": [
            {"Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:us-east-1:1:log-group:/ecs/a:*"},
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}
        ]});
        check_least_privilege(&ok).unwrap();
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
