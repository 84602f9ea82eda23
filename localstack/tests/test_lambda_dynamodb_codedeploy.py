"""Lambda VPC ENIs that linger, DynamoDB waits, CodeDeploy's missing APIs."""

from __future__ import annotations

import io
import time
import zipfile

from conftest import error_code, make_role, name


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _function(emu, vpc, function_name):
    # AWS refuses a VPC function whose role may not manage its ENIs.
    role = make_role(emu, "lambda.amazonaws.com", managed=["AWSLambdaVPCAccessExecutionRole"])
    return emu.client("lambda").create_function(
        FunctionName=function_name, Runtime="python3.12", Handler="index.handler",
        Role=role, Code={"ZipFile": _zip()},
        VpcConfig={"SubnetIds": vpc["subnets"], "SecurityGroupIds": [vpc["groups"][1]]},
    )


def _lambda_enis(ec2, vpc):
    return ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc["vpc"]]}])["NetworkInterfaces"]


def test_vpc_function_creates_enis_that_linger_after_delete(emu, vpc):
    emu.config(lambda_eni_linger=1.0)
    ec2, function_name = emu.client("ec2"), name("fn")
    created = _function(emu, vpc, function_name)
    assert created["VpcConfig"]["VpcId"] == vpc["vpc"]
    enis = _lambda_enis(ec2, vpc)
    assert len(enis) == 2 and {e["SubnetId"] for e in enis} == set(vpc["subnets"])
    for eni in enis:
        assert eni["Status"] == "in-use" and eni["RequesterManaged"] is True
        assert eni["InterfaceType"] == "lambda"
        assert eni["Description"].startswith(f"AWS Lambda VPC ENI-{function_name}-")
        assert [g["GroupId"] for g in eni["Groups"]] == [vpc["groups"][1]]
    in_use = enis[0]["NetworkInterfaceId"]
    code, message, _ = error_code(lambda: ec2.delete_network_interface(NetworkInterfaceId=in_use))
    assert code == "InvalidParameterValue" and "currently in use" in message

    emu.client("lambda").delete_function(FunctionName=function_name)
    deleted_at = time.time()
    assert {e["Status"] for e in _lambda_enis(ec2, vpc)} == {"available"}
    # The lingering ENIs block the subnets and the security group.
    assert error_code(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][1]))[0] == "DependencyViolation"
    assert error_code(lambda: ec2.delete_security_group(GroupId=vpc["groups"][1]))[0] == "DependencyViolation"
    # The client may delete an available one itself.
    ec2.delete_network_interface(NetworkInterfaceId=in_use)
    emu.wait_for(lambda: len(_lambda_enis(ec2, vpc)), 0)
    assert time.time() - deleted_at >= 0.9
    for subnet in vpc["subnets"]:
        ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_security_group(GroupId=vpc["groups"][1])
    events = [(e["from"], e["to"]) for e in emu.events() if e["resource_type"] == "lambda-eni" and e["id"] in {x["NetworkInterfaceId"] for x in enis}]
    assert sorted(events) == sorted([("in-use", "available")] * 2 + [("available", "deleted")] * 2)


def test_enis_go_with_the_function_when_linger_is_zero(emu, vpc):
    ec2, function_name = emu.client("ec2"), name("fn")
    _function(emu, vpc, function_name)
    emu.client("lambda").delete_function(FunctionName=function_name)
    assert _lambda_enis(ec2, vpc) == []
    ec2.delete_subnet(SubnetId=vpc["subnets"][0])


def _table_status(ddb, table):
    try:
        return ddb.describe_table(TableName=table)["Table"]["TableStatus"]
    except ddb.exceptions.ResourceNotFoundException:
        return "gone"


def test_dynamodb_table_waits_creating_active_deleting_gone(emu):
    scale = emu.scale_for("dynamodb-table.create", 0.6)
    ddb, table = emu.client("dynamodb"), name("ledger")
    created = ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )["TableDescription"]
    assert created["TableStatus"] == "CREATING" and _table_status(ddb, table) == "CREATING"
    assert error_code(lambda: ddb.delete_table(TableName=table))[0] == "ResourceInUseException"
    emu.wait_for(lambda: _table_status(ddb, table), "ACTIVE")
    assert ddb.delete_table(TableName=table)["TableDescription"]["TableStatus"] == "DELETING"
    assert _table_status(ddb, table) == "DELETING"
    assert error_code(lambda: ddb.delete_table(TableName=table))[0] == "ResourceInUseException"
    emu.wait_for(lambda: _table_status(ddb, table), "gone")
    events = emu.events(table)
    assert [(e["from"], e["to"]) for e in events] == [("CREATING", "ACTIVE"), ("ACTIVE", "DELETING"), ("DELETING", "gone")]
    assert abs(events[2]["ts"] - events[1]["ts"] - 20 * scale) < 0.05


def test_codedeploy_delete_apis_and_deployment_configs(emu):
    cd, app = emu.client("codedeploy"), name("app")
    # A Server application: ECS groups need a whole blue/green setup (test_codedeploy_ecs.py).
    cd.create_application(applicationName=app, computePlatform="Server")
    for group in ("blue-green", "other"):
        cd.create_deployment_group(applicationName=app, deploymentGroupName=group,
                                   serviceRoleArn="arn:aws:iam::123456789012:role/codedeploy",
                                   deploymentConfigName="CodeDeployDefault.OneAtATime")
    assert cd.delete_deployment_group(applicationName=app, deploymentGroupName="blue-green")["hooksNotCleanedUp"] == []
    assert error_code(lambda: cd.get_deployment_group(applicationName=app, deploymentGroupName="blue-green"))[0] == "DeploymentGroupDoesNotExistException"
    cd.delete_deployment_group(applicationName=app, deploymentGroupName="blue-green")  # idempotent
    cd.delete_application(applicationName=app)
    assert error_code(lambda: cd.get_application(applicationName=app))[0] == "ApplicationDoesNotExistException"
    cd.delete_application(applicationName=app)  # idempotent

    info = cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.ECSLinear10PercentEvery1Minutes")["deploymentConfigInfo"]
    assert info["computePlatform"] == "ECS"
    assert info["trafficRoutingConfig"] == {"type": "TimeBasedLinear", "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 1}}
    assert cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.ECSAllAtOnce")["deploymentConfigInfo"]["trafficRoutingConfig"] == {"type": "AllAtOnce"}
    assert cd.get_deployment_config(deploymentConfigName="CodeDeployDefault.OneAtATime")["deploymentConfigInfo"]["computePlatform"] == "Server"
    assert error_code(lambda: cd.get_deployment_config(deploymentConfigName="Custom.Nope"))[0] == "DeploymentConfigDoesNotExistException"
    assert "CodeDeployDefault.ECSCanary10Percent5Minutes" in cd.list_deployment_configs()["deploymentConfigsList"]
