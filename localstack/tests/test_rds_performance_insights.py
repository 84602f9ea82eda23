"""RDS Performance Insights: kept and described as AWS does, and the key fixed once set."""

from __future__ import annotations

from conftest import error_code, name


def _instance(emu, vpc, **pi):
    """An Aurora PostgreSQL cluster with one instance created with the `pi` parameters."""
    rds = emu.client("rds")
    group = name("subnets")
    rds.create_db_subnet_group(DBSubnetGroupName=group, DBSubnetGroupDescription="t", SubnetIds=vpc["subnets"])
    cluster_id = name("aurora")
    rds.create_db_cluster(DBClusterIdentifier=cluster_id, Engine="aurora-postgresql", MasterUsername="app",
                          MasterUserPassword="password-123", DBSubnetGroupName=group)
    instance_id = name("writer")
    rds.create_db_instance(DBInstanceIdentifier=instance_id, DBClusterIdentifier=cluster_id,
                           Engine="aurora-postgresql", DBInstanceClass="db.serverless", **pi)
    return rds, instance_id


def _pi(rds, instance_id):
    i = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
    return (i.get("PerformanceInsightsEnabled"), i.get("PerformanceInsightsKMSKeyId"),
            i.get("PerformanceInsightsRetentionPeriod"))


def _key(emu):
    kms = emu.client("kms")
    key = kms.create_key(Description="pi")["KeyMetadata"]
    alias = f"alias/{name('pi')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return key["Arn"], key["KeyId"], alias


def test_performance_insights_is_kept_and_described_with_the_key_arn(emu, vpc):
    arn, key_id, alias = _key(emu)
    # Given as an alias: AWS describes the key's ARN; the retention defaults to 7 days.
    rds, instance_id = _instance(emu, vpc, EnablePerformanceInsights=True, PerformanceInsightsKMSKeyId=alias)
    assert _pi(rds, instance_id) == (True, arn, 7)

    # Turned off: AWS still describes the key, which stays with the instance.
    rds.modify_db_instance(DBInstanceIdentifier=instance_id, EnablePerformanceInsights=False, ApplyImmediately=True)
    assert _pi(rds, instance_id) == (False, arn, None)
    # On again with the same key (here by its ID), 31 days.
    rds.modify_db_instance(DBInstanceIdentifier=instance_id, EnablePerformanceInsights=True,
                           PerformanceInsightsKMSKeyId=key_id, PerformanceInsightsRetentionPeriod=31,
                           ApplyImmediately=True)
    assert _pi(rds, instance_id) == (True, arn, 31)
    # A modify that does not touch PI leaves it as it is.
    rds.modify_db_instance(DBInstanceIdentifier=instance_id, AutoMinorVersionUpgrade=True, ApplyImmediately=True)
    assert _pi(rds, instance_id) == (True, arn, 31)


def test_without_a_key_rds_uses_the_aws_managed_key_and_pi_is_off_by_default(emu, vpc):
    rds, off = _instance(emu, vpc)
    # AWS always says whether PI is on.
    assert _pi(rds, off) == (False, None, None)
    rds, on = _instance(emu, vpc, EnablePerformanceInsights=True)
    managed = emu.client("kms").describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["Arn"]
    assert _pi(rds, on) == (True, managed, 7)
    # Turning PI on later without a key: the same managed key.
    rds.modify_db_instance(DBInstanceIdentifier=off, EnablePerformanceInsights=True, ApplyImmediately=True)
    assert _pi(rds, off) == (True, managed, 7)


def test_the_performance_insights_key_cannot_change(emu, vpc):
    first, _, _ = _key(emu)
    other, _, other_alias = _key(emu)
    rds, instance_id = _instance(emu, vpc, EnablePerformanceInsights=True, PerformanceInsightsKMSKeyId=first)
    change = dict(DBInstanceIdentifier=instance_id, EnablePerformanceInsights=True, ApplyImmediately=True)
    code, message, status = error_code(lambda: rds.modify_db_instance(**change, PerformanceInsightsKMSKeyId=other))
    assert (code, message, status) == ("InvalidParameterCombination", "You can't change your Performance Insights KMS key.", 400)
    # Not while PI is off either: the key stays with the instance.
    rds.modify_db_instance(DBInstanceIdentifier=instance_id, EnablePerformanceInsights=False, ApplyImmediately=True)
    assert error_code(lambda: rds.modify_db_instance(**change, PerformanceInsightsKMSKeyId=other_alias))[0] == "InvalidParameterCombination"
    assert _pi(rds, instance_id) == (False, first, None)
    # The key it has is accepted, and so is turning PI on without naming one.
    rds.modify_db_instance(**change)
    assert _pi(rds, instance_id) == (True, first, 7)
    rds.modify_db_instance(**change, PerformanceInsightsKMSKeyId=first)
    assert _pi(rds, instance_id) == (True, first, 7)
    # An instance that never had PI takes any key.
    rds, fresh = _instance(emu, vpc)
    rds.modify_db_instance(DBInstanceIdentifier=fresh, EnablePerformanceInsights=True,
                           PerformanceInsightsKMSKeyId=other, ApplyImmediately=True)
    assert _pi(rds, fresh) == (True, other, 7)
