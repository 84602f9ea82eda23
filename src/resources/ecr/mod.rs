//! Amazon ECR resource types.

pub mod repository;
