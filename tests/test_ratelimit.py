"""Tests for ecs_safe.ratelimit: client-side token buckets shaped like ECS's own."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from clock_support import run_virtual

from ecs_safe.errors import InvalidInputError
from ecs_safe.ratelimit import MODIFY_OPERATIONS, READ_OPERATIONS, RateLimiter, RateLimits

# Pacing is timed on a virtual clock (`clock_support.run_virtual`): ``loop.time()``, which the
# buckets go by, moves only while the loop waits for a timer, so the elapsed time is exactly
# the waiting the buckets asked for, on any machine. Only float rounding is allowed for.
EXACT = 1e-6


async def _take(limiter: RateLimiter, operation: str, count: int) -> float:
    """Take ``count`` tokens one after the other; the (virtual) seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(count):
        await limiter.acquire(operation)
    return loop.time() - start


# ------------------------------------------------------------------ RateLimits


def test_defaults_are_ecs_buckets() -> None:
    limits = RateLimits()
    assert (limits.read_per_s, limits.read_burst) == (20.0, 100)
    assert (limits.modify_per_s, limits.modify_burst) == (40.0, 100)
    assert not limits.is_unlimited


def test_unlimited() -> None:
    limits = RateLimits.unlimited()
    assert limits.is_unlimited
    assert math.isinf(limits.read_per_s)
    assert math.isinf(limits.modify_per_s)


def test_only_one_side_unlimited_is_not_unlimited() -> None:
    assert not RateLimits(read_per_s=math.inf).is_unlimited


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"read_per_s": 0}, "read_per_s"),
        ({"read_per_s": -1.0}, "read_per_s"),
        ({"modify_per_s": math.nan}, "modify_per_s"),
        ({"modify_per_s": -math.inf}, "modify_per_s"),
        ({"read_per_s": True}, "read_per_s"),
        ({"read_per_s": "20"}, "read_per_s"),
        ({"read_per_s": None}, "read_per_s"),
        ({"read_burst": 0}, "read_burst"),
        ({"read_burst": -5}, "read_burst"),
        ({"modify_burst": 1.5}, "modify_burst"),
        ({"modify_burst": 100.0}, "modify_burst"),
        ({"modify_burst": True}, "modify_burst"),
        ({"modify_burst": "100"}, "modify_burst"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        RateLimits(**kwargs)
    assert isinstance(exc_info.value, ValueError)
    assert named in str(exc_info.value)


def test_zero_rate_message_points_at_unlimited() -> None:
    with pytest.raises(InvalidInputError, match=r"RateLimits\.unlimited\(\)"):
        RateLimits(read_per_s=0)


def test_limits_are_frozen() -> None:
    limits = RateLimits()
    with pytest.raises(AttributeError):
        limits.read_per_s = 1.0  # type: ignore[misc]


# ------------------------------------------------------------------ classification


@pytest.mark.parametrize(
    "operation",
    [
        "DescribeContainerInstances",
        "DescribeTasks",
        "ListTasks",
        "DescribeServices",
        "ListContainerInstances",
    ],
)
def test_read_operations(operation: str) -> None:
    assert RateLimiter.kind_of(operation) == "read"
    assert operation in READ_OPERATIONS


@pytest.mark.parametrize(
    "operation", ["DeregisterContainerInstance", "UpdateContainerInstancesState", "StopTask"]
)
def test_modify_operations(operation: str) -> None:
    assert RateLimiter.kind_of(operation) == "modify"
    assert operation in MODIFY_OPERATIONS


def test_unknown_operation_counts_as_modify() -> None:
    # Erring towards the stricter-to-spend bucket: an unknown call could be a mutation.
    assert RateLimiter.kind_of("SomethingNew") == "modify"


def test_read_and_modify_sets_are_disjoint() -> None:
    assert not READ_OPERATIONS & MODIFY_OPERATIONS


# ------------------------------------------------------------------ pacing
# A bucket of burst 5 at 50/s holds back no jitter tokens (a tenth of 5 rounds down to 0), so
# its arithmetic is plain: the burst is free, each further token waits 1/50 s.


def test_burst_is_free_then_calls_are_paced() -> None:
    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter(RateLimits(read_per_s=50.0, read_burst=5))
        return await _take(limiter, "DescribeTasks", 5), await _take(limiter, "DescribeTasks", 10)

    burst, paced = run_virtual(scenario())
    assert burst == 0
    # Ten more tokens at 50/s: 0.2 s.
    assert paced == pytest.approx(0.2, abs=EXACT)


def test_pacing_holds_for_concurrent_callers() -> None:
    async def scenario() -> list[float]:
        limiter = RateLimiter(RateLimits(modify_per_s=50.0, modify_burst=5))
        loop = asyncio.get_running_loop()

        async def one() -> float:
            await limiter.acquire("StopTask")
            return loop.time()

        return await asyncio.gather(*(one() for _ in range(15)))

    granted = sorted(run_virtual(scenario()))
    # Five at once, then one every 1/50 s: the fifteenth at 10 / 50 = 0.2 s.
    assert granted[:5] == [0.0] * 5
    assert granted[5:] == pytest.approx([n / 50 for n in range(1, 11)], abs=EXACT)


def test_read_and_modify_buckets_are_independent() -> None:
    async def scenario() -> tuple[float, float]:
        limits = RateLimits(read_per_s=50.0, read_burst=5, modify_per_s=50.0, modify_burst=5)
        limiter = RateLimiter(limits)
        await _take(limiter, "DescribeContainerInstances", 5)  # read bucket now empty
        return (
            await _take(limiter, "DeregisterContainerInstance", 5),
            await _take(limiter, "ListTasks", 3),
        )

    modify, read = run_virtual(scenario())
    # The modify bucket is still full: its burst costs nothing.
    assert modify == 0
    # And the read bucket is still empty: the next three reads wait 3 / 50 s.
    assert read == pytest.approx(0.06, abs=EXACT)


def test_each_limiter_has_its_own_buckets() -> None:
    async def scenario() -> float:
        limits = RateLimits(read_per_s=50.0, read_burst=5)
        first, second = RateLimiter(limits), RateLimiter(limits)
        await _take(first, "DescribeTasks", 5)
        return await _take(second, "DescribeTasks", 5)

    assert run_virtual(scenario()) == 0


def test_unlimited_never_waits() -> None:
    async def scenario() -> float:
        limiter = RateLimiter(RateLimits.unlimited())
        return await _take(limiter, "DescribeTasks", 2000) + await _take(
            limiter, "DeregisterContainerInstance", 2000
        )

    assert run_virtual(scenario()) == 0


def test_one_side_unlimited() -> None:
    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter(RateLimits(read_per_s=math.inf, modify_per_s=50.0, modify_burst=2))
        return await _take(limiter, "DescribeTasks", 1000), await _take(limiter, "StopTask", 7)

    reads, modifies = run_virtual(scenario())
    assert reads == 0
    assert modifies == pytest.approx(5 / 50, abs=EXACT)


def test_ecs_buckets_hold_back_their_jitter_allowance() -> None:
    # ECS's 100/40 modify bucket: 4 tokens held back, 96 free, then 40 a second.
    async def scenario() -> tuple[float, float]:
        limiter = RateLimiter(RateLimits())
        return (
            await _take(limiter, "DeregisterContainerInstance", 96),
            await _take(limiter, "DeregisterContainerInstance", 40),
        )

    burst, second = run_virtual(scenario())
    assert burst == 0
    assert second == pytest.approx(1.0, abs=EXACT)
