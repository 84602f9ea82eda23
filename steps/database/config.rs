//! `[database]`: the Aurora PostgreSQL cluster, owned by the database step, and its rules.

use serde::Deserialize;

use crate::config::validated::{FieldError, Validate};

/// Subnet tier a resource is placed in.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SubnetTier {
    Private,
    Isolated,
}

/// Aurora capacity model.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DbMode {
    /// One writer and one reader instance of `instance_class`.
    Provisioned,
    /// Serverless v2: `db.serverless` writer and reader scaling between min and max ACUs.
    Serverless,
}

/// Aurora PostgreSQL cluster settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub mode: DbMode,
    pub engine_version: String,
    pub instance_class: String,
    pub min_capacity: f64,
    pub max_capacity: f64,
    pub backup_retention_days: i32,
    pub preferred_backup_window: String,
    pub subnets: SubnetTier,
    pub database_name: String,
    pub master_username: String,
    /// Days between automatic rotations of the RDS-managed master secret (1 to 365).
    pub secret_rotation_days: i64,
}

validated!(DatabaseConfig);

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            mode: DbMode::Provisioned,
            engine_version: "15.8".into(),
            instance_class: "db.r6g.large".into(),
            min_capacity: 0.5,
            max_capacity: 4.0,
            backup_retention_days: 7,
            preferred_backup_window: "03:00-04:00".into(),
            subnets: SubnetTier::Isolated,
            database_name: "fintech".into(),
            master_username: "fintech_admin".into(),
            // RDS's own default schedule for the secrets it manages.
            secret_rotation_days: 7,
        }
    }
}

/// Checks `HH:MM-HH:MM` in UTC, at least 30 minutes long (RDS's rule).
pub(crate) fn parse_window(w: &str) -> Option<u32> {
    let (a, b) = w.split_once('-')?;
    let mins = |t: &str| -> Option<u32> {
        let (h, m) = t.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (start, end) = (mins(a)?, mins(b)?);
    Some((end + 24 * 60 - start) % (24 * 60))
}

pub(crate) fn is_identifier(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Validate for DatabaseConfig {
    fn validate(&mut self) -> Result<(), FieldError> {
        let v: Vec<&str> = self.engine_version.split('.').collect();
        if v.len() != 2
            || v.iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return field_error!(
                "engine_version",
                "invalid engine_version `{}`: expected an Aurora PostgreSQL version such as 15.8",
                self.engine_version
            );
        }
        if !self.instance_class.starts_with("db.") || self.instance_class == "db.serverless" {
            return field_error!(
                "instance_class",
                "invalid instance_class `{}`: expected a provisioned class such as db.r6g.large \
                 (serverless mode uses db.serverless by itself)",
                self.instance_class
            );
        }
        let half_steps = |x: f64| (x * 2.0).fract() == 0.0;
        if !(0.5..=256.0).contains(&self.min_capacity) || !half_steps(self.min_capacity) {
            return field_error!(
                "min_capacity",
                "invalid min_capacity {}: Aurora Serverless v2 takes 0.5 to 256 ACUs in steps \
                 of 0.5",
                self.min_capacity
            );
        }
        if !(0.5..=256.0).contains(&self.max_capacity) || !half_steps(self.max_capacity) {
            return field_error!(
                "max_capacity",
                "invalid max_capacity {}: Aurora Serverless v2 takes 0.5 to 256 ACUs in steps \
                 of 0.5",
                self.max_capacity
            );
        }
        if self.min_capacity > self.max_capacity {
            return field_error!(
                "min_capacity",
                "min_capacity {} is above max_capacity {}",
                self.min_capacity,
                self.max_capacity
            );
        }
        if !(1..=35).contains(&self.backup_retention_days) {
            return field_error!(
                "backup_retention_days",
                "invalid backup_retention_days {}: RDS keeps automated backups 1 to 35 days",
                self.backup_retention_days
            );
        }
        match parse_window(&self.preferred_backup_window) {
            Some(len) if len >= 30 => {}
            Some(_) => {
                return field_error!(
                    "preferred_backup_window",
                    "invalid preferred_backup_window `{}`: the window must be at least 30 \
                     minutes",
                    self.preferred_backup_window
                )
            }
            None => {
                return field_error!(
                    "preferred_backup_window",
                    "invalid preferred_backup_window `{}`: expected HH:MM-HH:MM in UTC, e.g. \
                     03:00-04:00",
                    self.preferred_backup_window
                )
            }
        }
        if !is_identifier(&self.database_name, 63) {
            return field_error!(
                "database_name",
                "invalid database_name `{}`: 1 to 63 letters, digits and underscores, starting \
                 with a letter",
                self.database_name
            );
        }
        if !is_identifier(&self.master_username, 63)
            || ["postgres", "rdsadmin", "admin"].contains(&self.master_username.as_str())
        {
            return field_error!(
                "master_username",
                "invalid master_username `{}`: 1 to 63 letters, digits and underscores, starting \
                 with a letter, and not a reserved name (postgres, rdsadmin, admin)",
                self.master_username
            );
        }
        // Managed rotation takes schedules in days up to a year (Secrets Manager rotation
        // schedules: `rate(N days)` with N at most 365).
        if !(1..=365).contains(&self.secret_rotation_days) {
            return field_error!(
                "secret_rotation_days",
                "invalid secret_rotation_days {}: the master secret rotates every 1 to 365 days",
                self.secret_rotation_days
            );
        }
        Ok(())
    }
}
