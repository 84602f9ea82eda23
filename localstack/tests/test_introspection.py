"""The /_fintech/ API: request log, transition events, config, health, patches."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from conftest import name


def _http(url, method="GET", body=None):
    request = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def test_health_config_and_patches(emu):
    assert _http(emu.url + "/_fintech/health")[0] == 200
    config = emu.config()
    assert config["time_scale"] == 0 and config["lambda_eni_linger"] == 0
    assert config["durations"]["nat-gateway.create"] == 90
    assert emu.config(time_scale=0.5, lambda_eni_linger=3)["time_scale"] == 0.5
    assert emu.config()["lambda_eni_linger"] == 3
    with pytest.raises(urllib.error.HTTPError) as info:
        _http(emu.url + "/_fintech/config", "POST", b'{"time_scale": -1}')
    assert info.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as info:
        _http(emu.url + "/_fintech/nope")
    assert info.value.code == 404
    patches = _http(emu.url + "/_fintech/patches")[1]
    names = {p["name"] for p in patches}
    assert {"subnet_with_nat_gateway_cannot_be_deleted", "origin_access_identity_api", "key_pending_deletion_cannot_be_used"} <= names
    assert all(p["doc"] for p in patches)


def test_request_log_names_service_operation_and_params(emu):
    emu._call("DELETE", "/_fintech/requests")
    assert emu.requests() == []
    ec2, ecs, cf = emu.client("ec2"), emu.client("ecs"), emu.client("cloudfront")
    ec2.describe_vpcs()
    ecs.list_clusters()
    cf.list_distributions()
    try:
        ec2.delete_subnet(SubnetId="subnet-0000000000000000f")
    except ec2.exceptions.ClientError:
        pass
    emu.config()  # /_fintech/ requests are not logged
    log = emu.requests()
    assert [(r["service"], r["operation"], r["status"]) for r in log] == [
        ("ec2", "DescribeVpcs", 200),
        ("ecs", "ListClusters", 200),
        ("cloudfront", "ListDistributions", 200),
        ("ec2", "DeleteSubnet", 400),
    ]
    assert log[0]["params"]["Action"] == "DescribeVpcs" and log[0]["method"] == "POST"
    assert log[1]["params"] == {}
    assert log[2]["method"] == "GET" and log[2]["path"] == "/2020-05-31/distribution"
    assert log[3]["params"]["SubnetId"] == "subnet-0000000000000000f"
    assert log[3]["error"] == "InvalidSubnetID.NotFound"
    assert all(isinstance(r["ts"], float) and r["latency_ms"] >= 0 for r in log)
    assert log == sorted(log, key=lambda r: r["ts"])
    # boto3 names itself in the user agent, as the Rust SDK does with the app name.
    assert all("Boto3" in r["user_agent"] or "botocore" in r["user_agent"] for r in log)


def test_events_order_nat_teardown_against_requests(emu, vpc):
    """The kind of check a Rust test makes: the route through the NAT gateway was
    created after it became available, the EIP released after it was deleted."""
    emu.scale_for("nat-gateway.create", 0.3)
    ec2 = emu.client("ec2")
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat_id = ec2.create_nat_gateway(SubnetId=vpc["subnets"][0], AllocationId=alloc)["NatGateway"]["NatGatewayId"]
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat_id], WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    table = ec2.create_route_table(VpcId=vpc["vpc"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_id)
    ec2.delete_nat_gateway(NatGatewayId=nat_id)
    ec2.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat_id], WaiterConfig={"Delay": 0.05, "MaxAttempts": 100})
    ec2.release_address(AllocationId=alloc)

    events = {e["to"]: e["ts"] for e in emu.events(nat_id)}
    requests = {r["operation"]: r["ts"] for r in emu.requests() if r["params"].get("NatGatewayId") == nat_id or r["params"].get("AllocationId") == alloc}
    assert events["available"] < requests["CreateRoute"]
    assert requests["DeleteNatGateway"] < events["deleting"] + 0.05
    assert events["deleted"] < requests["ReleaseAddress"]
