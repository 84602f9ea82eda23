"""Cloud Map's private hosted zone (named like the namespace, in its VPC, deleted with it);
Application Auto Scaling's tags on scalable targets."""

from __future__ import annotations

from conftest import error_code, name


def _namespace(sd, vpc_id: str, ns_name: str) -> dict:
    sd.create_private_dns_namespace(Name=ns_name, Vpc=vpc_id)
    ns_id = next(n["Id"] for n in sd.list_namespaces()["Namespaces"] if n["Name"] == ns_name)
    return sd.get_namespace(Id=ns_id)["Namespace"]


def test_private_namespace_zone_is_named_like_it_in_its_vpc_and_goes_with_it(emu, vpc):
    sd, r53 = emu.client("servicediscovery"), emu.client("route53")
    ns_name = f"{name('ns')}.internal"
    ns = _namespace(sd, vpc["vpc"], ns_name)
    zone_id = ns["Properties"]["DnsProperties"]["HostedZoneId"]
    assert not zone_id.startswith("/"), zone_id
    zone = r53.get_hosted_zone(Id=zone_id)
    assert zone["HostedZone"]["Name"] == f"{ns_name}."
    assert zone["HostedZone"]["Config"]["PrivateZone"] is True
    assert [v["VPCId"] for v in zone["VPCs"]] == [vpc["vpc"]]
    # The zone is Route 53's: tagged through Route 53, not through the namespace.
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id,
                                 AddTags=[{"Key": "Team", "Value": "payments"}])
    tags = r53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)
    assert tags["ResourceTagSet"]["Tags"] == [{"Key": "Team", "Value": "payments"}]

    sd.delete_namespace(Id=ns["Id"])
    assert error_code(lambda: r53.get_hosted_zone(Id=zone_id))[0] == "NoSuchHostedZone"
    assert all(z["Id"].rsplit("/", 1)[-1] != zone_id for z in r53.list_hosted_zones()["HostedZones"])


def test_namespace_in_use_keeps_its_zone(emu, vpc):
    sd, r53 = emu.client("servicediscovery"), emu.client("route53")
    ns = _namespace(sd, vpc["vpc"], f"{name('ns')}.internal")
    zone_id = ns["Properties"]["DnsProperties"]["HostedZoneId"]
    service = sd.create_service(Name="api", NamespaceId=ns["Id"],
                                DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 10}]})["Service"]["Id"]
    assert error_code(lambda: sd.delete_namespace(Id=ns["Id"]))[0] == "ResourceInUse"
    r53.get_hosted_zone(Id=zone_id)
    sd.delete_service(Id=service)
    sd.delete_namespace(Id=ns["Id"])


def test_scalable_target_tags_from_register_and_tag_resource(emu):
    ecs, aas = emu.client("ecs"), emu.client("application-autoscaling")
    cluster = name("cluster")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition="web", desiredCount=1)
    target = dict(ServiceNamespace="ecs", ResourceId=f"service/{cluster}/api", ScalableDimension="ecs:service:DesiredCount")
    arn = aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4,
                                       Tags={"Team": "platform", "Name": "api"})["ScalableTargetARN"]
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"Team": "platform", "Name": "api"}
    # Registering again updates the target; tags of an existing target come from TagResource.
    aas.register_scalable_target(**target, MinCapacity=1, MaxCapacity=6, Tags={"Team": "other"})
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"]["Team"] == "platform"
    aas.tag_resource(ResourceARN=arn, Tags={"Team": "payments", "CostCenter": "cc-42"})
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {
        "Team": "payments", "CostCenter": "cc-42", "Name": "api"}
    aas.untag_resource(ResourceARN=arn, TagKeys=["CostCenter"])
    assert "CostCenter" not in aas.list_tags_for_resource(ResourceARN=arn)["Tags"]
    aas.deregister_scalable_target(**target)
    code, _, _ = error_code(lambda: aas.tag_resource(ResourceARN=arn, Tags={"a": "b"}))
    assert code == "ResourceNotFoundException"
    assert error_code(lambda: aas.list_tags_for_resource(ResourceARN=arn))[0] == "ResourceNotFoundException"
