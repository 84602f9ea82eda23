//! Network interfaces left behind in a VPC: not a recorded kind (AWS creates and owns
//! them), but teardown must wait for, and delete, the ENIs that VPC-attached Lambda
//! functions leave, before their subnets and security groups can go.

use std::time::Duration;

use anyhow::Result;
use aws_sdk_ec2::types::{NetworkInterface, NetworkInterfaceStatus, NetworkInterfaceType};

use super::filter;
use crate::aws::{AwsErrorKind, AwsResultExt};
use crate::step::StepCtx;

/// Whether an ENI is one of Lambda's VPC ENIs: interface type `lambda`, or (older ENIs) the
/// description `AWS Lambda VPC ENI...` or a requester-managed ENI whose requester is Lambda.
pub fn is_lambda_eni(eni: &NetworkInterface) -> bool {
    eni.interface_type() == Some(&NetworkInterfaceType::Lambda)
        || eni
            .description()
            .is_some_and(|d| d.starts_with("AWS Lambda VPC ENI"))
        || (eni.requester_managed() == Some(true)
            && eni
                .requester_id()
                .is_some_and(|r| r.to_ascii_lowercase().contains("lambda")))
}

/// The IDs of the network interfaces that use the security group `group_id`.
pub async fn ids_using_group(ctx: &StepCtx, group_id: &str) -> Result<Vec<String>> {
    Ok(ctx
        .aws()
        .ec2()
        .describe_network_interfaces()
        .filters(filter("group-id", group_id))
        .send()
        .await
        .aws("ec2:DescribeNetworkInterfaces", group_id)?
        .network_interfaces()
        .iter()
        .filter_map(|e| e.network_interface_id().map(str::to_string))
        .collect())
}

/// Waits for, and deletes, the ENIs VPC-attached Lambda functions left in the VPC.
///
/// Lambda's Hyperplane ENIs (interface type `lambda`, requester `...:AWSLambdaVPCENI...`,
/// description `AWS Lambda VPC ENI-<function>-...`) outlive the function for 5 to 30
/// minutes on AWS, and while they exist AWS refuses to delete their subnets and security
/// groups. `available` ones are deleted at once; `in-use` ones (a function being deleted,
/// or one not managed by this stack) are waited for, up to
/// `timeouts.dependency_violation_secs`; then the error names the ENIs still held.
pub async fn remove_lambda_enis(ctx: &StepCtx, vpc_id: &str) -> Result<()> {
    let ec2 = ctx.aws().ec2();
    let timeout = Duration::from_secs(ctx.cfg().timeouts.dependency_violation_secs.0);
    let held = std::sync::Mutex::new(Vec::<String>::new());
    let result = ctx
        .wait_for(
            &format!("the Lambda ENIs in {vpc_id} to be released"),
            timeout,
            || async {
                let out = ec2
                    .describe_network_interfaces()
                    .filters(filter("vpc-id", vpc_id))
                    .send()
                    .await
                    .aws("ec2:DescribeNetworkInterfaces", vpc_id)?;
                let mut still = Vec::new();
                for eni in out.network_interfaces().iter().filter(|e| is_lambda_eni(e)) {
                    let id = eni.network_interface_id().unwrap_or_default();
                    if eni.status() == Some(&NetworkInterfaceStatus::Available) {
                        ctx.check_cancelled()?;
                        match ec2
                            .delete_network_interface()
                            .network_interface_id(id)
                            .send()
                            .await
                            .aws("ec2:DeleteNetworkInterface", id)
                        {
                            Ok(_) => {
                                ctx.sh.reporter.message(
                                    ctx.step,
                                    &format!("deleted Lambda ENI {id} left by a deleted function"),
                                );
                                continue;
                            }
                            Err(e) if e.is_not_found() => continue,
                            // Taken again or still being released: wait for it.
                            Err(e) if e.code.as_deref() == Some("InvalidParameterValue") => {}
                            Err(e) if e.kind() == AwsErrorKind::DependencyViolation => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                    still.push(format!(
                        "{id} ({}, {})",
                        eni.status().map(|s| s.as_str()).unwrap_or("?"),
                        eni.description().unwrap_or_default()
                    ));
                }
                let done = still.is_empty();
                *held.lock().unwrap_or_else(|p| p.into_inner()) = still;
                Ok(done.then_some(()))
            },
        )
        .await;
    result.map_err(|e| {
        let held = held.into_inner().unwrap_or_else(|p| p.into_inner());
        if held.is_empty() {
            e
        } else {
            e.context(format!(
                "Lambda ENIs still hold subnets and security groups of {vpc_id}: {}; AWS \
                 releases them up to ~30 minutes after their function is deleted: run \
                 `down` again later, or raise timeouts.dependency_violation_secs",
                held.join(", ")
            ))
        }
    })
}
