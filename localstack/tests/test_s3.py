"""S3 replication: read back as put; the destination must exist and be versioned."""

from __future__ import annotations

from conftest import error_code, name

ROLE = "arn:aws:iam::123456789012:role/replication"


def _versioned_bucket(s3, bucket: str) -> None:
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _configuration(destination: str) -> dict:
    return {
        "Role": ROLE,
        "Rules": [
            {
                "ID": "dr",
                "Priority": 1,
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                "Destination": {
                    "Bucket": f"arn:aws:s3:::{destination}",
                    "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-west-2:123456789012:key/k"},
                },
            }
        ],
    }


def test_replication_reads_back_as_put(emu):
    s3 = emu.client("s3")
    source, replica = name("src"), name("dst")
    _versioned_bucket(s3, source)
    _versioned_bucket(s3, replica)
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=_configuration(replica))
    rule = s3.get_bucket_replication(Bucket=source)["ReplicationConfiguration"]["Rules"][0]
    assert rule["DeleteMarkerReplication"] == {"Status": "Enabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert rule["Filter"] == {"Prefix": ""}
    assert rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"].endswith("key/k")
    s3.delete_bucket_replication(Bucket=source)
    code, _, _ = error_code(lambda: s3.get_bucket_replication(Bucket=source))
    assert code == "ReplicationConfigurationNotFoundError"


def test_replication_destination_must_exist_and_be_versioned(emu):
    s3 = emu.client("s3")
    source, replica = name("src"), name("dst")
    _versioned_bucket(s3, source)
    code, message, status = error_code(
        lambda: s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=_configuration(replica))
    )
    assert (code, message, status) == ("InvalidRequest", "Destination bucket must exist.", 400)
    s3.create_bucket(Bucket=replica)
    code, message, _ = error_code(
        lambda: s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=_configuration(replica))
    )
    assert (code, message) == ("InvalidRequest", "Destination bucket must have versioning enabled.")


def test_replication_source_must_be_versioned_and_kms_rules_need_a_replica_key(emu):
    s3 = emu.client("s3")
    source, replica = name("src"), name("dst")
    s3.create_bucket(Bucket=source)
    _versioned_bucket(s3, replica)
    code, message, _ = error_code(
        lambda: s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=_configuration(replica))
    )
    assert (code, message) == ("InvalidRequest", "Versioning must be 'Enabled' on the bucket to apply a replication configuration")
    s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})

    no_key = _configuration(replica)
    del no_key["Rules"][0]["Destination"]["EncryptionConfiguration"]
    code, message, _ = error_code(lambda: s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=no_key))
    assert (code, message) == ("InvalidRequest", "ReplicaKmsKeyID must be specified if SseKmsEncryptedObjects tag is present.")
    no_criteria = _configuration(replica)
    del no_criteria["Rules"][0]["SourceSelectionCriteria"]
    code, message, _ = error_code(lambda: s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=no_criteria))
    assert (code, message) == ("InvalidRequest", "SseKmsEncryptedObjects must be specified if EncryptionConfiguration is present.")

    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=_configuration(replica))
    plain = _configuration(replica)  # neither: SSE-S3 objects only
    del plain["Rules"][0]["SourceSelectionCriteria"]
    del plain["Rules"][0]["Destination"]["EncryptionConfiguration"]
    s3.put_bucket_replication(Bucket=source, ReplicationConfiguration=plain)


def test_bucket_versioning_reads_back_as_a_versioning_configuration(emu):
    s3 = emu.client("s3")
    bucket = name("plain")
    s3.create_bucket(Bucket=bucket)
    out = s3.get_bucket_versioning(Bucket=bucket)
    assert "Status" not in out, out
    # The AWS SDK for Rust reads the root element strictly: it must be VersioningConfiguration.
    import urllib.request

    with urllib.request.urlopen(f"{emu.url}/{bucket}?versioning") as r:
        body = r.read().decode()
    assert "<VersioningConfiguration" in body and "GetBucketVersioningResponse" not in body, body
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with urllib.request.urlopen(f"{emu.url}/{bucket}?versioning") as r:
        body = r.read().decode()
    assert "<VersioningConfiguration" in body and "<Status>Enabled</Status>" in body, body
