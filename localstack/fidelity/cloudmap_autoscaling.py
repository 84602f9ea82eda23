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
