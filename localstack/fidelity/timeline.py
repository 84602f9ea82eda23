"""Run-time settings, real-AWS durations and the lazy state-transition timeline.

AWS makes callers wait for many resources (a NAT gateway is `pending` for about
a minute and a half, an Aurora instance takes minutes to delete, ...). moto
reports the final state at once. The fidelity layer models each wait as a
*scheduled transition*: when the API call that starts the wait is served, we
record "resource X goes from A to B at time T" where
T = now + (real-AWS median duration) x time_scale.

Nothing runs in the background. Before every AWS request the HTTP middleware
calls `TIMELINE.pump()`, which applies every transition whose time has come
(e.g. sets the moto object's state, or removes it from the backend). Since a
client can only observe state through a request, this is the same as computing
the state on describe, but it also lets one transition have side effects (a
deleted NAT gateway releases its ENI and its Elastic IP association).

Each applied transition is recorded as an event (with the time it took effect,
not the time it was noticed) and served by GET /_fintech/events.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

# Real-AWS median durations in seconds (see /work/shared/EMULATORS.md and the
# README's durations table). Scaled by Settings.time_scale; 0 = instant.
DURATIONS: dict[str, float] = {
    "nat-gateway.create": 90,  # NAT gateway: 1-2 min to become available
    "nat-gateway.delete": 60,  # NAT gateway: about 1 min to reach deleted
    "load-balancer.create": 135,  # ALB: 1.5-3 min provisioning -> active
    "db-cluster.create": 450,  # Aurora cluster: 5-10 min
    "db-cluster.delete": 120,  # Aurora cluster: deleting for ~2 min once empty
    "db-instance.create": 450,  # Aurora instance: 5-10 min
    "db-instance.delete": 600,  # Aurora instance delete: up to ~12 min
    "distribution.deploy": 540,  # CloudFront create/update: 3-15 min to deploy
    "distribution.disable": 300,  # CloudFront: ~5 min to delete, i.e. the deploy
    # of the disabling update (DeleteDistribution itself is synchronous)
    "ecs-service.drain": 60,  # ECS service DRAINING -> INACTIVE
    # ECS deployment: new tasks start, pass the ALB health checks (healthy
    # threshold x interval), then the old ones drain: about 3 minutes.
    "ecs-deployment.rollout": 180,
    # CodeDeploy ECS blue/green: the replacement task set starts and passes the
    # target group's health checks (the Install lifecycle event): about a minute.
    # Traffic-shift intervals and the termination wait are the deployment config's
    # and the deployment group's minutes x 60 x time_scale, not keys here.
    "codedeploy.install": 60,
    "dynamodb-table.create": 20,  # DynamoDB CREATING -> ACTIVE
    "dynamodb-table.delete": 20,  # DynamoDB DELETING -> gone
    "iam-role.propagate": 10,  # IAM: a new role is assumable by services after a few seconds
}


@dataclass
class Settings:
    """Mutable run-time settings (POST /_fintech/config changes them)."""

    time_scale: float = 0.0
    # Seconds (real, not scaled) a deleted VPC Lambda's ENIs linger.
    lambda_eni_linger: float = 0.0
    # Images whose tasks fail their health checks (fidelity/ecs_deployments.py).
    unhealthy_images: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "time_scale": self.time_scale,
            "lambda_eni_linger": self.lambda_eni_linger,
            "unhealthy_images": list(self.unhealthy_images),
            "durations": dict(DURATIONS),
        }

    def update(self, values: dict[str, Any]) -> None:
        for key in ("time_scale", "lambda_eni_linger"):
            if key in values:
                value = float(values[key])
                if value < 0:
                    raise ValueError(f"{key} must be >= 0")
                setattr(self, key, value)
        if "unhealthy_images" in values:
            images = values["unhealthy_images"]
            if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
                raise ValueError("unhealthy_images must be a list of image names")
            self.unhealthy_images = list(images)


SETTINGS = Settings()


def scaled(duration_key: str) -> float:
    """Seconds to wait for `duration_key` at the current time scale."""
    return DURATIONS[duration_key] * SETTINGS.time_scale


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    resource_type: str = field(compare=False)
    resource_id: str = field(compare=False)
    from_state: str | None = field(compare=False)
    to_state: str = field(compare=False)
    apply: Callable[[], Any] | None = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timeline:
    """Scheduled transitions plus the log of transitions already applied."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._heap: list[_Pending] = []
        self._seq = itertools.count()
        self._events: list[dict[str, Any]] = []

    def schedule(
        self,
        resource_type: str,
        resource_id: str,
        from_state: str | None,
        to_state: str,
        delay: float,
        apply: Callable[[], Any] | None = None,
        not_before: float = 0.0,
    ) -> float:
        """Apply `apply()` and record from->to after `delay` real seconds (but not
        before the absolute time `not_before`). Returns the due time."""
        with self.lock:
            item = _Pending(
                max(time.time() + max(delay, 0.0), not_before),
                next(self._seq),
                resource_type,
                resource_id,
                from_state,
                to_state,
                apply,
            )
            heapq.heappush(self._heap, item)
            return item.due

    def record(
        self, resource_type: str, resource_id: str, from_state: str | None, to_state: str
    ) -> None:
        """Record a transition that took effect right now (caused by an API call)."""
        with self.lock:
            self._events.append(
                {
                    "ts": time.time(),
                    "resource_type": resource_type,
                    "id": resource_id,
                    "from": from_state,
                    "to": to_state,
                }
            )

    def cancel(self, resource_type: str, resource_id: str) -> None:
        """Drop transitions still pending for a resource (e.g. deleted while creating)."""
        with self.lock:
            for item in self._heap:
                if item.resource_type == resource_type and item.resource_id == resource_id:
                    item.cancelled = True

    def pending(self, resource_type: str, resource_id: str) -> bool:
        with self.lock:
            return any(
                not i.cancelled
                and i.resource_type == resource_type
                and i.resource_id == resource_id
                for i in self._heap
            )

    def pump(self) -> None:
        """Apply every transition that is due, in time order."""
        with self.lock:
            now = time.time()
            while self._heap and self._heap[0].due <= now:
                item = heapq.heappop(self._heap)
                if item.cancelled:
                    continue
                if item.apply is not None:
                    try:
                        item.apply()
                    except Exception:  # never fail an unrelated request
                        traceback.print_exc()
                self._events.append(
                    {
                        "ts": item.due,
                        "resource_type": item.resource_type,
                        "id": item.resource_id,
                        "from": item.from_state,
                        "to": item.to_state,
                    }
                )

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            self.pump()
            return sorted(self._events, key=lambda e: e["ts"])

    def clear_events(self) -> None:
        with self.lock:
            self._events.clear()

    def reset(self) -> None:
        """Forget everything (moto's /moto-api/reset dropped the resources)."""
        with self.lock:
            self._heap.clear()
            self._events.clear()


TIMELINE = Timeline()
