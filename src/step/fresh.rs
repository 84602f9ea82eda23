//! Lookups a new stack skips. When the state records nothing and the tagging API lists
//! nothing with the stack's tag in its region, no resource of the kinds in [`SKIPPABLE`]
//! can be this stack's: every one of them is created with the stack tag in its create call,
//! and a create that died before its answer left a write-ahead record. So `plan` of an empty
//! account and the first `up` do not ask AWS, resource by resource, for what cannot exist:
//! one `GetResources` answers for all of them (`plan` of the default stack: 44 reads to 29).
//!
//! What changes: a resource of the stack's name that is *not* tagged with it (someone
//! else's) is not refused by the lookup's ownership check up front; its create fails with
//! AWS's "already exists" error. [`StepCtx::ensure`] then drops the create's write-ahead
//! record (it would let the lookup take an untagged resource for this run's half-made one),
//! marks the name, so that every later lookup of it asks AWS, and looks it up after all; where the lookup ran before
//! `ensure` (`look_up`), the step's next attempt does (an "already exists" runs a step
//! again). The lookup refuses what is not the stack's.

use std::collections::BTreeSet;

use anyhow::Result;

use super::{Mode, StepCtx};

/// Kinds created with the stack tag in their create call, listed by the Resource Groups
/// Tagging API in their own region, and either unnamed (EC2: names are tags, a second VPC
/// is just another VPC) or named uniquely per account and region with a create that fails
/// with "already exists" when the name is taken. Not here: creates that answer with the
/// existing resource or overwrite it (SQS CreateQueue, SNS CreateTopic, ECS CreateCluster,
/// ELB CreateLoadBalancer and CreateTargetGroup, CloudWatch PutMetricAlarm, ECS
/// RegisterTaskDefinition) or refuse with an error that does not say so (DynamoDB's
/// ResourceInUseException, ECS CreateService): their lookups check ownership, and stay.
/// Nor IAM (global, not in the tagging API), S3 buckets (names are global: another
/// account's bucket is found by the lookup), CloudFront and WAF (global or us-east-1
/// scopes), dashboards and origin access controls (no tags), and sub-resources (routes,
/// rules, associations, attachments, mappings) whose lookups need their parent's ID anyway.
pub const SKIPPABLE: &[&str] = &[
    "acm:certificate",
    "backup:plan",
    "backup:vault",
    "ec2:elastic-ip",
    "ec2:flow-log",
    "ec2:internet-gateway",
    "ec2:nat-gateway",
    "ec2:route-table",
    "ec2:security-group",
    "ec2:subnet",
    "ec2:vpc",
    "ec2:vpc-endpoint",
    "ecr:repository",
    "kms:key",
    "lambda:function",
    "logs:log-group",
    "rds:db-cluster",
    "rds:db-cluster-parameter-group",
    "rds:db-instance",
    "rds:db-subnet-group",
    "servicediscovery:namespace",
    "servicediscovery:service",
];

/// What one run knows about the stack being new (kept in [`super::Shared`]).
#[derive(Default)]
pub(super) struct Fresh {
    /// Whether the state recorded anything when the run began.
    pub(super) had_records: bool,
    /// Whether nothing in the stack's region is tagged with the stack (read once per run).
    pub(super) nothing_tagged: tokio::sync::OnceCell<bool>,
    /// (kind, name) whose create met "already exists" although its lookup was skipped:
    /// looked up from now on.
    pub(super) collided: std::sync::Mutex<BTreeSet<(String, String)>>,
}

impl StepCtx {
    /// Whether nothing in the stack's region carries the stack tag: one paginated
    /// `GetResources`, read once per run.
    async fn nothing_tagged(&self) -> Result<bool> {
        let none = self
            .sh
            .fresh
            .nothing_tagged
            .get_or_try_init(|| async {
                let tagged = crate::sweep::tagged_resources(&self.sh.aws, self.suffix()).await?;
                anyhow::Ok(tagged.is_empty())
            })
            .await?;
        Ok(*none)
    }

    /// Whether the resource `kind` `name` certainly does not exist, without asking AWS for
    /// it: a [`SKIPPABLE`] kind in the stack's region, of a stack that had no records when
    /// the run began and has nothing tagged, with no record (not even a write-ahead one) of
    /// this resource now and no collision on its name.
    pub async fn known_absent(&self, kind: &str, name: &str) -> Result<bool> {
        if !matches!(self.sh.mode(), Mode::Up | Mode::Plan)
            || self.sh.fresh.had_records
            || !SKIPPABLE.contains(&kind)
            || self.region() != self.sh.aws.region()
        {
            return Ok(false);
        }
        let key = (kind.to_string(), name.to_string());
        if self
            .sh
            .fresh
            .collided
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return Ok(false);
        }
        let recorded = self
            .sh
            .state
            .with_resources(|all| all.iter().any(|r| r.kind == kind && r.name == name));
        if recorded {
            return Ok(false);
        }
        self.nothing_tagged().await
    }

    /// `find` (a lookup of `kind` `name`), unless [`StepCtx::known_absent`] says there is
    /// nothing to find.
    pub async fn look_up<T>(
        &self,
        kind: &str,
        name: &str,
        find: impl std::future::Future<Output = Result<Option<T>>>,
    ) -> Result<Option<T>> {
        if self.known_absent(kind, name).await? {
            return Ok(None);
        }
        find.await
    }

    /// Remembers that `kind` `name` exists although [`StepCtx::known_absent`] said it could
    /// not: it is looked up from now on (in this run; the next one has records).
    pub(super) fn collided(&self, kind: &str, name: &str) {
        self.sh
            .fresh
            .collided
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((kind.to_string(), name.to_string()));
    }
}
