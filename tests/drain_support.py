"""Helpers for the drain, fleet and rate-limit tests against the local endpoint.

- `client`: an `EcsSafeClient` on a `LocalEcs`, unpaced unless the test asks for limits.
- `later`: run a seeding call after a delay on a background thread. moto never moves tasks
  off a DRAINING instance, so tests play the ECS scheduler with it.
- `ServerSide`: wraps one moto backend method to see requests as the server handles them:
  when each started and ended, and how many were in flight at once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiobotocore.session import AioSession
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from ecs_safe import EcsSafeClient, Policy, RateLimits, RetryConfig, retry
from ecs_safe.local import LocalEcs


@functools.cache
def _session(local: LocalEcs) -> AioSession:
    # One session per endpoint: a new one loads botocore's ECS model again (~0.25 s a client).
    return local.session()


def client(
    local: LocalEcs,
    *,
    rate_limits: RateLimits | None = None,
    policy: Policy | None = None,
    retry: RetryConfig | None = None,
) -> EcsSafeClient:
    """A client on ``local``; unpaced by default so that tests measure ecs-safe, not buckets."""
    return EcsSafeClient(
        endpoint_url=local.endpoint_url,
        region_name=local.region_name,
        session=_session(local),
        rate_limits=rate_limits or RateLimits.unlimited(),
        policy=policy,
        retry=retry,
    )


def later(delay: float, action: Callable[..., Any], *args: Any) -> threading.Timer:
    """Run ``action(*args)`` after ``delay`` seconds on a daemon thread."""
    timer = threading.Timer(delay, action, args)
    timer.daemon = True
    timer.start()
    return timer


#: ``with instant_retries():`` retry waits of zero seconds for the block (attempts are still
#: counted): `retry.set_testing`'s restorer is the context manager. Tests that want it for the
#: whole test use the ``instant_retries`` fixture of conftest.py instead.
instant_retries = functools.partial(retry.set_testing, True)


def ecs_backend(local: LocalEcs) -> Any:
    """moto's in-process ECS backend behind ``local`` (get it after any reset)."""
    return ecs_backends[DEFAULT_ACCOUNT_ID][local.region_name]


@dataclass
class ServerSide:
    """What the server saw of one operation: (start, end) per request, and the peak overlap."""

    spans: list[tuple[float, float]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def starts(self) -> list[float]:
        """When each request reached the backend, sorted."""
        return sorted(start for start, _ in self.spans)

    def max_in_window(self, window: float) -> int:
        """The most requests that started within any ``window`` seconds."""
        starts = self.starts
        return max(
            (sum(1 for s in starts[i:] if s - first <= window) for i, first in enumerate(starts)),
            default=0,
        )


def watch(
    monkeypatch: pytest.MonkeyPatch, local: LocalEcs, method: str, *, hold: float = 0.0
) -> ServerSide:
    """Wrap the backend's ``method``; each call is held ``hold`` seconds to make overlap visible.

    moto's server is threaded, so requests the client sends at once are handled at once.
    """
    backend = ecs_backend(local)
    original = getattr(backend, method)
    seen = ServerSide()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        with seen._lock:
            seen.in_flight += 1
            seen.max_in_flight = max(seen.max_in_flight, seen.in_flight)
        try:
            if hold:
                time.sleep(hold)
            return original(*args, **kwargs)
        finally:
            with seen._lock:
                seen.in_flight -= 1
                seen.spans.append((start, time.monotonic()))

    monkeypatch.setattr(backend, method, wrapper)
    return seen
