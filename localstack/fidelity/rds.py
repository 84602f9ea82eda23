"""RDS / Aurora rules: in-use refusals and the creating/deleting waits.

moto deletes subnet and parameter groups that clusters still use, reports
clusters and instances `available` at once and forgets them the moment they
are deleted. AWS keeps them `creating` for minutes and `deleting` for minutes
(describe keeps returning them until they are gone). moto also drops an
instance's Performance Insights settings, which AWS keeps and describes.
"""

from __future__ import annotations

from typing import Any

from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBCluster, DBInstance, RDSBackend

from .patching import rule, wrap
from .timeline import TIMELINE, scaled


def _instance_subnet_group(db: Any) -> str | None:
    group = getattr(db, "db_subnet_group", None)
    if group is not None and getattr(group, "name", None):
        return group.name
    return getattr(db, "_db_subnet_group_name", None)


@rule("rds", "refusal")
def db_subnet_group_in_use_cannot_be_deleted() -> None:
    """DeleteDBSubnetGroup fails with InvalidDBSubnetGroupStateFault while a
    cluster or instance (including one still `deleting`) uses the group.

    AWS: "Cannot delete the subnet group '<name>' because at least one database
    cluster: <id> is still using it." (or "... database instance: <id> ...").
    """

    @wrap(RDSBackend, "delete_subnet_group")
    def delete_subnet_group(original: Any, self: Any, subnet_name: str) -> Any:
        wanted = subnet_name.lower()
        for cluster in self.clusters.values():
            if (cluster.db_subnet_group_name or "").lower() == wanted:
                raise RDSClientError(
                    "InvalidDBSubnetGroupStateFault",
                    f"Cannot delete the subnet group '{subnet_name}' because at least one "
                    f"database cluster: {cluster.db_cluster_identifier} is still using it.",
                )
        for db in self.databases.values():
            if (_instance_subnet_group(db) or "").lower() == wanted:
                raise RDSClientError(
                    "InvalidDBSubnetGroupStateFault",
                    f"Cannot delete the subnet group '{subnet_name}' because at least one "
                    f"database instance: {db.db_instance_identifier} is still using it.",
                )
        return original(self, subnet_name)


@rule("rds", "refusal")
def db_parameter_group_in_use_cannot_be_deleted() -> None:
    """DeleteDBParameterGroup fails with InvalidDBParameterGroupState while an
    instance (including one still `deleting`) uses it.

    AWS: "One or more database instances are still members of this parameter
    group <name>, so the group cannot be deleted".
    """

    @wrap(RDSBackend, "delete_db_parameter_group")
    def delete_db_parameter_group(original: Any, self: Any, db_parameter_group_name: str) -> Any:
        name = db_parameter_group_name
        if any(getattr(db, "db_parameter_group_name", None) == name for db in self.databases.values()):
            raise RDSClientError(
                "InvalidDBParameterGroupState",
                "One or more database instances are still members of this parameter "
                f"group {name}, so the group cannot be deleted",
            )
        return original(self, name)


@rule("rds", "refusal")
def db_cluster_parameter_group_in_use_cannot_be_deleted() -> None:
    """DeleteDBClusterParameterGroup fails with InvalidDBParameterGroupState while
    a cluster (including one still `deleting`) uses it.

    AWS: "One or more clusters are still members of this parameter group <name>,
    so the group cannot be deleted".
    """

    @wrap(RDSBackend, "delete_db_cluster_parameter_group")
    def delete_db_cluster_parameter_group(
        original: Any, self: Any, db_cluster_parameter_group_name: str
    ) -> Any:
        name = db_cluster_parameter_group_name
        if any(c.parameter_group == name for c in self.clusters.values()):
            raise RDSClientError(
                "InvalidDBParameterGroupState",
                f"One or more clusters are still members of this parameter group {name}, "
                "so the group cannot be deleted",
            )
        return original(self, name)


@rule("rds", "waiting")
def db_cluster_is_creating_then_available() -> None:
    """CreateDBCluster returns status `creating`; describe shows `creating` until
    the Aurora cluster create duration has passed, then `available`.

    (moto's own DBCluster.status flips to available on the first read.)
    """
    DBCluster.status = property(
        lambda self: self._status, lambda self, value: setattr(self, "_status", value)
    )

    @wrap(RDSBackend, "create_db_cluster")
    def create_db_cluster(original: Any, self: Any, kwargs: dict[str, Any]) -> Any:
        cluster = original(self, kwargs)
        cluster.status = "creating"

        def become_available() -> None:
            if cluster.status == "creating":
                cluster.status = "available"

        TIMELINE.schedule(
            "db-cluster", cluster.db_cluster_identifier, "creating", "available",
            scaled("db-cluster.create"), become_available,
        )
        return cluster


@rule("rds", "waiting")
def modify_does_not_end_a_wait() -> None:
    """ModifyDBCluster keeps a `creating`/`deleting` cluster in that state (moto
    sets every modified cluster `available` at once, which would end the wait)."""

    @wrap(RDSBackend, "modify_db_cluster")
    def modify_db_cluster(original: Any, self: Any, kwargs: dict[str, Any]) -> Any:
        cluster = self.clusters.get(kwargs.get("db_cluster_identifier"))
        status = cluster.status if cluster is not None else None
        result = original(self, kwargs)
        if status in ("creating", "deleting"):
            cluster.status = status
            result.status = status
        return result


@rule("rds", "waiting")
def db_instance_is_creating_then_available() -> None:
    """CreateDBInstance returns status `creating`; it turns `available` after the
    Aurora instance create duration."""

    @wrap(RDSBackend, "create_db_instance")
    def create_db_instance(original: Any, self: Any, db_kwargs: dict[str, Any]) -> Any:
        db = original(self, db_kwargs)
        db.status = "creating"

        def become_available() -> None:
            if db.status == "creating":
                db.status = "available"

        TIMELINE.schedule(
            "db-instance", db.db_instance_identifier, "creating", "available",
            scaled("db-instance.create"), become_available,
        )
        return db


@rule("rds", "waiting")
def db_instance_is_deleting_then_gone() -> None:
    """DeleteDBInstance returns status `deleting`; DescribeDBInstances keeps
    showing it `deleting` for the instance delete duration (AWS: up to ~12 min),
    then DBInstanceNotFound. A second delete meanwhile fails with
    InvalidDBInstanceState "Instance <id> is already being deleted."
    """

    @wrap(RDSBackend, "delete_db_instance")
    def delete_db_instance(original: Any, self: Any, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
        existing = self.databases.get(db_instance_identifier.lower()) or self.databases.get(
            db_instance_identifier
        )
        if existing is not None and existing.status == "deleting":
            raise RDSClientError(
                "InvalidDBInstanceState",
                f"Instance {db_instance_identifier} is already being deleted.",
            )
        previous = existing.status if existing is not None else None
        db = original(self, db_instance_identifier, *args, **kwargs)  # moto pops it
        key = db.db_instance_identifier
        TIMELINE.cancel("db-instance", key)
        db.status = "deleting"
        self.databases[key] = db
        TIMELINE.record("db-instance", key, previous, "deleting")
        backend = self

        def gone() -> None:
            if backend.databases.get(key) is db:
                del backend.databases[key]

        db._fintech_gone_at = TIMELINE.schedule(
            "db-instance", key, "deleting", "gone", scaled("db-instance.delete"), gone
        )
        return db


@rule("rds", "waiting")
def db_cluster_is_deleting_then_gone() -> None:
    """DeleteDBCluster is allowed once every member instance is `deleting` (AWS:
    "Cluster cannot be deleted, it still contains DB instances in non-deleting
    state."); the cluster then shows `deleting` until its last instance is gone
    and the cluster delete duration has passed, then DBClusterNotFoundFault.
    """

    @wrap(RDSBackend, "delete_db_cluster")
    def delete_db_cluster(original: Any, self: Any, cluster_identifier: str, *args: Any, **kwargs: Any) -> Any:
        existing = self.clusters.get(cluster_identifier)
        if existing is not None and existing.status == "deleting":
            raise RDSClientError(
                "InvalidDBClusterStateFault",
                f"Cluster {cluster_identifier} is already being deleted.",
            )
        # moto refuses any member; AWS only members not yet deleting. Hide the
        # deleting ones from moto's check for the duration of the call.
        deleting = {
            k: db for k, db in self.databases.items()
            if getattr(db, "db_cluster_identifier", None) == cluster_identifier
            and db.status == "deleting"
        }
        for key in deleting:
            del self.databases[key]
        try:
            previous = existing.status if existing is not None else None
            cluster = original(self, cluster_identifier, *args, **kwargs)  # moto pops it
        finally:
            self.databases.update(deleting)
        TIMELINE.cancel("db-cluster", cluster_identifier)
        cluster.status = "deleting"
        self.clusters[cluster_identifier] = cluster
        TIMELINE.record("db-cluster", cluster_identifier, previous, "deleting")
        members_gone = max(
            [getattr(db, "_fintech_gone_at", 0.0) for db in deleting.values()], default=0.0
        )
        backend = self

        def gone() -> None:
            if backend.clusters.get(cluster_identifier) is cluster:
                del backend.clusters[cluster_identifier]

        TIMELINE.schedule(
            "db-cluster", cluster_identifier, "deleting", "gone",
            scaled("db-cluster.delete"), gone, not_before=members_gone,
        )
        return cluster


@rule("rds", "refusal")
def existing_db_cluster_identifier_is_already_exists_fault() -> None:
    """CreateDBCluster with the identifier of an existing cluster (one still `creating`
    or `deleting` included) fails with DBClusterAlreadyExistsFault "DB Cluster already
    exists" (HTTP 400; the identifier is case-insensitive)
    (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html#API_CreateDBCluster_Errors).

    moto replaced the existing cluster by a new one; in the same minute it failed with
    DBClusterSnapshotAlreadyExistsFault instead and left the new cluster `creating`
    forever.
    """

    @wrap(RDSBackend, "create_db_cluster")
    def create_db_cluster(original: Any, self: Any, kwargs: dict[str, Any]) -> Any:
        wanted = str(kwargs.get("db_cluster_identifier") or "").lower()
        if any(str(key).lower() == wanted for key in self.clusters):
            raise RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")
        return original(self, kwargs)


def _truthy(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return bool(value)


@rule("rds", "fidelity")
def deleted_cluster_automated_backups_are_deleted() -> None:
    """DeleteDBCluster removes the cluster's automated snapshots (`rds:<id>-<time>`)
    unless DeleteAutomatedBackups is false (AWS: "The default is to remove automated
    backups immediately after the DB cluster is deleted",
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html);
    and the automated snapshot a new cluster takes never fails its CreateDBCluster.

    moto kept them, so re-creating a cluster of the same name within the same minute
    failed with DBClusterSnapshotAlreadyExistsFault and left the cluster `creating`
    forever. With DeleteAutomatedBackups=false the retained snapshot stays and the new
    cluster simply does not take one of the same name.
    """
    from moto.rds.exceptions import DBClusterSnapshotAlreadyExistsError
    from moto.rds.responses import RDSResponse

    @wrap(RDSResponse, "delete_db_cluster")
    def delete_db_cluster(original: Any, self: Any) -> Any:
        cluster_id = str(self.params.get("DBClusterIdentifier") or "")
        remove = _truthy(self.params.get("DeleteAutomatedBackups"), True)
        result = original(self)
        if remove:
            snapshots = self.backend.cluster_snapshots
            for key in [
                k for k, s in snapshots.items()
                if s.snapshot_type == "automated" and str(s.db_cluster_identifier).lower() == cluster_id.lower()
            ]:
                del snapshots[key]
        return result

    @wrap(DBCluster, "save_automated_backup")
    def save_automated_backup(original: Any, self: Any) -> None:
        try:
            original(self)
        except DBClusterSnapshotAlreadyExistsError:
            pass  # a retained automated backup of an earlier cluster of this name


#: PerformanceInsightsRetentionPeriod when none is given: 7 days, the free tier.
PI_DEFAULT_RETENTION_DAYS = 7


def _pi_key_arn(backend: Any, key_id: str | None) -> str | None:
    """The key ARN RDS reports for a PerformanceInsightsKMSKeyId given as key ID, key ARN,
    alias name or alias ARN; without one, the ARN of the account's AWS managed `aws/rds`
    key (moto makes it on first use). A key moto does not know is kept as given."""
    from moto.kms.models import kms_backends

    kms = kms_backends[backend.account_id][backend.region_name]
    try:
        return kms.keys[kms.any_id_to_key_id(key_id or "alias/aws/rds")].arn
    except Exception:
        return key_id


@rule("rds", "fidelity")
def db_instance_keeps_performance_insights() -> None:
    """CreateDBInstance and ModifyDBInstance keep EnablePerformanceInsights,
    PerformanceInsightsKMSKeyId and PerformanceInsightsRetentionPeriod, and
    DescribeDBInstances returns PerformanceInsightsEnabled (false when off),
    PerformanceInsightsKMSKeyId (always the key ARN, whichever form was given) and
    PerformanceInsightsRetentionPeriod (7 days unless given).

    AWS (API_CreateDBInstance): "If you don't specify a value for
    PerformanceInsightsKMSKeyId, then Amazon RDS uses your default KMS key" (the AWS
    managed `aws/rds` key of the region); "The default is 7 days". Once set, the key stays
    with the instance: turning PI off keeps describing it, turning PI on again without a
    key uses it again. moto 5.2.5 dropped all three parameters and never described them.
    """
    # What an instance describes before any PI parameter: PerformanceInsightsEnabled is
    # always in AWS's answer (false when PI is off), the other two only once set.
    DBInstance.performance_insights_enabled = False
    DBInstance.performance_insights_kms_key_id = None
    DBInstance.performance_insights_retention_period = None

    def enable(backend: Any, db: Any, key_id: str | None, retention: Any,
               kept_key: str | None = None, kept_retention: Any = None) -> None:
        db.performance_insights_enabled = True
        db.performance_insights_kms_key_id = (
            _pi_key_arn(backend, key_id) if key_id else kept_key or _pi_key_arn(backend, None)
        )
        db.performance_insights_retention_period = int(
            retention or kept_retention or PI_DEFAULT_RETENTION_DAYS
        )

    @wrap(RDSBackend, "create_db_instance")
    def create_db_instance(original: Any, self: Any, db_kwargs: dict[str, Any]) -> Any:
        db = original(self, db_kwargs)
        if _truthy(db_kwargs.get("enable_performance_insights"), False):
            enable(self, db, db_kwargs.get("performance_insights_kms_key_id"),
                   db_kwargs.get("performance_insights_retention_period"))
        return db

    @wrap(RDSBackend, "modify_db_instance")
    def modify_db_instance(original: Any, self: Any, db_instance_identifier: str,
                           db_kwargs: dict[str, Any]) -> Any:
        before = self.describe_db_instances(db_instance_identifier)[0]
        was_on = before.performance_insights_enabled
        kept_key = before.performance_insights_kms_key_id
        kept_retention = before.performance_insights_retention_period
        requested = db_kwargs.get("enable_performance_insights")
        db = original(self, db_instance_identifier, db_kwargs)
        # moto's update copied the raw parameters onto the instance (an alias as given, a
        # retention with PI off); the described values replace them.
        db.__dict__.pop("enable_performance_insights", None)
        if _truthy(requested, was_on):
            enable(self, db, db_kwargs.get("performance_insights_kms_key_id"),
                   db_kwargs.get("performance_insights_retention_period"),
                   kept_key, kept_retention)
        else:
            db.performance_insights_enabled = False
            db.performance_insights_kms_key_id = kept_key
            db.performance_insights_retention_period = None
        return db


@rule("rds", "refusal")
def performance_insights_kms_key_cannot_change() -> None:
    """ModifyDBInstance with a PerformanceInsightsKMSKeyId other than the key Performance
    Insights of the instance was enabled with fails with InvalidParameterCombination "You
    can't change your Performance Insights KMS key." — also while PI is off: the key stays
    with the instance (the error the Terraform AWS provider reports, hashicorp/
    terraform-provider-aws#9746 and #44046). The same key, in any of its forms, is fine.
    """

    @wrap(RDSBackend, "modify_db_instance")
    def modify_db_instance(original: Any, self: Any, db_instance_identifier: str,
                           db_kwargs: dict[str, Any]) -> Any:
        db = self.describe_db_instances(db_instance_identifier)[0]
        key_id = db_kwargs.get("performance_insights_kms_key_id")
        current = db.performance_insights_kms_key_id
        if key_id and current and _pi_key_arn(self, key_id) != current:
            raise RDSClientError(
                "InvalidParameterCombination", "You can't change your Performance Insights KMS key."
            )
        return original(self, db_instance_identifier, db_kwargs)
