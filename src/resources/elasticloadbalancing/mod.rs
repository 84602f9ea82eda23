//! Elastic Load Balancing (v2) resource types: the ALB, its target groups, listeners and
//! listener rules, plus what they share: the stack's tags as ELB tags and the forward and
//! redirect actions listeners and rules take.
//!
//! Every ELB resource is identified by its ARN (the record's ID). Deletes go in the order ELB
//! enforces: rules, listeners, target groups (refused with `ResourceInUse` while a listener or
//! rule still forwards to them), then the load balancer.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, RedirectActionConfig,
    RedirectActionStatusCodeEnum, Tag, TargetGroupStickinessConfig, TargetGroupTuple,
};

use crate::step::StepCtx;

pub mod listener;
pub mod listener_rule;
pub mod load_balancer;
pub mod target_group;

/// The stack's tags (and `Name`) as ELB tags.
pub fn elb_tags(ctx: &StepCtx, name: &str) -> Vec<Tag> {
    ctx.tags(Some(name))
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// (target group ARN, weight) pairs an action forwards to, sorted.
pub fn forward_targets(a: &Action) -> Vec<(String, i32)> {
    let mut v: Vec<(String, i32)> = match a.forward_config() {
        Some(f) if !f.target_groups().is_empty() => f
            .target_groups()
            .iter()
            .map(|t| {
                (
                    t.target_group_arn().unwrap_or_default().to_string(),
                    t.weight().unwrap_or(1),
                )
            })
            .collect(),
        _ => a
            .target_group_arn()
            .map(|t| vec![(t.to_string(), 1)])
            .unwrap_or_default(),
    };
    v.sort();
    v
}

/// What a listener's default action (or a listener rule's action) should be.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenerDefault {
    Forward(Vec<(String, i32)>),
    RedirectHttps,
}

/// The (blue, green) weights of a listener whose one default action forwards only to the
/// target groups `blue` and `green` (a group left out has weight 0); `None` for any other
/// default action. How a `codedeploy-*` service's split is read back: CodeDeploy, not the
/// config, moves that listener's traffic.
pub fn pair_weights(actions: &[Action], blue: &str, green: &str) -> Option<(i32, i32)> {
    let [a] = actions else { return None };
    if a.r#type() != Some(&ActionTypeEnum::Forward) {
        return None;
    }
    let targets = forward_targets(a);
    if targets.is_empty() || targets.iter().any(|(arn, _)| arn != blue && arn != green) {
        return None;
    }
    let weight = |arn: &str| {
        targets
            .iter()
            .filter(|(a, _)| a == arn)
            .map(|(_, w)| *w)
            .sum::<i32>()
    };
    let (b, g) = (weight(blue), weight(green));
    (b + g > 0).then_some((b, g))
}

/// The default action of a listener CodeDeploy shifts, exactly as it is (`None` unless it
/// forwards only to `blue` and `green`): CodeDeploy writes a plain forward on the test
/// listener and weighted ones on the production listener, and `up` must leave either alone.
pub fn pair_forward(actions: &[Action], blue: &str, green: &str) -> Option<ListenerDefault> {
    pair_weights(actions, blue, green)?;
    Some(ListenerDefault::Forward(forward_targets(&actions[0])))
}

impl ListenerDefault {
    pub fn action(&self) -> Action {
        match self {
            ListenerDefault::Forward(targets) => Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .set_target_groups(Some(
                            targets
                                .iter()
                                .map(|(arn, w)| {
                                    TargetGroupTuple::builder()
                                        .target_group_arn(arn)
                                        .weight(*w)
                                        .build()
                                })
                                .collect(),
                        ))
                        .target_group_stickiness_config(
                            TargetGroupStickinessConfig::builder()
                                .enabled(false)
                                .build(),
                        )
                        .build(),
                )
                .build(),
            ListenerDefault::RedirectHttps => Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol("HTTPS")
                        .port("443")
                        .host("#{host}")
                        .path("/#{path}")
                        .query("#{query}")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build(),
        }
    }

    pub fn matches(&self, actions: &[Action]) -> bool {
        let [a] = actions else { return false };
        match self {
            ListenerDefault::Forward(targets) => {
                a.r#type() == Some(&ActionTypeEnum::Forward) && forward_targets(a) == *targets
            }
            ListenerDefault::RedirectHttps => {
                a.r#type() == Some(&ActionTypeEnum::Redirect)
                    && a.redirect_config().is_some_and(|r| {
                        r.protocol() == Some("HTTPS")
                            && r.port() == Some("443")
                            && r.status_code() == Some(&RedirectActionStatusCodeEnum::Http301)
                    })
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ListenerDefault::Forward(t) => format!(
                "forward to {}",
                t.iter()
                    .map(|(arn, w)| format!("{} ({w})", tg_name_of(arn)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ListenerDefault::RedirectHttps => "redirect to HTTPS (301)".into(),
        }
    }
}

/// A target group's name from its ARN (`...:targetgroup/<name>/<id>`).
pub fn tg_name_of(arn: &str) -> &str {
    arn.split('/').nth(1).unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_weights_reads_codedeploys_split_and_nothing_else() {
        let fwd = |t: &[(&str, i32)]| {
            ListenerDefault::Forward(t.iter().map(|(a, w)| (a.to_string(), *w)).collect()).action()
        };
        assert_eq!(
            pair_weights(&[fwd(&[("b", 90), ("g", 10)])], "b", "g"),
            Some((90, 10))
        );
        assert_eq!(
            pair_weights(&[fwd(&[("g", 100)])], "b", "g"),
            Some((0, 100))
        );
        let plain = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .target_group_arn("g")
            .build();
        assert_eq!(
            pair_weights(std::slice::from_ref(&plain), "b", "g"),
            Some((0, 1))
        );
        // Kept as it is: a plain forward stays one (`up` makes no change to it).
        let kept = pair_forward(std::slice::from_ref(&plain), "b", "g").unwrap();
        assert!(kept.matches(&[plain]), "{kept:?}");
        assert_eq!(
            pair_weights(&[fwd(&[("b", 50), ("x", 50)])], "b", "g"),
            None
        );
        assert_eq!(pair_weights(&[fwd(&[("b", 0), ("g", 0)])], "b", "g"), None);
        assert_eq!(
            pair_weights(&[ListenerDefault::RedirectHttps.action()], "b", "g"),
            None
        );
    }

    #[test]
    fn forward_action_matches_itself() {
        let d = ListenerDefault::Forward(vec![("arn:a".into(), 80), ("arn:b".into(), 20)]);
        assert!(d.matches(&[d.action()]));
        let other = ListenerDefault::Forward(vec![("arn:a".into(), 100), ("arn:b".into(), 0)]);
        assert!(!other.matches(&[d.action()]));
        assert!(ListenerDefault::RedirectHttps.matches(&[ListenerDefault::RedirectHttps.action()]));
        assert!(!ListenerDefault::RedirectHttps.matches(&[d.action()]));
    }

    #[test]
    fn every_elb_kind_is_registered() {
        for kind in [
            load_balancer::KIND,
            target_group::KIND,
            listener::KIND,
            listener_rule::KIND,
        ] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }
}
