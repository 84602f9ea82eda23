"""Fault injection and the kill hook (POST /_fintech/config `faults`,
`kill_after_mutations`): what a Rust test uses to check that fintech-infra survives a
throttling, flaky AWS and a crash without losing or duplicating a resource."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import urllib.error
import urllib.request

import botocore.session
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from conftest import LOCALSTACK, error_code, name

sys.path.insert(0, str(LOCALSTACK))
from fidelity import faults  # noqa: E402


def _post_config(emu, payload):
    request = urllib.request.Request(emu.url + "/_fintech/config", data=json.dumps(payload).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _fate(call):
    """What the client saw: None (an answer), an error code, or "reset"."""
    try:
        call()
        return None
    except ClientError as error:
        return error.response["Error"]["Code"]
    except ConnectionClosedError:
        return "reset"


def test_throttle_is_each_services_own_error_in_its_protocol(emu):
    emu.config(faults={"rate": 1, "kinds": ["throttle"]})
    calls = {
        "ec2": (lambda: emu.single("ec2").describe_vpcs(), "RequestLimitExceeded", 503),
        "rds": (lambda: emu.single("rds").describe_db_clusters(), "Throttling", 400),
        "iam": (lambda: emu.single("iam").list_roles(), "Throttling", 400),
        "ecs": (lambda: emu.single("ecs").list_clusters(), "ThrottlingException", 400),
        "logs": (lambda: emu.single("logs").describe_log_groups(), "ThrottlingException", 400),
        "sqs": (lambda: emu.single("sqs").list_queues(), "RequestThrottled", 400),
        "tagging": (lambda: emu.single("resourcegroupstaggingapi").get_resources(), "ThrottledException", 400),
        "servicediscovery": (lambda: emu.single("servicediscovery").list_namespaces(), "RequestLimitExceeded", 429),
        "s3": (lambda: emu.single("s3").list_buckets(), "SlowDown", 503),
        "cloudfront": (lambda: emu.single("cloudfront").list_distributions(), "Throttling", 400),
        "lambda": (lambda: emu.single("lambda").list_functions(), "TooManyRequestsException", 429),
        "monitoring": (lambda: emu.cbor_client("cloudwatch").describe_alarms(), "Throttling", 400),
    }
    for service, (call, code, status) in calls.items():
        got = error_code(call)
        assert (got[0], got[2]) == (code, status), service
        # The AWS SDK for Rust's standard retry classifier treats it as throttling.
        assert code in faults.SDK_THROTTLING_ERRORS
    log = emu.requests()[-len(calls):]
    assert [(r["service"], r["fault"], r["moto_status"]) for r in log] == [(s, "throttle/before", None) for s in calls]
    assert log[-1]["path"].startswith("/service/GraniteServiceVersion20100801/operation/")  # CBOR on the wire


def test_throttle_codes_are_the_ones_botocores_models_give():
    session = botocore.session.get_session()
    for service, botocore_name in (("lambda", "lambda"), ("servicediscovery", "servicediscovery"),
                                   ("tagging", "resourcegroupstaggingapi"), ("sqs", "sqs")):
        code, status, _ = faults.THROTTLE_BY_SERVICE[service]
        shape = session.get_service_model(botocore_name).shape_for(code)
        assert shape.metadata.get("exception"), service
        assert shape.metadata.get("error", {}).get("httpStatusCode", status) == status, service
    assert {s for _, s, _ in faults.SERVER_ERRORS.values()} <= set(faults.SDK_TRANSIENT_STATUS_CODES)


def test_server_errors_and_reset(emu):
    ec2, ecs = emu.single("ec2"), emu.single("ecs")
    emu.config(faults={"rate": 1, "kinds": ["500"], "services": ["ec2"]})
    assert error_code(ec2.describe_vpcs)[0::2] == ("InternalError", 500)
    ecs.list_clusters()  # not in `services`: never faulted
    emu.config(faults={"rate": 1, "kinds": ["503"]})
    assert error_code(ecs.list_clusters)[0::2] == ("ServiceUnavailable", 503)
    emu.config(faults={"rate": 1, "kinds": ["reset"]})
    with pytest.raises(ConnectionClosedError):
        ec2.describe_vpcs()
    assert emu.config()["faults"]["injected"] == 1  # /_fintech/ is never faulted
    emu.config(faults=None)
    assert emu.config()["faults"] is None
    ec2.describe_vpcs()
    log = emu.requests()[-5:]
    assert [(r["operation"], r["status"], r["error"], r["fault"]) for r in log] == [
        ("DescribeVpcs", 500, "InternalError", "500/before"),
        ("ListClusters", 200, None, None),
        ("ListClusters", 503, "ServiceUnavailable", "503/before"),
        ("DescribeVpcs", None, None, "reset/before"),
        ("DescribeVpcs", 200, None, None),
    ]
    assert all(r["attempt"] == 1 and r["invocation_id"] for r in log)


def test_after_fault_carries_the_request_out_and_loses_the_answer(emu):
    """The retry of a create whose answer was lost must find the first one."""
    ec2 = emu.single("ec2")
    tag = name("vpc")
    spec = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": tag}]}]
    emu.config(faults={"rate": 1, "kinds": ["500"], "when": "after", "operations": ["CreateVpc"], "max_faults": 1})
    assert error_code(lambda: ec2.create_vpc(CidrBlock="10.30.0.0/16", TagSpecifications=spec))[0] == "InternalError"
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [tag]}])["Vpcs"]
    assert len(vpcs) == 1  # it was created
    created = [r for r in emu.requests() if r["operation"] == "CreateVpc"][-1]
    assert (created["fault"], created["status"], created["moto_status"]) == ("500/after", 500, 200)
    ec2.delete_vpc(VpcId=vpcs[0]["VpcId"])  # max_faults reached: no more faults
    assert emu.config()["faults"]["injected"] == 1


def test_faults_are_deterministic_given_seed_and_order(emu):
    sts = emu.single("sts")
    config = {"rate": 0.5, "seed": 7, "kinds": ["throttle", "500", "503", "reset"], "when": "both", "services": ["sts"]}
    rng = random.Random(7)
    expected = []
    for _ in range(12):
        hit, pick, side = rng.random(), rng.random(), rng.random()
        expected.append(f"{config['kinds'][int(pick * 4)]}/{'before' if side < 0.5 else 'after'}" if hit < 0.5 else None)
    assert any(expected) and not all(expected)
    seen = []
    for _ in range(2):
        emu.config(faults=config)
        seen.append([_fate(sts.get_caller_identity) for _ in range(12)])
        assert [r["fault"] for r in emu.requests()[-12:]] == expected
    assert seen[0] == seen[1]
    code = {"throttle": "Throttling", "500": "InternalError", "503": "ServiceUnavailable", "reset": "reset"}
    assert seen[0] == [code[e.split("/")[0]] if e else None for e in expected]


def test_bad_fault_and_kill_configs_are_refused(emu):
    for payload in ({"faults": {"rate": 2}}, {"faults": {"rate": 0.1, "kinds": ["boom"]}},
                    {"faults": {"rate": 0.1, "kind": ["500"]}}, {"faults": {"rate": 0.1, "when": "later"}},
                    {"kill_after_mutations": {"count": 0, "pid": 12345}},
                    {"kill_after_mutations": {"count": 1, "pid": 2 ** 22 + 7}}):
        with pytest.raises(urllib.error.HTTPError) as info:
            _post_config(emu, payload)
        assert info.value.code == 400, payload
    config = emu.config()
    assert config["faults"] is None and config["kill_after_mutations"] is None


def test_kill_after_the_kth_mutation(emu):
    ec2 = emu.single("ec2")
    victim = subprocess.Popen(["sleep", "60"])
    try:
        hook = emu.config(kill_after_mutations={"count": 2, "pid": victim.pid})["kill_after_mutations"]
        assert hook == {"count": 2, "pid": victim.pid, "user_agent_contains": None, "mutations": 0}
        vpc = ec2.create_vpc(CidrBlock="10.31.0.0/16")["Vpc"]["VpcId"]  # mutation 1
        ec2.describe_vpcs(VpcIds=[vpc])  # a read
        error_code(lambda: ec2.delete_subnet(SubnetId="subnet-0000000000000000f"))  # failed: not counted
        assert emu.config()["kill_after_mutations"]["mutations"] == 1
        with pytest.raises(ConnectionClosedError):
            ec2.create_subnet(VpcId=vpc, CidrBlock="10.31.1.0/24")  # mutation 2: carried out, unanswered
        assert victim.wait(timeout=5) == -9
    finally:
        victim.kill()
    assert emu.config()["kill_after_mutations"] is None  # fired once, cleared
    assert [(e["from"], e["to"]) for e in emu.events(victim.pid)] == [(2, "CreateSubnet")]
    last = emu.requests()[-1]
    assert (last["operation"], last["killed"], last["status"], last["moto_status"]) == ("CreateSubnet", True, None, 200)
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    assert len(subnets) == 1
    ec2.delete_subnet(SubnetId=subnets[0]["SubnetId"])
    ec2.delete_vpc(VpcId=vpc)
