"""KMS keys pending deletion are unusable; IAM policies in use cannot be deleted."""

from __future__ import annotations

import json

from conftest import error_code, name

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})


def test_key_pending_deletion_cannot_be_used(emu):
    kms = emu.client("kms")
    key = kms.create_key()["KeyMetadata"]
    alias = f"alias/{name('k')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=alias, Plaintext=b"secret")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)

    calls = {
        "Encrypt": lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"),
        "Encrypt via alias": lambda: kms.encrypt(KeyId=alias, Plaintext=b"x"),
        "Decrypt": lambda: kms.decrypt(CiphertextBlob=blob),
        "GenerateDataKey": lambda: kms.generate_data_key(KeyId=key["Arn"], KeySpec="AES_256"),
        "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256"),
        "CreateGrant": lambda: kms.create_grant(KeyId=key["KeyId"], GranteePrincipal="arn:aws:iam::123456789012:role/app", Operations=["Decrypt"]),
    }
    for label, call in calls.items():
        code, message, _ = error_code(call)
        assert (label, code, message) == (label, "KMSInvalidStateException", f"{key['Arn']} is pending deletion.")

    # Services refuse to encrypt with it too.
    code, _, _ = error_code(lambda: emu.client("rds").create_db_cluster(
        DBClusterIdentifier=name("enc"), Engine="aurora-postgresql", MasterUsername="app",
        MasterUserPassword="password-123", StorageEncrypted=True, KmsKeyId=key["KeyId"]))
    assert code == "KMSKeyNotAccessibleFault"
    code, _, _ = error_code(lambda: emu.client("secretsmanager").create_secret(Name=name("s"), SecretString="x", KmsKeyId=alias))
    assert code == "EncryptionFailure"

    # Cancelling leaves it Disabled: still unusable, with DisabledException.
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert error_code(lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))[0] == "DisabledException"
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_attached_policy_cannot_be_deleted(emu):
    iam = emu.client("iam")
    role = name("role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    arn = iam.create_policy(PolicyName=name("policy"), PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    code, message, status = error_code(lambda: iam.delete_policy(PolicyArn=arn))
    assert (code, message, status) == ("DeleteConflict", "Cannot delete a policy attached to entities.", 409)
    # Role cannot go first either (moto already refuses that).
    assert error_code(lambda: iam.delete_role(RoleName=role))[0] == "DeleteConflict"
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    iam.delete_role(RoleName=role)


def test_attaching_an_attached_policy_changes_nothing(emu):
    iam = emu.client("iam")
    role = name("role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    arn = iam.create_policy(PolicyName=name("policy"), PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    iam.delete_role(RoleName=role)


def test_policy_with_versions_cannot_be_deleted(emu):
    iam = emu.client("iam")
    arn = iam.create_policy(PolicyName=name("policy"), PolicyDocument=POLICY)["Policy"]["Arn"]
    version = iam.create_policy_version(PolicyArn=arn, PolicyDocument=POLICY, SetAsDefault=False)["PolicyVersion"]["VersionId"]
    assert error_code(lambda: iam.delete_policy(PolicyArn=arn))[0] == "DeleteConflict"
    iam.delete_policy_version(PolicyArn=arn, VersionId=version)
    iam.delete_policy(PolicyArn=arn)


def test_aws_managed_policies_are_loaded(emu):
    policy = emu.client("iam").get_policy(PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
    assert policy["Policy"]["PolicyName"] == "AmazonECSTaskExecutionRolePolicy"
