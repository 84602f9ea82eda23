"""CloudWatch Logs: a log group's KMS key must let logs.<region>.amazonaws.com use
it; AssociateKmsKey / DisassociateKmsKey."""

from __future__ import annotations

import json

from conftest import error_code, name

ROOT = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "kms:*", "Resource": "*"}
LOGS_ACTIONS = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]


def _key(emu, *statements) -> str:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [ROOT, *statements]})
    return emu.client("kms").create_key(Policy=policy)["KeyMetadata"]["Arn"]


def _logs_statement(condition=None, region="us-east-1"):
    statement = {"Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                 "Action": LOGS_ACTIONS, "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return statement


def _refused(message, group):
    return ("AccessDeniedException",
            f"The specified KMS key does not exist or is not allowed to be used with Arn "
            f"'arn:aws:logs:us-east-1:123456789012:log-group:{group}'", 400) == message


def test_log_group_key_policy_must_allow_cloudwatch_logs(emu):
    logs = emu.client("logs")
    group = f"/ecs/{name('svc')}"
    # The default key policy (account root only) does not let the service in.
    plain = emu.client("kms").create_key()["KeyMetadata"]["Arn"]
    assert _refused(error_code(lambda: logs.create_log_group(logGroupName=group, kmsKeyId=plain)), group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    # Another region's principal, a condition on other log groups: refused.
    assert _refused(error_code(lambda: logs.create_log_group(
        logGroupName=group, kmsKeyId=_key(emu, _logs_statement(region="eu-west-1")))), group)
    other_groups = _key(emu, _logs_statement({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:/other/*"}}))
    assert _refused(error_code(lambda: logs.create_log_group(logGroupName=group, kmsKeyId=other_groups)), group)
    # A key that does not exist, or is pending deletion.
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    assert _refused(error_code(lambda: logs.create_log_group(logGroupName=group, kmsKeyId=missing)), group)

    # The stack's key: ArnLike on every log group of the account and region.
    stack_key = _key(emu, _logs_statement({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"}}))
    logs.create_log_group(logGroupName=group, kmsKeyId=stack_key)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["kmsKeyId"] == stack_key
    exact = _key(emu, _logs_statement({"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:123456789012:log-group:{group}-2"}}))
    logs.create_log_group(logGroupName=f"{group}-2", kmsKeyId=exact)
    logs.create_log_group(logGroupName=f"{group}-3")  # no key: nothing to check

    emu.client("kms").schedule_key_deletion(KeyId=stack_key.split("/")[-1], PendingWindowInDays=7)
    assert _refused(error_code(lambda: logs.create_log_group(logGroupName=f"{group}-4", kmsKeyId=stack_key)), f"{group}-4")


def test_associate_and_disassociate_kms_key(emu):
    logs = emu.client("logs")
    group = f"/aws/lambda/{name('fn')}"
    logs.create_log_group(logGroupName=group)
    plain = emu.client("kms").create_key()["KeyMetadata"]["Arn"]
    assert _refused(error_code(lambda: logs.associate_kms_key(logGroupName=group, kmsKeyId=plain)), group)
    assert "kmsKeyId" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]

    key = _key(emu, _logs_statement({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"}}))
    logs.associate_kms_key(logGroupName=group, kmsKeyId=key)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["kmsKeyId"] == key
    logs.disassociate_kms_key(logGroupName=group)
    assert "kmsKeyId" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    code, _, _ = error_code(lambda: logs.associate_kms_key(logGroupName=name("/missing"), kmsKeyId=key))
    assert code == "ResourceNotFoundException"


def test_associate_and_disassociate_kms_key_answer_empty_json(emu):
    logs = emu.client("logs")
    group = f"/aws/ecs/{name('svc')}"
    logs.create_log_group(logGroupName=group)
    key = _key(emu, _logs_statement())
    answers = {}

    def capture(http_response, model, **_):
        answers[model.name] = (http_response.headers.get("Content-Type"), http_response.content)

    logs.meta.events.register("after-call.cloudwatch-logs", capture)
    try:
        logs.associate_kms_key(logGroupName=group, kmsKeyId=key)
        logs.disassociate_kms_key(logGroupName=group)
    finally:
        logs.meta.events.unregister("after-call.cloudwatch-logs", capture)
    for operation in ("AssociateKmsKey", "DisassociateKmsKey"):
        content_type, body = answers[operation]
        assert content_type == "application/x-amz-json-1.1" and json.loads(body) == {}, operation
