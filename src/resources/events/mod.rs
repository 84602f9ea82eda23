//! Amazon EventBridge resource types: a scheduled rule on the default event bus with its one
//! target (the breaker's reconciler, seed 002).

pub mod rule;
