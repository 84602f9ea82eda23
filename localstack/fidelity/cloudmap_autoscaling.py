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
