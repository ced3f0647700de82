"""The reactive (AIMD) layer of the rate limiter, on an injected clock: no wall-clock timing.

A throttle lowers the rate of the bucket it came from multiplicatively (once per throttled
window), empties it, and the rate then recovers additively to the configured one.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from drain_support import instant_retries

from ecs_safe import RateLimits, RetryConfig, ThrottlingException
from ecs_safe._calls import EcsCalls
from ecs_safe._transport import Transport
from ecs_safe.errors import InvalidInputError, ServerException
from ecs_safe.local import LocalEcs
from ecs_safe.ratelimit import CONFIRM_WINDOW_S, MIN_ADAPTIVE_RATE, RateLimiter, TokenBucket


class FakeClock:
    """Monotonic seconds that move only when a caller sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def bucket(clock: FakeClock, *, per_s: float = 10.0, capacity: int = 5) -> TokenBucket:
    return TokenBucket(per_s, capacity, decrease=0.5, recovery=0.1, clock=clock, sleep=clock.sleep)


async def take(b: TokenBucket, count: int) -> None:
    for _ in range(count):
        await b.take()


def confirmed_throttle(clock: FakeClock, b: TokenBucket) -> None:
    """Two throttles a moment apart: the second confirms the first and lowers the rate."""
    assert not b.throttled(clock())
    clock.now += 1e-9  # a request sent just after the first reaction, throttled at once
    assert b.throttled(clock())


async def test_a_full_bucket_bursts_then_paces_at_its_rate() -> None:
    clock = FakeClock()
    b = bucket(clock)
    await take(b, 5)
    assert clock.slept == []
    await take(b, 3)
    assert clock.slept == pytest.approx([0.1, 0.1, 0.1])


async def test_a_lone_throttle_empties_the_bucket_but_keeps_the_rate() -> None:
    clock = FakeClock()
    b = bucket(clock)
    await take(b, 2)  # three tokens left
    assert not b.throttled(clock())
    assert b.rate() == 10.0
    assert b.decreases == 0
    # No token is left: the next call waits a full interval of the unchanged rate.
    await b.take()
    assert clock.slept == pytest.approx([0.1])


async def test_a_confirmed_throttle_halves_the_rate() -> None:
    clock = FakeClock()
    b = bucket(clock)
    await take(b, 2)
    confirmed_throttle(clock, b)
    assert b.rate() == pytest.approx(5.0)
    assert b.decreases == 1
    await b.take()
    assert clock.slept == pytest.approx([0.2], rel=0.01)


async def test_a_throttle_long_after_the_last_is_lone_again() -> None:
    clock = FakeClock()
    b = bucket(clock)
    assert not b.throttled(clock())
    clock.now += CONFIRM_WINDOW_S + 1
    assert not b.throttled(clock())
    assert b.decreases == 0


async def test_requests_in_flight_at_the_throttle_lower_the_rate_once() -> None:
    clock = FakeClock()
    b = bucket(clock)
    confirmed_throttle(clock, b)
    clock.now += 0.001
    started = clock()
    assert b.rate() == pytest.approx(5.0, rel=0.01)
    await take(b, 1)
    # Four more throttles of requests that set out before the last reaction say nothing new.
    clock.now += 0.01
    b.throttled(clock())
    rate = b.rate()
    assert not any(b.throttled(started) for _ in range(4))
    assert b.decreases == 2
    assert b.rate() == pytest.approx(rate)


async def test_the_rate_recovers_additively_then_bursts_are_allowed_again() -> None:
    clock = FakeClock()
    b = bucket(clock)
    confirmed_throttle(clock, b)
    assert b.rate() == pytest.approx(5.0)
    clock.now += 2.0  # recovery: 10% of 10/s, each second
    assert b.rate() == pytest.approx(7.0)
    # While recovering the bucket keeps no burst: one token at most, however long it idled.
    await b.take()
    await b.take()
    assert clock.slept == pytest.approx([1 / 7.0], rel=0.05)
    clock.now += 10.0
    assert b.rate() == 10.0
    # Recovered: tokens build up to the capacity again at the full rate.
    clock.now += 1.0
    clock.slept.clear()
    await take(b, 5)
    assert clock.slept == []


async def test_the_rate_never_falls_below_the_floor() -> None:
    clock = FakeClock()
    b = bucket(clock)
    for _ in range(20):
        b.throttled(clock())
        clock.now += 0.001
    assert b.decreases == 19
    assert b.rate() >= MIN_ADAPTIVE_RATE
    assert b.rate() < MIN_ADAPTIVE_RATE + 0.01


async def test_the_decrease_starts_from_the_rate_really_sent() -> None:
    clock = FakeClock()
    b = bucket(clock, per_s=100.0, capacity=100)
    # A latency-bound caller: 4 requests a second under a 100/s bucket.
    for _ in range(10):
        await b.take()
        clock.now += 0.25
    confirmed_throttle(clock, b)
    assert b.rate() == pytest.approx(2.0, rel=0.01)  # half of the 4/s it sent, not of 100/s


async def test_without_adaptation_a_throttle_changes_nothing() -> None:
    clock = FakeClock()
    b = TokenBucket(10.0, 5, decrease=None, clock=clock, sleep=clock.sleep)
    assert not b.throttled(clock())
    clock.now += 0.001
    assert not b.throttled(clock())
    assert b.rate() == 10.0
    await take(b, 5)
    assert clock.slept == []


# ----------------------------------------------------------------------------- the limiter


def limiter(clock: FakeClock, **limits: Any) -> RateLimiter:
    return RateLimiter(RateLimits(**limits), clock=clock, sleep=clock.sleep)


async def slot_raising(lim: RateLimiter, operation: str, exc: Exception, **kw: Any) -> None:
    for _ in range(2):  # a lone throttle only empties the bucket: a second confirms it
        if isinstance(lim.clock, FakeClock):
            lim.clock.now += 1e-9  # each request sets out after the last reaction
        with pytest.raises(type(exc)):
            async with lim.slot(operation, **kw):
                raise exc


async def test_a_throttled_slot_slows_its_own_bucket_only() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    read, modify = lim.bucket("DescribeTasks"), lim.bucket("DeregisterContainerInstance")
    assert read is not None
    assert modify is not None
    await slot_raising(lim, "DescribeTasks", ThrottlingException("Rate exceeded"))
    assert read.rate() == pytest.approx(20.0 * 0.85)
    assert modify.rate() == 40.0


async def test_other_errors_leave_the_rate_alone() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    await slot_raising(lim, "DescribeTasks", ServerException("boom"))
    await slot_raising(lim, "DescribeTasks", ValueError("bug"))
    read = lim.bucket("DescribeTasks")
    assert read is not None
    assert read.rate() == 20.0
    assert read.decreases == 0


async def test_ec2_and_auto_scaling_throttles_slow_their_own_buckets() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    # RequestLimitExceeded (EC2) and Throttling (Auto Scaling) are mapped to ThrottlingException.
    await slot_raising(lim, "DescribeInstances", ThrottlingException("x"), service="ec2")
    ec2, ecs = lim.bucket("DescribeInstances", "ec2"), lim.bucket("DescribeTasks")
    assert ec2 is not None
    assert ecs is not None
    assert ec2.decreases == 1
    assert ecs.decreases == 0


async def test_adaptive_false_keeps_the_rates_fixed() -> None:
    clock = FakeClock()
    lim = limiter(clock, adaptive=False)
    await slot_raising(lim, "DescribeTasks", ThrottlingException("Rate exceeded"))
    read = lim.bucket("DescribeTasks")
    assert read is not None
    assert read.rate() == 20.0


async def test_unlimited_has_no_bucket_to_slow() -> None:
    lim = RateLimiter(RateLimits.unlimited())
    await slot_raising(lim, "DescribeTasks", ThrottlingException("Rate exceeded"))
    assert lim.bucket("DescribeTasks") is None


async def test_concurrent_callers_are_served_in_order_at_the_lowered_rate() -> None:
    clock = FakeClock()
    waits: list[float] = []

    async def still(seconds: float) -> None:
        # The clock stands still: every caller reserves its slot at the same instant.
        waits.append(seconds)

    lim = RateLimiter(RateLimits(read_burst=10), clock=clock, sleep=still)
    read = lim.bucket("ListTasks")
    assert read is not None
    confirmed_throttle(clock, read)
    order: list[int] = []

    async def call(n: int) -> None:
        await lim.acquire("ListTasks")
        order.append(n)

    await asyncio.gather(*(call(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]
    # One interval of the lowered rate (17/s) apart: no burst after a throttle.
    assert waits == pytest.approx([n / 17.0 for n in range(1, 6)])


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"throttle_decrease": 1.0}, "throttle_decrease"),
        ({"throttle_decrease": 0}, "throttle_decrease"),
        ({"throttle_decrease": math.nan}, "throttle_decrease"),
        ({"throttle_decrease": True}, "throttle_decrease"),
        ({"throttle_recovery": 0}, "throttle_recovery"),
        ({"throttle_recovery": 1.5}, "throttle_recovery"),
        ({"adaptive": "yes"}, "adaptive"),
    ],
)
def test_bad_adaptation_settings_are_refused(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError, match=named):
        RateLimits(**kwargs)


def test_adaptation_defaults() -> None:
    limits = RateLimits()
    assert (limits.adaptive, limits.throttle_decrease, limits.throttle_recovery) == (
        True,
        0.85,
        0.025,
    )


# ----------------------------------------------------------------------------- end to end


async def test_a_throttle_from_ecs_slows_the_transports_bucket(ecs_env: LocalEcs) -> None:
    """Through the transport: ECS's ThrottlingException reaches the limiter by its one hook."""
    ecs_env.create_cluster("aimd")
    [arn] = ecs_env.register_instances("aimd", 1)
    # Two throttles: the retry of the first is throttled again, which confirms it.
    ecs_env.inject_fault("DescribeContainerInstances", code="ThrottlingException", times=2)
    limiter = RateLimiter(RateLimits())
    config = AioConfig(retries={"total_max_attempts": 1})
    with instant_retries():
        async with ecs_env.session().create_client(
            "ecs",
            region_name=ecs_env.region_name,
            endpoint_url=ecs_env.endpoint_url,
            config=config,
        ) as raw:
            calls = EcsCalls(Transport(raw, retry=RetryConfig(), limiter=limiter))
            [instance] = await calls.describe([arn], "aimd")
    assert instance.container_instance_arn == arn
    assert ecs_env.calls("DescribeContainerInstances") == 3
    read = limiter.bucket("DescribeContainerInstances")
    modify = limiter.bucket("DeregisterContainerInstance")
    assert read is not None
    assert read.decreases == 1
    assert modify is not None
    assert modify.decreases == 0
