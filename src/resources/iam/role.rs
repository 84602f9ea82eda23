//! `iam:role`: find, create and reconcile a role (trust policy, no inline policies), probe and
//! delete it.
//!
//! A changed trust policy is updated in place. Inline policies bypass the reviewed, versioned
//! managed policies, so one found on a role is drift and is deleted. IAM refuses to delete a
//! role that still has policies (DeleteConflict): whatever is still attached comes off and
//! inline policies are deleted first.

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_iam::operation::get_role::GetRoleOutput;
use futures::FutureExt as _;

use super::{attachment, decode_document, iam_tags, same_document, stack_tag, RoleSpec};
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "iam:role";

pub struct Role;

/// GetRole of `name`; `None` if there is no such role.
async fn get(ctx: &StepCtx, name: &str) -> Result<Option<GetRoleOutput>> {
    Ok(ctx
        .aws()
        .iam()
        .get_role()
        .role_name(name)
        .send()
        .await
        .aws("iam:GetRole", name)
        .not_found_ok()?)
}

/// Finds or creates `spec.role` with `spec.trust`, then (for a role found) restores the trust
/// policy and removes inline policies.
pub async fn ensure(ctx: &StepCtx, spec: &RoleSpec) -> Result<Found> {
    let iam = ctx.aws().iam();
    let name = &spec.role;
    let existing = get(ctx, name).await?.and_then(|o| o.role);
    if let Some(r) = &existing {
        ctx.check_ours("IAM role", name, stack_tag(r.tags()))?;
    }
    let found = existing.as_ref().map(|r| Found::new(name).arn(r.arn()));
    let trust = spec.trust.to_string();
    let role = ctx
        .ensure(
            KIND,
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
        ctx.change(KIND, name, "update the trust policy", || async {
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
        ctx.change(KIND, name, &what, || async {
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

/// Deletes the role `name`, its policies first; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let iam = ctx.aws().iam();
    // A role can only be deleted once it has no policies: whatever is still attached (by
    // hand, or unrecorded) comes off, inline policies are deleted.
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .aws("iam:ListAttachedRolePolicies", name)
        .not_found_ok()?;
    let Some(attached) = attached else {
        return Ok(());
    };
    for p in attached.attached_policies() {
        if let Some(arn) = p.policy_arn() {
            attachment::detach(ctx, name, arn).await?;
        }
    }
    let inline = iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .aws("iam:ListRolePolicies", name)
        .not_found_ok()?;
    for p in inline.iter().flat_map(|o| o.policy_names()) {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
            .aws("iam:DeleteRolePolicy", name)
            .not_found_ok()?;
    }
    // Detaching is eventually consistent: DeleteRole can still see a policy for a moment
    // (DeleteConflict), which retry_dependency waits out.
    ctx.retry_dependency(&format!("IAM role {name}"), || {
        iam.delete_role()
            .role_name(name)
            .send()
            .map(|r| r.map(|_| ()).aws("iam:DeleteRole", name))
    })
    .await
}

#[async_trait]
impl Provider for Role {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        Ok(get(ctx, &rec.id).await?.map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
