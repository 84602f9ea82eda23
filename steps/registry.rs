//! Registry step: one private ECR repository per configured service (`[[services]]`),
//! `repo-<service>-<suffix>`: images scanned on push, tags immutable (a deployed tag always
//! means the same image, so a rollback is exact), encrypted with the stack's KMS key.
//!
//! Each repository's find, create, repairs and delete (with `force`, images included) are in
//! [`crate::resources::ecr::repository`].

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use crate::resources::ecr::repository::{self, RepositorySpec};
use crate::step::{Step, StepCtx};

pub use crate::outputs::registry::*;

pub const REPOSITORY: &str = repository::KIND;

pub struct Registry;

impl Registry {
    /// `repo-<service>-<suffix>`.
    pub fn repo_name(ctx: &StepCtx, service: &str) -> String {
        ctx.names().with_purpose("repo", service)
    }
}

#[async_trait]
impl Step for Registry {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec!["kms"]
    }

    fn estimate_secs(&self) -> u64 {
        5
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let key_arn = ctx.input_str(crate::outputs::kms::OUT_KEY_ARN)?;
        let mut uris = BTreeMap::new();
        let mut arns = BTreeMap::new();
        let mut any_pending = false;
        // Only the configured services: the repository of a service removed from the config
        // stays recorded (so `down` still deletes it) but is no longer published.
        // One repository per service, independent of each other: all at once.
        let repos = futures::future::try_join_all(ctx.cfg().services.0.iter().map(|svc| {
            let key_arn = &key_arn;
            async move {
                let service = svc.name.0.as_str();
                let name = Self::repo_name(ctx, service);
                let spec = RepositorySpec {
                    name: &name,
                    key_arn,
                    service,
                };
                let repo = repository::ensure(ctx, &spec).await?;
                anyhow::Ok((service, repo))
            }
        }))
        .await?;
        for (service, repo) in repos {
            if repo.is_pending() {
                any_pending = true;
            } else {
                uris.insert(
                    service.to_string(),
                    Value::from(repo.attrs.get("uri").cloned().unwrap_or_default()),
                );
                arns.insert(
                    service.to_string(),
                    Value::from(repo.arn.clone().unwrap_or_default()),
                );
            }
        }
        // In plan mode a repository still to be created has no URI: later steps then see the
        // outputs as missing (placeholders) rather than a partial map.
        if !any_pending {
            ctx.set_output(OUT_URIS, Value::Object(uris.into_iter().collect()))?;
            ctx.set_output(OUT_ARNS, Value::Object(arns.into_iter().collect()))?;
        }
        Ok(())
    }

}
