"""Lambda function configuration fields moto's UpdateFunctionConfiguration drops.

moto 5 applies only a few keys of an UpdateFunctionConfiguration body (description,
handler, memory, role, runtime, timeout, VPC, environment, layers) and ignores the
rest, though CreateFunction stores them. A tool that repairs drift of another field
then sees the old value forever and changes it on every run.
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import LambdaBackend

from .patching import rule, wrap


@rule("lambda", "fidelity")
def update_function_configuration_sets_tracing() -> None:
    """UpdateFunctionConfiguration with TracingConfig sets the function's tracing mode
    (Active or PassThrough), as AWS does; moto ignores the field on update."""

    @wrap(LambdaBackend, "update_function_configuration")
    def update_function_configuration(original: Any, self: Any, function_name: str, qualifier: Any, body: dict[str, Any]) -> Any:
        result = original(self, function_name, qualifier, body)
        tracing = body.get("TracingConfig")
        if isinstance(tracing, dict) and tracing.get("Mode") in ("Active", "PassThrough"):
            fn = self.get_function(function_name, qualifier)
            fn.tracing_config = {"Mode": tracing["Mode"]}
            if isinstance(result, dict):
                result["TracingConfig"] = dict(fn.tracing_config)
        return result
