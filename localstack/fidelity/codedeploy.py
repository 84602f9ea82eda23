"""CodeDeploy APIs moto lacks: DeleteDeploymentGroup, DeleteApplication,
GetDeploymentConfig (built-in CodeDeployDefault.* configs), ListDeploymentConfigs.

moto answers these with HTTP 500 (NotImplemented). As in AWS, the deletes are
idempotent (deleting something already gone succeeds) and deleting an
application deletes its deployment groups.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from moto.codedeploy.exceptions import CodeDeployException
from moto.codedeploy.models import CodeDeployBackend
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.responses import ActionResult, EmptyResult

from .patching import rule

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
