"""ECS deployments roll out, trip the circuit breaker and roll back; target groups
list the tasks; ECR scans pushed images."""

from __future__ import annotations

import json
import time
import urllib.request

from conftest import name


def _service_behind_alb(emu, vpc, image="app:1"):
    """An ECS service on `image` (awsvpc), attached to a target group an ALB forwards to."""
    ecs, elb = emu.client("ecs"), emu.client("elbv2")
    cluster = name("cluster")
    ecs.create_cluster(clusterName=cluster)
    family = name("fam")

    def revision(img):
        return ecs.register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": img, "portMappings": [{"containerPort": 8080}]}],
        )["taskDefinition"]["taskDefinitionArn"]

    lb = elb.create_load_balancer(Name=name("alb"), Subnets=vpc["subnets"], SecurityGroups=[vpc["groups"][0]])
    tg = elb.create_target_group(
        Name=name("tg"), Protocol="HTTP", Port=8080, VpcId=vpc["vpc"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"], Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )
    first = revision(image)
    service = name("svc")
    ecs.create_service(
        cluster=cluster, serviceName=service, taskDefinition=first, desiredCount=2,
        loadBalancers=[{"targetGroupArn": tg, "containerName": "app", "containerPort": 8080}],
        networkConfiguration={"awsvpcConfiguration": {"subnets": vpc["subnets"], "securityGroups": [vpc["groups"][1]]}},
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )
    return ecs, elb, cluster, service, tg, revision, first


def _deployments(ecs, cluster, service):
    return ecs.describe_services(cluster=cluster, services=[service])["services"][0]["deployments"]


def _health(elb, tg):
    return sorted(d["TargetHealth"]["State"] for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"])


def test_new_revision_rolls_out_then_the_old_tasks_drain(emu, vpc):
    ecs, elb, cluster, service, tg, revision, first = _service_behind_alb(emu, vpc)
    assert _health(elb, tg) == ["healthy", "healthy"]  # time scale 0: the create settled
    emu.scale_for("ecs-deployment.rollout", 0.6)
    second = revision("app:2")
    ecs.update_service(cluster=cluster, service=service, taskDefinition=second)
    primary, active = _deployments(ecs, cluster, service)
    assert (primary["status"], primary["rolloutState"], primary["taskDefinition"]) == ("PRIMARY", "IN_PROGRESS", second)
    assert (active["status"], active["taskDefinition"]) == ("ACTIVE", first)
    # The old tasks keep serving while the new ones pass their first health checks.
    assert _health(elb, tg) == ["healthy", "healthy", "initial", "initial"]
    emu.wait_for(lambda: [d["rolloutState"] for d in _deployments(ecs, cluster, service)], ["COMPLETED"])
    assert _deployments(ecs, cluster, service)[0]["taskDefinition"] == second
    assert _health(elb, tg) == ["healthy", "healthy"]
    # The same revision again starts nothing; forceNewDeployment does.
    ecs.update_service(cluster=cluster, service=service, taskDefinition=second)
    assert len(_deployments(ecs, cluster, service)) == 1
    ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
    assert _deployments(ecs, cluster, service)[0]["rolloutState"] == "IN_PROGRESS"


def test_failing_tasks_trip_the_circuit_breaker_which_rolls_back(emu, vpc):
    ecs, elb, cluster, service, tg, revision, first = _service_behind_alb(emu, vpc)
    emu.config(unhealthy_images=["app:broken"])
    emu.scale_for("ecs-deployment.rollout", 0.5)
    broken = revision("app:broken")
    ecs.update_service(cluster=cluster, service=service, taskDefinition=broken)
    assert _health(elb, tg) == ["healthy", "healthy", "unhealthy", "unhealthy"]

    def states():
        return [(d["taskDefinition"], d["rolloutState"]) for d in _deployments(ecs, cluster, service)]

    emu.wait_for(lambda: (broken, "FAILED") in states(), True)
    described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    assert described["taskDefinition"] == first  # the rollback is under way
    assert described["deployments"][0]["status"] == "PRIMARY" and described["deployments"][0]["taskDefinition"] == first
    assert described["deployments"][1]["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert any("deployment failed: tasks failed to start." in e["message"] for e in described["events"])
    emu.wait_for(states, [(first, "COMPLETED")])
    assert _health(elb, tg) == ["healthy", "healthy"]


def test_without_rollback_a_failed_deployment_stays(emu, vpc):
    ecs, elb, cluster, service, tg, revision, first = _service_behind_alb(emu, vpc)
    ecs.update_service(cluster=cluster, service=service,
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": False}})
    emu.config(unhealthy_images=["app:broken"])
    broken = revision("app:broken")
    ecs.update_service(cluster=cluster, service=service, taskDefinition=broken)
    deployments = _deployments(ecs, cluster, service)
    assert deployments[0]["taskDefinition"] == broken and deployments[0]["rolloutState"] == "FAILED"
    assert ecs.describe_services(cluster=cluster, services=[service])["services"][0]["taskDefinition"] == broken


def test_image_pushed_to_a_scan_on_push_repository_is_scanned(emu):
    ecr = emu.client("ecr")
    scanned, plain = name("scanned"), name("plain")
    ecr.create_repository(repositoryName=scanned, imageScanningConfiguration={"scanOnPush": True})
    ecr.create_repository(repositoryName=plain)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + "1" * 64}, "layers": []})
    for repo in (scanned, plain):
        ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag="v1")
    findings = ecr.describe_image_scan_findings(repositoryName=scanned, imageId={"imageTag": "v1"})
    assert findings["imageScanStatus"]["status"] == "COMPLETE"
    try:
        ecr.describe_image_scan_findings(repositoryName=plain, imageId={"imageTag": "v1"})
        raise AssertionError("an image never scanned has no findings")
    except ecr.exceptions.ScanNotFoundException:
        pass
    # A test seeds the findings through moto's own API.
    seeded = {"results": [{"registryId": "123456789012", "repositoryName": scanned, "imageId": {"imageTag": "v1"},
                           "imageScanStatus": {"status": "COMPLETE"},
                           "imageScanFindings": {"findingSeverityCounts": {"CRITICAL": 2}}}],
              "region": "us-east-1"}
    req = urllib.request.Request(f"{emu.url}/moto-api/static/ecr/scan-finding-results",
                                 data=json.dumps(seeded).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    counts = ecr.describe_image_scan_findings(repositoryName=scanned, imageId={"imageTag": "v1"})
    assert counts["imageScanFindings"]["findingSeverityCounts"] == {"CRITICAL": 2}


def test_a_deployment_replaced_while_it_rolls_out_does_not_end_the_new_one(emu, vpc):
    ecs, elb, cluster, service, tg, revision, first = _service_behind_alb(emu, vpc)
    emu.scale_for("ecs-deployment.rollout", 0.6)
    second, third = revision("app:2"), revision("app:3")
    ecs.update_service(cluster=cluster, service=service, taskDefinition=second)
    time.sleep(0.3)
    ecs.update_service(cluster=cluster, service=service, taskDefinition=third)
    time.sleep(0.45)  # the second's rollout time has passed, the third's not
    assert [(d["taskDefinition"], d["status"]) for d in _deployments(ecs, cluster, service)][0] == (third, "PRIMARY")
    emu.wait_for(lambda: [(d["taskDefinition"], d["rolloutState"]) for d in _deployments(ecs, cluster, service)],
                 [(third, "COMPLETED")])
