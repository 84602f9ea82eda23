"""Small helpers to register and apply the fidelity layer's patches to moto.

Every AWS rule the layer enforces is one function decorated with `@rule(...)`;
`fidelity.install()` calls them all once at start-up. Each function wraps one or
a few moto backend methods with `wrap()`, so the rule's code sits in one place
and its name says what AWS does. GET /_fintech/patches lists them.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

RULES: list[dict[str, Any]] = []


def rule(service: str, kind: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register an installer. kind: refusal | waiting | missing-api | fidelity."""

    def register(installer: Callable[[], None]) -> Callable[[], None]:
        doc = (installer.__doc__ or "").strip().split("\n\n")[0]
        RULES.append(
            {
                "name": installer.__name__,
                "service": service,
                "kind": kind,
                "doc": " ".join(doc.split()),
                "install": installer,
            }
        )
        return installer

    return register


def wrap(cls: type, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Replace cls.name by `wrapper(original, self, *args, **kwargs)`.

    Wrappers stack: two rules may wrap the same method and both run.
    """

    def decorate(wrapper: Callable[..., Any]) -> Callable[..., Any]:
        original = getattr(cls, name)

        @functools.wraps(original)
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            return wrapper(original, self, *args, **kwargs)

        setattr(cls, name, patched)
        return wrapper

    return decorate


def install_all() -> None:
    for entry in RULES:
        entry["install"]()


def describe_rules() -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "install"} for r in RULES]
