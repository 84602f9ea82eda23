//! The DR paths: S3 replication to the DR region and the AWS Backup copy into the DR vault.

use anyhow::{Context as _, Result};

use super::{ctx, through, Check, FIX_UP};
use crate::aws::AwsResultExt;
use crate::outputs::{database, dr_backup, dr_network, dr_storage, kms, storage};
use crate::verify::eval::{self, Ctx};
use crate::verify::live::Live;
use crate::verify::{Finding, Stack};

/// DR: the replication role may read the source, write the replica and use both keys.
pub(super) async fn replication(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("assets bucket → DR replica (replication role)");
    let r: Result<()> = async {
        let role_arn = st
            .out(dr_storage::OUT_REPLICATION_ROLE_ARN)
            .context("no role")?;
        let src = st
            .out(storage::OUT_ASSETS_BUCKET)
            .context("no assets bucket")?;
        let dst = st
            .out(dr_storage::OUT_DR_BUCKET)
            .context("no replica bucket")?;
        let dr_region = st.out(dr_network::OUT_DR_REGION).context("no DR region")?;
        let role = live.role(role_arn).await?;
        let src_bucket = format!("arn:aws:s3:::{src}");
        c.need(
            eval::trusts(
                &role,
                "s3.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", &src_bucket),
                ]),
            ),
            FIX_UP,
        );
        let src_facts = live.bucket(src, live.region()).await?;
        let dst_facts = live.bucket(dst, dr_region).await?;
        let sec = ctx(&[("aws:SecureTransport", "true")]);
        let src_arn = format!("arn:aws:s3:::{src}");
        let dst_arn = format!("arn:aws:s3:::{dst}");
        for (action, res, pol) in [
            (
                "s3:GetReplicationConfiguration",
                src_arn.clone(),
                &src_facts.policy,
            ),
            ("s3:ListBucket", src_arn.clone(), &src_facts.policy),
            (
                "s3:GetObjectVersionForReplication",
                format!("{src_arn}/k"),
                &src_facts.policy,
            ),
            (
                "s3:ReplicateObject",
                format!("{dst_arn}/k"),
                &dst_facts.policy,
            ),
            (
                "s3:ReplicateDelete",
                format!("{dst_arn}/k"),
                &dst_facts.policy,
            ),
        ] {
            c.need(
                eval::role_resource(&role, pol.as_ref(), action, &res, &sec),
                FIX_UP,
            );
        }
        if let Some(key) = &src_facts.kms_key {
            let (arn, kp) = live.key(key, live.region()).await?;
            let via = format!("s3.{}.amazonaws.com", live.region());
            c.need(
                eval::kms_role(&kp, &role, "kms:Decrypt", &arn, &through(live, &via)),
                FIX_UP,
            );
        }
        if let Some(key) = &dst_facts.kms_key {
            let (arn, kp) = live.key(key, dr_region).await?;
            let via = format!("s3.{dr_region}.amazonaws.com");
            c.need(
                eval::kms_role(&kp, &role, "kms:Encrypt", &arn, &through(live, &via)),
                FIX_UP,
            );
        }
        if c.problems.is_empty() {
            c.notes
                .push(format!("{src} → {dst} ({dr_region}); both keys usable"));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}

/// DR: the backup role may snapshot the cluster, copy into the DR vault and use both keys.
pub(super) async fn backup(live: &Live, st: &Stack) -> Finding {
    let mut c = Check::new("Aurora → backup vaults (backup role)");
    let r: Result<()> = async {
        let plan = st.out(dr_backup::OUT_PLAN_ID).context("no plan")?;
        let cluster = st.out(database::OUT_CLUSTER_ARN).context("no cluster")?;
        let dr_vault = st.out(dr_backup::OUT_DR_VAULT_ARN).context("no DR vault")?;
        let dr_region = st.out(dr_network::OUT_DR_REGION).context("no DR region")?;
        let b = live.aws.backup();
        let sels = b
            .list_backup_selections()
            .backup_plan_id(plan)
            .send()
            .await
            .aws("backup:ListBackupSelections", plan)?;
        let Some(sel) = sels.backup_selections_list().first() else {
            c.fail("the backup plan selects nothing", FIX_UP);
            return Ok(());
        };
        let role = live.role(sel.iam_role_arn().unwrap_or_default()).await?;
        let vault = st.out(dr_backup::OUT_VAULT_ARN).unwrap_or_default();
        c.need(
            eval::trusts(
                &role,
                "backup.amazonaws.com",
                &ctx(&[
                    ("aws:SourceAccount", &live.account),
                    ("aws:SourceArn", vault),
                ]),
            ),
            FIX_UP,
        );
        c.need(
            eval::identity(&role, "rds:CreateDBClusterSnapshot", cluster, &Ctx::new()),
            FIX_UP,
        );
        c.need(
            eval::identity(&role, "backup:CopyIntoBackupVault", dr_vault, &Ctx::new()),
            FIX_UP,
        );
        for (key_out, region) in [
            (kms::OUT_KEY_ARN, live.region().to_string()),
            (dr_storage::OUT_DR_KEY_ARN, dr_region.to_string()),
        ] {
            if let Some(key) = st.out(key_out) {
                let (arn, kp) = live.key(key, &region).await?;
                let via = format!("backup.{region}.amazonaws.com");
                for action in ["kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"] {
                    c.need(
                        eval::kms_role(&kp, &role, action, &arn, &through(live, &via)),
                        FIX_UP,
                    );
                }
            }
        }
        if c.problems.is_empty() {
            c.notes.push(format!(
                "daily snapshots of the cluster, copied to {dr_region}"
            ));
        }
        Ok(())
    }
    .await;
    c.finish_with(r)
}
