"""Shared fixtures for the fidelity layer's tests.

One emulator per test session, started with the real localstack/start script
(--watch-pid: it dies with pytest) and stopped with localstack/stop. Tests use
fresh resource names, so they do not depend on each other; a test that needs
waits sets the time scale through POST /_fintech/config, and it is reset to 0
after every test (injected faults and the kill hook are turned off too).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

LOCALSTACK = Path(__file__).resolve().parent.parent


def start_emulator(run_dir: Path, *extra: str) -> str:
    out = subprocess.run(
        [str(LOCALSTACK / "start"), "--run-dir", str(run_dir), "--watch-pid", str(os.getpid()), *extra],
        check=True, capture_output=True, text=True, timeout=120,
    )
    return out.stdout.strip().splitlines()[-1]


def stop_emulator(run_dir: Path) -> None:
    subprocess.run([str(LOCALSTACK / "stop"), "--run-dir", str(run_dir)], check=True, timeout=30)


@pytest.fixture(scope="session")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Any:
    run_dir = tmp_path_factory.mktemp("emulator")
    url = start_emulator(run_dir)
    yield url
    stop_emulator(run_dir)


class Emulator:
    """boto3 clients plus the /_fintech/ introspection API of one emulator."""

    def __init__(self, url: str):
        self.url = url
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 1}),
            )
        return self._clients[service]

    def regional(self, service: str, region: str) -> Any:
        """A client for another region than us-east-1."""
        key = f"{service}@{region}"
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service,
                endpoint_url=self.url,
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 1}),
            )
        return self._clients[key]

    def single(self, service: str) -> Any:
        """A client that makes exactly one attempt per call (`client` retries once:
        botocore's `max_attempts` counts retries), for tests that count requests."""
        key = f"{service}@single"
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service, endpoint_url=self.url, region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1}),
            )
        return self._clients[key]

    def cbor_client(self, service: str) -> Any:
        """A client speaking Smithy RPC v2 CBOR, as the AWS SDK for Rust does to CloudWatch
        (botocore 1.44 picks JSON 1.0 when a service offers both)."""
        import botocore.model

        key = f"{service}@cbor"
        if key not in self._clients:
            saved = botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
            botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = ("smithy-rpc-v2-cbor", *saved)
            try:
                client = boto3.client(
                    service, endpoint_url=self.url, region_name="us-east-1",
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    config=Config(retries={"total_max_attempts": 1}),
                )
            finally:
                botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = saved
            assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
            self._clients[key] = client
        return self._clients[key]

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def config(self, **values: Any) -> dict[str, Any]:
        if values:
            return self._call("POST", "/_fintech/config", values)
        return self._call("GET", "/_fintech/config")

    def scale_for(self, duration_key: str, seconds: float) -> float:
        """Set the time scale so that `duration_key` lasts `seconds`; return it."""
        scale = seconds / self.config()["durations"][duration_key]
        self.config(time_scale=scale)
        return scale

    def events(self, resource_id: str | None = None) -> list[dict[str, Any]]:
        events = self._call("GET", "/_fintech/events")
        return [e for e in events if resource_id is None or e["id"] == resource_id]

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_fintech/requests")

    def wait_for(self, probe: Callable[[], Any], expected: Any, timeout: float = 20.0) -> float:
        """Poll probe() until it returns expected; return the seconds it took."""
        started = time.time()
        while True:
            value = probe()
            if value == expected:
                return time.time() - started
            if time.time() - started > timeout:
                raise AssertionError(f"still {value!r} after {timeout}s, wanted {expected!r}")
            time.sleep(0.02)


@pytest.fixture
def emu(endpoint: str) -> Any:
    emulator = Emulator(endpoint)
    emulator.config(time_scale=0, lambda_eni_linger=0, unhealthy_images=[], faults=None, kill_after_mutations=None)
    yield emulator
    emulator.config(time_scale=0, lambda_eni_linger=0, unhealthy_images=[], faults=None, kill_after_mutations=None)


def error_code(call: Callable[[], Any]) -> tuple[str, str, int]:
    """Run an AWS call that must fail; return (code, message, HTTP status)."""
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    return error["Code"], error.get("Message", ""), info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def vpc(emu: Emulator) -> dict[str, Any]:
    """A VPC with two subnets (two AZs), an attached IGW and two security groups."""
    ec2 = emu.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
    groups = [
        ec2.create_security_group(GroupName=name("sg"), Description="test", VpcId=vpc_id)["GroupId"]
        for _ in range(2)
    ]
    return {"vpc": vpc_id, "subnets": subnets, "igw": igw, "groups": groups}


def trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def make_role(emu: Emulator, service: str, statements: list[dict[str, Any]] | None = None,
              managed: list[str] | None = None, customer_managed: bool = False) -> str:
    """A role trusted by `service` with an inline (or a customer managed) policy of
    `statements` and the AWS managed policies named in `managed`; returns its ARN."""
    iam = emu.client("iam")
    role_name = name("role")
    arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust(service))["Role"]["Arn"]
    if statements:
        document = json.dumps({"Version": "2012-10-17", "Statement": statements})
        if customer_managed:
            policy = iam.create_policy(PolicyName=name("policy"), PolicyDocument=document)["Policy"]["Arn"]
            iam.attach_role_policy(RoleName=role_name, PolicyArn=policy)
        else:
            iam.put_role_policy(RoleName=role_name, PolicyName="inline", PolicyDocument=document)
    for policy_name in managed or []:
        path = "/service-role/" if policy_name.startswith("AWSLambda") else "/"
        iam.attach_role_policy(RoleName=role_name, PolicyArn=f"arn:aws:iam::aws:policy{path}{policy_name}")
    return arn


def issued_certificate(emu: Emulator, domain: str, sans: list[str] | None = None, region: str = "us-east-1") -> str:
    """An ACM certificate that is ISSUED at once (moto issues private-CA certificates
    immediately; DNS-validated ones stay PENDING_VALIDATION for a minute)."""
    acm = emu.client("acm") if region == "us-east-1" else emu.regional("acm", region)
    kwargs: dict[str, Any] = {"DomainName": domain,
                              "CertificateAuthorityArn": f"arn:aws:acm-pca:{region}:123456789012:certificate-authority/test"}
    if sans:
        kwargs["SubjectAlternativeNames"] = sans
    return acm.request_certificate(**kwargs)["CertificateArn"]
