//! `cloudwatch:alarm`: a CloudWatch metric alarm on one metric or a metric math expression,
//! notifying an SNS topic when it fires and when it recovers.
//!
//! An alarm's description ends with a fingerprint of its spec and action: [`ensure_all`]
//! re-puts an alarm only when the fingerprint (or its action) differs, which keeps a second
//! `up` free of mutating calls even where an API's read-back omits fields.

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, Statistic,
};

use crate::aws::AwsResultExt;
use crate::resources::Provider;
use crate::state::ResourceRecord;
use crate::step::{Found, StepCtx};

pub const KIND: &str = "cloudwatch:alarm";

pub struct Alarm;

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
        expression: String,
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

/// A short fingerprint of a spec and its action, kept in the alarm description. FNV-1a over
/// the spec's rendering: stable across builds, unlike std's `DefaultHasher`, so upgrading the
/// tool does not rewrite every alarm.
pub fn fingerprint(spec: &AlarmSpec, topic: &str) -> String {
    let text = format!("{spec:?}|{topic}");
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

pub fn described(spec: &AlarmSpec, topic: &str) -> String {
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

/// Puts every alarm of `specs` that is missing or whose fingerprint or action differs, with
/// `topic` as its alarm and OK action. One DescribeAlarms reads them all.
///
/// `extra_actions` adds actions to some alarms (by name), e.g. a Lambda function the alarm
/// invokes on ALARM and on OK; they count in the fingerprint only where there are any, so
/// the other alarms' fingerprints stay the same.
pub async fn ensure_all(
    ctx: &StepCtx,
    specs: &[AlarmSpec],
    topic: &Found,
    extra_actions: &BTreeMap<String, Vec<String>>,
) -> Result<()> {
    let cw = ctx.aws().cloudwatch();
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
    for spec in specs {
        let extra = extra_actions.get(&spec.name).cloned().unwrap_or_default();
        let action_key = if extra.is_empty() {
            topic.id.clone()
        } else {
            format!("{}|{}", topic.id, extra.join("|"))
        };
        let description = described(spec, &action_key);
        let current = existing.get(&spec.name);
        let put = || async { put_alarm(ctx, spec, &description, &topic.id, &extra).await };
        ctx.ensure(
            KIND,
            &spec.name,
            || async { Ok(current.map(|_| Found::new(&spec.name))) },
            || async {
                put().await?;
                Ok(Found::new(&spec.name))
            },
        )
        .await?;
        if let Some((desc, actions)) = current {
            if *desc != description
                || !actions.contains(&topic.id)
                || extra.iter().any(|a| !actions.contains(a))
            {
                ctx.change(KIND, &spec.name, "update threshold, metric or action", put)
                    .await?;
            }
        }
    }
    // An alarm the config no longer asks for (a removed service, a green twin gone): it
    // would watch a metric nothing reports any more, and with missing data as breaching,
    // alarm for good.
    for rec in ctx.records(Some(KIND)) {
        if specs.iter().any(|s| s.name == rec.id) {
            continue;
        }
        ctx.change(KIND, &rec.id, "remove: no longer configured", || async {
            delete(ctx, &rec.id).await?;
            ctx.deleted(KIND, &rec.id)
        })
        .await?;
    }
    Ok(())
}

/// PutMetricAlarm of `spec`, described with its fingerprint, acting on `topic`.
async fn put_alarm(
    ctx: &StepCtx,
    spec: &AlarmSpec,
    description: &str,
    topic: &str,
    extra: &[String],
) -> Result<()> {
    let cw = ctx.aws().cloudwatch();
    let mut req = cw
        .put_metric_alarm()
        .alarm_name(&spec.name)
        .alarm_description(description)
        .actions_enabled(true)
        .alarm_actions(topic)
        .ok_actions(topic);
    for a in extra {
        req = req.alarm_actions(a).ok_actions(a);
    }
    let mut req = req
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
                    .expression(expression)
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

/// Deletes the alarm `name`; "not found" counts as deleted.
pub async fn delete(ctx: &StepCtx, name: &str) -> Result<()> {
    let cw = ctx.aws().cloudwatch();
    ctx.retry_dependency(&format!("{KIND} {name}"), || async {
        cw.delete_alarms()
            .alarm_names(name)
            .send()
            .await
            .map(|_| ())
            .aws("cloudwatch:DeleteAlarms", name)
    })
    .await
}

#[async_trait]
impl Provider for Alarm {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn probe(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<Option<String>> {
        let id = rec.id.as_str();
        Ok(ctx
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
            }))
    }

    async fn delete(&self, ctx: &StepCtx, rec: &ResourceRecord) -> Result<()> {
        delete(ctx, &rec.id).await
    }
}
