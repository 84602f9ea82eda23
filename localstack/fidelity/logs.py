"""CloudWatch Logs rules: a log group can only be encrypted with a KMS key whose
key policy lets the regional Logs service use it; AssociateKmsKey and
DisassociateKmsKey exist.

moto stores any kmsKeyId on CreateLogGroup (even one that does not exist) and
has no AssociateKmsKey / DisassociateKmsKey at all (HTTP 500). AWS calls KMS as
the service principal logs.<region>.amazonaws.com with the encryption context
{"aws:logs:arn": <log group ARN>} and refuses the request when the key policy
does not allow it.
"""

from __future__ import annotations

import re
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.models import kms_backends
from moto.logs.exceptions import ResourceNotFoundException
from moto.logs.models import LogsBackend
from moto.logs.responses import LogsResponse

from .kms import _unusable_reason
from .patching import rule, wrap
from .policy_eval import resource_policy_allows

# What Logs does with the key (the documented key policy grants kms:Encrypt*,
# kms:Decrypt*, kms:ReEncrypt*, kms:GenerateDataKey*, kms:Describe*).
LOGS_KEY_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
)


def _log_group_arn(backend: Any, name: str) -> str:
    return f"arn:aws:logs:{backend.region_name}:{backend.account_id}:log-group:{name}"


def _key_usable_by_logs(backend: Any, key_id: str, log_group_name: str) -> bool:
    match = re.fullmatch(r"arn:aws:kms:([a-z0-9-]+):(\d{12}):key/.+", key_id or "")
    if not match or match.group(1) != backend.region_name:
        return False  # Logs takes a key ARN, in the log group's region
    kms = kms_backends[match.group(2)][match.group(1)]
    try:
        key = kms.keys.get(kms.any_id_to_key_id(key_id))
    except Exception:
        key = None
    if key is None or _unusable_reason(key):
        return False
    principal = {"Service": f"logs.{backend.region_name}.amazonaws.com"}
    context = {
        "kms:EncryptionContext:aws:logs:arn": _log_group_arn(backend, log_group_name),
        "kms:CallerAccount": backend.account_id,
    }
    return all(
        resource_policy_allows(key.policy, principal, action, key.arn, context) for action in LOGS_KEY_ACTIONS
    )


def _check_key(backend: Any, key_id: str, log_group_name: str) -> None:
    if not _key_usable_by_logs(backend, key_id, log_group_name):
        raise JsonRESTError(
            "AccessDeniedException",
            "The specified KMS key does not exist or is not allowed to be used with Arn "
            f"'{_log_group_arn(backend, log_group_name)}'",
        )


@rule("logs", "refusal")
def log_group_key_must_allow_cloudwatch_logs() -> None:
    """CreateLogGroup with kmsKeyId, and AssociateKmsKey, fail with
    AccessDeniedException (HTTP 400) "The specified KMS key does not exist or is
    not allowed to be used with Arn 'arn:aws:logs:<region>:<account>:log-group:<name>'"
    unless the key exists in the group's region, is enabled, and its key policy
    allows the service principal logs.<region>.amazonaws.com kms:Encrypt*,
    Decrypt*, ReEncrypt*, GenerateDataKey*, Describe* with the encryption context
    kms:EncryptionContext:aws:logs:arn = the log group's ARN (conditions such as
    ArnLike / ArnEquals on it are evaluated)
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
    """

    @wrap(LogsBackend, "create_log_group")
    def create_log_group(original: Any, self: Any, log_group_name: str, tags: Any, **kwargs: Any) -> Any:
        if kwargs.get("kmsKeyId") and log_group_name not in self.groups:
            _check_key(self, kwargs["kmsKeyId"], log_group_name)
        return original(self, log_group_name, tags, **kwargs)


# An operation without output answers an empty JSON object, as AWS does.
_EMPTY_JSON = (200, {"Content-Type": "application/x-amz-json-1.1"}, "{}")


@rule("logs", "missing-api")
def associate_and_disassociate_kms_key() -> None:
    """AssociateKmsKey sets a log group's kmsKeyId (after the key check above);
    DisassociateKmsKey clears it. Unknown group: ResourceNotFoundException. moto
    answers both with HTTP 500.

    Both answer `{}` with Content-Type application/x-amz-json-1.1 (their output has no
    members; AWS's JSON protocol answers an empty object), not an empty text/html body.
    """

    def associate_kms_key(self: Any) -> Any:
        name = self._get_param("logGroupName")
        key_id = self._get_param("kmsKeyId")
        group = self.logs_backend.groups.get(name)
        if group is None:
            raise ResourceNotFoundException()
        _check_key(self.logs_backend, key_id, name)
        group.kms_key_id = key_id
        return _EMPTY_JSON

    def disassociate_kms_key(self: Any) -> Any:
        name = self._get_param("logGroupName")
        group = self.logs_backend.groups.get(name)
        if group is None:
            raise ResourceNotFoundException()
        group.kms_key_id = None
        return _EMPTY_JSON

    LogsResponse.associate_kms_key = associate_kms_key
    LogsResponse.disassociate_kms_key = disassociate_kms_key
