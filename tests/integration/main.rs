//! The integration suite: one test binary running the real `fintech-infra` binary against a
//! local AWS emulator (the project's faithful moto, or any endpoint given in
//! `FINTECH_INFRA_TEST_ENDPOINT`, e.g. LocalStack).

mod async_tier;
mod cli;
mod compute;
mod database;
mod deploy;
mod disaster_recovery;
mod edge;
mod foundation;
mod iam;
mod observability;
mod posture;
mod posture_compute;
mod posture_data;
mod posture_edge;
mod registry;
mod resilience;
mod retag;
mod security_groups;
mod sessions;
mod static_tier;
mod teardown;
mod util;
mod verify;
mod waiting;
