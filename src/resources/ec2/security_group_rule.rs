//! `ec2:security-group-rule`: one ingress or egress rule of a security group, by its rule
//! ID (`sgr-...`), tagged like every resource of the stack, recorded with its group and
//! direction (the revoke call needs both).
//!
//! [`converge`] makes the rules of the stack's groups exactly a desired set: it creates the
//! missing ones and revokes the ones nothing asks for any more, in the order AWS's quotas
//! and the running tasks need (see there). A rule added by hand is left alone, except the
//! allow-all egress rule AWS gives every new group: the stack's egress is explicit.
//!
//! A group referenced by another group's rule cannot be deleted: teardown revokes the
//! recorded rules before deleting the groups.

use std::collections::BTreeSet;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_ec2::types::{
    Filter, IpPermission, IpRange, PrefixListId, ResourceType, SecurityGroupRule, UserIdGroupPair,
};

use super::security_group::StaleGroup;
use super::tag_spec;
use crate::aws::{AwsResultExt, NotFoundOk};
use crate::naming::STACK_TAG;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "ec2:security-group-rule";

pub struct Rule;

/// Where a rule found in AWS points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Cidr(String),
    Group(String),
    PrefixList(String),
}

impl Target {
    /// The peer of a described rule (`None` for peers the stack never uses, e.g. IPv6).
    pub fn of(r: &SecurityGroupRule) -> Option<Target> {
        if let Some(g) = r.referenced_group_info().and_then(|g| g.group_id()) {
            return Some(Target::Group(g.to_string()));
        }
        if let Some(p) = r.prefix_list_id() {
            return Some(Target::PrefixList(p.to_string()));
        }
        r.cidr_ipv4().map(|c| Target::Cidr(c.to_string()))
    }
}

/// A rule the stack wants, with the IDs of its group and peer known: one TCP port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRule {
    /// The rule's name (and `Name` tag): `<group name> <direction> tcp/<port> <peer>`.
    pub name: String,
    pub group_id: String,
    pub egress: bool,
    /// The first port of the rule's range.
    pub port: i32,
    /// The last port of the range (`port` for a single port).
    pub to_port: i32,
    pub target: Target,
    pub description: String,
}

impl DesiredRule {
    /// Whether the described rule `r` is this one.
    pub fn matches(&self, r: &SecurityGroupRule) -> bool {
        r.group_id() == Some(self.group_id.as_str())
            && r.is_egress() == Some(self.egress)
            && r.ip_protocol() == Some("tcp")
            && r.from_port() == Some(self.port)
            && r.to_port() == Some(self.to_port)
            && Target::of(r).as_ref() == Some(&self.target)
    }
}

/// What [`converge`] does with a rule of the stack's groups that no [`DesiredRule`] asks
/// for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unwanted {
    Revoke,
    Keep,
    /// Keep, and record it so that `down` revokes it.
    KeepAndRecord,
}

/// The allow-all egress rule AWS gives every new group.
fn is_allow_all_egress(r: &SecurityGroupRule) -> bool {
    r.is_egress() == Some(true)
        && r.ip_protocol() == Some("-1")
        && r.cidr_ipv4() == Some("0.0.0.0/0")
}

/// Whether a rule carries this stack's tag (every rule the stack creates does).
fn is_ours(ctx: &StepCtx, r: &SecurityGroupRule) -> bool {
    r.tags()
        .iter()
        .any(|t| t.key() == Some(STACK_TAG) && t.value() == Some(ctx.suffix()))
}

/// A described rule's `Name` tag, else a description of it.
pub fn label(r: &SecurityGroupRule) -> String {
    if let Some(n) = r
        .tags()
        .iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
    {
        return n.to_string();
    }
    let peer = match Target::of(r) {
        Some(Target::Cidr(c)) => c,
        Some(Target::Group(g)) => g,
        Some(Target::PrefixList(p)) => p,
        None => "?".into(),
    };
    format!(
        "{} {} {}/{} {peer} ({})",
        r.group_id().unwrap_or_default(),
        if r.is_egress() == Some(true) {
            "egress"
        } else {
            "ingress"
        },
        r.ip_protocol().unwrap_or_default(),
        r.from_port().unwrap_or_default(),
        r.security_group_rule_id().unwrap_or_default()
    )
}

/// The fate of an unwanted rule `r`: in a group the config asks for (`wanted`) it is revoked
/// when it is ours (or the allow-all egress rule), unless it references a group that ENIs
/// still use (`in_use`: its tasks need the path until they move); in a group about to be
/// deleted (`doomed`) only a reference to another doomed group is revoked (it would block
/// that group's deletion; the rest goes with the group); in a group still in use everything
/// stays.
fn unwanted_action(
    r: &SecurityGroupRule,
    wanted: &BTreeSet<&str>,
    in_use: &BTreeSet<&str>,
    doomed: &BTreeSet<&str>,
    ours: bool,
) -> Unwanted {
    let group = r.group_id().unwrap_or_default();
    let peer = match Target::of(r) {
        Some(Target::Group(g)) => Some(g),
        _ => None,
    };
    let refs = |set: &BTreeSet<&str>| peer.as_deref().is_some_and(|p| set.contains(p));
    let keep = if ours {
        Unwanted::KeepAndRecord
    } else {
        Unwanted::Keep
    };
    if wanted.contains(group) {
        if is_allow_all_egress(r) {
            Unwanted::Revoke
        } else if refs(in_use) {
            keep
        } else if ours {
            Unwanted::Revoke
        } else {
            Unwanted::Keep
        }
    } else if doomed.contains(group) {
        if refs(doomed) && peer.as_deref() != Some(group) {
            Unwanted::Revoke
        } else {
            Unwanted::Keep
        }
    } else {
        keep
    }
}

/// The rules of `group_ids`, in one paginated call.
pub async fn of_groups(ctx: &StepCtx, group_ids: &[String]) -> Result<Vec<SecurityGroupRule>> {
    if group_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pages = ctx
        .aws()
        .ec2()
        .describe_security_group_rules()
        .filters(
            Filter::builder()
                .name("group-id")
                .set_values(Some(group_ids.to_vec()))
                .build(),
        )
        .into_paginator()
        .send();
    let mut rules = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.aws("ec2:DescribeSecurityGroupRules", group_ids.join(","))?;
        rules.extend(page.security_group_rules().iter().cloned());
    }
    Ok(rules)
}

/// Revokes one rule by its ID ("not found" counts as revoked).
pub async fn revoke(ctx: &StepCtx, group_id: &str, rule_id: &str, egress: bool) -> Result<()> {
    revoke_call(ctx, group_id, rule_id, egress)
        .await
        .not_found_ok()?;
    Ok(())
}

/// The revoke call itself, with the SDK's error.
async fn revoke_call(
    ctx: &StepCtx,
    group_id: &str,
    rule_id: &str,
    egress: bool,
) -> Result<(), crate::aws::AwsError> {
    let ec2 = ctx.aws().ec2();
    if egress {
        ec2.revoke_security_group_egress()
            .group_id(group_id)
            .security_group_rule_ids(rule_id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:RevokeSecurityGroupEgress", rule_id)
    } else {
        ec2.revoke_security_group_ingress()
            .group_id(group_id)
            .security_group_rule_ids(rule_id)
            .send()
            .await
            .map(|_| ())
            .aws("ec2:RevokeSecurityGroupIngress", rule_id)
    }
}

/// Creates the rule `w`; returns its rule ID (its name if AWS returned none).
async fn authorize(ctx: &StepCtx, w: &DesiredRule) -> Result<String> {
    let ec2 = ctx.aws().ec2();
    let description = w.description.as_str();
    let perm = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(w.port)
        .to_port(w.to_port);
    let perm = match &w.target {
        Target::Cidr(c) => perm.ip_ranges(
            IpRange::builder()
                .cidr_ip(c)
                .description(description)
                .build(),
        ),
        Target::Group(g) => perm.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(g)
                .description(description)
                .build(),
        ),
        Target::PrefixList(p) => perm.prefix_list_ids(
            PrefixListId::builder()
                .prefix_list_id(p)
                .description(description)
                .build(),
        ),
    };
    let tags = tag_spec(ctx, ResourceType::SecurityGroupRule, &w.name);
    let ids: Vec<String> = if w.egress {
        ec2.authorize_security_group_egress()
            .group_id(&w.group_id)
            .ip_permissions(perm.build())
            .tag_specifications(tags)
            .send()
            .await
            .aws("ec2:AuthorizeSecurityGroupEgress", &w.name)?
            .security_group_rules()
            .iter()
            .filter_map(|r| r.security_group_rule_id().map(str::to_string))
            .collect()
    } else {
        ec2.authorize_security_group_ingress()
            .group_id(&w.group_id)
            .ip_permissions(perm.build())
            .tag_specifications(tags)
            .send()
            .await
            .aws("ec2:AuthorizeSecurityGroupIngress", &w.name)?
            .security_group_rules()
            .iter()
            .filter_map(|r| r.security_group_rule_id().map(str::to_string))
            .collect()
    };
    Ok(ids.into_iter().next().unwrap_or_else(|| w.name.clone()))
}

/// Makes the rules of the groups `wanted` (the IDs of the groups the config asks for, plan
/// placeholders included) and `stale` (the stack's groups it no longer asks for) exactly
/// `desired`: creates the missing ones, revokes the ones nothing asks for any more that are
/// recorded or tagged as this stack's (and the allow-all egress rule), and keeps, recorded,
/// the ones a group still in use needs. Records of rules that no longer exist are dropped.
pub async fn converge(
    ctx: &StepCtx,
    desired: &[DesiredRule],
    wanted: &[&Found],
    stale: &[StaleGroup],
) -> Result<()> {
    let mut listed_ids: Vec<String> = wanted
        .iter()
        .filter(|g| !g.is_pending())
        .map(|g| g.id.clone())
        .collect();
    listed_ids.extend(stale.iter().map(|g| g.id.clone()));
    let existing = of_groups(ctx, &listed_ids).await?;

    // Records of rules that no longer exist (revoked by hand, or gone with their group).
    let existing_ids: BTreeSet<&str> = existing
        .iter()
        .filter_map(|r| r.security_group_rule_id())
        .collect();
    let recorded_groups: BTreeSet<String> = ctx
        .records(Some(super::security_group::KIND))
        .into_iter()
        .map(|g| g.id)
        .collect();
    for rec in ctx.records(Some(KIND)) {
        let group = rec.attrs.get("group_id").map(String::as_str).unwrap_or("");
        // Its group's rules were just listed, or its group is no longer the stack's.
        let group_known = listed_ids.iter().any(|g| g == group) || !recorded_groups.contains(group);
        if group_known && !existing_ids.contains(rec.id.as_str()) {
            ctx.forget(KIND, &rec.id)?;
        }
    }
    let recorded: BTreeSet<String> = ctx.records(Some(KIND)).into_iter().map(|r| r.id).collect();

    let wanted_groups: BTreeSet<&str> = wanted.iter().map(|g| g.id.as_str()).collect();
    let in_use: BTreeSet<&str> = stale
        .iter()
        .filter(|g| !g.enis.is_empty())
        .map(|g| g.id.as_str())
        .collect();
    let doomed: BTreeSet<&str> = stale
        .iter()
        .filter(|g| g.enis.is_empty())
        .map(|g| g.id.as_str())
        .collect();
    let mut unwanted: Vec<&SecurityGroupRule> = Vec::new();
    for r in &existing {
        if desired.iter().any(|w| w.matches(r)) {
            continue;
        }
        let id = r.security_group_rule_id().unwrap_or_default();
        let ours = recorded.contains(id) || is_ours(ctx, r);
        match unwanted_action(r, &wanted_groups, &in_use, &doomed, ours) {
            Unwanted::Revoke => unwanted.push(r),
            Unwanted::Keep => {}
            Unwanted::KeepAndRecord => {
                // Kept while a group it references (or its own) is still in use; recorded
                // so that `down` revokes it before deleting that group.
                let found = Found::new(id)
                    .attr("group_id", r.group_id().unwrap_or_default())
                    .attr("egress", r.is_egress().unwrap_or_default().to_string());
                ctx.record(KIND, &label(r), &found)?;
            }
        }
    }
    // Rules that reference a prefix list first: AWS counts each as the list's max entries
    // (55 for CloudFront's) against the 60-rule quota, so a new one fits only once the old
    // one is gone (the ALB's port moving from 80 to 443). Other rules are revoked after
    // the new ones exist, so that no path is cut in between.
    let (heavy, light): (Vec<&SecurityGroupRule>, Vec<&SecurityGroupRule>) = unwanted
        .into_iter()
        .partition(|r| r.prefix_list_id().is_some());
    revoke_unwanted(ctx, &heavy).await?;

    for w in desired {
        let found = existing.iter().find(|r| w.matches(r));
        let existing_found = found.and_then(|r| r.security_group_rule_id()).map(|id| {
            Found::new(id)
                .attr("group_id", &w.group_id)
                .attr("egress", w.egress.to_string())
        });
        ctx.ensure(
            KIND,
            &w.name,
            || async { Ok(existing_found) },
            || async {
                let id = authorize(ctx, w).await?;
                Ok(Found::new(id)
                    .attr("group_id", &w.group_id)
                    .attr("egress", w.egress.to_string()))
            },
        )
        .await?;
    }

    revoke_unwanted(ctx, &light).await
}

/// Revokes rules the config no longer asks for, forgetting each.
async fn revoke_unwanted(ctx: &StepCtx, rules: &[&SecurityGroupRule]) -> Result<()> {
    for r in rules {
        let id = r.security_group_rule_id().unwrap_or_default().to_string();
        let group = r.group_id().unwrap_or_default().to_string();
        let egress = r.is_egress() == Some(true);
        let what = if is_allow_all_egress(r) {
            "revoke: the allow-all egress rule (egress is explicit)"
        } else {
            "revoke: no longer configured"
        };
        ctx.change(KIND, &label(r), what, || async {
            revoke(ctx, &group, &id, egress).await?;
            ctx.deleted(KIND, &id)
        })
        .await?;
    }
    Ok(())
}

/// Revokes the rule recorded as `rec` (its `group_id` and `egress`), retrying while AWS
/// reports a dependency; "not found" counts as revoked.
pub async fn delete(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
    let group = rec.attrs.get("group_id").cloned().unwrap_or_default();
    let egress = rec.attrs.get("egress").is_some_and(|e| e == "true");
    ctx.retry_dependency(&format!("{KIND} {}", rec.id), || {
        revoke_call(ctx, &group, &rec.id, egress)
    })
    .await
}

#[async_trait]
impl Provider for Rule {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
            .aws()
            .ec2()
            .describe_security_group_rules()
            .security_group_rule_ids(id)
            .send()
            .await
            .aws("ec2:DescribeSecurityGroupRules", id)
            .not_found_ok()?
            .and_then(|o| {
                o.security_group_rules().first().map(|r| {
                    let peer = match Target::of(r) {
                        Some(Target::Cidr(c)) => c,
                        Some(Target::Group(g)) => g,
                        Some(Target::PrefixList(p)) => p,
                        None => "?".into(),
                    };
                    format!(
                        "{} tcp/{} {} {peer}",
                        if r.is_egress() == Some(true) {
                            "egress"
                        } else {
                            "ingress"
                        },
                        r.from_port().unwrap_or_default(),
                        if r.is_egress() == Some(true) {
                            "to"
                        } else {
                            "from"
                        },
                    )
                })
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, rec).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, egress: bool, peer: Option<&str>) -> SecurityGroupRule {
        let b = SecurityGroupRule::builder()
            .security_group_rule_id(format!("sgr-{group}-{egress}"))
            .group_id(group)
            .is_egress(egress)
            .ip_protocol("tcp")
            .from_port(80)
            .to_port(80);
        match peer {
            Some(p) => b
                .referenced_group_info(
                    aws_sdk_ec2::types::ReferencedSecurityGroup::builder()
                        .group_id(p)
                        .build(),
                )
                .build(),
            None => b.cidr_ipv4("0.0.0.0/0").build(),
        }
    }

    #[test]
    fn unwanted_rules_go_unless_a_group_still_in_use_needs_them() {
        let set = |v: &[&'static str]| v.iter().copied().collect::<BTreeSet<&str>>();
        let wanted = set(&["sg-alb", "sg-db"]);
        let in_use = set(&["sg-app"]);
        let doomed = set(&["sg-old", "sg-older"]);
        let act = |r: &SecurityGroupRule, ours| unwanted_action(r, &wanted, &in_use, &doomed, ours);
        // Ours and no longer configured (the ALB's old internet ingress): revoked.
        assert_eq!(act(&rule("sg-alb", false, None), true), Unwanted::Revoke);
        // Added by hand: left alone.
        assert_eq!(act(&rule("sg-alb", false, None), false), Unwanted::Keep);
        // The allow-all egress is drift whoever added it.
        let all = SecurityGroupRule::builder()
            .group_id("sg-db")
            .is_egress(true)
            .ip_protocol("-1")
            .cidr_ipv4("0.0.0.0/0")
            .build();
        assert_eq!(act(&all, false), Unwanted::Revoke);
        // The database's ingress from the old shared group, while tasks still use it: kept
        // (and recorded, for `down`), so that they keep working until they move.
        assert_eq!(
            act(&rule("sg-db", false, Some("sg-app")), true),
            Unwanted::KeepAndRecord
        );
        assert_eq!(
            act(&rule("sg-db", false, Some("sg-old")), true),
            Unwanted::Revoke
        );
        // In a group about to go: only a reference to another doomed group is revoked.
        assert_eq!(
            act(&rule("sg-old", true, Some("sg-older")), true),
            Unwanted::Revoke
        );
        assert_eq!(
            act(&rule("sg-old", true, Some("sg-db")), true),
            Unwanted::Keep
        );
        assert_eq!(
            act(&rule("sg-old", true, Some("sg-old")), true),
            Unwanted::Keep
        );
        // In a group still in use everything stays.
        assert_eq!(
            act(&rule("sg-app", true, Some("sg-db")), true),
            Unwanted::KeepAndRecord
        );
    }

    #[test]
    fn a_prefix_list_rule_is_matched_by_its_list() {
        let w = DesiredRule {
            name: String::new(),
            group_id: "sg-alb".into(),
            egress: false,
            port: 443,
            to_port: 443,
            target: Target::PrefixList("pl-cf".into()),
            description: String::new(),
        };
        let described = |pl: &str, port: i32| {
            SecurityGroupRule::builder()
                .group_id("sg-alb")
                .is_egress(false)
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .prefix_list_id(pl)
                .build()
        };
        assert!(w.matches(&described("pl-cf", 443)));
        assert!(!w.matches(&described("pl-cf", 80)));
        assert!(!w.matches(&described("pl-other", 443)));
        assert!(!w.matches(&rule("sg-alb", false, None)));
    }
}
