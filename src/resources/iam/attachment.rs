//! `iam:role-policy-attachment`: a customer-managed policy attached to a role. Recorded as
//! `<role>|<policy ARN>` with both in its attributes; detaching an attachment that is already
//! gone (or whose role is) counts as done.

use anyhow::Result;
use async_trait::async_trait;

use super::role;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, StepCtx};

pub const KIND: &str = "iam:role-policy-attachment";

pub struct Attachment;

/// Whether `policy_arn` is attached to `role` (false if the role does not exist).
pub async fn is_attached(ctx: &StepCtx, role: &str, policy_arn: &str) -> Result<bool> {
    Ok(ctx
        .aws()
        .iam()
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .aws("iam:ListAttachedRolePolicies", role)
        .not_found_ok()?
        .is_some_and(|o| {
            o.attached_policies()
                .iter()
                .any(|p| p.policy_arn() == Some(policy_arn))
        }))
}

/// Attaches, or (for a role whose policy grants nothing any more) detaches, the policy.
pub async fn ensure(
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
        is_attached(ctx, role, policy_arn).await?
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
            ctx.change(role::KIND, role, &what, || async {
                iam.detach_role_policy()
                    .role_name(role)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .aws("iam:DetachRolePolicy", role)?;
                Ok(())
            })
            .await?;
            ctx.forget(KIND, &id)?;
        }
        return Ok(());
    }
    ctx.ensure(
        KIND,
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

/// Detaches `policy_arn` from `role` (already detached or gone counts as done).
pub async fn detach(ctx: &StepCtx, role: &str, policy_arn: &str) -> Result<()> {
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

/// The role and policy ARN a record names.
fn parts(rec: &ResourceRecord) -> (String, String) {
    (
        rec.attrs.get("role").cloned().unwrap_or_default(),
        rec.attrs.get("policy_arn").cloned().unwrap_or_default(),
    )
}

#[async_trait]
impl Provider for Attachment {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let (role, arn) = parts(rec);
        Ok(is_attached(ctx, &role, &arn)
            .await?
            .then(|| "attached".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        let (role, arn) = parts(rec);
        detach(ctx, &role, &arn).await
    }
}
