//! The `multiregion` preset (seed 004) against the emulator: the stack in us-east-2 with WAF
//! on by default, ECR interface endpoints, scaling on requests and database connections, and in us-west-2 a VPC peered with the stack's (routes both ways), a KMS
//! key, a replica bucket the assets bucket replicates to, and the backup vault AWS Backup
//! copies the daily Aurora snapshots into; a second `up` changes nothing;
//! `down` leaves nothing in either region. Also: a DR region equal to the stack's is refused
//! before any AWS call.

use serde_json::Value;

use crate::static_tier::{s3_client, versioning};
use crate::util::*;

const PRIMARY: &str = "us-east-2";
const DR: &str = "us-west-2";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Every route in `tables` to `dest`, as (table, peering connection) pairs.
async fn peering_routes(
    ec2: &aws_sdk_ec2::Client,
    tables: &[String],
    dest: &str,
) -> Vec<(String, String)> {
    let out = ec2
        .describe_route_tables()
        .set_route_table_ids(Some(tables.to_vec()))
        .send()
        .await
        .unwrap();
    out.route_tables()
        .iter()
        .flat_map(|t| {
            t.routes()
                .iter()
                .filter(|r| r.destination_cidr_block() == Some(dest))
                .map(|r| {
                    (
                        t.route_table_id().unwrap_or_default().to_string(),
                        r.vpc_peering_connection_id()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
        })
        .collect()
}

#[test]
fn multiregion_preset_builds_waf_peering_and_replication_and_removes_them() {
    let stack = Stack::new("dr");
    let s = stack.suffix.clone();
    // `plan` on a new stack names what the DR steps would create, in the DR region too.
    let plan = stack.run(&[
        "--output",
        "json",
        "--preset",
        "multiregion",
        "plan",
        "--env-suffix",
        &s,
    ]);
    plan.assert_ok();
    let planned: Vec<(String, String)> = plan.summary()["plan"]
        .as_array()
        .expect("plan items")
        .iter()
        .filter(|l| l["action"] == "create")
        .map(|l| {
            (
                l["step"].as_str().unwrap_or_default().to_string(),
                l["kind"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (step, kind) in [
        ("dr_network", "ec2:vpc"),
        ("dr_network", "ec2:vpc-peering-connection"),
        ("dr_storage", "kms:key"),
        ("dr_storage", "s3:bucket"),
        ("dr_storage", "s3:replication"),
        ("dr_backup", "backup:vault"),
        ("dr_backup", "backup:plan"),
        ("dr_backup", "backup:selection"),
        ("waf", "wafv2:web-acl"),
    ] {
        assert!(
            planned.contains(&(step.to_string(), kind.to_string())),
            "plan lacks {step} {kind}: {planned:?}"
        );
    }
    let up = stack.up(&["--preset", "multiregion"]);
    up.assert_ok();
    // Every path works, the DR ones included.
    let checks = crate::verify::assert_verifies(&stack);
    for dr in [
        "assets bucket → DR replica (replication role)",
        "Aurora → backup vaults (backup role)",
    ] {
        assert!(
            checks.iter().any(|c| c["path"] == dr),
            "no `{dr}` in {checks:#?}"
        );
    }
    let state = stack.state();
    assert_eq!(state["region"], PRIMARY, "the preset's region");
    // `outputs` names the DR side in its headline.
    let out = stack.run(&["outputs", "--env-suffix", &s]);
    out.assert_ok();
    for label in ["DR region", "DR assets replica", "DR backup vault"] {
        assert!(out.stdout.contains(label), "{label}: {}", out.stdout);
    }
    assert!(out.stdout.contains(DR), "{}", out.stdout);

    block_on(async {
        let sdk = sdk_config_in(&stack.endpoint, PRIMARY).await;
        let dr_sdk = sdk_config_in(&stack.endpoint, DR).await;

        // WAF is on by default for this preset, associated with the ALB.
        let waf = aws_sdk_wafv2::Client::new(&sdk);
        let acl = waf
            .get_web_acl_for_resource()
            .resource_arn(stack.output_str("alb_arn"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            acl.web_acl().map(|a| a.name()),
            Some(format!("waf-{s}").as_str())
        );

        // The peering: requested from the stack's VPC, accepted in the DR region, active.
        let pcx_id = stack.output_str("vpc_peering_connection_id");
        let dr_ec2 = aws_sdk_ec2::Client::new(&dr_sdk);
        let pcx = dr_ec2
            .describe_vpc_peering_connections()
            .vpc_peering_connection_ids(&pcx_id)
            .send()
            .await
            .unwrap();
        let pcx = pcx.vpc_peering_connections().first().expect("peering");
        assert_eq!(
            pcx.status().and_then(|s| s.code()).map(|c| c.as_str()),
            Some("active")
        );
        let req = pcx.requester_vpc_info().unwrap();
        let acc = pcx.accepter_vpc_info().unwrap();
        assert_eq!(req.vpc_id(), Some(stack.output_str("vpc_id").as_str()));
        assert_eq!(req.region(), Some(PRIMARY));
        assert_eq!(acc.vpc_id(), Some(stack.output_str("dr_vpc_id").as_str()));
        assert_eq!(acc.region(), Some(DR));

        // The DR VPC: its block, tags, private subnets in two zones.
        let vpcs = dr_ec2
            .describe_vpcs()
            .vpc_ids(stack.output_str("dr_vpc_id"))
            .send()
            .await
            .unwrap();
        let vpc = vpcs.vpcs().first().unwrap();
        assert_eq!(vpc.cidr_block(), Some("10.1.0.0/16"));
        assert_standard_ec2_tags(vpc.tags(), &s, "DR VPC");
        let subnets = strings(&stack.output("dr_private_subnet_ids"));
        assert_eq!(subnets.len(), 2);
        let out = dr_ec2
            .describe_subnets()
            .set_subnet_ids(Some(subnets.clone()))
            .send()
            .await
            .unwrap();
        let zones: std::collections::BTreeSet<_> = out
            .subnets()
            .iter()
            .map(|s| s.availability_zone().unwrap_or_default().to_string())
            .collect();
        assert_eq!(zones.len(), 2, "{zones:?}");
        assert!(zones.iter().all(|z| z.starts_with(DR)), "{zones:?}");
        assert!(out
            .subnets()
            .iter()
            .all(|s| s.map_public_ip_on_launch() != Some(true)));

        // Routes both ways through the peering: every internal route table of the stack to
        // the DR block, the DR route table to the stack's block.
        let ec2 = aws_sdk_ec2::Client::new(&sdk);
        let internal = strings(&stack.output("internal_route_table_ids"));
        assert_eq!(
            internal.len(),
            4,
            "three private tables and the isolated one"
        );
        let there = peering_routes(&ec2, &internal, "10.1.0.0/16").await;
        assert_eq!(there.len(), internal.len(), "{there:?}");
        assert!(there.iter().all(|(_, p)| *p == pcx_id), "{there:?}");
        let dr_tables = dr_ec2
            .describe_route_tables()
            .filters(stack_filter(&s))
            .send()
            .await
            .unwrap();
        let dr_table_ids: Vec<String> = dr_tables
            .route_tables()
            .iter()
            .filter_map(|t| t.route_table_id().map(str::to_string))
            .collect();
        let back = peering_routes(&dr_ec2, &dr_table_ids, "10.0.0.0/16").await;
        assert_eq!(back.len(), 1, "{back:?}");
        assert_eq!(back[0].1, pcx_id);

        // The replica bucket in the DR region: versioned, SSE-KMS with the DR key, private.
        let replica = stack.output_str("dr_assets_bucket");
        let dr_key = stack.output_str("dr_kms_key_arn");
        assert!(dr_key.contains(&format!(":kms:{DR}:")), "{dr_key}");
        let dr_s3 = s3_client(&dr_sdk);
        assert_eq!(
            versioning(&dr_s3, &replica).await.as_deref(),
            Some("Enabled")
        );
        let enc = dr_s3
            .get_bucket_encryption()
            .bucket(&replica)
            .send()
            .await
            .unwrap();
        let rule = enc
            .server_side_encryption_configuration()
            .unwrap()
            .rules()
            .first()
            .unwrap()
            .apply_server_side_encryption_by_default()
            .unwrap()
            .clone();
        assert_eq!(rule.sse_algorithm().as_str(), "aws:kms");
        assert_eq!(rule.kms_master_key_id(), Some(dr_key.as_str()));
        let pab = dr_s3
            .get_public_access_block()
            .bucket(&replica)
            .send()
            .await
            .unwrap();
        let pab = pab.public_access_block_configuration().unwrap();
        assert_eq!(pab.block_public_policy(), Some(true));
        assert_eq!(pab.restrict_public_buckets(), Some(true));
        let loc = dr_s3
            .get_bucket_location()
            .bucket(&replica)
            .send()
            .await
            .unwrap();
        assert_eq!(loc.location_constraint().map(|c| c.as_str()), Some(DR));

        // The assets bucket replicates everything (KMS-encrypted objects and delete markers
        // included) to the replica, re-encrypted with the DR key, as the replication role.
        let s3 = s3_client(&sdk);
        let assets = stack.output_str("assets_bucket");
        let repl = s3
            .get_bucket_replication()
            .bucket(&assets)
            .send()
            .await
            .unwrap();
        let conf = repl.replication_configuration().unwrap();
        assert_eq!(conf.role(), stack.output_str("replication_role_arn"));
        let [rule] = conf.rules() else {
            panic!("one rule: {conf:?}")
        };
        assert_eq!(rule.status().as_str(), "Enabled");
        let dest = rule.destination().unwrap();
        assert_eq!(dest.bucket(), format!("arn:aws:s3:::{replica}"));
        assert_eq!(
            dest.encryption_configuration()
                .and_then(|e| e.replica_kms_key_id()),
            Some(dr_key.as_str())
        );

        // The role's only policy is customer-managed and names the two buckets.
        let iam = aws_sdk_iam::Client::new(&sdk);
        let role = format!("role-s3-replication-{s}");
        let attached = iam
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap();
        let [policy] = attached.attached_policies() else {
            panic!("one policy: {attached:?}")
        };
        let p = iam
            .get_policy()
            .policy_arn(policy.policy_arn().unwrap())
            .send()
            .await
            .unwrap();
        let version = iam
            .get_policy_version()
            .policy_arn(policy.policy_arn().unwrap())
            .version_id(p.policy().unwrap().default_version_id().unwrap())
            .send()
            .await
            .unwrap();
        let doc = percent_encoding::percent_decode_str(
            version.policy_version().unwrap().document().unwrap(),
        )
        .decode_utf8()
        .unwrap()
        .to_string();
        assert!(doc.contains(&format!("arn:aws:s3:::{assets}/*")), "{doc}");
        assert!(doc.contains(&format!("arn:aws:s3:::{replica}/*")), "{doc}");
        assert!(!doc.contains("\"s3:*\""), "{doc}");

        // Aurora snapshots: AWS Backup snapshots the cluster daily into the stack's vault
        // and copies each to the DR vault (each encrypted with its region's key).
        let backup = aws_sdk_backup::Client::new(&sdk);
        let dr_backup = aws_sdk_backup::Client::new(&dr_sdk);
        let vault = backup
            .describe_backup_vault()
            .backup_vault_name(format!("vault-{s}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            vault.encryption_key_arn(),
            Some(stack.output_str("kms_key_arn").as_str())
        );
        let dr_vault = dr_backup
            .describe_backup_vault()
            .backup_vault_name(format!("vault-dr-{s}"))
            .send()
            .await
            .unwrap();
        assert_eq!(dr_vault.encryption_key_arn(), Some(dr_key.as_str()));
        let dr_vault_arn = stack.output_str("dr_backup_vault_arn");
        assert_eq!(dr_vault.backup_vault_arn(), Some(dr_vault_arn.as_str()));
        assert!(dr_vault_arn.contains(&format!(":backup:{DR}:")));
        let plan_id = stack.output_str("backup_plan_id");
        let plan = backup
            .get_backup_plan()
            .backup_plan_id(&plan_id)
            .send()
            .await
            .unwrap();
        let [rule] = plan.backup_plan().unwrap().rules() else {
            panic!("one rule: {plan:?}")
        };
        assert_eq!(rule.target_backup_vault_name(), format!("vault-{s}"));
        assert_eq!(rule.schedule_expression(), Some("cron(0 5 ? * * *)"));
        assert_eq!(
            rule.lifecycle().and_then(|l| l.delete_after_days()),
            Some(7)
        );
        let [copy] = rule.copy_actions() else {
            panic!("one copy action: {rule:?}")
        };
        assert_eq!(copy.destination_backup_vault_arn(), dr_vault_arn);
        assert_eq!(
            copy.lifecycle().and_then(|l| l.delete_after_days()),
            Some(7)
        );
        let selections = backup
            .list_backup_selections()
            .backup_plan_id(&plan_id)
            .send()
            .await
            .unwrap();
        let [sel] = selections.backup_selections_list() else {
            panic!("one selection: {selections:?}")
        };
        let sel = backup
            .get_backup_selection()
            .backup_plan_id(&plan_id)
            .selection_id(sel.selection_id().unwrap())
            .send()
            .await
            .unwrap();
        let sel = sel.backup_selection().unwrap();
        assert_eq!(sel.resources(), [stack.output_str("db_cluster_arn")]);
        assert!(sel
            .iam_role_arn()
            .ends_with(&format!("role/role-backup-{s}")));

        // The web service also scales on ALB requests per task (its blue target group) and
        // on the Aurora cluster's connections.
        let aas = aws_sdk_applicationautoscaling::Client::new(&sdk);
        let resource_id = format!(
            "service/{}/svc-web-{s}",
            stack.output_str("ecs_cluster_name")
        );
        let policies = aas
            .describe_scaling_policies()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
            .resource_id(&resource_id)
            .send()
            .await
            .unwrap();
        let config = |name: &str| {
            policies
                .scaling_policies()
                .iter()
                .find(|p| p.policy_name() == format!("{name}-web-{s}"))
                .unwrap_or_else(|| panic!("policy {name}: {policies:?}"))
                .target_tracking_scaling_policy_configuration()
                .unwrap()
                .clone()
        };
        assert_eq!(policies.scaling_policies().len(), 4);
        let requests = config("scale-requests");
        assert_eq!(requests.target_value(), 1000.0);
        // CodeDeploy's blue/green: both groups of the pair over the running tasks (AWS does
        // not support ALBRequestCountPerTarget with that deployment type).
        let m = requests.customized_metric_specification().unwrap();
        let full = stack.output("alb_target_group_full_names");
        let inputs: Vec<(String, Vec<String>)> = m
            .metrics()
            .iter()
            .filter_map(|q| q.metric_stat())
            .filter_map(|st| st.metric())
            .map(|metric| {
                (
                    metric.metric_name().unwrap_or_default().to_string(),
                    metric
                        .dimensions()
                        .iter()
                        .map(|d| d.value().to_string())
                        .collect(),
                )
            })
            .collect();
        let lb = stack.output_str("alb_full_name");
        for colour in ["blue", "green"] {
            let tg = full[colour].as_str().unwrap().to_string();
            assert!(
                inputs.contains(&("RequestCount".to_string(), vec![lb.clone(), tg.clone()])),
                "{colour}: {inputs:?}"
            );
        }
        assert!(
            inputs.iter().any(|(name, _)| name == "RunningTaskCount"),
            "{inputs:?}"
        );
        assert!(m
            .metrics()
            .iter()
            .any(|q| q.expression() == Some("(FILL(m1, 0) + FILL(m2, 0)) / m3")));
        let conns = config("scale-dbconn");
        assert_eq!(conns.target_value(), 400.0);
        let c = conns.customized_metric_specification().unwrap();
        assert_eq!(c.metric_name(), Some("DatabaseConnections"));
        assert_eq!(c.namespace(), Some("AWS/RDS"));
        assert_eq!(c.dimensions()[0].value(), stack.output_str("db_cluster_id"));

        // ECR through interface endpoints in the private subnets (private DNS on), behind
        // their own group that only the service's tasks and Lambda functions reach, on 443.
        let endpoints = ec2
            .describe_vpc_endpoints()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("vpc-id")
                    .values(stack.output_str("vpc_id"))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let sg_endpoints = stack.output_str("sg_endpoints_id");
        let mut private = strings(&stack.output("private_subnet_ids"));
        private.sort();
        for service in ["ecr.api", "ecr.dkr"] {
            let name = format!("com.amazonaws.{PRIMARY}.{service}");
            let ep = endpoints
                .vpc_endpoints()
                .iter()
                .find(|e| e.service_name() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("no {service} endpoint"));
            assert_eq!(
                ep.vpc_endpoint_type().map(|t| t.as_str()),
                Some("Interface")
            );
            assert_eq!(ep.private_dns_enabled(), Some(true));
            let mut subnets = ep.subnet_ids().to_vec();
            subnets.sort();
            assert_eq!(subnets, private, "{service}");
            let groups: Vec<&str> = ep.groups().iter().filter_map(|g| g.group_id()).collect();
            assert_eq!(groups, [sg_endpoints.as_str()]);
            assert_standard_ec2_tags(ep.tags(), &s, service);
        }
        let rules = ec2
            .describe_security_group_rules()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("group-id")
                    .values(&sg_endpoints)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let mut peers: Vec<(bool, i32, String)> = rules
            .security_group_rules()
            .iter()
            .map(|r| {
                (
                    r.is_egress().unwrap_or_default(),
                    r.from_port().unwrap_or_default(),
                    r.referenced_group_info()
                        .and_then(|g| g.group_id())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        peers.sort();
        let mut want = vec![
            (
                false,
                443,
                stack.output("sg_service_ids")["web"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            (
                false,
                443,
                stack.output("sg_service_ids")["reports"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            (false, 443, stack.output_str("sg_lambda_id")),
        ];
        want.sort();
        assert_eq!(
            peers, want,
            "ingress 443 from the service tasks and Lambda only, no egress"
        );
    });

    // A second `up` changes nothing, in either region.
    let again = stack.up(&["--preset", "multiregion"]);
    again.assert_ok();
    let sum = again.summary();
    assert_eq!(sum["aws_calls"]["mutating"], 0, "second up mutated: {sum}");

    // Dropping the request and connection targets removes those policies, nothing else.
    // The preset's services (the web service the queue's producer, on-demand only; reports
    // on Spot) with the web service's two targets left out.
    let plain = stack.config(
        "preset = \"multiregion\"\n[[services]]\nname = \"web\"\ncpu = 2048\nmemory = 4096\n\
         permissions = [\"sessions\", \"database\", \"queue\"]\n\
         capacity = { fargate_base = 0, fargate_weight = 1, spot_weight = 0 }\n\
         deployment = \"codedeploy-canary\"\n\
         [[services]]\nname = \"reports\"\ncpu = 1024\nmemory = 2048\npath = \"/reports/*\"\n\
         capacity = { fargate_base = 0, fargate_weight = 0, spot_weight = 1, min_spot_percent = 100 }\n\
         permissions = [\"sessions\", \"database\"]\n",
    );
    let fewer = stack.up(&["--config", plain.to_str().unwrap()]);
    fewer.assert_ok();
    let ops: Vec<String> = fewer.summary()["aws_calls"]["mutating_ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap_or_default().to_string())
        .collect();
    // Web's two (CodeDeploy's task sets share the one service and its scaling).
    assert_eq!(
        ops,
        ["DeleteScalingPolicy"; 2].map(|op| format!("Application Auto Scaling:{op}")),
        "{ops:?}"
    );

    // `down` needs neither the preset nor the region: the state knows both.
    stack.down(&[]).assert_ok();
    assert!(!stack.state_path().exists(), "state file removed");
    block_on(async {
        for region in [PRIMARY, DR] {
            let sdk = sdk_config_in(&stack.endpoint, region).await;
            let tagged = remaining_tagged(&sdk, &s).await;
            assert!(tagged.is_empty(), "left in {region}: {tagged:?}");
            let ec2 = remaining_ec2(&sdk, &s).await;
            assert!(ec2.is_empty(), "left in {region} (EC2): {ec2:?}");
        }
        let vaults = aws_sdk_backup::Client::new(&sdk_config_in(&stack.endpoint, DR).await)
            .list_backup_vaults()
            .send()
            .await
            .unwrap();
        assert!(
            !vaults
                .backup_vault_list()
                .iter()
                .any(|v| v.backup_vault_name().is_some_and(|n| n.ends_with(&s))),
            "DR vault left"
        );
        // The replication and backup roles, and their policies, are gone too (IAM is global).
        let iam = aws_sdk_iam::Client::new(&sdk_config_in(&stack.endpoint, PRIMARY).await);
        for role in ["role-s3-replication", "role-backup"] {
            let name = format!("{role}-{s}");
            assert!(
                iam.get_role().role_name(&name).send().await.is_err(),
                "{name} left"
            );
        }
        let policies = iam
            .list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .unwrap();
        let left: Vec<&str> = policies
            .policies()
            .iter()
            .filter_map(|p| p.policy_name())
            .filter(|n| n.ends_with(&format!("-{s}")))
            .collect();
        assert!(left.is_empty(), "policies left: {left:?}");
        let dr_s3 = s3_client(&sdk_config_in(&stack.endpoint, DR).await);
        let replica = format!("fintech-assets-dr-123456789012-{s}");
        assert!(
            dr_s3.head_bucket().bucket(&replica).send().await.is_err(),
            "replica bucket left"
        );
    });
}

#[test]
fn a_dr_region_equal_to_the_stack_region_is_refused_before_any_aws_call() {
    let stack = Stack::new("drbad");
    let run = stack.run(&[
        "--preset",
        "multiregion",
        "--region",
        "us-west-2",
        "up",
        "--env-suffix",
        &stack.suffix,
    ]);
    assert_eq!(run.code, 2, "usage error: {}", run.stderr);
    assert!(
        run.stderr
            .contains("dr.region us-west-2 is the stack's own region"),
        "{}",
        run.stderr
    );
    assert!(!stack.state_path().exists() || stack.state()["resources"] == serde_json::json!([]));
    let calls: Vec<_> = request_log(&stack.endpoint)
        .into_iter()
        .filter(|r| r.is_from_stack(&stack.suffix))
        .collect();
    assert!(calls.is_empty(), "AWS calls made: {}", calls.len());
}
