//! Shared helpers of the integration suite: the emulator (started once per test binary, or
//! taken from `FINTECH_INFRA_TEST_ENDPOINT`), a stack under test with its own env suffix and
//! state directory, running the real binary, SDK clients pointed at the emulator, and the
//! emulator's request log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use serde_json::Value;

pub const REGION: &str = "us-east-1";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running emulator instance started by this process.
pub struct Emulator {
    pub endpoint: String,
    run_dir: Option<PathBuf>,
}

impl Emulator {
    /// Starts a dedicated instance (e.g. with a time scale) that stops when dropped, and in
    /// any case when this test process exits (`--watch-pid`).
    pub fn start(extra_args: &[&str]) -> Emulator {
        Emulator::start_with_env(extra_args, &[])
    }

    /// [`Emulator::start`] with extra environment variables for the emulator (e.g. moto's
    /// `MOTO_ACM_VALIDATION_WAIT`).
    pub fn start_with_env(extra_args: &[&str], env: &[(&str, &str)]) -> Emulator {
        static N: AtomicU32 = AtomicU32::new(0);
        let run_dir = repo_root().join("target").join("emulators").join(format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&run_dir).expect("run dir");
        let out = Command::new("bash")
            .arg(repo_root().join("localstack/start"))
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .args(extra_args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("running localstack/start");
        assert!(
            out.status.success(),
            "localstack/start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let endpoint = stdout
            .lines()
            .last()
            .expect("start prints the endpoint last")
            .trim()
            .to_string();
        assert!(
            endpoint.starts_with("http://"),
            "bad endpoint line: {endpoint}"
        );
        Emulator {
            endpoint,
            run_dir: Some(run_dir),
        }
    }

    /// True when this emulator is the project's faithful one (it has the request log).
    pub fn is_faithful(&self) -> bool {
        is_faithful(&self.endpoint)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(dir) = &self.run_dir {
            let _ = Command::new("bash")
                .arg(repo_root().join("localstack/stop"))
                .arg("--run-dir")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The emulator shared by the tests of this binary.
pub fn endpoint() -> &'static str {
    static SHARED: OnceLock<Emulator> = OnceLock::new();
    &SHARED
        .get_or_init(|| match std::env::var("FINTECH_INFRA_TEST_ENDPOINT") {
            Ok(ep) if !ep.is_empty() => Emulator {
                endpoint: ep.trim_end_matches('/').to_string(),
                run_dir: None,
            },
            _ => Emulator::start(&[]),
        })
        .endpoint
}

/// Whether the endpoint serves the project's introspection API (LocalStack does not).
pub fn is_faithful(endpoint: &str) -> bool {
    ureq::get(&format!("{endpoint}/_fintech/health"))
        .call()
        .is_ok()
}

/// A request the emulator served.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub ts: f64,
    pub service: String,
    pub operation: String,
    pub status: u16,
    pub params: Value,
    /// The HTTP path (for S3, `/<bucket>` or `/<bucket>/<key>`: path-style addressing).
    pub path: String,
    pub user_agent: String,
}

impl LoggedRequest {
    /// Whether the request came from a fintech-infra run on `suffix` (the tool sends the SDK
    /// app name `fintech-infra_<suffix>`, which appears as `app/fintech-infra_<suffix>`).
    pub fn is_from_stack(&self, suffix: &str) -> bool {
        let token = format!("app/{}", fintech_infra::app::app_name(suffix));
        self.user_agent.split_whitespace().any(|t| t == token)
    }

    /// Whether the operation changes anything (by AWS's naming of read-only operations).
    pub fn is_mutating(&self) -> bool {
        fintech_infra::aws::is_mutating(&self.operation)
    }
}

/// Every request the emulator served so far (the faithful emulator only).
pub fn request_log(endpoint: &str) -> Vec<LoggedRequest> {
    let body: Value = ureq::get(&format!("{endpoint}/_fintech/requests"))
        .call()
        .expect("request log")
        .into_json()
        .expect("request log is JSON");
    body.as_array()
        .expect("request log is an array")
        .iter()
        .map(|r| LoggedRequest {
            ts: r["ts"].as_f64().unwrap_or_default(),
            service: r["service"].as_str().unwrap_or_default().to_string(),
            operation: r["operation"].as_str().unwrap_or_default().to_string(),
            status: r["status"].as_u64().unwrap_or_default() as u16,
            params: r.get("params").cloned().unwrap_or(Value::Null),
            path: r["path"].as_str().unwrap_or_default().to_string(),
            user_agent: r["user_agent"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// State transitions the faithful emulator observed (NAT gateway available/deleted, ...).
pub fn events(endpoint: &str) -> Vec<Value> {
    let body: Value = ureq::get(&format!("{endpoint}/_fintech/events"))
        .call()
        .expect("events")
        .into_json()
        .expect("events are JSON");
    body.as_array().cloned().unwrap_or_default()
}

/// SDK configuration pointed at the emulator with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    sdk_config_in(endpoint, REGION).await
}

/// [`sdk_config`] in another region (the multi-region stack's).
pub async fn sdk_config_in(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

/// A unique env suffix: `<prefix>-<pid><n>` (tests run concurrently against one emulator).
pub fn unique_suffix(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let s = format!("{prefix}-{:x}{n}", std::process::id() % 0xfffff);
    assert!(s.len() <= 23, "suffix {s} too long");
    s
}

/// One stack under test: its suffix, its working directory (holding `.fintech-infra/`) and
/// the emulator it runs against.
pub struct Stack {
    pub suffix: String,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
}

/// What a run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON lines printed to stdout (with `--output json`).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The final summary object of a JSON run.
    pub fn summary(&self) -> Value {
        self.json_lines()
            .into_iter()
            .rev()
            .find(|v| v["event"] == "summary")
            .unwrap_or_else(|| panic!("no summary in output:\n{}\n{}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Stack {
    pub fn new(prefix: &str) -> Stack {
        Stack::on(endpoint(), prefix)
    }

    pub fn on(endpoint: &str, prefix: &str) -> Stack {
        Stack {
            suffix: unique_suffix(prefix),
            endpoint: endpoint.to_string(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(".fintech-infra")
            .join(format!("{}.json", self.suffix))
    }

    /// Writes a config file into the stack's directory and returns its path.
    pub fn config(&self, toml: &str) -> PathBuf {
        let p = self.dir.path().join("fintech-infra.toml");
        std::fs::write(&p, toml).expect("config");
        p
    }

    /// A command for the binary, run in the stack's directory against the emulator.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fintech-infra"));
        c.current_dir(self.dir.path())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env_remove("AWS_PROFILE")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        c
    }

    /// Runs the binary with `args` (the env suffix is not added).
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args)
            .output()
            .expect("running fintech-infra")
            .into()
    }

    /// `up --env-suffix <suffix> --output json [extra]`.
    pub fn up(&self, extra: &[&str]) -> Run {
        let mut args = vec!["--output", "json", "up", "--env-suffix", &self.suffix];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `down --env-suffix <suffix> --output json [extra]`.
    pub fn down(&self, extra: &[&str]) -> Run {
        let mut args = vec!["--output", "json"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["down", "--env-suffix", &self.suffix]);
        self.run(&args)
    }

    pub fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.state_path()).expect("state file");
        serde_json::from_str(&text).expect("state is JSON")
    }

    pub fn output(&self, key: &str) -> Value {
        self.state()["outputs"][key].clone()
    }

    /// A string output; panics naming the key if it is missing or not a string.
    pub fn output_str(&self, key: &str) -> String {
        self.output(key)
            .as_str()
            .unwrap_or_else(|| panic!("output {key} missing or not a string"))
            .to_string()
    }
}

/// Filter for resources of one stack by its stack tag.
pub fn stack_filter(suffix: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("tag:fintech-infra:stack")
        .values(suffix)
        .build()
}

/// Reads a tag value from a list of EC2 tags.
pub fn ec2_tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// Asserts the standard tags on an EC2 resource.
#[track_caller]
pub fn assert_standard_ec2_tags(tags: &[aws_sdk_ec2::types::Tag], suffix: &str, what: &str) {
    assert_eq!(
        ec2_tag(tags, "fintech-infra:stack"),
        Some(suffix),
        "{what}: stack tag"
    );
    assert_eq!(
        ec2_tag(tags, "Environment"),
        Some(suffix),
        "{what}: Environment"
    );
    assert_eq!(ec2_tag(tags, "Team"), Some("platform"), "{what}: Team");
    assert_eq!(
        ec2_tag(tags, "CostCenter"),
        Some("fintech"),
        "{what}: CostCenter"
    );
    let name = ec2_tag(tags, "Name").unwrap_or_default();
    assert!(
        name.ends_with(suffix),
        "{what}: Name `{name}` lacks the suffix"
    );
}

/// Everything in EC2 still tagged with the stack's suffix (live resources only). Tags are
/// checked here as well as in the request filter: moto ignores some tag filters (e.g. on
/// NAT gateways), and a test must not blame one stack for another's resources.
pub async fn remaining_ec2(sdk: &SdkConfig, suffix: &str) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let f = || stack_filter(suffix);
    let ours =
        |tags: &[aws_sdk_ec2::types::Tag]| ec2_tag(tags, "fintech-infra:stack") == Some(suffix);
    let mut left = Vec::new();
    let mut add = |what: &str, id: Option<&str>| left.push(format!("{what} {}", id.unwrap_or("?")));
    for v in ec2
        .describe_vpcs()
        .filters(f())
        .send()
        .await
        .unwrap()
        .vpcs()
    {
        if ours(v.tags()) {
            add("vpc", v.vpc_id());
        }
    }
    for v in ec2
        .describe_subnets()
        .filters(f())
        .send()
        .await
        .unwrap()
        .subnets()
    {
        if ours(v.tags()) {
            add("subnet", v.subnet_id());
        }
    }
    for v in ec2
        .describe_internet_gateways()
        .filters(f())
        .send()
        .await
        .unwrap()
        .internet_gateways()
    {
        if ours(v.tags()) {
            add("igw", v.internet_gateway_id());
        }
    }
    for v in ec2
        .describe_nat_gateways()
        .filter(f())
        .send()
        .await
        .unwrap()
        .nat_gateways()
    {
        if ours(v.tags()) && v.state().map(|s| s.as_str()) != Some("deleted") {
            add("nat", v.nat_gateway_id());
        }
    }
    for v in ec2
        .describe_addresses()
        .filters(f())
        .send()
        .await
        .unwrap()
        .addresses()
    {
        if ours(v.tags()) {
            add("eip", v.allocation_id());
        }
    }
    for v in ec2
        .describe_route_tables()
        .filters(f())
        .send()
        .await
        .unwrap()
        .route_tables()
    {
        if ours(v.tags()) {
            add("rtb", v.route_table_id());
        }
    }
    for v in ec2
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .unwrap()
        .security_groups()
    {
        if ours(v.tags()) {
            add("sg", v.group_id());
        }
    }
    for v in ec2
        .describe_vpc_peering_connections()
        .send()
        .await
        .unwrap()
        .vpc_peering_connections()
    {
        let code = v.status().and_then(|s| s.code()).map(|c| c.as_str());
        if ours(v.tags()) && !matches!(code, Some("deleted" | "deleting" | "rejected")) {
            add("pcx", v.vpc_peering_connection_id());
        }
    }
    for v in ec2
        .describe_vpc_endpoints()
        .filters(f())
        .send()
        .await
        .unwrap()
        .vpc_endpoints()
    {
        let gone = v
            .state()
            .is_some_and(|s| s.as_str().eq_ignore_ascii_case("deleted"));
        if ours(v.tags()) && !gone {
            add("vpce", v.vpc_endpoint_id());
        }
    }
    left
}

/// Resources the Resource Groups Tagging API still lists with the stack tag, leaving out KMS
/// keys pending deletion (KMS cannot delete a key sooner than 7 days).
pub async fn remaining_tagged(sdk: &SdkConfig, suffix: &str) -> Vec<String> {
    let tagging = aws_sdk_resourcegroupstagging::Client::new(sdk);
    let kms = aws_sdk_kms::Client::new(sdk);
    let out = tagging
        .get_resources()
        .tag_filters(
            aws_sdk_resourcegroupstagging::types::TagFilter::builder()
                .key("fintech-infra:stack")
                .values(suffix)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut left = Vec::new();
    for m in out.resource_tag_mapping_list() {
        let arn = m.resource_arn().unwrap_or_default().to_string();
        let tagged = m
            .tags()
            .iter()
            .any(|t| t.key() == "fintech-infra:stack" && t.value() == suffix);
        if !tagged {
            continue;
        }
        // moto lists NAT gateways that are already deleted.
        if arn.contains(":natgateway/") {
            let id = arn.rsplit('/').next().unwrap_or_default();
            let ec2 = aws_sdk_ec2::Client::new(sdk);
            let nat = ec2.describe_nat_gateways().nat_gateway_ids(id).send().await;
            let deleted = nat.map_or(true, |o| {
                o.nat_gateways()
                    .iter()
                    .all(|n| n.state().map(|s| s.as_str()) == Some("deleted"))
            });
            if deleted {
                continue;
            }
        }
        // Deleted peering connections stay visible (state `deleted`) for a while, on AWS
        // as in moto; moto also lists them with their tags.
        if arn.contains(":vpc-peering-connection/") {
            let id = arn.rsplit('/').next().unwrap_or_default();
            let region = arn.split(':').nth(3).unwrap_or_default().to_string();
            let conf = sdk.to_builder().region(Region::new(region)).build();
            let ec2 = aws_sdk_ec2::Client::new(&conf);
            let pcx = ec2
                .describe_vpc_peering_connections()
                .vpc_peering_connection_ids(id)
                .send()
                .await;
            let deleted = pcx.map_or(true, |o| {
                o.vpc_peering_connections().iter().all(|p| {
                    p.status().and_then(|s| s.code()).map(|c| c.as_str()) == Some("deleted")
                })
            });
            if deleted {
                continue;
            }
        }
        // moto keeps deleted ECS clusters and services (INACTIVE, as AWS shows them for a
        // while) and lists them with their tags.
        if arn.starts_with("arn:aws:ecs:")
            && (arn.contains(":cluster/") || arn.contains(":service/"))
            && !ecs_is_live(sdk, &arn).await
        {
            continue;
        }
        // moto keeps a deleted cluster's automated snapshot (`rds:<cluster>-<time>`, with the
        // cluster's tags), although DeleteDBCluster asked for DeleteAutomatedBackups (AWS
        // removes automated backups with the cluster; the database tests check the request).
        if arn.contains(":cluster-snapshot:rds:") {
            let rds = aws_sdk_rds::Client::new(sdk);
            let snap = rds
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(arn.rsplit("cluster-snapshot:").next().unwrap())
                .send()
                .await;
            let cluster = snap
                .ok()
                .and_then(|o| o.db_cluster_snapshots().first().cloned())
                .and_then(|s| s.db_cluster_identifier().map(str::to_string));
            let cluster_gone = match cluster {
                Some(id) => rds
                    .describe_db_clusters()
                    .db_cluster_identifier(&id)
                    .send()
                    .await
                    .is_err(),
                None => true,
            };
            if cluster_gone {
                continue;
            }
        }
        if arn.contains(":kms:") {
            let meta = kms.describe_key().key_id(&arn).send().await.unwrap();
            let state = meta
                .key_metadata()
                .and_then(|k| k.key_state())
                .map(|s| s.as_str().to_string());
            if state.as_deref() == Some("PendingDeletion") {
                continue;
            }
        }
        left.push(arn);
    }
    left
}

/// Whether an ECS cluster or service (by ARN) exists and is not INACTIVE.
pub async fn ecs_is_live(sdk: &SdkConfig, arn: &str) -> bool {
    let ecs = aws_sdk_ecs::Client::new(sdk);
    let status = if arn.contains(":cluster/") {
        ecs.describe_clusters()
            .clusters(arn)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.clusters()
                    .first()
                    .and_then(|c| c.status().map(str::to_string))
            })
    } else {
        // arn:aws:ecs:<region>:<account>:service/<cluster>/<service>
        let mut parts = arn.rsplit('/');
        let (service, cluster) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        ecs.describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.services()
                    .first()
                    .and_then(|s| s.status().map(str::to_string))
            })
    };
    status.is_some_and(|s| s != "INACTIVE")
}

/// Whether a path's permission bits equal `mode`.
#[cfg(unix)]
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Runs an async block on a fresh runtime (tests are plain `#[test]`s: the binary under test
/// does the real work in its own process).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Whether an SDK call failed because the thing does not exist; panics on any other error
/// (an unreachable emulator must not pass for "nothing left").
fn not_found<T, E>(r: &Result<T, aws_sdk_rds::error::SdkError<E>>) -> bool
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(_) => false,
        Err(e) => {
            let code = aws_sdk_rds::error::ProvideErrorMetadata::code(e).unwrap_or_default();
            assert!(code.contains("NotFound"), "unexpected error: {e:?}");
            true
        }
    }
}

/// The stack's RDS resources that still exist, by their deterministic names (the tagging API
/// does not list subnet or parameter groups).
pub async fn remaining_rds(sdk: &SdkConfig, suffix: &str) -> Vec<String> {
    let rds = aws_sdk_rds::Client::new(sdk);
    let mut left = Vec::new();
    let cluster = format!("aurora-{suffix}");
    let r = rds
        .describe_db_clusters()
        .db_cluster_identifier(&cluster)
        .send()
        .await;
    if !not_found(&r) {
        for c in r.unwrap().db_clusters() {
            left.push(format!(
                "cluster {cluster} ({})",
                c.status().unwrap_or_default()
            ));
        }
    }
    for role in ["writer", "reader"] {
        let id = format!("aurora-{role}-{suffix}");
        let r = rds
            .describe_db_instances()
            .db_instance_identifier(&id)
            .send()
            .await;
        if !not_found(&r) {
            for i in r.unwrap().db_instances() {
                left.push(format!(
                    "instance {id} ({})",
                    i.db_instance_status().unwrap_or_default()
                ));
            }
        }
    }
    let group = format!("dbsubnet-{suffix}");
    let r = rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(&group)
        .send()
        .await;
    if !not_found(&r) {
        left.push(format!("subnet group {group}"));
    }
    let params = format!("dbparams-{suffix}");
    let r = rds
        .describe_db_cluster_parameter_groups()
        .db_cluster_parameter_group_name(&params)
        .send()
        .await;
    if !not_found(&r) {
        left.push(format!("cluster parameter group {params}"));
    }
    left
}

/// Everything carrying the stack's suffix that is still there, in every region the presets
/// use plus us-east-1 (CloudFront's WAF scope): resources with the stack tag (the tagging
/// API), log groups, IAM roles and customer-managed policies, buckets, KMS aliases, web ACLs
/// of either scope, EC2 resources with the stack tag. What `down` must leave empty.
pub async fn remaining_anywhere(endpoint: &str, suffix: &str) -> Vec<String> {
    let mut left = Vec::new();
    // Global services, asked once.
    let main = sdk_config_in(endpoint, REGION).await;
    let iam = aws_sdk_iam::Client::new(&main);
    for r in iam
        .list_roles()
        .max_items(1000)
        .send()
        .await
        .unwrap()
        .roles()
    {
        if r.role_name().contains(suffix) {
            left.push(format!("IAM role {}", r.role_name()));
        }
    }
    let policies = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .max_items(1000)
        .send()
        .await
        .unwrap();
    for p in policies.policies() {
        if p.policy_name().is_some_and(|n| n.contains(suffix)) {
            left.push(format!(
                "IAM policy {}",
                p.policy_name().unwrap_or_default()
            ));
        }
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&main)
            .force_path_style(true)
            .build(),
    );
    for b in s3.list_buckets().send().await.unwrap().buckets() {
        if b.name().is_some_and(|n| n.contains(suffix)) {
            left.push(format!("bucket {}", b.name().unwrap_or_default()));
        }
    }
    let waf = aws_sdk_wafv2::Client::new(&main);
    let edge = waf
        .list_web_acls()
        .scope(aws_sdk_wafv2::types::Scope::Cloudfront)
        .limit(100)
        .send()
        .await
        .unwrap();
    for a in edge.web_acls() {
        if a.name().is_some_and(|n| n.contains(suffix)) {
            left.push(format!(
                "CloudFront web ACL {}",
                a.name().unwrap_or_default()
            ));
        }
    }
    for region in [REGION, "us-east-2", "us-west-2"] {
        let sdk = sdk_config_in(endpoint, region).await;
        for arn in remaining_tagged(&sdk, suffix).await {
            left.push(format!("{region}: tagged {arn}"));
        }
        for id in remaining_ec2(&sdk, suffix).await {
            left.push(format!("{region}: EC2 {id}"));
        }
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let groups = logs.describe_log_groups().limit(50);
        let mut pages = groups.into_paginator().send();
        while let Some(page) = pages.next().await {
            for g in page.unwrap().log_groups() {
                if g.log_group_name().is_some_and(|n| n.contains(suffix)) {
                    left.push(format!(
                        "{region}: log group {}",
                        g.log_group_name().unwrap_or_default()
                    ));
                }
            }
        }
        let kms = aws_sdk_kms::Client::new(&sdk);
        for a in kms
            .list_aliases()
            .limit(100)
            .send()
            .await
            .unwrap()
            .aliases()
        {
            if a.alias_name().is_some_and(|n| n.contains(suffix)) {
                left.push(format!(
                    "{region}: KMS alias {}",
                    a.alias_name().unwrap_or_default()
                ));
            }
        }
        let waf = aws_sdk_wafv2::Client::new(&sdk);
        let regional = waf
            .list_web_acls()
            .scope(aws_sdk_wafv2::types::Scope::Regional)
            .limit(100)
            .send()
            .await
            .unwrap();
        for a in regional.web_acls() {
            if a.name().is_some_and(|n| n.contains(suffix)) {
                left.push(format!(
                    "{region}: web ACL {}",
                    a.name().unwrap_or_default()
                ));
            }
        }
    }
    left
}
