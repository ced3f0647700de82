"""Client-side rate limits shaped like ECS's own request throttling, and adaptive to it.

ECS throttles per account and Region with token buckets: cluster-resource *modify* calls
(DeregisterContainerInstance, UpdateContainerInstancesState, StopTask, ...) burst 100 and refill
40/s; cluster-resource *read* calls (DescribeContainerInstances, DescribeTasks, ListTasks, ...)
burst 100 and refill 20/s. One `EcsSafeClient` holds one bucket of each kind and every call it
makes, retries included, takes a token first, so a fleet run paces itself instead of provoking
``ThrottlingException``.

Two layers, one bucket:

- *proactive*: a token bucket of capacity ``burst`` refilled at ``per_s`` (`RateLimits`), the
  shape of ECS's own;
- *reactive* (AIMD, the idea of botocore's adaptive retry mode): ECS's bucket is shared with
  every other tool of the account, so a throttle says that less is left than this client
  thought. Every throttle empties the bucket (ECS said its own is empty). A throttle that
  confirms another (within `CONFIRM_WINDOW_S`; a lone one is scheduling jitter) multiplies
  the bucket's rate by ``throttle_decrease``, once per throttled window rather than once per
  throttled request, and the bucket then holds no burst until it has recovered: the rate grows
  back additively, by ``throttle_recovery`` of ``per_s`` each second, to ``per_s``.

The transport reports each request's end through one hook (`RateLimiter.slot`), so the
retry loop never needs to know about pacing. Why not a library: aiolimiter (the proactive
bucket before the reactive layer) has no public way to lower a rate or empty a bucket, and
botocore's ``ClientRateLimiter`` is synchronous (a ``threading`` lock and ``time.sleep``,
which would block the event loop). The bucket below is forty lines and tested with an
injected clock (tests/test_aimd.py).

Other AWS services meter separately (EC2 and EC2 Auto Scaling have their own buckets per
account and Region), so the limiter keeps one pair of buckets per service: a call takes a token
from the bucket of its (service, kind). The ECS buckets follow `RateLimits`; the others follow
the shapes in `SERVICE_BUCKETS` (adapting the same way: EC2's ``RequestLimitExceeded`` and Auto
Scaling's ``Throttling`` are `ThrottlingException` too) and are switched off with the rest by
`RateLimits.unlimited()`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Literal

from ecs_safe._constants import (
    ECS_MODIFY_OPERATIONS,
    ECS_READ_OPERATIONS,
    MAX_POOL_CONNECTIONS,
    MUTATING_OPERATIONS,
    SERVICE_BUCKETS,
    SQS_MODIFY_OPERATIONS,
)
from ecs_safe.errors import InvalidInputError, ThrottlingException

__all__ = [
    "MODIFY_OPERATIONS",
    "READ_OPERATIONS",
    "SERVICE_BUCKETS",
    "CallKind",
    "RateLimiter",
    "RateLimits",
    "TokenBucket",
]

CallKind = Literal["read", "modify"]

#: The ECS operations that count against the modify bucket (`ecs_safe._constants`).
MODIFY_OPERATIONS: Final = ECS_MODIFY_OPERATIONS
#: The ECS operations that count against the read bucket (`ecs_safe._constants`).
READ_OPERATIONS: Final = ECS_READ_OPERATIONS

#: The lowest rate a throttled bucket falls to, in requests per second (botocore's adaptive
#: mode uses the same floor): it must still probe, or it could never learn that ECS has room.
MIN_ADAPTIVE_RATE: Final = 0.5
#: Seconds within which a second throttle confirms the first: a lone throttle only empties
#: the bucket; one that follows another within this time also lowers the rate.
CONFIRM_WINDOW_S: Final = 5.0
# Sends remembered to measure the rate actually sent (see `TokenBucket.throttled`).
_SENT_WINDOW: Final = 16


def _check_fraction(name: str, value: object, *, upper: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0 < value <= upper
    ):
        raise InvalidInputError(f"{name} must be a number > 0 and <= {upper}, got {value!r}")


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
        adaptive: react to throttling (AIMD): a `ThrottlingException` lowers the rate of the
            bucket it came from, which then recovers slowly. ``False`` keeps the rates fixed.
        throttle_decrease: the factor a confirmed throttle multiplies the bucket's rate by
            (botocore's adaptive mode uses 0.7, which measured slower here: a run that shares
            20% of the account's bucket needs 80% of the rate, not 70%); below 1.
        throttle_recovery: the share of ``per_s`` a slowed bucket regains each second
            (``0.025``: from 85% back to the full rate in 6 s without another throttle).
    """

    read_per_s: float = 20.0
    read_burst: int = 100
    modify_per_s: float = 40.0
    modify_burst: int = 100
    adaptive: bool = True
    throttle_decrease: float = 0.85
    throttle_recovery: float = 0.025

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
        if not isinstance(self.adaptive, bool):
            raise InvalidInputError(f"adaptive must be True or False, got {self.adaptive!r}")
        _check_fraction("throttle_decrease", self.throttle_decrease, upper=0.99)
        _check_fraction("throttle_recovery", self.throttle_recovery, upper=1.0)

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

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


def _loop_time() -> float:
    """The running event loop's clock; `time.monotonic` outside a loop (the same clock)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


class TokenBucket:
    """One token bucket with an adaptive rate (see the module docstring).

    Tokens may go negative: a caller that finds none reserves the next one and sleeps until
    it is due, so concurrent callers are served in the order they came, without a lock.

    Args:
        per_s: the configured rate, the most the bucket ever refills at.
        capacity: the most tokens it holds (its burst).
        decrease: the factor a throttle multiplies the rate by; ``None``: never adapt.
        recovery: the share of ``per_s`` regained per second after a throttle.
        clock: monotonic seconds (tests inject a fake one); the running loop's clock by default.
        sleep: how to wait (injected by tests).
    """

    def __init__(
        self,
        per_s: float,
        capacity: int,
        *,
        decrease: float | None = None,
        recovery: float = 0.05,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.per_s = per_s
        self.capacity = capacity
        self.decrease = decrease
        self.recovery = recovery
        # The event loop's clock by default: the one `asyncio.sleep` waits on, so a bucket
        # and its sleeps agree on any loop (a test's virtual clock included).
        self._clock = clock or _loop_time
        self._sleep = sleep
        self.tokens = float(capacity)
        self._updated = self._clock()
        #: How many takes found the bucket empty and had to wait for a refill.
        self.waits = 0
        # AIMD: the rate set by the last throttle, and when; recovery is linear from there.
        self._base = per_s
        self._since = -math.inf
        # When the bucket last reacted to a throttle (emptied, and maybe slowed down).
        self._reacted = -math.inf
        #: Throttles that lowered the rate (one per throttled window), for reports.
        self.decreases = 0
        self._sent: deque[float] = deque(maxlen=_SENT_WINDOW)

    def rate(self, now: float | None = None) -> float:
        """The rate the bucket refills at now: ``per_s``, or less while recovering."""
        if self._base >= self.per_s:
            return self.per_s
        now = self._clock() if now is None else now
        rate = self._base + self.recovery * self.per_s * (now - self._since)
        if rate >= self.per_s:
            self._base = self.per_s  # recovered: bursts are allowed again from here on
            return self.per_s
        return rate

    def _refill(self, now: float) -> float:
        rate = self.rate(now)
        # While recovering, the bucket holds at most one token: the account's bucket is being
        # shared, and a burst saved up at a slow rate would spend what others need.
        cap = self.capacity if rate >= self.per_s else 1.0
        if self.tokens < cap:
            self.tokens = min(cap, self.tokens + (now - self._updated) * rate)
        self._updated = now
        return rate

    async def take(self) -> None:
        """Take a token, waiting until one is due."""
        now = self._clock()
        rate = self._refill(now)
        self.tokens -= 1.0
        due = now
        if self.tokens < 0:
            self.waits += 1
            due = now + -self.tokens / rate
            await self._sleep(due - now)
        self._sent.append(due)

    def sent_rate(self) -> float | None:
        """Requests per second over the last few sends, or ``None`` with too few to tell."""
        if len(self._sent) < 2:
            return None
        span = self._sent[-1] - self._sent[0]
        return (len(self._sent) - 1) / span if span > 0 else None

    def throttled(self, started: float) -> bool:
        """React to a throttle of a request that took its token at ``started``.

        Every throttle empties the bucket (ECS said its own is empty: the two are in step
        again). The rate falls only when the throttle confirms an earlier one (within
        `CONFIRM_WINDOW_S`): a lone throttle is what scheduling jitter causes now and then
        (a request that reached ECS late, bunched with the next), and slowing a whole run
        for it would cost more than the throttle did; throttles that keep coming mean that
        ECS's bucket is shared and less is left than ``per_s``. A throttle of a request that
        set out before the last reaction says nothing new (it was sent at the old pace), so
        the bucket reacts once per throttled window, not once per request that was in
        flight. Returns whether the rate was lowered.
        """
        if self.decrease is None or started <= self._reacted:
            return False
        now = self._clock()
        rate = self._refill(now)
        self.tokens = min(self.tokens, 0.0)
        confirmed = now - self._reacted <= CONFIRM_WINDOW_S
        self._reacted = now
        if not confirmed:
            return False
        sent = self.sent_rate()
        # Lower what was really sent, not a rate the client never reached (botocore does the
        # same): a client sending 5/s under a 20/s bucket must go below 5/s to help.
        basis = min(rate, sent) if sent is not None else rate
        self._base = max(MIN_ADAPTIVE_RATE, min(self.per_s, basis) * self.decrease)
        self._since = now
        self.decreases += 1
        return True


def _bucket(
    per_s: float,
    burst: int,
    limits: RateLimits,
    clock: Clock,
    sleep: Sleep,
) -> TokenBucket | None:
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
    return TokenBucket(
        per_s,
        burst - reserve,
        decrease=limits.throttle_decrease if limits.adaptive else None,
        recovery=limits.throttle_recovery,
        clock=clock,
        sleep=sleep,
    )


class _Slot:
    """One request's hold on its bucket: taken on entry, told of a throttle on exit."""

    __slots__ = ("_bucket", "_held", "_limiter", "_operation", "_service", "_started")

    def __init__(self, limiter: RateLimiter, operation: str, service: str) -> None:
        self._limiter = limiter
        self._operation = operation
        self._service = service
        self._bucket: TokenBucket | None = None
        self._held: asyncio.Semaphore | None = None
        self._started = 0.0

    async def __aenter__(self) -> None:
        limiter = self._limiter
        bucket = limiter.bucket(self._operation, self._service)
        if bucket is not None:
            # A connection first, the token after: a token taken while the request then
            # waits for one of the pool's connections is counted by ECS much later, and a
            # backlog of such requests reaches ECS in a bunch that its bucket, capped at
            # its burst while they waited, refuses (1,000 deregistrations at once were
            # throttled so on a loaded machine).
            held = limiter.in_flight(self._service)
            await held.acquire()
            try:
                await limiter.acquire(self._operation, self._service)
            except BaseException:
                held.release()
                raise
            self._held = held
        self._bucket = bucket
        self._started = limiter.clock()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None
        if self._bucket is not None and isinstance(exc, ThrottlingException):
            self._bucket.throttled(self._started)


class RateLimiter:
    """The live buckets of one client; the only place where calls wait for capacity.

    Buckets are keyed by (service, kind) and made on first use, so a client that only talks
    to ECS holds only ECS's two.

    Args:
        limits: the buckets' shapes and how they adapt.
        clock: monotonic seconds (tests inject a fake one).
        sleep: how a call waits (tests inject one that advances the fake clock).
    """

    def __init__(
        self,
        limits: RateLimits,
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = limits
        #: The clock the buckets run on (the running loop's by default).
        self.clock: Clock = clock or _loop_time
        self._sleep = sleep
        self._in_flight: dict[str, asyncio.Semaphore] = {}
        self._buckets: dict[tuple[str, CallKind], TokenBucket | None] = {
            ("ecs", "read"): _bucket(
                limits.read_per_s, limits.read_burst, limits, self.clock, sleep
            ),
            ("ecs", "modify"): _bucket(
                limits.modify_per_s, limits.modify_burst, limits, self.clock, sleep
            ),
        }

    def in_flight(self, service: str) -> asyncio.Semaphore:
        """The bound on requests of ``service`` holding a token at once (the pool's size)."""
        held = self._in_flight.get(service)
        if held is None:
            held = self._in_flight[service] = asyncio.Semaphore(MAX_POOL_CONNECTIONS)
        return held

    @staticmethod
    def kind_of(operation: str, service: str = "ecs") -> CallKind:
        """Which bucket an operation draws from.

        For ECS, the read operations are listed and anything else (an operation added later
        included) counts as modify; for the other services, the mutating operations are
        listed and anything else counts as read, as their describes do (SQS's modify calls
        are not audited, so they have their own list).
        """
        if service == "ecs":
            return "read" if operation in READ_OPERATIONS else "modify"
        if operation in MUTATING_OPERATIONS or operation in SQS_MODIFY_OPERATIONS:
            return "modify"
        return "read"

    def _bucket_for(self, service: str, kind: CallKind) -> TokenBucket | None:
        key = (service, kind)
        if key not in self._buckets:
            shape = SERVICE_BUCKETS.get(key)
            self._buckets[key] = (
                None
                if shape is None or self.limits.is_unlimited
                else _bucket(*shape, self.limits, self.clock, self._sleep)
            )
        return self._buckets[key]

    def bucket(self, operation: str, service: str = "ecs") -> TokenBucket | None:
        """The bucket ``operation`` of ``service`` draws from (``None``: not limited)."""
        return self._bucket_for(service, self.kind_of(operation, service))

    async def acquire(self, operation: str, service: str = "ecs") -> None:
        """Wait until the bucket for ``operation`` of ``service`` has a token, then take it."""
        bucket = self.bucket(operation, service)
        if bucket is not None:
            await bucket.take()

    def slot(self, operation: str, service: str = "ecs") -> _Slot:
        """``async with limiter.slot(op):`` around one request: the transport's one hook.

        Entering takes a token (`acquire`); leaving with a `ThrottlingException` lowers that
        bucket's rate (`TokenBucket.throttled`).
        """
        return _Slot(self, operation, service)
