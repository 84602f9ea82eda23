//! Amazon S3 resource types.

pub mod bucket;
pub mod bucket_policy;
pub mod bucket_settings;
pub mod log_bucket;
pub mod replication;
