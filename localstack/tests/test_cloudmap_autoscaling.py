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
