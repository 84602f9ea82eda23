"""ELBv2 and ACM rules: deletion protection, certificates in use, ALB provisioning.

moto deletes a load balancer whose deletion protection is on, deletes ACM
certificates a listener still serves, and turns an ALB `active` on the next
describe. (Target groups in use are already refused by moto: ResourceInUse.)
"""

from __future__ import annotations

from typing import Any

from moto.acm.models import AWSCertificateManagerBackend
from moto.core.exceptions import AWSError
from moto.elbv2.exceptions import ELBClientError
from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer, elbv2_backends

from .patching import rule, wrap
from .timeline import TIMELINE, scaled


@rule("elbv2", "refusal")
def load_balancer_with_deletion_protection_cannot_be_deleted() -> None:
    """DeleteLoadBalancer fails with OperationNotPermitted while the attribute
    deletion_protection.enabled is true.

    AWS: "Load balancer '<arn>' cannot be deleted because deletion protection is
    enabled".
    """

    @wrap(ELBv2Backend, "delete_load_balancer")
    def delete_load_balancer(original: Any, self: Any, arn: str) -> Any:
        balancer = self.load_balancers.get(arn)
        if balancer is not None and str(balancer.attrs.get("deletion_protection.enabled")).lower() == "true":
            raise ELBClientError(
                "OperationNotPermitted",
                f"Load balancer '{arn}' cannot be deleted because deletion protection is enabled",
            )
        return original(self, arn)


def _listener_certificate_arns(listener: Any) -> set[str]:
    arns = set()
    for cert in list(getattr(listener, "certificates", None) or []) + [getattr(listener, "certificate", None)]:
        if isinstance(cert, dict):
            cert = cert.get("CertificateArn") or cert.get("certificate_arn")
        if cert:
            arns.add(str(cert))
    return arns


def _certificate_users(account_id: str, region: str, arn: str) -> list[str]:
    users = []
    backend = elbv2_backends[account_id][region]
    for balancer in backend.load_balancers.values():
        for listener in balancer.listeners.values():
            if arn in _listener_certificate_arns(listener):
                users.append(listener.arn)
    try:  # CloudFront is global; its viewer certificates live in us-east-1 ACM
        from moto.cloudfront.models import cloudfront_backends

        for dist in cloudfront_backends[account_id]["aws"].distributions.values():
            viewer = dist.distribution_config.ViewerCertificate
            if getattr(viewer, "acm_certificate_arn", "") == arn:
                users.append(dist.arn)
    except (KeyError, AttributeError):
        pass
    return users


@rule("acm", "refusal")
def certificate_in_use_cannot_be_deleted() -> None:
    """ACM DeleteCertificate fails with ResourceInUseException while a load
    balancer listener (or a CloudFront distribution) uses the certificate.

    AWS: "Certificate <arn> in account <account> is in use."
    """

    @wrap(AWSCertificateManagerBackend, "delete_certificate")
    def delete_certificate(original: Any, self: Any, arn: str) -> Any:
        if _certificate_users(self.account_id, self.region_name, arn):
            raise AWSError(
                f"Certificate {arn} in account {self.account_id} is in use.",
                exception_type="ResourceInUseException",
            )
        return original(self, arn)


@rule("elbv2", "waiting")
def load_balancer_is_provisioning_then_active() -> None:
    """CreateLoadBalancer returns state `provisioning`; describe keeps showing it
    until the ALB create duration (AWS: 1.5-3 minutes) has passed, then `active`.

    (moto's FakeLoadBalancer.activate() flips it on the next describe; that is
    disabled here.)
    """
    FakeLoadBalancer.activate = lambda self: None

    @wrap(ELBv2Backend, "create_load_balancer")
    def create_load_balancer(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        balancer = original(self, *args, **kwargs)

        def become_active() -> None:
            if balancer.state == "provisioning":
                balancer.state = "active"

        TIMELINE.schedule(
            "load-balancer", balancer.arn, "provisioning", "active",
            scaled("load-balancer.create"), become_active,
        )
        return balancer
