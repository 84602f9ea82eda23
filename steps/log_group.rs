//! Not a step: the log group kind under its old name, now [`crate::resources::logs::log_group`],
//! for the code that still reaches it here (`retag`, `verify`).

pub use crate::resources::logs::log_group::KIND as LOG_GROUP;
