//! `iam:policy`: a customer-managed policy: find, create and version it, probe and delete it.
//!
//! A changed document becomes a new default policy version (IAM keeps at most 5, so the
//! oldest non-default one is deleted first). IAM refuses to delete a policy that is attached
//! or has versions besides the default one (DeleteConflict): deletion detaches it from the
//! stack's roles and deletes those versions first.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_iam::operation::get_policy::GetPolicyOutput;
use futures::FutureExt as _;
use serde_json::Value;

use super::{
    attachment, check_least_privilege_with, decode_document, iam_tags, role, same_document,
    stack_tag, RoleSpec,
};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "iam:policy";

/// IAM keeps at most this many versions of a managed policy.
const MAX_POLICY_VERSIONS: usize = 5;

pub struct Policy;

/// The ARN of the customer-managed policy `name` of `account`.
pub fn arn(partition: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy/{name}")
}

/// GetPolicy of `arn` (`name` for errors); `None` if there is no such policy.
async fn get(ctx: &StepCtx, arn: &str, name: &str) -> Result<Option<GetPolicyOutput>> {
    Ok(ctx
        .aws()
        .iam()
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .aws("iam:GetPolicy", name)
        .not_found_ok()?)
}

/// Creates or updates `spec`'s policy with `doc`. `pending`: some inputs of the document are
/// plan-mode placeholders.
pub async fn ensure(
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
    let arn = arn(partition, account, name);
    let existing = get(ctx, &arn, name).await?.and_then(|o| o.policy);
    if let Some(p) = &existing {
        ctx.check_ours("IAM policy", name, stack_tag(p.tags()))?;
    }
    let found = existing.as_ref().map(|_| Found::new(&arn));
    let text = doc.to_string();
    let policy = ctx
        .ensure(
            KIND,
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
    // In plan mode with upstream outputs still unknown (e.g. a new service's repository) the
    // wanted document holds placeholders: it differs, and says so.
    let what = if pending {
        "new default policy version (some values known after up)"
    } else {
        "new default policy version"
    };
    ctx.change(KIND, name, what, || async {
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

/// Deletes the policy `arn` (`name` for errors) after detaching it from the step's recorded
/// roles and deleting its non-default versions; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, arn: &str, name: &str) -> Result<()> {
    let iam = ctx.aws().iam();
    let our_roles: BTreeSet<String> = ctx
        .records(Some(role::KIND))
        .into_iter()
        .map(|r| r.id)
        .collect();
    // An attachment made just before a crash may not be recorded: detach the policy from
    // this stack's roles (only) before deleting it.
    let entities = iam
        .list_entities_for_policy()
        .policy_arn(arn)
        .send()
        .await
        .aws("iam:ListEntitiesForPolicy", name)
        .not_found_ok()?;
    let Some(entities) = entities else {
        return Ok(());
    };
    for r in entities.policy_roles() {
        if let Some(role) = r.role_name().filter(|n| our_roles.contains(*n)) {
            attachment::detach(ctx, role, arn).await?;
        }
    }
    // IAM refuses to delete a policy with versions besides the default one.
    let versions = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .aws("iam:ListPolicyVersions", name)
        .not_found_ok()?;
    for v in versions.iter().flat_map(|o| o.versions()) {
        if let (false, Some(id)) = (v.is_default_version(), v.version_id()) {
            iam.delete_policy_version()
                .policy_arn(arn)
                .version_id(id)
                .send()
                .await
                .aws("iam:DeletePolicyVersion", name)
                .not_found_ok()?;
        }
    }
    // Detaching is eventually consistent: DeletePolicy can still see the attachment for a
    // moment (DeleteConflict), which retry_dependency waits out.
    ctx.retry_dependency(&format!("IAM policy {name}"), || {
        iam.delete_policy()
            .policy_arn(arn)
            .send()
            .map(|r| r.map(|_| ()).aws("iam:DeletePolicy", name))
    })
    .await
}

#[async_trait]
impl Provider for Policy {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(get(ctx, &rec.id, &rec.name).await?.map(|o| {
            o.policy
                .and_then(|p| p.default_version_id)
                .map(|v| format!("default version {v}"))
                .unwrap_or_else(|| "exists".into())
        }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id, &rec.name).await
    }
}
