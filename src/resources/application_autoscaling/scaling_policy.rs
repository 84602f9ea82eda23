//! `application-autoscaling:scaling-policy`: a target-tracking policy on an ECS service's
//! desired count (CPU, memory, ALB requests per target, the database's connections, the
//! transaction queue's messages per running task, or any CloudWatch metric the config names),
//! recorded by policy name with its scalable target's resource ID.
//!
//! PutScalingPolicy creates a policy and replaces an existing one of the same name; a second
//! `up` calls it only when the described policy differs ([`PolicySpec::matches`]). A policy
//! the config no longer asks for is deleted by [`ensure_all`].

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use aws_sdk_applicationautoscaling::types::{
    CustomizedMetricSpecification, MetricDimension, MetricStatistic, MetricType, PolicyType,
    PredefinedMetricSpecification, ScalableDimension, ScalingPolicy, ServiceNamespace,
    TargetTrackingMetric, TargetTrackingMetricDataQuery, TargetTrackingMetricDimension,
    TargetTrackingMetricStat, TargetTrackingScalingPolicyConfiguration,
};

use crate::aws::{AwsResultExt, NotFoundOk};
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "application-autoscaling:scaling-policy";

/// Seconds after a scale-in / scale-out before the next one: scale out fast, in slowly.
const SCALE_IN_COOLDOWN: i32 = 300;
const SCALE_OUT_COOLDOWN: i32 = 60;

pub struct Policy;

/// What a target-tracking policy follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// One of Application Auto Scaling's predefined ECS metrics; `ALBRequestCountPerTarget`
    /// needs the label `app/<lb>/<id>/targetgroup/<tg>/<id>`.
    Predefined(MetricType, Option<String>),
    /// The Aurora cluster's `DatabaseConnections` (average), by cluster identifier.
    DbConnections(String),
    /// A CloudWatch metric the config names (`services[].scaling`).
    Custom {
        namespace: String,
        name: String,
        dimensions: Vec<(String, String)>,
        statistic: MetricStatistic,
    },
    /// The work backlog per task: messages visible in the SQS queue `queue` divided by the
    /// running tasks of the ECS service (Container Insights' `RunningTaskCount`), by metric
    /// math, as AWS advises for queue consumers (a queue's depth alone says nothing about
    /// how many tasks it needs).
    BacklogPerTask {
        queue: String,
        cluster: String,
        service: String,
    },
    /// The ALB requests per running task (per minute) of a CodeDeploy blue/green service:
    /// the `RequestCount` of both target groups of its pair (CodeDeploy moves the traffic
    /// between them) over Container Insights' `RunningTaskCount`. AWS does not support the
    /// predefined `ALBRequestCountPerTarget` for the blue/green deployment type: it names
    /// one target group, which loses its traffic with every release.
    RequestsPerTask {
        /// CloudWatch's `LoadBalancer` dimension: `app/<name>/<id>`.
        load_balancer: String,
        /// CloudWatch's `TargetGroup` dimensions: `targetgroup/<name>/<id>`, blue and green.
        target_groups: [String; 2],
        cluster: String,
        service: String,
    },
}

impl Metric {
    fn describe(&self) -> String {
        match self {
            Metric::Predefined(m, _) => m.as_str().to_string(),
            Metric::DbConnections(_) => "AWS/RDS DatabaseConnections".into(),
            Metric::Custom {
                namespace, name, ..
            } => format!("{namespace} {name}"),
            Metric::BacklogPerTask { queue, .. } => format!("messages in {queue} per task"),
            Metric::RequestsPerTask { .. } => "ALB requests per task".into(),
        }
    }

    /// The metric-math queries of a metric computed from others: its inputs, the
    /// expression that is the policy's metric, and that expression's label.
    fn math(&self) -> Option<(Vec<MetricInput>, &'static str, &'static str)> {
        match self {
            Metric::BacklogPerTask {
                queue,
                cluster,
                service,
            } => {
                let (inputs, expression) = Metric::backlog_queries(queue, cluster, service);
                Some((inputs, expression, "messages per task"))
            }
            Metric::RequestsPerTask {
                load_balancer,
                target_groups: [blue, green],
                cluster,
                service,
            } => {
                let requests = |id, tg: &String| {
                    (
                        id,
                        "AWS/ApplicationELB",
                        "RequestCount",
                        vec![
                            ("LoadBalancer", load_balancer.clone()),
                            ("TargetGroup", tg.clone()),
                        ],
                        "Sum",
                    )
                };
                Some((
                    vec![
                        requests("m1", blue),
                        requests("m2", green),
                        (
                            "m3",
                            "ECS/ContainerInsights",
                            "RunningTaskCount",
                            vec![
                                ("ClusterName", cluster.clone()),
                                ("ServiceName", service.clone()),
                            ],
                            "Average",
                        ),
                    ],
                    // ALB publishes a target group's RequestCount only for minutes with
                    // requests: the idle colour has no data, which is 0 requests.
                    "(FILL(m1, 0) + FILL(m2, 0)) / m3",
                    "requests per task",
                ))
            }
            _ => None,
        }
    }

    /// The metric-math queries of [`Metric::BacklogPerTask`]: (id, namespace, metric,
    /// dimensions, statistic) of each input, and the expression that is the policy's metric.
    fn backlog_queries(
        queue: &str,
        cluster: &str,
        service: &str,
    ) -> (Vec<MetricInput>, &'static str) {
        (
            vec![
                (
                    "m1",
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    vec![("QueueName", queue.to_string())],
                    "Sum",
                ),
                (
                    "m2",
                    "ECS/ContainerInsights",
                    "RunningTaskCount",
                    vec![
                        ("ClusterName", cluster.to_string()),
                        ("ServiceName", service.to_string()),
                    ],
                    "Average",
                ),
            ],
            "m1 / m2",
        )
    }
}

/// One input of a metric-math policy: (id, namespace, metric, dimensions, statistic).
type MetricInput = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, String)>,
    &'static str,
);

/// Dimension pairs of a described customized metric, sorted.
fn dims_of(d: &[MetricDimension]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = d
        .iter()
        .map(|d| (d.name().to_string(), d.value().to_string()))
        .collect();
    v.sort();
    v
}

/// One target-tracking policy of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    pub name: String,
    pub metric: Metric,
    pub target: f64,
}

impl PolicySpec {
    pub fn configuration(&self) -> Result<TargetTrackingScalingPolicyConfiguration> {
        let b = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(self.target)
            .scale_in_cooldown(SCALE_IN_COOLDOWN)
            .scale_out_cooldown(SCALE_OUT_COOLDOWN)
            .disable_scale_in(false);
        let b = match &self.metric {
            Metric::Predefined(m, label) => b.predefined_metric_specification(
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(m.clone())
                    .set_resource_label(label.clone())
                    .build()
                    .context("building the predefined metric")?,
            ),
            Metric::DbConnections(cluster) => b.customized_metric_specification(
                CustomizedMetricSpecification::builder()
                    .namespace("AWS/RDS")
                    .metric_name("DatabaseConnections")
                    .dimensions(
                        MetricDimension::builder()
                            .name("DBClusterIdentifier")
                            .value(cluster)
                            .build()
                            .context("building the metric dimension")?,
                    )
                    .statistic(MetricStatistic::Average)
                    .build(),
            ),
            Metric::Custom {
                namespace,
                name,
                dimensions,
                statistic,
            } => {
                let mut c = CustomizedMetricSpecification::builder()
                    .namespace(namespace)
                    .metric_name(name)
                    .statistic(statistic.clone());
                for (k, v) in dimensions {
                    c = c.dimensions(
                        MetricDimension::builder()
                            .name(k)
                            .value(v)
                            .build()
                            .context("building the metric dimension")?,
                    );
                }
                b.customized_metric_specification(c.build())
            }
            m @ (Metric::BacklogPerTask { .. } | Metric::RequestsPerTask { .. }) => {
                let (inputs, expression, label) = m.math().context("a metric-math metric")?;
                let mut c = CustomizedMetricSpecification::builder();
                for (id, namespace, name, dims, stat) in inputs {
                    let mut m = TargetTrackingMetric::builder()
                        .namespace(namespace)
                        .metric_name(name);
                    for (k, v) in dims {
                        m = m.dimensions(
                            TargetTrackingMetricDimension::builder()
                                .name(k)
                                .value(v)
                                .build()
                                .context("building the metric dimension")?,
                        );
                    }
                    c = c.metrics(
                        TargetTrackingMetricDataQuery::builder()
                            .id(id)
                            .metric_stat(
                                TargetTrackingMetricStat::builder()
                                    .metric(m.build())
                                    .stat(stat)
                                    .build()
                                    .context("building the metric stat")?,
                            )
                            .return_data(false)
                            .build()
                            .context("building the metric query")?,
                    );
                }
                c = c.metrics(
                    TargetTrackingMetricDataQuery::builder()
                        .id("e1")
                        .expression(expression)
                        .label(label)
                        .return_data(true)
                        .build()
                        .context("building the metric expression")?,
                );
                b.customized_metric_specification(c.build())
            }
        };
        b.build()
            .context("building the target tracking configuration")
    }

    /// Whether a described policy is this one.
    pub fn matches(&self, p: &ScalingPolicy) -> bool {
        let Some(c) = p.target_tracking_scaling_policy_configuration() else {
            return false;
        };
        let metric = match &self.metric {
            Metric::Predefined(m, label) => c.predefined_metric_specification().is_some_and(|s| {
                s.predefined_metric_type() == m && s.resource_label() == label.as_deref()
            }),
            Metric::DbConnections(cluster) => {
                c.customized_metric_specification().is_some_and(|s| {
                    s.namespace() == Some("AWS/RDS")
                        && s.metric_name() == Some("DatabaseConnections")
                        && s.statistic() == Some(&MetricStatistic::Average)
                        && s.dimensions().len() == 1
                        && s.dimensions()[0].name() == "DBClusterIdentifier"
                        && s.dimensions()[0].value() == cluster
                })
            }
            Metric::Custom {
                namespace,
                name,
                dimensions,
                statistic,
            } => c.customized_metric_specification().is_some_and(|s| {
                let mut want = dimensions.clone();
                want.sort();
                s.namespace() == Some(namespace.as_str())
                    && s.metric_name() == Some(name.as_str())
                    && s.statistic() == Some(statistic)
                    && dims_of(s.dimensions()) == want
            }),
            m @ (Metric::BacklogPerTask { .. } | Metric::RequestsPerTask { .. }) => c
                .customized_metric_specification()
                .zip(m.math())
                .is_some_and(|(s, (inputs, expression, _))| {
                    let described: Vec<_> = s
                        .metrics()
                        .iter()
                        .filter(|q| q.expression().is_none())
                        .map(|q| {
                            let stat = q.metric_stat();
                            let m = stat.and_then(|s| s.metric());
                            let mut dims: Vec<(String, String)> = m
                                .map(|m| m.dimensions())
                                .unwrap_or_default()
                                .iter()
                                .map(|d| (d.name().to_string(), d.value().to_string()))
                                .collect();
                            dims.sort();
                            (
                                q.id().to_string(),
                                m.and_then(|m| m.namespace())
                                    .unwrap_or_default()
                                    .to_string(),
                                m.and_then(|m| m.metric_name())
                                    .unwrap_or_default()
                                    .to_string(),
                                dims,
                                stat.map(|s| s.stat()).unwrap_or_default().to_string(),
                            )
                        })
                        .collect();
                    let wanted: Vec<_> = inputs
                        .into_iter()
                        .map(|(id, ns, name, dims, stat)| {
                            let mut dims: Vec<(String, String)> =
                                dims.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                            dims.sort();
                            (
                                id.to_string(),
                                ns.to_string(),
                                name.to_string(),
                                dims,
                                stat.to_string(),
                            )
                        })
                        .collect();
                    described == wanted
                        && s.metrics().iter().any(|q| {
                            q.id() == "e1"
                                && q.expression() == Some(expression)
                                && q.return_data() == Some(true)
                        })
                }),
        };
        p.policy_type() == &PolicyType::TargetTrackingScaling
            && (c.target_value() - self.target).abs() < 1e-9
            && metric
            && c.scale_in_cooldown() == Some(SCALE_IN_COOLDOWN)
            && c.scale_out_cooldown() == Some(SCALE_OUT_COOLDOWN)
            && c.disable_scale_in() != Some(true)
    }
}

/// The `ALBRequestCountPerTarget` label of a target group behind a load balancer:
/// `app/<lb>/<id>/targetgroup/<tg>/<id>`, from the two ARNs.
pub fn request_count_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.split_once(":targetgroup/")?.1;
    Some(format!("{lb}/targetgroup/{tg}"))
}

/// The policies `specs` of the scalable target `resource_id` (of the stack's service
/// `service`), each put or found and repaired when it differs; a recorded policy of this
/// service that `specs` no longer names is deleted. `service_pending`: the service does not
/// exist yet (plan mode), so nothing is looked up.
pub async fn ensure_all(
    ctx: &StepCtx,
    resource_id: &str,
    service: &str,
    specs: &[PolicySpec],
    service_pending: bool,
) -> Result<()> {
    let aas = ctx.aws().autoscaling();
    let described: Vec<ScalingPolicy> = if service_pending {
        Vec::new()
    } else {
        aas.describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(resource_id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .set_policy_names(Some(specs.iter().map(|p| p.name.clone()).collect()))
            .send()
            .await
            .aws(
                "application-autoscaling:DescribeScalingPolicies",
                resource_id,
            )?
            .scaling_policies()
            .to_vec()
    };
    for spec in specs {
        let put = || async {
            let out = aas
                .put_scaling_policy()
                .policy_name(&spec.name)
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(resource_id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .policy_type(PolicyType::TargetTrackingScaling)
                .target_tracking_scaling_policy_configuration(spec.configuration()?)
                .send()
                .await
                .aws("application-autoscaling:PutScalingPolicy", &spec.name)?;
            Ok::<_, anyhow::Error>(out.policy_arn)
        };
        let current = described
            .iter()
            .find(|p| p.policy_name() == spec.name && p.resource_id() == resource_id);
        let found_of = |arn: &str| {
            Found::new(&spec.name)
                .arn(arn)
                .attr("service", service)
                .attr("resource_id", resource_id)
        };
        ctx.ensure(
            KIND,
            &spec.name,
            || async { Ok(current.map(|p| found_of(p.policy_arn()))) },
            || async { Ok(found_of(&put().await?)) },
        )
        .await?;
        if let Some(p) = current {
            if !spec.matches(p) {
                ctx.change(
                    KIND,
                    &spec.name,
                    &format!("target {} on {}", spec.target, spec.metric.describe()),
                    || async {
                        put().await?;
                        Ok(())
                    },
                )
                .await?;
            }
        }
    }
    // A policy the config no longer asks for (e.g. request_count_target removed).
    for rec in ctx.records(Some(KIND)) {
        let this_service = rec.attrs.get("service").map(String::as_str) == Some(service);
        if !this_service || specs.iter().any(|s| s.name == rec.id) {
            continue;
        }
        ctx.change(KIND, &rec.id, "remove: no longer configured", || async {
            delete(ctx, &rec).await?;
            ctx.deleted(KIND, &rec.id)
        })
        .await?;
    }
    Ok(())
}

/// Deletes a recorded scaling policy ("not found" counts as deleted).
pub async fn delete(ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
    let resource_id = rec.attrs.get("resource_id").cloned().unwrap_or_default();
    ctx.aws()
        .autoscaling()
        .delete_scaling_policy()
        .policy_name(&rec.id)
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource_id)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .send()
        .await
        .aws("application-autoscaling:DeleteScalingPolicy", &rec.id)
        .not_found_ok()?;
    Ok(())
}

#[async_trait]
impl Provider for Policy {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        let resource_id = rec.attrs.get("resource_id").cloned().unwrap_or_default();
        let out = ctx
            .aws()
            .autoscaling()
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&resource_id)
            .policy_names(id)
            .send()
            .await
            .aws("application-autoscaling:DescribeScalingPolicies", id)?;
        Ok(out
            .scaling_policies()
            .iter()
            .any(|p| p.policy_name() == id)
            .then(|| "exists".to_string()))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, rec).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy AWS would describe after `p` was put.
    fn described(p: &PolicySpec) -> ScalingPolicy {
        ScalingPolicy::builder()
            .policy_arn("arn:p")
            .policy_name(&p.name)
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id("service/c/s")
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(p.configuration().unwrap())
            .creation_time(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    #[test]
    fn backlog_and_custom_metrics_round_trip_and_differ_by_their_inputs() {
        let backlog = PolicySpec {
            name: "scale-backlog-tp-demo".into(),
            metric: Metric::BacklogPerTask {
                queue: "queue-transactions-demo".into(),
                cluster: "cluster-demo".into(),
                service: "svc-tp-demo".into(),
            },
            target: 100.0,
        };
        let conf = backlog.configuration().unwrap();
        let m = conf.customized_metric_specification().unwrap().metrics();
        // Two inputs that return no data of their own, and the expression that does.
        assert_eq!(m.len(), 3);
        assert_eq!(m[2].expression(), Some("m1 / m2"));
        assert_eq!(m[2].return_data(), Some(true));
        let stat = m[1].metric_stat().unwrap();
        assert_eq!(
            stat.metric().unwrap().namespace(),
            Some("ECS/ContainerInsights")
        );
        assert_eq!(stat.stat(), "Average");
        assert!(backlog.matches(&described(&backlog)));
        let elsewhere = PolicySpec {
            metric: Metric::BacklogPerTask {
                queue: "queue-other".into(),
                cluster: "cluster-demo".into(),
                service: "svc-tp-demo".into(),
            },
            ..backlog.clone()
        };
        assert!(!elsewhere.matches(&described(&backlog)));

        let custom = PolicySpec {
            name: "scale-custom1-tp-demo".into(),
            metric: Metric::Custom {
                namespace: "Payments".into(),
                name: "PendingSettlements".into(),
                dimensions: vec![("Stage".into(), "prod".into()), ("Bank".into(), "a".into())],
                statistic: MetricStatistic::Maximum,
            },
            target: 50.0,
        };
        assert!(
            custom.matches(&described(&custom)),
            "dimension order does not matter"
        );
        let sum = PolicySpec {
            metric: Metric::Custom {
                namespace: "Payments".into(),
                name: "PendingSettlements".into(),
                dimensions: vec![("Bank".into(), "a".into()), ("Stage".into(), "prod".into())],
                statistic: MetricStatistic::Sum,
            },
            ..custom.clone()
        };
        assert!(!sum.matches(&described(&custom)));
    }

    #[test]
    fn policies_compare_target_and_metric() {
        let p = PolicySpec {
            name: "scale-cpu-web-demo".into(),
            metric: Metric::Predefined(MetricType::EcsServiceAverageCpuUtilization, None),
            target: 70.0,
        };
        assert!(p.matches(&described(&p)));
        let other = PolicySpec {
            target: 60.0,
            ..p.clone()
        };
        assert!(!other.matches(&described(&p)));

        let label = request_count_label(
            "arn:aws:elasticloadbalancing:us-east-2:1:loadbalancer/app/alb-demo/50dc6c495c0c9188",
            "arn:aws:elasticloadbalancing:us-east-2:1:targetgroup/tg-blue-demo/73e2d6bc24d8a067",
        )
        .unwrap();
        assert_eq!(
            label,
            "app/alb-demo/50dc6c495c0c9188/targetgroup/tg-blue-demo/73e2d6bc24d8a067"
        );
        let requests = PolicySpec {
            name: "scale-requests-web-demo".into(),
            metric: Metric::Predefined(MetricType::AlbRequestCountPerTarget, Some(label)),
            target: 1000.0,
        };
        assert!(requests.matches(&described(&requests)));
        let relabelled = PolicySpec {
            metric: Metric::Predefined(MetricType::AlbRequestCountPerTarget, Some("x".into())),
            ..requests.clone()
        };
        assert!(!relabelled.matches(&described(&requests)));
        let db = PolicySpec {
            name: "scale-dbconn-web-demo".into(),
            metric: Metric::DbConnections("aurora-demo".into()),
            target: 400.0,
        };
        assert!(db.matches(&described(&db)));
        assert!(!PolicySpec {
            metric: Metric::DbConnections("aurora-other".into()),
            ..db.clone()
        }
        .matches(&described(&db)));
        assert!(!db.matches(&described(&p)));
    }
}
