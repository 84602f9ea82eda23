"""S3 rules: bucket replication reads back as it was put, and needs a versioned
destination that exists.

moto answers GetBucketReplication with every rule's DeleteMarkerReplication
Disabled, an empty Filter and no SourceSelectionCriteria, whatever was put, so a
client that compares the configuration with the one it wants would put it again
on every run. And moto accepts a destination bucket that does not exist or is
not versioned, which AWS refuses with InvalidRequest.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.s3.exceptions import (
    MissingBucket,
    ReplicationConfigurationNotFoundError,
    S3ClientError,
)
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response

from .patching import rule, wrap

# The members of a ReplicationRule, in the order of the S3 API reference.
_RULE_MEMBERS = (
    "ID",
    "Priority",
    "Prefix",
    "Filter",
    "Status",
    "SourceSelectionCriteria",
    "ExistingObjectReplication",
    "Destination",
    "DeleteMarkerReplication",
)


class ReplicationDestinationError(S3ClientError):
    code = "InvalidRequest"

    def __init__(self, message: str):
        super().__init__("InvalidRequest", message)


def _rules(replication: dict[str, Any]) -> list[dict[str, Any]]:
    rules = replication.get("Rule") or []
    return rules if isinstance(rules, list) else [rules]


@rule("s3", "fidelity")
def replication_configuration_reads_back_as_put() -> None:
    """GetBucketReplication returns each rule as it was put: its filter,
    SourceSelectionCriteria (e.g. SseKmsEncryptedObjects), destination with
    EncryptionConfiguration, and DeleteMarkerReplication (Disabled only when the
    rule did not say)."""

    @wrap(S3Response, "get_bucket_replication")
    def get_bucket_replication(original: Any, self: Any) -> Any:
        self.data["Action"] = "GetBucketReplication"
        replication = self.backend.get_bucket_replication(self.bucket_name)
        if not replication:
            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        rules = []
        for stored in _rules(replication):
            out = {k: stored[k] for k in _RULE_MEMBERS if stored.get(k) is not None}
            # An empty <Filter><Prefix></Prefix></Filter> parses as {"Prefix": None}.
            filt = stored.get("Filter")
            if "Prefix" not in out and (filt is None or filt == {"Prefix": None}):
                out["Filter"] = {"Prefix": ""}
            out.setdefault("DeleteMarkerReplication", {"Status": "Disabled"})
            rules.append(out)
        return self.serialized(
            ActionResult(
                {"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}}
            )
        )


@rule("s3", "refusal")
def replication_destination_must_exist_and_be_versioned() -> None:
    """PutBucketReplication fails with InvalidRequest "Destination bucket must
    exist." or "Destination bucket must have versioning enabled." (S3 replicates
    object versions, so both sides keep them)."""

    @wrap(S3Backend, "put_bucket_replication")
    def put_bucket_replication(
        original: Any, self: Any, bucket_name: str, replication: dict[str, Any]
    ) -> Any:
        for r in _rules(replication):
            arn = (r.get("Destination") or {}).get("Bucket") or ""
            target = arn.split(":::")[-1]
            try:
                bucket = self.get_bucket(target)
            except MissingBucket:
                raise ReplicationDestinationError("Destination bucket must exist.")
            if bucket.versioning_status != "Enabled":
                raise ReplicationDestinationError(
                    "Destination bucket must have versioning enabled."
                )
        return original(self, bucket_name, replication)


@rule("s3", "refusal")
def replication_source_must_be_versioned() -> None:
    """PutBucketReplication on a bucket whose versioning is not Enabled fails with
    InvalidRequest "Versioning must be 'Enabled' on the bucket to apply a
    replication configuration"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-requirements.html).
    """

    @wrap(S3Backend, "put_bucket_replication")
    def put_bucket_replication(original: Any, self: Any, bucket_name: str, replication: dict[str, Any]) -> Any:
        if self.get_bucket(bucket_name).versioning_status != "Enabled":
            raise ReplicationDestinationError(
                "Versioning must be 'Enabled' on the bucket to apply a replication configuration"
            )
        return original(self, bucket_name, replication)


@rule("s3", "refusal")
def kms_object_replication_needs_a_replica_key() -> None:
    """PutBucketReplication fails with InvalidRequest "ReplicaKmsKeyID must be
    specified if SseKmsEncryptedObjects tag is present." for a rule that selects
    SSE-KMS objects (SourceSelectionCriteria.SseKmsEncryptedObjects Enabled)
    without Destination.EncryptionConfiguration.ReplicaKmsKeyID, and "SseKmsEncryptedObjects
    must be specified if EncryptionConfiguration is present." the other way round;
    without both, SSE-KMS objects are not replicated at all
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html).
    """

    @wrap(S3Backend, "put_bucket_replication")
    def put_bucket_replication(original: Any, self: Any, bucket_name: str, replication: dict[str, Any]) -> Any:
        for r in _rules(replication):
            criteria = ((r.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects") or {})
            selects_kms = criteria.get("Status") == "Enabled"
            encryption = (r.get("Destination") or {}).get("EncryptionConfiguration")
            replica_key = (encryption or {}).get("ReplicaKmsKeyID")
            if selects_kms and not replica_key:
                raise ReplicationDestinationError(
                    "ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present."
                )
            if encryption is not None and not criteria:
                raise ReplicationDestinationError(
                    "SseKmsEncryptedObjects must be specified if EncryptionConfiguration is present."
                )
        return original(self, bucket_name, replication)


@rule("s3", "fidelity")
def bucket_versioning_reads_back_as_a_versioning_configuration() -> None:
    """GetBucketVersioning answers a `<VersioningConfiguration>` root with the `Status`
    (`Enabled` or `Suspended`), and an empty one for a bucket whose versioning was never set
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketVersioning.html: "If the
    versioning state has never been set on a bucket, then no versioning state is returned").
    moto answered a `<GetBucketVersioningResponse>` root, which the AWS SDK for Rust cannot
    parse, so reading any bucket's versioning failed.
    """

    @wrap(S3Response, "get_bucket_versioning")
    def get_bucket_versioning(original: Any, self: Any) -> Any:
        status = self.backend.get_bucket_versioning(self.bucket_name)
        inner = f"<Status>{status}</Status>" if status else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{inner}</VersioningConfiguration>"
        )
        return 200, {"Content-Type": "application/xml"}, body
