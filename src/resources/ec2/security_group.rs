//! `ec2:security-group`: the stack's security groups, one per [`Role`], found by name
//! among the VPC's groups or created without AWS's allow-all egress rule (the stack's
//! egress is explicit, see [`super::security_group_rule`]).
//!
//! A group the config no longer asks for (a removed service's, the shared
//! `secgroup-app-<suffix>` of earlier versions) is a [`StaleGroup`]: deleted once no network
//! interface uses it, else kept, recorded with a note saying why, for the next `up` or
//! `down`. Deletion is retried while AWS reports a dependency: the ENIs of deleted tasks,
//! load balancers and Lambda functions are released lazily and hold their groups.
//!
//! The VPC's default group is not the stack's to delete, but it must allow nothing
//! (Security Hub EC2.2, see [`restrict_default`]).

use std::collections::BTreeSet;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_ec2::types::{IpPermission, IpRange, ResourceType, SecurityGroup};

use super::{filter, is_ours, network_interface, security_group_rule, tag_spec};
use crate::aws::{AwsErrorKind, AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:security-group";

pub struct Group;

/// The security groups, by role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Alb,
    /// The tasks of one ECS service (by service name): a group per service, so that each
    /// admits exactly its callers.
    Service(String),
    Db,
    Lambda,
    /// Interface VPC endpoints (only with `network.interface_endpoints`).
    Endpoint,
}

impl Role {
    /// The groups that are not per service.
    pub const FIXED: [Role; 4] = [Role::Alb, Role::Db, Role::Lambda, Role::Endpoint];

    /// The groups of the stack `cfg` describes.
    pub fn of(cfg: &crate::config::Config) -> Vec<Role> {
        let mut v = vec![Role::Alb];
        v.extend(
            cfg.services
                .0
                .iter()
                .map(|s| Role::Service(s.name.0.clone())),
        );
        v.push(Role::Db);
        v.push(Role::Lambda);
        if !cfg.network.interface_endpoints.is_empty() {
            v.push(Role::Endpoint);
        }
        v
    }

    /// The part of the group name between `secgroup-` and the suffix. `svc-` keeps service
    /// groups apart from the fixed ones whatever the service is called.
    pub fn purpose(&self) -> String {
        match self {
            Role::Alb => "alb".into(),
            Role::Service(s) => format!("svc-{s}"),
            Role::Db => "db".into(),
            Role::Lambda => "lambda".into(),
            Role::Endpoint => "endpoints".into(),
        }
    }

    /// The group's name: `secgroup-<purpose>-<suffix>` (group names may not start with
    /// `sg-`).
    pub fn group_name(&self, names: &crate::naming::Names) -> String {
        names.with_purpose("secgroup", &self.purpose())
    }
}

/// Every security group in `vpc` (none while the VPC is a plan-mode placeholder).
pub async fn list_in_vpc(ctx: &StepCtx, vpc: &Found) -> Result<Vec<SecurityGroup>> {
    if vpc.is_pending() {
        return Ok(Vec::new());
    }
    let mut pages = ctx
        .aws()
        .ec2()
        .describe_security_groups()
        .filters(filter("vpc-id", &vpc.id))
        .into_paginator()
        .send();
    let mut groups = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.aws("ec2:DescribeSecurityGroups", &vpc.id)?;
        groups.extend(
            page.security_groups()
                .iter()
                .filter(|g| g.vpc_id() == Some(vpc.id.as_str()))
                .cloned(),
        );
    }
    Ok(groups)
}

/// The group of `role` in `vpc`, found by name among `listed` (the VPC's groups) or created;
/// recorded with its VPC (and service).
pub async fn ensure(
    ctx: &StepCtx,
    vpc: &Found,
    listed: &[SecurityGroup],
    role: &Role,
) -> Result<Found> {
    let ec2 = ctx.aws().ec2();
    let name = role.group_name(ctx.names());
    let found_of = |id: &str| {
        let f = Found::new(id).attr("vpc_id", &vpc.id);
        match role {
            Role::Service(s) => f.attr("service", s),
            _ => f,
        }
    };
    ctx.ensure(
        KIND,
        &name,
        || async {
            Ok(listed
                .iter()
                .find(|g| g.group_name() == Some(name.as_str()))
                .and_then(|g| g.group_id())
                .map(found_of))
        },
        || async {
            let what = match role {
                Role::Service(s) => format!("service {s}"),
                r => r.purpose(),
            };
            let out = ec2
                .create_security_group()
                .group_name(&name)
                .description(format!("fintech-infra {what} ({})", ctx.suffix()))
                .vpc_id(&vpc.id)
                .tag_specifications(tag_spec(ctx, ResourceType::SecurityGroup, &name))
                .send()
                .await
                .aws("ec2:CreateSecurityGroup", &name)?;
            let id = out
                .group_id()
                .context("CreateSecurityGroup returned no ID")?;
            let found = found_of(id);
            ctx.record(KIND, &name, &found)?;
            // AWS gives every new group an allow-all egress rule; the stack's egress is
            // explicit, so remove it as part of creating the group.
            ec2.revoke_security_group_egress()
                .group_id(id)
                .ip_permissions(
                    IpPermission::builder()
                        .ip_protocol("-1")
                        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                        .build(),
                )
                .send()
                .await
                .aws("ec2:RevokeSecurityGroupEgress", id)
                // A revoke whose answer was lost is retried (by the SDK, or by a re-run of
                // the step) and finds the rule gone: InvalidPermission.NotFound is success.
                .not_found_ok()?;
            Ok(found)
        },
    )
    .await
}

/// A group of this stack the config no longer asks for.
#[derive(Debug, Clone)]
pub struct StaleGroup {
    pub id: String,
    pub name: String,
    /// Network interfaces still using it (ECS tasks, Lambda or endpoint ENIs).
    pub enis: Vec<String>,
}

/// The groups of this stack in the VPC that the config no longer asks for (`wanted` are
/// the ones it asks for): recorded ones (a removed service's, the shared
/// `secgroup-app-<suffix>` of earlier versions) and ones only tagged as this stack's (a
/// state that lost them). Each with the network interfaces still using it. Records of
/// groups that are gone are dropped.
pub async fn stale(
    ctx: &StepCtx,
    vpc: &Found,
    listed: &[SecurityGroup],
    wanted: &[&Found],
) -> Result<Vec<StaleGroup>> {
    if vpc.is_pending() {
        return Ok(Vec::new());
    }
    let wanted_ids: BTreeSet<&str> = wanted.iter().map(|f| f.id.as_str()).collect();
    let recorded = ctx.records(Some(KIND));
    let mut stale = Vec::new();
    for g in listed {
        let (Some(id), Some(name)) = (g.group_id(), g.group_name()) else {
            continue;
        };
        if wanted_ids.contains(id) {
            continue;
        }
        let is_recorded = recorded.iter().any(|r| r.id == id);
        let tagged = is_ours(ctx, g.tags(), name) && name.starts_with("secgroup-");
        if !(is_recorded || tagged) {
            // The VPC's default group, or one made by hand: not the stack's to delete.
            continue;
        }
        let enis = network_interface::ids_using_group(ctx, id).await?;
        stale.push(StaleGroup {
            id: id.to_string(),
            name: name.to_string(),
            enis,
        });
    }
    // `listed` predates the groups this run created (they are in `wanted`).
    let live: BTreeSet<&str> = listed.iter().filter_map(|g| g.group_id()).collect();
    for rec in recorded {
        let in_this_vpc = rec.attrs.get("vpc_id").is_none_or(|v| *v == vpc.id);
        let gone = !live.contains(rec.id.as_str()) && !wanted_ids.contains(rec.id.as_str());
        if in_this_vpc && gone {
            // Deleted outside the stack: nothing to reconcile, nothing for `down`.
            ctx.forget(KIND, &rec.id)?;
        }
    }
    Ok(stale)
}

/// Deletes the `stale` groups nothing uses any more (run after their rules converged);
/// the others stay, recorded with why.
pub async fn delete_stale(ctx: &StepCtx, stale: &[StaleGroup]) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    for g in stale {
        if !g.enis.is_empty() {
            // ECS tasks (or Lambda or endpoint ENIs) still run in it: deleting would be
            // refused (DependencyViolation), and revoking the rules that let them work
            // would cut them off before ECS has moved them to their new group.
            keep_stale(ctx, g, &format!("still used by {}", g.enis.join(", ")))?;
            continue;
        }
        ctx.change(KIND, &g.name, "delete: no longer configured", || async {
            let deleted = ec2
                .delete_security_group()
                .group_id(&g.id)
                .send()
                .await
                .map(|_| ())
                .aws("ec2:DeleteSecurityGroup", &g.id);
            match deleted {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                // Something took it meanwhile (a task starting, a rule added by hand).
                Err(e) if e.kind() == AwsErrorKind::DependencyViolation => {
                    return keep_stale(ctx, g, &format!("AWS refused: {e}"));
                }
                Err(e) => return Err(e.into()),
            }
            ctx.deleted(KIND, &g.id)?;
            // Its own rules went with it.
            for rec in ctx.records(Some(security_group_rule::KIND)) {
                if rec.attrs.get("group_id") == Some(&g.id) {
                    ctx.forget(security_group_rule::KIND, &rec.id)?;
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Leaves a group the config no longer asks for in place, recorded with why, and says so.
fn keep_stale(ctx: &StepCtx, g: &StaleGroup, why: &str) -> Result<()> {
    let note = format!(
        "no longer configured, not deleted yet ({why}); the next `up` or `down` removes it"
    );
    let vpc = ctx
        .records(Some(KIND))
        .into_iter()
        .find(|r| r.id == g.id)
        .and_then(|r| r.attrs.get("vpc_id").cloned())
        .unwrap_or_default();
    ctx.record(
        KIND,
        &g.name,
        &Found::new(&g.id).attr("vpc_id", vpc).attr("note", &note),
    )?;
    ctx.sh.reporter.message(
        ctx.step,
        &format!("security group {} ({}): {note}", g.name, g.id),
    );
    Ok(())
}

/// Security Hub EC2.2: the VPC's default security group allows nothing. AWS gives every
/// VPC a default group that admits traffic from its own members and allows all egress
/// (<https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html>); it
/// cannot be deleted, and anything launched without a group lands in it. Every rule it
/// has (the defaults, or one added by hand later) is revoked through [`StepCtx::change`],
/// so `plan` shows it and a second `up` finds nothing to do. Nothing is recorded: the
/// group goes with the VPC.
pub async fn restrict_default(ctx: &StepCtx, vpc: &Found) -> Result<()> {
    if vpc.is_pending() {
        return Ok(());
    }
    let out = ctx
        .aws()
        .ec2()
        .describe_security_groups()
        .filters(filter("vpc-id", &vpc.id))
        .filters(filter("group-name", "default"))
        .send()
        .await
        .aws("ec2:DescribeSecurityGroups", &vpc.id)?;
    // Checked here too: emulators may ignore the filters.
    let Some(group_id) = out
        .security_groups()
        .iter()
        .find(|g| g.vpc_id() == Some(vpc.id.as_str()) && g.group_name() == Some("default"))
        .and_then(|g| g.group_id())
        .map(str::to_string)
    else {
        return Ok(());
    };
    let name = format!("default security group {group_id} of {}", vpc.id);
    for r in security_group_rule::of_groups(ctx, std::slice::from_ref(&group_id)).await? {
        let Some(rule_id) = r.security_group_rule_id().map(str::to_string) else {
            continue;
        };
        let egress = r.is_egress() == Some(true);
        let what = format!(
            "revoke {} (the default group allows nothing: Security Hub EC2.2)",
            security_group_rule::label(&r)
        );
        ctx.change(KIND, &name, &what, || {
            security_group_rule::revoke(ctx, &group_id, &rule_id, egress)
        })
        .await?;
    }
    Ok(())
}

/// Deletes the group `id`, retrying while ENIs or other groups' rules hold it; "not found"
/// counts as deleted.
pub async fn delete(ctx: &StepCtx, id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    ctx.retry_dependency(&format!("{KIND} {id}"), || async {
        ec2.delete_security_group()
            .group_id(id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:DeleteSecurityGroup", id)
    })
    .await
}

#[async_trait]
impl Provider for Group {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        // A group the config no longer asks for (a removed service's, the shared app
        // group of earlier versions) says so: `up` deletes it once nothing uses it.
        let wanted = Role::of(ctx.cfg())
            .iter()
            .any(|r| r.group_name(ctx.names()) == rec.name);
        Ok(ctx
            .aws()
            .ec2()
            .describe_security_groups()
            .group_ids(id)
            .send()
            .await
            .aws("ec2:DescribeSecurityGroups", id)
            .not_found_ok()?
            .and_then(|o| {
                o.security_groups()
                    .first()
                    .map(|_| match rec.attrs.get("note") {
                        Some(note) if !wanted => format!("exists; {note}"),
                        _ if !wanted => "exists; no longer configured: the next `up` \
                                         deletes it once nothing uses it"
                            .to_string(),
                        _ => "exists".to_string(),
                    })
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
