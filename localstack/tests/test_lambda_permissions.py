"""Lambda: the execution role must allow the DLQ, the VPC ENIs and the SQS event
source; reserved concurrency keeps 100 unreserved executions."""

from __future__ import annotations

import io
import zipfile

from conftest import error_code, make_role, name

LAMBDA = "lambda.amazonaws.com"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _create(emu, role, **extra):
    function_name = name("fn")
    emu.client("lambda").create_function(
        FunctionName=function_name, Runtime="python3.12", Handler="index.handler",
        Role=role, Code={"ZipFile": _zip()}, **extra,
    )
    return function_name


def _queue(emu):
    sqs = emu.client("sqs")
    url = sqs.create_queue(QueueName=name("q"))["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def test_dead_letter_queue_needs_send_message_in_the_role(emu):
    dlq, other = _queue(emu), _queue(emu)
    lam = emu.client("lambda")
    bare = make_role(emu, LAMBDA)
    code, message, status = error_code(lambda: _create(emu, bare, DeadLetterConfig={"TargetArn": dlq}))
    assert (code, message, status) == (
        "InvalidParameterValueException",
        "The provided execution role does not have permissions to call SendMessage on SQS", 400)
    # Allowed on another queue only: still refused; an explicit Deny wins over an Allow.
    elsewhere = make_role(emu, LAMBDA, [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": other}])
    assert error_code(lambda: _create(emu, elsewhere, DeadLetterConfig={"TargetArn": dlq}))[0] == "InvalidParameterValueException"
    denied = make_role(emu, LAMBDA, [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                                     {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": dlq}])
    assert error_code(lambda: _create(emu, denied, DeadLetterConfig={"TargetArn": dlq}))[0] == "InvalidParameterValueException"

    allowed = make_role(emu, LAMBDA, [{"Effect": "Allow", "Action": "SQS:sendmessage", "Resource": dlq}], customer_managed=True)
    fn = _create(emu, allowed, DeadLetterConfig={"TargetArn": dlq})
    assert lam.get_function_configuration(FunctionName=fn)["DeadLetterConfig"] == {"TargetArn": dlq}
    # Switching to a role without the permission, or to an unusable DLQ, is refused too.
    code, _, _ = error_code(lambda: lam.update_function_configuration(FunctionName=fn, Role=bare))
    assert code == "InvalidParameterValueException"
    code, _, _ = error_code(lambda: lam.update_function_configuration(FunctionName=fn, DeadLetterConfig={"TargetArn": other}))
    assert code == "InvalidParameterValueException"
    # Removing the DLQ (TargetArn "") needs nothing, and it is gone from the configuration.
    lam.update_function_configuration(FunctionName=fn, DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in lam.get_function_configuration(FunctionName=fn)
    lam.update_function_configuration(FunctionName=fn, Role=bare)


def test_sns_dead_letter_topic_needs_publish(emu):
    topic = emu.client("sns").create_topic(Name=name("t"))["TopicArn"]
    code, message, _ = error_code(lambda: _create(emu, make_role(emu, LAMBDA), DeadLetterConfig={"TargetArn": topic}))
    assert (code, message) == ("InvalidParameterValueException",
                               "The provided execution role does not have permissions to call Publish on SNS")
    _create(emu, make_role(emu, LAMBDA, [{"Effect": "Allow", "Action": "sns:Publish", "Resource": topic}]),
            DeadLetterConfig={"TargetArn": topic})


def test_vpc_function_needs_network_interface_permissions(emu, vpc):
    vpc_config = {"SubnetIds": vpc["subnets"], "SecurityGroupIds": [vpc["groups"][0]]}
    code, message, _ = error_code(lambda: _create(emu, make_role(emu, LAMBDA), VpcConfig=vpc_config))
    assert (code, message) == ("InvalidParameterValueException",
                               "The provided execution role does not have permissions to call CreateNetworkInterface on EC2")
    # Create allowed on the ENI but not on the subnets and security group: still refused.
    eni = "arn:aws:ec2:us-east-1:123456789012:network-interface/*"
    partial = make_role(emu, LAMBDA, [{"Effect": "Allow", "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                                                                     "ec2:DeleteNetworkInterface"], "Resource": eni}])
    assert error_code(lambda: _create(emu, partial, VpcConfig=vpc_config))[1].endswith("CreateNetworkInterface on EC2")
    # Everything but Describe on "*": Describe is named.
    scoped = [{"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": [
        eni, *(f"arn:aws:ec2:us-east-1:123456789012:subnet/{s}" for s in vpc["subnets"]),
        f"arn:aws:ec2:us-east-1:123456789012:security-group/{vpc['groups'][0]}"]},
        {"Effect": "Allow", "Action": ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                                       "ec2:UnassignPrivateIpAddresses"], "Resource": eni}]
    code, message, _ = error_code(lambda: _create(emu, make_role(emu, LAMBDA, scoped), VpcConfig=vpc_config))
    assert message.endswith("call DescribeNetworkInterfaces on EC2")
    assert emu.client("ec2").describe_network_interfaces(
        Filters=[{"Name": "vpc-id", "Values": [vpc["vpc"]]}])["NetworkInterfaces"] == []  # no ENI left behind

    scoped.append({"Effect": "Allow", "Action": "ec2:DescribeNetworkInterfaces", "Resource": "*"})
    _create(emu, make_role(emu, LAMBDA, scoped), VpcConfig=vpc_config)
    # The AWS managed policy is enough; a function without a VPC needs none of it.
    fn = _create(emu, make_role(emu, LAMBDA, managed=["AWSLambdaVPCAccessExecutionRole"]), VpcConfig=vpc_config)
    bare = make_role(emu, LAMBDA)
    code, _, _ = error_code(lambda: emu.client("lambda").update_function_configuration(FunctionName=fn, Role=bare))
    assert code == "InvalidParameterValueException"
    _create(emu, bare)


def test_sqs_event_source_needs_receive_delete_and_attributes(emu):
    queue = _queue(emu)
    lam = emu.client("lambda")
    fn = _create(emu, make_role(emu, LAMBDA, [{"Effect": "Allow", "Action": ["sqs:ReceiveMessage"], "Resource": queue}]))
    code, message, _ = error_code(lambda: lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=fn))
    assert (code, message) == ("InvalidParameterValueException",
                               "The provided execution role does not have permissions to call DeleteMessage on SQS")
    code, message, _ = error_code(lambda: lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=_create(emu, make_role(emu, LAMBDA))))
    assert message.endswith("call ReceiveMessage on SQS")

    # A condition that does not hold for the queue makes the statement not apply.
    conditioned = make_role(emu, LAMBDA, [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*",
                                           "Condition": {"StringEquals": {"aws:ResourceTag/team": "payments"}}}])
    code, _, _ = error_code(lambda: lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=_create(emu, conditioned)))
    assert code == "InvalidParameterValueException"
    ok = _create(emu, make_role(emu, LAMBDA, [{"Effect": "Allow", "Resource": queue, "Action": [
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]}]))
    assert lam.create_event_source_mapping(EventSourceArn=queue, FunctionName=ok)["EventSourceArn"] == queue
    managed = _create(emu, make_role(emu, LAMBDA, managed=["AWSLambdaSQSQueueExecutionRole"]))
    lam.create_event_source_mapping(EventSourceArn=_queue(emu), FunctionName=managed)


def test_reserved_concurrency_keeps_100_unreserved(emu):
    lam = emu.client("lambda")
    role = make_role(emu, LAMBDA)
    first, second = _create(emu, role), _create(emu, role)
    lam.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=850)
    code, message, status = error_code(lambda: lam.put_function_concurrency(FunctionName=second, ReservedConcurrentExecutions=51))
    assert (code, message, status) == (
        "InvalidParameterValueException",
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [100].", 400)
    lam.put_function_concurrency(FunctionName=second, ReservedConcurrentExecutions=50)
    # Changing a function's own reservation does not count it twice.
    lam.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=850)
    lam.delete_function(FunctionName=first)
    lam.delete_function(FunctionName=second)


def test_function_role_must_be_assumable_by_lambda_once_propagated(emu):
    lam, iam = emu.client("lambda"), emu.client("iam")
    cannot = ("InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.", 400)
    assert error_code(lambda: _create(emu, "arn:aws:iam::123456789012:role/does-not-exist")) == cannot
    assert error_code(lambda: _create(emu, make_role(emu, "ecs-tasks.amazonaws.com"))) == cannot
    fn = _create(emu, make_role(emu, LAMBDA))
    assert error_code(lambda: lam.update_function_configuration(FunctionName=fn, Role=make_role(emu, "ec2.amazonaws.com"))) == cannot

    # IAM is eventually consistent: a new role becomes assumable after the propagation time.
    emu.scale_for("iam-role.propagate", 0.5)
    fresh = make_role(emu, LAMBDA)
    assert error_code(lambda: _create(emu, fresh)) == cannot
    emu.wait_for(lambda: _try_create(emu, fresh), True, timeout=5)
    assert iam.get_role(RoleName=fresh.split("/")[-1])["Role"]["Arn"] == fresh


def _try_create(emu, role):
    try:
        _create(emu, role)
        return True
    except emu.client("lambda").exceptions.InvalidParameterValueException:
        return False
