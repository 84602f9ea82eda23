"""Shared IAM policy evaluation for the rules that check what a role, a key policy
or a bucket policy allows (Lambda DLQ/VPC/SQS, flow logs, CodeDeploy, Logs KMS,
ELB access logs).

Built on moto's evaluator (`moto.iam.access_control`): `IAMPolicy` loads a
document from a moto managed policy (its default version), an inline policy
string or a dict, and each statement is an `IAMPolicyStatement` answering a
`PermissionResult`. moto's statement logic is meant for its optional request
authorisation and is too loose for refusals, so `PolicyStatement` overrides the
decision with AWS's documented semantics
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

- Action / NotAction match case-insensitively with `*` and `?` wildcards;
  Resource / NotResource case-sensitively (a statement without either, as in a
  trust policy, applies to any resource).
- A statement whose condition is not met does not apply (moto: DENIED).
- Conditions: String(Not)Equals(IgnoreCase), String(Not)Like, Arn(Not)Equals,
  Arn(Not)Like (each of the six ARN parts matched separately), Bool, Null,
  Numeric*, (Not)IpAddress, with the `...IfExists` suffix and the
  `ForAnyValue:` / `ForAllValues:` qualifiers. A key missing from the context
  fails a positive operator and satisfies a negated one. An unknown operator
  makes the statement not apply.
- Resource-based policies (key and bucket policies) match Principal /
  NotPrincipal: `*` (or `{"AWS": "*"}`), `{"AWS": ...}` (an ARN, or an account id
  meaning its root), `{"Service": ...}`.
- An explicit Deny wins; otherwise some Allow is needed. A role's permissions
  boundary must also allow.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import urllib.parse
from typing import Any, Iterable, Mapping

from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
from moto.iam.models import iam_backends

ALLOW = PermissionResult.PERMITTED
DENY = PermissionResult.DENIED
NEUTRAL = PermissionResult.NEUTRAL

Context = Mapping[str, Any]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` any one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None


def _arn_like(value: str, pattern: str) -> bool:
    parts, wanted = value.split(":", 5), pattern.split(":", 5)
    if len(parts) != len(wanted):
        return pattern == "*"
    return all(wildcard_match(w, p) for w, p in zip(wanted, parts))


def _numeric(compare: Any) -> Any:
    def match(actual: str, expected: str) -> bool:
        try:
            return compare(float(actual), float(expected))
        except ValueError:
            return False

    return match


def _ip(actual: str, expected: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


# operator -> (positive matcher(actual, expected), negated)
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (lambda a, e: a == e, False),
    "StringNotEquals": (lambda a, e: a == e, True),
    "StringEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda a, e: a.lower() == e.lower(), True),
    "StringLike": (lambda a, e: wildcard_match(e, a), False),
    "StringNotLike": (lambda a, e: wildcard_match(e, a), True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda a, e: a.lower() == e.lower(), False),
    "NumericEquals": (_numeric(lambda a, e: a == e), False),
    "NumericNotEquals": (_numeric(lambda a, e: a == e), True),
    "NumericLessThan": (_numeric(lambda a, e: a < e), False),
    "NumericLessThanEquals": (_numeric(lambda a, e: a <= e), False),
    "NumericGreaterThan": (_numeric(lambda a, e: a > e), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, e: a >= e), False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
}


def _lookup(context: Context | None, key: str) -> list[str] | None:
    """The context values of a condition key (keys are case-insensitive)."""
    if not context:
        return None
    wanted = key.lower()
    for k, v in context.items():
        if k.lower() == wanted:
            return [_text(x) for x in _as_list(v)]
    return None


def condition_holds(operator: str, key: str, expected: Any, context: Context | None) -> bool:
    """One operator/key pair of a Condition block, AWS semantics."""
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    actual = _lookup(context, key)
    wanted = [_text(e) for e in _as_list(expected)]
    if op == "Null":
        return (actual is None) == (bool(wanted) and wanted[0].lower() == "true")
    if op not in _OPERATORS:
        return False
    matcher, negated = _OPERATORS[op]
    if actual is None:
        return if_exists or negated or qualifier == "ForAllValues"

    def one(value: str) -> bool:
        hit = any(matcher(value, e) for e in wanted)
        return not hit if negated else hit

    if qualifier == "ForAnyValue":
        return any(one(v) for v in actual)
    if qualifier == "ForAllValues" or negated:
        return all(one(v) for v in actual)
    return any(one(v) for v in actual)


def _principal_matches(element: Any, principal: Mapping[str, str]) -> bool:
    """Does a Principal element name `principal` ({"AWS": arn} or {"Service": name})?"""
    if element == "*":
        return True
    if not isinstance(element, dict):
        return False
    if "*" in _as_list(element.get("AWS")):
        return True  # {"AWS": "*"} is the same as "*": everyone
    for kind, who in principal.items():
        for value in _as_list(element.get(kind)):
            value = str(value)
            if value == "*":
                return True
            if kind == "Service" and value.lower() == who.lower():
                return True
            if kind == "AWS":
                if value == who:
                    return True
                # "123456789012" means arn:aws:iam::123456789012:root
                if re.fullmatch(r"\d{12}", value) and who == f"arn:aws:iam::{value}:root":
                    return True
    return False


class PolicyStatement(IAMPolicyStatement):
    """moto's statement, decided with AWS's semantics (see the module docstring)."""

    def _matches(self, element: str, value: str, ignore_case: bool) -> bool:
        return any(wildcard_match(str(p), value, ignore_case) for p in _as_list(self._statement[element]))

    def _action_applies(self, action: str) -> bool:
        if "NotAction" in self._statement:
            return not self._matches("NotAction", action, True)
        return "Action" in self._statement and self._matches("Action", action, True)

    def _resource_applies(self, resource: str) -> bool:
        if "NotResource" in self._statement:
            return not self._matches("NotResource", resource, False)
        if "Resource" in self._statement:
            return self._matches("Resource", resource, False)
        return True  # trust policies have no Resource

    def _principal_applies(self, principal: Mapping[str, str]) -> bool:
        if "NotPrincipal" in self._statement:
            return not _principal_matches(self._statement["NotPrincipal"], principal)
        return _principal_matches(self._statement.get("Principal"), principal)

    def _conditions_hold(self, context: Context | None) -> bool:
        for operator, pairs in (self._statement.get("Condition") or {}).items():
            for key, expected in (pairs or {}).items():
                if not condition_holds(operator, key, expected, context):
                    return False
        return True

    def evaluate(
        self,
        action: str,
        resource: str,
        principal: Mapping[str, str] | None = None,
        context: Context | None = None,
    ) -> PermissionResult:
        if not self._action_applies(action) or not self._resource_applies(resource):
            return NEUTRAL
        if principal is not None and not self._principal_applies(principal):
            return NEUTRAL
        if not self._conditions_hold(context):
            return NEUTRAL
        return DENY if self._statement.get("Effect") == "Deny" else ALLOW


def load_document(policy: Any) -> dict[str, Any]:
    """A policy document from a moto policy object, a JSON string (possibly
    URL-encoded) or a dict."""
    if isinstance(policy, dict) and "Statement" in policy:
        return policy
    if isinstance(policy, bytes):
        policy = policy.decode()
    if isinstance(policy, str):
        text = policy.strip()
        if not text.startswith("{"):
            text = urllib.parse.unquote(text)
        return json.loads(text)
    return IAMPolicy(policy)._policy_json


def evaluate(
    documents: Iterable[Any],
    action: str,
    resource: str,
    principal: Mapping[str, str] | None = None,
    context: Context | None = None,
) -> PermissionResult:
    """Explicit Deny in any document wins; otherwise ALLOW if some statement allows."""
    allowed = False
    for document in documents:
        for statement in _as_list(load_document(document).get("Statement")):
            result = PolicyStatement(statement).evaluate(action, resource, principal, context)
            if result == DENY:
                return DENY
            allowed = allowed or result == ALLOW
    return ALLOW if allowed else NEUTRAL


def find_role(role_arn: str | None) -> Any:
    """The moto role with this ARN, or None."""
    match = re.fullmatch(r"arn:[\w-]+:iam::(\d{12}):role/.+", role_arn or "")
    if not match:
        return None
    try:
        return iam_backends[match.group(1)]["aws"].get_role_by_arn(role_arn)
    except Exception:
        return None


def _identity_documents(role: Any) -> list[Any]:
    return list(role.policies.values()) + list(role.managed_policies.values())


def _boundary(role: Any) -> Any:
    """The role's permissions boundary policy (customer or AWS managed), or None."""
    arn = getattr(role, "permissions_boundary_arn", None)
    if not arn:
        return None
    return iam_backends[role.account_id]["aws"].managed_policies.get(arn)


def role_allows(
    role_arn: str | None,
    action: str,
    resource: str | Iterable[str] = "*",
    context: Context | None = None,
) -> bool:
    """Do the role's own policies (inline and attached managed, customer or AWS
    managed; within its permissions boundary) allow `action` on every resource
    given? False for a role that does not exist."""
    role = find_role(role_arn)
    if role is None:
        return False
    resources = [resource] if isinstance(resource, str) else list(resource)
    boundary = _boundary(role)
    for res in resources:
        if evaluate(_identity_documents(role), action, res, None, context) != ALLOW:
            return False
        if boundary is not None and evaluate([boundary], action, res, None, context) != ALLOW:
            return False
    return True


def first_denied(
    role_arn: str | None,
    actions: Iterable[tuple[str, str | Iterable[str]]],
    context: Context | None = None,
) -> str | None:
    """The first (action, resources) pair the role may not perform, as the
    action name; None when all are allowed."""
    for action, resources in actions:
        if not role_allows(role_arn, action, resources, context):
            return action
    return None


def role_propagated(role: Any) -> bool:
    """Has IAM's eventual consistency caught up with the role? A new role becomes
    assumable by services only after iam-role.propagate x time_scale seconds."""
    from .timeline import scaled

    wait = scaled("iam-role.propagate")
    if wait <= 0:
        return True
    created = role.create_date
    now = datetime.datetime.now(datetime.timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    return (now - created).total_seconds() >= wait


def role_trusts(role_arn: str | None, service: str, context: Context | None = None) -> bool:
    """May the AWS service principal `service` assume the role (sts:AssumeRole)?
    False for a role too new to have propagated (see role_propagated)."""
    role = find_role(role_arn)
    if role is None or not role_propagated(role):
        return False
    result = evaluate(
        [role.assume_role_policy_document], "sts:AssumeRole", role_arn or "*", {"Service": service}, context
    )
    return result == ALLOW


def resource_policy_allows(
    document: Any,
    principal: Mapping[str, str],
    action: str,
    resource: str,
    context: Context | None = None,
) -> bool:
    """Does a resource-based policy (key policy, bucket policy) allow `principal`
    to perform `action` on `resource`? A missing policy allows nothing."""
    if not document:
        return False
    return evaluate([document], action, resource, principal, context) == ALLOW
