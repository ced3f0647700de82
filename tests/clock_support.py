"""Time that does not depend on the machine: a virtual-clock event loop, and a bucket spy.

- `run_virtual`: run a coroutine on an event loop whose clock moves only when the loop has
  nothing to do but wait for a timer, and then jumps straight to it. ``loop.time()`` (what
  ecs-safe's token buckets and ``asyncio.sleep`` go by) then measures exactly the waiting the
  code asked for, however loaded the machine is. For code without network I/O: a request in
  flight would look like idleness and the clock would jump its timeouts.
- `BucketSpy`: records every token taken from a `TokenBucket` (which bucket, whether it
  had to wait), so that tests against the endpoint can assert which bucket paced which call by
  counting events instead of timing them.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from ecs_safe.ratelimit import TokenBucket

__all__ = ["BucketSpy", "Taken", "VirtualClockLoop", "run_virtual"]

_T = TypeVar("_T")


class _JumpingSelector(selectors.DefaultSelector):
    """Polls without blocking; when nothing is ready before a timer, moves the clock to it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready or timeout is None:
            return ready or super().select(timeout)
        self.now += max(timeout, 0.0)
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual (see the module docstring)."""

    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(selector=self._jumping)

    def time(self) -> float:
        """The virtual time: 0 at the start, moved only by waiting for timers."""
        return self._jumping.now


def run_virtual(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to completion on a fresh `VirtualClockLoop`."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


@dataclass(frozen=True, slots=True)
class Taken:
    """One token taken from a bucket."""

    bucket: TokenBucket
    waited: bool
    """Whether the bucket was empty when asked (the caller had to wait for a refill)."""


@dataclass
class BucketSpy:
    """Every token taken from any `TokenBucket` while installed, in order."""

    taken: list[Taken] = field(default_factory=list)

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> BucketSpy:
        """Wrap `TokenBucket.take` for the test; returns the spy."""
        spy = cls()
        original = TokenBucket.take

        async def take(bucket: TokenBucket) -> None:
            waits = bucket.waits
            await original(bucket)
            spy.taken.append(Taken(bucket, bucket.waits > waits))

        monkeypatch.setattr(TokenBucket, "take", take)
        return spy

    def buckets(self) -> list[TokenBucket]:
        """The distinct buckets tokens were taken from, in order of first use."""
        return list({id(t.bucket): t.bucket for t in self.taken}.values())

    def count(self, bucket: TokenBucket) -> int:
        """How many tokens were taken from ``bucket``."""
        return sum(t.bucket is bucket for t in self.taken)

    def clear(self) -> None:
        """Forget the tokens taken so far."""
        self.taken.clear()
