"""EC2 (VPC) rules: dependency refusals AWS enforces and the NAT gateway's waits.

moto lets a teardown delete things in an order AWS refuses (a subnet under a
NAT gateway, the NAT gateway's Elastic IP, a security group another group's
rule points at, an IGW while the NAT's public address is still mapped) and
reports NAT gateways available/deleted at once. Each function below restores
one AWS behaviour.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import DependencyViolationError, EC2ClientError
from moto.ec2.models import EC2Backend

from .patching import rule, wrap
from .timeline import TIMELINE, scaled


def _live_nat_gateways(backend: Any) -> list[Any]:
    return [n for n in backend.nat_gateways.values() if n.state != "deleted"]


def _subnet_vpc(backend: Any, subnet_id: str) -> str | None:
    for subnets in backend.subnets.values():
        if subnet_id in subnets:
            return subnets[subnet_id].vpc_id
    return None


@rule("ec2", "refusal")
def subnet_with_nat_gateway_cannot_be_deleted() -> None:
    """DeleteSubnet fails with DependencyViolation while a NAT gateway that is not
    yet `deleted` sits in the subnet.

    AWS: "The subnet 'subnet-...' has dependencies and cannot be deleted." A NAT
    gateway in state deleting still holds its network interface in the subnet.
    """

    @wrap(EC2Backend, "delete_subnet")
    def delete_subnet(original: Any, self: Any, subnet_id: str) -> Any:
        if any(n.subnet_id == subnet_id for n in _live_nat_gateways(self)):
            raise DependencyViolationError(
                f"The subnet '{subnet_id}' has dependencies and cannot be deleted."
            )
        return original(self, subnet_id)


@rule("ec2", "refusal")
def subnet_with_network_interfaces_cannot_be_deleted() -> None:
    """DeleteSubnet fails with DependencyViolation while any network interface
    (Lambda VPC ENI, interface endpoint ENI, NAT ENI, ...) remains in it.

    AWS refuses to delete a subnet that still contains ENIs, whatever their
    status: the client must wait for (or delete) requester-managed ENIs first.
    """

    @wrap(EC2Backend, "delete_subnet")
    def delete_subnet(original: Any, self: Any, subnet_id: str) -> Any:
        if any(
            eni.subnet is not None and eni.subnet.id == subnet_id
            for eni in self.enis.values()
        ):
            raise DependencyViolationError(
                f"The subnet '{subnet_id}' has dependencies and cannot be deleted."
            )
        return original(self, subnet_id)


def _address(backend: Any, public_ip: str | None, allocation_id: str | None) -> Any:
    for eip in backend.addresses:
        if (allocation_id and eip.allocation_id == allocation_id) or (
            public_ip and eip.public_ip == public_ip
        ):
            return eip
    return None


@rule("ec2", "refusal")
def address_in_use_cannot_be_released() -> None:
    """ReleaseAddress fails while the Elastic IP is still associated.

    - held by a NAT gateway that is not `deleted` (the association belongs to the
      NAT service, not the caller): AuthFailure "You do not have permission to
      access the specified resource." — AWS's answer to touching a
      service-managed association;
    - associated with an instance/ENI in a VPC: InvalidIPAddress.InUse. AWS docs
      (ReleaseAddress): "[Nondefault VPC] You must use DisassociateAddress ...
      before you can release it. Otherwise, Amazon EC2 returns an error
      (InvalidIPAddress.InUse)." moto silently disassociates instead.
    """

    @wrap(EC2Backend, "release_address")
    def release_address(
        original: Any, self: Any, address: str | None = None, allocation_id: str | None = None
    ) -> Any:
        eip = _address(self, address, allocation_id)
        if eip is not None and eip.eni is not None:
            nat_enis = {n._eni.id for n in _live_nat_gateways(self)}
            if eip.eni.id in nat_enis:
                raise EC2ClientError(
                    "AuthFailure", "You do not have permission to access the specified resource."
                )
        if eip is not None and (eip.eni is not None or eip.instance is not None):
            raise EC2ClientError(
                "InvalidIPAddress.InUse",
                f"Address with allocation id [{eip.allocation_id}] is in use.",
            )
        return original(self, address=address, allocation_id=allocation_id)


@rule("ec2", "refusal")
def address_held_by_nat_gateway_cannot_be_disassociated() -> None:
    """DisassociateAddress on a NAT gateway's Elastic IP fails with AuthFailure.

    The association is owned by the NAT service; AWS answers "You do not have
    permission to access the specified resource." until the gateway is deleted.
    """

    @wrap(EC2Backend, "disassociate_address")
    def disassociate_address(
        original: Any, self: Any, address: str | None = None, association_id: str | None = None
    ) -> Any:
        nat_enis = {n._eni.id for n in _live_nat_gateways(self)}
        for eip in self.addresses:
            if (address and eip.public_ip == address) or (
                association_id and eip.association_id == association_id
            ):
                if eip.eni is not None and eip.eni.id in nat_enis:
                    raise EC2ClientError(
                        "AuthFailure",
                        "You do not have permission to access the specified resource.",
                    )
        return original(self, address=address, association_id=association_id)


def _group_id(self: Any, name: str | None, group_id: str | None) -> str | None:
    if group_id:
        return group_id
    group = self.get_security_group_by_name_or_id(name) if name else None
    return group.id if group else None


@rule("ec2", "refusal")
def security_group_referenced_by_another_group_cannot_be_deleted() -> None:
    """DeleteSecurityGroup fails with DependencyViolation while another group's
    ingress or egress rule references it.

    AWS: "resource sg-... has a dependent object". A group may reference itself.
    """

    @wrap(EC2Backend, "delete_security_group")
    def delete_security_group(
        original: Any, self: Any, name: str | None = None, group_id: str | None = None
    ) -> Any:
        target = _group_id(self, name, group_id)
        if target:
            for groups in self.groups.values():
                for group in groups.values():
                    if group.id == target:
                        continue
                    for r in list(group.ingress_rules) + list(group.egress_rules):
                        referenced = [r.source_group] + list(getattr(r, "source_groups", []))
                        if any(isinstance(s, dict) and s.get("GroupId") == target for s in referenced):
                            raise DependencyViolationError(
                                f"resource {target} has a dependent object"
                            )
        return original(self, name=name, group_id=group_id)


@rule("ec2", "refusal")
def security_group_attached_to_network_interface_cannot_be_deleted() -> None:
    """DeleteSecurityGroup fails with DependencyViolation while a network
    interface (e.g. a lingering Lambda VPC ENI, an endpoint ENI) uses it.

    AWS: "resource sg-... has a dependent object".
    """

    @wrap(EC2Backend, "delete_security_group")
    def delete_security_group(
        original: Any, self: Any, name: str | None = None, group_id: str | None = None
    ) -> Any:
        target = _group_id(self, name, group_id)
        if target:
            for eni in self.enis.values():
                if any(g.id == target for g in getattr(eni, "_group_set", [])):
                    raise DependencyViolationError(f"resource {target} has a dependent object")
        return original(self, name=name, group_id=group_id)


@rule("ec2", "refusal")
def internet_gateway_cannot_be_detached_while_public_addresses_are_mapped() -> None:
    """DetachInternetGateway fails with DependencyViolation while any public
    address in the VPC is mapped (e.g. the NAT gateway's Elastic IP).

    AWS: "Network vpc-... has some mapped public address(es). Please unmap those
    public address(es) before detaching the gateway."
    """

    @wrap(EC2Backend, "detach_internet_gateway")
    def detach_internet_gateway(
        original: Any, self: Any, internet_gateway_id: str, vpc_id: str
    ) -> Any:
        mapped = any(
            eip.eni is not None
            and eip.eni.subnet is not None
            and eip.eni.subnet.vpc_id == vpc_id
            for eip in self.addresses
        ) or any(
            eni.public_ip and eni.subnet is not None and eni.subnet.vpc_id == vpc_id
            for eni in self.enis.values()
        )
        if mapped:
            igw = self.internet_gateways.get(internet_gateway_id)
            if igw is not None and igw.vpc is not None and igw.vpc.id == vpc_id:
                raise DependencyViolationError(
                    f"Network {vpc_id} has some mapped public address(es). Please unmap "
                    "those public address(es) before detaching the gateway."
                )
        return original(self, internet_gateway_id, vpc_id)


@rule("ec2", "refusal")
def vpc_with_dependencies_cannot_be_deleted() -> None:
    """DeleteVpc fails with DependencyViolation while an internet gateway is
    attached, a non-default security group or a VPC endpoint remains.

    moto already refuses subnets and extra route tables; AWS also counts attached
    gateways, security groups and endpoints: "The vpc 'vpc-...' has dependencies
    and cannot be deleted."
    """

    @wrap(EC2Backend, "delete_vpc")
    def delete_vpc(original: Any, self: Any, vpc_id: str) -> Any:
        error = DependencyViolationError(
            f"The vpc '{vpc_id}' has dependencies and cannot be deleted."
        )
        if any(i.vpc is not None and i.vpc.id == vpc_id for i in self.internet_gateways.values()):
            raise error
        if any(g.name != "default" for g in self.groups.get(vpc_id, {}).values()):
            raise error
        if any(
            e.vpc_id == vpc_id and getattr(e, "state", "available") != "deleted"
            for e in self.vpc_end_points.values()
        ):
            raise error
        return original(self, vpc_id)


@rule("ec2", "refusal")
def unknown_nat_gateway_is_not_found() -> None:
    """DeleteNatGateway / DescribeNatGateways(NatGatewayIds=[...]) with an unknown
    id fail with NatGatewayNotFound.

    AWS: "The Nat Gateway nat-... was not found" (moto crashes with HTTP 500 on
    delete and returns an empty list on describe; AWS's NatGatewayDeleted
    waiter treats this error as success).
    """

    @wrap(EC2Backend, "delete_nat_gateway")
    def delete_nat_gateway(original: Any, self: Any, nat_gateway_id: str) -> Any:
        if nat_gateway_id not in self.nat_gateways:
            raise EC2ClientError(
                "NatGatewayNotFound", f"The Nat Gateway {nat_gateway_id} was not found"
            )
        return original(self, nat_gateway_id)

    @wrap(EC2Backend, "describe_nat_gateways")
    def describe_nat_gateways(original: Any, self: Any, filters: Any, nat_gateway_ids: Any) -> Any:
        for nat_gateway_id in nat_gateway_ids or []:
            if nat_gateway_id not in self.nat_gateways:
                raise EC2ClientError(
                    "NatGatewayNotFound", f"The Nat Gateway {nat_gateway_id} was not found"
                )
        return original(self, filters, nat_gateway_ids)


@rule("ec2", "waiting")
def nat_gateway_is_pending_then_available() -> None:
    """CreateNatGateway returns state `pending`; it turns `available` after the NAT
    create duration (AWS: 1-2 minutes).

    The gateway's ENI looks like AWS's: requester-managed, interface type
    nat_gateway, description "Interface for NAT Gateway nat-...".
    """

    @wrap(EC2Backend, "create_nat_gateway")
    def create_nat_gateway(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        nat = original(self, *args, **kwargs)
        eni = nat._eni
        eni.description = f"Interface for NAT Gateway {nat.id}"
        eni.requester_managed = True
        eni.interface_type = "nat_gateway"
        eni.status = "in-use"
        nat.state = "pending"

        def become_available() -> None:
            if nat.state == "pending":
                nat.state = "available"

        TIMELINE.schedule(
            "nat-gateway", nat.id, "pending", "available",
            scaled("nat-gateway.create"), become_available,
        )
        return nat


@rule("ec2", "waiting")
def nat_gateway_is_deleting_then_deleted() -> None:
    """DeleteNatGateway returns state `deleting`; after the NAT delete duration
    (AWS: about 1 minute) it is `deleted` and only then frees its network
    interface and its Elastic IP association (so the subnet can be deleted, the
    EIP released and the IGW detached).
    """

    @wrap(EC2Backend, "delete_nat_gateway")
    def delete_nat_gateway(original: Any, self: Any, nat_gateway_id: str) -> Any:
        nat = self.nat_gateways.get(nat_gateway_id)
        if nat is None:
            return original(self, nat_gateway_id)  # raises NatGatewayNotFound
        if nat.state in ("deleting", "deleted"):
            return nat
        previous = nat.state
        TIMELINE.cancel("nat-gateway", nat.id)
        nat = original(self, nat_gateway_id)  # moto marks it deleted at once
        nat.state = "deleting"
        TIMELINE.record("nat-gateway", nat.id, previous, "deleting")
        backend = self

        def become_deleted() -> None:
            nat.state = "deleted"
            eni = nat._eni
            for eip in backend.addresses:
                if eip.eni is not None and eip.eni.id == eni.id:
                    backend.disassociate_address(address=eip.public_ip)
            backend.enis.pop(eni.id, None)

        TIMELINE.schedule(
            "nat-gateway", nat.id, "deleting", "deleted",
            scaled("nat-gateway.delete"), become_deleted,
        )
        return nat


@rule("ec2", "fidelity")
def network_interface_always_has_a_private_dns_name() -> None:
    """Every ENI has a private DNS name (ip-10-0-1-5.ec2.internal), as in AWS.

    moto sets it only when the VPC has DNS hostnames enabled, and then crashes
    (HTTP 500) in RunTask for awsvpc tasks in other VPCs.
    """
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ec2.utils import generate_dns_from_ip

    def get(self: Any) -> str:
        stored = self.__dict__.get("_fintech_private_dns_name")
        return stored or generate_dns_from_ip(self.private_ip_address or "0.0.0.0")

    def set_(self: Any, value: str) -> None:
        self.__dict__["_fintech_private_dns_name"] = value

    NetworkInterface.private_dns_name = property(get, set_)


@rule("ec2", "fidelity")
def deleted_subnet_loses_its_route_table_association() -> None:
    """Deleting a subnet removes its route table association: the route table no
    longer lists it and can be deleted (AWS: a subnet's association ends with the
    subnet; DeleteRouteTable then succeeds).

    moto kept the association, so DescribeRouteTables still showed the dead subnet and
    DeleteRouteTable failed with DependencyViolation "The routeTable '<id>' has
    dependencies and cannot be deleted." forever.
    """

    @wrap(EC2Backend, "delete_subnet")
    def delete_subnet(original: Any, self: Any, subnet_id: str) -> Any:
        subnet = original(self, subnet_id)
        for table in self.route_tables.values():
            for association_id in [a for a, target in table._associations.items() if target == subnet_id]:
                del table._associations[association_id]
        return subnet
