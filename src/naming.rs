//! Resource naming and the env-suffix rule.
//!
//! Every name is `{resource-type}-{suffix}` or `{resource-type}-{purpose}-{suffix}`. The longest
//! suffix allowed is derived from the name templates below and each service's name limit, so a
//! suffix that passes validation fits every name the tool generates.

use crate::error::UsageError;

/// Tag key that marks a resource as belonging to one stack (value: the env suffix).
pub const STACK_TAG: &str = "fintech-infra:stack";

/// Placeholder in [`NAME_TEMPLATES`] for the env suffix.
const SUFFIX: &str = "{suffix}";

/// Every generated name whose length is limited, with the limit of the service that holds it.
/// The 12-digit account ID is spelled out where a name contains it (S3 buckets).
pub const NAME_TEMPLATES: &[(&str, usize)] = &[
    // ELBv2: load balancer and target group names are limited to 32 characters.
    ("alb-{suffix}", 32),
    ("tg-blue-{suffix}", 32),
    ("tg-green-{suffix}", 32),
    // Target group of a path-routed service: 4 hex digits of a hash of its name.
    ("tg-abcd-{suffix}", 32),
    // RDS identifiers: 63 characters.
    ("aurora-{suffix}", 63),
    ("aurora-writer-{suffix}", 63),
    ("aurora-reader-{suffix}", 63),
    ("dbsubnet-{suffix}", 255),
    // IAM role names: 64 characters.
    ("role-task-execution-{suffix}", 64),
    // A task role per service; service names are at most 30 characters (config.rs).
    ("role-task-abcdefghijklmnopqrstuvwxyz1234-{suffix}", 64),
    ("role-validator-{suffix}", 64),
    // S3 bucket names: 63 characters, globally unique (account ID included).
    ("fintech-assets-123456789012-{suffix}", 63),
    ("fintech-txlog-123456789012-{suffix}", 63),
    ("fintech-alblogs-123456789012-{suffix}", 63),
    ("fintech-assets-dr-123456789012-{suffix}", 63),
    ("role-s3-replication-{suffix}", 64),
    ("role-backup-{suffix}", 64),
    // Backup vault names: 50 characters.
    ("vault-dr-{suffix}", 50),
    // KMS alias, EC2 Name tags, dashboards: 256 or more.
    ("alias/fintech-{suffix}", 256),
    ("fintech-{suffix}", 255),
];

/// The longest env suffix for which every template fits its limit.
pub fn max_suffix_len() -> usize {
    NAME_TEMPLATES
        .iter()
        .map(|(t, limit)| limit - (t.len() - SUFFIX.len()))
        .min()
        .expect("templates are not empty")
}

/// Checks the env suffix: lowercase letters, digits and single hyphens, starting with a letter,
/// not ending with a hyphen (RDS identifiers refuse a trailing or doubled hyphen), and at most
/// [`max_suffix_len`] characters.
pub fn validate_suffix(suffix: &str) -> Result<(), UsageError> {
    let max = max_suffix_len();
    let rule = format!(
        "the env suffix must be 1 to {max} characters of lowercase letters, digits and single \
         hyphens, start with a letter and not end with a hyphen (e.g. `prod`, `dev-2`)"
    );
    let problem = if suffix.is_empty() {
        Some("it is empty".to_string())
    } else if suffix.len() > max {
        Some(format!(
            "it is {} characters long; the longest name built from it (`tg-green-<suffix>`, \
             an ALB target group) must fit in 32",
            suffix.len()
        ))
    } else if !suffix.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it does not start with a lowercase letter".to_string())
    } else if let Some(c) = suffix
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("it contains `{c}`"))
    } else if suffix.ends_with('-') {
        Some("it ends with a hyphen".to_string())
    } else if suffix.contains("--") {
        Some("it contains two hyphens in a row".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(UsageError::new(format!(
            "invalid env suffix `{suffix}`: {p}; {rule}"
        ))),
    }
}

/// Builds the names of one stack's resources.
#[derive(Debug, Clone)]
pub struct Names {
    suffix: String,
}

impl Names {
    pub fn new(suffix: &str) -> Names {
        Names {
            suffix: suffix.to_string(),
        }
    }

    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// `{resource_type}-{suffix}`
    pub fn of(&self, resource_type: &str) -> String {
        format!("{resource_type}-{}", self.suffix)
    }

    /// `{resource_type}-{purpose}-{suffix}`
    pub fn with_purpose(&self, resource_type: &str, purpose: &str) -> String {
        format!("{resource_type}-{purpose}-{}", self.suffix)
    }

    /// The target group of a path-routed service: `tg-<4 hex digits>-<suffix>` (service names
    /// are too long for ELB's 32-character limit; the hash is FNV-1a, stable across builds).
    pub fn service_target_group(&self, service: &str) -> String {
        let h = fnv1a32(service.bytes());
        format!("tg-{:04x}-{}", (h ^ (h >> 16)) & 0xffff, self.suffix)
    }

    /// The KMS alias of the stack key.
    pub fn kms_alias(&self) -> String {
        format!("alias/fintech-{}", self.suffix)
    }
}

/// 32-bit FNV-1a: a short hash that is stable across builds and platforms (unlike std's
/// `DefaultHasher`), for names and tokens derived from configuration.
pub fn fnv1a32(bytes: impl IntoIterator<Item = u8>) -> u32 {
    bytes.into_iter().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A service's ECS service: `svc-<service>-<suffix>` (the ALB step names the green twin of
/// the default service before the services step makes it).
pub fn ecs_service_name(service: &str, suffix: &str) -> String {
    format!("svc-{service}-{suffix}")
}

/// The task definition family of the stack's service `service`: `task-<service>-<suffix>`.
pub fn task_family(service: &str, suffix: &str) -> String {
    format!("task-{service}-{suffix}")
}

/// The transaction queue: `queue-transactions-<suffix>` (its consumers name it before it
/// exists: alarms, the validator's mapping in `plan`).
pub fn queue_name(suffix: &str) -> String {
    format!("queue-transactions-{suffix}")
}

/// The transaction queue's dead-letter queue: `queue-transactions-dlq-<suffix>`.
pub fn dlq_name(suffix: &str) -> String {
    format!("queue-transactions-dlq-{suffix}")
}

/// The session table's index for lookups by user (the task roles are granted it by name).
pub const SESSIONS_USER_INDEX: &str = "by-user";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_suffix_comes_from_the_target_group_limit() {
        assert_eq!(max_suffix_len(), 32 - "tg-green-".len());
    }

    #[test]
    fn every_template_fits_with_the_longest_suffix() {
        let suffix = "a".repeat(max_suffix_len());
        for (t, limit) in NAME_TEMPLATES {
            let name = t.replace(SUFFIX, &suffix);
            assert!(name.len() <= *limit, "{name} exceeds {limit}");
        }
        let names = Names::new(&suffix);
        assert!(names.with_purpose("tg", "green").len() <= 32);
        assert!(names.of("alb").len() <= 32);
    }

    #[test]
    fn accepts_good_suffixes() {
        for s in [
            "prod",
            "dev",
            "a",
            "dev-2",
            "pr-1234",
            &"a".repeat(max_suffix_len()),
        ] {
            validate_suffix(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    #[test]
    fn rejects_bad_suffixes_with_the_rule() {
        for (s, why) in [
            ("", "empty"),
            ("Prod", "start with a lowercase letter"),
            ("1prod", "start with a lowercase letter"),
            ("pro_d", "contains `_`"),
            ("prod-", "ends with a hyphen"),
            ("pr--od", "two hyphens"),
            ("prod.x", "contains `.`"),
        ] {
            let err = validate_suffix(s).unwrap_err().to_string();
            assert!(err.contains(why), "{s}: {err}");
            assert!(err.contains("lowercase letters, digits"), "{err}");
        }
        let long = "a".repeat(max_suffix_len() + 1);
        let err = validate_suffix(&long).unwrap_err().to_string();
        assert!(err.contains("characters long"), "{err}");
    }
}
