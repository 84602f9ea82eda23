"""The shared policy evaluator (fidelity/policy_eval.py), without an emulator."""

from __future__ import annotations

from fidelity.policy_eval import condition_holds, resource_policy_allows, wildcard_match


def _policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_actions_resources_and_explicit_deny():
    allow = {"Effect": "Allow", "Principal": "*", "Action": "SQS:Send*", "Resource": "arn:aws:sqs:us-east-1:1:q-?"}
    who = {"AWS": "arn:aws:iam::1:role/r"}
    assert resource_policy_allows(_policy(allow), who, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q-a")
    assert not resource_policy_allows(_policy(allow), who, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q-ab")
    assert not resource_policy_allows(_policy(allow), who, "sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:q-a")
    deny = {"Effect": "Deny", "Principal": "*", "NotAction": "sqs:ReceiveMessage", "Resource": "*"}
    assert not resource_policy_allows(_policy(allow, deny), who, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q-a")
    not_resource = {"Effect": "Allow", "Principal": "*", "Action": "*", "NotResource": "arn:aws:s3:::secret/*"}
    assert resource_policy_allows(_policy(not_resource), who, "s3:GetObject", "arn:aws:s3:::open/x")
    assert not resource_policy_allows(_policy(not_resource), who, "s3:GetObject", "arn:aws:s3:::secret/x")
    assert not resource_policy_allows(None, who, "s3:GetObject", "arn:aws:s3:::open/x")
    assert wildcard_match("a.b*", "a.bcd") and not wildcard_match("a.b*", "axbcd")


def test_principals():
    statement = {"Effect": "Allow", "Action": "kms:*", "Resource": "*",
                 "Principal": {"Service": ["logs.us-east-1.amazonaws.com"], "AWS": "111122223333"}}
    assert resource_policy_allows(_policy(statement), {"Service": "logs.us-east-1.amazonaws.com"}, "kms:Encrypt", "k")
    assert not resource_policy_allows(_policy(statement), {"Service": "logs.eu-west-1.amazonaws.com"}, "kms:Encrypt", "k")
    assert resource_policy_allows(_policy(statement), {"AWS": "arn:aws:iam::111122223333:root"}, "kms:Encrypt", "k")
    assert not resource_policy_allows(_policy(statement), {"AWS": "arn:aws:iam::111122223333:role/x"}, "kms:Encrypt", "k")
    # An account root statement does not cover service principals.
    root = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}
    assert not resource_policy_allows(_policy(root), {"Service": "logs.us-east-1.amazonaws.com"}, "kms:Encrypt", "k")
    everyone = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}}}
    assert not resource_policy_allows(_policy(everyone), {"Service": "logs.us-east-1.amazonaws.com"}, "kms:Encrypt", "k")
    assert resource_policy_allows(_policy(everyone), {"Service": "logs.us-east-1.amazonaws.com"}, "kms:Encrypt", "k",
                                  {"kms:ViaService": "sqs.us-east-1.amazonaws.com"})


def test_conditions():
    ctx = {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:1:log-group:/ecs/api", "aws:SourceAccount": "1"}
    assert condition_holds("ArnLike", "kms:EncryptionContext:aws:logs:arn", "arn:aws:logs:us-east-1:1:log-group:*", ctx)
    assert condition_holds("ArnEquals", "kms:encryptioncontext:AWS:logs:arn", ["x", "arn:aws:logs:us-east-1:1:log-group:/ecs/api"], ctx)
    assert not condition_holds("ArnLike", "kms:EncryptionContext:aws:logs:arn", "arn:aws:logs:eu-west-1:*:*", ctx)
    assert condition_holds("StringEquals", "aws:SourceAccount", "1", ctx)
    assert condition_holds("StringLike", "aws:SourceAccount", "?", ctx)
    assert not condition_holds("StringEquals", "aws:SourceArn", "x", ctx)  # missing key: false ...
    assert condition_holds("StringNotEquals", "aws:SourceArn", "x", ctx)  # ... but true when negated
    assert condition_holds("StringEqualsIfExists", "aws:SourceArn", "x", ctx)
    assert condition_holds("Null", "aws:SourceArn", "true", ctx) and not condition_holds("Null", "aws:SourceAccount", "true", ctx)
    assert condition_holds("Bool", "aws:SecureTransport", "true", {"aws:SecureTransport": True})
    assert condition_holds("IpAddress", "aws:SourceIp", "10.0.0.0/8", {"aws:SourceIp": "10.1.2.3"})
    assert not condition_holds("NoSuchOperator", "aws:SourceAccount", "1", ctx)
    assert condition_holds("ForAnyValue:StringLike", "aws:TagKeys", "team*", {"aws:TagKeys": ["owner", "team-a"]})
    assert not condition_holds("ForAllValues:StringLike", "aws:TagKeys", "team*", {"aws:TagKeys": ["owner", "team-a"]})
