"""ECS rules: clusters cannot be deleted while in use; services drain before going.

moto marks a cluster INACTIVE even while services or tasks run in it, and a
deleted service INACTIVE at once. AWS refuses the former and keeps a deleted
service DRAINING (still blocking its cluster's deletion) for a while.
(Deleting a service scaled above 0 without force is already refused by moto
with InvalidParameterException, as AWS does.)
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models import ec2_backends
from moto.ecs.exceptions import ECSException
from moto.ecs.models import EC2ContainerServiceBackend

from .patching import rule, wrap
from .timeline import TIMELINE, scaled


@rule("ecs", "refusal")
def cluster_with_active_services_cannot_be_deleted() -> None:
    """DeleteCluster fails with ClusterContainsServicesException while a service
    in the cluster is ACTIVE or still DRAINING.

    AWS: "The Cluster cannot be deleted while Services are active."
    """

    @wrap(EC2ContainerServiceBackend, "delete_cluster")
    def delete_cluster(original: Any, self: Any, cluster_str: str) -> Any:
        cluster = self._get_cluster(cluster_str)
        if any(
            s.cluster_name == cluster.name and s.status in ("ACTIVE", "DRAINING")
            for s in self.services.values()
        ):
            raise ECSException(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            )
        return original(self, cluster_str)


@rule("ecs", "refusal")
def cluster_with_running_tasks_cannot_be_deleted() -> None:
    """DeleteCluster fails with ClusterContainsTasksException while a task in the
    cluster has not stopped.

    AWS: "The Cluster cannot be deleted while Tasks are active."
    """

    @wrap(EC2ContainerServiceBackend, "delete_cluster")
    def delete_cluster(original: Any, self: Any, cluster_str: str) -> Any:
        cluster = self._get_cluster(cluster_str)
        if any(t.last_status != "STOPPED" for t in self.tasks.get(cluster.name, {}).values()):
            raise ECSException(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            )
        return original(self, cluster_str)


@rule("ecs", "refusal")
def cluster_with_container_instances_cannot_be_deleted() -> None:
    """DeleteCluster fails with ClusterContainsContainerInstancesException while
    container instances are registered.

    AWS: "The Cluster cannot be deleted while Container Instances are active or
    draining."
    """

    @wrap(EC2ContainerServiceBackend, "delete_cluster")
    def delete_cluster(original: Any, self: Any, cluster_str: str) -> Any:
        cluster = self._get_cluster(cluster_str)
        if self.container_instances.get(cluster.name):
            raise ECSException(
                "ClusterContainsContainerInstancesException",
                "The Cluster cannot be deleted while Container Instances are active or draining.",
            )
        return original(self, cluster_str)


@rule("ecs", "fidelity")
def stopped_task_releases_its_network_interface() -> None:
    """StopTask releases the awsvpc task's ENI, as AWS does when a task stops
    (moto keeps it, which would block subnet deletion forever)."""

    @wrap(EC2ContainerServiceBackend, "stop_task")
    def stop_task(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        task = original(self, *args, **kwargs)
        ec2 = ec2_backends[self.account_id][self.region_name]
        for attachment in getattr(task, "attachments", []):
            for detail in attachment.get("details", []):
                if detail.get("name") == "networkInterfaceId":
                    ec2.enis.pop(detail.get("value"), None)
            attachment["status"] = "DELETED"
        return task


@rule("ecs", "waiting")
def deleted_service_is_draining_then_inactive() -> None:
    """DeleteService returns status DRAINING; the service stays DRAINING (and keeps
    blocking DeleteCluster) for the drain duration, then INACTIVE."""

    @wrap(EC2ContainerServiceBackend, "delete_service")
    def delete_service(original: Any, self: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        current = self._get_service(cluster_name, service_name)
        if current.status != "ACTIVE":
            # AWS: deleting a DRAINING/INACTIVE service again is refused.
            raise ECSException("ServiceNotActiveException", "Service was not ACTIVE.")
        service = original(self, cluster_name, service_name, force)  # moto: INACTIVE
        service.status = "DRAINING"
        TIMELINE.record("ecs-service", service.arn, "ACTIVE", "DRAINING")

        def become_inactive() -> None:
            if service.status == "DRAINING":
                service.status = "INACTIVE"

        TIMELINE.schedule(
            "ecs-service", service.arn, "DRAINING", "INACTIVE",
            scaled("ecs-service.drain"), become_inactive,
        )
        return service
