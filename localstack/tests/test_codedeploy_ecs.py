"""CodeDeploy ECS deployment groups: a role CodeDeploy may assume with the ECS
permissions, BLUE_GREEN with traffic control, a CODE_DEPLOY service and a target
group pair behind the production listener."""

from __future__ import annotations

from conftest import error_code, make_role, name


def _setup(emu, vpc, controller="CODE_DEPLOY"):
    elb = emu.client("elbv2")
    lb = elb.create_load_balancer(Name=name("alb"), Subnets=vpc["subnets"], SecurityGroups=[vpc["groups"][0]])["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (elb.create_target_group(Name=name(c), Protocol="HTTP", Port=80, VpcId=vpc["vpc"], TargetType="ip")["TargetGroups"][0]
                   for c in ("blue", "green"))
    prod = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": blue["TargetGroupArn"]}])["Listeners"][0]["ListenerArn"]
    ecs = emu.client("ecs")
    cluster = name("cluster")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="bg", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                                 containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 256, "memory": 512}])
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition="bg", desiredCount=1, launchType="FARGATE",
                       deploymentController={"type": controller},
                       loadBalancers=[{"targetGroupArn": blue["TargetGroupArn"], "containerName": "web", "containerPort": 80}],
                       networkConfiguration={"awsvpcConfiguration": {"subnets": vpc["subnets"], "securityGroups": [vpc["groups"][1]]}})
    cd, app = emu.client("codedeploy"), name("app")
    cd.create_application(applicationName=app, computePlatform="ECS")
    group = {
        "applicationName": app, "deploymentGroupName": name("dg"),
        "serviceRoleArn": make_role(emu, "codedeploy.amazonaws.com", managed=["AWSCodeDeployRoleForECS"]),
        "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce",
        "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE", "terminationWaitTimeInMinutes": 5},
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"}},
        "ecsServices": [{"serviceName": "web", "clusterName": cluster}],
        "loadBalancerInfo": {"targetGroupPairInfoList": [{
            "targetGroups": [{"name": blue["TargetGroupName"]}, {"name": green["TargetGroupName"]}],
            "prodTrafficRoute": {"listenerArns": [prod]}}]},
    }
    return cd, group


def test_ecs_deployment_group_needs_role_style_service_and_target_group_pair(emu, vpc):
    cd, group = _setup(emu, vpc)

    def create(**changes):
        return cd.create_deployment_group(**{**group, "deploymentGroupName": name("dg"), **changes})

    untrusted = make_role(emu, "ecs-tasks.amazonaws.com", managed=["AWSCodeDeployRoleForECS"])
    assert error_code(lambda: create(serviceRoleArn=untrusted)) == (
        "InvalidRoleException", f"AWS CodeDeploy does not have the permissions required to assume the role {untrusted}.", 400)
    powerless = make_role(emu, "codedeploy.amazonaws.com")
    code, message, _ = error_code(lambda: create(serviceRoleArn=powerless))
    assert code == "InvalidRoleException" and "ecs:DescribeServices" in message
    assert error_code(lambda: create(deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}))[0] == "InvalidDeploymentStyleException"
    assert error_code(lambda: create(ecsServices=[{"serviceName": "nope", "clusterName": group["ecsServices"][0]["clusterName"]}]))[0] == "InvalidECSServiceException"
    pair = group["loadBalancerInfo"]["targetGroupPairInfoList"][0]
    one_group = {"targetGroupPairInfoList": [dict(pair, targetGroups=pair["targetGroups"][:1])]}
    assert error_code(lambda: create(loadBalancerInfo=one_group))[0] == "InvalidTargetGroupPairException"
    no_listener = {"targetGroupPairInfoList": [dict(pair, prodTrafficRoute={"listenerArns": [pair["prodTrafficRoute"]["listenerArns"][0] + "x"]})]}
    assert error_code(lambda: create(loadBalancerInfo=no_listener))[0] == "InvalidTargetGroupPairException"

    created = create()
    assert created["deploymentGroupId"]


def test_ecs_deployment_group_needs_a_code_deploy_service(emu, vpc):
    cd, group = _setup(emu, vpc, controller="ECS")
    code, message, _ = error_code(lambda: cd.create_deployment_group(**group))
    assert code == "InvalidECSServiceException" and "CODE_DEPLOY" in message
