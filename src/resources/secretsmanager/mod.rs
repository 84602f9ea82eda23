//! AWS Secrets Manager resource types.

pub mod secret;
