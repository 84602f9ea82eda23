"""Lambda rules checked when a function or mapping is created or reconfigured:
the execution role must allow what Lambda will do with it, and reserved
concurrency must leave the account its 100 unreserved executions.

moto creates any function with any role. AWS checks the role's policies (see
policy_eval.role_allows) at CreateFunction / UpdateFunctionConfiguration and
CreateEventSourceMapping and answers InvalidParameterValueException (HTTP 400)
"The provided execution role does not have permissions to call <Action> on
<Service>" naming the first missing action.
"""

from __future__ import annotations

import os
from typing import Any

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend, LambdaFunction

from .patching import rule, wrap
from .policy_eval import first_denied, role_trusts

ACCOUNT_CONCURRENCY_LIMIT = 1000  # AWS default quota; MOTO_LAMBDA_CONCURRENCY_QUOTA overrides
MINIMUM_UNRESERVED = 100


def _missing_permission(action: str) -> InvalidParameterValueException:
    service, name = action.split(":", 1)
    label = {"sqs": "SQS", "sns": "SNS", "ec2": "EC2"}[service]
    return InvalidParameterValueException(
        f"The provided execution role does not have permissions to call {name} on {label}"
    )


def _dead_letters(backend: Any) -> dict[str, str]:
    """function name -> DeadLetterConfig.TargetArn (moto does not keep it)."""
    return backend.__dict__.setdefault("_fintech_dead_letter_targets", {})


def _check_dead_letter_target(role: str, target: str) -> None:
    if not target:
        return
    action = "sns:Publish" if target.startswith("arn:aws:sns:") else "sqs:SendMessage"
    denied = first_denied(role, [(action, target)])
    if denied:
        raise _missing_permission(denied)


def _vpc_actions(backend: Any, vpc_config: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """What Lambda does with the role to attach a function to its subnets."""
    subnets = (vpc_config or {}).get("SubnetIds") or []
    groups = (vpc_config or {}).get("SecurityGroupIds") or []
    if not subnets:
        return []
    arn = f"arn:aws:ec2:{backend.region_name}:{backend.account_id}"
    eni = f"{arn}:network-interface/*"
    create_on = [eni] + [f"{arn}:subnet/{s}" for s in subnets] + [f"{arn}:security-group/{g}" for g in groups]
    return [
        ("ec2:CreateNetworkInterface", create_on),
        ("ec2:DescribeNetworkInterfaces", "*"),
        ("ec2:DeleteNetworkInterface", eni),
        ("ec2:AssignPrivateIpAddresses", eni),
        ("ec2:UnassignPrivateIpAddresses", eni),
    ]


LAMBDA_SERVICE = "lambda.amazonaws.com"


def _check_assumable(role: str) -> None:
    if not role_trusts(role, LAMBDA_SERVICE):
        raise InvalidParameterValueException("The role defined for the function cannot be assumed by Lambda.")


@rule("lambda", "refusal")
def dead_letter_target_needs_execution_role_permission() -> None:
    """CreateFunction / UpdateFunctionConfiguration with DeadLetterConfig.TargetArn
    fail with InvalidParameterValueException "The provided execution role does
    not have permissions to call SendMessage on SQS" (Publish on SNS for a topic)
    unless the execution role allows it on the target. Lambda sends failed
    asynchronous events with the function's role
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq).
    GetFunctionConfiguration returns the DeadLetterConfig (moto dropped it).
    """

    @wrap(LambdaBackend, "create_function")
    def create_function(original: Any, self: Any, spec: dict[str, Any]) -> Any:
        target = (spec.get("DeadLetterConfig") or {}).get("TargetArn") or ""
        _check_dead_letter_target(spec.get("Role", ""), target)
        fn = original(self, spec)
        if target:
            _dead_letters(self)[fn.function_name] = target
        return fn

    @wrap(LambdaBackend, "update_function_configuration")
    def update_function_configuration(original: Any, self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        if "DeadLetterConfig" in body or "Role" in body:
            fn = self.get_function(function_name, qualifier)
            if "DeadLetterConfig" in body:
                target = (body.get("DeadLetterConfig") or {}).get("TargetArn") or ""
            else:
                target = _dead_letters(self).get(fn.function_name, "")
            _check_dead_letter_target(body.get("Role") or fn.role, target)
            if "DeadLetterConfig" in body:
                if target:
                    _dead_letters(self)[fn.function_name] = target
                else:
                    _dead_letters(self).pop(fn.function_name, None)
        return original(self, function_name, qualifier, body)

    @wrap(LambdaBackend, "delete_function")
    def delete_function(original: Any, self: Any, function_name: str, qualifier: Any = None) -> Any:
        result = original(self, function_name, qualifier)
        if not qualifier:
            _dead_letters(self).pop(function_name.split(":")[-1], None)
        return result

    @wrap(LambdaFunction, "get_configuration")
    def get_configuration(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        config = original(self, *args, **kwargs)
        from moto.awslambda.models import lambda_backends

        target = _dead_letters(lambda_backends[self.account_id][self.region]).get(self.function_name)
        if target:
            config["DeadLetterConfig"] = {"TargetArn": target}
        return config


@rule("lambda", "refusal")
def vpc_function_role_needs_network_interface_permissions() -> None:
    """CreateFunction / UpdateFunctionConfiguration with a VpcConfig fail with
    InvalidParameterValueException "The provided execution role does not have
    permissions to call CreateNetworkInterface on EC2" (or DescribeNetworkInterfaces,
    DeleteNetworkInterface, AssignPrivateIpAddresses, UnassignPrivateIpAddresses)
    unless the role allows them: CreateNetworkInterface on the ENI, the subnets and
    the security groups, Describe on "*"
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions).
    """

    @wrap(LambdaBackend, "create_function")
    def create_function(original: Any, self: Any, spec: dict[str, Any]) -> Any:
        denied = first_denied(spec.get("Role", ""), _vpc_actions(self, spec.get("VpcConfig")))
        if denied:
            raise _missing_permission(denied)
        return original(self, spec)

    @wrap(LambdaBackend, "update_function_configuration")
    def update_function_configuration(original: Any, self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        if "VpcConfig" in body or "Role" in body:
            fn = self.get_function(function_name, qualifier)
            vpc = body["VpcConfig"] if "VpcConfig" in body else fn._vpc_config
            denied = first_denied(body.get("Role") or fn.role, _vpc_actions(self, vpc))
            if denied:
                raise _missing_permission(denied)
        return original(self, function_name, qualifier, body)


@rule("lambda", "refusal")
def sqs_event_source_role_needs_receive_permissions() -> None:
    """CreateEventSourceMapping from an SQS queue fails with
    InvalidParameterValueException "The provided execution role does not have
    permissions to call ReceiveMessage on SQS" (DeleteMessage, GetQueueAttributes)
    unless the function's role allows them on the queue
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html#events-sqs-permissions).
    """

    @wrap(LambdaBackend, "create_event_source_mapping")
    def create_event_source_mapping(original: Any, self: Any, spec: dict[str, Any]) -> Any:
        source = spec.get("EventSourceArn") or ""
        if source.startswith("arn:aws:sqs:") and spec.get("FunctionName"):
            fn = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec["FunctionName"])
            actions = [(a, source) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")]
            denied = first_denied(fn.role, actions)
            if denied:
                raise _missing_permission(denied)
        return original(self, spec)


@rule("lambda", "refusal")
def reserved_concurrency_keeps_100_unreserved() -> None:
    """PutFunctionConcurrency fails with InvalidParameterValueException "Specified
    ReservedConcurrentExecutions for function decreases account's
    UnreservedConcurrentExecution below its minimum value of [100]." when the
    reservations of all functions would leave fewer than 100 of the account's
    concurrency limit (1000 by default; MOTO_LAMBDA_CONCURRENCY_QUOTA sets it)
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
    moto only checks when that variable is set.
    """

    @wrap(LambdaBackend, "put_function_concurrency")
    def put_function_concurrency(original: Any, self: Any, function_name: str, reserved_concurrency: Any) -> Any:
        limit = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA") or ACCOUNT_CONCURRENCY_LIMIT)
        name = self.get_function(function_name).function_name
        others = sum(
            int(f.reserved_concurrency)
            for f in self.list_functions()
            if f.reserved_concurrency and f.function_name != name
        )
        if limit - others - int(reserved_concurrency or 0) < MINIMUM_UNRESERVED:
            raise InvalidParameterValueException(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{MINIMUM_UNRESERVED}]."
            )
        return original(self, function_name, reserved_concurrency)


@rule("lambda", "refusal")
def function_role_must_be_assumable_by_lambda() -> None:
    """CreateFunction / UpdateFunctionConfiguration with a Role fail with
    InvalidParameterValueException "The role defined for the function cannot be
    assumed by Lambda." when the role does not exist, its trust policy does not let
    lambda.amazonaws.com sts:AssumeRole, or it was created less than
    iam-role.propagate x time_scale seconds ago (IAM is eventually consistent: a
    new role is not usable at once, clients retry)
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency).
    Registered last so that it is checked first.
    """

    @wrap(LambdaBackend, "create_function")
    def create_function(original: Any, self: Any, spec: dict[str, Any]) -> Any:
        _check_assumable(spec.get("Role", ""))
        return original(self, spec)

    @wrap(LambdaBackend, "update_function_configuration")
    def update_function_configuration(original: Any, self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        if body.get("Role"):
            _check_assumable(body["Role"])
        return original(self, function_name, qualifier, body)
