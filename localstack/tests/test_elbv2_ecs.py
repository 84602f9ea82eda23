"""ELBv2, ACM and ECS refusals; ALB provisioning and ECS draining waits."""

from __future__ import annotations

import time

from conftest import error_code, issued_certificate, name


def _alb(emu, vpc):
    elb = emu.client("elbv2")
    lb = elb.create_load_balancer(Name=name("alb"), Subnets=vpc["subnets"], SecurityGroups=[vpc["groups"][0]])
    return elb, lb["LoadBalancers"][0]


def _alb_state(elb, arn):
    return elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["State"]["Code"]


def test_alb_with_deletion_protection_cannot_be_deleted(emu, vpc):
    elb, lb = _alb(emu, vpc)
    arn = lb["LoadBalancerArn"]
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    code, message, _ = error_code(lambda: elb.delete_load_balancer(LoadBalancerArn=arn))
    assert code == "OperationNotPermitted" and "deletion protection is enabled" in message
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=arn)


def test_certificate_and_target_group_in_use_by_listener(emu, vpc):
    elb, lb = _alb(emu, vpc)
    acm = emu.client("acm")
    cert = issued_certificate(emu, "pay.example.com")  # a listener needs an ISSUED certificate
    tg = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=vpc["vpc"], TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    listener = elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443, Certificates=[{"CertificateArn": cert}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )["Listeners"][0]["ListenerArn"]
    code, message, _ = error_code(lambda: acm.delete_certificate(CertificateArn=cert))
    assert code == "ResourceInUseException" and message == f"Certificate {cert} in account 123456789012 is in use."
    assert error_code(lambda: elb.delete_target_group(TargetGroupArn=tg))[0] == "ResourceInUse"
    elb.delete_listener(ListenerArn=listener)
    acm.delete_certificate(CertificateArn=cert)
    elb.delete_target_group(TargetGroupArn=tg)


def test_alb_waits_provisioning_then_active(emu, vpc):
    scale = emu.scale_for("load-balancer.create", 0.6)
    started = time.time()
    elb, lb = _alb(emu, vpc)
    arn = lb["LoadBalancerArn"]
    assert lb["State"]["Code"] == "provisioning"
    assert _alb_state(elb, arn) == "provisioning"
    emu.wait_for(lambda: _alb_state(elb, arn), "active")
    (event,) = emu.events(arn)
    assert (event["from"], event["to"]) == ("provisioning", "active")
    # The transition is due 135 s x scale after the create request arrived, which is after
    # `started` by however long the client took to send it: a loaded machine (a build beside
    # the suite) adds up to a second or so, never subtracts.
    delay = event["ts"] - started - 135 * scale
    assert -0.3 < delay < 1.5, delay


def _ecs_cluster(emu):
    ecs = emu.client("ecs")
    cluster = name("cluster")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    return ecs, cluster


def _service_status(ecs, cluster, service):
    return ecs.describe_services(cluster=cluster, services=[service])["services"][0]["status"]


def test_cluster_with_services_cannot_be_deleted_and_service_drains(emu):
    scale = emu.scale_for("ecs-service.drain", 0.6)
    ecs, cluster = _ecs_cluster(emu)
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition="web", desiredCount=2)
    code, message, _ = error_code(lambda: ecs.delete_cluster(cluster=cluster))
    assert (code, message) == ("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")
    code, message, _ = error_code(lambda: ecs.delete_service(cluster=cluster, service="api"))
    assert (code, message) == ("InvalidParameterException", "The service cannot be stopped while it is scaled above 0.")

    deleted = ecs.delete_service(cluster=cluster, service="api", force=True)["service"]
    assert deleted["status"] == "DRAINING" and _service_status(ecs, cluster, "api") == "DRAINING"
    # Still blocks the cluster while draining; a second delete is refused.
    assert error_code(lambda: ecs.delete_cluster(cluster=cluster))[0] == "ClusterContainsServicesException"
    assert error_code(lambda: ecs.delete_service(cluster=cluster, service="api", force=True))[0] == "ServiceNotActiveException"
    emu.wait_for(lambda: _service_status(ecs, cluster, "api"), "INACTIVE")
    assert ecs.delete_cluster(cluster=cluster)["cluster"]["status"] == "INACTIVE"
    events = emu.events(deleted["serviceArn"])
    assert [(e["from"], e["to"]) for e in events] == [("ACTIVE", "DRAINING"), ("DRAINING", "INACTIVE")]
    assert abs(events[1]["ts"] - events[0]["ts"] - 60 * scale) < 0.05


def test_cluster_with_running_task_cannot_be_deleted(emu, vpc):
    ecs, cluster = _ecs_cluster(emu)
    ecs.register_task_definition(
        family="job", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "job", "image": "busybox", "cpu": 256, "memory": 512}],
    )
    task = ecs.run_task(
        cluster=cluster, taskDefinition="job", launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [vpc["subnets"][0]], "securityGroups": [vpc["groups"][0]]}},
    )["tasks"][0]["taskArn"]
    code, message, _ = error_code(lambda: ecs.delete_cluster(cluster=cluster))
    assert (code, message) == ("ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")
    ec2 = emu.client("ec2")
    assert error_code(lambda: ec2.delete_subnet(SubnetId=vpc["subnets"][0]))[0] == "DependencyViolation"
    ecs.stop_task(cluster=cluster, task=task)
    ecs.delete_cluster(cluster=cluster)
    ec2.delete_subnet(SubnetId=vpc["subnets"][0])  # the task's ENI went with it


def test_listener_ports_are_unique_and_a_repeated_create_is_idempotent(emu, vpc):
    elb, lb = _alb(emu, vpc)
    tg = elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=vpc["vpc"], TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    create = lambda protocol="HTTP": elb.create_listener(  # noqa: E731
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol=protocol, Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )["Listeners"][0]["ListenerArn"]
    first = create()
    assert create() == first
    assert len(elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]) == 1
    code, _, status = error_code(lambda: create("TCP"))
    assert (code, status) == ("DuplicateListener", 400)
    elb.delete_listener(ListenerArn=first)
    elb.delete_target_group(TargetGroupArn=tg)
