"""Cloud Map in-use refusals; Application Auto Scaling not-found codes."""

from __future__ import annotations

from conftest import error_code, name


def test_namespace_with_services_and_service_with_instances(emu, vpc):
    sd = emu.client("servicediscovery")
    ns_name = f"{name('ns')}.local"
    sd.create_private_dns_namespace(Name=ns_name, Vpc=vpc["vpc"])
    ns_id = next(n["Id"] for n in sd.list_namespaces()["Namespaces"] if n["Name"] == ns_name)
    service = sd.create_service(Name="api", NamespaceId=ns_id,
                                DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})["Service"]["Id"]
    assert error_code(lambda: sd.delete_namespace(Id=ns_id))[0] == "ResourceInUse"
    sd.register_instance(ServiceId=service, InstanceId="task-1", Attributes={"AWS_INSTANCE_IPV4": "10.20.1.10"})
    assert error_code(lambda: sd.delete_service(Id=service))[0] == "ResourceInUse"
    sd.deregister_instance(ServiceId=service, InstanceId="task-1")
    sd.delete_service(Id=service)
    assert error_code(lambda: sd.delete_service(Id=service))[0] == "ServiceNotFound"
    sd.delete_namespace(Id=ns_id)


def test_unknown_scalable_target_is_object_not_found(emu):
    aas = emu.client("application-autoscaling")
    code, message, _ = error_code(lambda: aas.deregister_scalable_target(
        ServiceNamespace="ecs", ResourceId="service/none/none", ScalableDimension="ecs:service:DesiredCount"))
    assert code == "ObjectNotFoundException" and message.startswith("No scalable target found")
    code, _, _ = error_code(lambda: aas.delete_scaling_policy(
        PolicyName="cpu", ServiceNamespace="ecs", ResourceId="service/none/none", ScalableDimension="ecs:service:DesiredCount"))
    assert code == "ObjectNotFoundException"


def test_repeated_target_tracking_policy_is_updated_in_place(emu):
    ecs, aas, cw = emu.client("ecs"), emu.client("application-autoscaling"), emu.client("cloudwatch")
    cluster = name("cluster")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition="web", desiredCount=1)
    target = dict(ServiceNamespace="ecs", ResourceId=f"service/{cluster}/api", ScalableDimension="ecs:service:DesiredCount")
    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4)

    def put(value):
        return aas.put_scaling_policy(**target, PolicyName="cpu", PolicyType="TargetTrackingScaling",
                                      TargetTrackingScalingPolicyConfiguration={
                                          "TargetValue": value,
                                          "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})

    def alarms():
        return sorted(a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=f"TargetTracking-service/{cluster}/api")["MetricAlarms"])

    first = put(50.0)
    assert len(first["Alarms"]) == 2 and alarms() == sorted(a["AlarmName"] for a in first["Alarms"])
    second = put(60.0)
    assert second["PolicyARN"] == first["PolicyARN"]
    assert alarms() == sorted(a["AlarmName"] for a in first["Alarms"]) == sorted(a["AlarmName"] for a in second["Alarms"])
    policy = aas.describe_scaling_policies(**{k: v for k, v in target.items() if k != "ScalableDimension"})["ScalingPolicies"]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policy] == [60.0]
    assert all(first["PolicyARN"] in a["AlarmActions"][0] for a in cw.describe_alarms(AlarmNames=alarms())["MetricAlarms"])
    aas.delete_scaling_policy(**target, PolicyName="cpu")
    assert alarms() == []
