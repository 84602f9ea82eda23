"""KMS rules: a key pending deletion (or disabled) cannot be used, by clients or
by the services that encrypt with it.

moto keeps encrypting, decrypting and granting with a key scheduled for
deletion. AWS refuses every cryptographic operation and CreateGrant with
KMSInvalidStateException "<key arn> is pending deletion." (DisabledException
"<key arn> is disabled." for a disabled key), and services that would use the
key refuse to create the encrypted resource.
"""

from __future__ import annotations

import inspect
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.models import KmsBackend, kms_backends
from moto.rds.exceptions import KMSKeyNotAccessibleFault
from moto.rds.models import RDSBackend
from moto.secretsmanager.models import SecretsManagerBackend

from .patching import rule, wrap


def _unusable_reason(key: Any) -> str | None:
    if key.key_state == "PendingDeletion":
        return "PendingDeletion"
    if key.key_state == "Disabled" or not key.enabled:
        return "Disabled"
    return None


def _check_usable(key: Any) -> None:
    """Raise AWS's KMS error for a key that cannot be used."""
    reason = _unusable_reason(key)
    if reason == "PendingDeletion":
        raise JsonRESTError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
    if reason == "Disabled":
        raise JsonRESTError("DisabledException", f"{key.arn} is disabled.")


def _find_key(account_id: str, region: str, key_id: str | None) -> Any:
    """The moto key for any id form (id, ARN, alias, alias ARN), or None."""
    if not key_id:
        return None
    backend = kms_backends[account_id][region]
    try:
        return backend.keys.get(backend.any_id_to_key_id(key_id))
    except Exception:
        return None


@rule("kms", "refusal")
def key_pending_deletion_cannot_be_used() -> None:
    """Encrypt, GenerateDataKey(WithoutPlaintext), ReEncrypt, Sign, Verify,
    GenerateMac, VerifyMac and CreateGrant fail with KMSInvalidStateException
    while the key is PendingDeletion (DisabledException while disabled).
    Decrypt fails the same way for ciphertext made under such a key.
    """
    for name in ("encrypt", "generate_data_key", "create_grant", "sign", "verify", "generate_mac", "verify_mac"):
        signature = inspect.signature(getattr(KmsBackend, name))

        def guarded(original: Any, self: Any, *args: Any, __sig: Any = signature, **kwargs: Any) -> Any:
            key_id = __sig.bind(self, *args, **kwargs).arguments.get("key_id")
            key = _find_key(self.account_id, self.region_name, key_id)
            if key is not None:
                _check_usable(key)
            return original(self, *args, **kwargs)

        wrap(KmsBackend, name)(guarded)

    @wrap(KmsBackend, "decrypt")
    def decrypt(original: Any, self: Any, *args: Any, **kwargs: Any) -> Any:
        plaintext, arn = original(self, *args, **kwargs)
        key = _find_key(self.account_id, self.region_name, arn)
        if key is not None:
            _check_usable(key)
        return plaintext, arn


@rule("rds", "refusal")
def rds_cannot_encrypt_with_unusable_key() -> None:
    """CreateDBCluster / CreateDBInstance with a KmsKeyId (or
    MasterUserSecretKmsKeyId) that is pending deletion or disabled fail with
    KMSKeyNotAccessibleFault, as AWS does.
    """

    def check(backend: Any, kwargs: dict[str, Any]) -> None:
        for field in ("kms_key_id", "master_user_secret_kms_key_id"):
            key = _find_key(backend.account_id, backend.region_name, kwargs.get(field))
            if key is not None and _unusable_reason(key):
                raise KMSKeyNotAccessibleFault(kwargs[field])

    @wrap(RDSBackend, "create_db_cluster")
    def create_db_cluster(original: Any, self: Any, kwargs: dict[str, Any]) -> Any:
        check(self, kwargs)
        return original(self, kwargs)

    @wrap(RDSBackend, "create_db_instance")
    def create_db_instance(original: Any, self: Any, db_kwargs: dict[str, Any]) -> Any:
        check(self, db_kwargs)
        return original(self, db_kwargs)


@rule("secretsmanager", "refusal")
def secrets_manager_cannot_encrypt_with_unusable_key() -> None:
    """CreateSecret / UpdateSecret with a KmsKeyId pending deletion or disabled
    fail with EncryptionFailure, Secrets Manager's error when KMS refuses."""

    def check(backend: Any, kms_key_id: str | None) -> None:
        key = _find_key(backend.account_id, backend.region_name, kms_key_id)
        if key is not None and _unusable_reason(key):
            raise JsonRESTError(
                "EncryptionFailure",
                "Secrets Manager can't encrypt the protected secret text using the provided "
                "KMS key. Check that the KMS key is available, enabled, and not in an invalid state.",
            )

    for name in ("create_secret", "update_secret"):
        signature = inspect.signature(getattr(SecretsManagerBackend, name))

        def guarded(original: Any, self: Any, *args: Any, __sig: Any = signature, **kwargs: Any) -> Any:
            check(self, __sig.bind(self, *args, **kwargs).arguments.get("kms_key_id"))
            return original(self, *args, **kwargs)

        wrap(SecretsManagerBackend, name)(guarded)
