"""Cloud Map and Application Auto Scaling: in-use refusals and not-found codes.

A teardown deletes Cloud Map services before their namespace and deregisters
scalable targets; moto deletes a namespace that still has services, deletes
unknown services silently and reports unknown scalable targets/policies as
ValidationException instead of AWS's ObjectNotFoundException.
"""

from __future__ import annotations

from typing import Any

from moto.applicationautoscaling.exceptions import AWSValidationException
from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
from moto.core.exceptions import JsonRESTError
from moto.servicediscovery.exceptions import ServiceNotFound
from moto.servicediscovery.models import ServiceDiscoveryBackend

from .patching import rule, wrap


@rule("servicediscovery", "refusal")
def namespace_with_services_cannot_be_deleted() -> None:
    """DeleteNamespace fails with ResourceInUse while services remain in the
    namespace (AWS: a resource that contains other resources can't be deleted)."""

    @wrap(ServiceDiscoveryBackend, "delete_namespace")
    def delete_namespace(original: Any, self: Any, namespace_id: str) -> Any:
        if any(s.namespace_id == namespace_id for s in self.services.values()):
            raise JsonRESTError("ResourceInUse", f"Namespace {namespace_id} has associated services")
        return original(self, namespace_id)


@rule("servicediscovery", "refusal")
def service_with_instances_cannot_be_deleted() -> None:
    """DeleteService fails with ResourceInUse while instances are registered, and
    with ServiceNotFound for an unknown id (moto succeeds silently)."""

    @wrap(ServiceDiscoveryBackend, "delete_service")
    def delete_service(original: Any, self: Any, service_id: str) -> Any:
        service = self.services.get(service_id)
        if service is None:
            raise ServiceNotFound(service_id)
        if service.instances:
            raise JsonRESTError(
                "ResourceInUse",
                "Service contains registered instances; delete the instances before deleting the service",
            )
        return original(self, service_id)


@rule("application-autoscaling", "refusal")
def unknown_scalable_target_or_policy_is_object_not_found() -> None:
    """DeregisterScalableTarget / DeleteScalingPolicy for something that does not
    exist fail with ObjectNotFoundException, as AWS does (moto: ValidationException)."""

    def translate(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except AWSValidationException as error:
            if error.message.startswith(("No scalable target found", "No scaling policy found")):
                raise JsonRESTError("ObjectNotFoundException", error.message) from None
            raise

    wrap(ApplicationAutoscalingBackend, "deregister_scalable_target")(translate)
    wrap(ApplicationAutoscalingBackend, "delete_scaling_policy")(translate)


@rule("application-autoscaling", "fidelity")
def repeated_put_scaling_policy_updates_in_place() -> None:
    """PutScalingPolicy with the name of an existing policy (same namespace, resource
    and dimension) updates that policy in place: same PolicyARN, and a target tracking
    policy keeps one set of CloudWatch alarms (the same alarm names, with the new
    configuration). AWS: "Creates or updates a scaling policy ... To update a policy,
    specify its policy name and the parameters that you want to change"
    (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html);
    the alarms of a target tracking policy are Application Auto Scaling's own, one set
    per policy.

    moto made a new policy (new ARN) with a second pair of TargetTracking-* alarms and
    left the first pair behind, alarms no delete ever removes.
    """
    from moto.applicationautoscaling.models import FakeApplicationAutoscalingPolicy
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.cloudwatch.utils import make_arn_for_alarm

    @wrap(ApplicationAutoscalingBackend, "put_scaling_policy")
    def put_scaling_policy(original: Any, self: Any, policy_name: str, service_namespace: str,
                           resource_id: str, scalable_dimension: str, *args: Any, **kwargs: Any) -> Any:
        key = FakeApplicationAutoscalingPolicy.formulate_key(
            service_namespace, resource_id, scalable_dimension, policy_name
        )
        old = self.policies.get(key)
        policy = original(self, policy_name, service_namespace, resource_id, scalable_dimension, *args, **kwargs)
        if old is None or policy is old:
            return policy
        cloudwatch = cloudwatch_backends[self.account_id][self.region_name]
        # The alarms moto just made point at a new ARN: make them again for the old one.
        policy.delete_alarms(self.account_id, self.region_name)
        policy._guid, policy.policy_arn, policy.creation_time = old._guid, old.policy_arn, old.creation_time
        policy.alarms = []
        policy.create_alarms()
        old_names = [a.name for a in old.alarms]
        for alarm, name in zip(policy.alarms, old_names):
            cloudwatch.alarms.pop(alarm.name, None)
            alarm.name = name
            alarm.alarm_arn = make_arn_for_alarm(self.region_name, self.account_id, name)
            cloudwatch.alarms[name] = alarm
        stale = old_names[len(policy.alarms):]
        if stale:
            cloudwatch.delete_alarms(stale)
        return policy


@rule("servicediscovery", "fidelity")
def private_dns_namespace_owns_its_hosted_zone() -> None:
    """The Route 53 private hosted zone of a private DNS namespace has the namespace's name,
    is associated with the namespace's VPC, is named by its bare ID in GetNamespace
    (Properties.DnsProperties.HostedZoneId) and is deleted with the namespace. AWS: Cloud Map
    "automatically creates an Amazon Route 53 private hosted zone that has the same name as
    the namespace" (API reference, CreatePrivateDnsNamespace), and "When you delete a DNS
    namespace, AWS Cloud Map deletes the corresponding Amazon Route 53 hosted zone created
    during namespace creation" (Developer Guide, "Deleting an AWS Cloud Map namespace").

    moto named the zone `<namespace>-hz`, associated no VPC, reported the ID with Route 53's
    `/hostedzone/` prefix and kept the zone (and its tags) after DeleteNamespace: a zone the
    stack tagged outlived the stack.
    """
    from moto.route53.models import route53_backends
    from moto.utilities.utils import get_partition

    def zones(backend: Any) -> Any:
        return route53_backends[backend.account_id][get_partition(backend.region_name)]

    def bare(zone_id: str) -> str:
        return zone_id.rsplit("/", 1)[-1]

    @wrap(ServiceDiscoveryBackend, "create_private_dns_namespace")
    def create_private_dns_namespace(original: Any, self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        operation_id = original(self, name, *args, **kwargs)
        namespace = self.namespaces[self.operations[operation_id].targets["NAMESPACE"]]
        zone_id = bare(namespace.dns_properties["HostedZoneId"])
        zone = zones(self).zones.get(zone_id)
        if zone is not None:
            old, new = zone.name, name if name.endswith(".") else f"{name}."
            for rrset in zone.rrsets:
                if rrset.name.rstrip(".") == old.rstrip("."):
                    rrset.name = new
            zone.name = new
            if namespace.vpc:
                zone.add_vpc(namespace.vpc, self.region_name)
        namespace.dns_properties["HostedZoneId"] = zone_id
        return operation_id

    @wrap(ServiceDiscoveryBackend, "delete_namespace")
    def delete_namespace(original: Any, self: Any, namespace_id: str) -> Any:
        namespace = self.namespaces.get(namespace_id)
        operation_id = original(self, namespace_id)
        zone_id = (namespace.dns_properties or {}).get("HostedZoneId") if namespace else None
        if zone_id:
            route53 = zones(self)
            route53.zones.pop(bare(zone_id), None)
            route53.resource_tags.pop(bare(zone_id), None)
        return operation_id


@rule("application-autoscaling", "missing-api")
def scalable_targets_take_tags() -> None:
    """RegisterScalableTarget keeps the Tags of a target it creates, and TagResource /
    UntagResource / ListTagsForResource work on a scalable target's ARN (an unknown one is
    ResourceNotFoundException); the tags go with DeregisterScalableTarget. AWS
    (RegisterScalableTarget, Tags): "Use this parameter to tag the scalable target when it is
    created. To tag an existing scalable target, use the TagResource operation"; TagResource:
    "You can use this operation to tag an Application Auto Scaling scalable target, but you
    cannot tag a scaling policy or scheduled action."

    moto dropped the Tags of RegisterScalableTarget and had no tagging operations at all.
    """
    import json

    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    def tags_of(backend: Any) -> dict[str, dict[str, str]]:
        if not hasattr(backend, "_fintech_tags"):
            backend._fintech_tags = {}
        return backend._fintech_tags

    def target_arns(backend: Any) -> set[str]:
        return {t.arn for by_id in backend.targets.values() for t in by_id.values()}

    def known(backend: Any, arn: str) -> dict[str, str]:
        if arn not in target_arns(backend):
            raise JsonRESTError("ResourceNotFoundException", f"No scalable target found for {arn}")
        return tags_of(backend).setdefault(arn, {})

    @wrap(ApplicationAutoScalingResponse, "register_scalable_target")
    def register_scalable_target(original: Any, self: Any) -> Any:
        backend = self.applicationautoscaling_backend
        existing = target_arns(backend)
        body = original(self)
        arn = json.loads(body)["ScalableTargetARN"]
        tags = self._get_param("Tags") or {}
        if tags and arn not in existing:
            tags_of(backend).setdefault(arn, {}).update(tags)
        return body

    @wrap(ApplicationAutoscalingBackend, "deregister_scalable_target")
    def deregister_scalable_target(original: Any, self: Any, namespace: str, r_id: str, dimension: str) -> Any:
        target = self.targets.get(dimension, {}).get(r_id)
        result = original(self, namespace, r_id, dimension)
        if target is not None:
            tags_of(self).pop(target.arn, None)
        return result

    def tag_resource(self: Any) -> str:
        known(self.applicationautoscaling_backend, self._get_param("ResourceARN")).update(self._get_param("Tags") or {})
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        tags = known(self.applicationautoscaling_backend, self._get_param("ResourceARN"))
        for key in self._get_param("TagKeys") or []:
            tags.pop(key, None)
        return json.dumps({})

    def list_tags_for_resource(self: Any) -> str:
        tags = known(self.applicationautoscaling_backend, self._get_param("ResourceARN"))
        return json.dumps({"Tags": dict(tags)})

    for handler in (tag_resource, untag_resource, list_tags_for_resource):
        setattr(ApplicationAutoScalingResponse, handler.__name__, handler)
