//! Amazon CloudWatch resource types: metric alarms and dashboards.

pub mod alarm;
pub mod dashboard;
