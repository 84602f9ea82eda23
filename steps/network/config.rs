//! `[network]`: the VPC, its subnets, NAT and endpoints, owned by the network step.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;


#[derive(Debug, Clone, Deserialize, PartialEq)]
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
    /// AWS services reached through interface endpoints in the private subnets instead of
    /// the NAT gateway (S3 and DynamoDB always have gateway endpoints).
    pub interface_endpoints: Vec<InterfaceService>,
    /// VPC flow logs (all traffic) of the stack's VPC and the DR VPC to KMS-encrypted
    /// CloudWatch Logs groups (Security Hub EC2.6). On by default; a switch because flow logs
    /// are billed per GB ingested and stored in CloudWatch Logs, which a busy VPC makes
    /// noticeable in throwaway environments.
    pub flow_logs: bool,
}

/// Services that can get interface VPC endpoints.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum InterfaceService {
    /// ECR: `ecr.api` (registry API) and `ecr.dkr` (image pulls; layers come through the
    /// S3 gateway endpoint).
    Ecr,
    /// CloudWatch Logs (the awslogs driver, Lambda logs).
    Logs,
    /// Secrets Manager (the database secret injected into tasks).
    Secretsmanager,
}

impl InterfaceService {
    /// The endpoint service names (`com.amazonaws.<region>.<name>`) it needs.
    pub fn endpoint_names(self) -> &'static [&'static str] {
        match self {
            InterfaceService::Ecr => &["ecr.api", "ecr.dkr"],
            InterfaceService::Logs => &["logs"],
            InterfaceService::Secretsmanager => &["secretsmanager"],
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            cidr: VpcCidr("10.0.0.0/16".parse().expect("valid default")),
            az_count: AzCount(3),
            availability_zones: None,
            nat_gateways: NatMode::Single,
            interface_endpoints: Vec::new(),
            flow_logs: true,
        }
    }
}

/// The VPC block. Subnets are carved as 16 equal slices (prefix + 4), so /24 is the smallest
/// block whose slices still meet AWS's /28 minimum subnet size.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "String")]
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
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(try_from = "u8")]
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

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    Single,
    PerAz,
}
