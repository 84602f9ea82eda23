"""ECS rules: clusters cannot be deleted while in use; services drain before going.

moto marks a cluster INACTIVE even while services or tasks run in it, and a
deleted service INACTIVE at once. AWS refuses the former and keeps a deleted
service DRAINING (still blocking its cluster's deletion) for a while.
(Deleting a service scaled above 0 without force is already refused by moto
with InvalidParameterException, as AWS does.)
"""

from __future__ import annotations

import inspect
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ecs.exceptions import ECSException
from moto.ecs.models import EC2ContainerServiceBackend
from moto.elbv2.models import elbv2_backends

from .patching import rule, wrap
from .timeline import TIMELINE, scaled

_CREATE_SERVICE = inspect.signature(EC2ContainerServiceBackend.create_service)


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


# --- Load balancers and CODE_DEPLOY services ----------------------------------


def _forwarded_target_groups(action: Any) -> list[str]:
    data = getattr(action, "data", None) or {}
    if data.get("Type") != "forward" and getattr(action, "type", None) != "forward":
        return []
    arns = [data["TargetGroupArn"]] if data.get("TargetGroupArn") else []
    arns += [tg.get("TargetGroupArn") for tg in (data.get("ForwardConfig") or {}).get("TargetGroups") or []]
    return [a for a in arns if a]


def target_group_load_balancers(account_id: str, region: str, target_group_arn: str) -> list[str]:
    """ARNs of the load balancers with a listener whose default action or a rule
    forwards to the target group (a plain or a weighted forward)."""
    balancers = []
    for balancer in elbv2_backends[account_id][region].load_balancers.values():
        for listener in balancer.listeners.values():
            actions = list(listener.default_actions or [])
            for listener_rule in listener.rules.values():
                actions += list(getattr(listener_rule, "actions", None) or [])
            if any(target_group_arn in _forwarded_target_groups(a) for a in actions):
                balancers.append(balancer.arn)
                break
    return balancers


def _check_load_balancers(backend: Any, load_balancers: Any, task_definition: Any) -> None:
    network_mode = getattr(task_definition, "network_mode", None) or "bridge"
    for entry in load_balancers or []:
        arn = entry.get("targetGroupArn")
        if not arn:
            continue
        region = arn.split(":")[3] if arn.count(":") >= 5 else backend.region_name
        if not target_group_load_balancers(backend.account_id, region, arn):
            raise ECSException(
                "InvalidParameterException",
                f"The target group with targetGroupArn {arn} does not have an associated load balancer.",
            )
        group = elbv2_backends[backend.account_id][region].target_groups.get(arn)
        wanted = "ip" if network_mode == "awsvpc" else "instance"
        if group is not None and group.target_type != wanted and group.target_type in ("ip", "instance"):
            raise ECSException(
                "InvalidParameterException",
                f"The provided target group {arn} has target type {group.target_type}, which is incompatible "
                f"with the {network_mode} network mode specified in the task definition.",
            )


@rule("ecs", "refusal")
def service_target_group_must_be_attached_to_a_load_balancer() -> None:
    """CreateService / UpdateService with loadBalancers fail with
    InvalidParameterException "The target group with targetGroupArn <arn> does
    not have an associated load balancer." unless a listener's default action or
    a rule forwards to the target group (weighted forwards count), and with "The
    provided target group <arn> has target type instance, which is incompatible
    with the awsvpc network mode specified in the task definition." when awsvpc
    tasks meet a target type other than ip (bridge/host tasks: instance)
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb.html).
    """

    @wrap(EC2ContainerServiceBackend, "create_service")
    def create_service(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _CREATE_SERVICE.bind(self, *args, **kwargs).arguments
        if bound.get("load_balancers"):
            definition = (
                self.describe_task_definition(bound["task_definition_str"])
                if bound.get("task_definition_str")
                else None
            )
            _check_load_balancers(self, bound["load_balancers"], definition)
        return original(self, *args, **kwargs)

    @wrap(EC2ContainerServiceBackend, "update_service")
    def update_service(original: Any, self: Any, props: dict[str, Any]) -> Any:
        if props.get("load_balancers"):
            service = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
            family = props.get("task_definition") or service.task_definition
            definition = self.describe_task_definition(family) if family else None
            _check_load_balancers(self, props["load_balancers"], definition)
        return original(self, props)


def _code_deploy_refusal(what: str) -> ECSException:
    return ECSException(
        "InvalidParameterException",
        f"Unable to update {what} on services with a CODE_DEPLOY deployment controller. "
        "Use AWS CodeDeploy to trigger a new deployment.",
    )


@rule("ecs", "refusal")
def code_deploy_service_changes_revision_only_through_codedeploy() -> None:
    """UpdateService on a service whose deploymentController is CODE_DEPLOY fails
    with InvalidParameterException "Unable to update task definition on services
    with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new
    deployment." when it names another task definition, and "Unable to update
    load balancers ..." when it passes loadBalancers at all (even unchanged): new
    revisions and traffic changes go out through a CodeDeploy deployment
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html).
    """

    @wrap(EC2ContainerServiceBackend, "update_service")
    def update_service(original: Any, self: Any, props: dict[str, Any]) -> Any:
        service = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
        if (service.deployment_controller or {}).get("type") == "CODE_DEPLOY":
            wanted = props.get("task_definition")
            if wanted and self.describe_task_definition(wanted).arn != service.task_definition:
                raise _code_deploy_refusal("task definition")
            if props.get("load_balancers") is not None:  # even unchanged ones
                raise _code_deploy_refusal("load balancers")
        return original(self, props)
