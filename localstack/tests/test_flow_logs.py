"""VPC flow logs to CloudWatch Logs: the delivery role is trusted by the flow logs
service and may write to the group."""

from __future__ import annotations

from conftest import error_code, make_role, name

DELIVER = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"]


def _flow_log(emu, vpc, role, group):
    return emu.client("ec2").create_flow_logs(
        ResourceType="VPC", ResourceIds=[vpc["vpc"]], TrafficType="ALL", LogDestinationType="cloud-watch-logs",
        LogGroupName=group, DeliverLogsPermissionArn=role)


def _delivery(emu, flow_log_id):
    fl = emu.client("ec2").describe_flow_logs(FlowLogIds=[flow_log_id])["FlowLogs"][0]
    return fl["DeliverLogsStatus"], fl.get("DeliverLogsErrorMessage")


def test_flow_log_role_must_be_trusted_and_allowed_to_deliver(emu, vpc):
    group = name("/vpc/flow")
    emu.client("logs").create_log_group(logGroupName=group)
    untrusted = make_role(emu, "lambda.amazonaws.com", [{"Effect": "Allow", "Action": DELIVER, "Resource": "*"}])
    assert error_code(lambda: _flow_log(emu, vpc, untrusted, group)) == (
        "InvalidParameter", f"Unable to assume given IAM role: '{untrusted}'", 400)
    missing = "arn:aws:iam::123456789012:role/does-not-exist"
    assert error_code(lambda: _flow_log(emu, vpc, missing, group))[0] == "InvalidParameter"

    # Trusted but not allowed to write: created, delivery FAILED with "Access error".
    mute = make_role(emu, "vpc-flow-logs.amazonaws.com", [{"Effect": "Allow", "Action": DELIVER,
                                                           "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:/other:*"}])
    created = _flow_log(emu, vpc, mute, group)["FlowLogIds"][0]
    assert _delivery(emu, created) == ("FAILED", "Access error")
    emu.client("ec2").delete_flow_logs(FlowLogIds=[created])

    writer = make_role(emu, "vpc-flow-logs.amazonaws.com", [{"Effect": "Allow", "Action": DELIVER,
                                                             "Resource": f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"}])
    assert _delivery(emu, _flow_log(emu, vpc, writer, group)["FlowLogIds"][0]) == ("SUCCESS", None)
