//! The read side of `verify`: every AWS read the path checks need, each made once per run and
//! cached (a role's policies serve several paths), read-only by construction (only Describe,
//! Get and List calls).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::aws::{Aws, AwsResultExt};
use crate::reach;

/// A role's trust policy and every identity policy that applies to it (inline and attached).
#[derive(Debug, Clone)]
pub struct RolePolicies {
    pub role_arn: String,
    pub trust: Value,
    /// (policy name, document).
    pub policies: Vec<(String, Value)>,
}

/// A bucket's policy and default encryption.
#[derive(Debug, Clone, Default)]
pub struct BucketFacts {
    pub policy: Option<Value>,
    /// `AES256`, `aws:kms`, `aws:kms:dsse`, or empty when the bucket has none set.
    pub sse_algorithm: String,
    /// The default KMS key (ARN, ID or alias) of an SSE-KMS bucket.
    pub kms_key: Option<String>,
}

/// A queue's resource policy and key.
#[derive(Debug, Clone, Default)]
pub struct QueueFacts {
    pub arn: String,
    pub policy: Option<Value>,
    pub kms_key: Option<String>,
    pub redrive_target: Option<String>,
}

/// The live stack as far as `verify` reads it. `aws` is the stack's region; `in_region` gives
/// the connection to another one (the DR region).
pub struct Live {
    pub aws: Arc<Aws>,
    regions: crate::aws::RegionCache,
    pub account: String,
    roles: Cache<RolePolicies>,
    keys: Cache<(String, Value)>,
    groups: Mutex<BTreeMap<String, reach::SecurityGroup>>,
    functions: Cache<FunctionConfig>,
    distributions: Cache<Distribution>,
    queues: Cache<QueueFacts>,
    buckets: Cache<BucketFacts>,
    load_balancers: Cache<LoadBalancer>,
}

pub type FunctionConfig =
    aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
pub type Distribution = aws_sdk_cloudfront::types::Distribution;
pub type LoadBalancer = aws_sdk_elasticloadbalancingv2::types::LoadBalancer;

/// One cache of reads, by key. Each key has its own cell, so that checks running at once
/// that need the same thing (a role serves several paths) share one read instead of racing.
type Cache<T> = Mutex<BTreeMap<String, Arc<OnceCell<T>>>>;

/// A read made once per run: the cached value, else `read`'s, cached; concurrent callers of
/// one key wait for the first one's read. A failed read is not cached.
async fn cached<T: Clone>(
    cache: &Cache<T>,
    key: &str,
    read: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let cell = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.to_string())
        .or_default()
        .clone();
    cell.get_or_try_init(|| read).await.cloned()
}

/// Decodes an IAM policy document: IAM returns them URL-encoded (RFC 3986).
pub fn decode_policy(doc: &str) -> Result<Value> {
    let text = percent_encoding::percent_decode_str(doc)
        .decode_utf8()
        .context("policy document is not UTF-8 after URL decoding")?;
    serde_json::from_str(&text).context("policy document is not JSON")
}

/// The name of a role from its ARN (`arn:aws:iam::123:role/path/name` -> `name`).
pub fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl Live {
    pub fn new(aws: Arc<Aws>, account: String) -> Live {
        Live {
            aws,
            regions: Default::default(),
            account,
            roles: Mutex::new(BTreeMap::new()),
            keys: Mutex::new(BTreeMap::new()),
            groups: Mutex::new(BTreeMap::new()),
            functions: Mutex::new(BTreeMap::new()),
            distributions: Mutex::new(BTreeMap::new()),
            queues: Mutex::new(BTreeMap::new()),
            load_balancers: Mutex::new(BTreeMap::new()),
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// A Lambda function's configuration.
    pub async fn function(&self, name: &str) -> Result<FunctionConfig> {
        cached(&self.functions, name, async {
            Ok(self
                .aws
                .lambda()
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .aws("lambda:GetFunctionConfiguration", name)?)
        })
        .await
    }

    /// A CloudFront distribution with its configuration.
    pub async fn distribution(&self, id: &str) -> Result<Distribution> {
        cached(&self.distributions, id, async {
            self.aws
                .cloudfront()
                .get_distribution()
                .id(id)
                .send()
                .await
                .aws("cloudfront:GetDistribution", id)?
                .distribution
                .context("GetDistribution returned nothing")
        })
        .await
    }

    /// A load balancer.
    pub async fn load_balancer(&self, arn: &str) -> Result<LoadBalancer> {
        cached(&self.load_balancers, arn, async {
            self.aws
                .elb()
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await
                .aws("elasticloadbalancing:DescribeLoadBalancers", arn)?
                .load_balancers()
                .first()
                .cloned()
                .context("load balancer not found")
        })
        .await
    }

    pub fn region(&self) -> &str {
        self.aws.region()
    }

    /// The connection to `region` (the stack's own, or one sharing its credentials).
    pub fn in_region(&self, region: &str) -> Arc<Aws> {
        self.aws.in_region(&self.regions, region)
    }

    /// The trust policy and identity policies of a role.
    pub async fn role(&self, role_arn: &str) -> Result<RolePolicies> {
        cached(&self.roles, role_arn, self.read_role(role_arn)).await
    }

    async fn read_role(&self, role_arn: &str) -> Result<RolePolicies> {
        let iam = self.aws.iam();
        let name = role_name(role_arn);
        let role = iam
            .get_role()
            .role_name(name)
            .send()
            .await
            .aws("iam:GetRole", name)?;
        let trust = role
            .role()
            .and_then(|r| r.assume_role_policy_document())
            .map(decode_policy)
            .transpose()?
            .unwrap_or(Value::Null);
        let mut policies = Vec::new();
        let inline = iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .aws("iam:ListRolePolicies", name)?;
        for p in inline.policy_names() {
            let doc = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(p)
                .send()
                .await
                .aws("iam:GetRolePolicy", p)?;
            policies.push((p.clone(), decode_policy(doc.policy_document())?));
        }
        let attached = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .aws("iam:ListAttachedRolePolicies", name)?;
        for a in attached.attached_policies() {
            let arn = a.policy_arn().unwrap_or_default();
            let pol = iam
                .get_policy()
                .policy_arn(arn)
                .send()
                .await
                .aws("iam:GetPolicy", arn)?;
            let version = pol
                .policy()
                .and_then(|p| p.default_version_id())
                .unwrap_or("v1")
                .to_string();
            let v = iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(&version)
                .send()
                .await
                .aws("iam:GetPolicyVersion", arn)?;
            if let Some(doc) = v.policy_version().and_then(|v| v.document()) {
                let name = a.policy_name().unwrap_or(arn).to_string();
                policies.push((name, decode_policy(doc)?));
            }
        }
        Ok(RolePolicies {
            role_arn: role_arn.to_string(),
            trust,
            policies,
        })
    }

    /// A key's ARN and policy, from any form of its ID (ARN, ID, alias) in `region`.
    pub async fn key(&self, key: &str, region: &str) -> Result<(String, Value)> {
        let cache_key = format!("{region}|{key}");
        cached(&self.keys, &cache_key, self.read_key(key, region)).await
    }

    async fn read_key(&self, key: &str, region: &str) -> Result<(String, Value)> {
        let aws = self.in_region(region);
        let kms = aws.kms();
        let meta = kms
            .describe_key()
            .key_id(key)
            .send()
            .await
            .aws("kms:DescribeKey", key)?;
        let m = meta
            .key_metadata()
            .context("DescribeKey returned no metadata")?;
        let arn = m.arn().unwrap_or_default().to_string();
        let policy = kms
            .get_key_policy()
            .key_id(m.key_id())
            .policy_name("default")
            .send()
            .await
            .aws("kms:GetKeyPolicy", &arn)?;
        let doc: Value = serde_json::from_str(policy.policy().unwrap_or("{}"))
            .with_context(|| format!("key policy of {arn} is not JSON"))?;
        Ok((arn, doc))
    }

    pub async fn bucket(&self, bucket: &str, region: &str) -> Result<BucketFacts> {
        let cache_key = format!("{region}|{bucket}");
        cached(&self.buckets, &cache_key, self.read_bucket(bucket, region)).await
    }

    async fn read_bucket(&self, bucket: &str, region: &str) -> Result<BucketFacts> {
        let aws = self.in_region(region);
        let s3 = aws.s3();
        let (policy, enc) = tokio::try_join!(self.bucket_policy(s3, bucket), async {
            Ok(s3
                .get_bucket_encryption()
                .bucket(bucket)
                .send()
                .await
                .aws("s3:GetBucketEncryption", bucket)
                .map(Some)
                .or_else(|e| match e.code.as_deref() {
                    Some("ServerSideEncryptionConfigurationNotFoundError") => Ok(None),
                    _ => Err(e),
                })?)
        })?;
        let default = enc
            .as_ref()
            .and_then(|e| e.server_side_encryption_configuration())
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        Ok(BucketFacts {
            policy,
            sse_algorithm: default
                .map(|d| d.sse_algorithm().as_str().to_string())
                .unwrap_or_default(),
            kms_key: default.and_then(|d| d.kms_master_key_id().map(str::to_string)),
        })
    }

    async fn bucket_policy(&self, s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Option<Value>> {
        let policy = s3
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .aws("s3:GetBucketPolicy", bucket)
            .map(Some)
            .or_else(|e| match e.code.as_deref() {
                Some("NoSuchBucketPolicy") => Ok(None),
                _ => Err(e),
            })?
            .and_then(|p| p.policy().map(str::to_string))
            .map(|p| serde_json::from_str::<Value>(&p))
            .transpose()
            .with_context(|| format!("bucket policy of {bucket} is not JSON"))?;
        Ok(policy)
    }

    pub async fn queue(&self, url: &str) -> Result<QueueFacts> {
        cached(&self.queues, url, self.read_queue(url)).await
    }

    async fn read_queue(&self, url: &str) -> Result<QueueFacts> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .aws
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::All)
            .send()
            .await
            .aws("sqs:GetQueueAttributes", url)?;
        let attrs = out.attributes().cloned().unwrap_or_default();
        let policy = attrs
            .get(&A::Policy)
            .filter(|p| !p.is_empty())
            .map(|p| serde_json::from_str::<Value>(p))
            .transpose()
            .with_context(|| format!("queue policy of {url} is not JSON"))?;
        let redrive_target = attrs
            .get(&A::RedrivePolicy)
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .and_then(|v| v["deadLetterTargetArn"].as_str().map(str::to_string));
        Ok(QueueFacts {
            arn: attrs.get(&A::QueueArn).cloned().unwrap_or_default(),
            policy,
            kms_key: attrs
                .get(&A::KmsMasterKeyId)
                .filter(|k| !k.is_empty())
                .cloned(),
            redrive_target,
        })
    }

    /// Security groups with their rules, as the reachability checks take them.
    pub async fn groups(&self, ids: &[String]) -> Result<Vec<reach::SecurityGroup>> {
        let missing: Vec<String> = {
            let g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .filter(|i| !g.contains_key(*i))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let ec2 = self.aws.ec2();
            let mut rules = Vec::new();
            let mut pages = ec2
                .describe_security_group_rules()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("group-id")
                        .set_values(Some(missing.clone()))
                        .build(),
                )
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.aws("ec2:DescribeSecurityGroupRules", missing.join(","))?;
                rules.extend(page.security_group_rules().iter().cloned());
            }
            let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            for id in &missing {
                let mut sg = reach::SecurityGroup {
                    id: id.clone(),
                    ingress: Vec::new(),
                    egress: Vec::new(),
                };
                for r in rules.iter().filter(|r| r.group_id() == Some(id.as_str())) {
                    let Some(rule) = to_rule(r) else { continue };
                    if r.is_egress() == Some(true) {
                        sg.egress.push(rule);
                    } else {
                        sg.ingress.push(rule);
                    }
                }
                g.insert(id.clone(), sg);
            }
        }
        let g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids.iter().filter_map(|i| g.get(i).cloned()).collect())
    }

    /// The VPC's route tables, as the route checks take them.
    pub async fn route_tables(&self, vpc_id: &str) -> Result<Vec<reach::RouteTable>> {
        let out = self
            .aws
            .ec2()
            .describe_route_tables()
            .filters(vpc_filter(vpc_id))
            .send()
            .await
            .aws("ec2:DescribeRouteTables", vpc_id)?;
        Ok(out.route_tables().iter().map(to_route_table).collect())
    }

    /// The AWS-managed prefix lists by name (`com.amazonaws.us-east-1.s3` -> `pl-...`).
    pub async fn prefix_lists(&self) -> Result<BTreeMap<String, String>> {
        let out = self
            .aws
            .ec2()
            .describe_managed_prefix_lists()
            .send()
            .await
            .aws("ec2:DescribeManagedPrefixLists", "AWS-managed prefix lists")?;
        Ok(out
            .prefix_lists()
            .iter()
            .filter_map(|p| {
                Some((
                    p.prefix_list_name()?.to_string(),
                    p.prefix_list_id()?.to_string(),
                ))
            })
            .collect())
    }

    /// The VPC's endpoints: (service name, type, security groups, private DNS).
    pub async fn endpoints(&self, vpc_id: &str) -> Result<Vec<aws_sdk_ec2::types::VpcEndpoint>> {
        let out = self
            .aws
            .ec2()
            .describe_vpc_endpoints()
            .filters(vpc_filter(vpc_id))
            .send()
            .await
            .aws("ec2:DescribeVpcEndpoints", vpc_id)?;
        Ok(out.vpc_endpoints().to_vec())
    }
}

fn vpc_filter(vpc_id: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("vpc-id")
        .values(vpc_id)
        .build()
}

fn to_rule(r: &aws_sdk_ec2::types::SecurityGroupRule) -> Option<reach::Rule> {
    let peer = if let Some(c) = r.cidr_ipv4() {
        reach::Peer::Cidr(c.parse().ok()?)
    } else if let Some(c) = r.cidr_ipv6() {
        reach::Peer::Cidr6(c.parse().ok()?)
    } else if let Some(g) = r.referenced_group_info().and_then(|g| g.group_id()) {
        reach::Peer::Group(g.to_string())
    } else if let Some(p) = r.prefix_list_id() {
        reach::Peer::PrefixList(p.to_string())
    } else {
        return None;
    };
    Some(reach::Rule {
        protocol: r.ip_protocol().unwrap_or("-1").to_string(),
        from_port: r.from_port().unwrap_or(-1),
        to_port: r.to_port().unwrap_or(-1),
        peer,
    })
}

fn to_route_table(t: &aws_sdk_ec2::types::RouteTable) -> reach::RouteTable {
    use reach::{Destination, Route, Target};
    let routes = t
        .routes()
        .iter()
        .filter_map(|r| {
            let destination = if let Some(c) = r.destination_cidr_block() {
                Destination::Cidr(c.parse().ok()?)
            } else if let Some(p) = r.destination_prefix_list_id() {
                Destination::PrefixList(p.to_string())
            } else {
                return None;
            };
            let target = match (
                r.gateway_id(),
                r.nat_gateway_id(),
                r.vpc_peering_connection_id(),
            ) {
                (Some("local"), _, _) => Target::Local,
                (Some(g), _, _) if g.starts_with("igw-") => Target::Igw(g.to_string()),
                (Some(g), _, _) if g.starts_with("vpce-") => Target::VpcEndpoint(g.to_string()),
                (_, Some(n), _) => Target::Nat(n.to_string()),
                (_, _, Some(p)) => Target::Peering(p.to_string()),
                (Some(g), _, _) => Target::Other(g.to_string()),
                _ => Target::Other(String::new()),
            };
            Some(Route {
                destination,
                target,
                // A blackhole route (its target deleted) carries nothing.
                blackhole: r.state() == Some(&aws_sdk_ec2::types::RouteState::Blackhole),
            })
        })
        .collect();
    reach::RouteTable {
        id: t.route_table_id().unwrap_or_default().to_string(),
        subnet_ids: t
            .associations()
            .iter()
            .filter_map(|a| a.subnet_id().map(str::to_string))
            .collect(),
        is_main: t.associations().iter().any(|a| a.main() == Some(true)),
        routes,
    }
}
