"""Client-side rate limits and throttling, seen where it counts: at the server.

The buckets here are small (burst 5, 20 per second); the arithmetic is the same at ECS's
100 / 20 and 100 / 40. Nothing here is timed (a loaded machine would bunch or spread the
arrivals): the pacing arithmetic of a bucket is proven on a virtual clock in test_ratelimit.py,
and these tests show, by counting, that every request the server sees took a token from the
right bucket, of the right shape, before it was sent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any

import pytest
from clock_support import BucketSpy
from drain_support import client, ecs_backend, instant_retries
from structlog.testing import capture_logs

from ecs_safe import RateLimits, RetryConfig, ThrottlingException
from ecs_safe.local import LocalEcs

CLUSTER = "paced"
BURST = 5
RATE = 20.0
CALLS = 25
READS_PACED = RateLimits(read_per_s=RATE, read_burst=BURST, modify_per_s=math.inf)
MODIFIES_PACED = RateLimits(read_per_s=math.inf, modify_per_s=RATE, modify_burst=BURST)


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    return ecs_env


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> BucketSpy:
    return BucketSpy.install(monkeypatch)


def arrivals(
    monkeypatch: pytest.MonkeyPatch, local: LocalEcs, spy: BucketSpy, methods: Iterable[str]
) -> list[int]:
    """For each request reaching the backend's ``methods``: the tokens taken by then."""
    backend = ecs_backend(local)
    seen: list[int] = []
    for method in methods:
        original = getattr(backend, method)

        def wrapper(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(len(spy.taken))  # list.append is atomic: the server is threaded
            return _original(*args, **kwargs)

        monkeypatch.setattr(backend, method, wrapper)
    return seen


def assert_paced(spy: BucketSpy, seen: list[int], limits: RateLimits, kind: str) -> None:
    """Every one of `CALLS` requests took a token first, all from one bucket of ``limits``."""
    assert len(seen) == CALLS
    # The n-th request to arrive found at least n tokens taken: none went out without one.
    assert all(tokens >= n for n, tokens in enumerate(sorted(seen), start=1))
    (bucket,) = spy.buckets()
    assert spy.count(bucket) == CALLS
    per_s = limits.read_per_s if kind == "read" else limits.modify_per_s
    burst = limits.read_burst if kind == "read" else limits.modify_burst
    # Burst 5 holds back no jitter tokens (a tenth of 5 rounds down to 0).
    assert bucket.capacity == burst
    assert bucket.per_s == pytest.approx(per_s)


async def test_reads_are_paced_by_the_read_bucket(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch, spy: BucketSpy
) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    async with client(env, rate_limits=READS_PACED) as ecs:
        seen = arrivals(monkeypatch, env, spy, ["describe_container_instances"])
        await asyncio.gather(
            *(ecs.describe_container_instances([arn], cluster=CLUSTER) for _ in range(CALLS))
        )
    assert_paced(spy, seen, READS_PACED, "read")
    # The burst went through without waiting; beyond it, a call waits only on an empty bucket.
    assert not any(t.waited for t in spy.taken[:BURST])


async def test_a_fleet_run_is_paced_by_the_modify_bucket(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch, spy: BucketSpy
) -> None:
    arns = env.register_instances(CLUSTER, CALLS)
    async with client(env, rate_limits=MODIFIES_PACED) as ecs:
        seen = arrivals(monkeypatch, env, spy, ["deregister_container_instance"])
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, concurrency=CALLS)
    assert batch.ok
    assert_paced(spy, seen, MODIFIES_PACED, "modify")


async def test_one_bucket_is_shared_by_everything_a_client_reads(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch, spy: BucketSpy
) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    async with client(env, rate_limits=READS_PACED) as ecs:
        seen = arrivals(monkeypatch, env, spy, ["describe_container_instances", "list_tasks"])
        # Each list_tasks is two ListTasks requests (desired RUNNING, then STOPPED): 5 + 20.
        await asyncio.gather(
            *(ecs.describe_container_instances([arn], cluster=CLUSTER) for _ in range(5)),
            *(ecs.list_tasks(arn, cluster=CLUSTER) for _ in range(10)),
        )
    assert_paced(spy, seen, READS_PACED, "read")


async def test_reads_do_not_wait_for_modify_tokens(env: LocalEcs, spy: BucketSpy) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    limits = RateLimits(read_per_s=1000.0, read_burst=100, modify_per_s=1.0, modify_burst=1)
    async with client(env, rate_limits=limits) as ecs:
        await ecs.drain([arn], cluster=CLUSTER)  # takes the only modify token
        modify = spy.taken[-1].bucket  # UpdateContainerInstancesState's
        assert modify.capacity == 1
        spy.clear()
        env.reset_calls()
        for _ in range(10):
            await ecs.describe_container_instances([arn], cluster=CLUSTER)
    assert env.calls("DescribeContainerInstances") == 10
    # Every read drew from the read bucket (90 free tokens: none waited), none from the
    # empty modify bucket.
    (read,) = spy.buckets()
    assert read is not modify
    assert spy.count(read) == 10
    assert not any(t.waited for t in spy.taken)


async def test_unlimited_does_not_wait(env: LocalEcs, spy: BucketSpy) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    async with client(env, rate_limits=RateLimits.unlimited()) as ecs:
        env.reset_calls()
        await asyncio.gather(
            *(ecs.describe_container_instances([arn], cluster=CLUSTER) for _ in range(CALLS))
        )
    assert env.calls("DescribeContainerInstances") == CALLS
    # No bucket at all: nothing to wait for.
    assert spy.taken == []


# ----------------------------------------------------------------------------- throttling


async def test_throttling_is_retried_and_never_surfaces_while_attempts_remain(
    env: LocalEcs,
) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.inject_fault("DescribeContainerInstances", code="ThrottlingException", times=4)
    with instant_retries(), capture_logs() as logs:
        async with client(env) as ecs:
            [instance] = await ecs.describe_container_instances([arn], cluster=CLUSTER)
    assert instance.container_instance_arn == arn
    assert env.calls("DescribeContainerInstances") == 5
    retries = [e for e in logs if e["event"] == "ecs_safe.retry.scheduled"]
    assert [e["error_code"] for e in retries] == ["ThrottlingException"] * 4
    assert [e["attempt"] for e in retries] == [1, 2, 3, 4]


async def test_a_429_without_an_aws_code_is_throttling_too(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.inject_fault("DescribeContainerInstances", html=True, http_status=429, times=2)
    with instant_retries():
        async with client(env) as ecs:
            await ecs.describe_container_instances([arn], cluster=CLUSTER)
    assert env.calls("DescribeContainerInstances") == 3


async def test_throttling_that_outlasts_the_attempts_is_a_typed_error(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.inject_fault("DescribeContainerInstances", code="ThrottlingException", times=3)
    with instant_retries():
        async with client(env, retry=RetryConfig(max_attempts=3)) as ecs:
            with pytest.raises(ThrottlingException) as caught:
                await ecs.describe_container_instances([arn], cluster=CLUSTER)
    assert caught.value.retryable
    assert caught.value.operation == "DescribeContainerInstances"
    assert env.calls("DescribeContainerInstances") == 3


async def test_throttling_in_a_fleet_run_is_ridden_out(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 10)
    env.inject_fault("DeregisterContainerInstance", code="ThrottlingException", times=6)
    env.inject_fault("DescribeContainerInstances", code="ThrottlingException", times=2)
    with instant_retries():
        async with client(env) as ecs:
            batch = await ecs.deregister_many(arns, cluster=CLUSTER, concurrency=3)
    assert batch.ok
    assert env.calls("DeregisterContainerInstance") == 16
    assert env.pending_faults() == 0


async def test_throttling_during_a_drain_is_ridden_out(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.inject_fault("UpdateContainerInstancesState", code="ThrottlingException", times=2)
    env.inject_fault("ListTasks", code="ThrottlingException", times=3)
    with instant_retries():
        async with client(env) as ecs:
            result = await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, timeout=2.0, poll_interval=0.05
            )
    assert result.forced is False
    assert env.pending_faults() == 0
