//! The data paths: services → Aurora, and task or function roles → the session table.

use anyhow::{Context as _, Result};

use super::{through, Check, Facts, Service, FIX_UP};
use crate::aws::AwsResultExt;
use crate::outputs::{database, sessions};
use crate::steps::network;
use crate::verify::eval::{self, Ctx};
use crate::verify::live::Live;
use crate::verify::{Finding, Stack};

/// A service with the `database` permission → Aurora on 5432: security groups, and the task
/// role's `rds-db:connect` and secret read.
pub(super) async fn service_to_database(
    live: &Live,
    st: &Stack,
    f: &Facts,
    svc: &Service,
) -> Finding {
    let mut c = Check::new(format!("{} → Aurora :{}", svc.label(), network::DB_PORT));
    let r: Result<()> = async {
        let src = live.groups(&svc.groups).await?;
        let dst = live.groups(&f.db_groups).await?;
        c.need(
            eval::connects(&src, &dst, network::DB_PORT, f.vpc_cidr),
            FIX_UP,
        );
        let Some(role) = &svc.task_role else {
            c.fail("the task definition has no task role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        if let Some(secret) = st.out(database::OUT_SECRET_ARN) {
            c.need(
                eval::identity(&role, "secretsmanager:GetSecretValue", secret, &Ctx::new()),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes.push(
                "security groups admit it both ways; the task role may read the master secret"
                    .into(),
            );
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// A role → the session table: the role reads items, the table's key lets it decrypt through
/// DynamoDB, and the subnets route to DynamoDB (gateway endpoint or NAT).
#[allow(clippy::too_many_arguments)]
pub(super) async fn role_to_sessions(
    live: &Live,
    st: &Stack,
    f: &Facts,
    who: &str,
    role: &Option<String>,
    groups: &[String],
    subnets: &[String],
) -> Finding {
    let mut c = Check::new(format!("{who} → session table"));
    let r: Result<()> = async {
        let table_arn = st.out(sessions::OUT_TABLE_ARN).context("no table ARN")?;
        let Some(role) = role else {
            c.fail("no role", FIX_UP);
            return Ok(());
        };
        let role = live.role(role).await?;
        c.need(
            eval::identity(&role, "dynamodb:GetItem", table_arn, &Ctx::new()),
            FIX_UP,
        );
        let name = st.out(sessions::OUT_TABLE_NAME).unwrap_or_default();
        let t = live
            .aws
            .dynamodb()
            .describe_table()
            .table_name(name)
            .send()
            .await
            .aws("dynamodb:DescribeTable", name)?;
        if let Some(key) = t
            .table()
            .and_then(|t| t.sse_description())
            .and_then(|s| s.kms_master_key_arn())
        {
            let (key_arn, policy) = live.key(key, live.region()).await?;
            let via = format!("dynamodb.{}.amazonaws.com", live.region());
            let kctx = through(live, &via);
            c.need(
                eval::kms_role(&policy, &role, "kms:Decrypt", &key_arn, &kctx),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes
                .push("the role may read items and decrypt through DynamoDB".into());
        }
        let pl_name = format!("com.amazonaws.{}.dynamodb", live.region());
        let sgs = live.groups(groups).await?;
        for s in subnets {
            c.need(
                eval::service_route(&f.route_tables, s, f.prefix_list(&pl_name), &sgs, 443)
                    .map_err(|e| format!("subnet {s} to DynamoDB: {e}")),
                FIX_UP,
            );
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}
