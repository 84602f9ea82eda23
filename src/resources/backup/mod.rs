//! AWS Backup resource types: vaults, plans and their selections.

pub mod plan;
pub mod selection;
pub mod vault;
