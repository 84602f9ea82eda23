"""WAFv2 rules: AssociateWebACL attaches a REGIONAL web ACL to a regional
resource of its own region only; CLOUDFRONT-scope calls are served in us-east-1
only; a web ACL a CloudFront distribution uses cannot be deleted.

moto associates any ACL ARN it finds with any resource ARN. AWS refuses
CloudFront distributions (their ACL is set in the distribution's WebACLId, see
cloudfront.py), CLOUDFRONT-scope ACLs, resources of other regions and resource
types WAF cannot protect (e.g. Network Load Balancers) with
WAFInvalidParameterException, and an Application Load Balancer that is still
provisioning with WAFUnavailableEntityException.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from moto.wafv2.exceptions import WAFv2ClientError
from moto.wafv2.models import WAFV2Backend
from moto.wafv2.responses import WAFV2Response

from .patching import rule, wrap

INVALID_ARN = (
    "The ARN isn't valid. A valid ARN begins with arn: and includes other information separated by "
    "colons or slashes."
)

# Regional resources AWS WAF protects (AssociateWebACL ResourceArn).
_REGIONAL_RESOURCES = (
    r"arn:aws:elasticloadbalancing:[a-z0-9-]+:\d{12}:loadbalancer/app/.+",
    r"arn:aws:apigateway:[a-z0-9-]+::/restapis/[^/]+/stages/.+",
    r"arn:aws:appsync:[a-z0-9-]+:\d{12}:apis/.+",
    r"arn:aws:cognito-idp:[a-z0-9-]+:\d{12}:userpool/.+",
    r"arn:aws:apprunner:[a-z0-9-]+:\d{12}:service/.+",
    r"arn:aws:ec2:[a-z0-9-]+:\d{12}:verified-access-instance/.+",
    r"arn:aws:amplify:[a-z0-9-]+:\d{12}:apps/.+",
)


class WAFInvalidParameterException(WAFv2ClientError):
    """AWS's shape: message "Error reason: <reason>, field: <field>, parameter:
    <value>" plus the Field, Parameter and Reason members."""

    def __init__(self, field: str, parameter: str, reason: str):
        super().__init__(
            "WAFInvalidParameterException",
            f"Error reason: {reason}, field: {field}, parameter: {parameter}",
        )
        self.description = json.dumps(
            {
                "__type": "WAFInvalidParameterException",
                "message": self.message,
                "Field": field,
                "Parameter": parameter,
                "Reason": reason,
            }
        )


@rule("wafv2", "refusal")
def regional_web_acl_attaches_only_to_regional_resources() -> None:
    """AssociateWebACL fails with WAFInvalidParameterException (field
    RESOURCE_ARN) for a CLOUDFRONT-scope (global) web ACL, for a CloudFront
    distribution (use the distribution's WebACLId instead), for a resource in
    another region than the call, and for resource types WAF does not protect
    (only ALBs, API Gateway REST stages, AppSync, Cognito user pools, App Runner,
    Verified Access, Amplify)
    (https://docs.aws.amazon.com/waf/latest/APIReference/API_AssociateWebACL.html).
    """

    @wrap(WAFV2Backend, "associate_web_acl")
    def associate_web_acl(original: Any, self: Any, web_acl_arn: str, resource_arn: str) -> Any:
        if ":global/webacl/" in web_acl_arn:
            raise WAFInvalidParameterException("RESOURCE_ARN", web_acl_arn, INVALID_ARN)
        parts = resource_arn.split(":")
        regional = any(re.fullmatch(p, resource_arn) for p in _REGIONAL_RESOURCES)
        if not regional or len(parts) < 4 or parts[3] != self.region_name:
            raise WAFInvalidParameterException("RESOURCE_ARN", resource_arn, INVALID_ARN)
        return original(self, web_acl_arn, resource_arn)


@rule("wafv2", "refusal")
def cloudfront_scope_only_in_us_east_1() -> None:
    """Any call with Scope=CLOUDFRONT sent to a region other than us-east-1
    fails with WAFInvalidParameterException "Error reason: The scope is not
    valid., field: SCOPE_VALUE, parameter: CLOUDFRONT": CloudFront's (global)
    web ACLs are managed through us-east-1 only
    (https://docs.aws.amazon.com/waf/latest/APIReference/API_CreateWebACL.html#WAF-CreateWebACL-request-Scope).
    moto serves them from any region.
    """

    def guard(action: str) -> None:
        @wrap(WAFV2Response, action)
        def scoped(original: Any, self: Any) -> Any:
            # self.region is still the request's region here: moto's handler
            # overwrites it with "global" itself.
            if self._get_param("Scope") == "CLOUDFRONT" and self.region != "us-east-1":
                raise WAFInvalidParameterException("SCOPE_VALUE", "CLOUDFRONT", "The scope is not valid.")
            return original(self)

    # Every action handler: those without a Scope parameter pass through.
    for action, handler in list(vars(WAFV2Response).items()):
        if not action.startswith("_") and inspect.isfunction(handler):
            guard(action)


class WAFAssociatedItemException(WAFv2ClientError):
    def __init__(self) -> None:
        super().__init__(
            "WAFAssociatedItemException",
            "AWS WAF couldn’t perform the operation because your resource is being used by another resource or it’s associated with another resource.",
        )


@rule("wafv2", "refusal")
def web_acl_in_use_by_a_distribution_cannot_be_deleted() -> None:
    """DeleteWebACL of a CLOUDFRONT-scope ACL that a distribution still names in
    its WebACLId fails with WAFAssociatedItemException: the distribution must
    drop it (UpdateDistribution) or be deleted first
    (https://docs.aws.amazon.com/waf/latest/APIReference/API_DeleteWebACL.html).
    moto deletes it and leaves the distribution pointing at nothing.
    """
    from moto.cloudfront.models import cloudfront_backends

    @wrap(WAFV2Backend, "delete_web_acl")
    def delete_web_acl(original: Any, self: Any, name: str, scope: str, _id: str, lock_token: str) -> Any:
        if scope == "CLOUDFRONT":
            arn = next((a for a, w in self.wacls.items() if w.name == name and w.id == _id), None)
            if arn:
                for dist in cloudfront_backends[self.account_id]["aws"].distributions.values():
                    if getattr(dist.distribution_config, "WebACLId", "") == arn:
                        raise WAFAssociatedItemException()
        return original(self, name, scope, _id, lock_token)


class WAFUnavailableEntityException(WAFv2ClientError):
    def __init__(self) -> None:
        super().__init__(
            "WAFUnavailableEntityException",
            "AWS WAF couldn’t retrieve the resource that you requested. Retry your request.",
        )


@rule("wafv2", "refusal")
def web_acl_attaches_to_a_load_balancer_only_once_it_is_active() -> None:
    """AssociateWebACL with the ARN of an Application Load Balancer whose state is
    still `provisioning` fails with WAFUnavailableEntityException (400) "AWS WAF
    couldn’t retrieve the resource that you requested. Retry your request.": WAF
    cannot see the load balancer until it is `active`
    (https://docs.aws.amazon.com/waf/latest/APIReference/API_AssociateWebACL.html,
    "WAFUnavailableEntityException ... Retry your request."). The state is the one
    DescribeLoadBalancers reports (`load_balancer_is_provisioning_then_active`), so
    at time scale 0 the ALB is active before the next request, as before.
    moto associated it at once.
    """
    from .elbv2 import load_balancer_state

    @wrap(WAFV2Backend, "associate_web_acl")
    def associate_web_acl(original: Any, self: Any, web_acl_arn: str, resource_arn: str) -> Any:
        # Only a valid request (an existing REGIONAL ACL of this backend, an ALB of
        # this region and account) gets this far on AWS; the other refusals first.
        parts = resource_arn.split(":")
        if (
            web_acl_arn in self.wacls
            and ":global/webacl/" not in web_acl_arn
            and re.fullmatch(_REGIONAL_RESOURCES[0], resource_arn)
            and len(parts) > 4 and parts[3] == self.region_name and parts[4] == self.account_id
            and load_balancer_state(resource_arn) == "provisioning"
        ):
            raise WAFUnavailableEntityException()
        return original(self, web_acl_arn, resource_arn)
