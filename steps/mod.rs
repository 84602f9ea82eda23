//! The steps of the stack, one module each, and the list the engine runs.

use std::sync::Arc;

use crate::config::Config;
use crate::step::Step;

pub mod alarms;
pub mod alb;
pub mod cdn;
pub mod certificate;
pub mod cluster;
pub mod database;
pub mod dr_backup;
pub mod dr_network;
pub mod dr_storage;
pub mod flow_logs;
pub mod iam;
pub mod kms;
pub mod log_group;
pub mod network;
pub mod queue;
pub mod registry;
pub mod services;
pub mod sessions;
pub mod storage;
pub mod validator;
pub mod waf;

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
        Arc::new(queue::Queue),
        Arc::new(iam::Iam),
        Arc::new(certificate::Certificate),
        Arc::new(alb::Alb),
        // Always in the graph: a no-op without `[waf] enabled` and without records, so that
        // `down` removes a web ACL even after the config stopped enabling it.
        Arc::new(waf::Waf),
        Arc::new(services::Services),
        Arc::new(validator::Validator),
        Arc::new(storage::Storage),
        Arc::new(cdn::Cdn),
        Arc::new(alarms::Alarms),
        // Always in the graph, like waf: without `dr.region` they only remove what an
        // earlier run built.
        Arc::new(dr_network::DrNetwork),
        Arc::new(dr_storage::DrStorage),
        Arc::new(dr_backup::DrBackup),
        // Always in the graph: with `network.flow_logs = false` (or without `dr.region`, for
        // the DR VPC's) it only removes what an earlier run built.
        Arc::new(flow_logs::FlowLogs),
    ]
}
