"""Client-side rate limits shaped like ECS's own request throttling.

ECS throttles per account and Region with token buckets: cluster-resource *modify* calls
(DeregisterContainerInstance, UpdateContainerInstancesState, StopTask, ...) burst 100 and refill
40/s; cluster-resource *read* calls (DescribeContainerInstances, DescribeTasks, ListTasks, ...)
burst 100 and refill 20/s. One `EcsSafeClient` holds one bucket of each kind and every call it
makes, retries included, takes a token first, so a fleet run paces itself instead of provoking
``ThrottlingException``. The buckets are `aiolimiter.AsyncLimiter` (a leaky bucket is a token
bucket seen from the other side): capacity ``burst``, drained at ``per_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from aiolimiter import AsyncLimiter

from ecs_safe.errors import InvalidInputError

__all__ = ["MODIFY_OPERATIONS", "READ_OPERATIONS", "CallKind", "RateLimiter", "RateLimits"]

CallKind = Literal["read", "modify"]

#: The ECS operations ecs-safe makes that count against the modify bucket.
MODIFY_OPERATIONS = frozenset(
    {"DeregisterContainerInstance", "UpdateContainerInstancesState", "StopTask"}
)
#: The ECS operations ecs-safe makes that count against the read bucket.
READ_OPERATIONS = frozenset(
    {
        "DescribeContainerInstances",
        "DescribeTasks",
        "ListTasks",
        "DescribeServices",
        "ListContainerInstances",
    }
)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Token-bucket limits for the calls one client makes.

    The defaults are ECS's documented buckets for cluster resources. Lower them when other
    tools share the account's budget; `RateLimits.unlimited()` switches pacing off.

    Args:
        read_per_s: read calls refilled per second.
        read_burst: read calls allowed at once from a full bucket.
        modify_per_s: modify calls refilled per second.
        modify_burst: modify calls allowed at once from a full bucket.
    """

    read_per_s: float = 20.0
    read_burst: int = 100
    modify_per_s: float = 40.0
    modify_burst: int = 100

    def __post_init__(self) -> None:
        for name in ("read_per_s", "modify_per_s"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or math.isnan(value)
                or value <= 0
            ):
                raise InvalidInputError(
                    f"{name} must be a number > 0, got {value!r}. "
                    "To switch rate limiting off, use RateLimits.unlimited()"
                )
        for name in ("read_burst", "modify_burst"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be an int >= 1, got {value!r}")

    @classmethod
    def unlimited(cls) -> RateLimits:
        """Limits that never make a call wait."""
        return cls(read_per_s=math.inf, modify_per_s=math.inf)

    @property
    def is_unlimited(self) -> bool:
        """Whether both buckets refill infinitely fast (no pacing at all)."""
        return math.isinf(self.read_per_s) and math.isinf(self.modify_per_s)


#: Seconds of jitter between taking a token here and ECS counting the request that each
#: client-side bucket absorbs (see `_bucket`).
JITTER_ALLOWANCE_S = 0.1


def _bucket(per_s: float, burst: int) -> AsyncLimiter | None:
    if math.isinf(per_s):
        return None
    # A token taken here is counted by ECS a moment later, and that moment varies (the first
    # request of a run pays for its connection, a busy event loop sends late, the network
    # jitters). A bucket that matched ECS's exactly would now and then be a fraction of a token
    # ahead of ECS's and be throttled (benchmarks/ratelimits.py saw one ThrottlingException
    # per fleet run). So each bucket holds back the tokens that JITTER_ALLOWANCE_S of refill
    # brings (4 of the modify bucket's 100, 2 of the read bucket's), at most a tenth of its
    # burst; a long run pays for it once: 0.1 s.
    reserve = min(math.ceil(per_s * JITTER_ALLOWANCE_S), burst // 10)
    capacity = burst - reserve
    return AsyncLimiter(max_rate=capacity, time_period=capacity / per_s)


class RateLimiter:
    """The live buckets of one client; the only place where calls wait for capacity."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets: dict[CallKind, AsyncLimiter | None] = {
            "read": _bucket(limits.read_per_s, limits.read_burst),
            "modify": _bucket(limits.modify_per_s, limits.modify_burst),
        }

    @staticmethod
    def kind_of(operation: str) -> CallKind:
        """Which bucket an ECS operation draws from (unknown operations count as modify)."""
        return "read" if operation in READ_OPERATIONS else "modify"

    async def acquire(self, operation: str) -> None:
        """Wait until the bucket for ``operation`` has a token, then take it."""
        bucket = self._buckets[self.kind_of(operation)]
        if bucket is not None:
            await bucket.acquire()
