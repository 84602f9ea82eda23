//! The config's unit tests, by section.

use super::validated::{FieldError, Validate};
use super::*;

#[cfg(test)]
mod services_calls_tests {
    use super::*;

    const TWO: &str = r#"
[cluster]
namespace = "payments.internal"
[[services]]
name = "api"
calls = ["worker", "worker"]
[[services]]
name = "worker"
port = 8080
"#;

    #[test]
    fn calls_parse_sorted_without_repeats_and_callers_are_found() {
        let c = Config::parse(TWO).unwrap();
        let api = c.services.get("api").unwrap();
        assert_eq!(api.calls, [ServiceName("worker".into())]);
        let callers: Vec<&str> = c
            .services
            .callers_of("worker")
            .map(|s| s.name.0.as_str())
            .collect();
        assert_eq!(callers, ["api"]);
        assert!(c.services.get("worker").unwrap().calls.is_empty());
        // Only the first service has no path here: it alone is behind the ALB.
        assert!(c.services.is_behind_alb("api"));
        assert!(!c.services.is_behind_alb("worker"));
    }

    #[test]
    fn a_path_puts_a_service_behind_the_alb() {
        let c = Config::parse(&format!("{TWO}path = \"/jobs/*\"\n")).unwrap();
        let behind: Vec<&str> = c.services.behind_alb().map(|s| s.name.0.as_str()).collect();
        assert_eq!(behind, ["api", "worker"]);
    }

    #[test]
    fn calls_name_another_configured_service() {
        let e = Config::parse(&TWO.replace("[\"worker\", \"worker\"]", "[\"api\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`api` lists itself") && e.contains("services[].calls"),
            "{e}"
        );
        let e = Config::parse(&TWO.replace("[\"worker\", \"worker\"]", "[\"ledger\"]"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`ledger`")
                && e.contains("not a configured service")
                && e.contains("allowed: worker"),
            "{e}"
        );
        let e = Config::parse(&TWO.replace("[\"worker\", \"worker\"]", "[\"Bad_Name\"]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid service name"), "{e}");
    }

    #[test]
    fn calls_need_a_namespace() {
        let e = Config::parse(&TWO.replace("namespace = \"payments.internal\"", ""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cluster.namespace")
                && e.contains("services[].calls")
                && e.contains("`api`"),
            "{e}"
        );
    }

    #[test]
    fn the_microservices_preset_declares_the_api_calls() {
        let c = Config::preset(Preset::Microservices);
        let calls = |n: &str| -> Vec<String> {
            c.services
                .get(n)
                .unwrap()
                .calls
                .iter()
                .map(|s| s.0.clone())
                .collect()
        };
        assert_eq!(
            calls("payment-api"),
            ["notification-service", "transaction-processor"]
        );
        assert!(calls("transaction-processor").is_empty());
        assert!(calls("notification-service").is_empty());
    }
}
#[cfg(test)]
mod service_posture_tests {
    //! The Spot share arithmetic and the services' read-only root settings.
    use super::*;

    fn split(fargate_base: i32, fargate_weight: i32, spot_weight: i32) -> CapacityConfig {
        CapacityConfig {
            fargate_base,
            fargate_weight,
            spot_weight,
        }
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().0
    }

    #[test]
    fn spot_tasks_count_the_base_first_then_round_spots_share_down() {
        let old = split(1, 1, 1);
        assert_eq!(
            old.min_spot_tasks(2),
            0,
            "base 1, then 1 task at 1:1 rounds to 0"
        );
        assert_eq!(
            old.min_spot_tasks(10),
            4,
            "base 1, then 9 at 1:1: 4.5 rounds to 4"
        );
        assert!(!old.meets_spot_percent(2, 50) && !old.meets_spot_percent(10, 50));
        let even = split(0, 1, 1);
        assert!(even.meets_spot_percent(2, 50) && even.meets_spot_percent(10, 50));
        assert!(!even.meets_spot_percent(3, 50), "1 of 3 at 1:1");
        assert_eq!(split(3, 1, 1).min_spot_tasks(2), 0, "all within the base");
        assert_eq!(split(0, 0, 1).min_spot_tasks(7), 7);
        assert_eq!(split(2, 1, 0).min_spot_tasks(7), 0);
        assert!(
            split(2, 1, 0).meets_spot_percent(0, 100),
            "no tasks, nothing to miss"
        );
    }

    #[test]
    fn the_default_split_keeps_half_on_spot_at_every_count() {
        let c = CapacityConfig::default();
        for n in 2..=10 {
            assert!(
                c.meets_spot_percent(n, 50),
                "{n} tasks: {}",
                c.min_spot_tasks(n)
            );
        }
        assert_eq!(c.min_spot_tasks(2), 1);
        assert_eq!(c.min_spot_tasks(10), 6);
        let web = ServiceConfig::default_web();
        assert_eq!(web.capacity, c);
        assert_eq!(web.min_spot_percent, Some(WEB_MIN_SPOT_PERCENT));
        assert_eq!(Config::preset(Preset::Webapp).services.0[0], web);
    }

    #[test]
    fn a_split_that_cannot_meet_its_spot_floor_is_refused_with_the_numbers() {
        let e = err(
            "[[services]]\nname = \"web\"\ncapacity = { fargate_base = 1, fargate_weight = 1, \
             spot_weight = 1, min_spot_percent = 50 }\n",
        );
        assert!(e.contains("min_count 2"), "{e}");
        assert!(e.contains("0 of 2 tasks (0%)"), "{e}");
        assert!(e.contains("min_spot_percent 50"), "{e}");
        assert!(e.contains("line 1"), "{e}");
        // Fine at min_count (2 of 4), short at an odd max_count (1:1 rounds 4.5 down to 4).
        let e = err(
            "[[services]]\nname = \"web\"\nmin_count = 4\ndesired_count = 4\ncapacity = { \
             fargate_base = 0, fargate_weight = 1, spot_weight = 1, min_spot_percent = 50 }\n\
             max_count = 9\n",
        );
        assert!(
            e.contains("max_count 9") && e.contains("4 of 9 tasks (44%)"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"web\"\ncapacity = { min_spot_percent = 101 }\n");
        assert!(e.contains("0 to 100"), "{e}");
        // The webapp preset with a split of the user's that breaks its floor.
        let e = Config::parse(
            "preset = \"webapp\"\n[[services]]\nname = \"web\"\ncapacity = { fargate_base = 2, \
             min_spot_percent = 50 }\n",
        )
        .unwrap_err()
        .0;
        assert!(e.contains("min_count 2"), "{e}");
        // A written split without a floor is accepted as before; one that meets it too.
        let c = Config::parse(
            "[[services]]\nname = \"web\"\ncapacity = { fargate_base = 1, fargate_weight = 1, \
             spot_weight = 3 }\n",
        )
        .unwrap();
        assert_eq!(c.services.0[0].min_spot_percent, None);
        let c = Config::parse(
            "[[services]]\nname = \"web\"\ncapacity = { fargate_base = 0, fargate_weight = 1, \
             spot_weight = 1, min_spot_percent = 50 }\n",
        )
        .unwrap();
        assert_eq!(c.services.0[0].min_spot_percent, Some(50));
    }

    #[test]
    fn writable_paths_default_to_the_placeholders_and_are_checked() {
        let web = ServiceConfig::default_web();
        assert!(web.read_only_root);
        assert_eq!(web.writable_paths, PLACEHOLDER_WRITABLE_PATHS);
        // Another image: its writable paths are the user's to name.
        let c = Config::parse("[[services]]\nname = \"api\"\nimage = \"repo/api:1\"\n").unwrap();
        assert!(c.services.0[0].writable_paths.is_empty());
        assert!(c.services.0[0].read_only_root);
        let c = Config::parse(
            "[[services]]\nname = \"api\"\nwritable_paths = []\nread_only_root = false\n",
        )
        .unwrap();
        assert!(c.services.0[0].writable_paths.is_empty());
        assert!(!c.services.0[0].read_only_root);
        for bad in ["tmp", "/", "/a/../b", "/a b", "//x"] {
            let e = err(&format!(
                "[[services]]\nname = \"api\"\nwritable_paths = [\"{bad}\"]\n"
            ));
            assert!(e.contains("invalid writable path"), "{bad}: {e}");
        }
        let e = err("[[services]]\nname = \"api\"\nwritable_paths = [\"/tmp\", \"/tmp/\"]\n");
        assert!(e.contains("same volume name `rw-tmp`"), "{e}");
        assert_eq!(
            writable_volume_name("/var/cache/nginx"),
            "rw-var-cache-nginx"
        );
        assert_eq!(writable_volume_name("/var/run"), "rw-var-run");
        assert_eq!(writable_volume_name("/app/.cache"), "rw-app-_cache");
    }
}

#[cfg(test)]
mod general {
    use super::*;

    #[test]
    fn a_default_root_object_cloudfront_would_refuse_is_a_usage_error() {
        for bad in ["", "/index.html"] {
            let e = Config::parse(&format!("[cdn]\ndefault_root_object = \"{bad}\"\n"))
                .unwrap_err()
                .0;
            assert!(e.contains("cdn.default_root_object"), "{bad}: {e}");
        }
        assert!(Config::parse("[cdn]\ndefault_root_object = \"home.html\"\n").is_ok());
    }

    #[test]
    fn value_errors_lead_with_the_field_the_line_and_the_rule() {
        let e = Config::parse("[network]\naz_count = 3\n[validator]\nreserved_concurrency = 0\n")
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("`validator.reserved_concurrency` at line 4: "),
            "{e}"
        );
        assert!(e.contains("1 to 900"), "{e}");
        assert!(!e.starts_with("TOML parse error"), "{e}");
        // A syntax error still names its line.
        let e = Config::parse("[network\n").unwrap_err().0;
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn empty_config_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.network.az_count.0, 3);
        assert_eq!(c.network.nat_gateways, NatMode::Single);
        assert_eq!(c.kms.deletion_window_days.0, 7);
    }

    #[test]
    fn parses_fields() {
        let c = Config::parse(
            r#"
[tags]
team = "payments"
[network]
cidr = "10.20.0.0/20"
az_count = 2
nat_gateways = "per-az"
"#,
        )
        .unwrap();
        assert_eq!(c.tags.team.0, "payments");
        assert_eq!(c.network.az_count.0, 2);
        assert_eq!(c.network.nat_gateways, NatMode::PerAz);
        assert_eq!(c.network.cidr.slice(0).to_string(), "10.20.0.0/24");
        assert_eq!(c.network.cidr.slice(9).to_string(), "10.20.9.0/24");
    }

    #[test]
    fn default_cidr_slices_are_slash_20() {
        let c = Config::default();
        assert_eq!(c.network.cidr.slice(0).to_string(), "10.0.0.0/20");
        assert_eq!(c.network.cidr.slice(4).to_string(), "10.0.64.0/20");
        assert_eq!(c.network.cidr.slice(15).to_string(), "10.0.240.0/20");
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_name_the_field_and_line() {
        let e = err("[network]\ncidr = \"10.0.0.0/16\"\nazs = 3\n");
        assert!(e.contains("unknown field `azs`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = err("[netwrk]\n");
        assert!(e.contains("unknown field `netwrk`"), "{e}");
    }

    #[test]
    fn bad_values_name_the_rule_and_line() {
        let e = err("[network]\naz_count = 4\n");
        assert!(
            e.contains("allowed values are 2 and 3") && e.contains("line 2"),
            "{e}"
        );
        let e = err("[network]\ncidr = \"10.0.0.0/8\"\n");
        assert!(e.contains("/16 to /24"), "{e}");
        let e = err("[network]\ncidr = \"8.8.0.0/16\"\n");
        assert!(e.contains("RFC 1918"), "{e}");
        let e = err("[network]\ncidr = \"10.0.1.0/16\"\n");
        assert!(e.contains("host bits"), "{e}");
        let e = err("[network]\nnat_gateways = \"two\"\n");
        assert!(e.contains("single") && e.contains("per-az"), "{e}");
        let e = err("[kms]\ndeletion_window_days = 3\n");
        assert!(e.contains("7 to 30"), "{e}");
        let e = err("[tags]\nteam = \"\"\n");
        assert!(e.contains("1 to 256"), "{e}");
        let e = err("[network]\naz_count = 2\navailability_zones = [\"us-east-1a\"]\n");
        assert!(e.contains("lists 1 zones"), "{e}");
    }

    /// Seed 004 puts "non-critical workloads" on Fargate Spot. Spot tasks can be stopped at
    /// two minutes' notice, so the payment path (the queue's producers, the ALB's default
    /// target) must have no task on Spot at any count, and the non-critical service must be
    /// on Spot entirely at every count from min to max.
    #[test]
    fn multiregion_keeps_the_payment_path_off_spot_and_the_rest_on_it() {
        let m = Config::preset(Preset::Multiregion);
        let services = &m.services.0;
        let names: Vec<&str> = services.iter().map(|s| s.name.0.as_str()).collect();
        assert_eq!(names, ["web", "reports"]);
        for s in services {
            let n = &s.name.0;
            let payment_path = s.permissions.contains(&Permission::Queue) || s.path.is_none();
            for tasks in s.min_count..=s.max_count {
                let spot = s.capacity.min_spot_tasks(tasks);
                if payment_path {
                    // spot_weight 0: ECS puts nothing on FARGATE_SPOT, whatever it rounds.
                    assert_eq!(s.capacity.spot_weight, 0, "{n}: {:?}", s.capacity);
                    assert_eq!(spot, 0, "{n} at {tasks} tasks");
                } else {
                    assert_eq!(spot, tasks, "{n}: {spot} of {tasks} on Spot");
                }
            }
            if payment_path {
                assert!(s.min_spot_percent.unwrap_or(0) == 0, "{n}: no Spot floor");
            } else {
                assert_eq!(s.min_spot_percent, Some(100), "{n}");
                assert_eq!(
                    (s.capacity.fargate_base, s.capacity.fargate_weight),
                    (0, 0),
                    "{n}: nothing on FARGATE"
                );
            }
        }
        let web = &services[0];
        assert!(web.permissions.contains(&Permission::Queue), "web produces");
        assert_eq!(
            (web.request_count_target, web.db_connections_target),
            (Some(1000), Some(400))
        );
        let reports = &services[1];
        assert_eq!(reports.path.as_deref(), Some("/reports/*"));
        assert!(!reports.permissions.contains(&Permission::Queue));
        // A file that keeps the preset but writes its own split for the Spot service is
        // still held to the floor it states.
        let e = err(
            "preset = \"multiregion\"\n[[services]]\nname = \"web\"\n[[services]]\n\
             name = \"reports\"\npath = \"/reports/*\"\ncapacity = { fargate_base = 1, \
             fargate_weight = 1, spot_weight = 1, min_spot_percent = 100 }\n",
        );
        assert!(e.contains("min_spot_percent 100"), "{e}");
        // The webapp preset keeps seed 000's floor.
        let w = &Config::preset(Preset::Webapp).services.0[0];
        assert_eq!(w.min_spot_percent, Some(WEB_MIN_SPOT_PERCENT));
    }
}

#[cfg(test)]
mod tier_tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn data_and_compute_defaults() {
        let c = Config::default();
        assert_eq!(c.database.mode, DbMode::Provisioned);
        assert_eq!(c.database.engine_version, "15.8");
        assert_eq!(c.database.backup_retention_days, 7);
        assert_eq!(c.logs.retention_days.0, 30);
        assert_eq!(c.services.0.len(), 1);
        let web = &c.services.0[0];
        assert_eq!(
            (web.name.0.as_str(), web.cpu, web.memory),
            ("web", 2048, 4096)
        );
        assert_eq!(
            (web.min_count, web.desired_count, web.max_count),
            (2, 2, 10)
        );
        assert!(c.cluster.container_insights);
    }

    #[test]
    fn three_services_parse() {
        let c = Config::parse(
            r#"
[database]
mode = "serverless"
min_capacity = 0.5
max_capacity = 4

[cluster]
namespace = "payments.internal"

[[services]]
name = "payment-api"
cpu = 2048
memory = 4096

[[services]]
name = "transaction-processor"
cpu = 1024
memory = 2048
capacity = { fargate_base = 0, fargate_weight = 0, spot_weight = 1 }
permissions = ["database", "queue"]
"#,
        );
        let c = c.unwrap();
        assert_eq!(c.services.0[1].name.0, "transaction-processor");
        assert_eq!(c.cluster.namespace.as_ref().unwrap().0, "payments.internal");
        let e = Config::parse("[[services]]\nname = \"a-service-name-longer-than-thirty\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 30"), "{e}");
        let c = Config::parse(
            r#"
[[services]]
name = "payment-api"
[[services]]
name = "tx-processor"
cpu = 1024
memory = 2048
capacity = { fargate_base = 0, fargate_weight = 0, spot_weight = 1 }
"#,
        )
        .unwrap();
        assert_eq!(c.services.0.len(), 2);
        assert_eq!(c.services.0[1].capacity.spot_weight, 1);
    }

    #[test]
    fn bad_tier_values_name_field_and_line() {
        let e = err("[database]\nbackup_retention_days = 40\n");
        assert!(e.contains("1 to 35") && e.contains("line 1"), "{e}");
        let e = err("[database]\nmin_capacity = 8\nmax_capacity = 4\n");
        assert!(e.contains("above max_capacity"), "{e}");
        let e = err("[database]\nmin_capacity = 0.7\n");
        assert!(e.contains("steps of 0.5"), "{e}");
        let e = err("[database]\npreferred_backup_window = \"03:00-03:10\"\n");
        assert!(e.contains("30 minutes"), "{e}");
        let e = err("[database]\nmaster_username = \"postgres\"\n");
        assert!(e.contains("reserved"), "{e}");
        let e = err("[database]\nmode = \"huge\"\n");
        assert!(e.contains("provisioned") && e.contains("serverless"), "{e}");
        let e = err("[logs]\nretention_days = 10\n");
        assert!(e.contains("14, 30"), "{e}");
        let e = err("\n\n[[services]]\nname = \"api\"\ncpu = 1024\nmemory = 1024\n");
        assert!(
            e.contains("not valid with cpu 1024") && e.contains("line 3"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"api\"\ndesired_count = 20\n");
        assert!(e.contains("desired_count 20"), "{e}");
        let e = err("[[services]]\nname = \"api\"\nflavour = 1\n");
        assert!(e.contains("unknown field `flavour`"), "{e}");
        let e = err("[[services]]\nname = \"a\"\n[[services]]\nname = \"a\"\n");
        assert!(e.contains("used twice"), "{e}");
        let e = err("services = []\n");
        assert!(e.contains("at least one"), "{e}");
        let e = err("[cluster]\nnamespace = \"Bad_Name\"\n");
        assert!(e.contains("invalid DNS name"), "{e}");
        // A name is checked as a value, so the error names its own line.
        let e = err("[[services]]\nname = \"execution\"\n");
        assert!(
            e.contains("reserved") && e.contains("`services.name` at line 2"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"api\"\npermissions = [\"everything\"]\n");
        assert!(e.contains("sessions"), "{e}");
    }

    #[test]
    fn presets_load_and_files_override_them() {
        for p in Preset::ALL {
            let c = Config::preset(p);
            assert_eq!(c.preset, Some(p));
        }
        assert_eq!(
            Config::preset(Preset::Webapp).services,
            Config::default().services
        );
        let m = Config::preset(Preset::Microservices);
        let names: Vec<_> = m.services.0.iter().map(|s| s.name.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "payment-api",
                "transaction-processor",
                "notification-service"
            ]
        );
        assert_eq!(m.database.mode, DbMode::Serverless);
        assert_eq!(Config::preset(Preset::Resilient).network.az_count.0, 2);
        // Tables merge key by key; lists replace.
        let c = Config::parse(
            "preset = \"microservices\"\n[logs]\nretention_days = 90\n[database]\nmax_capacity = 8\n",
        )
        .unwrap();
        assert_eq!(c.logs.retention_days.0, 90);
        assert_eq!(c.database.max_capacity, 8.0);
        assert_eq!(c.database.mode, DbMode::Serverless, "kept from the preset");
        assert_eq!(c.services.0.len(), 3);
        let c =
            Config::parse("preset = \"microservices\"\n[[services]]\nname = \"only\"\n").unwrap();
        assert_eq!(c.services.0.len(), 1);
        let e = err("preset = \"huge\"\n");
        assert!(e.contains("webapp") && e.contains("multiregion"), "{e}");
    }

    #[test]
    fn multiregion_preset_turns_waf_and_dr_on() {
        let m = Config::preset(Preset::Multiregion);
        assert!(
            m.waf.enabled,
            "WAF is on by default for the multi-region preset"
        );
        assert_eq!(m.region.as_ref().map(|r| r.0.as_str()), Some("us-east-2"));
        assert_eq!(
            m.dr.region.as_ref().map(|r| r.0.as_str()),
            Some("us-west-2")
        );
        // CodeDeploy's canary moves the traffic: the listener keeps no split of its own.
        assert_eq!(m.alb.green_weight, 0);
        assert_eq!(m.logs.retention_days.0, 30);
        // WAF stays optional everywhere else.
        for p in [
            Preset::Webapp,
            Preset::Bluegreen,
            Preset::Resilient,
            Preset::Microservices,
        ] {
            assert!(!Config::preset(p).waf.enabled, "{p:?}");
            assert!(Config::preset(p).dr.region.is_none(), "{p:?}");
        }
        // ...and the multi-region preset can turn it off.
        let c = Config::parse("preset = \"multiregion\"\n[waf]\nenabled = false\n").unwrap();
        assert!(!c.waf.enabled);
    }

    #[test]
    fn regions_and_the_dr_block_are_checked() {
        let e = err("region = \"us-east\"\n");
        assert!(
            e.contains("invalid region `us-east`") && e.contains("us-east-2"),
            "{e}"
        );
        let e = err("region = \"US-EAST-1\"\n");
        assert!(e.contains("invalid region"), "{e}");
        assert!(Config::parse("region = \"us-gov-west-1\"\n").is_ok());
        let e = err("region = \"us-west-2\"\n[dr]\nregion = \"us-west-2\"\n");
        assert!(
            e.contains("dr.region us-west-2 is the stack's own region"),
            "{e}"
        );
        let e = err("[dr]\nregion = \"us-west-2\"\ncidr = \"10.0.0.0/20\"\n");
        assert!(e.contains("overlaps network.cidr 10.0.0.0/16"), "{e}");
        let e = err("[dr]\naz_count = 4\n");
        assert!(e.contains("az_count"), "{e}");
        let e = err(
            "[[services]]\nname = \"web\"\n[[services]]\nname = \"worker\"\nrequest_count_target = 500\n",
        );
        assert!(
            e.contains("`worker` has a request_count_target but no ALB target group"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"web\"\ndb_connections_target = 0\n");
        assert!(
            e.contains("db_connections_target 0 must be from 1 to 100000"),
            "{e}"
        );
        let c = Config::parse(
            "[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"/api/*\"\nrequest_count_target = 500\n",
        )
        .unwrap();
        assert_eq!(c.services.0[1].request_count_target, Some(500));
        let e = err("[network]\ninterface_endpoints = [\"ecr\", \"ec2\"]\n");
        assert!(
            e.contains("unknown variant `ec2`") && e.contains("`ecr`, `logs`, `secretsmanager`"),
            "{e}"
        );
        let e = err("[dr]\nsnapshot_retention_days = 0\n");
        assert!(
            e.contains("snapshot_retention_days 0") && e.contains("1 to 36500"),
            "{e}"
        );
    }

    #[test]
    fn edge_defaults() {
        let c = Config::default();
        assert_eq!(c.certificate.source, None);
        assert_eq!((c.alb.blue_weight, c.alb.green_weight), (100, 0));
        assert!(!c.waf.enabled);
        assert_eq!(c.waf.rate_limit.0, 2000);
        assert_eq!(c.services.0[0].health_check_path, "/");
        assert_eq!(c.services.0[0].path, None);
        let b = Config::preset(Preset::Bluegreen);
        assert_eq!((b.alb.blue_weight, b.alb.green_weight), (80, 20));
    }

    #[test]
    fn services_scale_on_the_queue_backlog_and_on_any_metric() {
        let c = Config::parse(
            r#"
[[services]]
name = "web"
queue_backlog_target = 100
[[services.scaling]]
namespace = "Payments"
metric = "PendingSettlements"
dimensions = { Stage = "prod" }
statistic = "Maximum"
target = 50
"#,
        )
        .unwrap();
        let web = &c.services.0[0];
        assert_eq!(web.queue_backlog_target, Some(100));
        assert_eq!(web.scaling.len(), 1);
        assert_eq!(web.scaling[0].statistic, Statistic::Maximum);
        assert_eq!(web.scaling[0].dimensions["Stage"], "prod");
        // The default statistic is Average.
        let c = Config::parse(
            "[[services]]\nname = \"web\"\n[[services.scaling]]\nnamespace = \"N\"\n\
             metric = \"M\"\ntarget = 1.5\n",
        )
        .unwrap();
        assert_eq!(c.services.0[0].scaling[0].statistic, Statistic::Average);
        let svc = |body: &str| format!("[[services]]\nname = \"web\"\n{body}");
        let e = err(&svc(
            "[[services.scaling]]\nnamespace = \"N\"\nmetric = \"M\"\ntarget = 0\n",
        ));
        assert!(e.contains("target 0 must be a number above 0"), "{e}");
        let e = err(&svc(
            "[[services.scaling]]\nnamespace = \"\"\nmetric = \"M\"\ntarget = 1\n",
        ));
        assert!(e.contains("needs a namespace and a metric"), "{e}");
        let e = err(&svc(
            "[[services.scaling]]\nnamespace = \"N\"\nmetric = \"M\"\nstatistic = \"p99\"\ntarget = 1\n",
        ));
        assert!(e.contains("Average") && e.contains("SampleCount"), "{e}");
        let e = err(&svc("queue_backlog_target = 0\n"));
        assert!(e.contains("queue_backlog_target 0 must be from 1"), "{e}");
        // The backlog divides by Container Insights' task count.
        let e = err(&format!(
            "[cluster]\ncontainer_insights = false\n{}",
            svc("queue_backlog_target = 10\n")
        ));
        assert!(e.contains("Container Insights"), "{e}");
        let e = err(&svc("min_count = 0\nqueue_backlog_target = 10\n"));
        assert!(e.contains("could never scale out from 0"), "{e}");
        // Seed 003's processor scales on its backlog.
        let m = Config::preset(Preset::Microservices);
        let tp = m
            .services
            .0
            .iter()
            .find(|s| s.name.0 == "transaction-processor")
            .unwrap();
        assert_eq!(tp.queue_backlog_target, Some(100));
    }

    #[test]
    fn validator_retries_back_off_between_bounds() {
        let v = Config::default().validator;
        assert_eq!((v.retry_base_secs.0, v.retry_max_secs.0), (30, 900));
        let c = Config::parse("[validator]\nretry_base_secs = 5\nretry_max_secs = 3600\n").unwrap();
        assert_eq!(
            (c.validator.retry_base_secs.0, c.validator.retry_max_secs.0),
            (5, 3600)
        );
        let e = err("[validator]\nretry_max_secs = 50000\n");
        assert!(e.contains("43200"), "{e}");
        let e = err("[validator]\nretry_base_secs = 0\n");
        assert!(e.contains("retry delay 0"), "{e}");
        let e = err("[validator]\nretry_base_secs = 600\nretry_max_secs = 60\n");
        assert!(
            e.contains("retry_base_secs 600 is above validator.retry_max_secs 60"),
            "{e}"
        );
        // 12 hours from the receive, not from the change the handler makes up to a timeout later.
        let e = err("[validator]\ntimeout_secs = 60\nretry_max_secs = 43200\n");
        assert!(e.contains("allowed: at most 43139"), "{e}");
        // All the waits must fit in the retention: 50 receives x 12 h > 4 days.
        let e = err(
            "[queue]\nmax_receive_count = 50\n[validator]\nretry_base_secs = 3600\n\
             retry_max_secs = 43000\n",
        );
        assert!(
            e.contains("would expire instead of reaching the dead-letter queue"),
            "{e}"
        );
    }

    #[test]
    fn a_green_share_needs_a_weighted_default_service() {
        // 20 % to a green target group nothing registers in: 503s (AWS-CONTRACTS B8).
        let e = err("[alb]\nblue_weight = 80\ngreen_weight = 20\n");
        assert!(
            e.contains("alb.green_weight is 20")
                && e.contains("deployment = \"weighted\"")
                && e.contains("20% of the requests with 503"),
            "{e}"
        );
        let ok = Config::parse(
            "[alb]\nblue_weight = 80\ngreen_weight = 20\n[[services]]\nname = \"web\"\n\
             deployment = \"weighted\"\n",
        )
        .unwrap();
        assert_eq!(ok.services.0[0].deployment, Deployment::Weighted);
        // Only the default service has the two target groups.
        let e = err(
            "[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"/api/*\"\n\
             deployment = \"weighted\"\n",
        );
        assert!(e.contains("`api` has deployment = \"weighted\""), "{e}");
        // The twin's name is taken.
        let e = err(
            "[[services]]\nname = \"web\"\ndeployment = \"weighted\"\n[[services]]\n\
             name = \"web-green\"\n",
        );
        assert!(
            e.contains("`web-green` is the name of the green twin"),
            "{e}"
        );
        // Unknown strategies are refused with the allowed ones.
        let e = err("[[services]]\nname = \"web\"\ndeployment = \"canary\"\n");
        assert!(e.contains("rolling") && e.contains("weighted"), "{e}");
        // Each seed's strategy: 001 weighted 80/20, 003 CodeDeploy linear, 004 canary.
        for (p, d) in [
            (Preset::Bluegreen, Deployment::Weighted),
            (Preset::Microservices, Deployment::CodedeployLinear),
            (Preset::Multiregion, Deployment::CodedeployCanary),
        ] {
            assert_eq!(Config::preset(p).services.0[0].deployment, d, "{p:?}");
        }
        // CodeDeploy needs the default service's pair of target groups.
        let e = err(
            "[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"/api/*\"\n\
             deployment = \"codedeploy-canary\"\n",
        );
        assert!(
            e.contains("`api` has deployment = \"codedeploy-canary\""),
            "{e}"
        );
        // CodeDeploy moves the traffic itself: no configured green share.
        let e = err(
            "[alb]\nblue_weight = 80\ngreen_weight = 20\n[[services]]\nname = \"web\"\n\
             deployment = \"codedeploy-linear\"\n",
        );
        assert!(
            e.contains("\"codedeploy-linear\"") && e.contains("alb.green_weight = 0"),
            "{e}"
        );
        // The CodeDeploy settings are checked.
        let e = err("[deploy]\nlinear_config = \"CodeDeployDefault.OneAtATime\"\n");
        assert!(
            e.contains("deploy.linear_config") && e.contains("ECSLinear10PercentEvery1Minutes"),
            "{e}"
        );
        let e = err("[deploy]\ntest_port = 443\n");
        assert!(e.contains("deploy.test_port = 443"), "{e}");
        let e = err("[deploy]\ntest_port = 70000\n");
        assert!(e.contains("1-65535"), "{e}");
        let e = err("[deploy]\ntest_cidrs = [\"0.0.0.0/0\"]\n");
        assert!(e.contains("not the internet"), "{e}");
        let e = err("[deploy]\ntest_cidrs = [\"203.0.113.7/24\"]\n");
        assert!(e.contains("203.0.113.0/24"), "{e}");
        let five = (1..=5)
            .map(|i| format!("\"10.{i}.0.0/16\""))
            .collect::<Vec<_>>()
            .join(", ");
        let e = err(&format!("[deploy]\ntest_cidrs = [{five}]\n"));
        assert!(e.contains("at most 4"), "{e}");
        // Requests per task over both target groups need Container Insights' task count.
        let e = err(
            "[cluster]\ncontainer_insights = false\n[[services]]\nname = \"web\"\n\
             deployment = \"codedeploy-canary\"\nrequest_count_target = 500\n",
        );
        assert!(
            e.contains("ALBRequestCountPerTarget") && e.contains("container_insights"),
            "{e}"
        );
        let e = err("[deploy]\ntermination_wait_mins = 3000\n");
        assert!(e.contains("2880"), "{e}");
        assert_eq!(
            Config::default().services.0[0].deployment,
            Deployment::Rolling
        );
    }

    #[test]
    fn edge_sections_parse() {
        let c = Config::parse(
            r#"
[certificate]
domain = "App.Example.com"
subject_alternative_names = ["www.example.com", "*.api.example.com"]
[alb]
blue_weight = 50
green_weight = 50
[waf]
enabled = true
rate_limit = 500
[[services]]
name = "web"
health_check_path = "/healthz"
deployment = "weighted"
[[services]]
name = "payment-api"
path = "/api/*"
"#,
        )
        .unwrap();
        assert_eq!(
            c.certificate.source,
            Some(CertificateSource::Request {
                domain: "app.example.com".into(),
                subject_alternative_names: vec![
                    "www.example.com".into(),
                    "*.api.example.com".into()
                ],
            })
        );
        assert_eq!(c.alb.green_weight, 50);
        assert_eq!(c.waf.rate_limit.0, 500);
        assert_eq!(c.services.0[0].health_check_path, "/healthz");
        assert_eq!(c.services.0[1].path.as_deref(), Some("/api/*"));
        let arn =
            "arn:aws:acm:us-east-1:123456789012:certificate/0b6a4f5c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";
        let c = Config::parse(&format!(
            "[certificate]\narn = \"{arn}\"\n[alb]\norigin_domain = \"Origin.Example.com\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.certificate.source,
            Some(CertificateSource::Existing { arn: arn.into() })
        );
        assert_eq!(
            c.alb.api_origin_domain(&c.certificate).as_deref(),
            Some("origin.example.com")
        );
    }

    #[test]
    fn alb_origin_domain_defaults_and_cross_field_rules() {
        let origin = |text: &str| {
            let c = Config::parse(text).unwrap();
            c.alb.api_origin_domain(&c.certificate)
        };
        assert_eq!(origin(""), None);
        assert_eq!(
            origin("[certificate]\ndomain = \"app.example.com\"\n").as_deref(),
            Some("origin.app.example.com")
        );
        assert_eq!(
            origin("[certificate]\ndomain = \"*.example.com\"\n").as_deref(),
            Some("origin.example.com")
        );
        assert_eq!(
            origin(
                "[certificate]\ndomain = \"app.example.com\"\n[alb]\norigin_domain = \"api.example.com\"\n"
            )
            .as_deref(),
            Some("api.example.com")
        );
        // Required with an existing certificate, refused without any.
        let arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc";
        let e = err(&format!("[certificate]\narn = \"{arn}\"\n"));
        assert!(
            e.contains("needs alb.origin_domain") && e.contains("502"),
            "{e}"
        );
        let e = err("[alb]\norigin_domain = \"origin.example.com\"\n");
        assert!(e.contains("needs a [certificate]"), "{e}");
        let cfg = "[certificate]\ndomain = \"a.example.com\"\n[alb]\norigin_domain = ";
        let e = err(&format!("{cfg}\"*.example.com\"\n"));
        assert!(
            e.contains("invalid origin_domain") && e.contains("line 3"),
            "{e}"
        );
        let e = err(&format!("{cfg}\"localhost\"\n"));
        assert!(e.contains("invalid origin_domain"), "{e}");
        // The extra name must fit ACM's 100 names.
        let sans: Vec<String> = (0..99).map(|i| format!("\"n{i}.example.com\"")).collect();
        let e = err(&format!(
            "[certificate]\ndomain = \"app.example.com\"\nsubject_alternative_names = [{}]\n",
            sans.join(", ")
        ));
        assert!(e.contains("101st name"), "{e}");
        Config::parse(&format!(
            "[certificate]\ndomain = \"app.example.com\"\nsubject_alternative_names = [{}]\n\
             [alb]\norigin_domain = \"n1.example.com\"\n",
            sans.join(", ")
        ))
        .unwrap();
    }

    #[test]
    fn certificate_names_cover_hosts() {
        for (name, host, covers) in [
            ("origin.example.com", "origin.example.com", true),
            ("Origin.Example.com", "origin.example.COM", true),
            ("*.example.com", "origin.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.origin.example.com", false),
            ("*.example.com", ".example.com", false),
            ("app.example.com", "origin.app.example.com", false),
        ] {
            assert_eq!(certificate_name_covers(name, host), covers, "{name} {host}");
        }
        assert_eq!(default_origin_domain("*.example.com"), "origin.example.com");
        assert_eq!(default_origin_domain("example.com"), "origin.example.com");
    }

    #[test]
    fn bad_edge_values_name_field_and_line() {
        let e = err("[certificate]\ndomain = \"a.example.com\"\narn = \"arn:aws:acm:us-east-1:123456789012:certificate/x\"\n");
        assert!(
            e.contains("exclude each other") && e.contains("line 1"),
            "{e}"
        );
        let e = err("[certificate]\ndomain = \"localhost\"\n");
        assert!(e.contains("invalid domain name"), "{e}");
        let e = err("[certificate]\ndomain = \"a.example.com\"\nsubject_alternative_names = [\"bad name\"]\n");
        assert!(e.contains("`bad name`"), "{e}");
        let e = err("[certificate]\narn = \"arn:aws:iam::123456789012:server-certificate/x\"\n");
        assert!(e.contains("invalid certificate arn"), "{e}");
        let e = err("[certificate]\nsubject_alternative_names = [\"a.example.com\"]\n");
        assert!(e.contains("needs a `domain`"), "{e}");
        let e = err("[certificate]\nhost = \"a\"\n");
        assert!(e.contains("unknown field `host`"), "{e}");
        let e = err("\n[alb]\nblue_weight = 1000\n");
        assert!(e.contains("0 to 999") && e.contains("line 2"), "{e}");
        let e = err("[alb]\nblue_weight = 0\ngreen_weight = 0\n");
        assert!(e.contains("both 0"), "{e}");
        let e = err("[waf]\nrate_limit = 5\n");
        assert!(
            e.contains("10 to 2000000000") && e.contains("line 2"),
            "{e}"
        );
        let e = err("[waf]\nenable = true\n");
        assert!(e.contains("unknown field `enable`"), "{e}");
        let e = err("[[services]]\nname = \"web\"\nhealth_check_path = \"health\"\n");
        assert!(e.contains("invalid health_check_path"), "{e}");
        let e =
            err("[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"api/*\"\n");
        assert!(e.contains("invalid path `api/*`"), "{e}");
        let e = err("[[services]]\nname = \"web\"\n[[services]]\nname = \"api\"\npath = \"/*\"\n");
        assert!(e.contains("all traffic"), "{e}");
        let e = err("[[services]]\nname = \"web\"\npath = \"/web/*\"\n");
        assert!(e.contains("first service"), "{e}");
        let e = err("[[services]]\nname = \"web\"\n[[services]]\nname = \"a\"\npath = \"/x/*\"\n[[services]]\nname = \"b\"\npath = \"/x/*\"\n");
        assert!(e.contains("routed to two services"), "{e}");
    }

    #[test]
    fn alarm_settings_are_checked() {
        let c =
            Config::parse("[alarms]\nemail = \"ops@example.com\"\ndb_connections = 200\n").unwrap();
        assert_eq!(c.alarms.email.unwrap().0, "ops@example.com");
        assert_eq!(c.alarms.db_connections, 200);
        let e = err("[alarms]\nemail = \"not-an-address\"\n");
        assert!(e.contains("invalid email") && e.contains("line 2"), "{e}");
        let e = err("[alarms]\nalb_5xx_percent = 150\n");
        assert!(e.contains("percentage"), "{e}");
        let e = err("[alarms]\np99_latency_secs = 0\n");
        assert!(e.contains("p99_latency_secs"), "{e}");
    }

    #[test]
    fn fargate_sizes() {
        assert_eq!(fargate_memory_options(256).unwrap(), vec![512, 1024, 2048]);
        assert!(fargate_memory_options(1024).unwrap().contains(&2048));
        assert!(fargate_memory_options(300).is_none());
    }
}

#[cfg(test)]
mod async_tier_tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn queue_and_validator_defaults() {
        let c = Config::default();
        assert_eq!(c.queue.max_receive_count.0, 5);
        assert_eq!(c.queue.message_retention_days.0, 4);
        assert_eq!(c.validator.reserved_concurrency.0, 5);
        assert_eq!(c.validator.memory_mb.0, 256);
        assert_eq!(c.validator.timeout_secs.0, 30);
        assert_eq!(c.validator.batch_size.0, 10);
        assert_eq!(
            c.queue_visibility_timeout(),
            180,
            "6 x the function timeout"
        );
        let c = Config::parse("[validator]\ntimeout_secs = 60\n").unwrap();
        assert_eq!(c.queue_visibility_timeout(), 360);
    }

    #[test]
    fn queue_and_validator_values_parse() {
        let c = Config::parse(
            "[queue]\nmax_receive_count = 3\nvisibility_timeout_secs = 600\n\
             message_retention_days = 14\n[validator]\nreserved_concurrency = 20\n\
             memory_mb = 512\ntimeout_secs = 100\nbatch_size = 100\n",
        )
        .unwrap();
        assert_eq!(c.queue.max_receive_count.0, 3);
        assert_eq!(c.queue_visibility_timeout(), 600);
        assert_eq!(c.queue.message_retention_days.0, 14);
        assert_eq!(
            (
                c.validator.reserved_concurrency.0,
                c.validator.memory_mb.0,
                c.validator.timeout_secs.0,
                c.validator.batch_size.0
            ),
            (20, 512, 100, 100)
        );
    }

    #[test]
    fn bad_queue_and_validator_values_name_field_and_line() {
        for (text, want) in [
            ("[queue]\nmax_receive_count = 0\n", "1 to 1000"),
            ("[queue]\nmax_receive_count = 1001\n", "1 to 1000"),
            ("[queue]\nvisibility_timeout_secs = 43201\n", "0 to 43200"),
            ("[queue]\nmessage_retention_days = 15\n", "1 to 14"),
            ("[queue]\nmessage_retention_days = 0\n", "1 to 14"),
            ("[validator]\nreserved_concurrency = 0\n", "1 to 900"),
            ("[validator]\nmemory_mb = 64\n", "128 to 10240"),
            ("[validator]\ntimeout_secs = 901\n", "1 to 900"),
            ("[validator]\nbatch_size = 10001\n", "1 to 10000"),
            ("[validator]\nbatch_size = -1\n", "1 to 10000"),
        ] {
            let e = err(text);
            assert!(e.contains(want) && e.contains("line 2"), "{text}: {e}");
        }
        let e = err("[queue]\nvisibility_tmeout = 5\n");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn visibility_timeout_must_cover_six_function_timeouts() {
        let e = err("[queue]\nvisibility_timeout_secs = 60\n");
        assert!(
            e.contains("6 x validator.timeout_secs") && e.contains("180"),
            "{e}"
        );
        let e = err("[queue]\nvisibility_timeout_secs = 200\n[validator]\ntimeout_secs = 40\n");
        assert!(e.contains("240"), "{e}");
        Config::parse("[queue]\nvisibility_timeout_secs = 240\n[validator]\ntimeout_secs = 40\n")
            .unwrap();
    }
}

#[cfg(test)]
mod static_tier_tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn storage_and_cdn_defaults() {
        let c = Config::default();
        assert_eq!(c.storage.object_lock_days.0, 30);
        assert_eq!(c.cdn.price_class, PriceClass::PriceClass100);
        assert_eq!(c.cdn.origin_access, OriginAccess::Oac);
        assert!(c.cdn.certificate_arn.is_none());
    }

    #[test]
    fn storage_and_cdn_parse() {
        let c = Config::parse(
            "[storage]\nobject_lock_days = 365\n[cdn]\nprice_class = \"PriceClass_All\"\n\
             origin_access = \"oac\"\n\
             certificate_arn = \"arn:aws:acm:us-east-1:123456789012:certificate/abc-123\"\n",
        )
        .unwrap();
        assert_eq!(c.storage.object_lock_days.0, 365);
        assert_eq!(c.cdn.price_class.as_str(), "PriceClass_All");
        assert_eq!(c.cdn.origin_access, OriginAccess::Oac);
        assert!(c.cdn.certificate_arn.is_some());
    }

    #[test]
    fn origin_access_identity_is_refused_with_the_sse_kms_assets_bucket() {
        let e = err("[cdn]\norigin_access = \"oai\"\n");
        assert!(
            e.contains("SSE-KMS") && e.contains("\"oac\"") && e.contains("403"),
            "{e}"
        );
    }

    #[test]
    fn bad_storage_and_cdn_values_name_field_and_line() {
        let e = err("[storage]\nobject_lock_days = 0\n");
        assert!(e.contains("1 to 36500") && e.contains("line 2"), "{e}");
        let e = err("[storage]\nobject_lock_days = 40000\n");
        assert!(e.contains("1 to 36500"), "{e}");
        let e = err("[cdn]\nprice_class = \"PriceClass_50\"\n");
        assert!(e.contains("PriceClass_100") && e.contains("line 2"), "{e}");
        let e = err("[cdn]\norigin_access = \"public\"\n");
        assert!(e.contains("oac") && e.contains("oai"), "{e}");
        let e =
            err("[cdn]\ncertificate_arn = \"arn:aws:acm:eu-west-1:123456789012:certificate/x\"\n");
        assert!(e.contains("us-east-1"), "{e}");
        let e = err("[cdn]\ncertificate_arn = \"not-an-arn\"\n");
        assert!(e.contains("ACM certificate ARN"), "{e}");
        let e = err("[cdn]\nprice = 1\n");
        assert!(e.contains("unknown field `price`"), "{e}");
    }
}

#[cfg(test)]
mod validated_tests {
    //! The sections checked as a whole ([`Validate`]): defaults, normalising, error places.
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn every_sections_defaults_pass_its_own_checks() {
        let mut db = DatabaseConfig::default();
        db.validate().unwrap();
        assert_eq!(db, DatabaseConfig::default(), "nothing to normalise");
        let mut alarms = AlarmsConfig::default();
        alarms.validate().unwrap();
        assert_eq!(alarms, AlarmsConfig::default());
        let mut alb = AlbConfig::default();
        alb.validate().unwrap();
        assert_eq!(alb, AlbConfig::default());
        let mut cert = CertificateConfig::default();
        cert.validate().unwrap();
        assert_eq!(cert, CertificateConfig::default());
        // A written section equal to the defaults reads as the defaults.
        let c = Config::parse(
            "[database]\nmode = \"provisioned\"\n[alarms]\ndb_connections = 500\n[alb]\n\
             blue_weight = 100\n[certificate]\n",
        )
        .unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn written_forms_are_consumed_into_what_the_program_reads() {
        // The placeholder image's paths and the web split with its floor, written out, are
        // the service the defaults give.
        let written = Config::parse(
            "[[services]]\nname = \"web\"\npermissions = [\"queue\", \"sessions\", \"database\", \
             \"queue\"]\nwritable_paths = [\"/var/cache/nginx\", \"/var/run\", \"/tmp\"]\n\
             capacity = { fargate_base = 0, fargate_weight = 1, spot_weight = 2, \
             min_spot_percent = 50 }\n",
        )
        .unwrap();
        assert_eq!(written.services.0[0], ServiceConfig::default_web());
        let c = Config::parse("[alb]\norigin_domain = \"Origin.Example.com\"\n[certificate]\narn = \"arn:aws:acm:us-east-1:123456789012:certificate/abc\"\n").unwrap();
        assert_eq!(c.alb.origin_domain.as_deref(), Some("origin.example.com"));
    }

    #[test]
    fn a_sections_error_names_the_field_the_section_and_its_line() {
        let e = err("[network]\naz_count = 2\n\n[database]\nmin_capacity = 8\nmax_capacity = 4\n");
        assert!(
            e.starts_with("`database.min_capacity` in [database] at line 4: min_capacity 8"),
            "{e}"
        );
        // The section written inline: the line is the key's.
        let e = err("alb = { blue_weight = 0, green_weight = 0 }\n");
        assert!(
            e.starts_with("`alb.blue_weight` at line 1: ") && e.contains("both 0"),
            "{e}"
        );
        // The header of the section that broke its rule, not the one above it.
        let e = err("[alarms]\ndb_connections = 5\n[alb]\ngreen_weight = 1000\n");
        assert!(
            e.starts_with("`alb.green_weight` in [alb] at line 3"),
            "{e}"
        );
        let e = err("[[services]]\nname = \"web\"\ncapacity = { min_spot_percent = 101 }\n");
        assert!(
            e.starts_with("`services.capacity.min_spot_percent` in [[services]] at line 1: ")
                && e.contains("0 to 100"),
            "{e}"
        );
    }

    #[test]
    fn a_capacity_table_keeps_its_own_errors_with_the_floor_among_its_keys() {
        let e = err("[[services]]\nname = \"web\"\n\n[services.capacity]\nspot = 1\n");
        assert!(
            e.contains("`services.capacity.spot` at line 5")
                && e.contains(
                    "expected one of `fargate_base`, `fargate_weight`, `spot_weight`, \
                     `min_spot_percent`"
                ),
            "{e}"
        );
        let e = err("[[services]]\nname = \"web\"\ncapacity = { min_spot_percent = -1 }\n");
        assert!(e.contains("line 3") && e.contains("u32"), "{e}");
        let c = Config::parse(
            "[[services]]\nname = \"web\"\n\n[services.capacity]\nmin_spot_percent = 50\n\
             spot_weight = 3\n",
        )
        .unwrap();
        let web = &c.services.0[0];
        assert_eq!(web.min_spot_percent, Some(50));
        assert_eq!(
            (
                web.capacity.fargate_base,
                web.capacity.fargate_weight,
                web.capacity.spot_weight
            ),
            (0, 1, 3)
        );
    }

    #[test]
    fn only_field_errors_are_read_back_as_such() {
        let e = FieldError::new("capacity.min_spot_percent", "too high").to_string();
        assert_eq!(
            validated::split_field_error(&e),
            Some(("capacity.min_spot_percent", "too high"))
        );
        for other in [
            "`domain` and `arn` exclude each other: give one",
            "unknown field `x`, expected `y`",
            "`a b`: c",
        ] {
            assert_eq!(validated::split_field_error(other), None, "{other}");
        }
    }
}

#[cfg(test)]
mod deploy_and_tracing_tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().0
    }

    #[test]
    fn defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.deploy.block_severity, Severity::High);
        assert_eq!(
            (c.deploy.health_timeout_secs.0, c.deploy.bake_secs.0),
            (900, 300)
        );
        assert!(c.tracing.enabled);
        assert_eq!(c.tracing.collector_image, COLLECTOR_IMAGE);
    }

    #[test]
    fn bad_values_name_the_field_line_and_what_is_allowed() {
        let e = err("[deploy]\nblock_severity = \"SEVERE\"\n");
        assert!(
            e.contains("block_severity") && e.contains("CRITICAL") && e.contains("line 2"),
            "{e}"
        );
        let e = err("[deploy]\nbake_secs = 0\n");
        assert!(e.contains("bake_secs") && e.contains("1 to 3600"), "{e}");
        let e = err("[deploy]\nhealth_timeout_secs = 7200\n");
        assert!(
            e.contains("health_timeout_secs") && e.contains("1 to 3600"),
            "{e}"
        );
        let e = err("[tracing]\ncollector_image = \"has space:1\"\n");
        assert!(
            e.contains("collector_image") && e.contains("without whitespace"),
            "{e}"
        );
        let e = err("[tracing]\nsampling = 1\n");
        assert!(e.contains("sampling"), "{e}");
        assert_eq!(
            Config::parse("[deploy]\nblock_severity = \"CRITICAL\"\n[tracing]\nenabled = false\n")
                .map(|c| (c.deploy.block_severity, c.tracing.enabled))
                .unwrap(),
            (Severity::Critical, false)
        );
    }
}
