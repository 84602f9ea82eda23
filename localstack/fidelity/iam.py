"""IAM rules: a managed policy cannot be deleted while attached or versioned.

moto deletes an attached customer managed policy, after which the role it was
attached to can never be deleted (its attachment points at a policy that is
gone). AWS refuses with DeleteConflict.
"""

from __future__ import annotations

from typing import Any

from moto.iam.exceptions import DeleteConflictException
from moto.iam.models import IAMBackend, ManagedPolicy

from .patching import rule, wrap


@rule("iam", "refusal")
def attached_policy_cannot_be_deleted() -> None:
    """DeletePolicy fails with DeleteConflict while the policy is attached to a
    role, user or group. AWS: "Cannot delete a policy attached to entities."
    """

    @wrap(IAMBackend, "delete_policy")
    def delete_policy(original: Any, self: Any, policy_arn: str) -> Any:
        policy = self.get_policy(policy_arn)
        if policy.attachment_count > 0:
            raise DeleteConflictException("Cannot delete a policy attached to entities.")
        return original(self, policy_arn)


@rule("iam", "refusal")
def policy_with_extra_versions_cannot_be_deleted() -> None:
    """DeletePolicy fails with DeleteConflict while non-default versions exist.
    AWS: "This policy has more than one version. Before you delete a policy, you
    must delete the policy's versions. The default version is deleted with the
    policy."
    """

    @wrap(IAMBackend, "delete_policy")
    def delete_policy(original: Any, self: Any, policy_arn: str) -> Any:
        policy = self.get_policy(policy_arn)
        if len(getattr(policy, "versions", [])) > 1:
            raise DeleteConflictException(
                "This policy has more than one version. Before you delete a policy, you must "
                "delete the policy's versions. The default version is deleted with the policy."
            )
        return original(self, policy_arn)


@rule("iam", "fidelity")
def attaching_an_attached_policy_changes_nothing() -> None:
    """AttachRolePolicy (and AttachUserPolicy/AttachGroupPolicy) of a policy the entity already
    has succeeds and changes nothing: IAM keeps one attachment. moto counted a second one, so a
    call retried after its answer was lost left the policy "attached" after its only
    detach, and DeletePolicy then failed with DeleteConflict forever.
    """

    @wrap(ManagedPolicy, "attach_to")
    def attach_to(original: Any, self: Any, obj: Any) -> Any:
        if self.arn in obj.managed_policies:
            return None
        return original(self, obj)
