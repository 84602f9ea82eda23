"""CodeDeploy blue/green deployments of ECS services run: the CODE_DEPLOY service's
first task set, the replacement task set, test and production traffic shifting
(linear, canary), alarms and failed health checks rolling back, StopDeployment, the
deployment target APIs."""

from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace

from conftest import error_code, make_role, name

LINEAR = "CodeDeployDefault.ECSLinear10PercentEvery1Minutes"
CANARY = "CodeDeployDefault.ECSCanary10Percent5Minutes"
ALL_AT_ONCE = "CodeDeployDefault.ECSAllAtOnce"


def _setup(emu, vpc, config=ALL_AT_ONCE, wait=0, alarm=None, rollback_events=None, rollout_seconds=None):
    """An ALB (prod :80 and test :8080 listeners, a /api/* rule on each) forwarding to
    `blue`, a CODE_DEPLOY service of 2 tasks on app:1 behind it, and an ECS deployment
    group with the blue/green target group pair."""
    elb, ecs, cd = emu.client("elbv2"), emu.client("ecs"), emu.client("codedeploy")
    role = make_role(emu, "codedeploy.amazonaws.com", managed=["AWSCodeDeployRoleForECS"])
    lb = elb.create_load_balancer(Name=name("alb"), Subnets=vpc["subnets"], SecurityGroups=[vpc["groups"][0]])
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (elb.create_target_group(Name=name(c), Protocol="HTTP", Port=8080, VpcId=vpc["vpc"], TargetType="ip")["TargetGroups"][0]
                   for c in ("blue", "green"))
    listeners = {}
    for role_name, port in (("prod", 80), ("test", 8080)):
        arn = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": blue["TargetGroupArn"]}])["Listeners"][0]["ListenerArn"]
        rule = elb.create_rule(ListenerArn=arn, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                               Actions=[{"Type": "forward", "TargetGroupArn": blue["TargetGroupArn"]}])["Rules"][0]["RuleArn"]
        listeners[role_name] = (arn, rule)
    cluster, family = name("cluster"), name("fam")
    ecs.create_cluster(clusterName=cluster)

    def revision(image):
        return ecs.register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": image, "cpu": 256, "memory": 512,
                                   "portMappings": [{"containerPort": 8080}]}],
        )["taskDefinition"]["taskDefinitionArn"]

    first = revision("app:1")
    if rollout_seconds is not None:
        emu.scale_for("ecs-deployment.rollout", rollout_seconds)
    service = ecs.create_service(
        cluster=cluster, serviceName="svc", taskDefinition=first, desiredCount=2, launchType="FARGATE",
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": blue["TargetGroupArn"], "containerName": "app", "containerPort": 8080}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": vpc["subnets"], "securityGroups": [vpc["groups"][1]]}},
    )["service"]
    app, group = name("app"), name("dg")
    cd.create_application(applicationName=app, computePlatform="ECS")
    extra = {}
    if alarm:
        extra["alarmConfiguration"] = {"enabled": True, "alarms": [{"name": alarm}]}
    if rollback_events:
        extra["autoRollbackConfiguration"] = {"enabled": True, "events": rollback_events}
    cd.create_deployment_group(
        applicationName=app, deploymentGroupName=group, serviceRoleArn=role, deploymentConfigName=config,
        deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        blueGreenDeploymentConfiguration={
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": wait},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"}},
        ecsServices=[{"serviceName": "svc", "clusterName": cluster}],
        loadBalancerInfo={"targetGroupPairInfoList": [{
            "targetGroups": [{"name": blue["TargetGroupName"]}, {"name": green["TargetGroupName"]}],
            "prodTrafficRoute": {"listenerArns": [listeners["prod"][0]]},
            "testTrafficRoute": {"listenerArns": [listeners["test"][0]]}}]},
        **extra,
    )
    return SimpleNamespace(elb=elb, ecs=ecs, cd=cd, cluster=cluster, app=app, group=group, revision=revision,
                           first=first, service=service, blue=blue["TargetGroupArn"], green=green["TargetGroupArn"],
                           blue_name=blue["TargetGroupName"], green_name=green["TargetGroupName"],
                           prod=listeners["prod"], test=listeners["test"])


def _appspec(task_definition, container="app", port=8080):
    return json.dumps({"version": 0.0, "Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {
        "TaskDefinition": task_definition, "LoadBalancerInfo": {"ContainerName": container, "ContainerPort": port}}}}]})


def _deploy(ns, task_definition, content=None, **extra):
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": content or _appspec(task_definition)}}
    return ns.cd.create_deployment(applicationName=ns.app, deploymentGroupName=ns.group, revision=revision, **extra)["deploymentId"]


def _info(ns, deployment_id):
    return ns.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]


def _status(ns, deployment_id):
    return _info(ns, deployment_id)["status"]


def _weights(ns, listener_arn, rule_arn=None):
    """{target group ARN: weight} of the listener's default action (or of a rule);
    a plain forward is {arn: 100}."""
    if rule_arn:
        action = ns.elb.describe_rules(RuleArns=[rule_arn])["Rules"][0]["Actions"][0]
    else:
        action = ns.elb.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]["DefaultActions"][0]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups and "TargetGroupArn" not in action:
        return {g["TargetGroupArn"]: g["Weight"] for g in groups}
    return {action["TargetGroupArn"]: 100}


def _health(ns, target_group):
    return sorted(d["TargetHealth"]["State"]
                  for d in ns.elb.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"])


def _task_sets(ns):
    return ns.ecs.describe_services(cluster=ns.cluster, services=["svc"])["services"][0]["taskSets"]


def _steps(emu, deployment_id):
    return [(e["from"], e["to"]) for e in emu.events(deployment_id) if e["resource_type"] == "codedeploy-deployment"]


def _wait_status(emu, ns, deployment_id, wanted, timeout=20.0):
    emu.wait_for(lambda: _status(ns, deployment_id), wanted, timeout=timeout)


def test_code_deploy_service_runs_a_primary_task_set(emu, vpc):
    ns = _setup(emu, vpc, rollout_seconds=0.5)
    [task_set] = ns.service["taskSets"]
    assert ns.service["deployments"] == [] and ns.service["taskDefinition"] == ns.first
    assert (task_set["status"], task_set["stabilityStatus"], task_set["taskDefinition"]) == ("PRIMARY", "STABILIZING", ns.first)
    assert task_set["scale"] == {"value": 100.0, "unit": "PERCENT"}
    assert task_set["loadBalancers"] == [{"targetGroupArn": ns.blue, "containerName": "app", "containerPort": 8080}]
    assert (task_set["computedDesiredCount"], task_set["runningCount"]) == (2, 0)
    assert task_set["id"].startswith("ecs-svc/") and task_set["taskSetArn"].endswith(task_set["id"])
    assert "externalId" not in task_set  # ECS made it, not a deployment
    # Its tasks are in its target group, starting; none in the other group of the pair.
    assert _health(ns, ns.blue) == ["initial", "initial"] and _health(ns, ns.green) == []
    emu.wait_for(lambda: _task_sets(ns)[0]["stabilityStatus"], "STEADY_STATE")
    assert _health(ns, ns.blue) == ["healthy", "healthy"] and _task_sets(ns)[0]["runningCount"] == 2
    assert [(e["from"], e["to"]) for e in emu.events(task_set["taskSetArn"])] == [("STABILIZING", "STEADY_STATE")]
    # desiredCount rescales the task set.
    ns.ecs.update_service(cluster=ns.cluster, service="svc", desiredCount=3)
    assert _task_sets(ns)[0]["computedDesiredCount"] == 3 and _health(ns, ns.blue) == ["healthy"] * 3
    # DeleteService removes the task sets.
    deleted = ns.ecs.delete_service(cluster=ns.cluster, service="svc", force=True)["service"]
    assert deleted["taskSets"] == [] and _health(ns, ns.blue) == []
    # A task set whose tasks fail their health checks never gets steady.
    emu.config(time_scale=0, unhealthy_images=["app:broken"])
    broken = ns.revision("app:broken")
    ns.ecs.create_service(
        cluster=ns.cluster, serviceName="broken", taskDefinition=broken, desiredCount=1, launchType="FARGATE",
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": ns.blue, "containerName": "app", "containerPort": 8080}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": vpc["subnets"], "securityGroups": [vpc["groups"][1]]}},
    )
    assert _health(ns, ns.blue) == ["unhealthy"]
    [task_set] = ns.ecs.describe_services(cluster=ns.cluster, services=["broken"])["services"][0]["taskSets"]
    assert (task_set["taskDefinition"], task_set["stabilityStatus"]) == (broken, "STABILIZING")


def test_linear_deployment_shifts_ten_percent_per_interval_then_succeeds(emu, vpc):
    ns = _setup(emu, vpc, config=LINEAR, wait=1)
    emu.scale_for("codedeploy.install", 0.2)  # so each 1-minute interval, and the wait, take 0.2 s
    second = ns.revision("app:2")
    deployment_id = _deploy(ns, second)
    assert re.fullmatch(r"d-[A-Z0-9]{9}", deployment_id)
    info = _info(ns, deployment_id)
    assert (info["status"], info["deploymentConfigName"], info["creator"]) == ("InProgress", LINEAR, "user")
    assert "deploymentOverview" not in info and "errorInformation" not in info
    assert len(info["revision"]["appSpecContent"]["sha256"]) == 64
    original, replacement = _task_sets(ns)
    assert (original["status"], original["taskDefinition"]) == ("PRIMARY", ns.first)
    assert (replacement["status"], replacement["taskDefinition"], replacement["stabilityStatus"]) == ("ACTIVE", second, "STABILIZING")
    assert replacement["externalId"] == deployment_id and replacement["loadBalancers"][0]["targetGroupArn"] == ns.green
    assert _health(ns, ns.green) == ["initial", "initial"]

    seen = []
    while _status(ns, deployment_id) == "InProgress":
        for weights in (_weights(ns, ns.prod[0]), _weights(ns, None, ns.prod[1])):
            green = weights.get(ns.green, 0)
            assert weights.get(ns.blue, 0) == 100 - green
            if green:  # never weight for a group without healthy tasks
                assert _health(ns, ns.green) == ["healthy", "healthy"]
            if not seen or seen[-1] != green:
                seen.append(green)
        time.sleep(0.02)
    assert seen == list(range(0, 101, 10))
    assert _status(ns, deployment_id) == "Succeeded"

    info = _info(ns, deployment_id)
    assert info["completeTime"] >= info["createTime"]
    assert info["deploymentOverview"] == {"Pending": 0, "InProgress": 0, "Succeeded": 1, "Failed": 0, "Skipped": 0, "Ready": 0}
    service = ns.ecs.describe_services(cluster=ns.cluster, services=["svc"])["services"][0]
    assert service["taskDefinition"] == second and service["loadBalancers"][0]["targetGroupArn"] == ns.green
    assert [(t["status"], t["taskDefinition"]) for t in service["taskSets"]] == [("PRIMARY", second)]
    # AWS keeps the original group in the forward, with weight 0.
    action = ns.elb.describe_listeners(ListenerArns=[ns.prod[0]])["Listeners"][0]["DefaultActions"][0]
    assert "TargetGroupArn" not in action
    assert action["ForwardConfig"]["TargetGroups"] == [{"TargetGroupArn": ns.green, "Weight": 100}, {"TargetGroupArn": ns.blue, "Weight": 0}]
    assert _health(ns, ns.blue) == [] and _health(ns, ns.green) == ["healthy", "healthy"]
    steps = _steps(emu, deployment_id)
    traffic = [(f"traffic-{w - 10}", f"traffic-{w}") for w in range(10, 101, 10)]
    assert steps == [(None, "Created"), ("Created", "InProgress"), (None, "test-traffic"), *traffic, ("InProgress", "Succeeded")]
    # The original task set goes after the termination wait (0.2 s) that follows traffic-100.
    events = emu.events()
    full = next(e["ts"] for e in events if e["id"] == deployment_id and e["to"] == "traffic-100" and e["resource_type"] == "codedeploy-deployment")
    gone = next(e["ts"] for e in events if e["id"] == original["taskSetArn"] and e["to"] == "gone")
    assert gone - full >= 0.15


def test_canary_deployment_shifts_its_percentage_then_the_rest(emu, vpc):
    ns = _setup(emu, vpc, config=CANARY)
    emu.scale_for("codedeploy.install", 0.05)  # the 5-minute canary interval: 0.25 s
    deployment_id = _deploy(ns, ns.revision("app:2"))
    seen = []
    while _status(ns, deployment_id) == "InProgress":
        green = _weights(ns, ns.prod[0]).get(ns.green, 0)
        if not seen or seen[-1] != green:
            seen.append(green)
        time.sleep(0.02)
    assert seen == [0, 10, 100] and _status(ns, deployment_id) == "Succeeded"
    events = [e for e in emu.events(deployment_id) if e["resource_type"] == "codedeploy-deployment" and e["to"] in ("traffic-10", "traffic-100")]
    assert [e["to"] for e in events] == ["traffic-10", "traffic-100"]
    assert events[1]["ts"] - events[0]["ts"] >= 0.2


def test_alarm_in_alarm_mid_shift_stops_and_rolls_back(emu, vpc):
    alarm = name("alarm")
    emu.client("cloudwatch").put_metric_alarm(
        AlarmName=alarm, MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    ns = _setup(emu, vpc, config=LINEAR, alarm=alarm, rollback_events=["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"])
    emu.scale_for("codedeploy.install", 0.2)
    deployment_id = _deploy(ns, ns.revision("app:2"))
    emu.wait_for(lambda: _weights(ns, ns.prod[0]).get(ns.green, 0) >= 20, True)
    assert _weights(ns, ns.test[0]) == {ns.green: 100}
    emu.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")

    info = _info(ns, deployment_id)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE" and f"Activated alarms: <{alarm}>" in info["errorInformation"]["message"]
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    assert info["rollbackInfo"]["rollbackMessage"] == (
        f"Deployment {deployment_id} terminated. Automatic rollback is triggered with a DeploymentId {rollback_id}.")
    # Traffic back to the original task set only (AWS leaves the replacement's group at weight 0).
    assert _weights(ns, ns.prod[0]) == {ns.green: 0, ns.blue: 100}
    assert _weights(ns, None, ns.prod[1]) == {ns.green: 0, ns.blue: 100}
    assert _weights(ns, ns.test[0]) == {ns.blue: 100} and _weights(ns, None, ns.test[1]) == {ns.blue: 100}
    assert [(t["status"], t["taskDefinition"]) for t in _task_sets(ns)] == [("PRIMARY", ns.first)]
    assert _health(ns, ns.green) == []
    rollback = _info(ns, rollback_id)
    assert (rollback["status"], rollback["creator"], rollback["deploymentConfigName"]) == (
        "Succeeded", "codeDeployRollback", ALL_AT_ONCE)
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    steps = _steps(emu, deployment_id)
    stopped = steps.index(("InProgress", "Stopped"))
    assert ("traffic-10", "traffic-20") in steps[:stopped] and steps[stopped + 1][1] == "traffic-0"
    events = {e["lifecycleEventName"]: e["status"] for e in ns.cd.get_deployment_target(
        deploymentId=deployment_id, targetId=f"{ns.cluster}:svc")["deploymentTarget"]["ecsTarget"]["lifecycleEvents"]}
    assert (events["AllowTraffic"], events["AfterAllowTraffic"]) == ("Failed", "Skipped")
    # A new deployment may start once the alarm is OK again.
    emu.client("cloudwatch").set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test")
    assert _deploy(ns, ns.revision("app:3"))


def test_failing_replacement_fails_the_deployment_and_rolls_back(emu, vpc):
    ns = _setup(emu, vpc, rollback_events=["DEPLOYMENT_FAILURE"])
    emu.config(unhealthy_images=["app:broken"])
    emu.scale_for("codedeploy.install", 0.3)
    deployment_id = _deploy(ns, ns.revision("app:broken"))
    while _status(ns, deployment_id) == "InProgress":
        assert _weights(ns, ns.prod[0]) == {ns.blue: 100} and _weights(ns, ns.test[0]) == {ns.blue: 100}
        assert _health(ns, ns.green) in ([], ["unhealthy", "unhealthy"])
        time.sleep(0.02)
    info = _info(ns, deployment_id)
    assert info["status"] == "Failed" and info["errorInformation"]["code"] == "ECS_UPDATE_ERROR"
    assert "failed the health checks" in info["errorInformation"]["message"]
    assert _info(ns, info["rollbackInfo"]["rollbackDeploymentId"])["creator"] == "codeDeployRollback"
    # No traffic ever moved; the replacement is gone.
    assert not [s for s in _steps(emu, deployment_id) if "traffic" in s[1]]
    assert _weights(ns, ns.prod[0]) == {ns.blue: 100}
    assert [(t["status"], t["taskDefinition"]) for t in _task_sets(ns)] == [("PRIMARY", ns.first)]
    target = ns.cd.get_deployment_target(deploymentId=deployment_id, targetId=f"{ns.cluster}:svc")["deploymentTarget"]["ecsTarget"]
    assert target["status"] == "Failed"
    assert [e["status"] for e in target["lifecycleEvents"]] == ["Succeeded", "Failed"] + ["Skipped"] * 6


def test_one_active_deployment_per_deployment_group(emu, vpc):
    ns = _setup(emu, vpc)
    emu.scale_for("codedeploy.install", 30)
    first = _deploy(ns, ns.revision("app:2"))
    assert error_code(lambda: _deploy(ns, ns.revision("app:3"))) == (
        "DeploymentLimitExceededException", f"The Deployment Group '{ns.group}' already has an active Deployment '{first}'", 400)
    ns.cd.stop_deployment(deploymentId=first, autoRollbackEnabled=True)
    assert _deploy(ns, ns.revision("app:3"))


def test_ecs_deployment_needs_a_valid_appspec_revision(emu, vpc):
    ns = _setup(emu, vpc)
    second = ns.revision("app:2")
    create = ns.cd.create_deployment
    assert error_code(lambda: create(applicationName=ns.app, deploymentGroupName=ns.group)) == (
        "RevisionRequiredException", "RevisionLocation must be specified", 400)
    for content in ("{not json", json.dumps({"version": 0.0, "Resources": []}),
                    json.dumps({"Resources": [{"TargetService": {"Type": "AWS::ECS::Service", "Properties": {"TaskDefinition": second}}}]}),
                    _appspec(second.rsplit(":", 1)[0] + ":99"), _appspec(second, container="web"), _appspec(second, port=80)):
        code, message, _ = error_code(lambda: _deploy(ns, second, content=content))
        assert code == "InvalidRevisionException", (content, code, message)
    assert "does not exist in the task definition" in error_code(lambda: _deploy(ns, second, content=_appspec(second, container="web")))[1]
    assert error_code(lambda: _deploy(ns, second, deploymentConfigName="Custom.Nope"))[0] == "DeploymentConfigDoesNotExistException"
    assert error_code(lambda: _deploy(ns, second, deploymentConfigName="CodeDeployDefault.OneAtATime"))[0] == "InvalidDeploymentConfigNameException"
    assert error_code(lambda: create(applicationName=ns.app, deploymentGroupName="nope", revision={
        "revisionType": "AppSpecContent", "appSpecContent": {"content": _appspec(second)}}))[0] == "DeploymentGroupDoesNotExistException"
    assert ns.cd.list_deployments(applicationName=ns.app, deploymentGroupName=ns.group)["deployments"] == []
    # A YAML AppSpec is fine.
    yaml_spec = (f"version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n"
                 f"        TaskDefinition: \"{second}\"\n        LoadBalancerInfo:\n          ContainerName: app\n"
                 f"          ContainerPort: 8080\n")
    assert _deploy(ns, second, content=yaml_spec)


def test_test_listener_goes_to_the_replacement_once_it_is_stable(emu, vpc):
    ns = _setup(emu, vpc, config=CANARY)
    emu.scale_for("codedeploy.install", 0.3)  # the canary interval: 1.5 s
    deployment_id = _deploy(ns, ns.revision("app:2"))
    assert _weights(ns, ns.test[0]) == {ns.blue: 100}  # still installing
    emu.wait_for(lambda: _weights(ns, ns.test[0]), {ns.green: 100})
    assert _weights(ns, None, ns.test[1]) == {ns.green: 100}  # listener rules too
    assert _health(ns, ns.green) == ["healthy", "healthy"]
    assert _weights(ns, ns.prod[0]) == {ns.green: 10, ns.blue: 90}
    assert _weights(ns, None, ns.prod[1]) == {ns.green: 10, ns.blue: 90}
    steps = _steps(emu, deployment_id)
    assert steps.index((None, "test-traffic")) < steps.index(("traffic-0", "traffic-10"))


def test_stop_deployment(emu, vpc):
    ns = _setup(emu, vpc, config=CANARY)
    emu.scale_for("codedeploy.install", 0.1)  # canary interval 0.5 s
    kept = _deploy(ns, ns.revision("app:2"))
    emu.wait_for(lambda: _weights(ns, ns.prod[0]).get(ns.green), 10)
    assert ns.cd.stop_deployment(deploymentId=kept)["status"] == "Succeeded"
    info = _info(ns, kept)
    assert (info["status"], info["errorInformation"]["code"]) == ("Stopped", "MANUAL_STOP") and "rollbackInfo" not in info
    time.sleep(0.6)  # no more steps: traffic and the replacement stay where they were
    assert _weights(ns, ns.prod[0]) == {ns.green: 10, ns.blue: 90} and len(_task_sets(ns)) == 2
    assert error_code(lambda: ns.cd.stop_deployment(deploymentId=kept))[0] == "DeploymentAlreadyCompletedException"
    assert error_code(lambda: ns.cd.stop_deployment(deploymentId="d-NOPE00000"))[0] == "DeploymentDoesNotExistException"

    # With autoRollbackEnabled the next one goes back: test and prod to blue, its replacement gone.
    rolled = _deploy(ns, ns.revision("app:3"))
    # The traffic the stopped one left on green goes back to blue until the new replacement is stable.
    assert _weights(ns, ns.prod[0]) == {ns.green: 0, ns.blue: 100}
    emu.wait_for(lambda: _weights(ns, ns.prod[0]).get(ns.green), 10)
    ns.cd.stop_deployment(deploymentId=rolled, autoRollbackEnabled=True)
    info = _info(ns, rolled)
    assert info["status"] == "Stopped" and info["rollbackInfo"]["rollbackDeploymentId"]
    assert _weights(ns, ns.prod[0]) == {ns.green: 0, ns.blue: 100} and _weights(ns, ns.test[0]) == {ns.blue: 100}
    assert [(t["status"], t["taskDefinition"]) for t in _task_sets(ns)] == [("PRIMARY", ns.first)]


def test_deployment_target_apis(emu, vpc):
    ns = _setup(emu, vpc, config=CANARY)
    emu.scale_for("codedeploy.install", 0.5)
    deployment_id = _deploy(ns, ns.revision("app:2"))
    target_id = f"{ns.cluster}:svc"
    assert ns.cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"] == [target_id]
    emu.wait_for(lambda: _weights(ns, ns.prod[0]).get(ns.green), 10)
    target = ns.cd.get_deployment_target(deploymentId=deployment_id, targetId=target_id)["deploymentTarget"]
    assert target["deploymentTargetType"] == "ECSTarget"
    ecs_target = target["ecsTarget"]
    assert (ecs_target["deploymentId"], ecs_target["targetId"], ecs_target["status"]) == (deployment_id, target_id, "InProgress")
    assert ecs_target["targetArn"] == ns.service["serviceArn"]
    assert [(e["lifecycleEventName"], e["status"]) for e in ecs_target["lifecycleEvents"]] == [
        ("BeforeInstall", "Succeeded"), ("Install", "Succeeded"), ("AfterInstall", "Succeeded"),
        ("AllowTestTraffic", "Succeeded"), ("AfterAllowTestTraffic", "Succeeded"), ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "InProgress"), ("AfterAllowTraffic", "Pending")]
    blue, green = ecs_target["taskSetsInfo"]
    assert blue["identifer"].startswith("ecs-svc/") and blue["identifer"] != green["identifer"]
    assert {k: blue[k] for k in ("desiredCount", "runningCount", "status", "trafficWeight", "targetGroup", "taskSetLabel")} == {
        "desiredCount": 2, "runningCount": 2, "status": "PRIMARY", "trafficWeight": 90.0,
        "targetGroup": {"name": ns.blue_name}, "taskSetLabel": "Blue"}
    assert {k: green[k] for k in ("desiredCount", "status", "trafficWeight", "targetGroup", "taskSetLabel")} == {
        "desiredCount": 2, "status": "ACTIVE", "trafficWeight": 10.0, "targetGroup": {"name": ns.green_name}, "taskSetLabel": "Green"}
    batch = ns.cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=[target_id])["deploymentTargets"]
    assert batch[0]["ecsTarget"]["taskSetsInfo"] == ecs_target["taskSetsInfo"]
    assert error_code(lambda: ns.cd.get_deployment_target(deploymentId=deployment_id, targetId="other:svc"))[0] == (
        "DeploymentTargetDoesNotExistException")


def test_deployment_reports_error_and_rollback_info(emu, vpc):
    ns = _setup(emu, vpc, rollback_events=["DEPLOYMENT_FAILURE"])
    emu.config(unhealthy_images=["app:broken"])
    deployment_id = _deploy(ns, ns.revision("app:broken"))
    _wait_status(emu, ns, deployment_id, "Failed")
    [info] = ns.cd.batch_get_deployments(deploymentIds=[deployment_id])["deploymentsInfo"]
    assert set(info["errorInformation"]) == {"code", "message"} and info["completeTime"]
    assert info["deploymentOverview"]["Failed"] == 1
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = _info(ns, rollback_id)["rollbackInfo"]
    assert rollback == {"rollbackTriggeringDeploymentId": deployment_id,
                        "rollbackMessage": f"Deployment {rollback_id} is triggered to roll back deployment {deployment_id}."}
    assert set(ns.cd.list_deployments(applicationName=ns.app, deploymentGroupName=ns.group,
                                      includeOnlyStatuses=["Failed"])["deployments"]) == {deployment_id}
