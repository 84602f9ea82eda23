"""ECS deployments run, and the load balancer sees the tasks they start.

moto changes a service's task definition in place: no new deployment, no tasks
starting, no health checks, and its target groups stay empty. AWS starts a
deployment for every new revision (or forceNewDeployment): the new tasks start,
register in the service's target groups, pass the health check, and only then
does the old deployment drain; a deployment whose tasks keep failing trips the
circuit breaker, which rolls the service back to the last completed revision
when `rollback` is on
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html).

Tasks are not modelled one by one: a deployment's tasks are all starting
(`initial` targets) until the deployment settles after `ecs-deployment.rollout`
(scaled), then all healthy, or, for an image a test named in
`unhealthy_images` (POST /_fintech/config), all failing their health checks.

ECR: moto marks nothing scanned on push; AWS scans every image pushed to a
repository with scanOnPush (basic scanning).
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime
from typing import Any

from moto.core.utils import utcnow
from moto.ecr.models import ECRBackend
from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus

from .patching import rule, wrap
from .timeline import SETTINGS, TIMELINE, scaled

_ids = itertools.count(1)
# Deployment ID -> the ID its timeline events carry (`<service>:<deployment>`).
_EVENT_IDS: dict[str, str] = {}


def _image(backend: Any, task_definition: str | None) -> str:
    if not task_definition:
        return ""
    definition = backend.describe_task_definition(task_definition)
    containers = definition.container_definitions or []
    return containers[0].get("image", "") if containers else ""


def _healthy(backend: Any, task_definition: str | None) -> bool:
    return _image(backend, task_definition) not in SETTINGS.unhealthy_images


def _rollback_enabled(service: Any) -> bool:
    config = getattr(service, "deployment_configuration", None) or {}
    breaker = config.get("deploymentCircuitBreaker") or {}
    return bool(breaker.get("enable") and breaker.get("rollback"))


def _event(service: Any, message: str) -> None:
    service.events.insert(
        0, {"id": f"evt-{next(_ids)}", "createdAt": utcnow(), "message": f"(service {service.name}) {message}"}
    )


def _new_deployment(service: Any, task_definition: str) -> dict[str, Any]:
    deployment_id = f"ecs-svc/{next(_ids):012d}"
    now = utcnow()
    return {
        "id": deployment_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition,
        "desiredCount": service.desired_count,
        "pendingCount": service.desired_count,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": service.launch_type,
        "platformFamily": "FARGATE",
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {deployment_id} in progress.",
    }


def _start(backend: Any, service: Any, task_definition: str) -> dict[str, Any]:
    """Start a deployment of `task_definition`: the new PRIMARY, the others ACTIVE
    (still serving) until it completes."""
    for d in service.deployments:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
    deployment = _new_deployment(service, task_definition)
    service.deployments.insert(0, deployment)
    # Events name the service too, so a test can tell whose deployment settled when.
    event_id = f"{service.name}:{deployment['id']}"
    _EVENT_IDS[deployment["id"]] = event_id
    TIMELINE.record("ecs-deployment", event_id, None, "IN_PROGRESS")

    def settle() -> None:
        _settle(backend, service, deployment)

    TIMELINE.schedule(
        "ecs-deployment", event_id, "IN_PROGRESS", "settled", scaled("ecs-deployment.rollout"), settle
    )
    return deployment


def _settle(backend: Any, service: Any, deployment: dict[str, Any]) -> None:
    if deployment not in service.deployments or deployment["rolloutState"] != "IN_PROGRESS":
        return
    if deployment["status"] != "PRIMARY":
        # A later deployment replaced it while it rolled out: ECS stops launching its tasks,
        # and it drains when the PRIMARY one completes.
        return
    deployment["updatedAt"] = utcnow()
    if _healthy(backend, deployment["taskDefinition"]):
        deployment.update(
            rolloutState="COMPLETED",
            runningCount=deployment["desiredCount"],
            pendingCount=0,
            rolloutStateReason=f"ECS deployment {deployment['id']} completed.",
        )
        # The earlier deployments' tasks drain once the new ones are healthy.
        service.deployments[:] = [deployment]
        TIMELINE.record("ecs-deployment", _EVENT_IDS[deployment["id"]], "IN_PROGRESS", "COMPLETED")
        _event(service, "has reached a steady state.")
        return
    deployment.update(
        rolloutState="FAILED",
        failedTasks=max(deployment["desiredCount"], 1) * 3,
        pendingCount=0,
        rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.",
    )
    TIMELINE.record("ecs-deployment", _EVENT_IDS[deployment["id"]], "IN_PROGRESS", "FAILED")
    _event(service, f"(deployment {deployment['id']}) deployment failed: tasks failed to start.")
    previous = next(
        (d for d in service.deployments if d is not deployment and d["rolloutState"] == "COMPLETED"), None
    )
    if previous is None or not _rollback_enabled(service):
        return
    # The circuit breaker's rollback: a new deployment of the last completed revision.
    deployment["status"] = "ACTIVE"
    service.task_definition = previous["taskDefinition"]
    _event(service, f"(deployment {deployment['id']}) rolling back to deployment {previous['id']}.")
    _start(backend, service, previous["taskDefinition"])


@rule("ecs", "waiting")
def new_revision_rolls_out_as_a_deployment() -> None:
    """CreateService, and UpdateService with another task definition or
    forceNewDeployment, start a deployment (rolloutState IN_PROGRESS, the earlier
    PRIMARY becomes ACTIVE and keeps serving); it settles after the scaled
    `ecs-deployment.rollout`: COMPLETED (the older deployments drain) or, when its
    tasks fail their health checks, FAILED with "ECS deployment circuit breaker:
    tasks failed to start.", and with the breaker's rollback on, the service goes
    back to the last COMPLETED revision in a new deployment. moto keeps the
    deploymentConfiguration UpdateService sends; CreateService's is kept too."""

    @wrap(EC2ContainerServiceResponse, "create_service")
    def create_service_response(original: Any, self: Any) -> Any:
        result = original(self)
        backend = ecs_backends[self.current_account][self.region]
        service = backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        config = self._get_param("deploymentConfiguration")
        if config is not None:
            service.deployment_configuration = config
        if (service.deployment_controller or {}).get("type", "ECS") == "ECS" and service.task_definition:
            service.deployments.clear()
            _start(backend, service, service.task_definition)
        return result

    @wrap(EC2ContainerServiceBackend, "update_service")
    def update_service(original: Any, self: Any, props: dict[str, Any]) -> Any:
        service = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
        before = service.task_definition
        force = bool(props.get("force_new_deployment"))
        result = original(self, props)
        if (service.deployment_controller or {}).get("type", "ECS") != "ECS":
            return result
        if "desired_count" in props and props["desired_count"] is not None:
            for d in service.deployments:
                if d["status"] == "PRIMARY":
                    d["desiredCount"] = props["desired_count"]
                    if d["rolloutState"] == "COMPLETED":
                        d["runningCount"] = props["desired_count"]
        wanted = service.task_definition
        if wanted and wanted != before:
            # UpdateService may name a family or family:revision; ECS stores the ARN.
            wanted = self.describe_task_definition(wanted).arn
            service.task_definition = wanted
        if wanted and (wanted != before or force):
            _start(self, service, wanted)
        return result


def _task_ip(deployment_id: str, index: int) -> str:
    digest = hashlib.sha256(f"{deployment_id}/{index}".encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{(digest[2] % 250) + 2}"


def _unit_targets(
    backend: Any, unit_id: str, count: int, task_definition: str | None, port: str, starting: bool, settled: bool
) -> list[FakeHealthStatus]:
    """The targets of `count` tasks of one deployment or task set: `unhealthy` when
    their image fails its health checks (unless they settled before it was listed),
    `initial` while they start (`starting`), else `healthy`."""
    healthy = _healthy(backend, task_definition)
    targets = []
    for i in range(count):
        ip = _task_ip(unit_id, i)
        if not healthy and not settled:
            targets.append(FakeHealthStatus(
                ip, port, port, "unhealthy", "Target.FailedHealthChecks", "Health checks failed"
            ))
        elif starting:
            targets.append(FakeHealthStatus(
                ip, port, port, "initial", "Elb.InitialHealthChecking", "Initial health checks in progress"
            ))
        else:
            targets.append(FakeHealthStatus(ip, port, port, "healthy"))
    return targets


def _service_targets(account_id: str, region: str, target_group_arn: str) -> list[FakeHealthStatus]:
    targets = []
    backend = ecs_backends[account_id][region]
    for service in list(backend.services.values()):
        if service.status != "ACTIVE":
            continue
        ports = [
            str(lb.get("containerPort"))
            for lb in service.load_balancers or []
            if lb.get("targetGroupArn") == target_group_arn
        ]
        # ECS-controlled services: the deployments' tasks are in the service's target groups.
        for deployment in service.deployments if ports else []:
            state = deployment.get("rolloutState")
            targets += _unit_targets(
                backend, deployment["id"], deployment.get("desiredCount") or 0, deployment.get("taskDefinition"),
                ports[0], starting=state == "IN_PROGRESS", settled=state == "COMPLETED",
            )
        # CODE_DEPLOY services (fidelity/codedeploy_deployments.py): each task set's tasks are
        # in the target group of that task set, which need not be the service's.
        for task_set in getattr(service, "task_sets", None) or []:
            set_ports = [
                str(lb.get("containerPort"))
                for lb in task_set.load_balancers or []
                if lb.get("targetGroupArn") == target_group_arn
            ]
            if not set_ports or getattr(task_set, "computed_desired_count", None) is None:
                continue
            steady = task_set.stabilityStatus == "STEADY_STATE"
            targets += _unit_targets(
                backend, task_set.id, task_set.computed_desired_count, task_set.task_definition,
                set_ports[0], starting=not steady, settled=steady,
            )
    return targets


@rule("elbv2", "fidelity")
def target_group_lists_the_tasks_of_its_services() -> None:
    """DescribeTargetHealth of a target group an ECS service is attached to lists
    that service's tasks by IP (ECS registers them): `initial`
    (Elb.InitialHealthChecking) while their deployment rolls out (for a CODE_DEPLOY
    service: while the task set attached to the group is STABILIZING), then
    `healthy`, or `unhealthy` (Target.FailedHealthChecks) for tasks whose image
    fails its health checks."""

    @wrap(ELBv2Backend, "describe_target_health")
    def describe_target_health(original: Any, self: Any, target_group_arn: str, targets: list[dict[str, Any]]) -> Any:
        found = original(self, target_group_arn, targets)
        if targets:
            return found
        return list(found) + _service_targets(self.account_id, self.region_name, target_group_arn)


@rule("ecr", "fidelity")
def image_pushed_to_a_scan_on_push_repository_is_scanned() -> None:
    """PutImage into a repository with imageScanningConfiguration.scanOnPush
    starts a basic scan of the image, so DescribeImageScanFindings answers for it
    (moto otherwise answers ScanNotFoundException until StartImageScan). The
    findings are moto's: a test seeds them with POST
    /moto-api/static/ecr/scan-finding-results."""

    @wrap(ECRBackend, "put_image")
    def put_image(original: Any, self: Any, repository_name: str, *args: Any, **kwargs: Any) -> Any:
        image = original(self, repository_name, *args, **kwargs)
        repository = self.repositories.get(repository_name)
        if repository is not None and (repository.image_scanning_configuration or {}).get("scanOnPush"):
            image.last_scan = datetime.today()
        return image
