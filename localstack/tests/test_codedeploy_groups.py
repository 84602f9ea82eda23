"""CodeDeploy deployment groups read back as created, and updated in place."""

from __future__ import annotations

from conftest import error_code, make_role, name
from test_codedeploy_ecs import _setup

ALARMS = {"enabled": True, "ignorePollAlarmFailure": False, "alarms": [{"name": "alarm-5xx"}]}


def test_deployment_group_returns_its_alarm_configuration(emu, vpc):
    cd, group = _setup(emu, vpc)
    cd.create_deployment_group(**group, alarmConfiguration=ALARMS)
    info = cd.get_deployment_group(applicationName=group["applicationName"], deploymentGroupName=group["deploymentGroupName"])
    assert info["deploymentGroupInfo"]["alarmConfiguration"] == ALARMS


def test_update_deployment_group_changes_the_given_fields_and_checks_them(emu, vpc):
    cd, group = _setup(emu, vpc)
    cd.create_deployment_group(**group)
    key = {"applicationName": group["applicationName"], "currentDeploymentGroupName": group["deploymentGroupName"]}
    cd.update_deployment_group(**key, deploymentConfigName="CodeDeployDefault.ECSLinear10PercentEvery1Minutes", alarmConfiguration=ALARMS)
    info = cd.get_deployment_group(applicationName=group["applicationName"], deploymentGroupName=group["deploymentGroupName"])["deploymentGroupInfo"]
    assert info["deploymentConfigName"] == "CodeDeployDefault.ECSLinear10PercentEvery1Minutes"
    assert info["alarmConfiguration"]["alarms"] == [{"name": "alarm-5xx"}]
    # The untouched fields stay.
    assert info["loadBalancerInfo"] == group["loadBalancerInfo"]
    # The same checks as CreateDeploymentGroup.
    powerless = make_role(emu, "codedeploy.amazonaws.com")
    code, message, _ = error_code(lambda: cd.update_deployment_group(**key, serviceRoleArn=powerless))
    assert code == "InvalidRoleException" and "ecs:DescribeServices" in message
    assert error_code(lambda: cd.update_deployment_group(**dict(key, currentDeploymentGroupName=name("nope"))))[0] == (
        "DeploymentGroupDoesNotExistException")
