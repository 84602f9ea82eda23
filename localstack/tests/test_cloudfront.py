"""CloudFront: ETag preconditions, disable-before-delete, deploy waits, OAI API."""

from __future__ import annotations

import time

from conftest import error_code, name


def _config(origin_access_identity: str = "", enabled: bool = True, oac: str = "") -> dict:
    origin = {"Id": "assets", "DomainName": "assets-bucket.s3.amazonaws.com",
              "S3OriginConfig": {"OriginAccessIdentity": origin_access_identity}}
    if oac:
        origin["OriginAccessControlId"] = oac
    return {
        "CallerReference": name("ref"), "Comment": "fintech", "Enabled": enabled,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {"TargetOriginId": "assets", "ViewerProtocolPolicy": "redirect-to-https",
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}, "MinTTL": 0},
    }


def _status(cf, dist_id):
    return cf.get_distribution(Id=dist_id)["Distribution"]["Status"]


def test_update_and_delete_need_current_etag_and_disabled_distribution(emu):
    cf = emu.client("cloudfront")
    created = cf.create_distribution(DistributionConfig=_config())
    dist_id, etag = created["Distribution"]["Id"], created["ETag"]
    config = cf.get_distribution_config(Id=dist_id)
    assert config["ETag"] == etag

    assert error_code(lambda: cf.update_distribution(Id=dist_id, DistributionConfig=config["DistributionConfig"], IfMatch="E2STALE"))[:3:2] == ("PreconditionFailed", 412)
    assert error_code(lambda: cf.update_distribution(Id=dist_id, DistributionConfig=config["DistributionConfig"], IfMatch=""))[0] == "InvalidIfMatchVersion"
    code, message, status = error_code(lambda: cf.delete_distribution(Id=dist_id, IfMatch=etag))
    assert (code, status) == ("DistributionNotDisabled", 409)

    disabled = dict(config["DistributionConfig"], Enabled=False)
    updated = cf.update_distribution(Id=dist_id, DistributionConfig=disabled, IfMatch=etag)
    assert updated["ETag"] != etag
    # The old ETag is now stale for both update and delete.
    assert error_code(lambda: cf.delete_distribution(Id=dist_id, IfMatch=etag))[0] == "PreconditionFailed"
    again = cf.update_distribution(Id=dist_id, DistributionConfig=disabled, IfMatch=updated["ETag"])
    assert again["ETag"] not in (etag, updated["ETag"])
    assert cf.get_distribution(Id=dist_id)["ETag"] == again["ETag"]
    emu.wait_for(lambda: _status(cf, dist_id), "Deployed")
    cf.delete_distribution(Id=dist_id, IfMatch=again["ETag"])
    assert error_code(lambda: cf.get_distribution(Id=dist_id))[0] == "NoSuchDistribution"


def test_distribution_waits_in_progress_then_deployed(emu):
    scale = emu.scale_for("distribution.deploy", 0.9)  # disable deploy: 0.5 s
    cf = emu.client("cloudfront")
    created = cf.create_distribution(DistributionConfig=_config())
    dist_id = created["Distribution"]["Id"]
    assert created["Distribution"]["Status"] == "InProgress" and _status(cf, dist_id) == "InProgress"
    emu.wait_for(lambda: _status(cf, dist_id), "Deployed")

    got = cf.get_distribution_config(Id=dist_id)
    disabled = dict(got["DistributionConfig"], Enabled=False)
    updated = cf.update_distribution(Id=dist_id, DistributionConfig=disabled, IfMatch=got["ETag"])
    assert updated["Distribution"]["Status"] == "InProgress"
    # Disabled but still deploying: AWS refuses the delete too.
    code, _, _ = error_code(lambda: cf.delete_distribution(Id=dist_id, IfMatch=updated["ETag"]))
    assert code == "DistributionNotDisabled"
    emu.wait_for(lambda: _status(cf, dist_id), "Deployed")
    cf.delete_distribution(Id=dist_id, IfMatch=updated["ETag"])

    events = emu.events(dist_id)
    assert [(e["from"], e["to"]) for e in events] == [
        (None, "InProgress"), ("InProgress", "Deployed"), ("Deployed", "InProgress"), ("InProgress", "Deployed")
    ]
    assert abs(events[1]["ts"] - events[0]["ts"] - 540 * scale) < 0.05
    assert abs(events[3]["ts"] - events[2]["ts"] - 300 * scale) < 0.05


def test_origin_access_identity_api(emu):
    cf = emu.client("cloudfront")
    ref = name("oai")
    created = cf.create_cloud_front_origin_access_identity(CloudFrontOriginAccessIdentityConfig={"CallerReference": ref, "Comment": "assets"})
    oai, etag = created["CloudFrontOriginAccessIdentity"], created["ETag"]
    assert created["Location"].endswith(f"/origin-access-identity/cloudfront/{oai['Id']}")
    assert len(oai["S3CanonicalUserId"]) == 96
    # Same reference + config is idempotent; a different config conflicts.
    again = cf.create_cloud_front_origin_access_identity(CloudFrontOriginAccessIdentityConfig={"CallerReference": ref, "Comment": "assets"})
    assert again["CloudFrontOriginAccessIdentity"]["Id"] == oai["Id"]
    assert error_code(lambda: cf.create_cloud_front_origin_access_identity(
        CloudFrontOriginAccessIdentityConfig={"CallerReference": ref, "Comment": "other"}))[0] == "CloudFrontOriginAccessIdentityAlreadyExists"

    assert cf.get_cloud_front_origin_access_identity(Id=oai["Id"])["ETag"] == etag
    assert cf.get_cloud_front_origin_access_identity_config(Id=oai["Id"])["CloudFrontOriginAccessIdentityConfig"] == {"CallerReference": ref, "Comment": "assets"}
    listed = cf.list_cloud_front_origin_access_identities()["CloudFrontOriginAccessIdentityList"]
    assert oai["Id"] in [item["Id"] for item in listed["Items"]]

    new_config = {"CallerReference": ref, "Comment": "renamed"}
    assert error_code(lambda: cf.update_cloud_front_origin_access_identity(Id=oai["Id"], IfMatch="ESTALE", CloudFrontOriginAccessIdentityConfig=new_config))[0] == "PreconditionFailed"
    updated = cf.update_cloud_front_origin_access_identity(Id=oai["Id"], IfMatch=etag, CloudFrontOriginAccessIdentityConfig=new_config)
    assert updated["ETag"] != etag and updated["CloudFrontOriginAccessIdentity"]["CloudFrontOriginAccessIdentityConfig"]["Comment"] == "renamed"

    dist = cf.create_distribution(DistributionConfig=_config(f"origin-access-identity/cloudfront/{oai['Id']}"))
    assert error_code(lambda: cf.delete_cloud_front_origin_access_identity(Id=oai["Id"], IfMatch=updated["ETag"]))[:3:2] == ("CloudFrontOriginAccessIdentityInUse", 409)
    dist_id = dist["Distribution"]["Id"]
    disabled = cf.update_distribution(Id=dist_id, IfMatch=dist["ETag"], DistributionConfig=dict(cf.get_distribution_config(Id=dist_id)["DistributionConfig"], Enabled=False))
    emu.wait_for(lambda: _status(cf, dist_id), "Deployed")
    cf.delete_distribution(Id=dist_id, IfMatch=disabled["ETag"])

    assert error_code(lambda: cf.delete_cloud_front_origin_access_identity(Id=oai["Id"], IfMatch=etag))[0] == "PreconditionFailed"
    cf.delete_cloud_front_origin_access_identity(Id=oai["Id"], IfMatch=updated["ETag"])
    code, _, status = error_code(lambda: cf.get_cloud_front_origin_access_identity(Id=oai["Id"]))
    assert (code, status) == ("NoSuchCloudFrontOriginAccessIdentity", 404)


def test_origin_access_control_id_is_returned(emu):
    cf = emu.client("cloudfront")
    oac = cf.create_origin_access_control(OriginAccessControlConfig={
        "Name": name("oac"), "SigningProtocol": "sigv4", "SigningBehavior": "always", "OriginAccessControlOriginType": "s3"})
    oac_id = oac["OriginAccessControl"]["Id"]
    dist = cf.create_distribution(DistributionConfig=_config(oac=oac_id))["Distribution"]
    origin = cf.get_distribution(Id=dist["Id"])["Distribution"]["DistributionConfig"]["Origins"]["Items"][0]
    assert origin["OriginAccessControlId"] == oac_id


def test_origin_access_control_names_are_unique(emu):
    cf = emu.client("cloudfront")
    config = {"Name": name("oac"), "SigningProtocol": "sigv4", "SigningBehavior": "always",
              "OriginAccessControlOriginType": "s3"}
    cf.create_origin_access_control(OriginAccessControlConfig=config)
    code, message, status = error_code(lambda: cf.create_origin_access_control(OriginAccessControlConfig=config))
    assert (code, status) == ("OriginAccessControlAlreadyExists", 409), message
    other = dict(config, Name=name("oac"))
    assert cf.create_origin_access_control(OriginAccessControlConfig=other)["OriginAccessControl"]["Id"]
