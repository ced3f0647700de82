"""Tests for ecs_safe.ratelimit: client-side token buckets shaped like ECS's own."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from ecs_safe.errors import InvalidInputError
from ecs_safe.ratelimit import MODIFY_OPERATIONS, READ_OPERATIONS, RateLimiter, RateLimits

# Timing bounds: the lower bound proves a wait happened; the upper bound only catches a gross
# error (machines running the suite are noisy).
SLACK = 0.9
CEILING = 5.0


async def _take(limiter: RateLimiter, operation: str, count: int) -> float:
    start = time.monotonic()
    for _ in range(count):
        await limiter.acquire(operation)
    return time.monotonic() - start


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


async def test_burst_is_free_then_calls_are_paced() -> None:
    limiter = RateLimiter(RateLimits(read_per_s=50.0, read_burst=5))
    burst = await _take(limiter, "DescribeTasks", 5)
    assert burst < 0.05
    # Ten more tokens at 50/s: about 0.2 s.
    paced = await _take(limiter, "DescribeTasks", 10)
    assert paced >= 0.2 * SLACK
    assert paced < CEILING


async def test_pacing_holds_for_concurrent_callers() -> None:
    limiter = RateLimiter(RateLimits(modify_per_s=50.0, modify_burst=5))
    start = time.monotonic()
    await asyncio.gather(*(limiter.acquire("StopTask") for _ in range(15)))
    elapsed = time.monotonic() - start
    assert elapsed >= 0.2 * SLACK
    assert elapsed < CEILING


async def test_read_and_modify_buckets_are_independent() -> None:
    limits = RateLimits(read_per_s=50.0, read_burst=5, modify_per_s=50.0, modify_burst=5)
    limiter = RateLimiter(limits)
    await _take(limiter, "DescribeContainerInstances", 5)  # read bucket now empty
    # The modify bucket is still full: its burst costs nothing.
    assert await _take(limiter, "DeregisterContainerInstance", 5) < 0.05
    # And the read bucket is still empty: the next read waits.
    assert await _take(limiter, "ListTasks", 3) >= 0.06 * SLACK


async def test_each_limiter_has_its_own_buckets() -> None:
    limits = RateLimits(read_per_s=50.0, read_burst=5)
    first, second = RateLimiter(limits), RateLimiter(limits)
    await _take(first, "DescribeTasks", 5)
    assert await _take(second, "DescribeTasks", 5) < 0.05


async def test_unlimited_never_waits() -> None:
    limiter = RateLimiter(RateLimits.unlimited())
    elapsed = await _take(limiter, "DescribeTasks", 2000) + await _take(
        limiter, "DeregisterContainerInstance", 2000
    )
    assert elapsed < 0.5


async def test_one_side_unlimited() -> None:
    limiter = RateLimiter(RateLimits(read_per_s=math.inf, modify_per_s=50.0, modify_burst=2))
    assert await _take(limiter, "DescribeTasks", 1000) < 0.5
    assert await _take(limiter, "StopTask", 7) >= 0.1 * SLACK
