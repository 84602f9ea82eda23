//! The last check of `down`: is anything of the stack still there although the state no
//! longer records it? A run killed between AWS creating a resource and the state recording it
//! (before write-ahead records existed, or a create outside them) leaves such orphans. The
//! sweep looks by the stack tag (the Resource Groups Tagging API, in every region the stack
//! used) and by the deterministic names of what that API does not cover (IAM roles and
//! policies, the dashboard), so that `down` never says "every resource deleted" while
//! something remains.

use anyhow::Result;

use crate::aws::{Aws, AwsResultExt};
use crate::naming::STACK_TAG;

/// What is left of the stack `suffix` in `regions` (the first one is the stack's own, where
/// the global services answer): one line per resource, its ARN or name.
pub async fn leftovers(aws: &Aws, regions: &[String], suffix: &str) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for region in regions {
        let here = aws.for_region(region);
        left.extend(tagged(&here, suffix).await?);
    }
    left.extend(iam_leftovers(aws, suffix).await?);
    let dashboard = format!("fintech-{suffix}");
    let d = aws
        .cloudwatch()
        .get_dashboard()
        .dashboard_name(&dashboard)
        .send()
        .await
        .aws("cloudwatch:GetDashboard", &dashboard);
    match d {
        Ok(_) => left.push(format!("CloudWatch dashboard {dashboard}")),
        Err(e) if e.is_not_found() || e.code.as_deref() == Some("ResourceNotFound") => {}
        Err(e) => return Err(e.into()),
    }
    left.sort();
    left.dedup();
    Ok(left)
}

/// Resources the tagging API lists with the stack tag, less those that are gone but still
/// listed for a while (on AWS as in moto): deleted NAT gateways and peering connections,
/// INACTIVE ECS clusters and services, KMS keys pending deletion (KMS waits at least 7 days).
async fn tagged(aws: &Aws, suffix: &str) -> Result<Vec<String>> {
    let arns: Vec<String> = tagged_resources(aws, suffix)
        .await?
        .into_iter()
        .map(|(arn, _)| arn)
        .collect();
    let mut left = Vec::new();
    for arn in arns {
        if !gone(aws, &arn).await? {
            left.push(arn);
        }
    }
    Ok(left)
}

/// Every resource of the connection's region that the tagging API lists with the stack tag,
/// with all its tags (paginated).
pub async fn tagged_resources(
    aws: &Aws,
    suffix: &str,
) -> Result<Vec<(String, Vec<(String, String)>)>> {
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = aws
            .tagging()
            .get_resources()
            .tag_filters(
                aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                    .key(STACK_TAG)
                    .values(suffix)
                    .build(),
            )
            .set_pagination_token(token.clone())
            .send()
            .await
            .aws("tagging:GetResources", format!("{STACK_TAG}={suffix}"))?;
        for m in out.resource_tag_mapping_list() {
            let tags: Vec<(String, String)> = m
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            let ours = tags.iter().any(|(k, v)| k == STACK_TAG && v == suffix);
            if let (true, Some(arn)) = (ours, m.resource_arn()) {
                found.push((arn.to_string(), tags));
            }
        }
        token = out
            .pagination_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
}

/// Whether a resource the tagging API still lists is in fact deleted (or, for a KMS key,
/// scheduled for deletion, which is as deleted as KMS allows).
async fn gone(aws: &Aws, arn: &str) -> Result<bool> {
    let id = arn.rsplit('/').next().unwrap_or_default();
    if arn.contains(":natgateway/") {
        let out = aws
            .ec2()
            .describe_nat_gateways()
            .nat_gateway_ids(id)
            .send()
            .await;
        return Ok(out.map_or(true, |o| {
            o.nat_gateways()
                .iter()
                .all(|n| n.state().map(|s| s.as_str()) == Some("deleted"))
        }));
    }
    if arn.contains(":vpc-peering-connection/") {
        let out = aws
            .ec2()
            .describe_vpc_peering_connections()
            .vpc_peering_connection_ids(id)
            .send()
            .await;
        return Ok(out.map_or(true, |o| {
            o.vpc_peering_connections().iter().all(|p| {
                matches!(
                    p.status().and_then(|s| s.code()).map(|c| c.as_str()),
                    Some("deleted" | "deleting" | "rejected" | "failed" | "expired")
                )
            })
        }));
    }
    if arn.contains(":ecs:") && arn.contains(":cluster/") {
        let out = aws.ecs().describe_clusters().clusters(arn).send().await;
        return Ok(out.map_or(true, |o| {
            o.clusters().iter().all(|c| c.status() == Some("INACTIVE"))
        }));
    }
    if arn.contains(":ecs:") && arn.contains(":service/") {
        // arn:aws:ecs:region:acct:service/<cluster>/<service>
        let parts: Vec<&str> = arn.rsplit('/').collect();
        let cluster = parts.get(1).copied().unwrap_or_default();
        let out = aws
            .ecs()
            .describe_services()
            .cluster(cluster)
            .services(arn)
            .send()
            .await;
        return Ok(out.map_or(true, |o| {
            o.services().iter().all(|s| s.status() == Some("INACTIVE"))
        }));
    }
    if arn.contains(":kms:") && arn.contains(":key/") {
        let out = aws.kms().describe_key().key_id(arn).send().await;
        return Ok(out.map_or(true, |o| {
            o.key_metadata()
                .and_then(|k| k.key_state())
                .map(|s| s.as_str())
                == Some("PendingDeletion")
        }));
    }
    if arn.contains(":rds:") && arn.contains(":cluster-snapshot:rds:") {
        // An automated snapshot goes with its cluster (DeleteAutomatedBackups).
        return Ok(true);
    }
    if arn.contains(":secretsmanager:") {
        // A secret scheduled for deletion (an RDS-managed one goes with its cluster).
        let out = aws.secrets().describe_secret().secret_id(arn).send().await;
        return Ok(out.map_or(true, |o| o.deleted_date().is_some()));
    }
    Ok(false)
}

/// IAM roles and customer-managed policies named for the stack (`role-...-<suffix>`,
/// `policy-...-<suffix>`) and tagged with it: the tagging API does not list IAM.
async fn iam_leftovers(aws: &Aws, suffix: &str) -> Result<Vec<String>> {
    let iam = aws.iam();
    let tail = format!("-{suffix}");
    let mut left = Vec::new();
    let mut pages = iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws("iam:ListRoles", "roles")?;
        for r in page.roles() {
            let name = r.role_name();
            if !(name.starts_with("role-") && name.ends_with(&tail)) {
                continue;
            }
            let tags = iam
                .list_role_tags()
                .role_name(name)
                .send()
                .await
                .aws("iam:ListRoleTags", name)?;
            if tags
                .tags()
                .iter()
                .any(|t| t.key() == STACK_TAG && t.value() == suffix)
            {
                left.push(r.arn().to_string());
            }
        }
    }
    let mut pages = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.aws("iam:ListPolicies", "customer-managed policies")?;
        for p in page.policies() {
            let name = p.policy_name().unwrap_or_default();
            let Some(arn) = p.arn() else { continue };
            if !(name.starts_with("policy-") && name.ends_with(&tail)) {
                continue;
            }
            // The name alone could be another stack's whose suffix ends like this one.
            let tags = iam
                .list_policy_tags()
                .policy_arn(arn)
                .send()
                .await
                .aws("iam:ListPolicyTags", arn)?;
            if tags
                .tags()
                .iter()
                .any(|t| t.key() == STACK_TAG && t.value() == suffix)
            {
                left.push(arn.to_string());
            }
        }
    }
    Ok(left)
}
