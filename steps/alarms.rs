//! Alarms step: the SNS alert topic (encrypted with the stack key) with the operations team's
//! email subscription, the CloudWatch alarms that page on the stack's failure modes, and the
//! CloudWatch dashboard `fintech-<suffix>`.
//!
//! Alarms are described by pure data ([`alarm_specs`]) so that what they watch is unit tested.
//! Each alarm's description ends with a fingerprint of its spec: `up` re-puts an alarm only when
//! the fingerprint (or its action) differs, which keeps a second `up` free of mutating calls
//! even where an API's read-back omits fields.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, Statistic,
};
use serde_json::{json, Value};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::state::ResourceRecord;
use crate::step::{is_pending, Found, Step, StepCtx};
use crate::steps::{alb, cluster, database, iam, kms, queue, services, sessions, validator};

pub const TOPIC: &str = "sns:topic";
pub const SUBSCRIPTION: &str = "sns:subscription";
pub const ALARM: &str = "cloudwatch:alarm";
pub const DASHBOARD: &str = "cloudwatch:dashboard";

pub const OUT_TOPIC_ARN: &str = "alerts_topic_arn";
pub const OUT_DASHBOARD_NAME: &str = "dashboard_name";
pub const OUT_DASHBOARD_URL: &str = "dashboard_url";

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
}

/// What one alarm watches and when it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    /// `alarm-<purpose>-<suffix>`.
    pub name: String,
    pub description: String,
    pub metric: Watch,
    pub period: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison: ComparisonOperator,
    /// `notBreaching` for error counts (no traffic is fine), `breaching` where silence itself
    /// is the failure (no running tasks report nothing).
    pub missing_data: &'static str,
}

/// A single metric, or an expression over several.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    Metric {
        namespace: &'static str,
        name: &'static str,
        dims: Vec<(&'static str, String)>,
        /// `Sum`, `Average`, `Maximum`, ... or a percentile such as `p99`.
        stat: &'static str,
    },
    Expression {
        expression: &'static str,
        label: &'static str,
        inputs: Vec<MetricInput>,
    },
}

/// One metric an expression reads: (id, namespace, metric, dimensions, stat).
pub type MetricInput = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, String)>,
    &'static str,
);

/// Every alarm of the stack. Thresholds come from `[alarms]` in the config.
pub fn alarm_specs(w: &Watched, suffix: &str, t: &crate::config::AlarmsConfig) -> Vec<AlarmSpec> {
    use ComparisonOperator::*;
    let name = |p: &str| format!("alarm-{p}-{suffix}");
    let alb = vec![("LoadBalancer", w.alb.clone())];
    let mut v = vec![
        AlarmSpec {
            name: name("alb-5xx-rate"),
            description: format!(
                "More than {}% of ALB requests end in a 5xx (load balancer or targets)",
                t.alb_5xx_percent
            ),
            metric: Watch::Expression {
                expression: "100 * (FILL(elb5xx, 0) + FILL(target5xx, 0)) / requests",
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
                expression: "FILL(reads, 0) + FILL(writes, 0)",
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

/// A short fingerprint of a spec and its action, kept in the alarm description. FNV-1a over
/// the spec's rendering: stable across builds, unlike std's `DefaultHasher`, so upgrading the
/// tool does not rewrite every alarm.
fn fingerprint(spec: &AlarmSpec, topic: &str) -> String {
    let text = format!("{spec:?}|{topic}");
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn described(spec: &AlarmSpec, topic: &str) -> String {
    format!(
        "{} [fintech-infra {}]",
        spec.description,
        fingerprint(spec, topic)
    )
}

fn dims(d: &[(&'static str, String)]) -> Vec<Dimension> {
    d.iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(v).build())
        .collect()
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
    json!({
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
    })
}

/// The console address of a dashboard.
pub fn dashboard_url(region: &str, name: &str) -> String {
    format!("https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={name}")
}

impl Alarms {
    fn watched(&self, ctx: &StepCtx) -> Result<Watched> {
        let services = ctx.input_map(services::OUT_SERVICE_NAMES)?;
        let mins: BTreeMap<&str, u32> = ctx
            .cfg()
            .services
            .0
            .iter()
            .map(|s| (s.name.0.as_str(), s.min_count))
            .collect();
        let ecs_services = services
            .into_iter()
            .map(|(cfg_name, ecs_name)| {
                let min = mins.get(cfg_name.as_str()).copied().unwrap_or(1);
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
            queue: queue::queue_name(ctx.suffix()),
            dlq: queue::dlq_name(ctx.suffix()),
        })
    }

    async fn ensure_topic(&self, ctx: &StepCtx) -> Result<Found> {
        let sns = ctx.aws().sns();
        let name = ctx.names().with_purpose("topic", "alerts");
        let key_arn = ctx.input_str(kms::OUT_KEY_ARN)?;
        let account = ctx.account_id().await?;
        let arn = format!(
            "arn:{}:sns:{}:{account}:{name}",
            iam::partition_of(&key_arn),
            ctx.region()
        );
        let mut current_key = None;
        let topic = ctx
            .ensure(
                TOPIC,
                &name,
                || async {
                    let attrs = sns
                        .get_topic_attributes()
                        .topic_arn(&arn)
                        .send()
                        .await
                        .aws("sns:GetTopicAttributes", &name)
                        .not_found_ok()?;
                    Ok(attrs.map(|a| {
                        current_key = a
                            .attributes()
                            .and_then(|m| m.get("KmsMasterKeyId").cloned());
                        Found::new(&arn).arn(&arn)
                    }))
                },
                || async {
                    let mut req = sns
                        .create_topic()
                        .name(&name)
                        .attributes("KmsMasterKeyId", &key_arn);
                    for (k, v) in ctx.tags(Some(&name)) {
                        req = req.tags(aws_sdk_sns::types::Tag::builder().key(k).value(v).build()?);
                    }
                    let out = req.send().await.aws("sns:CreateTopic", &name)?;
                    let arn = out.topic_arn.context("CreateTopic returned no ARN")?;
                    Ok(Found::new(&arn).arn(&arn))
                },
            )
            .await?;
        if let Some(k) = current_key.filter(|k| *k != key_arn && !is_pending(&key_arn)) {
            ctx.change(
                TOPIC,
                &name,
                &format!("encrypt with the stack key instead of {k}"),
                || async {
                    sns.set_topic_attributes()
                        .topic_arn(&topic.id)
                        .attribute_name("KmsMasterKeyId")
                        .attribute_value(&key_arn)
                        .send()
                        .await
                        .aws("sns:SetTopicAttributes", &name)?;
                    Ok(())
                },
            )
            .await?;
        }
        Ok(topic)
    }

    async fn ensure_subscription(&self, ctx: &StepCtx, topic: &Found) -> Result<()> {
        let Some(email) = ctx.cfg().alarms.email.as_ref().map(|e| e.0.clone()) else {
            ctx.sh.reporter.message(
                ctx.step,
                "no [alarms] email configured: alarms publish to the topic, but nobody is subscribed",
            );
            return Ok(());
        };
        let sns = ctx.aws().sns();
        let name = format!("email {email}");
        ctx.ensure(
            SUBSCRIPTION,
            &name,
            || async {
                if topic.is_pending() {
                    return Ok(None);
                }
                let out = sns
                    .list_subscriptions_by_topic()
                    .topic_arn(&topic.id)
                    .send()
                    .await
                    .aws("sns:ListSubscriptionsByTopic", &topic.id)?;
                Ok(out
                    .subscriptions()
                    .iter()
                    .find(|s| s.protocol() == Some("email") && s.endpoint() == Some(email.as_str()))
                    .map(|s| {
                        Found::new(s.subscription_arn().unwrap_or_default())
                            .attr("topic_arn", &topic.id)
                    }))
            },
            || async {
                // ReturnSubscriptionArn: the real ARN even while confirmation is pending, so
                // teardown can unsubscribe it.
                let out = sns
                    .subscribe()
                    .topic_arn(&topic.id)
                    .protocol("email")
                    .endpoint(&email)
                    .return_subscription_arn(true)
                    .send()
                    .await
                    .aws("sns:Subscribe", &name)?;
                Ok(Found::new(out.subscription_arn.unwrap_or_default())
                    .attr("topic_arn", &topic.id))
            },
        )
        .await?;
        Ok(())
    }

    async fn ensure_alarms(&self, ctx: &StepCtx, topic: &Found, w: &Watched) -> Result<()> {
        let cw = ctx.aws().cloudwatch();
        let specs = alarm_specs(w, ctx.suffix(), &ctx.cfg().alarms);
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let existing: BTreeMap<String, (String, Vec<String>)> = if topic.is_pending() {
            BTreeMap::new()
        } else {
            let out = cw
                .describe_alarms()
                .set_alarm_names(Some(names))
                .send()
                .await
                .aws("cloudwatch:DescribeAlarms", ctx.suffix())?;
            out.metric_alarms()
                .iter()
                .filter_map(|a| {
                    Some((
                        a.alarm_name()?.to_string(),
                        (
                            a.alarm_description().unwrap_or_default().to_string(),
                            a.alarm_actions().to_vec(),
                        ),
                    ))
                })
                .collect()
        };
        for spec in &specs {
            let description = described(spec, &topic.id);
            let current = existing.get(&spec.name);
            let put = || async { self.put_alarm(ctx, spec, &description, &topic.id).await };
            ctx.ensure(
                ALARM,
                &spec.name,
                || async { Ok(current.map(|_| Found::new(&spec.name))) },
                || async {
                    put().await?;
                    Ok(Found::new(&spec.name))
                },
            )
            .await?;
            if let Some((desc, actions)) = current {
                if *desc != description || !actions.contains(&topic.id) {
                    ctx.change(ALARM, &spec.name, "update threshold, metric or action", put)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn put_alarm(
        &self,
        ctx: &StepCtx,
        spec: &AlarmSpec,
        description: &str,
        topic: &str,
    ) -> Result<()> {
        let cw = ctx.aws().cloudwatch();
        let mut req = cw
            .put_metric_alarm()
            .alarm_name(&spec.name)
            .alarm_description(description)
            .actions_enabled(true)
            .alarm_actions(topic)
            .ok_actions(topic)
            .evaluation_periods(spec.evaluation_periods)
            .threshold(spec.threshold)
            .comparison_operator(spec.comparison.clone())
            .treat_missing_data(spec.missing_data);
        match &spec.metric {
            Watch::Metric {
                namespace,
                name,
                dims: d,
                stat,
            } => {
                req = req
                    .namespace(*namespace)
                    .metric_name(*name)
                    .set_dimensions(Some(dims(d)))
                    .period(spec.period);
                req = if stat.starts_with('p') {
                    req.extended_statistic(*stat)
                } else {
                    req.statistic(Statistic::from(*stat))
                };
            }
            Watch::Expression {
                expression,
                label,
                inputs,
            } => {
                for (id, namespace, name, d, stat) in inputs {
                    let metric = Metric::builder()
                        .namespace(*namespace)
                        .metric_name(*name)
                        .set_dimensions(Some(dims(d)))
                        .build();
                    let stat = MetricStat::builder()
                        .metric(metric)
                        .period(spec.period)
                        .stat(*stat)
                        .build();
                    req = req.metrics(
                        MetricDataQuery::builder()
                            .id(*id)
                            .metric_stat(stat)
                            .return_data(false)
                            .build(),
                    );
                }
                req = req.metrics(
                    MetricDataQuery::builder()
                        .id("result")
                        .expression(*expression)
                        .label(*label)
                        .return_data(true)
                        .build(),
                );
            }
        }
        for (k, v) in ctx.tags(Some(&spec.name)) {
            req = req.tags(
                aws_sdk_cloudwatch::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build(),
            );
        }
        req.send()
            .await
            .aws("cloudwatch:PutMetricAlarm", &spec.name)?;
        Ok(())
    }

    async fn ensure_dashboard(&self, ctx: &StepCtx, w: &Watched) -> Result<String> {
        let cw = ctx.aws().cloudwatch();
        let name = ctx.names().of("fintech");
        let body = dashboard_body(w);
        let mut current: Option<Value> = None;
        let put = || async {
            cw.put_dashboard()
                .dashboard_name(&name)
                .dashboard_body(body.to_string())
                .send()
                .await
                .aws("cloudwatch:PutDashboard", &name)?;
            Ok(())
        };
        ctx.ensure(
            DASHBOARD,
            &name,
            || async {
                let out = cw
                    .get_dashboard()
                    .dashboard_name(&name)
                    .send()
                    .await
                    .aws("cloudwatch:GetDashboard", &name)
                    .not_found_ok()?;
                Ok(out.map(|o| {
                    current = o
                        .dashboard_body()
                        .and_then(|b| serde_json::from_str(b).ok());
                    Found::new(&name)
                }))
            },
            || async {
                put().await?;
                Ok(Found::new(&name))
            },
        )
        .await?;
        if current.as_ref().is_some_and(|c| *c != body) {
            ctx.change(DASHBOARD, &name, "update widgets", put).await?;
        }
        Ok(name)
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
        let watched = self.watched(ctx)?;
        let topic = self.ensure_topic(ctx).await?;
        self.ensure_subscription(ctx, &topic).await?;
        self.ensure_alarms(ctx, &topic, &watched).await?;
        let dashboard = self.ensure_dashboard(ctx, &watched).await?;
        if !topic.is_pending() {
            ctx.set_output(OUT_TOPIC_ARN, topic.id.clone())?;
        }
        ctx.set_output(OUT_DASHBOARD_NAME, dashboard.clone())?;
        ctx.set_output(OUT_DASHBOARD_URL, dashboard_url(ctx.region(), &dashboard))?;
        Ok(())
    }

    async fn down(&self, ctx: &StepCtx) -> Result<()> {
        let cw = ctx.aws().cloudwatch();
        let sns = ctx.aws().sns();
        ctx.delete_recorded(DASHBOARD, |rec| async move {
            cw.delete_dashboards()
                .dashboard_names(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("cloudwatch:DeleteDashboards", &rec.id)
        })
        .await?;
        ctx.delete_recorded(ALARM, |rec| async move {
            cw.delete_alarms()
                .alarm_names(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("cloudwatch:DeleteAlarms", &rec.id)
        })
        .await?;
        // A subscription still pending confirmation has no ARN to unsubscribe; deleting the
        // topic removes it.
        ctx.delete_recorded(SUBSCRIPTION, |rec| async move {
            if !rec.id.starts_with("arn:") {
                return Ok(());
            }
            sns.unsubscribe()
                .subscription_arn(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("sns:Unsubscribe", &rec.id)
        })
        .await?;
        ctx.delete_recorded(TOPIC, |rec| async move {
            sns.delete_topic()
                .topic_arn(&rec.id)
                .send()
                .await
                .map(|_| ())
                .aws("sns:DeleteTopic", &rec.id)
        })
        .await?;
        for key in [OUT_TOPIC_ARN, OUT_DASHBOARD_NAME, OUT_DASHBOARD_URL] {
            ctx.remove_output(key)?;
        }
        Ok(())
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(match rec.kind.as_str() {
            TOPIC => ctx
                .aws()
                .sns()
                .get_topic_attributes()
                .topic_arn(id)
                .send()
                .await
                .aws("sns:GetTopicAttributes", id)
                .not_found_ok()?
                .map(|_| "exists".to_string()),
            SUBSCRIPTION => {
                let topic = rec.attrs.get("topic_arn").cloned().unwrap_or_default();
                ctx.aws()
                    .sns()
                    .list_subscriptions_by_topic()
                    .topic_arn(&topic)
                    .send()
                    .await
                    .aws("sns:ListSubscriptionsByTopic", &topic)
                    .not_found_ok()?
                    .and_then(|o| {
                        o.subscriptions()
                            .iter()
                            .find(|s| s.subscription_arn() == Some(id))
                            .map(|_| "subscribed".to_string())
                    })
            }
            ALARM => ctx
                .aws()
                .cloudwatch()
                .describe_alarms()
                .alarm_names(id)
                .send()
                .await
                .aws("cloudwatch:DescribeAlarms", id)?
                .metric_alarms()
                .first()
                .map(|a| {
                    a.state_value()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default()
                }),
            DASHBOARD => ctx
                .aws()
                .cloudwatch()
                .get_dashboard()
                .dashboard_name(id)
                .send()
                .await
                .aws("cloudwatch:GetDashboard", id)
                .not_found_ok()?
                .map(|_| "exists".to_string()),
            other => anyhow::bail!("alarms step does not know resource type {other}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
