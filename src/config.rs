//! The TOML configuration file (`--config`): every field optional, every default documented
//! in README.md. Unknown fields and bad values are errors that name the field and the line:
//! values are checked while deserializing, so the TOML parser reports where they are.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::UsageError;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub tags: TagsConfig,
    pub network: NetworkConfig,
    pub kms: KmsConfig,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, UsageError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError::new(format!("cannot read config file {}: {e}", path.display()))
        })?;
        Self::parse(&text)
            .map_err(|e| UsageError::new(format!("config file {}: {}", path.display(), e.0)))
    }

    /// Parses config text; errors name the field and the line.
    pub fn parse(text: &str) -> Result<Config, UsageError> {
        let cfg: Config = toml::from_str(text).map_err(|e| UsageError::new(e.to_string()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks that span several fields (single-field rules are enforced while parsing).
    fn check(&self) -> Result<(), UsageError> {
        if let Some(azs) = &self.network.availability_zones {
            if azs.len() != usize::from(self.network.az_count.0) {
                return Err(UsageError::new(format!(
                    "network.availability_zones lists {} zones but network.az_count is {}; \
                     list exactly az_count zones or leave availability_zones out",
                    azs.len(),
                    self.network.az_count.0
                )));
            }
        }
        Ok(())
    }
}

/// Tag values put on every taggable resource.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TagsConfig {
    /// `Environment` tag; defaults to the env suffix.
    pub environment: Option<TagValue>,
    /// `Team` tag.
    pub team: TagValue,
    /// `CostCenter` tag.
    pub cost_center: TagValue,
}

impl Default for TagsConfig {
    fn default() -> Self {
        TagsConfig {
            environment: None,
            team: TagValue("platform".into()),
            cost_center: TagValue("fintech".into()),
        }
    }
}

/// A tag value: 1 to 256 characters (AWS's limit), no control characters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "String", into = "String")]
pub struct TagValue(pub String);

impl TryFrom<String> for TagValue {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.is_empty() || s.chars().count() > 256 || s.chars().any(char::is_control) {
            return Err(format!(
                "invalid tag value `{s}`: must be 1 to 256 characters without control characters"
            ));
        }
        Ok(TagValue(s))
    }
}

impl From<TagValue> for String {
    fn from(t: TagValue) -> String {
        t.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// VPC CIDR block, /16 to /24.
    pub cidr: VpcCidr,
    /// Number of availability zones: 2 or 3.
    pub az_count: AzCount,
    /// Explicit zones (e.g. `["us-east-1a", "us-east-1b", "us-east-1c"]`); default: the
    /// region's first `az_count` available zones.
    pub availability_zones: Option<Vec<String>>,
    /// `single` (one NAT gateway, cheaper) or `per-az` (one per zone, survives a zone loss).
    pub nat_gateways: NatMode,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            cidr: VpcCidr("10.0.0.0/16".parse().expect("valid default")),
            az_count: AzCount(3),
            availability_zones: None,
            nat_gateways: NatMode::Single,
        }
    }
}

/// The VPC block. Subnets are carved as 16 equal slices (prefix + 4), so /24 is the smallest
/// block whose slices still meet AWS's /28 minimum subnet size.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "String", into = "String")]
pub struct VpcCidr(pub Ipv4Net);

impl TryFrom<String> for VpcCidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let net: Ipv4Net = s.parse().map_err(|_| {
            format!("invalid CIDR `{s}`: expected an IPv4 block such as 10.0.0.0/16")
        })?;
        if !(16..=24).contains(&net.prefix_len()) {
            return Err(format!(
                "invalid CIDR `{s}`: the prefix must be /16 to /24 (AWS allows /16 to /28, and \
                 the block is split into 16 subnets of at least /28)"
            ));
        }
        if net.network() != net.addr() {
            return Err(format!(
                "invalid CIDR `{s}`: host bits are set; did you mean {}?",
                net.trunc()
            ));
        }
        let private = [
            "10.0.0.0/8".parse::<Ipv4Net>().unwrap(),
            "172.16.0.0/12".parse().unwrap(),
            "192.168.0.0/16".parse().unwrap(),
        ];
        if !private.iter().any(|p| p.contains(&net)) {
            return Err(format!(
                "invalid CIDR `{s}`: use a private (RFC 1918) range: 10.0.0.0/8, 172.16.0.0/12 \
                 or 192.168.0.0/16"
            ));
        }
        Ok(VpcCidr(net))
    }
}

impl From<VpcCidr> for String {
    fn from(c: VpcCidr) -> String {
        c.0.to_string()
    }
}

impl VpcCidr {
    /// The subnet in `slot` (0..16) of the block.
    pub fn slice(&self, slot: u8) -> Ipv4Net {
        let new_prefix = self.0.prefix_len() + 4;
        let size = 1u32 << (32 - u32::from(new_prefix));
        let base = u32::from(self.0.network());
        Ipv4Net::new(Ipv4Addr::from(base + u32::from(slot) * size), new_prefix)
            .expect("prefix is at most 28")
    }
}

/// How many availability zones the network spans.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "u8", into = "u8")]
pub struct AzCount(pub u8);

impl TryFrom<u8> for AzCount {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        if n == 2 || n == 3 {
            Ok(AzCount(n))
        } else {
            Err(format!("invalid az_count {n}: allowed values are 2 and 3"))
        }
    }
}

impl From<AzCount> for u8 {
    fn from(a: AzCount) -> u8 {
        a.0
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    Single,
    PerAz,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "i32", into = "i32")]
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

impl From<DeletionWindow> for i32 {
    fn from(d: DeletionWindow) -> i32 {
        d.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.network.az_count.0, 3);
        assert_eq!(c.network.nat_gateways, NatMode::Single);
        assert_eq!(c.kms.deletion_window_days.0, 7);
    }

    #[test]
    fn parses_fields() {
        let c = Config::parse(
            r#"
[tags]
team = "payments"
[network]
cidr = "10.20.0.0/20"
az_count = 2
nat_gateways = "per-az"
"#,
        )
        .unwrap();
        assert_eq!(c.tags.team.0, "payments");
        assert_eq!(c.network.az_count.0, 2);
        assert_eq!(c.network.nat_gateways, NatMode::PerAz);
        assert_eq!(c.network.cidr.slice(0).to_string(), "10.20.0.0/24");
        assert_eq!(c.network.cidr.slice(9).to_string(), "10.20.9.0/24");
    }

    #[test]
    fn default_cidr_slices_are_slash_20() {
        let c = Config::default();
        assert_eq!(c.network.cidr.slice(0).to_string(), "10.0.0.0/20");
        assert_eq!(c.network.cidr.slice(4).to_string(), "10.0.64.0/20");
        assert_eq!(c.network.cidr.slice(15).to_string(), "10.0.240.0/20");
    }

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_name_the_field_and_line() {
        let e = err("[network]\ncidr = \"10.0.0.0/16\"\nazs = 3\n");
        assert!(e.contains("unknown field `azs`"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = err("[netwrk]\n");
        assert!(e.contains("unknown field `netwrk`"), "{e}");
    }

    #[test]
    fn bad_values_name_the_rule_and_line() {
        let e = err("[network]\naz_count = 4\n");
        assert!(
            e.contains("allowed values are 2 and 3") && e.contains("line 2"),
            "{e}"
        );
        let e = err("[network]\ncidr = \"10.0.0.0/8\"\n");
        assert!(e.contains("/16 to /24"), "{e}");
        let e = err("[network]\ncidr = \"8.8.0.0/16\"\n");
        assert!(e.contains("RFC 1918"), "{e}");
        let e = err("[network]\ncidr = \"10.0.1.0/16\"\n");
        assert!(e.contains("host bits"), "{e}");
        let e = err("[network]\nnat_gateways = \"two\"\n");
        assert!(e.contains("single") && e.contains("per-az"), "{e}");
        let e = err("[kms]\ndeletion_window_days = 3\n");
        assert!(e.contains("7 to 30"), "{e}");
        let e = err("[tags]\nteam = \"\"\n");
        assert!(e.contains("1 to 256"), "{e}");
        let e = err("[network]\naz_count = 2\navailability_zones = [\"us-east-1a\"]\n");
        assert!(e.contains("lists 1 zones"), "{e}");
    }
}
