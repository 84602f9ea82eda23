//! AWS client setup and the AWS error type.
//!
//! All service clients share one `SdkConfig` whose HTTP client is wrapped so that at most
//! `--parallelism` HTTP requests (operations, retries and polls alike) are in flight at once,
//! and one interceptor that counts every operation, split into read-only and mutating, so a
//! run can report (and tests can assert) that a second `up` changed nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::Semaphore;

/// Where and how to reach AWS (or an emulator).
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub parallelism: usize,
    /// Sent in the User-Agent of every request (`app/<name>`): names the tool and the stack
    /// in CloudTrail, and lets tests pick one run's requests out of an emulator's log.
    pub app_name: Option<String>,
    /// Attempts per AWS operation (1 = no retry); 0 means [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: u32,
}

/// Attempts per operation by default. A stack is hundreds of calls, and EC2 throttles in
/// bursts: with the SDK's default of 3, one call in a burst of three throttles fails the
/// run. Terraform's AWS provider allows 25; 12 attempts with jittered exponential backoff
/// capped at 20 s ride out about three minutes of throttling per call.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;

/// The retry policy of every client, in every region: the SDK's standard mode (jittered
/// exponential backoff; retries the throttling codes of every service, `RequestLimitExceeded`,
/// `Throttling`, `ThrottlingException`, `SlowDown`, `TooManyRequestsException`, ..., 5xx
/// answers, connection resets and timeouts) with more attempts than its default.
pub fn retry_config(max_attempts: u32) -> aws_config::retry::RetryConfig {
    let attempts = if max_attempts == 0 {
        DEFAULT_MAX_ATTEMPTS
    } else {
        max_attempts
    };
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(std::time::Duration::from_millis(200))
        .with_max_backoff(std::time::Duration::from_secs(20))
}

/// Service error codes of a server-side failure: the request may have been carried out.
pub fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "InternalError"
            | "InternalFailure"
            | "InternalServerError"
            | "InternalServiceError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "Unavailable"
            | "RequestTimeout"
            | "RequestTimeoutException"
    )
}

/// Creates that AWS carries out again on every call: no name uniqueness, and no idempotency
/// token in the way the steps call them. If such a call's answer is lost (a 5xx, a reset, a
/// timeout after AWS acted), the SDK's retry would make a second one (a second VPC, internet
/// gateway, KMS key, ...). They get one attempt: the step fails, records nothing twice, and
/// runs again, and its lookup by name and tag finds what the first call made.
const CREATE_ONCE: &[(&str, &str)] = &[
    ("EC2", "CreateVpc"),
    ("EC2", "CreateSubnet"),
    ("EC2", "CreateInternetGateway"),
    ("EC2", "CreateRouteTable"),
    ("EC2", "AllocateAddress"),
    ("EC2", "CreateNatGateway"),
    ("EC2", "CreateVpcEndpoint"),
    ("EC2", "CreateVpcPeeringConnection"),
    ("EC2", "CreateFlowLogs"),
    ("KMS", "CreateKey"),
    ("ECS", "RegisterTaskDefinition"),
    ("Lambda", "CreateEventSourceMapping"),
    ("Backup", "CreateBackupPlan"),
    ("Backup", "CreateBackupSelection"),
];

/// Whether `service`/`operation` is one of [`CREATE_ONCE`].
pub fn is_create_once(service: &str, operation: &str) -> bool {
    CREATE_ONCE
        .iter()
        .any(|(s, o)| s.eq_ignore_ascii_case(service) && *o == operation)
}

/// Timeouts of one attempt: a connection that never opens, or an answer that never comes
/// (a reset half-open connection), becomes a retryable timeout instead of a hang.
pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .operation_attempt_timeout(std::time::Duration::from_secs(120))
        .build()
}

/// Region used when neither `--region`, the profile nor the environment names one: the seeds
/// target us-east-1.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Shared handle to every AWS service client the steps use.
pub struct Aws {
    sdk: SdkConfig,
    region: String,
    endpoint_url: Option<String>,
    calls: Arc<CallCounter>,
    clients: Clients,
}

macro_rules! clients {
    ($($field:ident => $krate:ident),* $(,)?) => {
        #[derive(Default)]
        struct Clients { s3: OnceLock<aws_sdk_s3::Client>, $($field: OnceLock<$krate::Client>,)* }
        /// Connections to regions other than the stack's (the disaster-recovery region), made on
/// first use: see [`Aws::in_region`].
#[derive(Default)]
pub struct RegionCache(Mutex<BTreeMap<String, Arc<Aws>>>);

impl Aws {
            $(
                #[doc = concat!("The `", stringify!($krate), "` client (built on first use).")]
                pub fn $field(&self) -> &$krate::Client {
                    self.clients.$field.get_or_init(|| {
                        let conf = $krate::config::Builder::from(&self.sdk)
                            .interceptor(CountingInterceptor(self.calls.clone()))
                            .build();
                        $krate::Client::from_conf(conf)
                    })
                }
            )*
        }
    };
}

clients! {
    ec2 => aws_sdk_ec2,
    kms => aws_sdk_kms,
    sts => aws_sdk_sts,
    tagging => aws_sdk_resourcegroupstagging,
    rds => aws_sdk_rds,
    secrets => aws_sdk_secretsmanager,
    dynamodb => aws_sdk_dynamodb,
    iam => aws_sdk_iam,
    ecr => aws_sdk_ecr,
    ecs => aws_sdk_ecs,
    autoscaling => aws_sdk_applicationautoscaling,
    cloudmap => aws_sdk_servicediscovery,
    logs => aws_sdk_cloudwatchlogs,
    elb => aws_sdk_elasticloadbalancingv2,
    acm => aws_sdk_acm,
    waf => aws_sdk_wafv2,
    sqs => aws_sdk_sqs,
    lambda => aws_sdk_lambda,
    cloudfront => aws_sdk_cloudfront,
    cloudwatch => aws_sdk_cloudwatch,
    sns => aws_sdk_sns,
    backup => aws_sdk_backup,
    codedeploy => aws_sdk_codedeploy,
    route53 => aws_sdk_route53,
    events => aws_sdk_eventbridge,
}

impl Aws {
    /// Loads credentials and region from the standard chain (environment, profiles, SSO),
    /// applying the command-line overrides.
    pub async fn connect(opts: &AwsOptions) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry_config(opts.max_attempts))
            .timeout_config(timeout_config());
        if let Some(profile) = &opts.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &opts.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(app) = opts
            .app_name
            .as_deref()
            .and_then(|a| AppName::new(a.to_string()).ok())
        {
            loader = loader.app_name(app);
        }
        let mut sdk = loader.load().await;
        if sdk.region().is_none() {
            sdk = sdk
                .into_builder()
                .region(Region::new(DEFAULT_REGION))
                .build();
        }
        if let Some(inner) = sdk.http_client() {
            let limited = LimitedHttpClient {
                inner,
                permits: Arc::new(Semaphore::new(opts.parallelism.max(1))),
            };
            sdk = sdk.into_builder().http_client(limited).build();
        }
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let endpoint_url = sdk.endpoint_url().map(str::to_string);
        Aws {
            sdk,
            region,
            endpoint_url,
            calls: Arc::default(),
            clients: Clients::default(),
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The connection to `region`, from `cache`: this one for its own region, else one made
    /// once with [`Aws::for_region`] and shared by every caller of the run.
    pub fn in_region(self: &Arc<Aws>, cache: &RegionCache, region: &str) -> Arc<Aws> {
        if region == self.region() {
            return self.clone();
        }
        cache
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(region.to_string())
            .or_insert_with(|| Arc::new(self.for_region(region)))
            .clone()
    }

    /// The same connection (credentials, endpoint, request limit, call counter) in another
    /// region: the disaster-recovery steps work in two regions at once, and their calls
    /// count towards the same totals (a second `up` must change nothing in either).
    pub fn for_region(&self, region: &str) -> Aws {
        Aws {
            sdk: self
                .sdk
                .clone()
                .into_builder()
                .region(Region::new(region.to_string()))
                .build(),
            region: region.to_string(),
            endpoint_url: self.endpoint_url.clone(),
            calls: self.calls.clone(),
            clients: Clients::default(),
        }
    }

    /// The S3 client. Against a custom endpoint (an emulator on loopback) it addresses buckets
    /// by path: virtual-hosted names like `bucket.127.0.0.1` do not resolve.
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.clients.s3.get_or_init(|| {
            let conf = aws_sdk_s3::config::Builder::from(&self.sdk)
                .interceptor(CountingInterceptor(self.calls.clone()))
                .force_path_style(self.endpoint_url.is_some())
                .build();
            aws_sdk_s3::Client::from_conf(conf)
        })
    }

    /// The custom endpoint, when talking to an emulator.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// Operation counts so far.
    pub fn calls(&self) -> CallStats {
        self.calls.stats()
    }

    /// The caller's account ID (STS GetCallerIdentity).
    pub async fn account_id(&self) -> Result<String, AwsError> {
        let out = self
            .sts()
            .get_caller_identity()
            .send()
            .await
            .aws("sts:GetCallerIdentity", "caller")?;
        Ok(out.account.unwrap_or_default())
    }
}

/// Whether an operation changes anything, judged by its name: AWS names read-only operations
/// with these verbs across every service we use.
pub fn is_mutating(operation: &str) -> bool {
    const READ_ONLY: [&str; 8] = [
        "Describe", "Get", "List", "Head", "Lookup", "Search", "Scan", "Query",
    ];
    !READ_ONLY.iter().any(|p| operation.starts_with(p))
}

/// Totals of AWS operations issued by this process.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallStats {
    pub total: u64,
    pub mutating: u64,
    /// "Service:Operation" of every mutating call, in order.
    pub mutating_ops: Vec<String>,
    /// Calls per "Service:Operation".
    pub by_operation: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct CallCounter(Mutex<CallStats>);

impl CallCounter {
    fn record(&self, service: &str, operation: &str) {
        let key = format!("{service}:{operation}");
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.total += 1;
        *s.by_operation.entry(key.clone()).or_default() += 1;
        if is_mutating(operation) {
            s.mutating += 1;
            s.mutating_ops.push(key);
        }
    }
    fn stats(&self) -> CallStats {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Debug)]
struct CountingInterceptor(Arc<CallCounter>);

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        "fintech-infra-call-counter"
    }

    // Not `read_before_execution`: client-level interceptors run that hook before the
    // operation's own config (which carries its `Metadata`) is applied.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(md) = cfg.load::<Metadata>() {
            tracing::debug!(service = md.service(), operation = md.name(), "aws call");
            self.0.record(md.service(), md.name());
            if is_create_once(md.service(), md.name()) {
                // The standard retry strategy reads its attempts from the config bag: this
                // layer makes this one operation a single attempt (see CREATE_ONCE).
                cfg.interceptor_state()
                    .store_put(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
            }
        }
        Ok(())
    }
}

/// Wraps the SDK's HTTP client so that every request first takes a permit: this bounds the AWS
/// operations in flight across all steps, whatever each step does internally.
#[derive(Debug)]
struct LimitedHttpClient {
    inner: SharedHttpClient,
    permits: Arc<Semaphore>,
}

impl HttpClient for LimitedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LimitedConnector {
            inner: self.inner.http_connector(settings, components),
            permits: self.permits.clone(),
        })
    }
}

#[derive(Debug)]
struct LimitedConnector {
    inner: SharedHttpConnector,
    permits: Arc<Semaphore>,
}

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let permits = self.permits.clone();
        HttpConnectorFuture::new(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire_owned().await.expect("semaphore closed");
            inner.call(request).await
        })
    }
}

/// What kind of failure an AWS error is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The resource does not exist (already deleted, never created).
    NotFound,
    /// Something else still depends on the resource; usually resolves by waiting.
    DependencyViolation,
    /// The resource is in the wrong state for this call (e.g. still creating).
    InvalidState,
    /// The request rate was too high even after the SDK's own retries.
    Throttled,
    /// The resource already exists.
    AlreadyExists,
    Other,
}

/// An AWS operation that failed, keeping the service's error code and message and the SDK
/// error itself as the source.
#[derive(Debug, thiserror::Error)]
pub struct AwsError {
    /// `service:Operation`, e.g. `ec2:CreateVpc`.
    pub operation: &'static str,
    /// The resource the call was about (name or ID).
    pub resource: String,
    pub code: Option<String>,
    pub message: Option<String>,
    #[source]
    pub source: BoxError,
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} failed", self.operation, self.resource)?;
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => write!(f, ": {c}: {m}"),
            (Some(c), None) => write!(f, ": {c}"),
            (None, Some(m)) => write!(f, ": {m}"),
            // The SDK error (kept as the source) says what went wrong.
            (None, None) => Ok(()),
        }
    }
}

impl AwsError {
    pub fn kind(&self) -> AwsErrorKind {
        classify(self.code.as_deref().unwrap_or(""))
    }

    pub fn is_not_found(&self) -> bool {
        self.kind() == AwsErrorKind::NotFound
    }
}

/// Maps AWS error codes to kinds. Codes differ per service (EC2 `InvalidVpcID.NotFound`,
/// KMS `NotFoundException`, RDS `DBClusterNotFoundFault`, ...), so this matches on shape.
pub fn classify(code: &str) -> AwsErrorKind {
    if code.ends_with(".NotFound")
        || code.ends_with("NotFound")
        || code.ends_with("NotFoundException")
        || code.ends_with("NotFoundFault")
        // S3, IAM, CloudFront: NoSuchBucket, NoSuchEntity, NoSuchDistribution, ...
        || code.starts_with("NoSuch")
        || code == "ResourceNotFoundException"
        || code == "InvalidAllocationID.NotFound"
        // SQS: the query-compatible code, and the JSON protocol's shape name.
        || code == "AWS.SimpleQueueService.NonExistentQueue"
        || code == "QueueDoesNotExist"
        // CodeDeploy: ApplicationDoesNotExistException, DeploymentGroupDoesNotExistException.
        || code.ends_with("DoesNotExistException")
    {
        AwsErrorKind::NotFound
    } else if code == "DependencyViolation"
        || code == "ResourceInUse"
        || code == "ResourceInUseException"
        || code == "DeleteConflict"
    {
        AwsErrorKind::DependencyViolation
    } else if code.starts_with("Invalid") && code.contains("State")
        || code == "IncorrectState"
        || code == "KMSInvalidStateException"
    {
        AwsErrorKind::InvalidState
    } else if code.contains("Throttl")
        || matches!(
            code,
            "RequestLimitExceeded"
                | "TooManyRequestsException"
                | "SlowDown"
                | "ProvisionedThroughputExceededException"
                | "PriorRequestNotComplete"
                | "BandwidthLimitExceeded"
        )
    {
        AwsErrorKind::Throttled
    } else if code.contains("AlreadyExists")
        || code.contains("Duplicate")
        // The "already there" answers of the services that do not say "AlreadyExists": EC2
        // subnets (a CIDR taken) and associations, Lambda functions and mappings, S3 buckets
        // outside us-east-1, Secrets Manager. A create retried after its answer was lost
        // meets them: the resource is its own.
        || matches!(
            code,
            "InvalidSubnet.Conflict"
                | "Resource.AlreadyAssociated"
                | "ResourceConflictException"
                | "BucketAlreadyOwnedByYou"
                | "ResourceExistsException"
        )
    {
        AwsErrorKind::AlreadyExists
    } else {
        AwsErrorKind::Other
    }
}

/// Converts SDK results into [`AwsError`], naming the operation and resource and keeping the
/// error code.
pub trait AwsResultExt<T> {
    fn aws(self, operation: &'static str, resource: impl fmt::Display) -> Result<T, AwsError>;
}

impl<T, E, R> AwsResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    fn aws(self, operation: &'static str, resource: impl fmt::Display) -> Result<T, AwsError> {
        self.map_err(|err| AwsError {
            operation,
            resource: resource.to_string(),
            code: err.code().map(str::to_string),
            message: err.message().map(str::to_string),
            source: Box::new(err),
        })
    }
}

/// Treats "not found" as success with `None`: the resource is already gone.
pub trait NotFoundOk<T> {
    fn not_found_ok(self) -> Result<Option<T>, AwsError>;
}

impl<T> NotFoundOk<T> for Result<T, AwsError> {
    fn not_found_ok(self) -> Result<Option<T>, AwsError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Finds the first [`AwsError`] in an error chain: the root cause a report should name.
pub fn find_aws_error(err: &anyhow::Error) -> Option<&AwsError> {
    err.chain().find_map(|e| e.downcast_ref::<AwsError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes() {
        assert_eq!(classify("InvalidVpcID.NotFound"), AwsErrorKind::NotFound);
        for code in [
            "Throttling",
            "RequestLimitExceeded",
            "TooManyRequestsException",
            "SlowDown",
        ] {
            assert_eq!(classify(code), AwsErrorKind::Throttled, "{code}");
        }
        // The "already there" answers a create retried after a lost answer meets.
        for code in [
            "EntityAlreadyExists",
            "RepositoryAlreadyExistsException",
            "InvalidPermission.Duplicate",
            "DuplicateTargetGroupName",
            "InvalidSubnet.Conflict",
            "Resource.AlreadyAssociated",
            "ResourceConflictException",
            "BucketAlreadyOwnedByYou",
        ] {
            assert_eq!(classify(code), AwsErrorKind::AlreadyExists, "{code}");
        }
        assert_eq!(classify("NatGatewayNotFound"), AwsErrorKind::NotFound);
        assert_eq!(
            classify("DeploymentGroupDoesNotExistException"),
            AwsErrorKind::NotFound
        );
        assert_eq!(classify("NotFoundException"), AwsErrorKind::NotFound);
        assert_eq!(
            classify("AWS.SimpleQueueService.NonExistentQueue"),
            AwsErrorKind::NotFound
        );
        assert_eq!(classify("DBClusterNotFoundFault"), AwsErrorKind::NotFound);
        assert_eq!(
            classify("DependencyViolation"),
            AwsErrorKind::DependencyViolation
        );
        assert_eq!(
            classify("InvalidDBClusterStateFault"),
            AwsErrorKind::InvalidState
        );
        // ACM: a certificate a listener still serves.
        assert_eq!(
            classify("ResourceInUseException"),
            AwsErrorKind::DependencyViolation
        );
        assert_eq!(classify("Throttling"), AwsErrorKind::Throttled);
        assert_eq!(
            classify("InvalidGroup.Duplicate"),
            AwsErrorKind::AlreadyExists
        );
        assert_eq!(classify("UnauthorizedOperation"), AwsErrorKind::Other);
    }

    /// An inner connector that records how many requests it serves at once.
    #[derive(Debug, Default)]
    struct Gauge {
        now: std::sync::atomic::AtomicUsize,
        max: std::sync::atomic::AtomicUsize,
    }

    #[derive(Debug)]
    struct SlowConnector(Arc<Gauge>);

    impl HttpConnector for SlowConnector {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            use std::sync::atomic::Ordering::SeqCst;
            let gauge = self.0.clone();
            HttpConnectorFuture::new(async move {
                let n = gauge.now.fetch_add(1, SeqCst) + 1;
                gauge.max.fetch_max(n, SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                gauge.now.fetch_sub(1, SeqCst);
                Ok(aws_smithy_runtime_api::http::Response::new(
                    200u16.try_into().expect("valid status"),
                    aws_smithy_types::body::SdkBody::empty(),
                ))
            })
        }
    }

    #[tokio::test]
    async fn http_layer_bounds_requests_in_flight() {
        let gauge = Arc::new(Gauge::default());
        let connector = LimitedConnector {
            inner: SharedHttpConnector::new(SlowConnector(gauge.clone())),
            permits: Arc::new(Semaphore::new(3)),
        };
        let calls = (0..20).map(|_| connector.call(HttpRequest::empty()));
        for r in futures::future::join_all(calls).await {
            assert_eq!(r.unwrap().status().as_u16(), 200);
        }
        assert_eq!(gauge.max.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn read_only_operations_are_not_mutating() {
        assert!(!is_mutating("DescribeVpcs"));
        assert!(!is_mutating("GetKeyRotationStatus"));
        assert!(!is_mutating("ListAliases"));
        assert!(is_mutating("CreateVpc"));
        assert!(is_mutating("DeleteNatGateway"));
        assert!(is_mutating("EnableKeyRotation"));
    }
}
