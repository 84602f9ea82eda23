"""CodeDeploy APIs moto lacks: DeleteDeploymentGroup, DeleteApplication,
GetDeploymentConfig (built-in CodeDeployDefault.* configs), ListDeploymentConfigs.

moto answers these with HTTP 500 (NotImplemented). As in AWS, the deletes are
idempotent (deleting something already gone succeeds) and deleting an
application deletes its deployment groups.

Also a refusal moto lacks: an ECS deployment group needs a service role CodeDeploy
may assume with the ECS permissions, blue/green with traffic control, a service with
the CODE_DEPLOY controller and a target group pair behind the production listener.
"""

from __future__ import annotations

import datetime
import inspect
import uuid
from typing import Any

from moto.codedeploy.exceptions import CodeDeployException
from moto.codedeploy.models import CodeDeployBackend
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.responses import ActionResult, EmptyResult

from .patching import rule, wrap

_CREATE_GROUP = inspect.signature(CodeDeployBackend.create_deployment_group)

_CREATED = datetime.datetime(2014, 11, 12, tzinfo=datetime.timezone.utc)


def _canary(percent: int, minutes: int) -> dict[str, Any]:
    return {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": percent, "canaryInterval": minutes}}


def _linear(percent: int, minutes: int) -> dict[str, Any]:
    return {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": percent, "linearInterval": minutes}}


_ALL_AT_ONCE = {"type": "AllAtOnce"}

# name -> (compute platform, minimumHealthyHosts or None, trafficRoutingConfig or None)
BUILT_IN_CONFIGS: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = {
    "CodeDeployDefault.AllAtOnce": ("Server", {"type": "HOST_COUNT", "value": 0}, None),
    "CodeDeployDefault.HalfAtATime": ("Server", {"type": "FLEET_PERCENT", "value": 50}, None),
    "CodeDeployDefault.OneAtATime": ("Server", {"type": "FLEET_PERCENT", "value": 99}, None),
    "CodeDeployDefault.ECSAllAtOnce": ("ECS", None, _ALL_AT_ONCE),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("ECS", None, _canary(10, 5)),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("ECS", None, _canary(10, 15)),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("ECS", None, _linear(10, 1)),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("ECS", None, _linear(10, 3)),
    "CodeDeployDefault.LambdaAllAtOnce": ("Lambda", None, _ALL_AT_ONCE),
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": ("Lambda", None, _canary(10, 5)),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": ("Lambda", None, _canary(10, 10)),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": ("Lambda", None, _canary(10, 15)),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": ("Lambda", None, _canary(10, 30)),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": ("Lambda", None, _linear(10, 1)),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": ("Lambda", None, _linear(10, 2)),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": ("Lambda", None, _linear(10, 3)),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": ("Lambda", None, _linear(10, 10)),
}


def _config_info(name: str) -> dict[str, Any]:
    platform, healthy, routing = BUILT_IN_CONFIGS[name]
    info: dict[str, Any] = {
        "deploymentConfigId": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "deploymentConfigName": name,
        "createTime": _CREATED,
        "computePlatform": platform,
    }
    if healthy is not None:
        info["minimumHealthyHosts"] = dict(healthy)
    if routing is not None:
        info["trafficRoutingConfig"] = routing
    return info


@rule("codedeploy", "missing-api")
def delete_deployment_group_api() -> None:
    """DeleteDeploymentGroup removes the group and returns hooksNotCleanedUp=[];
    a group (or application) that does not exist is not an error."""

    def delete_deployment_group(self: Any, application_name: str, deployment_group_name: str) -> None:
        self.deployment_groups.get(application_name, {}).pop(deployment_group_name, None)
        arn = self._deployment_group_arn(application_name, deployment_group_name)
        self.tagger.delete_all_tags_for_resource(arn)

    CodeDeployBackend.delete_deployment_group = delete_deployment_group

    def delete_deployment_group_response(self: Any) -> ActionResult:
        app = self._get_param("applicationName")
        group = self._get_param("deploymentGroupName")
        if not app:
            raise CodeDeployException("ApplicationNameRequiredException", "The minimum number of required application names was not specified.")
        if not group:
            raise CodeDeployException("DeploymentGroupNameRequiredException", "The deployment group name was not specified.")
        self.codedeploy_backend.delete_deployment_group(app, group)
        return ActionResult({"hooksNotCleanedUp": []})

    delete_deployment_group_response.__name__ = "delete_deployment_group"
    CodeDeployResponse.delete_deployment_group = delete_deployment_group_response


@rule("codedeploy", "missing-api")
def delete_application_api() -> None:
    """DeleteApplication removes the application and all its deployment groups;
    an application that does not exist is not an error."""

    def delete_application(self: Any, application_name: str) -> None:
        for group in self.deployment_groups.pop(application_name, {}):
            self.tagger.delete_all_tags_for_resource(self._deployment_group_arn(application_name, group))
        self.applications.pop(application_name, None)
        self.tagger.delete_all_tags_for_resource(self._application_arn(application_name))

    CodeDeployBackend.delete_application = delete_application

    def delete_application_response(self: Any) -> EmptyResult:
        app = self._get_param("applicationName")
        if not app:
            raise CodeDeployException("ApplicationNameRequiredException", "The minimum number of required application names was not specified.")
        self.codedeploy_backend.delete_application(app)
        return EmptyResult()

    delete_application_response.__name__ = "delete_application"
    CodeDeployResponse.delete_application = delete_application_response


@rule("codedeploy", "missing-api")
def deployment_config_api() -> None:
    """GetDeploymentConfig / ListDeploymentConfigs know AWS's built-in
    CodeDeployDefault.* configurations (Server, ECS and Lambda, e.g.
    CodeDeployDefault.ECSLinear10PercentEvery1Minutes = TimeBasedLinear 10%/1 min);
    an unknown name fails with DeploymentConfigDoesNotExistException."""

    def get_deployment_config(self: Any) -> ActionResult:
        name = self._get_param("deploymentConfigName")
        if not name:
            raise CodeDeployException("DeploymentConfigNameRequiredException", "The deployment configuration name was not specified.")
        if name not in BUILT_IN_CONFIGS:
            raise CodeDeployException(
                "DeploymentConfigDoesNotExistException",
                f"The deployment configuration {name} does not exist with the user or AWS account.",
            )
        return ActionResult({"deploymentConfigInfo": _config_info(name)})

    def list_deployment_configs(self: Any) -> ActionResult:
        return ActionResult({"deploymentConfigsList": sorted(BUILT_IN_CONFIGS)})

    CodeDeployResponse.get_deployment_config = get_deployment_config
    CodeDeployResponse.list_deployment_configs = list_deployment_configs


# --- ECS blue/green deployment groups -------------------------------------------

CODEDEPLOY_SERVICE = "codedeploy.amazonaws.com"


def _ecs_role_actions(service_arn: str, listener_arn: str) -> list[tuple[str, str]]:
    """What CodeDeploy does with the service role in an ECS deployment (the
    AWSCodeDeployRoleForECS managed policy)."""
    rules = listener_arn.replace(":listener/", ":listener-rule/") + "/*"
    return [
        ("ecs:DescribeServices", service_arn),
        ("ecs:CreateTaskSet", service_arn),
        ("ecs:UpdateServicePrimaryTaskSet", service_arn),
        ("ecs:DeleteTaskSet", service_arn),
        ("elasticloadbalancing:DescribeTargetGroups", "*"),
        ("elasticloadbalancing:DescribeListeners", "*"),
        ("elasticloadbalancing:ModifyListener", listener_arn),
        ("elasticloadbalancing:DescribeRules", "*"),
        ("elasticloadbalancing:ModifyRule", rules),
    ]


def _find_listener(account_id: str, region: str, arn: str) -> Any:
    from moto.elbv2.models import elbv2_backends

    for balancer in elbv2_backends[account_id][region].load_balancers.values():
        if arn in balancer.listeners:
            return balancer.listeners[arn]
    return None


def _check_ecs_deployment_group(backend: Any, args: dict[str, Any]) -> None:
    from moto.ecs.models import ecs_backends
    from moto.elbv2.models import elbv2_backends

    from .ecs import _forwarded_target_groups
    from .policy_eval import first_denied, role_trusts

    role = args.get("service_role_arn") or ""
    if not role_trusts(role, CODEDEPLOY_SERVICE):
        raise CodeDeployException(
            "InvalidRoleException", f"AWS CodeDeploy does not have the permissions required to assume the role {role}."
        )
    style = args.get("deployment_style") or {}
    if (style.get("deploymentType"), style.get("deploymentOption")) != ("BLUE_GREEN", "WITH_TRAFFIC_CONTROL"):
        raise CodeDeployException(
            "InvalidDeploymentStyleException",
            "An Amazon ECS deployment group must use deploymentType BLUE_GREEN with deploymentOption "
            "WITH_TRAFFIC_CONTROL.",
        )

    services = args.get("ecs_services") or []
    if len(services) != 1:
        raise CodeDeployException("InvalidECSServiceException", "Specify exactly one Amazon ECS service.")
    cluster, name = services[0].get("clusterName") or "", services[0].get("serviceName") or ""
    ecs = ecs_backends[backend.account_id][backend.region_name]
    try:
        service = ecs._get_service(cluster, name)
    except Exception:
        service = None
    if service is None or service.status != "ACTIVE":
        raise CodeDeployException(
            "InvalidECSServiceException", f"The Amazon ECS service {name} in cluster {cluster} does not exist."
        )
    if (service.deployment_controller or {}).get("type") != "CODE_DEPLOY":
        raise CodeDeployException(
            "InvalidECSServiceException",
            f"The Amazon ECS service {name} in cluster {cluster} does not use the CODE_DEPLOY deployment controller.",
        )

    pairs = (args.get("load_balancer_info") or {}).get("targetGroupPairInfoList") or []
    invalid = lambda why: CodeDeployException("InvalidTargetGroupPairException", why)  # noqa: E731
    if len(pairs) != 1:
        raise invalid("Specify exactly one target group pair for an Amazon ECS deployment group.")
    pair = pairs[0]
    groups = [g.get("name") for g in pair.get("targetGroups") or []]
    elb = elbv2_backends[backend.account_id][backend.region_name]
    by_name = {tg.name: tg.arn for tg in elb.target_groups.values()}
    if len(groups) != 2 or len(set(groups)) != 2 or any(g not in by_name for g in groups):
        raise invalid(f"The target group pair must name two existing, different target groups: {groups}.")
    arns = {by_name[g] for g in groups}
    listeners = (pair.get("prodTrafficRoute") or {}).get("listenerArns") or []
    if len(listeners) != 1:
        raise invalid("Specify exactly one production listener.")
    prod = _find_listener(backend.account_id, backend.region_name, listeners[0])
    if prod is None:
        raise invalid(f"The production listener {listeners[0]} does not exist.")
    forwarded = {a for action in prod.default_actions or [] for a in _forwarded_target_groups(action)}
    if not forwarded & arns:
        raise invalid(f"The production listener {listeners[0]} does not forward to either target group of the pair.")
    for test in (pair.get("testTrafficRoute") or {}).get("listenerArns") or []:
        if _find_listener(backend.account_id, backend.region_name, test) is None:
            raise invalid(f"The test listener {test} does not exist.")
    if not {lb.get("targetGroupArn") for lb in service.load_balancers or []} & arns:
        raise invalid(f"The Amazon ECS service {name} does not use either target group of the pair.")

    denied = first_denied(role, _ecs_role_actions(service.arn, listeners[0]))
    if denied:
        raise CodeDeployException(
            "InvalidRoleException",
            f"The IAM role {role} does not give you permission to perform operations in the following AWS "
            f"service: {denied.split(':')[0]} ({denied}). Attach AWSCodeDeployRoleForECS to the role.",
        )


@rule("codedeploy", "refusal")
def ecs_deployment_group_needs_role_blue_green_and_target_group_pair() -> None:
    """CreateDeploymentGroup in an ECS application fails with InvalidRoleException
    unless codedeploy.amazonaws.com may assume the service role and it has the
    AWSCodeDeployRoleForECS permissions, InvalidDeploymentStyleException unless
    deploymentStyle is BLUE_GREEN WITH_TRAFFIC_CONTROL, InvalidECSServiceException
    unless the one ECS service exists with the CODE_DEPLOY deployment controller,
    and InvalidTargetGroupPairException unless the pair names two target groups,
    the production listener forwards to one of them and the service uses them
    (https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-groups-create-ecs.html).
    """

    @wrap(CodeDeployBackend, "create_deployment_group")
    def create_deployment_group(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _CREATE_GROUP.bind(self, *args, **kwargs).arguments
        app = self.applications.get(bound.get("application_name"))
        if app is not None and getattr(app, "compute_platform", None) == "ECS":
            if bound.get("deployment_group_name") not in self.deployment_groups.get(app.application_name, {}):
                _check_ecs_deployment_group(self, bound)
        return original(self, *args, **kwargs)
