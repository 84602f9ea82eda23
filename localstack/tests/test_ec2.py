"""EC2/VPC refusals and the NAT gateway's pending/deleting waits."""

from __future__ import annotations

import time

from conftest import error_code


def _nat(emu, vpc):
    ec2 = emu.client("ec2")
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=vpc["subnets"][0], AllocationId=alloc)["NatGateway"]
    return ec2, alloc, nat["NatGatewayId"], nat


def _nat_state(ec2, nat_id):
    return ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"]


def test_nat_gateway_blocks_subnet_eip_and_igw_until_deleted(emu, vpc):
    ec2, alloc, nat_id, _ = _nat(emu, vpc)
    code, message, _ = error_code(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][0]))
    assert code == "DependencyViolation" and "has dependencies" in message
    assert error_code(lambda: ec2.release_address(AllocationId=alloc))[0] == "AuthFailure"
    assoc = ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]["AssociationId"]
    assert error_code(lambda: ec2.disassociate_address(AssociationId=assoc))[0] == "AuthFailure"
    code, message, _ = error_code(
        lambda: ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    )
    assert code == "DependencyViolation"
    assert message.startswith(f"Network {vpc['vpc']} has some mapped public address(es)")

    ec2.delete_nat_gateway(NatGatewayId=nat_id)
    emu.wait_for(lambda: _nat_state(ec2, nat_id), "deleted")
    # Once deleted, the NAT's ENI and EIP association are gone: all three succeed.
    ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    ec2.release_address(AllocationId=alloc)
    ec2.delete_subnet(SubnetId=vpc["subnets"][0])


def test_unknown_nat_gateway_is_not_found(emu):
    code, _, _ = error_code(lambda: emu.client("ec2").delete_nat_gateway(NatGatewayId="nat-0123456789abcdef0"))
    assert code == "NatGatewayNotFound"


def test_nat_gateway_eni_looks_like_aws(emu, vpc):
    ec2, _, nat_id, nat = _nat(emu, vpc)
    eni_id = nat["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    assert eni["Description"] == f"Interface for NAT Gateway {nat_id}"
    assert eni["RequesterManaged"] is True


def test_associated_address_cannot_be_released(emu, vpc):
    ec2 = emu.client("ec2")
    eni = ec2.create_network_interface(SubnetId=vpc["subnets"][1])["NetworkInterface"]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    assoc = ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)["AssociationId"]
    assert error_code(lambda: ec2.release_address(AllocationId=alloc))[0] == "InvalidIPAddress.InUse"
    ec2.disassociate_address(AssociationId=assoc)
    ec2.release_address(AllocationId=alloc)


def test_subnet_with_network_interface_cannot_be_deleted(emu, vpc):
    ec2 = emu.client("ec2")
    eni = ec2.create_network_interface(SubnetId=vpc["subnets"][1])["NetworkInterface"]["NetworkInterfaceId"]
    assert error_code(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][1]))[0] == "DependencyViolation"
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_subnet(SubnetId=vpc["subnets"][1])


def test_security_group_referenced_by_another_group_cannot_be_deleted(emu, vpc):
    ec2 = emu.client("ec2")
    db_sg, app_sg = vpc["groups"]
    ec2.authorize_security_group_ingress(
        GroupId=db_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": app_sg}]}],
    )
    code, message, _ = error_code(lambda: ec2.delete_security_group(GroupId=app_sg))
    assert (code, message) == ("DependencyViolation", f"resource {app_sg} has a dependent object")
    # A self-reference does not block; deleting the referencing group first works.
    ec2.authorize_security_group_ingress(
        GroupId=db_sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "UserIdGroupPairs": [{"GroupId": db_sg}]}],
    )
    ec2.delete_security_group(GroupId=db_sg)
    ec2.delete_security_group(GroupId=app_sg)


def test_security_group_used_by_network_interface_cannot_be_deleted(emu, vpc):
    ec2 = emu.client("ec2")
    sg = vpc["groups"][0]
    eni = ec2.create_network_interface(SubnetId=vpc["subnets"][0], Groups=[sg])["NetworkInterface"]["NetworkInterfaceId"]
    assert error_code(lambda: ec2.delete_security_group(GroupId=sg))[0] == "DependencyViolation"
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_security_group(GroupId=sg)


def test_vpc_with_dependencies_cannot_be_deleted(emu, vpc):
    ec2 = emu.client("ec2")
    code, message, _ = error_code(lambda: ec2.delete_vpc(VpcId=vpc["vpc"]))
    assert code == "DependencyViolation" and "has dependencies" in message
    for subnet in vpc["subnets"]:
        ec2.delete_subnet(SubnetId=subnet)
    # Still refused: IGW attached, security groups left.
    assert error_code(lambda: ec2.delete_vpc(VpcId=vpc["vpc"]))[0] == "DependencyViolation"
    ec2.detach_internet_gateway(InternetGatewayId=vpc["igw"], VpcId=vpc["vpc"])
    assert error_code(lambda: ec2.delete_vpc(VpcId=vpc["vpc"]))[0] == "DependencyViolation"
    for group in vpc["groups"]:
        ec2.delete_security_group(GroupId=group)
    ec2.delete_internet_gateway(InternetGatewayId=vpc["igw"])
    ec2.delete_vpc(VpcId=vpc["vpc"])


def test_nat_gateway_waits_pending_then_available_then_deleting_then_deleted(emu, vpc):
    scale = emu.scale_for("nat-gateway.create", 0.6)
    ec2, _, nat_id, nat = _nat(emu, vpc)
    created = time.time()
    assert nat["State"] == "pending"
    assert _nat_state(ec2, nat_id) == "pending"
    emu.wait_for(lambda: _nat_state(ec2, nat_id), "available")
    ec2.delete_nat_gateway(NatGatewayId=nat_id)
    assert _nat_state(ec2, nat_id) == "deleting"
    # Still holds the subnet while deleting.
    assert error_code(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][0]))[0] == "DependencyViolation"
    emu.wait_for(lambda: _nat_state(ec2, nat_id), "deleted")

    events = emu.events(nat_id)
    assert [(e["from"], e["to"]) for e in events] == [
        ("pending", "available"), ("available", "deleting"), ("deleting", "deleted")
    ]
    durations = emu.config()["durations"]
    assert abs(events[0]["ts"] - created - durations["nat-gateway.create"] * scale) < 0.3
    assert abs(events[2]["ts"] - events[1]["ts"] - durations["nat-gateway.delete"] * scale) < 0.05


def test_describe_unknown_nat_gateway_is_not_found(emu):
    ec2 = emu.client("ec2")
    code, _, _ = error_code(lambda: ec2.describe_nat_gateways(NatGatewayIds=["nat-0123456789abcdef0"]))
    assert code == "NatGatewayNotFound"


def test_deleted_subnet_loses_its_route_table_association(emu, vpc):
    ec2 = emu.client("ec2")
    subnet = ec2.create_subnet(VpcId=vpc["vpc"], CidrBlock="10.20.9.0/24")["Subnet"]["SubnetId"]
    table = ec2.create_route_table(VpcId=vpc["vpc"])["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    ec2.delete_subnet(SubnetId=subnet)
    assert ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]["Associations"] == []
    assert ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"] == []
    ec2.delete_route_table(RouteTableId=table)
