"""ELBv2 listener certificates and access-log buckets; ECS services behind target
groups; CODE_DEPLOY services take new revisions only through CodeDeploy."""

from __future__ import annotations

import json

from conftest import error_code, issued_certificate, name


def _alb(emu, vpc):
    elb = emu.client("elbv2")
    arn = elb.create_load_balancer(Name=name("alb"), Subnets=vpc["subnets"], SecurityGroups=[vpc["groups"][0]])["LoadBalancers"][0]["LoadBalancerArn"]
    return elb, arn


def _target_group(elb, vpc, target_type="ip"):
    return elb.create_target_group(Name=name("tg"), Protocol="HTTP", Port=80, VpcId=vpc["vpc"], TargetType=target_type)["TargetGroups"][0]["TargetGroupArn"]


def _fixed_response():
    return [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]


def test_https_listener_needs_an_issued_certificate_of_its_region(emu, vpc):
    elb, lb = _alb(emu, vpc)

    def listener(cert, port=443):
        return elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=port, Certificates=[{"CertificateArn": cert}],
                                   DefaultActions=_fixed_response())

    pending = emu.client("acm").request_certificate(DomainName="pay.example.com", ValidationMethod="DNS")["CertificateArn"]
    assert error_code(lambda: listener(pending)) == (
        "UnsupportedCertificate",
        f"The certificate '{pending}' must have a fully-qualified domain name, a supported signature, and a supported key size.", 400)
    elsewhere = issued_certificate(emu, "pay.example.com", region="eu-west-1")
    assert error_code(lambda: listener(elsewhere)) == ("CertificateNotFound", f"Certificate '{elsewhere}' not found", 400)
    missing = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    assert error_code(lambda: listener(missing))[0] == "CertificateNotFound"

    issued = issued_certificate(emu, "pay.example.com")
    arn = listener(issued)["Listeners"][0]["ListenerArn"]
    assert error_code(lambda: elb.add_listener_certificates(ListenerArn=arn, Certificates=[{"CertificateArn": pending}]))[0] == "UnsupportedCertificate"
    assert error_code(lambda: elb.modify_listener(ListenerArn=arn, Certificates=[{"CertificateArn": elsewhere}]))[0] == "CertificateNotFound"
    elb.add_listener_certificates(ListenerArn=arn, Certificates=[{"CertificateArn": issued_certificate(emu, "api.example.com")}])


def _log_bucket(emu, policy_principal, prefix="alb", encryption="AES256"):
    s3 = emu.client("s3")
    bucket = name("alblogs")
    s3.create_bucket(Bucket=bucket)
    if encryption:
        rule = {"SSEAlgorithm": encryption}
        if encryption == "aws:kms":
            rule["KMSMasterKeyID"] = "arn:aws:kms:us-east-1:123456789012:key/k"
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]})
    if policy_principal:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": policy_principal, "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/{prefix}/AWSLogs/123456789012/*"}]}))
    return bucket


def test_access_logs_bucket_must_accept_elb_log_delivery(emu, vpc):
    elb, lb = _alb(emu, vpc)

    def enable(bucket, prefix="alb"):
        return elb.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"}, {"Key": "access_logs.s3.bucket", "Value": bucket},
            {"Key": "access_logs.s3.prefix", "Value": prefix}])

    def refused(bucket):
        return ("InvalidConfigurationRequest", f"Access Denied for bucket: {bucket}. Please check S3bucket permission", 400)

    missing = name("nobucket")
    assert error_code(lambda: enable(missing)) == refused(missing)
    no_policy = _log_bucket(emu, None)
    assert error_code(lambda: enable(no_policy)) == refused(no_policy)
    kms = _log_bucket(emu, {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}, encryption="aws:kms")
    assert error_code(lambda: enable(kms)) == refused(kms)
    other_prefix = _log_bucket(emu, {"AWS": "arn:aws:iam::127311923021:root"}, prefix="elsewhere")
    assert error_code(lambda: enable(other_prefix)) == refused(other_prefix)
    wrong_account = _log_bucket(emu, {"AWS": "arn:aws:iam::797873946194:root"})  # us-west-2's ELB account
    assert error_code(lambda: enable(wrong_account)) == refused(wrong_account)
    assert elb.describe_load_balancer_attributes(LoadBalancerArn=lb)["Attributes"]  # unchanged, still readable

    for principal in ({"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
                      {"AWS": "arn:aws:iam::127311923021:root"}, {"AWS": "127311923021"}):
        enable(_log_bucket(emu, principal))
    enable(_log_bucket(emu, {"AWS": "arn:aws:iam::127311923021:root"}, encryption=None))  # default SSE-S3
    # Other attributes while logging stays off need no bucket.
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[{"Key": "access_logs.s3.enabled", "Value": "false"}])
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "30"}])


def _fargate_service(emu, vpc, target_group, **extra):
    ecs = emu.client("ecs")
    cluster = name("cluster")
    ecs.create_cluster(clusterName=cluster)
    family = name("web")
    ecs.register_task_definition(family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                                 containerDefinitions=[{"name": "web", "image": "nginx", "cpu": 256, "memory": 512,
                                                        "portMappings": [{"containerPort": 80}]}])
    kwargs = dict(cluster=cluster, serviceName="web", taskDefinition=family, desiredCount=1, launchType="FARGATE",
                  loadBalancers=[{"targetGroupArn": target_group, "containerName": "web", "containerPort": 80}],
                  networkConfiguration={"awsvpcConfiguration": {"subnets": vpc["subnets"], "securityGroups": [vpc["groups"][1]]}})
    kwargs.update(extra)
    return ecs, cluster, family, (lambda: ecs.create_service(**kwargs))


def test_service_target_group_must_be_attached_to_a_load_balancer(emu, vpc):
    elb, lb = _alb(emu, vpc)
    tg = _target_group(elb, vpc)
    ecs, cluster, family, create = _fargate_service(emu, vpc, tg)
    assert error_code(create) == (
        "InvalidParameterException", f"The target group with targetGroupArn {tg} does not have an associated load balancer.", 400)

    # A rule forwarding to it, with a weighted forward, attaches it.
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=_fixed_response())["Listeners"][0]["ListenerArn"]
    elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                    Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg, "Weight": 1}]}}])
    create()

    instance_tg = _target_group(elb, vpc, target_type="instance")
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=8080, DefaultActions=[{"Type": "forward", "TargetGroupArn": instance_tg}])
    _, _, _, create_instance = _fargate_service(emu, vpc, instance_tg)
    assert error_code(create_instance)[1] == (
        f"The provided target group {instance_tg} has target type instance, which is incompatible with the awsvpc "
        "network mode specified in the task definition.")
    # UpdateService is checked too.
    unattached = _target_group(elb, vpc)
    code, message, _ = error_code(lambda: ecs.update_service(cluster=cluster, service="web", loadBalancers=[
        {"targetGroupArn": unattached, "containerName": "web", "containerPort": 80}]))
    assert code == "InvalidParameterException" and "does not have an associated load balancer" in message


def test_code_deploy_service_takes_new_revisions_only_through_codedeploy(emu, vpc):
    elb, lb = _alb(emu, vpc)
    tg = _target_group(elb, vpc)
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    ecs, cluster, family, create = _fargate_service(emu, vpc, tg, deploymentController={"type": "CODE_DEPLOY"})
    create()
    revision = ecs.register_task_definition(family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
                                            containerDefinitions=[{"name": "web", "image": "nginx:2", "cpu": 256, "memory": 512}])
    new_arn = revision["taskDefinition"]["taskDefinitionArn"]
    assert error_code(lambda: ecs.update_service(cluster=cluster, service="web", taskDefinition=new_arn)) == (
        "InvalidParameterException",
        "Unable to update task definition on services with a CODE_DEPLOY deployment controller. "
        "Use AWS CodeDeploy to trigger a new deployment.", 400)
    # loadBalancers are refused even when unchanged.
    code, message, _ = error_code(lambda: ecs.update_service(cluster=cluster, service="web", loadBalancers=[
        {"targetGroupArn": tg, "containerName": "web", "containerPort": 80}]))
    assert (code, message) == ("InvalidParameterException", "Unable to update load balancers on services with a "
                               "CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.")
    # The same revision, or only the desired count, is fine.
    ecs.update_service(cluster=cluster, service="web", taskDefinition=f"{family}:1", desiredCount=2)
    assert ecs.describe_services(cluster=cluster, services=["web"])["services"][0]["desiredCount"] == 2

    # An ECS-controlled service takes the new revision.
    _, other_cluster, other_family, create_ecs = _fargate_service(emu, vpc, tg)
    create_ecs()
    ecs.update_service(cluster=other_cluster, service="web", taskDefinition=new_arn)
