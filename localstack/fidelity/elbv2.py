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



def load_balancer_state(arn: str) -> str | None:
    """The state DescribeLoadBalancers reports for `arn` right now (`provisioning`
    until `load_balancer_is_provisioning_then_active`'s transition is due, then
    `active`), or None for a load balancer that does not exist."""
    parts = arn.split(":")
    if len(parts) < 6:
        return None
    TIMELINE.pump()  # transitions already due (the middleware pumps too; this is idempotent)
    try:
        balancer = elbv2_backends[parts[4]][parts[3]].load_balancers.get(arn)
    except KeyError:
        return None
    return None if balancer is None else balancer.state


# --- HTTPS listener certificates -------------------------------------------


def _check_listener_certificate(backend: Any, balancer_region: str, arn: str | None) -> None:
    """AWS: an ACM certificate of the load balancer's region that is ISSUED."""
    if not arn or ":acm:" not in arn:
        return  # none given (moto's own checks), or an IAM server certificate
    from moto.acm.models import acm_backends

    parts = arn.split(":")
    not_found = ELBClientError("CertificateNotFound", f"Certificate '{arn}' not found")
    if len(parts) < 6 or parts[3] != balancer_region:
        raise not_found
    try:
        cert = acm_backends[parts[4]][parts[3]].get_certificate(arn)
    except Exception:
        raise not_found
    if cert.status != "ISSUED":
        raise ELBClientError(
            "UnsupportedCertificate",
            f"The certificate '{arn}' must have a fully-qualified domain name, a supported signature, "
            "and a supported key size.",
        )


@rule("elbv2", "refusal")
def https_listener_needs_an_issued_certificate_of_its_region() -> None:
    """CreateListener / ModifyListener / AddListenerCertificates with an ACM
    certificate fail with CertificateNotFound "Certificate '<arn>' not found" when
    it does not exist in the load balancer's region, and with
    UnsupportedCertificate "The certificate '<arn>' must have a fully-qualified
    domain name, a supported signature, and a supported key size." while it is
    not ISSUED (e.g. PENDING_VALIDATION)
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/https-listener-certificates.html).
    """

    @wrap(ELBv2Backend, "create_listener")
    def create_listener(original: Any, self: Any, load_balancer_arn: str, protocol: str, port: Any, ssl_policy: Any, certificate: Any, *args: Any, **kwargs: Any) -> Any:
        if load_balancer_arn in self.load_balancers:
            _check_listener_certificate(self, self.region_name, certificate)
        return original(self, load_balancer_arn, protocol, port, ssl_policy, certificate, *args, **kwargs)

    @wrap(ELBv2Backend, "modify_listener")
    def modify_listener(original: Any, self: Any, arn: str, *args: Any, **kwargs: Any) -> Any:
        certificates = kwargs.get("certificates") if "certificates" in kwargs else (args[3] if len(args) > 3 else None)
        for cert in certificates or []:
            _check_listener_certificate(self, self.region_name, cert.get("CertificateArn"))
        return original(self, arn, *args, **kwargs)

    @wrap(ELBv2Backend, "add_listener_certificates")
    def add_listener_certificates(original: Any, self: Any, arn: str, certificates: list[dict[str, Any]]) -> Any:
        for cert in certificates or []:
            _check_listener_certificate(self, self.region_name, cert.get("CertificateArn"))
        return original(self, arn, certificates)


# --- Access logs ---------------------------------------------------------------

# The Elastic Load Balancing account of each Region available before August 2022
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html);
# newer Regions only know the service principal.
ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
}
LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"


def _default_encryption(bucket: Any) -> str:
    """The bucket's default SSEAlgorithm (SSE-S3 when none is configured, as on AWS since 2023)."""
    rules = (bucket.encryption or {}).get("Rule") or []
    for r in rules if isinstance(rules, list) else [rules]:
        algorithm = (r.get("ApplyServerSideEncryptionByDefault") or {}).get("SSEAlgorithm")
        if algorithm:
            return algorithm
    return "AES256"


def _log_delivery_allowed(backend: Any, balancer: Any, bucket_name: str, prefix: str) -> bool:
    from moto.s3.models import s3_backends

    from .policy_eval import resource_policy_allows

    bucket = s3_backends[backend.account_id]["aws"].buckets.get(bucket_name)
    if bucket is None or bucket.region_name != backend.region_name:
        return False
    if _default_encryption(bucket) != "AES256":
        return False  # ALB access logs support SSE-S3 only
    key = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    resource = f"arn:aws:s3:::{bucket_name}/{key}AWSLogs/{backend.account_id}/ELBAccessLogTestFile"
    context = {
        "aws:SourceAccount": backend.account_id,
        "aws:SourceArn": balancer.arn,
        "aws:SecureTransport": "true",
        "s3:x-amz-acl": "bucket-owner-full-control",
    }
    principals = [{"Service": LOG_DELIVERY_SERVICE}]
    if backend.region_name in ELB_ACCOUNTS:
        principals.append({"AWS": f"arn:aws:iam::{ELB_ACCOUNTS[backend.region_name]}:root"})
    return any(
        resource_policy_allows(bucket.policy, p, "s3:PutObject", resource, context) for p in principals
    )


@rule("elbv2", "refusal")
def access_logs_bucket_must_accept_elb_log_delivery() -> None:
    """ModifyLoadBalancerAttributes with access_logs.s3.enabled=true fails with
    InvalidConfigurationRequest "Access Denied for bucket: <bucket>. Please check
    S3bucket permission" unless the bucket exists in the load balancer's region,
    its default encryption is SSE-S3 (not SSE-KMS), and its bucket policy lets the
    log delivery (Service logdelivery.elasticloadbalancing.amazonaws.com, or the
    Region's Elastic Load Balancing account root, e.g. 127311923021 in us-east-1)
    s3:PutObject under <prefix>/AWSLogs/<account>/: ELB writes a test object
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html).
    """

    @wrap(ELBv2Backend, "modify_load_balancer_attributes")
    def modify_load_balancer_attributes(original: Any, self: Any, arn: str, attrs: dict[str, Any]) -> Any:
        balancer = self.load_balancers.get(arn)
        if balancer is not None:
            merged = {**balancer.attrs, **attrs}
            if str(merged.get("access_logs.s3.enabled")).lower() == "true":
                bucket = str(merged.get("access_logs.s3.bucket") or "")
                prefix = str(merged.get("access_logs.s3.prefix") or "")
                if not _log_delivery_allowed(self, balancer, bucket, prefix):
                    raise ELBClientError(
                        "InvalidConfigurationRequest",
                        f"Access Denied for bucket: {bucket}. Please check S3bucket permission",
                    )
        return original(self, arn, attrs)


@rule("elbv2", "fidelity")
def listener_ports_are_unique_and_a_repeated_create_is_idempotent() -> None:
    """CreateListener on a port the load balancer already listens on returns that listener
    when the settings are the same ("This operation is idempotent ... If you attempt to
    create multiple listeners with the same settings, each call succeeds"), and fails with
    DuplicateListener "A listener with the specified port already exists." when they differ
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateListener.html).
    moto's duplicate check compares the port with its listeners' ARNs, so it never fired:
    a create retried after a lost answer made a second listener on the same port.
    """
    from moto.elbv2.exceptions import DuplicateListenerError

    @wrap(ELBv2Backend, "create_listener")
    def create_listener(original: Any, self: Any, load_balancer_arn: str, protocol: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        balancer = self.load_balancers.get(load_balancer_arn)
        if balancer is not None:
            for existing in balancer.listeners.values():
                if str(existing.port) == str(port):
                    if str(existing.protocol).upper() == str(protocol).upper():
                        return existing
                    raise DuplicateListenerError()
        return original(self, load_balancer_arn, protocol, port, *args, **kwargs)
