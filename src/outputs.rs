//! The output keys each step publishes (`StepCtx::set_output`) and later steps, `verify`,
//! `outputs` and `status` read: one module per producing step, so a consumer names the value
//! it reads without importing the step that makes it. The values are the keys of the state's
//! `outputs` map and of `fintech-infra outputs --json`: never rename one without migrating.

pub mod alarms {
    pub const OUT_TOPIC_ARN: &str = "alerts_topic_arn";
    pub const OUT_DASHBOARD_NAME: &str = "dashboard_name";
    pub const OUT_DASHBOARD_URL: &str = "dashboard_url";

    /// The name of the stack's alarm `purpose` (e.g. `alb-5xx-rate`).
    pub fn alarm_name(purpose: &str, suffix: &str) -> String {
        format!("alarm-{purpose}-{suffix}")
    }

    /// The ALB alarms a release is rolled back on (`fintech-infra deploy`, and CodeDeploy's
    /// deployment groups): its 5xx rate and its targets' p99 latency.
    pub const ROLLBACK_ALARMS: [&str; 2] = ["alb-5xx-rate", "alb-p99-latency"];
}

pub mod alb {
    /// Output keys other steps read.
    pub const OUT_ARN: &str = "alb_arn";
    pub const OUT_DNS_NAME: &str = "alb_dns_name";
    pub const OUT_ZONE_ID: &str = "alb_zone_id";
    pub const OUT_HTTPS: &str = "alb_https";
    /// The listener holding the forwarding rules (HTTPS with a certificate, else HTTP).
    pub const OUT_LISTENER_ARN: &str = "alb_listener_arn";
    /// `{blue, green, <path service>: target group ARN}`.
    pub const OUT_TARGET_GROUPS: &str = "alb_target_groups";
    /// `{service: target group ARN}` for every service the ALB serves: the first service on the
    /// blue group, path-routed services on their own.
    pub const OUT_SERVICE_TARGET_GROUPS: &str = "alb_service_target_groups";
    /// CloudWatch dimension `LoadBalancer`: `app/alb-<s>/<id>`.
    pub const OUT_FULL_NAME: &str = "alb_full_name";
    /// CloudWatch dimension `TargetGroup` per key of `alb_target_groups`: `targetgroup/<name>/<id>`.
    pub const OUT_TARGET_GROUP_FULL_NAMES: &str = "alb_target_group_full_names";
    pub const OUT_LOG_BUCKET: &str = "alb_log_bucket";
    pub const OUT_HTTP_LISTENER_ARN: &str = "alb_http_listener_arn";
    /// The test listener (`deploy.test_port`), while the default service deploys through
    /// CodeDeploy.
    pub const OUT_TEST_LISTENER_ARN: &str = "alb_test_listener_arn";
}

pub mod codedeploy {
    /// The CodeDeploy application (`null` without a CodeDeploy service).
    pub const OUT_APPLICATION: &str = "codedeploy_application";
    /// `{service: deployment group name}`.
    pub const OUT_DEPLOYMENT_GROUPS: &str = "codedeploy_deployment_groups";
}

pub mod cdn {
    /// Output keys.
    pub const OUT_DISTRIBUTION_ID: &str = "cdn_distribution_id";
    pub const OUT_DOMAIN_NAME: &str = "cdn_domain_name";
    pub const OUT_OAI_ID: &str = "cdn_oai_id";
    /// The DNS record the origin name needs (`{"name", "type": "CNAME", "value": <ALB DNS name>}`),
    /// published whenever a certificate is configured.
    pub const OUT_ALB_ORIGIN_DNS_RECORD: &str = "alb_origin_dns_record";
    /// The access-log bucket's name (with `cdn.access_logs`).
    pub const OUT_LOG_BUCKET: &str = "cdn_log_bucket";
}

pub mod certificate {
    /// Output keys other steps read.
    pub const OUT_ARN: &str = "certificate_arn";
    /// `ISSUED`, `PENDING_VALIDATION`, ...: the ALB attaches only an issued certificate.
    pub const OUT_STATUS: &str = "certificate_status";
    pub const OUT_RECORDS: &str = "certificate_validation_records";
    /// The host name CloudFront's `/api/*` origin connects to, published while the certificate in
    /// `certificate_arn` covers it (the cdn step connects over HTTPS by this name only then).
    pub const OUT_ORIGIN_DOMAIN: &str = "certificate_origin_domain";
    /// A newly requested certificate awaiting validation while the ALB keeps the earlier one.
    pub const OUT_PENDING_ARN: &str = "certificate_pending_arn";
}

pub mod cluster {
    /// Output keys other steps read.
    pub const OUT_CLUSTER_NAME: &str = "ecs_cluster_name";
    pub const OUT_CLUSTER_ARN: &str = "ecs_cluster_arn";
    pub const OUT_NAMESPACE_ID: &str = "cloudmap_namespace_id";
    pub const OUT_NAMESPACE_NAME: &str = "cloudmap_namespace_name";
}

pub mod database {
    /// Output keys other steps read.
    pub const OUT_CLUSTER_ID: &str = "db_cluster_id";
    pub const OUT_CLUSTER_ARN: &str = "db_cluster_arn";
    pub const OUT_RESOURCE_ID: &str = "db_cluster_resource_id";
    pub const OUT_WRITER_ENDPOINT: &str = "db_writer_endpoint";
    pub const OUT_READER_ENDPOINT: &str = "db_reader_endpoint";
    pub const OUT_PORT: &str = "db_port";
    pub const OUT_NAME: &str = "db_name";
    pub const OUT_SECRET_ARN: &str = "db_secret_arn";
}

pub mod dr_backup {
    /// Output keys.
    pub const OUT_VAULT_ARN: &str = "backup_vault_arn";
    pub const OUT_DR_VAULT_ARN: &str = "dr_backup_vault_arn";
    pub const OUT_PLAN_ID: &str = "backup_plan_id";
}

pub mod dr_network {
    /// Output keys.
    pub const OUT_DR_REGION: &str = "dr_region";
    pub const OUT_DR_VPC_ID: &str = "dr_vpc_id";
    pub const OUT_DR_SUBNET_IDS: &str = "dr_private_subnet_ids";
    pub const OUT_PEERING_ID: &str = "vpc_peering_connection_id";
}

pub mod dr_storage {
    /// Output keys.
    pub const OUT_DR_BUCKET: &str = "dr_assets_bucket";
    pub const OUT_DR_KEY_ARN: &str = "dr_kms_key_arn";
    pub const OUT_REPLICATION_ROLE_ARN: &str = "replication_role_arn";
}

pub mod flow_logs {
    /// Output keys: the flow log IDs (main region, DR region).
    pub const OUT_FLOW_LOG_ID: &str = "flow_log_id";
    pub const OUT_DR_FLOW_LOG_ID: &str = "dr_flow_log_id";
}

pub mod iam {
    /// Output keys other steps read.
    pub const OUT_EXECUTION_ROLE_ARN: &str = "iam_task_execution_role_arn";
    pub const OUT_TASK_ROLE_ARNS: &str = "iam_task_role_arns";
}

pub mod kms {
    /// Output keys other steps read.
    pub const OUT_KEY_ARN: &str = "kms_key_arn";
    pub const OUT_KEY_ID: &str = "kms_key_id";
}

pub mod network {
    /// Output keys other steps read.
    pub const OUT_VPC_ID: &str = "vpc_id";
    pub const OUT_VPC_CIDR: &str = "vpc_cidr";
    pub const OUT_PRIVATE_SUBNET_IDS: &str = "private_subnet_ids";
    /// Route tables of the private and isolated subnets.
    pub const OUT_INTERNAL_ROUTE_TABLE_IDS: &str = "internal_route_table_ids";
    /// `{service name: security group ID}`: the group of each service's tasks.
    pub const OUT_SERVICE_SG_IDS: &str = "sg_service_ids";
    /// The ID of [`CLOUDFRONT_PREFIX_LIST`] in the stack's region.
    pub const OUT_CLOUDFRONT_PREFIX_LIST_ID: &str = "cloudfront_prefix_list_id";
}

pub mod queue {
    /// Output keys other steps read.
    pub const OUT_QUEUE_URL: &str = "queue_url";
    pub const OUT_QUEUE_ARN: &str = "queue_arn";
    pub const OUT_DLQ_URL: &str = "dlq_url";
    pub const OUT_DLQ_ARN: &str = "dlq_arn";
}

pub mod registry {
    /// Output keys other steps read: JSON objects `{service: value}`.
    pub const OUT_URIS: &str = "ecr_repository_uris";
    pub const OUT_ARNS: &str = "ecr_repository_arns";
}

pub mod services {
    pub const OUT_SERVICE_NAMES: &str = "ecs_service_names";
    pub const OUT_LOG_GROUPS: &str = "ecs_log_groups";
    pub const OUT_TASK_DEFINITION_ARNS: &str = "ecs_task_definition_arns";
}

pub mod sessions {
    /// Output keys other steps read.
    pub const OUT_TABLE_NAME: &str = "sessions_table_name";
    pub const OUT_TABLE_ARN: &str = "sessions_table_arn";
}

pub mod storage {
    /// Output keys other steps read.
    pub const OUT_ASSETS_BUCKET: &str = "assets_bucket";
    pub const OUT_ASSETS_BUCKET_ARN: &str = "assets_bucket_arn";
    pub const OUT_TXLOG_BUCKET: &str = "txlog_bucket";
    pub const OUT_TXLOG_BUCKET_ARN: &str = "txlog_bucket_arn";
}

pub mod validator {
    /// Output keys.
    pub const OUT_FUNCTION_NAME: &str = "validator_function_name";
    pub const OUT_FUNCTION_ARN: &str = "validator_function_arn";
    pub const OUT_LOG_GROUP: &str = "validator_log_group";
    /// The circuit breaker alarm's purpose (`alarm-validator-breaker-<suffix>`).
    pub const BREAKER_ALARM: &str = "validator-breaker";
    /// The namespace of the handler's own metrics (`Processed`, `Failed`).
    pub const METRICS_NAMESPACE: &str = "FintechInfra/Validator";
    /// EventBridge invokes targets as this service principal.
    pub const EVENTS_PRINCIPAL: &str = "events.amazonaws.com";
    /// The input the breaker's schedule sends: the handler reconciles the breaker with its
    /// alarm.
    pub const RECONCILE_INPUT: &str = r#"{"breaker":"reconcile"}"#;

    /// The breaker reconciler's EventBridge rule, `sched-validator-breaker-<suffix>`.
    pub fn schedule_name(suffix: &str) -> String {
        format!("sched-validator-breaker-{suffix}")
    }
}

pub mod waf {
    pub const OUT_ARN: &str = "waf_web_acl_arn";
    pub const OUT_ID: &str = "waf_web_acl_id";
}
