//! Amazon SNS resource types: a topic and its subscriptions.

pub mod subscription;
pub mod topic;
