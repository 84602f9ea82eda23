//! AWS Lambda resource types: a VPC function deployed from a zip, and its event source
//! mapping from an SQS queue.

pub mod event_source_mapping;
pub mod function;
