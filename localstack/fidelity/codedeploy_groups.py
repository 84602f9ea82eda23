"""CodeDeploy deployment groups as AWS keeps them: GetDeploymentGroup returns
the group's alarm configuration (moto answers `{}`), and UpdateDeploymentGroup
exists (moto lacks it) with the same checks as CreateDeploymentGroup for ECS
groups (AWS-CONTRACTS A15)."""

from __future__ import annotations

from typing import Any

import moto.codedeploy.responses as cd_responses
from moto.codedeploy.exceptions import CodeDeployException
from moto.codedeploy.models import AlarmConfiguration, CodeDeployBackend
from moto.codedeploy.responses import CodeDeployResponse
from moto.core.responses import ActionResult

from .patching import rule

# Fields of UpdateDeploymentGroup -> the group's attribute of the same meaning.
_UPDATABLE = {
    "deploymentConfigName": "deployment_config_name",
    "serviceRoleArn": "service_role_arn",
    "alarmConfiguration": "alarm_configuration",
    "autoRollbackConfiguration": "auto_rollback_configuration",
    "deploymentStyle": "deployment_style",
    "blueGreenDeploymentConfiguration": "blue_green_deployment_configuration",
    "loadBalancerInfo": "load_balancer_info",
    "ecsServices": "ecs_services",
    "triggerConfigurations": "trigger_configurations",
    "outdatedInstancesStrategy": "outdated_instances_strategy",
}


def _alarm_configuration(value: Any) -> dict[str, Any]:
    """The group's alarm configuration as the API shape (moto stores the request's
    dict, or its own AlarmConfiguration)."""
    if isinstance(value, AlarmConfiguration):
        return {
            "enabled": bool(value.enabled),
            "ignorePollAlarmFailure": bool(value.ignore_poll_alarm_failure),
            "alarms": list(value.alarms),
        }
    if isinstance(value, dict):
        return {
            "enabled": bool(value.get("enabled")),
            "ignorePollAlarmFailure": bool(value.get("ignorePollAlarmFailure")),
            "alarms": list(value.get("alarms") or []),
        }
    return {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []}


@rule("codedeploy", "fidelity")
def deployment_group_returns_its_alarm_configuration() -> None:
    """GetDeploymentGroup returns the alarmConfiguration the group was created or
    updated with (enabled, ignorePollAlarmFailure, alarms), as AWS does; moto
    answers an empty object
    (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_DeploymentGroupInfo.html).
    """
    original = cd_responses._deployment_group_info

    def info(group: Any) -> dict[str, Any]:
        out = original(group)
        out["alarmConfiguration"] = _alarm_configuration(group.alarm_configuration)
        return out

    # The responses look the function up as a module global at each call.
    cd_responses._deployment_group_info = info


@rule("codedeploy", "missing-api")
def update_deployment_group_api() -> None:
    """UpdateDeploymentGroup changes the fields it is given (and renames the group
    with newDeploymentGroupName); an ECS group must still pass the checks of
    CreateDeploymentGroup (InvalidRoleException, InvalidDeploymentStyleException,
    InvalidECSServiceException, InvalidTargetGroupPairException); an unknown group
    is DeploymentGroupDoesNotExistException
    (https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_UpdateDeploymentGroup.html).
    """

    def update_deployment_group(self: Any) -> ActionResult:
        from .codedeploy import _check_ecs_deployment_group

        backend: CodeDeployBackend = self.codedeploy_backend
        app = self._get_param("applicationName")
        current = self._get_param("currentDeploymentGroupName")
        if not app:
            raise CodeDeployException(
                "ApplicationNameRequiredException", "The minimum number of required application names was not specified."
            )
        if app not in backend.applications:
            raise CodeDeployException(
                "ApplicationDoesNotExistException", f"The application {app} does not exist with the user or AWS account."
            )
        group = backend.deployment_groups.get(app, {}).get(current or "")
        if group is None:
            raise CodeDeployException("DeploymentGroupDoesNotExistException", "Deployment group name does not exist.")
        changes = {field: self._get_param(field) for field in _UPDATABLE if self._get_param(field) is not None}
        if getattr(group.application, "compute_platform", None) == "ECS":
            merged = {attr: getattr(group, attr) for attr in _UPDATABLE.values()}
            merged.update({_UPDATABLE[f]: v for f, v in changes.items()})
            _check_ecs_deployment_group(backend, merged)
        for field, value in changes.items():
            setattr(group, _UPDATABLE[field], value)
        new_name = self._get_param("newDeploymentGroupName")
        if new_name and new_name != current:
            backend.deployment_groups[app][new_name] = backend.deployment_groups[app].pop(current)
            group.deployment_group_name = new_name
        return ActionResult({"hooksNotCleanedUp": []})

    CodeDeployResponse.update_deployment_group = update_deployment_group
