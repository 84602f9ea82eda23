//! Alarms step: the SNS alert topic (encrypted with the stack key) with the operations team's
//! email subscription, the CloudWatch alarms that page on the stack's failure modes, and the
//! CloudWatch dashboard `fintech-<suffix>`.
//!
//! Alarms are described by pure data ([`alarm_specs`]) so that what they watch is unit tested.
//! Each alarm's description ends with a fingerprint of its spec: `up` re-puts an alarm only when
//! the fingerprint (or its action) differs (see [`crate::resources::cloudwatch::alarm`]). The
//! topic, subscription, alarm and dashboard types are providers in [`crate::resources`]; this
//! step decides what to watch and in which order to build and tear down.

/// The `[alarms]` section this step owns (re-exported by `crate::config`).
pub mod config;

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::ComparisonOperator;
use serde_json::{json, Value};

use crate::resources::cloudwatch::alarm::{self, AlarmSpec, Watch};
use crate::resources::cloudwatch::dashboard;
use crate::resources::sns::{subscription, topic};
use crate::step::{Step, StepCtx};
use crate::outputs::{alb, cluster, database, kms, services, sessions, validator};

pub use crate::outputs::alarms::*;

pub const TOPIC: &str = topic::KIND;
pub const SUBSCRIPTION: &str = subscription::KIND;
pub const ALARM: &str = alarm::KIND;
pub const DASHBOARD: &str = dashboard::KIND;

pub struct Alarms;

/// The resources alarms and widgets point at, from the other steps' outputs.
#[derive(Debug, Clone)]
pub struct Watched {
    pub region: String,
    /// `app/alb-<s>/<id>`: the ALB's CloudWatch dimension.
    pub alb: String,
    pub db_cluster: String,
    pub ecs_cluster: String,
    /// ECS service name -> (config name, minimum tasks).
    pub ecs_services: BTreeMap<String, (String, u32)>,
    pub function: String,
    pub table: String,
    pub queue: String,
    pub dlq: String,
    /// The breaker alarm's ARN (the dashboard shows its state).
    pub breaker_alarm_arn: String,
}

pub use crate::outputs::alarms::{alarm_name, ROLLBACK_ALARMS};

/// Every alarm of the stack. Thresholds come from `[alarms]` in the config.
pub fn alarm_specs(w: &Watched, suffix: &str, t: &crate::config::AlarmsConfig) -> Vec<AlarmSpec> {
    use ComparisonOperator::*;
    let name = |p: &str| alarm_name(p, suffix);
    let alb = vec![("LoadBalancer", w.alb.clone())];
    let mut v = vec![
        AlarmSpec {
            name: name("alb-5xx-rate"),
            description: format!(
                "More than {}% of ALB requests end in a 5xx (load balancer or targets)",
                t.alb_5xx_percent
            ),
            metric: Watch::Expression {
                expression: "100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests".into(),
                label: "5xx rate (%)",
                inputs: vec![
                    (
                        "elb5xx",
                        "AWS/ApplicationELB",
                        "HTTPCode_ELB_5XX_Count",
                        alb.clone(),
                        "Sum",
                    ),
                    (
                        "target5xx",
                        "AWS/ApplicationELB",
                        "HTTPCode_Target_5XX_Count",
                        alb.clone(),
                        "Sum",
                    ),
                    (
                        "requests",
                        "AWS/ApplicationELB",
                        "RequestCount",
                        alb.clone(),
                        "Sum",
                    ),
                ],
            },
            period: 60,
            evaluation_periods: 5,
            threshold: t.alb_5xx_percent,
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
        AlarmSpec {
            name: name("alb-p99-latency"),
            description: format!(
                "ALB target p99 response time above {} s",
                t.p99_latency_secs
            ),
            metric: Watch::Metric {
                namespace: "AWS/ApplicationELB",
                name: "TargetResponseTime",
                dims: alb.clone(),
                stat: "p99",
            },
            period: 60,
            evaluation_periods: 5,
            threshold: t.p99_latency_secs,
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
        AlarmSpec {
            name: name("db-cpu"),
            description: format!("Aurora cluster CPU above {}%", t.db_cpu_percent),
            metric: Watch::Metric {
                namespace: "AWS/RDS",
                name: "CPUUtilization",
                dims: vec![("DBClusterIdentifier", w.db_cluster.clone())],
                stat: "Average",
            },
            period: 300,
            evaluation_periods: 3,
            threshold: t.db_cpu_percent,
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
        AlarmSpec {
            name: name("db-connections"),
            description: format!("Aurora cluster connections above {}", t.db_connections),
            metric: Watch::Metric {
                namespace: "AWS/RDS",
                name: "DatabaseConnections",
                dims: vec![("DBClusterIdentifier", w.db_cluster.clone())],
                stat: "Maximum",
            },
            period: 300,
            evaluation_periods: 2,
            threshold: f64::from(t.db_connections),
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
        AlarmSpec {
            name: name("lambda-errors"),
            description: "The transaction validator raised errors".into(),
            metric: Watch::Metric {
                namespace: "AWS/Lambda",
                name: "Errors",
                dims: vec![("FunctionName", w.function.clone())],
                stat: "Sum",
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 0.0,
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
        AlarmSpec {
            name: name("lambda-throttles"),
            description: "The transaction validator was throttled (reserved concurrency reached)"
                .into(),
            metric: Watch::Metric {
                namespace: "AWS/Lambda",
                name: "Throttles",
                dims: vec![("FunctionName", w.function.clone())],
                stat: "Sum",
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 0.0,
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
        AlarmSpec {
            name: name("dynamodb-throttles"),
            description: "Requests to the session table were throttled".into(),
            metric: Watch::Expression {
                expression: "FILL(reads, 0) + FILL(writes, 0)".into(),
                label: "throttle events",
                inputs: vec![
                    (
                        "reads",
                        "AWS/DynamoDB",
                        "ReadThrottleEvents",
                        vec![("TableName", w.table.clone())],
                        "Sum",
                    ),
                    (
                        "writes",
                        "AWS/DynamoDB",
                        "WriteThrottleEvents",
                        vec![("TableName", w.table.clone())],
                        "Sum",
                    ),
                ],
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 0.0,
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
        AlarmSpec {
            name: name("dlq-not-empty"),
            description:
                "Transactions failed validation repeatedly and wait in the dead-letter queue".into(),
            metric: Watch::Metric {
                namespace: "AWS/SQS",
                name: "ApproximateNumberOfMessagesVisible",
                dims: vec![("QueueName", w.dlq.clone())],
                stat: "Maximum",
            },
            period: 300,
            evaluation_periods: 1,
            threshold: 0.0,
            comparison: GreaterThanThreshold,
            missing_data: "notBreaching",
        },
    ];
    for (service, (config_name, min)) in &w.ecs_services {
        v.push(AlarmSpec {
            name: name(&format!("ecs-tasks-{config_name}")),
            description: format!(
                "ECS service {service} runs fewer than its minimum of {min} tasks"
            ),
            metric: Watch::Metric {
                namespace: "ECS/ContainerInsights",
                name: "RunningTaskCount",
                dims: vec![
                    ("ClusterName", w.ecs_cluster.clone()),
                    ("ServiceName", service.clone()),
                ],
                stat: "Minimum",
            },
            period: 60,
            evaluation_periods: 3,
            threshold: f64::from(*min),
            comparison: LessThanThreshold,
            missing_data: "breaching",
        });
    }
    v
}

/// The dashboard: one row per tier.
pub fn dashboard_body(w: &Watched) -> Value {
    let r = &w.region;
    let widget = |title: &str, x: i32, y: i32, metrics: Value, stat: &str| {
        json!({
            "type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": {"title": title, "region": r, "stat": stat, "period": 60,
                           "view": "timeSeries", "metrics": metrics}
        })
    };
    let mut ecs_count = Vec::new();
    let mut ecs_use = Vec::new();
    for service in w.ecs_services.keys() {
        let d = ["ClusterName", &w.ecs_cluster, "ServiceName", service];
        ecs_count.push(json!([
            "ECS/ContainerInsights",
            "RunningTaskCount",
            d[0],
            d[1],
            d[2],
            d[3]
        ]));
        ecs_use.push(json!(["AWS/ECS", "CPUUtilization", d[0], d[1], d[2], d[3]]));
        ecs_use.push(json!([
            "AWS/ECS",
            "MemoryUtilization",
            d[0],
            d[1],
            d[2],
            d[3]
        ]));
    }
    let mut body = json!({
        "widgets": [
            widget("ECS running tasks", 0, 0, json!(ecs_count), "Average"),
            widget("ECS CPU and memory (%)", 12, 0, json!(ecs_use), "Average"),
            widget("ALB requests and 5xx", 0, 6, json!([
                ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", w.alb],
                ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", w.alb],
                ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", w.alb]
            ]), "Sum"),
            widget("ALB target response time (p99)", 12, 6, json!([
                ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", w.alb]
            ]), "p99"),
            widget("Aurora CPU and connections", 0, 12, json!([
                ["AWS/RDS", "CPUUtilization", "DBClusterIdentifier", w.db_cluster],
                ["AWS/RDS", "DatabaseConnections", "DBClusterIdentifier", w.db_cluster, {"yAxis": "right"}]
            ]), "Average"),
            widget("Lambda validator invocations and errors", 12, 12, json!([
                ["AWS/Lambda", "Invocations", "FunctionName", w.function],
                ["AWS/Lambda", "Errors", "FunctionName", w.function],
                ["AWS/Lambda", "Throttles", "FunctionName", w.function]
            ]), "Sum"),
            widget("DynamoDB sessions: consumed capacity and throttles", 0, 18, json!([
                ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", w.table],
                ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", w.table],
                ["AWS/DynamoDB", "ReadThrottleEvents", "TableName", w.table],
                ["AWS/DynamoDB", "WriteThrottleEvents", "TableName", w.table]
            ]), "Sum"),
            widget("Queues: visible messages", 12, 18, json!([
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", w.queue],
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", w.dlq]
            ]), "Maximum")
        ]
    });
    // Seed 002's breaker: its inputs, and the alarm whose state is the breaker's (ALARM:
    // open, consumption paused). Only while there is a breaker.
    if !w.breaker_alarm_arn.is_empty() {
        let widgets = body["widgets"].as_array_mut().expect("widgets");
        widgets.push(widget(
            "Validator breaker: processed and failed transactions",
            0,
            24,
            json!([
                [crate::outputs::validator::METRICS_NAMESPACE, "Processed", "FunctionName", w.function],
                [crate::outputs::validator::METRICS_NAMESPACE, "Failed", "FunctionName", w.function]
            ]),
            "Sum",
        ));
        widgets.push(json!({
            "type": "alarm", "x": 12, "y": 24, "width": 12, "height": 6,
            "properties": {
                "title": "Validator circuit breaker (ALARM = open, consumption paused)",
                "alarms": [w.breaker_alarm_arn]
            }
        }));
    }
    body
}

/// The validator's circuit breaker (seed 002): ALARM when at least `breaker_failure_percent`
/// of the transactions of a minute failed, in each of `breaker_periods` minutes, counting
/// only minutes with `breaker_min_messages` or more. The handler reports `Processed` and
/// `Failed` per batch (embedded metric format). Missing data is not breaching: once the
/// breaker has paused consumption the metrics stop, and once the breaching minutes have aged
/// out of CloudWatch's evaluation range (a little longer than `breaker_periods` minutes) the
/// alarm goes back to OK, which resumes consumption (the cool-down).
pub fn breaker_spec(function: &str, suffix: &str, v: &crate::config::ValidatorConfig) -> AlarmSpec {
    let dims = vec![("FunctionName", function.to_string())];
    AlarmSpec {
        name: alarm_name(crate::outputs::validator::BREAKER_ALARM, suffix),
        description: format!(
            "Circuit breaker of the transaction validator: {}% or more of its transactions \
             failed (minutes with {} or more) for {} minutes; ALARM pauses consumption, OK \
             resumes it",
            v.breaker_failure_percent.0, v.breaker_min_messages.0, v.breaker_periods.0
        ),
        metric: Watch::Expression {
            expression: format!(
                "IF(processed >= {}, 100 * FILL(failed, 0) / processed, 0)",
                v.breaker_min_messages.0
            ),
            label: "failed transactions (%)",
            inputs: vec![
                (
                    "processed",
                    crate::outputs::validator::METRICS_NAMESPACE,
                    "Processed",
                    dims.clone(),
                    "Sum",
                ),
                (
                    "failed",
                    crate::outputs::validator::METRICS_NAMESPACE,
                    "Failed",
                    dims,
                    "Sum",
                ),
            ],
        },
        period: 60,
        evaluation_periods: v.breaker_periods.0,
        threshold: f64::from(v.breaker_failure_percent.0),
        comparison: ComparisonOperator::GreaterThanOrEqualToThreshold,
        missing_data: "notBreaching",
    }
}

/// The console address of a dashboard.
pub fn dashboard_url(region: &str, name: &str) -> String {
    format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={name}")
}

impl Alarms {
    fn watched(&self, ctx: &StepCtx) -> Result<Watched> {
        let services = ctx.input_map(services::OUT_SERVICE_NAMES)?;
        // A `weighted` service's green twin keeps the same floor.
        let mins: BTreeMap<String, u32> = ctx
            .cfg()
            .services
            .0
            .iter()
            .flat_map(|s| {
                let twin = (s.deployment == crate::config::Deployment::Weighted)
                    .then(|| (crate::config::green_twin(&s.name.0), s.min_count));
                std::iter::once((s.name.0.clone(), s.min_count)).chain(twin)
            })
            .collect();
        let ecs_services = services
            .into_iter()
            .map(|(cfg_name, ecs_name)| {
                let min = mins.get(&cfg_name).copied().unwrap_or(1);
                (ecs_name, (cfg_name, min))
            })
            .collect();
        Ok(Watched {
            region: ctx.region().to_string(),
            alb: ctx.input_str(alb::OUT_FULL_NAME)?,
            db_cluster: ctx.input_str(database::OUT_CLUSTER_ID)?,
            ecs_cluster: ctx.input_str(cluster::OUT_CLUSTER_NAME)?,
            ecs_services,
            function: ctx.input_str(validator::OUT_FUNCTION_NAME)?,
            table: ctx.input_str(sessions::OUT_TABLE_NAME)?,
            queue: crate::naming::queue_name(ctx.suffix()),
            dlq: crate::naming::dlq_name(ctx.suffix()),
            breaker_alarm_arn: String::new(),
        })
    }
}

#[async_trait]
impl Step for Alarms {
    fn name(&self) -> &'static str {
        "alarms"
    }

    fn deps(&self) -> Vec<&'static str> {
        vec![
            "kms",
            "alb",
            "database",
            "services",
            "sessions",
            "queue",
            "validator",
        ]
    }

    fn estimate_secs(&self) -> u64 {
        10
    }

    async fn up(&self, ctx: &StepCtx) -> Result<()> {
        let mut watched = self.watched(ctx)?;
        let partition = crate::resources::iam::partition_of(
            &ctx.output_str(kms::OUT_KEY_ARN).unwrap_or_default(),
        )
        .to_string();
        watched.breaker_alarm_arn = if !ctx.cfg().validator.breaker {
            String::new()
        } else {
            format!(
            "arn:{partition}:cloudwatch:{}:{}:alarm:{}",
            ctx.region(),
            ctx.account_id().await?,
                alarm_name(crate::outputs::validator::BREAKER_ALARM, ctx.suffix())
            )
        };
        let topic_name = ctx.names().with_purpose("topic", "alerts");
        let key_arn = ctx.input_str(kms::OUT_KEY_ARN)?;
        let topic = topic::ensure(ctx, &topic_name, &key_arn).await?;
        match ctx.cfg().alarms.email.as_ref() {
            Some(email) => {
                subscription::ensure_email(ctx, &topic, &email.0).await?;
            }
            None => ctx.sh.reporter.message(
                ctx.step,
                "no [alarms] email configured: alarms publish to the topic, but nobody is subscribed",
            ),
        }
        let mut specs = alarm_specs(&watched, ctx.suffix(), &ctx.cfg().alarms);
        let mut extra = BTreeMap::new();
        let v = &ctx.cfg().validator;
        if v.breaker {
            // The breaker's ALARM and OK actions invoke the validator, which pauses or
            // resumes its own consumption (the validator step lets this alarm invoke it).
            let spec = breaker_spec(&watched.function, ctx.suffix(), v);
            if let Ok(arn) = ctx.output_str(validator::OUT_FUNCTION_ARN) {
                extra.insert(spec.name.clone(), vec![arn]);
            }
            specs.push(spec);
        }
        alarm::ensure_all(ctx, &specs, &topic, &extra).await?;
        let dashboard = ctx.names().of("fintech");
        dashboard::ensure(ctx, &dashboard, &dashboard_body(&watched)).await?;
        if !topic.is_pending() {
            ctx.set_output(OUT_TOPIC_ARN, topic.id.clone())?;
        }
        ctx.set_output(OUT_DASHBOARD_NAME, dashboard.clone())?;
        ctx.set_output(OUT_DASHBOARD_URL, dashboard_url(ctx.region(), &dashboard))?;
        Ok(())
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::cloudwatch::alarm::fingerprint;

    fn watched() -> Watched {
        Watched {
            region: "us-east-1".into(),
            alb: "app/alb-dev/0123".into(),
            db_cluster: "aurora-dev".into(),
            ecs_cluster: "cluster-dev".into(),
            ecs_services: BTreeMap::from([("svc-web-dev".into(), ("web".into(), 2))]),
            function: "fn-validator-dev".into(),
            table: "sessions-dev".into(),
            queue: "queue-transactions-dev".into(),
            dlq: "queue-transactions-dlq-dev".into(),
            breaker_alarm_arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:alarm-validator-breaker-dev"
                .into(),
        }
    }

    #[test]
    fn every_required_alarm_exists_and_watches_the_stack() {
        let specs = alarm_specs(&watched(), "dev", &crate::config::AlarmsConfig::default());
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        for n in [
            "alarm-alb-5xx-rate-dev",
            "alarm-alb-p99-latency-dev",
            "alarm-db-cpu-dev",
            "alarm-db-connections-dev",
            "alarm-ecs-tasks-web-dev",
            "alarm-lambda-errors-dev",
            "alarm-lambda-throttles-dev",
            "alarm-dynamodb-throttles-dev",
            "alarm-dlq-not-empty-dev",
        ] {
            assert!(names.contains(&n), "missing {n}");
        }
        let tasks = specs
            .iter()
            .find(|s| s.name == "alarm-ecs-tasks-web-dev")
            .unwrap();
        assert_eq!(tasks.threshold, 2.0);
        assert_eq!(tasks.comparison, ComparisonOperator::LessThanThreshold);
        assert_eq!(tasks.missing_data, "breaching");
        let p99 = specs
            .iter()
            .find(|s| s.name == "alarm-alb-p99-latency-dev")
            .unwrap();
        assert!(matches!(p99.metric, Watch::Metric { stat: "p99", .. }));
        let dlq = specs
            .iter()
            .find(|s| s.name == "alarm-dlq-not-empty-dev")
            .unwrap();
        assert!(
            matches!(&dlq.metric, Watch::Metric { dims, .. } if dims[0].1 == "queue-transactions-dlq-dev")
        );
    }

    #[test]
    fn fingerprint_changes_with_threshold_and_topic() {
        let w = watched();
        let cfg = crate::config::AlarmsConfig::default();
        let a = alarm_specs(&w, "dev", &cfg).remove(0);
        let mut b = a.clone();
        b.threshold += 1.0;
        assert_ne!(fingerprint(&a, "t"), fingerprint(&b, "t"));
        assert_ne!(fingerprint(&a, "t"), fingerprint(&a, "u"));
        assert_eq!(fingerprint(&a, "t"), fingerprint(&a.clone(), "t"));
    }

    #[test]
    fn dashboard_names_every_tier() {
        let body = dashboard_body(&watched()).to_string();
        for needle in [
            "RunningTaskCount",
            "MemoryUtilization",
            "RequestCount",
            "TargetResponseTime",
            "HTTPCode_Target_5XX_Count",
            "aurora-dev",
            "DatabaseConnections",
            "fn-validator-dev",
            "Invocations",
            "sessions-dev",
            "ConsumedReadCapacityUnits",
            "ReadThrottleEvents",
            "queue-transactions-dlq-dev",
        ] {
            assert!(body.contains(needle), "dashboard lacks {needle}");
        }
    }
}
