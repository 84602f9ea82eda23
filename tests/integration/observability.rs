//! The alarms step against the emulator, on the full default stack (preset `webapp`): the SNS
//! alert topic is encrypted with the stack key and has the configured email subscription;
//! every required alarm watches this stack's resources and notifies the topic; the dashboard
//! `fintech-<suffix>` parses and names the stack's resources; `outputs` shows the headline
//! outputs; threshold drift is repaired; `down` removes topic, alarms and dashboard.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::*;

const CONFIG: &str = "preset = \"webapp\"\n\
                      [alarms]\nemail = \"oncall@example.com\"\ndb_cpu_percent = 75\n";

/// The alarms of the stack (named `alarm-...-<suffix>`), by name.
async fn alarms(
    cw: &aws_sdk_cloudwatch::Client,
    suffix: &str,
) -> BTreeMap<String, aws_sdk_cloudwatch::types::MetricAlarm> {
    let out = cw
        .describe_alarms()
        .alarm_name_prefix("alarm-")
        .max_records(100)
        .send()
        .await
        .unwrap();
    out.metric_alarms()
        .iter()
        .filter(|a| a.alarm_name().unwrap().ends_with(&format!("-{suffix}")))
        .map(|a| (a.alarm_name().unwrap().to_string(), a.clone()))
        .collect()
}

/// Every (metric name, dimension values) an alarm reads, directly or through its expression.
fn watched(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> Vec<(String, Vec<String>)> {
    let mut v = Vec::new();
    if let Some(m) = a.metric_name() {
        v.push((
            m.to_string(),
            a.dimensions()
                .iter()
                .map(|d| d.value().unwrap_or_default().to_string())
                .collect(),
        ));
    }
    for q in a.metrics() {
        if let Some(metric) = q.metric_stat().and_then(|s| s.metric()) {
            v.push((
                metric.metric_name().unwrap_or_default().to_string(),
                metric
                    .dimensions()
                    .iter()
                    .map(|d| d.value().unwrap_or_default().to_string())
                    .collect(),
            ));
        }
    }
    v
}

#[test]
fn alarms_topic_and_dashboard_cover_the_full_stack_and_are_removed() {
    let stack = Stack::new("obs");
    let cfg = stack.config(CONFIG);
    let cfg = cfg.to_str().unwrap();
    stack.up(&["--config", cfg]).assert_ok();
    let s = stack.suffix.clone();

    let topic_arn = stack.output_str("alerts_topic_arn");
    let key_arn = stack.output_str("kms_key_arn");
    let alb = stack.output_str("alb_full_name");
    let db = stack.output_str("db_cluster_id");
    let table = stack.output_str("sessions_table_name");
    let function = stack.output_str("validator_function_name");
    let dlq_url = stack.output_str("dlq_url");
    let dlq = dlq_url.rsplit('/').next().unwrap().to_string();
    let ecs_cluster = stack.output_str("ecs_cluster_name");
    let ecs_services: BTreeMap<String, String> =
        serde_json::from_value(stack.output("ecs_service_names")).unwrap();
    let web = ecs_services["web"].clone();
    assert_eq!(stack.output_str("dashboard_name"), format!("fintech-{s}"));
    assert!(stack
        .output_str("dashboard_url")
        .contains(&format!("dashboards:name=fintech-{s}")));

    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let cw = aws_sdk_cloudwatch::Client::new(&sdk);

        // Topic: encrypted with the stack key; the email subscription waits for confirmation.
        let attrs = sns
            .get_topic_attributes()
            .topic_arn(&topic_arn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        assert_eq!(
            attrs.get("KmsMasterKeyId").map(String::as_str),
            Some(key_arn.as_str()),
            "topic not encrypted with the stack key: {attrs:?}"
        );
        let subs = sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic_arn)
            .send()
            .await
            .unwrap();
        let emails: Vec<_> = subs
            .subscriptions()
            .iter()
            .filter(|x| x.protocol() == Some("email"))
            .map(|x| x.endpoint().unwrap_or_default().to_string())
            .collect();
        assert_eq!(emails, ["oncall@example.com"], "{subs:?}");

        // Alarms: every required one, on this stack's resources, notifying the topic.
        let found = alarms(&cw, &s).await;
        let want: [(&str, &str, &str); 9] = [
            ("alb-5xx-rate", "HTTPCode_Target_5XX_Count", alb.as_str()),
            ("alb-p99-latency", "TargetResponseTime", alb.as_str()),
            ("db-cpu", "CPUUtilization", db.as_str()),
            ("db-connections", "DatabaseConnections", db.as_str()),
            ("ecs-tasks-web", "RunningTaskCount", web.as_str()),
            ("lambda-errors", "Errors", function.as_str()),
            ("lambda-throttles", "Throttles", function.as_str()),
            ("dynamodb-throttles", "WriteThrottleEvents", table.as_str()),
            (
                "dlq-not-empty",
                "ApproximateNumberOfMessagesVisible",
                dlq.as_str(),
            ),
        ];
        for (purpose, metric, dim) in want {
            let name = format!("alarm-{purpose}-{s}");
            let a = found
                .get(&name)
                .unwrap_or_else(|| panic!("alarm {name} missing: {:?}", found.keys()));
            assert_eq!(
                a.alarm_actions(),
                std::slice::from_ref(&topic_arn),
                "{name} actions"
            );
            assert_eq!(a.actions_enabled(), Some(true), "{name}");
            let w = watched(a);
            assert!(
                w.iter()
                    .any(|(m, d)| m == metric && d.iter().any(|v| v == dim)),
                "{name} does not watch {metric} of {dim}: {w:?}"
            );
        }
        let cpu = &found[&format!("alarm-db-cpu-{s}")];
        assert_eq!(cpu.threshold(), Some(75.0), "configured DB CPU threshold");
        let tasks = &found[&format!("alarm-ecs-tasks-web-{s}")];
        assert!(
            tasks
                .dimensions()
                .iter()
                .any(|d| d.value() == Some(ecs_cluster.as_str())),
            "running-task alarm lacks the cluster dimension"
        );
        let p99 = &found[&format!("alarm-alb-p99-latency-{s}")];
        assert_eq!(p99.extended_statistic(), Some("p99"));

        // Dashboard: parses, and names the stack's resources in its widgets.
        let body = cw
            .get_dashboard()
            .dashboard_name(format!("fintech-{s}"))
            .send()
            .await
            .unwrap()
            .dashboard_body
            .unwrap();
        let parsed: Value = serde_json::from_str(&body).expect("dashboard body is JSON");
        let widgets = parsed["widgets"].as_array().unwrap();
        assert!(widgets.len() >= 8, "{body}");
        for needle in [
            alb.as_str(),
            db.as_str(),
            table.as_str(),
            function.as_str(),
            dlq.as_str(),
            web.as_str(),
            ecs_cluster.as_str(),
            "MemoryUtilization",
            "ConsumedWriteCapacityUnits",
        ] {
            assert!(body.contains(needle), "dashboard lacks {needle}: {body}");
        }
    });

    // `outputs` leads with what an engineer needs; --json carries everything.
    let text = stack.run(&["outputs", "--env-suffix", &s]);
    text.assert_ok();
    for label in [
        "load balancer",
        "CloudFront domain",
        "database writer",
        "database reader",
        "database secret",
        "session table",
        "transaction queue",
        "alert topic",
        "dashboard",
    ] {
        assert!(
            text.stdout.contains(label),
            "outputs lack {label}: {}",
            text.stdout
        );
    }
    assert!(text.stdout.contains(&topic_arn));
    let json = stack.run(&["outputs", "--json", "--env-suffix", &s]);
    json.assert_ok();
    let o: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    for key in [
        "alb_dns_name",
        "cdn_domain_name",
        "db_writer_endpoint",
        "db_reader_endpoint",
        "db_secret_arn",
        "sessions_table_name",
        "queue_url",
        "alerts_topic_arn",
        "dashboard_url",
    ] {
        assert!(o[key].is_string(), "outputs --json lacks {key}: {o}");
    }

    // Drift: a threshold changed by hand is put back; the change is reported.
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let cw = aws_sdk_cloudwatch::Client::new(&sdk);
        cw.put_metric_alarm()
            .alarm_name(format!("alarm-db-cpu-{s}"))
            .namespace("AWS/RDS")
            .metric_name("CPUUtilization")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
            .period(300)
            .evaluation_periods(1)
            .threshold(99.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();
    });
    let repair = stack.up(&["--config", cfg]);
    repair.assert_ok();
    assert_eq!(
        repair.summary()["changes"]["changed"],
        1,
        "{}",
        repair.stdout
    );
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let cw = aws_sdk_cloudwatch::Client::new(&sdk);
        let found = alarms(&cw, &s).await;
        let cpu = &found[&format!("alarm-db-cpu-{s}")];
        assert_eq!(cpu.threshold(), Some(75.0));
        assert_eq!(cpu.alarm_actions(), std::slice::from_ref(&topic_arn));
    });

    // A further up changes nothing.
    let again = stack.up(&["--config", cfg]);
    again.assert_ok();
    let summary = again.summary();
    assert_eq!(summary["aws_calls"]["mutating"], 0, "{summary}");

    stack.down(&["--config", cfg]).assert_ok();
    assert!(!stack.state_path().exists());
    block_on(async {
        let sdk = sdk_config(&stack.endpoint).await;
        let sns = aws_sdk_sns::Client::new(&sdk);
        let cw = aws_sdk_cloudwatch::Client::new(&sdk);
        let left = alarms(&cw, &s).await;
        assert!(left.is_empty(), "alarms left: {:?}", left.keys());
        assert!(
            cw.get_dashboard()
                .dashboard_name(format!("fintech-{s}"))
                .send()
                .await
                .is_err(),
            "dashboard left"
        );
        let topics = sns.list_topics().send().await.unwrap();
        assert!(
            !topics
                .topics()
                .iter()
                .any(|t| t.topic_arn() == Some(topic_arn.as_str())),
            "topic left"
        );
        let tagged = remaining_tagged(&sdk, &s).await;
        assert!(tagged.is_empty(), "left behind (tagging API): {tagged:?}");
    });
}
