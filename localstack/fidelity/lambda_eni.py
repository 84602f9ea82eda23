"""Lambda VPC networking: Hyperplane ENIs that outlive the function.

A VPC-attached Lambda function owns requester-managed network interfaces
(interface type `lambda`, description "AWS Lambda VPC ENI-<function>-<uuid>")
in its subnets, with its security groups. When the function is deleted (or its
VpcConfig changes), AWS does not remove them at once: they turn `available`
and are released 5-30 minutes later. Until then they block DeleteSubnet and
DeleteSecurityGroup (see ec2.py); a client may delete them itself with
DeleteNetworkInterface once they are `available`.

The linger time is --lambda-eni-linger / lambda_eni_linger (real seconds, not
scaled; 0 = removed with the function). moto creates no ENIs at all.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import EC2Backend, ec2_backends

from .patching import rule, wrap
from .timeline import SETTINGS, TIMELINE

REQUESTER_ID_PREFIX = "AROALAMBDAVPCENIMANAGER"


def _ec2(backend: Any) -> Any:
    return ec2_backends[backend.account_id][backend.region_name]


def _registry(backend: Any) -> dict[str, list[str]]:
    """function name -> ids of the ENIs it currently uses."""
    return backend.__dict__.setdefault("_fintech_lambda_enis", {})


def _create_enis(backend: Any, fn: Any) -> None:
    config = fn._vpc_config or {}
    subnet_ids = config.get("SubnetIds") or []
    group_ids = config.get("SecurityGroupIds") or []
    if not subnet_ids or not group_ids:
        return
    ec2 = _ec2(backend)
    enis = []
    for subnet_id in subnet_ids:
        if ec2.get_subnet(subnet_id) is None:
            raise InvalidParameterValueException(
                f"Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. "
                f"EC2 Error Message: The subnet ID '{subnet_id}' does not exist"
            )
        eni = ec2.create_network_interface(
            subnet_id,
            None,
            group_ids=group_ids,
            description=f"AWS Lambda VPC ENI-{fn.function_name}-{uuid.uuid4()}",
        )
        eni.requester_managed = True
        eni.requester_id = f"{REQUESTER_ID_PREFIX}:{fn.function_name}"
        eni.interface_type = "lambda"
        eni.status = "in-use"
        enis.append(eni.id)
    _registry(backend)[fn.function_name] = enis


def _release_enis(backend: Any, function_name: str) -> None:
    """The function no longer uses its ENIs: available now, removed after the linger."""
    ec2 = _ec2(backend)
    for eni_id in _registry(backend).pop(function_name, []):
        eni = ec2.enis.get(eni_id)
        if eni is None:
            continue
        eni.status = "available"
        TIMELINE.record("lambda-eni", eni_id, "in-use", "available")

        def remove(eni_id: str = eni_id) -> None:
            ec2.enis.pop(eni_id, None)

        if SETTINGS.lambda_eni_linger <= 0:
            remove()
            TIMELINE.record("lambda-eni", eni_id, "available", "deleted")
        else:
            TIMELINE.schedule(
                "lambda-eni", eni_id, "available", "deleted", SETTINGS.lambda_eni_linger, remove
            )


@rule("lambda", "fidelity")
def vpc_function_creates_hyperplane_enis() -> None:
    """CreateFunction with a VpcConfig creates one requester-managed `lambda` ENI
    per subnet, with the function's security groups, status in-use; the
    returned VpcConfig.VpcId is the subnets' VPC (moto returns a fixed fake)."""

    @wrap(LambdaBackend, "create_function")
    def create_function(original: Any, self: Any, spec: dict[str, Any]) -> Any:
        fn = original(self, spec)
        live = self.get_function(fn.function_name)
        try:
            _create_enis(self, live)
        except Exception:
            self._lambdas.del_function(fn.function_name, None)
            raise
        return fn

    @wrap(LambdaBackend, "update_function_configuration")
    def update_function_configuration(original: Any, self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        if "VpcConfig" not in body:
            return original(self, function_name, qualifier, body)
        name = self.get_function(function_name).function_name
        result = original(self, function_name, qualifier, body)
        _release_enis(self, name)
        _create_enis(self, self.get_function(name))
        return result

    original_vpc_config = LambdaFunction.vpc_config.fget

    def vpc_config(self: Any) -> Any:
        config = original_vpc_config(self)
        subnets = (self._vpc_config or {}).get("SubnetIds") or []
        if config and subnets:
            subnet = ec2_backends[self.account_id][self.region].get_subnet(subnets[0])
            if subnet is not None:
                config["VpcId"] = subnet.vpc_id
        return config

    LambdaFunction.vpc_config = property(vpc_config)


@rule("lambda", "waiting")
def deleted_function_enis_linger() -> None:
    """DeleteFunction leaves the function's ENIs `available` for the linger time
    (AWS: 5-30 minutes), then removes them; until then they block the deletion
    of their subnets and security groups."""

    @wrap(LambdaBackend, "delete_function")
    def delete_function(original: Any, self: Any, function_name: str, qualifier: Any = None) -> Any:
        name = None
        if not qualifier:
            try:
                name = self.get_function(function_name).function_name
            except Exception:
                name = None
        result = original(self, function_name, qualifier)
        if name is not None:
            _release_enis(self, name)
        return result


@rule("ec2", "refusal")
def in_use_lambda_eni_cannot_be_deleted() -> None:
    """DeleteNetworkInterface on a Lambda ENI whose function still exists fails
    with InvalidParameterValue "Network interface '<id>' is currently in use.";
    once `available` the client may delete it (that ends its linger)."""

    @wrap(EC2Backend, "delete_network_interface")
    def delete_network_interface(original: Any, self: Any, eni_id: str) -> Any:
        eni = self.enis.get(eni_id)
        if eni is not None and getattr(eni, "interface_type", "") == "lambda":
            if eni.status == "in-use":
                raise EC2ClientError(
                    "InvalidParameterValue", f"Network interface '{eni_id}' is currently in use."
                )
            TIMELINE.cancel("lambda-eni", eni_id)
            result = original(self, eni_id)
            TIMELINE.record("lambda-eni", eni_id, "available", "deleted")
            return result
        return original(self, eni_id)
