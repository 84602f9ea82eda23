"""RDS / Aurora refusals and the creating/deleting waits."""

from __future__ import annotations

from conftest import error_code, name


def _cluster(emu, vpc, **extra):
    rds = emu.client("rds")
    group = name("subnets")
    rds.create_db_subnet_group(DBSubnetGroupName=group, DBSubnetGroupDescription="t", SubnetIds=vpc["subnets"])
    cluster_id = name("aurora")
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=cluster_id, Engine="aurora-postgresql", MasterUsername="app",
        MasterUserPassword="password-123", DBSubnetGroupName=group, **extra,
    )["DBCluster"]
    return rds, group, cluster_id, cluster


def _cluster_status(rds, cluster_id):
    try:
        return rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["Status"]
    except rds.exceptions.DBClusterNotFoundFault:
        return "gone"


def _instance_status(rds, instance_id):
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]["DBInstanceStatus"]
    except rds.exceptions.DBInstanceNotFoundFault:
        return "gone"


def test_subnet_group_in_use_cannot_be_deleted(emu, vpc):
    rds, group, cluster_id, _ = _cluster(emu, vpc)
    code, message, _ = error_code(lambda: rds.delete_db_subnet_group(DBSubnetGroupName=group))
    assert code == "InvalidDBSubnetGroupStateFault" and cluster_id in message
    rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "gone")
    rds.delete_db_subnet_group(DBSubnetGroupName=group)


def test_instance_subnet_group_in_use_cannot_be_deleted(emu, vpc):
    rds = emu.client("rds")
    group = name("subnets")
    rds.create_db_subnet_group(DBSubnetGroupName=group, DBSubnetGroupDescription="t", SubnetIds=vpc["subnets"])
    instance = name("pg")
    rds.create_db_instance(DBInstanceIdentifier=instance, Engine="postgres", DBInstanceClass="db.t3.micro",
                           MasterUsername="app", MasterUserPassword="password-123", AllocatedStorage=20,
                           DBSubnetGroupName=group)
    assert error_code(lambda: rds.delete_db_subnet_group(DBSubnetGroupName=group))[0] == "InvalidDBSubnetGroupStateFault"


def test_parameter_groups_in_use_cannot_be_deleted(emu, vpc):
    rds = emu.client("rds")
    cluster_pg, instance_pg = name("cpg"), name("pg")
    rds.create_db_cluster_parameter_group(DBClusterParameterGroupName=cluster_pg, DBParameterGroupFamily="aurora-postgresql15", Description="t")
    rds.create_db_parameter_group(DBParameterGroupName=instance_pg, DBParameterGroupFamily="aurora-postgresql15", Description="t")
    rds_, _, cluster_id, _ = _cluster(emu, vpc, DBClusterParameterGroupName=cluster_pg)
    instance_id = name("writer")
    rds.create_db_instance(DBInstanceIdentifier=instance_id, DBClusterIdentifier=cluster_id, Engine="aurora-postgresql",
                           DBInstanceClass="db.serverless", DBParameterGroupName=instance_pg)
    assert error_code(lambda: rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=cluster_pg))[0] == "InvalidDBParameterGroupState"
    assert error_code(lambda: rds.delete_db_parameter_group(DBParameterGroupName=instance_pg))[0] == "InvalidDBParameterGroupState"
    rds.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "gone")
    rds.delete_db_parameter_group(DBParameterGroupName=instance_pg)
    rds.delete_db_cluster_parameter_group(DBClusterParameterGroupName=cluster_pg)


def test_cluster_with_deletion_protection_cannot_be_deleted(emu, vpc):
    rds, _, cluster_id, _ = _cluster(emu, vpc, DeletionProtection=True)
    code, message, _ = error_code(lambda: rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True))
    assert code == "InvalidParameterCombination" and "deletion protection" in message
    rds.modify_db_cluster(DBClusterIdentifier=cluster_id, DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)


def test_cluster_with_live_instance_cannot_be_deleted(emu, vpc):
    rds, _, cluster_id, _ = _cluster(emu, vpc)
    instance_id = name("writer")
    rds.create_db_instance(DBInstanceIdentifier=instance_id, DBClusterIdentifier=cluster_id,
                           Engine="aurora-postgresql", DBInstanceClass="db.serverless")
    assert error_code(lambda: rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True))[0] == "InvalidDBClusterStateFault"


def test_aurora_waits_creating_available_deleting_gone(emu, vpc):
    emu.scale_for("db-instance.delete", 1.2)  # create 0.9 s, instance delete 1.2 s
    rds, group, cluster_id, cluster = _cluster(emu, vpc)
    instance_id = name("writer")
    instance = rds.create_db_instance(DBInstanceIdentifier=instance_id, DBClusterIdentifier=cluster_id,
                                      Engine="aurora-postgresql", DBInstanceClass="db.serverless")["DBInstance"]
    assert cluster["Status"] == "creating" and _cluster_status(rds, cluster_id) == "creating"
    assert instance["DBInstanceStatus"] == "creating" and _instance_status(rds, instance_id) == "creating"
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "available")
    emu.wait_for(lambda: _instance_status(rds, instance_id), "available")

    deleting = rds.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True)["DBInstance"]
    assert deleting["DBInstanceStatus"] == "deleting" and _instance_status(rds, instance_id) == "deleting"
    assert error_code(lambda: rds.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True))[0] == "InvalidDBInstanceState"
    # AWS lets the cluster delete start once every member is deleting.
    assert rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)["DBCluster"]["Status"] == "deleting"
    assert _cluster_status(rds, cluster_id) == "deleting"
    assert error_code(lambda: rds.delete_db_subnet_group(DBSubnetGroupName=group))[0] == "InvalidDBSubnetGroupStateFault"
    emu.wait_for(lambda: _instance_status(rds, instance_id), "gone")
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "gone")
    rds.delete_db_subnet_group(DBSubnetGroupName=group)

    instance_events = [(e["from"], e["to"]) for e in emu.events(instance_id)]
    assert instance_events == [("creating", "available"), ("available", "deleting"), ("deleting", "gone")]
    cluster_events = emu.events(cluster_id)
    assert [(e["from"], e["to"]) for e in cluster_events] == [
        ("creating", "available"), ("available", "deleting"), ("deleting", "gone")
    ]
    # The cluster is gone only after its last instance.
    assert cluster_events[-1]["ts"] >= emu.events(instance_id)[-1]["ts"]


def test_modify_does_not_end_the_creating_wait(emu, vpc):
    emu.scale_for("db-cluster.create", 0.8)
    rds, _, cluster_id, _ = _cluster(emu, vpc)
    modified = rds.modify_db_cluster(DBClusterIdentifier=cluster_id, BackupRetentionPeriod=7, ApplyImmediately=True)
    assert modified["DBCluster"]["Status"] == "creating"
    assert _cluster_status(rds, cluster_id) == "creating"
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "available")


def _automated_snapshots(rds, cluster_id):
    return [s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots(SnapshotType="automated")["DBClusterSnapshots"]
            if s["DBClusterIdentifier"] == cluster_id]


def test_duplicate_cluster_is_already_exists_and_recreate_in_the_same_minute_works(emu, vpc):
    rds, group, cluster_id, _ = _cluster(emu, vpc)
    create = dict(DBClusterIdentifier=cluster_id, Engine="aurora-postgresql", MasterUsername="app",
                  MasterUserPassword="password-123", DBSubnetGroupName=group)
    assert error_code(lambda: rds.create_db_cluster(**create)) == ("DBClusterAlreadyExistsFault", "DB Cluster already exists", 400)
    assert error_code(lambda: rds.create_db_cluster(**{**create, "DBClusterIdentifier": cluster_id.upper()}))[0] == "DBClusterAlreadyExistsFault"
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "available")  # the first one, not replaced
    assert len(_automated_snapshots(rds, cluster_id)) == 1

    # DeleteAutomatedBackups defaults to true: the snapshot goes with the cluster.
    rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "gone")
    assert _automated_snapshots(rds, cluster_id) == []
    assert rds.create_db_cluster(**create)["DBCluster"]["Status"] == "creating"
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "available")

    # Retained backups (DeleteAutomatedBackups=false) do not break the next create either.
    rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True, DeleteAutomatedBackups=False)
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "gone")
    assert len(_automated_snapshots(rds, cluster_id)) == 1
    rds.create_db_cluster(**create)
    emu.wait_for(lambda: _cluster_status(rds, cluster_id), "available")
    rds.delete_db_cluster(DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)
