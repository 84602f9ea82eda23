//! `down` from the state file alone: every record carries the resources it was built on, and
//! the teardown follows those edges, so neither the config nor the steps' order is needed.

use serde_json::Value;

use crate::util::*;

/// The `deps` a record of `kind` saved, as (kind, id) pairs.
fn deps_of<'a>(state: &'a Value, kind: &str) -> Vec<Vec<(&'a str, &'a str)>> {
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| {
            r["deps"]
                .as_array()
                .unwrap_or_else(|| panic!("{kind} record without deps: {r}"))
                .iter()
                .map(|d| (d["kind"].as_str().unwrap(), d["id"].as_str().unwrap()))
                .collect()
        })
        .collect()
}

#[test]
fn records_name_what_they_are_built_on_and_down_needs_only_the_state() {
    let stack = Stack::new("deps");
    stack.up(&["--no-verify"]).assert_ok();
    let state = stack.state();
    let id_of = |kind: &str| -> Vec<String> {
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    // A NAT gateway is built on its own subnet and Elastic IP (named in its record), not on
    // every one.
    for nat in deps_of(&state, "ec2:nat-gateway") {
        let subnets: Vec<_> = nat.iter().filter(|d| d.0 == "ec2:subnet").collect();
        let eips: Vec<_> = nat.iter().filter(|d| d.0 == "ec2:elastic-ip").collect();
        assert_eq!((subnets.len(), eips.len()), (1, 1), "{nat:?}");
    }
    // A subnet on its VPC; an Aurora instance on its cluster; the cluster on its groups.
    let vpcs = id_of("ec2:vpc");
    for s in deps_of(&state, "ec2:subnet") {
        assert_eq!(s, vec![("ec2:vpc", vpcs[0].as_str())]);
    }
    let clusters = id_of("rds:db-cluster");
    for i in deps_of(&state, "rds:db-instance") {
        assert_eq!(i, vec![("rds:db-cluster", clusters[0].as_str())]);
    }
    let cluster_deps = &deps_of(&state, "rds:db-cluster")[0];
    for kind in ["rds:db-subnet-group", "ec2:security-group", "kms:key"] {
        assert!(
            cluster_deps.iter().any(|d| d.0 == kind),
            "{kind} missing: {cluster_deps:?}"
        );
    }

    // No config anywhere: the state's record of it removed as well.
    let mut stripped = state.clone();
    stripped.as_object_mut().unwrap().remove("config");
    std::fs::write(
        stack.state_path(),
        serde_json::to_string_pretty(&stripped).unwrap(),
    )
    .unwrap();
    stack.down(&[]).assert_ok();
    assert!(!stack.state_path().exists(), "state file left after down");
    let left = block_on(remaining_anywhere(&stack.endpoint, &stack.suffix));
    assert!(left.is_empty(), "left after down: {left:?}");
}
