//! Amazon SQS resource types.

pub mod queue;
