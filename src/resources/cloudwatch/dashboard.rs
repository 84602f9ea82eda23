//! `cloudwatch:dashboard`: a CloudWatch dashboard, put whole (PutDashboard replaces the
//! body) and put again only when the body read back differs from the wanted one.

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "cloudwatch:dashboard";

pub struct Dashboard;

/// Finds or puts the dashboard `name` with `body`; puts it again when its widgets differ.
pub async fn ensure(ctx: &StepCtx, name: &str, body: &Value) -> Result<()> {
    let cw = ctx.aws().cloudwatch();
    let mut current: Option<Value> = None;
    let put = || async {
        cw.put_dashboard()
            .dashboard_name(name)
            .dashboard_body(body.to_string())
            .send()
            .await
            .aws("cloudwatch:PutDashboard", name)?;
        Ok(())
    };
    ctx.ensure(
        KIND,
        name,
        || async {
            let out = cw
                .get_dashboard()
                .dashboard_name(name)
                .send()
                .await
                .aws("cloudwatch:GetDashboard", name)
                .not_found_ok()?;
            Ok(out.map(|o| {
                current = o
                    .dashboard_body()
                    .and_then(|b| serde_json::from_str(b).ok());
                Found::new(name)
            }))
        },
        || async {
            put().await?;
            Ok(Found::new(name))
        },
    )
    .await?;
    if current.as_ref().is_some_and(|c| c != body) {
        ctx.change(KIND, name, "update widgets", put).await?;
    }
    Ok(())
}

/// Deletes the dashboard `name`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let cw = ctx.aws().cloudwatch();
    ctx.retry_dependency(&format!("{KIND} {name}"), || async {
        cw.delete_dashboards()
            .dashboard_names(name)
            .send()
            .await
            .map(|_| ())
            .aws("cloudwatch:DeleteDashboards", name)
    })
    .await
}

#[async_trait]
impl Provider for Dashboard {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .cloudwatch()
            .get_dashboard()
            .dashboard_name(id)
            .send()
            .await
            .aws("cloudwatch:GetDashboard", id)
            .not_found_ok()?
            .map(|_| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
