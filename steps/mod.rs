//! The steps of the stack, one module each, and the list the engine runs.

use std::sync::Arc;

use crate::config::Config;
use crate::step::Step;

pub mod cdn;
pub mod cluster;
pub mod database;
pub mod iam;
pub mod kms;
pub mod network;
pub mod registry;
pub mod services;
pub mod sessions;
pub mod storage;

/// Every step of the stack described by `cfg`, in declaration order (the engine orders them by
/// their dependencies).
pub fn all(_cfg: &Config) -> Vec<Arc<dyn Step>> {
    vec![
        Arc::new(network::Network),
        Arc::new(kms::Kms),
        Arc::new(cluster::Cluster),
        Arc::new(database::Database),
        Arc::new(sessions::Sessions),
        Arc::new(registry::Registry),
        Arc::new(iam::Iam),
        Arc::new(services::Services),
        Arc::new(storage::Storage),
        Arc::new(cdn::Cdn),
    ]
}
