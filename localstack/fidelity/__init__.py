"""Fidelity layer for moto: makes the emulator refuse and wait like real AWS.

`install()` imports one module per AWS service; each module registers small,
named rules (see patching.rule) that wrap moto backend methods. The rules are
applied once, before moto serves its first request.
"""

from __future__ import annotations

from .timeline import SETTINGS, TIMELINE

_installed = False


def install(time_scale: float = 0.0, lambda_eni_linger: float = 0.0) -> None:
    global _installed
    SETTINGS.update({"time_scale": time_scale, "lambda_eni_linger": lambda_eni_linger})
    if _installed:
        return
    # Importing a module registers its rules; install_all() applies them.
    from . import (  # noqa: F401
        backup,
        cloudfront,
        cloudmap_autoscaling,
        codedeploy,
        codedeploy_groups,
        codedeploy_deployments,
        dynamodb,
        ec2,
        ecs,
        ecs_deployments,
        elbv2,
        flow_logs,
        iam,
        kms,
        lambda_config,
        lambda_eni,
        lambda_permissions,
        logs,
        rds,
        s3,
        wafv2,
    )
    from .patching import install_all

    install_all()
    _installed = True


__all__ = ["install", "SETTINGS", "TIMELINE"]
