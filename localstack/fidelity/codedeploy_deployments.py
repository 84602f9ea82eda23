"""CodeDeploy blue/green deployments of ECS services run, as on AWS.

moto records a CodeDeploy deployment and never runs it: it stays `Created` for ever,
no replacement task set starts, no listener changes, and a CODE_DEPLOY service has no
task set at all. On AWS
(https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-steps-ecs.html):

- ECS creates a CODE_DEPLOY service's first task set itself (PRIMARY, 100 %, the
  service's task definition and target group);
- CreateDeployment with an AppSpec naming a new task definition creates a
  replacement ("Green") task set in the target group of the pair that the original
  ("Blue") one does not use; once it is stable (Install), the test listener is
  switched to it, then the production listener's forwards become weighted forwards
  that shift traffic to it as the deployment config says (canary, linear, all at
  once); at 100 % the replacement becomes PRIMARY, and after the group's termination
  wait the original task set is deleted and the deployment Succeeded;
- a replacement whose tasks fail their health checks fails the deployment, a
  CloudWatch alarm of the group in ALARM stops it, StopDeployment stops it; with
  automatic rollback, traffic goes back to the original task set, the replacement is
  deleted and a rollback deployment (creator `codeDeployRollback`) records it.

Each step is a scheduled transition (timeline.py): the replacement is stable after
the scaled `codedeploy.install`, traffic-shift intervals are the config's minutes x 60
x time_scale, the termination wait the group's terminationWaitTimeInMinutes x 60 x
time_scale. The steps are timers of resource type `codedeploy-step`; what happens is
recorded as `codedeploy-deployment` events (status changes, `traffic-N` steps,
`test-traffic`) and `ecs-task-set` events (STABILIZING -> STEADY_STATE, -> gone),
stamped with the time they took effect.

Tasks are not modelled one by one (as in ecs_deployments.py): a task set's tasks are
all starting until it is STEADY_STATE; a task set whose image is in `unhealthy_images`
never gets there.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import random
import string
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import yaml
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.codedeploy import responses as codedeploy_responses
from moto.codedeploy.exceptions import CodeDeployException
from moto.codedeploy.models import CodeDeployBackend, DeploymentInfo
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.responses import ActionResult
from moto.ecs.models import EC2ContainerServiceBackend, TaskSet, ecs_backends
from moto.elbv2.models import FakeAction, elbv2_backends

from .codedeploy import BUILT_IN_CONFIGS
from .ecs import _forwarded_target_groups
from .ecs_deployments import _healthy, _image
from .patching import rule, wrap
from .timeline import SETTINGS, TIMELINE, scaled

_STEP = "codedeploy-step"  # the timers that drive a deployment
_EVENT = "codedeploy-deployment"  # what happened to it
_TASK_SET = "ecs-task-set"

# A deployment in one of these blocks another in its group (DeploymentLimitExceededException).
_ACTIVE = ("Created", "Queued", "InProgress", "Baking", "Ready")
_FINAL = ("Succeeded", "Failed", "Stopped")
_LIFECYCLE = (
    "BeforeInstall", "Install", "AfterInstall", "AllowTestTraffic",
    "AfterAllowTestTraffic", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic",
)
_ROLLBACK_CONFIG = "CodeDeployDefault.ECSAllAtOnce"  # what AWS's ECS rollback deployments report
_ALARM_MESSAGE = (
    "One or more alarms have been activated according to the Amazon CloudWatch metrics you "
    "selected, and the affected deployments have been stopped. Activated alarms: "
)

_CREATE_DEPLOYMENT = inspect.signature(CodeDeployBackend.create_deployment)


def _now_dt(ts: float) -> datetime:
    # moto's timestamps are naive UTC (moto.core.utils.utcnow).
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


def _record(resource_type: str, resource_id: str, from_state: str | None, to_state: str, ts: float) -> None:
    """Record a transition stamped with the time it took effect. TIMELINE.record stamps
    'now', which for a step pump() applies late (at the next request) is not that time."""
    with TIMELINE.lock:
        TIMELINE._events.append(
            {"ts": ts, "resource_type": resource_type, "id": resource_id, "from": from_state, "to": to_state}
        )


def _error(code: str, message: str) -> CodeDeployException:
    return CodeDeployException(code, message)


# --- ECS task sets ---------------------------------------------------------------


def _is_code_deploy(service: Any) -> bool:
    return (getattr(service, "deployment_controller", None) or {}).get("type") == "CODE_DEPLOY"


def _refresh_counts(task_set: Any, desired: int) -> None:
    """computedDesiredCount = ceil(desiredCount x scale %), all running once STEADY_STATE."""
    count = math.ceil((desired or 0) * float((task_set.scale or {}).get("value", 100)) / 100)
    steady = task_set.stabilityStatus == "STEADY_STATE"
    task_set.computed_desired_count = count
    task_set.running_count = count if steady else 0
    task_set.pending_count = 0 if steady else count


def _new_task_set(
    backend: Any, service: Any, task_definition: str, load_balancers: list[dict[str, Any]],
    status: str, external_id: str | None = None, network_configuration: dict[str, Any] | None = None,
) -> Any:
    # Built directly rather than with moto's create_task_set, which RunTasks the tasks
    # (ENIs, cluster task counts): like ecs_deployments.py, tasks are not modelled.
    task_set = TaskSet(
        service.arn, service.cluster_arn, task_definition, backend.account_id, backend.region_name,
        external_id=external_id,
        network_configuration=network_configuration or service.network_configuration or None,
        load_balancers=load_balancers, launch_type=service.launch_type,
        platform_version=service.platform_version, scale={"value": 100.0, "unit": "PERCENT"},
    )
    task_set.service_arn, task_set.cluster_arn = service.arn, service.cluster_arn
    task_set.external_id = external_id  # moto's "" would be answered; AWS omits it
    task_set.status = status
    task_set.stabilityStatus = "STABILIZING"
    service.task_sets.append(task_set)
    _refresh_counts(task_set, service.desired_count)
    return task_set


def _stabilize_later(backend: Any, service: Any, task_set: Any, delay: float) -> None:
    """STABILIZING -> STEADY_STATE after `delay`; a task set whose tasks fail their
    health checks never reaches it (no transition is scheduled)."""
    if not _healthy(backend, task_set.task_definition):
        return

    def settle() -> None:
        if task_set in service.task_sets and task_set.stabilityStatus == "STABILIZING":
            task_set.stabilityStatus = "STEADY_STATE"
            task_set.stabilityStatusAt = task_set.updatedAt = _now_dt(time.time())
            _refresh_counts(task_set, service.desired_count)

    TIMELINE.schedule(_TASK_SET, task_set.task_set_arn, "STABILIZING", "STEADY_STATE", delay, settle)


def _serving(backend: Any, task_set: Any) -> bool:
    """Whether the task set's tasks pass their health checks (may be given traffic)."""
    return task_set.stabilityStatus == "STEADY_STATE" and _healthy(backend, task_set.task_definition)


def _delete_task_set(service: Any, task_set: Any, ts: float) -> None:
    if task_set in service.task_sets:
        service.task_sets.remove(task_set)
        TIMELINE.cancel(_TASK_SET, task_set.task_set_arn)
        _record(_TASK_SET, task_set.task_set_arn, task_set.status, "gone", ts)


def _make_primary(service: Any, task_set: Any) -> None:
    """UpdateServicePrimaryTaskSet: the service's task definition and load balancers
    become the task set's; the other task sets are ACTIVE."""
    for other in service.task_sets:
        other.status = "PRIMARY" if other is task_set else "ACTIVE"
    service.task_definition = task_set.task_definition
    service.load_balancers = copy.deepcopy(task_set.load_balancers)


@rule("ecs", "waiting")
def code_deploy_service_runs_a_primary_task_set() -> None:
    """CreateService with deploymentController CODE_DEPLOY and a task definition
    creates the service's first task set (status PRIMARY, scale 100 PERCENT, the
    service's task definition, load balancers and network configuration): shown in
    DescribeServices `taskSets`, STABILIZING until the scaled `ecs-deployment.rollout`,
    then STEADY_STATE (never, when its tasks fail their health checks); `deployments`
    stays empty. UpdateService desiredCount rescales every task set
    (computedDesiredCount); DeleteService removes the service's task sets
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-bluegreen.html)."""

    @wrap(EC2ContainerServiceBackend, "create_service")
    def create_service(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        service = original(self, *args, **kwargs)
        if _is_code_deploy(service) and service.task_definition:
            task_set = _new_task_set(self, service, service.task_definition,
                                     copy.deepcopy(service.load_balancers or []), "PRIMARY")
            _stabilize_later(self, service, task_set, scaled("ecs-deployment.rollout"))
        return service

    @wrap(EC2ContainerServiceBackend, "update_service")
    def update_service(original: Any, self: Any, props: dict[str, Any]) -> Any:
        service = original(self, props)
        for task_set in getattr(service, "task_sets", None) or []:
            if getattr(task_set, "computed_desired_count", None) is not None:
                _refresh_counts(task_set, service.desired_count)
        return service

    @wrap(EC2ContainerServiceBackend, "delete_service")
    def delete_service(original: Any, self: Any, cluster_name: str, service_name: str, force: bool) -> Any:
        service = original(self, cluster_name, service_name, force)
        for task_set in list(service.task_sets):
            _delete_task_set(service, task_set, time.time())
        return service


# --- The AppSpec and the plan of a deployment ------------------------------------


def _invalid_revision(message: str) -> CodeDeployException:
    return _error("InvalidRevisionException", message)


def _appspec_text(backend: Any, revision: dict[str, Any]) -> str:
    kind = revision.get("revisionType")
    if kind == "AppSpecContent":
        content = (revision.get("appSpecContent") or {}).get("content")
    elif kind == "String":
        content = (revision.get("string") or {}).get("content")
    elif kind == "S3":
        from moto.s3.models import s3_backends

        location = revision.get("s3Location") or {}
        try:
            key = s3_backends[backend.account_id]["aws"].get_object(location.get("bucket"), location.get("key"))
        except Exception:
            key = None
        if key is None:
            raise _error("RevisionDoesNotExistException", "The named revision does not exist with the user or AWS account.")
        content = key.value.decode("utf-8", "replace")
    else:
        raise _invalid_revision(
            f"Revision type {kind} is not supported for the ECS compute platform: use AppSpecContent, String or S3."
        )
    if not content:
        raise _invalid_revision("The AppSpec file content is empty.")
    return content


def _parse_appspec(text: str) -> dict[str, Any]:
    # The client sends JSON; AppSpec files may also be YAML (a superset of JSON).
    try:
        spec = json.loads(text)
    except ValueError:
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError:
            spec = None
    if not isinstance(spec, dict):
        raise _invalid_revision(
            "The AppSpec file must be valid JSON or YAML The input AppSpec file is a not well-formed yaml. "
            "The template cannot be parsed."
        )
    resources = spec.get("Resources")
    targets = [
        (r or {}).get("TargetService") for r in resources or [] if isinstance(r, dict) and "TargetService" in r
    ] if isinstance(resources, list) else []
    if len(targets) != 1 or not isinstance(targets[0], dict) or targets[0].get("Type") != "AWS::ECS::Service":
        raise _invalid_revision(
            "The AppSpec file must have exactly one Resources entry with a TargetService of Type AWS::ECS::Service."
        )
    properties = targets[0].get("Properties")
    if not isinstance(properties, dict) or not properties.get("TaskDefinition"):
        raise _invalid_revision("The AppSpec file's TargetService must name a TaskDefinition in its Properties.")
    info = properties.get("LoadBalancerInfo")
    if not isinstance(info, dict) or not info.get("ContainerName") or info.get("ContainerPort") in (None, ""):
        raise _invalid_revision(
            "The AppSpec file's TargetService must have a LoadBalancerInfo with ContainerName and ContainerPort."
        )
    return properties


def _network_configuration(properties: dict[str, Any]) -> dict[str, Any] | None:
    """The AppSpec's optional NetworkConfiguration, in the ECS API's shape."""
    vpc = (properties.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration")
    if not vpc:
        return None
    config: dict[str, Any] = {"subnets": vpc.get("Subnets") or [], "securityGroups": vpc.get("SecurityGroups") or []}
    if vpc.get("AssignPublicIp"):
        config["assignPublicIp"] = vpc["AssignPublicIp"]
    return {"awsvpcConfiguration": config}


def _routing(name: str) -> dict[str, Any]:
    return BUILT_IN_CONFIGS[name][2] or {"type": "AllAtOnce"}


def _config_name(group: Any, requested: str | None) -> str:
    """The deployment's config: the one asked for, else the group's (moto defaults a
    group without one to the Server config OneAtATime; an ECS deployment then runs
    CodeDeployDefault.ECSAllAtOnce)."""
    if requested:
        if requested not in BUILT_IN_CONFIGS:
            raise _error(
                "DeploymentConfigDoesNotExistException",
                f"The deployment configuration {requested} does not exist with the user or AWS account.",
            )
        if BUILT_IN_CONFIGS[requested][0] != "ECS":
            raise _error(
                "InvalidDeploymentConfigNameException",
                f"The deployment configuration {requested} is for the {BUILT_IN_CONFIGS[requested][0]} compute "
                "platform and cannot be used with an Amazon ECS deployment.",
            )
        return requested
    name = str(group.deployment_config_name or "")
    return name if BUILT_IN_CONFIGS.get(name, ("",))[0] == "ECS" else "CodeDeployDefault.ECSAllAtOnce"


def _ecs_group(backend: Any, bound: dict[str, Any]) -> Any:
    """The deployment group of an ECS application the request names, else None (moto's
    own checks answer for unknown applications and groups)."""
    app = backend.applications.get(bound.get("application_name"))
    if app is None or getattr(app, "compute_platform", None) != "ECS":
        return None
    return backend.deployment_groups.get(app.application_name, {}).get(bound.get("deployment_group_name"))


def _plan(backend: Any, group: Any, bound: dict[str, Any]) -> dict[str, Any]:
    """Everything a deployment needs, checked: refuses what AWS refuses."""
    revision = bound.get("revision")
    if not revision:
        raise _error("RevisionRequiredException", "RevisionLocation must be specified")
    properties = _parse_appspec(_appspec_text(backend, revision))
    ecs = ecs_backends[backend.account_id][backend.region_name]
    try:
        definition = ecs.describe_task_definition(str(properties["TaskDefinition"]))
    except Exception:
        raise _invalid_revision(f"The task definition {properties['TaskDefinition']} in the AppSpec file does not exist.")
    container_name = str(properties["LoadBalancerInfo"]["ContainerName"])
    try:
        container_port = int(properties["LoadBalancerInfo"]["ContainerPort"])
    except (TypeError, ValueError):
        raise _invalid_revision("The AppSpec file's ContainerPort must be a number.")
    container = next((c for c in definition.container_definitions or [] if c.get("name") == container_name), None)
    if container is None:
        raise _invalid_revision(f"The container {container_name} does not exist in the task definition {definition.arn}.")
    ports = {int(m.get("containerPort")) for m in container.get("portMappings") or [] if m.get("containerPort") is not None}
    if container_port not in ports:
        raise _invalid_revision(
            f"The container {container_name} in the task definition {definition.arn} does not expose port {container_port}."
        )
    config = _config_name(group, bound.get("deployment_config_name"))

    entry = (group.ecs_services or [{}])[0]
    cluster, name = entry.get("clusterName") or "", entry.get("serviceName") or ""
    try:
        service = ecs._get_service(cluster, name)
    except Exception:
        service = None
    original = next((t for t in getattr(service, "task_sets", None) or [] if t.status == "PRIMARY"), None)
    if service is None or service.status != "ACTIVE" or original is None:
        raise _error(
            "InvalidECSServiceException",
            f"The Amazon ECS service {name} in cluster {cluster} does not exist or has no primary task set.",
        )
    pair = ((group.load_balancer_info or {}).get("targetGroupPairInfoList") or [{}])[0]
    elb = elbv2_backends[backend.account_id][backend.region_name]
    by_name = {tg.name: tg.arn for tg in elb.target_groups.values()}
    arns = [by_name.get(g.get("name")) for g in pair.get("targetGroups") or []]
    used = [lb.get("targetGroupArn") for lb in original.load_balancers or [] if lb.get("targetGroupArn") in arns]
    if len(arns) != 2 or None in arns or not used:
        raise _error(
            "InvalidLoadBalancerInfoException",
            f"The target group pair of deployment group {group.deployment_group_name} does not contain the target "
            f"group of the service's primary task set.",
        )
    replacement = next(a for a in arns if a != used[0])
    return {
        "task_definition": definition.arn, "container_name": container_name, "container_port": container_port,
        "network_configuration": _network_configuration(properties), "config": config,
        "service": service, "original": original, "original_tg": used[0], "replacement_tg": replacement,
        "names": {arn: n.get("name") for arn, n in zip(arns, pair.get("targetGroups"))},
        "prod": list((pair.get("prodTrafficRoute") or {}).get("listenerArns") or []),
        "test": list((pair.get("testTrafficRoute") or {}).get("listenerArns") or []),
    }


@rule("codedeploy", "refusal")
def ecs_deployment_needs_a_valid_appspec_revision() -> None:
    """CreateDeployment in an ECS application fails with RevisionRequiredException
    ("RevisionLocation must be specified") without a revision, and with
    InvalidRevisionException when the AppSpec (AppSpecContent, String or S3; JSON or
    YAML) cannot be parsed, has no single AWS::ECS::Service TargetService with a
    TaskDefinition and a LoadBalancerInfo, names a task definition that does not
    exist, or a ContainerName/ContainerPort the task definition lacks; an unknown
    deploymentConfigName is DeploymentConfigDoesNotExistException, a non-ECS one
    InvalidDeploymentConfigNameException, a service without a primary task set
    InvalidECSServiceException
    (https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-resources.html#reference-appspec-file-structure-resources-ecs)."""

    @wrap(CodeDeployBackend, "create_deployment")
    def create_deployment(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _CREATE_DEPLOYMENT.bind(self, *args, **kwargs).arguments
        group = _ecs_group(self, bound)
        if group is not None:
            _plan(self, group, bound)
        return original(self, *args, **kwargs)


@rule("codedeploy", "refusal")
def one_active_deployment_per_deployment_group() -> None:
    """CreateDeployment in an ECS deployment group that already has a deployment
    Created, Queued, InProgress, Baking or Ready fails with
    DeploymentLimitExceededException "The Deployment Group '<group>' already has an
    active Deployment '<id>'"
    (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_CreateDeployment.html)."""

    @wrap(CodeDeployBackend, "create_deployment")
    def create_deployment(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _CREATE_DEPLOYMENT.bind(self, *args, **kwargs).arguments
        group = _ecs_group(self, bound)
        if group is not None:
            for deployment in self.deployments.values():
                if deployment.deployment_group is group and deployment.status in _ACTIVE:
                    raise _error(
                        "DeploymentLimitExceededException",
                        f"The Deployment Group '{group.deployment_group_name}' already has an active Deployment "
                        f"'{deployment.deployment_id}'",
                    )
        return original(self, *args, **kwargs)


# --- Running a deployment ----------------------------------------------------------


@dataclass
class _Run:
    """One ECS deployment's state (kept on its DeploymentInfo as `_ecs_run`)."""

    deployment: Any
    backend: Any  # CodeDeployBackend
    ecs: Any  # EC2ContainerServiceBackend
    service: Any
    original: Any  # the Blue task set
    replacement: Any  # the Green task set (None for a rollback deployment)
    original_tg: str
    replacement_tg: str
    names: dict[str, str]
    prod: list[str]
    test: list[str]
    routing: dict[str, Any]
    container: tuple[str, int]
    weight: int = 0  # the replacement's share of the production traffic
    test_switched: bool = False
    lifecycle: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_status: str = "InProgress"
    updated: float = field(default_factory=time.time)


# Deployments under way, for the alarm hook.
_RUNS: dict[str, _Run] = {}
# Checks before each step; each returns None or (status, error code, message, the
# autoRollbackConfiguration event that rolls it back). Rules register theirs.
_GATES: list[Callable[[_Run], tuple[str, str, str, str] | None]] = []
# Checks when the replacement's Install ends.
_INSTALL_GATES: list[Callable[[_Run], tuple[str, str, str, str] | None]] = []


def _new_id(backend: Any) -> str:
    """AWS deployment IDs: d- and nine upper-case letters or digits (moto: a UUID)."""
    alphabet = string.ascii_uppercase + string.digits
    while True:
        candidate = "d-" + "".join(random.choices(alphabet, k=9))
        if candidate not in backend.deployments:
            return candidate


def _set_event(run: _Run, name: str, status: str, ts: float) -> None:
    event = run.lifecycle[name]
    event["status"] = status
    when = _now_dt(ts)
    if status == "InProgress":
        event["startTime"] = when
    elif status in ("Succeeded", "Failed"):  # a Skipped event never started
        event.setdefault("startTime", when)
        event["endTime"] = when
    run.updated = ts


def _later(run: _Run, delay: float, step: str, action: Callable[[_Run, float], None]) -> None:
    """Run `action(run, due time)` after `delay` real seconds, unless the deployment ended."""
    due: dict[str, float] = {}

    def apply() -> None:
        if run.deployment.status == "InProgress":
            action(run, due["ts"])

    due["ts"] = TIMELINE.schedule(_STEP, run.deployment.deployment_id, None, step, delay, apply)


def _listener(run: _Run, arn: str) -> Any:
    for balancer in elbv2_backends[run.backend.account_id][run.backend.region_name].load_balancers.values():
        if arn in balancer.listeners:
            return balancer.listeners[arn]
    return None


def _rewrite_forwards(run: _Run, listener_arns: list[str], rewrite: Callable[[Any], Any]) -> None:
    """Apply `rewrite` to every action of the listeners: default actions (moto keeps
    them twice: the listener's and its default rule's) and listener rules."""
    for arn in listener_arns:
        listener = _listener(run, arn)
        if listener is None:
            continue
        listener.default_actions = [rewrite(a) for a in listener.default_actions or []]
        listener._default_rule[0].actions = listener.default_actions
        for listener_rule in listener._non_default_rules.values():
            listener_rule.actions = [rewrite(a) for a in listener_rule.actions or []]


def _weighted(original: str, replacement: str, weight: int) -> Callable[[Any], Any]:
    """A forward to `original` becomes a weighted forward listing both groups:
    replacement `weight`, original 100 - weight (AWS keeps the group without traffic
    in the list with weight 0, and drops the plain TargetGroupArn)."""

    def rewrite(action: Any) -> Any:
        if original not in _forwarded_target_groups(action):
            return action
        data = copy.deepcopy(action.data)
        data["Type"] = "forward"
        plain = data.pop("TargetGroupArn", None)
        config = data.setdefault("ForwardConfig", {})
        groups = config.get("TargetGroups") or [{"TargetGroupArn": plain, "Weight": 1}]
        if not any(g.get("TargetGroupArn") == replacement for g in groups):
            groups.insert(0, {"TargetGroupArn": replacement, "Weight": 0})
        for group in groups:
            if group.get("TargetGroupArn") == replacement:
                group["Weight"] = weight
            elif group.get("TargetGroupArn") == original:
                group["Weight"] = 100 - weight
        config["TargetGroups"] = groups
        config.setdefault("TargetGroupStickinessConfig", {"Enabled": False})
        return FakeAction(data)

    return rewrite


def _redirected(source: str, destination: str) -> Callable[[Any], Any]:
    """A forward to `source` forwards to `destination` instead (the test listener)."""

    def rewrite(action: Any) -> Any:
        if source not in _forwarded_target_groups(action):
            return action
        data = copy.deepcopy(action.data)
        if data.get("TargetGroupArn") == source:
            data["TargetGroupArn"] = destination
        groups = (data.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            merged: dict[str, dict[str, Any]] = {}
            for group in groups:
                arn = destination if group.get("TargetGroupArn") == source else group.get("TargetGroupArn")
                if arn in merged:
                    merged[arn]["Weight"] = int(merged[arn].get("Weight", 1)) + int(group.get("Weight", 1))
                else:
                    merged[arn] = dict(group, TargetGroupArn=arn)
            data["ForwardConfig"]["TargetGroups"] = list(merged.values())
        return FakeAction(data)

    return rewrite


def _gate(run: _Run, ts: float, gates: list[Callable[[_Run], Any]] | None = None) -> bool:
    """Run the checks; stop the deployment (rolling back if configured) when one fails."""
    if run.service.status != "ACTIVE" or run.original not in run.service.task_sets:
        _stop(run, ts, "Failed", "INVALID_ECS_SERVICE",
              f"The Amazon ECS service {run.service.name} is not active.", rollback=False)
        return True
    for gate in _GATES if gates is None else gates:
        reason = gate(run)
        if reason:
            status, code, message, event = reason
            _stop(run, ts, status, code, message, rollback=_rolls_back(run, event))
            return True
    return False


def _rolls_back(run: _Run, event: str) -> bool:
    # The deployment's own autoRollbackConfiguration overrides the group's.
    config = run.deployment.auto_rollback_configuration or run.deployment.deployment_group.auto_rollback_configuration or {}
    return bool(config.get("enabled")) and event in (config.get("events") or [])


def _start(run: _Run, plan: dict[str, Any], ts: float) -> None:
    """InProgress: BeforeInstall done, the replacement task set starts (Install)."""
    service = run.service
    # A replacement a deployment stopped or failed without rollback left behind is replaced
    # by this one; production traffic it still had goes back to the original first, so
    # no weight stays on a target group whose tasks are gone.
    for leftover in [t for t in service.task_sets if t.status != "PRIMARY"]:
        _delete_task_set(service, leftover, ts)
    stray = _weighted(run.original_tg, run.replacement_tg, 0)

    def reset(action: Any) -> Any:
        groups = ((action.data.get("ForwardConfig") or {}).get("TargetGroups")) or []
        if any(g.get("TargetGroupArn") == run.replacement_tg and int(g.get("Weight", 0)) > 0 for g in groups):
            return stray(action)
        return action

    _rewrite_forwards(run, run.prod, reset)
    run.lifecycle = {name: {"lifecycleEventName": name, "status": "Pending"} for name in _LIFECYCLE}
    _set_event(run, "BeforeInstall", "Succeeded", ts)
    _set_event(run, "Install", "InProgress", ts)
    run.replacement = _new_task_set(
        run.ecs, service, plan["task_definition"],
        [{"targetGroupArn": run.replacement_tg, "containerName": run.container[0], "containerPort": run.container[1]}],
        "ACTIVE", external_id=run.deployment.deployment_id, network_configuration=plan["network_configuration"],
    )
    install = scaled("codedeploy.install")
    _stabilize_later(run.ecs, service, run.replacement, install)
    _later(run, install, "install-done", _install_done)


def _install_done(run: _Run, ts: float) -> None:
    """Install ends: the replacement is stable (else the install gates fail the
    deployment); the test listener goes to it; production traffic starts to shift."""
    if _gate(run, ts, _INSTALL_GATES) or _gate(run, ts):
        return
    for name in ("Install", "AfterInstall"):
        _set_event(run, name, "Succeeded", ts)
    if run.test:
        _rewrite_forwards(run, run.test, _redirected(run.original_tg, run.replacement_tg))
        run.test_switched = True
        _record(_EVENT, run.deployment.deployment_id, None, "test-traffic", ts)
    for name in ("AllowTestTraffic", "AfterAllowTestTraffic", "BeforeAllowTraffic"):
        _set_event(run, name, "Succeeded", ts)
    _set_event(run, "AllowTraffic", "InProgress", ts)
    _shift(run, ts, checked=True)


def _next_weight(routing: dict[str, Any], weight: int) -> tuple[int, float]:
    """The replacement's next share and the minutes until the step after it."""
    if routing.get("type") == "TimeBasedCanary":
        canary = routing.get("timeBasedCanary") or {}
        return (int(canary.get("canaryPercentage", 10)) if weight == 0 else 100), float(canary.get("canaryInterval", 0))
    if routing.get("type") == "TimeBasedLinear":
        linear = routing.get("timeBasedLinear") or {}
        return min(100, weight + int(linear.get("linearPercentage", 10))), float(linear.get("linearInterval", 0))
    return 100, 0.0


def _shift(run: _Run, ts: float, checked: bool = False) -> None:
    """One traffic step on the production listener; the replacement only ever gets
    weight once its task set is STEADY_STATE with healthy tasks (Install)."""
    if not checked and _gate(run, ts):
        return
    if _gate(run, ts, [_replacement_fails_health_checks]):
        return  # (Install only succeeds for a serving replacement: a guard, not a path)
    weight, minutes = _next_weight(run.routing, run.weight)
    _rewrite_forwards(run, run.prod, _weighted(run.original_tg, run.replacement_tg, weight))
    _record(_EVENT, run.deployment.deployment_id, f"traffic-{run.weight}", f"traffic-{weight}", ts)
    run.weight, run.updated = weight, ts
    if weight < 100:
        _later(run, minutes * 60 * SETTINGS.time_scale, "next-shift", _shift)
        return
    _set_event(run, "AllowTraffic", "Succeeded", ts)
    _set_event(run, "AfterAllowTraffic", "Succeeded", ts)
    _make_primary(run.service, run.replacement)
    # Then the original task set waits the group's termination time before it goes.
    run.deployment.instance_termination_wait_time_started = True
    terminate = (run.deployment.deployment_group.blue_green_deployment_configuration or {}).get(
        "terminateBlueInstancesOnDeploymentSuccess") or {}
    wait = float(terminate.get("terminationWaitTimeInMinutes") or 0) * 60 * SETTINGS.time_scale
    _later(run, wait, "termination-wait-done", _terminate)


def _terminate(run: _Run, ts: float) -> None:
    """The termination wait is over: the original task set is deleted, Succeeded."""
    if _gate(run, ts):
        return
    terminate = (run.deployment.deployment_group.blue_green_deployment_configuration or {}).get(
        "terminateBlueInstancesOnDeploymentSuccess") or {}
    if terminate.get("action") != "KEEP_ALIVE":
        _delete_task_set(run.service, run.original, ts)
    _finish(run, ts, "Succeeded", "Succeeded")


def _finish(run: _Run, ts: float, status: str, target_status: str) -> None:
    deployment = run.deployment
    before = deployment.status
    deployment.status = status
    deployment.complete_time = _now_dt(ts)
    run.target_status, run.updated = target_status, ts
    deployment.deployment_overview = {
        "Pending": 0, "InProgress": 0, "Succeeded": int(target_status == "Succeeded"),
        "Failed": int(target_status == "Failed"), "Skipped": 0, "Ready": 0,
    }
    _RUNS.pop(deployment.deployment_id, None)
    TIMELINE.cancel(_STEP, deployment.deployment_id)
    _record(_EVENT, deployment.deployment_id, before, status, ts)


def _stop(run: _Run, ts: float, status: str, code: str, message: str, rollback: bool) -> None:
    """End the deployment as Failed or Stopped; the lifecycle event under way failed,
    the later ones are skipped. Traffic and task sets stay as they are unless it rolls back."""
    if run.deployment.status in _FINAL:
        return
    for name in _LIFECYCLE:
        event = run.lifecycle[name]
        if event["status"] == "InProgress":
            _set_event(run, name, "Failed", ts)
        elif event["status"] == "Pending":
            _set_event(run, name, "Skipped", ts)
    run.deployment.error_information = {"code": code, "message": message}
    _finish(run, ts, status, "Failed")
    if rollback:
        _roll_back(run, ts)


def _appspec_revision(task_definition: str, container: tuple[str, int]) -> dict[str, Any]:
    content = json.dumps({"version": 0.0, "Resources": [{"TargetService": {
        "Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": task_definition,
        "LoadBalancerInfo": {"ContainerName": container[0], "ContainerPort": container[1]}}}}]})
    return {"revisionType": "AppSpecContent",
            "appSpecContent": {"content": content, "sha256": hashlib.sha256(content.encode()).hexdigest()}}


def _roll_back(run: _Run, ts: float) -> None:
    """Traffic back to the original task set (production: original 100, replacement 0,
    as AWS leaves it; test listener: the original group), the original PRIMARY again,
    the replacement deleted; a rollback deployment (creator codeDeployRollback,
    CodeDeployDefault.ECSAllAtOnce) records it, Succeeded."""
    deployment_id = run.deployment.deployment_id
    if run.weight > 0:
        _rewrite_forwards(run, run.prod, _weighted(run.original_tg, run.replacement_tg, 0))
        _record(_EVENT, deployment_id, f"traffic-{run.weight}", "traffic-0", ts)
        run.weight = 0
    if run.test_switched:
        _rewrite_forwards(run, run.test, _redirected(run.replacement_tg, run.original_tg))
        run.test_switched = False
        _record(_EVENT, deployment_id, "test-traffic", "test-traffic-reverted", ts)
    if run.original in run.service.task_sets:
        _make_primary(run.service, run.original)
    if run.replacement is not None:
        _delete_task_set(run.service, run.replacement, ts)

    backend, original = run.backend, run.deployment
    rollback = DeploymentInfo(
        original.application, original.deployment_group,
        _appspec_revision(run.original.task_definition, run.container), _ROLLBACK_CONFIG,
        None, None, None, None, None, None, None, "codeDeployRollback",
    )
    rollback.deployment_id = _new_id(backend)
    backend.deployments[rollback.deployment_id] = rollback
    rollback.create_time = rollback.start_time = rollback.complete_time = _now_dt(ts)
    rollback.status = "Succeeded"
    rollback.deployment_overview = {"Pending": 0, "InProgress": 0, "Succeeded": 1, "Failed": 0, "Skipped": 0, "Ready": 0}
    rollback.rollback_info = {
        "rollbackTriggeringDeploymentId": deployment_id,
        "rollbackMessage": f"Deployment {rollback.deployment_id} is triggered to roll back deployment {deployment_id}.",
    }
    original.rollback_info = {
        "rollbackDeploymentId": rollback.deployment_id,
        "rollbackMessage": f"Deployment {deployment_id} terminated. Automatic rollback is triggered with a "
                           f"DeploymentId {rollback.deployment_id}.",
    }
    rollback._ecs_run = _Run(
        rollback, backend, run.ecs, run.service, run.original, None, run.original_tg, run.replacement_tg,
        run.names, run.prod, run.test, _routing(_ROLLBACK_CONFIG), run.container, target_status="Succeeded",
        lifecycle={n: {"lifecycleEventName": n, "status": "Succeeded", "startTime": _now_dt(ts),
                       "endTime": _now_dt(ts)} for n in _LIFECYCLE},
        updated=ts,
    )
    _record(_EVENT, rollback.deployment_id, None, "InProgress", ts)
    _record(_EVENT, rollback.deployment_id, "InProgress", "Succeeded", ts)


@rule("codedeploy", "waiting")
def ecs_deployment_shifts_traffic_to_a_replacement_task_set() -> None:
    """CreateDeployment in an ECS application (Created, at once InProgress) creates a
    replacement task set (the AppSpec's task definition, scale 100 %, externalId the
    deployment ID) in the group's target group the original PRIMARY task set does not
    use; after the scaled `codedeploy.install` it is STEADY_STATE and the test
    listener's forwards to the original group go to it; then the production listener's
    forwards become weighted forwards {replacement: w, original: 100 - w} with w as the
    config says (canary: its percentage, then 100 after the interval; linear: + its
    percentage every interval; all at once: 100), intervals = minutes x 60 x
    time_scale; at 100 the replacement becomes PRIMARY (the service's taskDefinition
    and loadBalancers are its), the original stays listed with weight 0, and after the
    group's terminationWaitTimeInMinutes (x 60 x time_scale) the original task set is
    deleted and the deployment Succeeded. Deployment IDs are d-XXXXXXXXX
    (https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-steps-ecs.html)."""

    @wrap(CodeDeployBackend, "create_deployment")
    def create_deployment(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _CREATE_DEPLOYMENT.bind(self, *args, **kwargs).arguments
        group = _ecs_group(self, bound)
        moto_id = original(self, *args, **kwargs)
        if group is None:
            return moto_id
        plan = _plan(self, group, bound)
        deployment = self.deployments.pop(moto_id)
        deployment.deployment_id = _new_id(self)
        self.deployments[deployment.deployment_id] = deployment
        if group.tags:  # moto tagged the deployment under its own ID
            self.tagger.delete_all_tags_for_resource(self._arn(f"deployment:{moto_id}"))
            self.tagger.tag_resource(self._arn(f"deployment:{deployment.deployment_id}"), group.tags)
        deployment.deployment_config_name = plan["config"]
        content = (deployment.revision.get("appSpecContent") or {}).get("content")
        if content and "sha256" not in deployment.revision["appSpecContent"]:
            # AWS answers the revision with the content's SHA-256.
            deployment.revision["appSpecContent"]["sha256"] = hashlib.sha256(content.encode()).hexdigest()
        run = _Run(
            deployment, self, ecs_backends[self.account_id][self.region_name], plan["service"], plan["original"],
            None, plan["original_tg"], plan["replacement_tg"], plan["names"], plan["prod"], plan["test"],
            _routing(plan["config"]), (plan["container_name"], plan["container_port"]),
        )
        deployment._ecs_run = run
        ts = time.time()
        deployment.create_time = _now_dt(ts)
        _record(_EVENT, deployment.deployment_id, None, "Created", ts)
        deployment.status, deployment.start_time = "InProgress", _now_dt(ts)
        deployment.deployment_overview = None  # AWS reports none while an ECS deployment runs
        _record(_EVENT, deployment.deployment_id, "Created", "InProgress", ts)
        _RUNS[deployment.deployment_id] = run
        _start(run, plan, ts)
        return deployment.deployment_id


def _replacement_fails_health_checks(run: _Run) -> tuple[str, str, str, str] | None:
    if _serving(run.ecs, run.replacement):
        return None
    name = run.names.get(run.replacement_tg, run.replacement_tg)
    return (
        "Failed", "ECS_UPDATE_ERROR",
        f"The ECS deployment failed: the tasks of the replacement task set {run.replacement.id} "
        f"(image {_image(run.ecs, run.replacement.task_definition)}) failed the health checks of target group {name}.",
        "DEPLOYMENT_FAILURE",
    )


@rule("codedeploy", "waiting")
def failing_replacement_fails_the_deployment() -> None:
    """When the replacement task set's tasks fail their health checks (an image in
    `unhealthy_images`), the deployment is Failed when Install ends: errorInformation
    code ECS_UPDATE_ERROR, the Install lifecycle event Failed and the later ones
    Skipped; no traffic ever moved. With autoRollbackConfiguration enabled and
    DEPLOYMENT_FAILURE among its events, it rolls back: the replacement task set is
    deleted, rollbackInfo names the rollback deployment
    (https://docs.aws.amazon.com/codedeploy/latest/userguide/deployments-rollback-and-redeploy.html)."""
    _INSTALL_GATES.append(_replacement_fails_health_checks)


def _alarm_config(run: _Run) -> dict[str, Any]:
    def as_dict(config: Any) -> dict[str, Any]:
        if config is None or isinstance(config, dict):
            return config or {}
        return {"enabled": config.enabled, "alarms": config.alarms}

    # overrideAlarmConfiguration on the deployment replaces the group's.
    return as_dict(run.deployment.override_alarm_configuration) or as_dict(run.deployment.deployment_group.alarm_configuration)


def _firing_alarms(run: _Run) -> list[str]:
    config = _alarm_config(run)
    if not config.get("enabled"):
        return []
    alarms = cloudwatch_backends[run.backend.account_id][run.backend.region_name].alarms
    names = [a.get("name") for a in config.get("alarms") or [] if a.get("name")]
    return [n for n in names if n in alarms and alarms[n].state_value == "ALARM"]


def _alarm_active(run: _Run) -> tuple[str, str, str, str] | None:
    firing = _firing_alarms(run)
    if not firing:
        return None
    return "Stopped", "ALARM_ACTIVE", _ALARM_MESSAGE + ", ".join(f"<{n}>" for n in firing), "DEPLOYMENT_STOP_ON_ALARM"


@rule("codedeploy", "waiting")
def alarm_in_alarm_stops_the_deployment() -> None:
    """While an ECS deployment runs (at the end of Install, before every traffic
    step, at the end of the termination wait, and as soon as SetAlarmState puts an
    alarm in ALARM), an enabled alarmConfiguration alarm of the group (or the
    deployment's overrideAlarmConfiguration) in state ALARM stops it: status Stopped,
    errorInformation ALARM_ACTIVE "One or more alarms have been activated ...
    Activated alarms: <name>". With autoRollbackConfiguration enabled and
    DEPLOYMENT_STOP_ON_ALARM among its events, traffic goes back to the original
    task set and the replacement is deleted
    (https://docs.aws.amazon.com/codedeploy/latest/userguide/monitoring-create-alarms.html)."""
    _GATES.append(_alarm_active)

    @wrap(CloudWatchBackend, "set_alarm_state")
    def set_alarm_state(original: Any, self: Any, alarm_name: str, *args: Any, **kwargs: Any) -> Any:
        result = original(self, alarm_name, *args, **kwargs)
        alarm = self.alarms.get(alarm_name)
        if alarm is not None and alarm.state_value == "ALARM":
            for run in list(_RUNS.values()):
                alive = run.backend.deployments.get(run.deployment.deployment_id) is run.deployment
                if not alive:  # moto was reset
                    _RUNS.pop(run.deployment.deployment_id, None)
                elif (run.backend.account_id, run.backend.region_name) == (self.account_id, self.region_name) \
                        and alarm_name in _firing_alarms(run):
                    with TIMELINE.lock:
                        _gate(run, time.time())
        return result


# --- APIs moto lacks, and what GetDeployment reports --------------------------------


def _deployment_id(response: Any) -> str:
    deployment_id = response._get_param("deploymentId")
    if not deployment_id:
        raise _error("DeploymentIdRequiredException", "At least one deployment ID must be specified.")
    return deployment_id


@rule("codedeploy", "missing-api")
def stop_deployment_api() -> None:
    """StopDeployment(deploymentId, autoRollbackEnabled) stops a deployment under
    way: status Stopped, errorInformation MANUAL_STOP; with autoRollbackEnabled an ECS
    deployment rolls back (traffic to the original task set, replacement deleted, a
    rollback deployment). Answers {status: Succeeded}; a finished deployment is
    DeploymentAlreadyCompletedException, an unknown one DeploymentDoesNotExistException
    (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_StopDeployment.html)."""

    def stop_deployment(self: Any) -> ActionResult:
        deployment_id = _deployment_id(self)
        deployment = self.codedeploy_backend.get_deployment(deployment_id)
        if deployment.status in _FINAL:
            raise _error("DeploymentAlreadyCompletedException", f"The deployment {deployment_id} has already completed.")
        run = getattr(deployment, "_ecs_run", None)
        ts = time.time()
        message = "The deployment was stopped by a user."
        if run is not None:
            with TIMELINE.lock:
                _stop(run, ts, "Stopped", "MANUAL_STOP", message, rollback=bool(self._get_param("autoRollbackEnabled")))
        else:  # moto runs no other deployment: nothing to undo
            deployment.status, deployment.complete_time = "Stopped", _now_dt(ts)
            deployment.error_information = {"code": "MANUAL_STOP", "message": message}
        return ActionResult({"status": "Succeeded", "statusMessage": f"Deployment {deployment_id} was stopped."})

    CodeDeployResponse.stop_deployment = stop_deployment


def _ecs_target(run: _Run) -> dict[str, Any]:
    def task_set_info(task_set: Any, label: str, weight: int, target_group: str) -> dict[str, Any]:
        present = task_set in run.service.task_sets
        return {
            "identifer": task_set.id,  # sic: AWS's member name
            "desiredCount": task_set.computed_desired_count if present else 0,
            "pendingCount": task_set.pending_count if present else 0,
            "runningCount": task_set.running_count if present else 0,
            "status": task_set.status if present else "DRAINING",
            "trafficWeight": float(weight),
            "targetGroup": {"name": run.names.get(target_group, target_group)},
            "taskSetLabel": label,
        }

    sets = [task_set_info(run.original, "Blue", 100 - run.weight, run.original_tg)]
    if run.replacement is not None:
        sets.append(task_set_info(run.replacement, "Green", run.weight, run.replacement_tg))
    return {
        "deploymentTargetType": "ECSTarget",
        "ecsTarget": {
            "deploymentId": run.deployment.deployment_id,
            "targetId": _target_id(run),
            "targetArn": run.service.arn,
            "lastUpdatedAt": _now_dt(run.updated),
            "lifecycleEvents": [dict(run.lifecycle[n]) for n in _LIFECYCLE],
            "status": run.target_status,
            "taskSetsInfo": sets,
        },
    }


def _target_id(run: _Run) -> str:
    return f"{run.service.cluster_name}:{run.service.name}"


def _run_target(response: Any, deployment_id: str, target_id: str | None) -> dict[str, Any]:
    deployment = response.codedeploy_backend.get_deployment(deployment_id)
    run = getattr(deployment, "_ecs_run", None)
    if not target_id:
        raise _error("DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
    if run is None or target_id != _target_id(run):
        raise _error(
            "DeploymentTargetDoesNotExistException",
            f"The provided target ID {target_id} does not belong to the deployment {deployment_id}.",
        )
    return _ecs_target(run)


@rule("codedeploy", "missing-api")
def deployment_target_apis() -> None:
    """ListDeploymentTargets answers an ECS deployment's one target,
    "<cluster>:<service>"; GetDeploymentTarget / BatchGetDeploymentTargets answer it
    as an ECSTarget: status, lastUpdatedAt, the eight lifecycleEvents (BeforeInstall
    ... AfterAllowTraffic) and taskSetsInfo (identifer, desired/pending/runningCount,
    status, trafficWeight, targetGroup name, taskSetLabel Blue|Green); an unknown
    target is DeploymentTargetDoesNotExistException
    (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_GetDeploymentTarget.html)."""

    def list_deployment_targets(self: Any) -> ActionResult:
        deployment = self.codedeploy_backend.get_deployment(_deployment_id(self))
        run = getattr(deployment, "_ecs_run", None)
        return ActionResult({"targetIds": [_target_id(run)] if run is not None else []})

    def get_deployment_target(self: Any) -> ActionResult:
        target = _run_target(self, _deployment_id(self), self._get_param("targetId"))
        return ActionResult({"deploymentTarget": target})

    def batch_get_deployment_targets(self: Any) -> ActionResult:
        deployment_id = _deployment_id(self)
        ids = self._get_param("targetIds") or []
        if not ids:
            raise _error("DeploymentTargetIdRequiredException", "A deployment target ID was not provided.")
        return ActionResult({"deploymentTargets": [_run_target(self, deployment_id, t) for t in ids]})

    CodeDeployResponse.list_deployment_targets = list_deployment_targets
    CodeDeployResponse.get_deployment_target = get_deployment_target
    CodeDeployResponse.batch_get_deployment_targets = batch_get_deployment_targets


@rule("codedeploy", "fidelity")
def deployment_reports_error_and_rollback_info() -> None:
    """GetDeployment / BatchGetDeployments report the deployment's errorInformation
    {code, message} and rollbackInfo (rollbackDeploymentId or
    rollbackTriggeringDeploymentId, rollbackMessage), completeTime once it ended, and
    for an ECS deployment no deploymentOverview while it runs, then the count of its
    one target by status (moto answered both infos empty for ever)
    (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_DeploymentInfo.html)."""
    original = codedeploy_responses._deployment_info

    def deployment_info(deployment: Any) -> dict[str, Any]:
        info = original(deployment)
        for key, attribute in (("errorInformation", "error_information"), ("rollbackInfo", "rollback_info")):
            value = getattr(deployment, attribute, None)
            if value:
                info[key] = dict(value)
            else:
                info.pop(key, None)
        if getattr(deployment, "_ecs_run", None) is not None:
            # Server-deployment fields AWS leaves out of an ECS deployment.
            for key in ("targetInstances", "ignoreApplicationStopFailures", "updateOutdatedInstancesOnly",
                        "fileExistsBehavior", "previousRevision", "deploymentStatusMessages",
                        "additionalDeploymentStatusInfo", "externalId", "relatedDeployments"):
                info.pop(key, None)
            if deployment.deployment_overview is None:
                info.pop("deploymentOverview", None)
        return info

    codedeploy_responses._deployment_info = deployment_info
