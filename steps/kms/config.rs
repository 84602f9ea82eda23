//! `[kms]`: the stack key, owned by the kms step.

use serde::Deserialize;


#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KmsConfig {
    /// Days before a scheduled key deletion takes effect: 7 (the minimum, default) to 30.
    pub deletion_window_days: DeletionWindow,
}

impl Default for KmsConfig {
    fn default() -> Self {
        KmsConfig {
            deletion_window_days: DeletionWindow(7),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "i32")]
pub struct DeletionWindow(pub i32);

impl TryFrom<i32> for DeletionWindow {
    type Error = String;
    fn try_from(n: i32) -> Result<Self, String> {
        if (7..=30).contains(&n) {
            Ok(DeletionWindow(n))
        } else {
            Err(format!(
                "invalid deletion_window_days {n}: KMS allows 7 to 30 days"
            ))
        }
    }
}
