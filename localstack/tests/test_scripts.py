"""localstack/start and localstack/stop: ports, run dirs, --watch-pid, failures, reset."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request

from conftest import LOCALSTACK, Emulator, start_emulator, stop_emulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_start_on_given_port_with_flags_then_stop(tmp_path):
    port = _free_port()
    url = start_emulator(tmp_path, "--port", str(port), "--time-scale", "0.25", "--lambda-eni-linger", "7")
    assert url == f"http://127.0.0.1:{port}"
    assert (tmp_path / "endpoint").read_text().strip() == url
    pid = int((tmp_path / "emulator.pid").read_text())
    assert _alive(pid)
    config = Emulator(url).config()
    assert (config["time_scale"], config["lambda_eni_linger"]) == (0.25, 7)
    # A second start for the same run dir refuses; another run dir works.
    again = subprocess.run([str(LOCALSTACK / "start"), "--run-dir", str(tmp_path)], capture_output=True, text=True)
    assert again.returncode != 0 and "already runs" in again.stderr
    stop_emulator(tmp_path)
    assert not _alive(pid) and not (tmp_path / "emulator.pid").exists()
    stop_emulator(tmp_path)  # nothing running: still fine


def test_watch_pid_ends_the_emulator(tmp_path):
    watched = subprocess.Popen(["sleep", "60"])
    out = subprocess.run(
        [str(LOCALSTACK / "start"), "--run-dir", str(tmp_path), "--watch-pid", str(watched.pid)],
        check=True, capture_output=True, text=True,
    )
    pid = int((tmp_path / "emulator.pid").read_text())
    assert out.stdout.strip().splitlines()[-1].startswith("http://127.0.0.1:")
    watched.kill()
    watched.wait()
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    stop_emulator(tmp_path)


def test_start_fails_loudly_when_port_is_taken(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = subprocess.run(
            [str(LOCALSTACK / "start"), "--run-dir", str(tmp_path), "--port", str(busy.getsockname()[1])],
            capture_output=True, text=True, timeout=90,
        )
    assert result.returncode != 0
    assert "Address already in use" in result.stderr
    assert not (tmp_path / "emulator.pid").exists()


def test_moto_reset_also_resets_the_fidelity_state(tmp_path):
    emu = Emulator(start_emulator(tmp_path))
    try:
        ec2 = emu.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
        ec2.create_nat_gateway(SubnetId=subnet, AllocationId=ec2.allocate_address(Domain="vpc")["AllocationId"])
        assert emu.events()
        urllib.request.urlopen(urllib.request.Request(emu.url + "/moto-api/reset", method="POST"), timeout=30)
        assert emu.events() == []
        assert ec2.describe_nat_gateways()["NatGateways"] == []
        assert all(not r["path"].startswith("/moto-api") for r in emu.requests())
    finally:
        stop_emulator(tmp_path)
