"""Client-side rate limits shaped like ECS's own request throttling.

ECS throttles per account and Region with token buckets: cluster-resource *modify* calls
(DeregisterContainerInstance, UpdateContainerInstancesState, StopTask, ...) burst 100 and refill
40/s; cluster-resource *read* calls (DescribeContainerInstances, DescribeTasks, ListTasks, ...)
burst 100 and refill 20/s. One `EcsSafeClient` holds one bucket of each kind and every call it
makes, retries included, takes a token first, so a fleet run paces itself instead of provoking
``ThrottlingException``. The buckets are `aiolimiter.AsyncLimiter` (a leaky bucket is a token
bucket seen from the other side): capacity ``burst``, drained at ``per_s``.

Other AWS services meter separately (EC2 and EC2 Auto Scaling have their own buckets per
account and Region), so the limiter keeps one pair of buckets per service: a call takes a token
from the bucket of its (service, kind). The ECS buckets follow `RateLimits`; the others follow
the shapes in `SERVICE_BUCKETS` and are switched off with the rest by `RateLimits.unlimited()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from aiolimiter import AsyncLimiter

from ecs_safe._constants import (
    ECS_MODIFY_OPERATIONS,
    ECS_READ_OPERATIONS,
    MUTATING_OPERATIONS,
    SERVICE_BUCKETS,
)
from ecs_safe.errors import InvalidInputError

__all__ = [
    "MODIFY_OPERATIONS",
    "READ_OPERATIONS",
    "SERVICE_BUCKETS",
    "CallKind",
    "RateLimiter",
    "RateLimits",
]

CallKind = Literal["read", "modify"]

#: The ECS operations that count against the modify bucket (`ecs_safe._constants`).
MODIFY_OPERATIONS: Final = ECS_MODIFY_OPERATIONS
#: The ECS operations that count against the read bucket (`ecs_safe._constants`).
READ_OPERATIONS: Final = ECS_READ_OPERATIONS


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
    """The live buckets of one client; the only place where calls wait for capacity.

    Buckets are keyed by (service, kind) and made on first use, so a client that only talks
    to ECS holds only ECS's two.
    """

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, CallKind], AsyncLimiter | None] = {
            ("ecs", "read"): _bucket(limits.read_per_s, limits.read_burst),
            ("ecs", "modify"): _bucket(limits.modify_per_s, limits.modify_burst),
        }

    @staticmethod
    def kind_of(operation: str, service: str = "ecs") -> CallKind:
        """Which bucket an operation draws from.

        For ECS, the read operations are listed and anything else (an operation added later
        included) counts as modify; for the other services, the mutating operations are
        listed and anything else counts as read, as their describes do.
        """
        if service == "ecs":
            return "read" if operation in READ_OPERATIONS else "modify"
        return "modify" if operation in MUTATING_OPERATIONS else "read"

    def _bucket_for(self, service: str, kind: CallKind) -> AsyncLimiter | None:
        key = (service, kind)
        if key not in self._buckets:
            shape = SERVICE_BUCKETS.get(key)
            self._buckets[key] = (
                None if shape is None or self.limits.is_unlimited else _bucket(*shape)
            )
        return self._buckets[key]

    async def acquire(self, operation: str, service: str = "ecs") -> None:
        """Wait until the bucket for ``operation`` of ``service`` has a token, then take it."""
        bucket = self._bucket_for(service, self.kind_of(operation, service))
        if bucket is not None:
            await bucket.acquire()
