"""CloudFront rules: ETag preconditions, disable-before-delete, deploy waits, OAI API.

moto ignores the If-Match value, never changes a distribution's ETag, deletes
enabled distributions, turns `Deployed` on the next read and has no origin
access identity (OAI) API at all. Errors are serialised by moto in CloudFront's
REST-XML shape with the HTTP status from the AWS model (412, 409, 404, ...).
"""

from __future__ import annotations

import random
import string
import time
from typing import Any

import moto.cloudfront.urls as cloudfront_urls
from moto.cloudfront.exceptions import CloudFrontException, InvalidIfMatchVersion, NoSuchDistribution
from moto.cloudfront.models import CloudFrontBackend, Distribution, Origin
from moto.cloudfront.responses import CloudFrontResponse
from moto.core.responses import ActionResult, EmptyResult

from .patching import rule, wrap
from .timeline import TIMELINE, scaled


def _new_etag() -> str:
    return "E" + "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(13))


class PreconditionFailed(CloudFrontException):
    def __init__(self) -> None:
        super().__init__(
            "PreconditionFailed",
            "The precondition given in one or more of the request-header fields evaluated to false.",
        )


def _check_if_match(if_match: Any, etag: str) -> None:
    """AWS: no If-Match -> InvalidIfMatchVersion; a stale one -> PreconditionFailed."""
    if not if_match:
        raise InvalidIfMatchVersion()
    if if_match != etag:
        raise PreconditionFailed()


# --- Distribution configuration checks ---------------------------------------
# Registered before the ETag rule so that they run after it (later wrappers are
# outer): AWS checks If-Match before it validates the new configuration.

CNAME_HELP = "https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/CNAMEs.html#alternate-domain-names-requirements"


def _items(container: Any, member: str) -> list[Any]:
    """The Items of a CloudFront list ({"Quantity": n, "Items": [...]}) as parsed."""
    items = (container or {}).get("Items") if isinstance(container, dict) else None
    if isinstance(items, dict):  # <Items><CNAME>a</CNAME></Items> parsed by name
        items = items.get(member)
    if items is None:
        return []
    return items if isinstance(items, list) else [items]


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _covers(names: list[str], alias: str) -> bool:
    """Does a certificate for `names` cover the CNAME `alias` (one-level wildcards)?"""
    alias = alias.lower().rstrip(".")
    for name in (n.lower().rstrip(".") for n in names):
        if name == alias:
            return True
        if name.startswith("*.") and "." in alias and alias.split(".", 1)[1] == name[2:]:
            return True
    return False


def _check_viewer_certificate(backend: Any, config: dict[str, Any]) -> None:
    from moto.acm.models import acm_backends

    aliases = _items(config.get("Aliases"), "CNAME")
    viewer = config.get("ViewerCertificate") or {}
    if not isinstance(viewer, dict):
        return
    arn = viewer.get("ACMCertificateArn") or ""
    if not arn:
        if aliases and not viewer.get("IAMCertificateId"):
            raise CloudFrontException(
                "InvalidViewerCertificate",
                "To add an alternate domain name (CNAME) to a CloudFront distribution, you must attach a "
                f"trusted certificate that validates your authorization to use the domain name. For more details, see: {CNAME_HELP}",
            )
        return
    invalid = CloudFrontException(
        "InvalidViewerCertificate",
        "The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, or doesn't "
        "include a valid certificate chain.",
    )
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "acm" or parts[3] != "us-east-1":
        raise invalid
    try:
        cert = acm_backends[parts[4]]["us-east-1"].get_certificate(arn)
    except Exception:
        raise invalid
    if cert.status != "ISSUED":
        raise invalid
    names = list(cert.sans) + ([cert.common_name] if cert.common_name else [])
    if any(not _covers(names, alias) for alias in aliases):
        raise CloudFrontException(
            "InvalidViewerCertificate",
            "The certificate that is attached to your distribution doesn't cover the alternate domain name "
            f"(CNAME) that you're trying to add. For more details, see: {CNAME_HELP}",
        )


@rule("cloudfront", "refusal")
def viewer_certificate_must_be_issued_in_us_east_1_and_cover_the_aliases() -> None:
    """CreateDistribution / UpdateDistribution fail with InvalidViewerCertificate
    (400) when ViewerCertificate.ACMCertificateArn is not an ACM certificate in
    us-east-1 that exists and is ISSUED ("The specified SSL certificate doesn't
    exist, isn't in us-east-1 region, isn't valid, or doesn't include a valid
    certificate chain."), when it does not cover every alias ("The certificate
    that is attached to your distribution doesn't cover the alternate domain name
    (CNAME) ..."), and when aliases come with the default CloudFront certificate
    ("To add an alternate domain name (CNAME) to a CloudFront distribution, you
    must attach a trusted certificate ...")
    (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/cnames-and-https-requirements.html).
    """

    @wrap(CloudFrontBackend, "create_distribution_with_tags")
    def create_distribution_with_tags(original: Any, self: Any, distribution_config: Any, tags: Any) -> Any:
        _check_viewer_certificate(self, distribution_config)
        return original(self, distribution_config, tags)

    @wrap(CloudFrontBackend, "update_distribution")
    def update_distribution(original: Any, self: Any, dist_config: Any, _id: str, if_match: Any) -> Any:
        if dist_config:
            _check_viewer_certificate(self, dist_config)
        return original(self, dist_config=dist_config, _id=_id, if_match=if_match)


def _check_web_acl(backend: Any, config: dict[str, Any]) -> None:
    from moto.wafv2.models import wafv2_backends

    acl = config.get("WebACLId") or ""
    if not acl.startswith("arn:"):
        return  # empty, or a WAF Classic id
    parts = acl.split(":")
    usable = (
        len(parts) >= 6
        and parts[2] == "wafv2"
        and parts[3] == "us-east-1"
        and parts[5].startswith("global/webacl/")
        and acl in wafv2_backends[parts[4]]["global"].wacls
    )
    if not usable:
        raise CloudFrontException("InvalidWebACLId", "Web ACL is not accessible by the requester.")


@rule("cloudfront", "refusal")
def distribution_web_acl_must_be_a_cloudfront_scope_acl() -> None:
    """CreateDistribution / UpdateDistribution with a WAFv2 WebACLId fail with
    InvalidWebACLId (400) "Web ACL is not accessible by the requester." unless it
    is the ARN of an existing web ACL of Scope CLOUDFRONT (created in us-east-1,
    arn:aws:wafv2:us-east-1:<account>:global/webacl/...); a REGIONAL ACL only
    protects regional resources (ALB, API Gateway, ...)
    (https://docs.aws.amazon.com/waf/latest/developerguide/cloudfront-features.html).
    """

    @wrap(CloudFrontBackend, "create_distribution_with_tags")
    def create_distribution_with_tags(original: Any, self: Any, distribution_config: Any, tags: Any) -> Any:
        _check_web_acl(self, distribution_config)
        return original(self, distribution_config, tags)

    @wrap(CloudFrontBackend, "update_distribution")
    def update_distribution(original: Any, self: Any, dist_config: Any, _id: str, if_match: Any) -> Any:
        if dist_config:
            _check_web_acl(self, dist_config)
        return original(self, dist_config=dist_config, _id=_id, if_match=if_match)


def _check_logging_bucket(backend: Any, config: dict[str, Any]) -> None:
    from moto.s3.models import s3_backends

    logging = config.get("Logging") or {}
    if not isinstance(logging, dict) or not _true(logging.get("Enabled")) or not logging.get("Bucket"):
        return
    domain = logging["Bucket"]
    name = domain.split(".s3.")[0] if ".s3." in domain else domain.split(".s3-")[0]
    bucket = s3_backends[backend.account_id]["aws"].buckets.get(name)
    if bucket is None:
        raise CloudFrontException(
            "InvalidArgument", f"The S3 bucket that you specified for CloudFront logs doesn't exist: {domain}"
        )
    # New buckets have ACLs disabled (BucketOwnerEnforced) unless ownership controls say otherwise.
    if (bucket.ownership_rule or "BucketOwnerEnforced") == "BucketOwnerEnforced":
        raise CloudFrontException(
            "InvalidArgument",
            f"The S3 bucket that you specified for CloudFront logs does not enable ACL access: {domain}",
        )


@rule("cloudfront", "refusal")
def standard_logging_bucket_must_enable_acls() -> None:
    """CreateDistribution / UpdateDistribution with legacy standard logging
    (Logging.Enabled, Logging.Bucket = <bucket>.s3.amazonaws.com) fail with
    InvalidArgument (400) "The S3 bucket that you specified for CloudFront logs
    does not enable ACL access: <bucket domain>" when the bucket's object
    ownership is BucketOwnerEnforced (the default for buckets created since April
    2023): CloudFront writes the logs with an ACL
    (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logging-legacy-s3.html#AccessLogsBucketAndFileOwnership).
    """

    @wrap(CloudFrontBackend, "create_distribution_with_tags")
    def create_distribution_with_tags(original: Any, self: Any, distribution_config: Any, tags: Any) -> Any:
        _check_logging_bucket(self, distribution_config)
        return original(self, distribution_config, tags)

    @wrap(CloudFrontBackend, "update_distribution")
    def update_distribution(original: Any, self: Any, dist_config: Any, _id: str, if_match: Any) -> Any:
        if dist_config:
            _check_logging_bucket(self, dist_config)
        return original(self, dist_config=dist_config, _id=_id, if_match=if_match)


@rule("cloudfront", "refusal")
def distribution_update_and_delete_need_the_current_etag() -> None:
    """UpdateDistribution and DeleteDistribution need If-Match equal to the
    distribution's current ETag: missing -> InvalidIfMatchVersion (400), stale ->
    PreconditionFailed (412). Every update returns a new ETag."""

    @wrap(CloudFrontBackend, "update_distribution")
    def update_distribution(original: Any, self: Any, dist_config: Any, _id: str, if_match: Any) -> Any:
        if _id not in self.distributions:
            raise NoSuchDistribution()
        _check_if_match(if_match, self.distributions[_id].etag)
        dist, location, _ = original(self, dist_config=dist_config, _id=_id, if_match=if_match)
        dist.etag = _new_etag()
        return dist, location, dist.etag

    @wrap(CloudFrontBackend, "delete_distribution")
    def delete_distribution(original: Any, self: Any, distribution_id: str, if_match: Any) -> Any:
        if distribution_id not in self.distributions:
            raise NoSuchDistribution()
        _check_if_match(if_match, self.distributions[distribution_id].etag)
        return original(self, distribution_id, if_match)


@rule("cloudfront", "refusal")
def distribution_must_be_disabled_and_deployed_before_delete() -> None:
    """DeleteDistribution fails with DistributionNotDisabled (409) while the
    distribution is enabled, or disabled but still InProgress (the disable has
    not finished deploying). AWS: "The distribution you are trying to delete has
    not been disabled."
    """

    @wrap(CloudFrontBackend, "delete_distribution")
    def delete_distribution(original: Any, self: Any, distribution_id: str, if_match: Any) -> Any:
        dist = self.distributions.get(distribution_id)
        if dist is not None and if_match == dist.etag:
            if dist.distribution_config.Enabled or dist.status != "Deployed":
                raise CloudFrontException(
                    "DistributionNotDisabled",
                    "The distribution you are trying to delete has not been disabled.",
                )
        return original(self, distribution_id, if_match)


def _schedule_deploy(dist: Any, duration_key: str) -> None:
    TIMELINE.cancel("distribution", dist.distribution_id)
    previous = dist._status
    dist._status = "InProgress"
    if previous != "InProgress":
        TIMELINE.record("distribution", dist.distribution_id, previous, "InProgress")

    def deployed() -> None:
        if dist._status == "InProgress":
            dist._status = "Deployed"

    TIMELINE.schedule(
        "distribution", dist.distribution_id, "InProgress", "Deployed", scaled(duration_key), deployed
    )


@rule("cloudfront", "waiting")
def distribution_is_in_progress_then_deployed() -> None:
    """CreateDistribution and every UpdateDistribution (including the one that
    disables it) leave the distribution InProgress for the deploy duration, then
    Deployed. moto's own status progression (Deployed on the next read) is off.
    """
    Distribution.status = property(
        lambda self: self._status, lambda self, value: setattr(self, "_status", value)
    )

    @wrap(CloudFrontBackend, "create_distribution_with_tags")
    def create_distribution_with_tags(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        dist, location, etag = original(self, *args, **kwargs)
        dist._status = "InProgress"
        TIMELINE.record("distribution", dist.distribution_id, None, "InProgress")
        _schedule_deploy(dist, "distribution.deploy")
        return dist, location, etag

    @wrap(CloudFrontBackend, "update_distribution")
    def update_distribution(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        dist, location, etag = original(self, *args, **kwargs)
        disabled = not dist.distribution_config.Enabled
        _schedule_deploy(dist, "distribution.disable" if disabled else "distribution.deploy")
        dist.last_modified_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        return dist, location, etag


@rule("cloudfront", "fidelity")
def origin_keeps_its_access_control_id() -> None:
    """GetDistribution returns each origin's OriginAccessControlId (moto drops it)."""

    original_init = Origin.__init__

    def __init__(self: Any, origin: dict[str, Any]) -> None:
        original_init(self, origin)
        self.origin_access_control_id = origin.get("OriginAccessControlId") or ""

    Origin.__init__ = __init__


# --- Origin access identities (missing from moto) ---------------------------


class OriginAccessIdentity:
    def __init__(self, config: dict[str, Any]):
        self.id = "E" + "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(13))
        self.s3_canonical_user_id = "".join(random.choice("0123456789abcdef") for _ in range(96))
        self.config = {
            "CallerReference": config.get("CallerReference", ""),
            "Comment": config.get("Comment", ""),
        }
        self.etag = _new_etag()

    def as_identity(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "S3CanonicalUserId": self.s3_canonical_user_id,
            "CloudFrontOriginAccessIdentityConfig": dict(self.config),
        }

    def as_summary(self) -> dict[str, Any]:
        return {"Id": self.id, "S3CanonicalUserId": self.s3_canonical_user_id, "Comment": self.config["Comment"]}


def _oais(backend: Any) -> dict[str, OriginAccessIdentity]:
    return backend.__dict__.setdefault("_fintech_oais", {})


def _get_oai(backend: Any, oai_id: str) -> OriginAccessIdentity:
    oai = _oais(backend).get(oai_id)
    if oai is None:
        raise CloudFrontException(
            "NoSuchCloudFrontOriginAccessIdentity", "The specified origin access identity does not exist."
        )
    return oai


def _distributions_using(backend: Any, oai_id: str) -> list[str]:
    users = []
    for dist in backend.distributions.values():
        for origin in dist.distribution_config.Origins["Items"]:
            if getattr(origin, "s3_access_identity", "").rstrip("/").endswith(f"/{oai_id}"):
                users.append(dist.distribution_id)
    return users


@rule("cloudfront", "missing-api")
def origin_access_identity_api() -> None:
    """CloudFront origin access identities: Create, Get, GetConfig, Update (If-Match),
    Delete (If-Match; CloudFrontOriginAccessIdentityInUse while a distribution's
    S3 origin uses origin-access-identity/cloudfront/<id>), List. moto answers
    these paths with 404.
    """
    prefix = "{0}/2020-05-31/origin-access-identity/cloudfront"
    cloudfront_urls.url_paths[prefix + "$"] = CloudFrontResponse.dispatch
    cloudfront_urls.url_paths[prefix + "/(?P<oai_id>[^/]+)$"] = CloudFrontResponse.dispatch
    cloudfront_urls.url_paths[prefix + "/(?P<oai_id>[^/]+)/config$"] = CloudFrontResponse.dispatch

    def create_cloud_front_origin_access_identity(self: Any) -> ActionResult:
        config = self._get_param("CloudFrontOriginAccessIdentityConfig", {}) or {}
        store = _oais(self.backend)
        for existing in store.values():
            if existing.config["CallerReference"] == config.get("CallerReference"):
                if existing.config["Comment"] != config.get("Comment", ""):
                    raise CloudFrontException(
                        "CloudFrontOriginAccessIdentityAlreadyExists",
                        "If the CallerReference is a value you already sent in a previous request "
                        "to create an identity but the content of the "
                        "CloudFrontOriginAccessIdentityConfig is different from the original "
                        "request, CloudFront returns a CloudFrontOriginAccessIdentityAlreadyExists error.",
                    )
                oai = existing  # AWS: same reference and config -> the same identity
                break
        else:
            oai = OriginAccessIdentity(config)
            store[oai.id] = oai
        return ActionResult(
            {
                "CloudFrontOriginAccessIdentity": oai.as_identity(),
                "ETag": oai.etag,
                "Location": f"https://cloudfront.amazonaws.com/2020-05-31/origin-access-identity/cloudfront/{oai.id}",
            }
        )

    def get_cloud_front_origin_access_identity(self: Any) -> ActionResult:
        oai = _get_oai(self.backend, self._get_param("Id"))
        return ActionResult({"CloudFrontOriginAccessIdentity": oai.as_identity(), "ETag": oai.etag})

    def get_cloud_front_origin_access_identity_config(self: Any) -> ActionResult:
        oai = _get_oai(self.backend, self._get_param("Id"))
        return ActionResult({"CloudFrontOriginAccessIdentityConfig": dict(oai.config), "ETag": oai.etag})

    def update_cloud_front_origin_access_identity(self: Any) -> ActionResult:
        oai = _get_oai(self.backend, self._get_param("Id"))
        _check_if_match(self._get_param("IfMatch"), oai.etag)
        config = self._get_param("CloudFrontOriginAccessIdentityConfig", {}) or {}
        if config.get("CallerReference", oai.config["CallerReference"]) != oai.config["CallerReference"]:
            raise CloudFrontException("IllegalUpdate", "The update contains modifications that are not allowed.")
        oai.config["Comment"] = config.get("Comment", "")
        oai.etag = _new_etag()
        return ActionResult({"CloudFrontOriginAccessIdentity": oai.as_identity(), "ETag": oai.etag})

    def delete_cloud_front_origin_access_identity(self: Any) -> EmptyResult:
        oai = _get_oai(self.backend, self._get_param("Id"))
        _check_if_match(self._get_param("IfMatch"), oai.etag)
        if _distributions_using(self.backend, oai.id):
            raise CloudFrontException(
                "CloudFrontOriginAccessIdentityInUse", "The Origin Access Identity specified is already in use."
            )
        del _oais(self.backend)[oai.id]
        return EmptyResult()

    def list_cloud_front_origin_access_identities(self: Any) -> ActionResult:
        items = [o.as_summary() for o in _oais(self.backend).values()]
        max_items = self._get_int_param("MaxItems") or 100
        return ActionResult(
            {
                "CloudFrontOriginAccessIdentityList": {
                    "Marker": self._get_param("Marker") or "",
                    "MaxItems": max_items,
                    "IsTruncated": False,
                    "Quantity": len(items),
                    "Items": items,
                }
            }
        )

    for handler in (
        create_cloud_front_origin_access_identity,
        get_cloud_front_origin_access_identity,
        get_cloud_front_origin_access_identity_config,
        update_cloud_front_origin_access_identity,
        delete_cloud_front_origin_access_identity,
        list_cloud_front_origin_access_identities,
    ):
        setattr(CloudFrontResponse, handler.__name__, handler)


@rule("cloudfront", "refusal")
def origin_access_control_names_are_unique() -> None:
    """CreateOriginAccessControl with the name of an existing origin access control fails
    with OriginAccessControlAlreadyExists (409): names are unique per account
    (https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CreateOriginAccessControl.html).
    moto creates a second one, so a create retried after its answer was lost made a duplicate.
    """

    @wrap(CloudFrontBackend, "create_origin_access_control")
    def create_origin_access_control(original: Any, self: Any, config_dict: Any) -> Any:
        name = (config_dict or {}).get("Name")
        if any(c.name == name for c in self.origin_access_controls.values()):
            raise CloudFrontException(
                "OriginAccessControlAlreadyExists",
                f"An origin access control with the same name {name} already exists.",
            )
        return original(self, config_dict)
