"""CloudFront distribution configuration: viewer certificate, WAF web ACL scope,
standard-logging bucket ACLs; WAFv2 AssociateWebACL scope and ALB state."""

from __future__ import annotations

from conftest import error_code, issued_certificate, name


def _config(**extra) -> dict:
    config = {
        "CallerReference": name("ref"), "Comment": "fintech", "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [{"Id": "assets", "DomainName": "assets-bucket.s3.amazonaws.com",
                                              "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "assets", "ViewerProtocolPolicy": "redirect-to-https",
                                 "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}, "MinTTL": 0},
    }
    config.update(extra)
    return config


def _aliases(*names):
    return {"Quantity": len(names), "Items": list(names)}


def _viewer(arn):
    return {"ACMCertificateArn": arn, "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": "TLSv1.2_2021"}


def _web_acl(emu, scope, region="us-east-1"):
    waf = emu.client("wafv2") if region == "us-east-1" else emu.regional("wafv2", region)
    return waf.create_web_acl(
        Name=name("acl"), Scope=scope, DefaultAction={"Allow": {}},
        VisibilityConfig={"SampledRequestsEnabled": False, "CloudWatchMetricsEnabled": False, "MetricName": "m"},
    )["Summary"]["ARN"]


def test_viewer_certificate_must_be_issued_in_us_east_1_and_cover_aliases(emu):
    cf = emu.client("cloudfront")
    invalid = "The specified SSL certificate doesn't exist, isn't in us-east-1 region, isn't valid, or doesn't include a valid certificate chain."
    elsewhere = issued_certificate(emu, "cdn.example.com", region="eu-west-1")
    assert error_code(lambda: cf.create_distribution(DistributionConfig=_config(
        Aliases=_aliases("cdn.example.com"), ViewerCertificate=_viewer(elsewhere)))) == ("InvalidViewerCertificate", invalid, 400)
    pending = emu.client("acm").request_certificate(DomainName="cdn.example.com", ValidationMethod="DNS")["CertificateArn"]
    assert error_code(lambda: cf.create_distribution(DistributionConfig=_config(
        Aliases=_aliases("cdn.example.com"), ViewerCertificate=_viewer(pending))))[:2] == ("InvalidViewerCertificate", invalid)
    missing = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
    assert error_code(lambda: cf.create_distribution(DistributionConfig=_config(ViewerCertificate=_viewer(missing))))[0] == "InvalidViewerCertificate"

    cert = issued_certificate(emu, "cdn.example.com", sans=["*.pay.example.com"])
    code, message, _ = error_code(lambda: cf.create_distribution(DistributionConfig=_config(
        Aliases=_aliases("cdn.example.com", "a.b.pay.example.com"), ViewerCertificate=_viewer(cert))))
    assert code == "InvalidViewerCertificate" and message.startswith("The certificate that is attached to your distribution doesn't cover")
    code, message, _ = error_code(lambda: cf.create_distribution(DistributionConfig=_config(Aliases=_aliases("cdn.example.com"))))
    assert code == "InvalidViewerCertificate" and message.startswith("To add an alternate domain name (CNAME)")

    created = cf.create_distribution(DistributionConfig=_config(
        Aliases=_aliases("cdn.example.com", "eu.pay.example.com"), ViewerCertificate=_viewer(cert)))
    dist_id, etag = created["Distribution"]["Id"], created["ETag"]
    # An update is checked the same way (after its If-Match).
    config = cf.get_distribution_config(Id=dist_id)["DistributionConfig"]
    config["Aliases"] = _aliases("cdn.example.com", "other.example.org")
    assert error_code(lambda: cf.update_distribution(Id=dist_id, DistributionConfig=config, IfMatch="stale"))[0] == "PreconditionFailed"
    assert error_code(lambda: cf.update_distribution(Id=dist_id, DistributionConfig=config, IfMatch=etag))[0] == "InvalidViewerCertificate"
    # No aliases: the default certificate is fine.
    cf.create_distribution(DistributionConfig=_config())


def test_distribution_web_acl_must_have_cloudfront_scope(emu):
    cf = emu.client("cloudfront")
    regional = _web_acl(emu, "REGIONAL")
    assert error_code(lambda: cf.create_distribution(DistributionConfig=_config(WebACLId=regional))) == (
        "InvalidWebACLId", "Web ACL is not accessible by the requester.", 400)
    gone = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/none/00000000-0000-0000-0000-000000000000"
    assert error_code(lambda: cf.create_distribution(DistributionConfig=_config(WebACLId=gone)))[0] == "InvalidWebACLId"
    global_acl = _web_acl(emu, "CLOUDFRONT")
    assert ":global/webacl/" in global_acl
    created = cf.create_distribution(DistributionConfig=_config(WebACLId=global_acl))["Distribution"]
    assert created["DistributionConfig"]["WebACLId"] == global_acl


def test_associate_web_acl_only_regional_acl_with_regional_resources(emu, vpc):
    waf = emu.client("wafv2")
    elb = emu.client("elbv2")
    alb = elb.create_load_balancer(Name=name("alb"), Subnets=vpc["subnets"], SecurityGroups=[vpc["groups"][0]])["LoadBalancers"][0]["LoadBalancerArn"]
    regional, global_acl = _web_acl(emu, "REGIONAL"), _web_acl(emu, "CLOUDFRONT")
    distribution = "arn:aws:cloudfront::123456789012:distribution/E2EXAMPLE"

    code, message, status = error_code(lambda: waf.associate_web_acl(WebACLArn=global_acl, ResourceArn=alb))
    assert (code, status) == ("WAFInvalidParameterException", 400)
    assert message == ("Error reason: The ARN isn't valid. A valid ARN begins with arn: and includes other information "
                       f"separated by colons or slashes., field: RESOURCE_ARN, parameter: {global_acl}")
    code, message, _ = error_code(lambda: waf.associate_web_acl(WebACLArn=regional, ResourceArn=distribution))
    assert code == "WAFInvalidParameterException" and message.endswith(f"parameter: {distribution}")
    other_region = alb.replace(":us-east-1:", ":eu-west-1:")
    assert error_code(lambda: waf.associate_web_acl(WebACLArn=regional, ResourceArn=other_region))[0] == "WAFInvalidParameterException"

    waf.associate_web_acl(WebACLArn=regional, ResourceArn=alb)
    assert waf.get_web_acl_for_resource(ResourceArn=alb)["WebACL"]["ARN"] == regional



def test_web_acl_attaches_to_a_load_balancer_only_once_it_is_active(emu, vpc):
    emu.scale_for("load-balancer.create", 0.6)
    waf, elb = emu.client("wafv2"), emu.client("elbv2")
    alb = elb.create_load_balancer(Name=name("alb"), Subnets=vpc["subnets"], SecurityGroups=[vpc["groups"][0]])["LoadBalancers"][0]["LoadBalancerArn"]
    acl = _web_acl(emu, "REGIONAL")

    code, message, status = error_code(lambda: waf.associate_web_acl(WebACLArn=acl, ResourceArn=alb))
    assert (code, status) == ("WAFUnavailableEntityException", 400)
    assert message == "AWS WAF couldn’t retrieve the resource that you requested. Retry your request."
    assert "WebACL" not in waf.get_web_acl_for_resource(ResourceArn=alb)  # nothing was associated

    emu.wait_for(lambda: elb.describe_load_balancers(LoadBalancerArns=[alb])["LoadBalancers"][0]["State"]["Code"], "active")
    waf.associate_web_acl(WebACLArn=acl, ResourceArn=alb)
    assert waf.get_web_acl_for_resource(ResourceArn=alb)["WebACL"]["ARN"] == acl


def test_standard_logging_bucket_must_enable_acls(emu):
    cf, s3 = emu.client("cloudfront"), emu.client("s3")
    bucket = name("cflogs")
    logging = {"Enabled": True, "IncludeCookies": False, "Bucket": f"{bucket}.s3.amazonaws.com", "Prefix": "cdn/"}
    code, message, _ = error_code(lambda: cf.create_distribution(DistributionConfig=_config(Logging=logging)))
    assert (code, message) == ("InvalidArgument", f"The S3 bucket that you specified for CloudFront logs doesn't exist: {bucket}.s3.amazonaws.com")
    s3.create_bucket(Bucket=bucket)  # ACLs disabled by default (BucketOwnerEnforced)
    refused = ("InvalidArgument", f"The S3 bucket that you specified for CloudFront logs does not enable ACL access: {bucket}.s3.amazonaws.com", 400)
    assert error_code(lambda: cf.create_distribution(DistributionConfig=_config(Logging=logging))) == refused
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert error_code(lambda: cf.create_distribution(DistributionConfig=_config(Logging=logging))) == refused

    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    cf.create_distribution(DistributionConfig=_config(Logging=logging))
    # Logging disabled: the bucket is not looked at.
    cf.create_distribution(DistributionConfig=_config(Logging=dict(logging, Enabled=False, Bucket="nowhere.s3.amazonaws.com")))


def test_cloudfront_scope_is_served_in_us_east_1_only(emu):
    elsewhere = emu.regional("wafv2", "eu-west-1")
    code, message, status = error_code(lambda: _web_acl(emu, "CLOUDFRONT", region="eu-west-1"))
    assert (code, status) == ("WAFInvalidParameterException", 400)
    assert message == "Error reason: The scope is not valid., field: SCOPE_VALUE, parameter: CLOUDFRONT"
    assert error_code(lambda: elsewhere.list_web_acls(Scope="CLOUDFRONT"))[0] == "WAFInvalidParameterException"
    # REGIONAL works anywhere, CLOUDFRONT in us-east-1.
    assert ":eu-west-1:" in _web_acl(emu, "REGIONAL", region="eu-west-1")
    assert ":global/webacl/" in _web_acl(emu, "CLOUDFRONT")


def test_web_acl_used_by_a_distribution_cannot_be_deleted(emu):
    cf, waf = emu.client("cloudfront"), emu.client("wafv2")
    acl = _web_acl(emu, "CLOUDFRONT")
    acl_name, acl_id = acl.split("/")[-2], acl.split("/")[-1]
    created = cf.create_distribution(DistributionConfig=_config(WebACLId=acl))
    dist_id, etag = created["Distribution"]["Id"], created["ETag"]

    def delete():
        token = waf.get_web_acl(Name=acl_name, Scope="CLOUDFRONT", Id=acl_id)["LockToken"]
        waf.delete_web_acl(Name=acl_name, Scope="CLOUDFRONT", Id=acl_id, LockToken=token)

    assert error_code(delete)[0] == "WAFAssociatedItemException"
    config = cf.get_distribution_config(Id=dist_id)["DistributionConfig"]
    config["WebACLId"] = ""
    cf.update_distribution(Id=dist_id, DistributionConfig=config, IfMatch=etag)
    delete()
    assert error_code(lambda: waf.get_web_acl(Name=acl_name, Scope="CLOUDFRONT", Id=acl_id))[0] == "WAFNonexistentItemException"
