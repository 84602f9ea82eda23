//! Application Auto Scaling resource types: the scalable target of an ECS service's desired
//! count and its target-tracking policies (the services step's auto scaling).
//!
//! Both are addressed by the service namespace `ecs`, the resource ID
//! `service/<cluster>/<service>` and the dimension `ecs:service:DesiredCount`; a policy is
//! named within its scalable target.

pub mod scalable_target;
pub mod scaling_policy;

#[cfg(test)]
mod tests {
    #[test]
    fn every_auto_scaling_kind_is_registered() {
        for kind in [super::scalable_target::KIND, super::scaling_policy::KIND] {
            assert!(crate::resources::provider(kind).is_some(), "{kind}");
        }
    }
}
