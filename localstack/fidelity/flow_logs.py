"""VPC flow logs to CloudWatch Logs: the delivery role must be assumable by the
flow logs service and allowed to write to the log group.

moto accepts any DeliverLogsPermissionArn. AWS refuses CreateFlowLogs when
vpc-flow-logs.amazonaws.com cannot assume the role, and creates the flow log
but never delivers (DeliverLogsStatus FAILED, "Access error") when the role may
not write to the group.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import EC2Backend

from .patching import rule, wrap
from .policy_eval import first_denied, role_trusts

FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"
DELIVERY_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams")


def _log_group_name(log_group_name: str | None, log_destination: str | None) -> str:
    if log_group_name:
        return log_group_name
    # arn:aws:logs:<region>:<account>:log-group:<name>[:*]
    name = (log_destination or "").split(":log-group:", 1)[-1]
    return name[:-2] if name.endswith(":*") else name


@rule("ec2", "refusal")
def flow_log_role_must_be_trusted_and_allowed_to_deliver() -> None:
    """CreateFlowLogs to CloudWatch Logs fails with InvalidParameter "Unable to
    assume given IAM role: '<arn>'" unless the DeliverLogsPermissionArn role
    trusts vpc-flow-logs.amazonaws.com; when the role may not
    logs:CreateLogStream, PutLogEvents, DescribeLogGroups and DescribeLogStreams on
    the group, the flow log is created with DeliverLogsStatus FAILED and
    DeliverLogsErrorMessage "Access error"
    (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html).
    """

    @wrap(EC2Backend, "create_flow_logs")
    def create_flow_logs(
        original: Any,
        self: Any,
        resource_type: str,
        resource_ids: list[str],
        traffic_type: str,
        deliver_logs_permission_arn: str,
        log_destination_type: str,
        log_destination: str,
        log_group_name: str,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        to_logs = (log_destination_type or "cloud-watch-logs") == "cloud-watch-logs"
        role = deliver_logs_permission_arn
        if to_logs and role and not role_trusts(role, FLOW_LOGS_SERVICE, {"aws:SourceAccount": self.account_id}):
            raise EC2ClientError("InvalidParameter", f"Unable to assume given IAM role: '{role}'")
        flow_logs, unsuccessful = original(
            self, resource_type, resource_ids, traffic_type, deliver_logs_permission_arn,
            log_destination_type, log_destination, log_group_name, *args, **kwargs,
        )
        if to_logs and role:
            name = _log_group_name(log_group_name, log_destination)
            group = f"arn:aws:logs:{self.region_name}:{self.account_id}:log-group:{name}:*"
            if first_denied(role, [(a, group) for a in DELIVERY_ACTIONS]):
                for flow_log in flow_logs:
                    flow_log.deliver_logs_status = "FAILED"
                    flow_log.deliver_logs_error_message = "Access error"
        return flow_logs, unsuccessful
