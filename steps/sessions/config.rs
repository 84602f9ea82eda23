//! `[sessions]`: the DynamoDB session table, owned by the sessions step.

use serde::Deserialize;


/// DynamoDB session table settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Attribute holding each item's expiry time (epoch seconds) for DynamoDB TTL.
    pub ttl_attribute: AttributeName,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            ttl_attribute: AttributeName("expires_at".into()),
        }
    }
}

/// A DynamoDB attribute name we define: 1 to 255 letters, digits, `_`, `-` or `.`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(try_from = "String")]
pub struct AttributeName(pub String);

impl TryFrom<String> for AttributeName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty()
            || s.len() > 255
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(format!(
                "invalid attribute name `{s}`: 1 to 255 letters, digits, `_`, `-` or `.`"
            ));
        }
        Ok(AttributeName(s))
    }
}
