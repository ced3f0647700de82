"""Client-side rate limits and throttling, measured where it counts: at the server.

The buckets here are small (burst 5, 20 per second) so that pacing shows within a second; the
arithmetic is the same at ECS's 100 / 20 and 100 / 40.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from drain_support import ServerSide, client, instant_retries, watch
from structlog.testing import capture_logs

from ecs_safe import EcsSafeClient, RateLimits, RetryConfig, ThrottlingException
from ecs_safe.local import LocalEcs

CLUSTER = "paced"
BURST = 5
RATE = 20.0
CALLS = 25
# The server runs in this process: a request reaches it up to this much later than its token
# was taken (GIL, thread scheduling), so arrivals bunch up or spread out by as much.
JITTER = 0.15
READS_PACED = RateLimits(read_per_s=RATE, read_burst=BURST, modify_per_s=math.inf)
MODIFIES_PACED = RateLimits(read_per_s=math.inf, modify_per_s=RATE, modify_burst=BURST)


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    return ecs_env


async def warm_up(ecs: EcsSafeClient, arn: str) -> None:
    """Pay the client's one-time costs (endpoint, signing) before anything is timed.

    Otherwise the first request reaches the server late and the measured span looks shorter
    than the bucket made it. Then wait until the bucket is full again.
    """
    await ecs.describe_container_instances([arn], cluster=CLUSTER)
    await asyncio.sleep(BURST / RATE * 2)


def assert_paced(server: ServerSide) -> None:
    """The server saw `CALLS` requests no faster than a `BURST` / `RATE` bucket lets through."""
    starts = server.starts
    assert len(starts) == CALLS
    # Everything beyond the burst waits for refills: (calls - burst) / rate seconds at least.
    assert starts[-1] - starts[0] >= (CALLS - BURST) / RATE - JITTER
    # No window holds more than a full bucket plus what refills during it.
    for window in (0.25, 0.5):
        assert server.max_in_window(window) <= BURST + RATE * (window + JITTER)


async def test_reads_are_paced_by_the_read_bucket(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    async with client(env, rate_limits=READS_PACED) as ecs:
        await warm_up(ecs, arn)
        server = watch(monkeypatch, env, "describe_container_instances")
        await asyncio.gather(
            *(ecs.describe_container_instances([arn], cluster=CLUSTER) for _ in range(CALLS))
        )
    assert_paced(server)
    # The burst goes through at once.
    starts = server.starts
    assert starts[BURST - 1] - starts[0] < JITTER


async def test_a_fleet_run_is_paced_by_the_modify_bucket(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = env.register_instances(CLUSTER, CALLS)
    async with client(env, rate_limits=MODIFIES_PACED) as ecs:
        await warm_up(ecs, arns[0])
        server = watch(monkeypatch, env, "deregister_container_instance")
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, concurrency=CALLS)
    assert batch.ok
    assert_paced(server)


async def test_one_bucket_is_shared_by_everything_a_client_reads(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    async with client(env, rate_limits=READS_PACED) as ecs:
        await warm_up(ecs, arn)
        describes = watch(monkeypatch, env, "describe_container_instances")
        lists = watch(monkeypatch, env, "list_tasks")
        # Each list_tasks is two ListTasks requests (desired RUNNING, then STOPPED): 5 + 20.
        await asyncio.gather(
            *(ecs.describe_container_instances([arn], cluster=CLUSTER) for _ in range(5)),
            *(ecs.list_tasks(arn, cluster=CLUSTER) for _ in range(10)),
        )
    both = ServerSide(spans=describes.spans + lists.spans)
    assert_paced(both)


async def test_reads_do_not_wait_for_modify_tokens(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    limits = RateLimits(read_per_s=math.inf, modify_per_s=1.0, modify_burst=1)
    async with client(env, rate_limits=limits) as ecs:
        await ecs.drain([arn], cluster=CLUSTER)  # takes the only modify token
        started = time.monotonic()
        for _ in range(10):
            await ecs.describe_container_instances([arn], cluster=CLUSTER)
        assert time.monotonic() - started < 0.7


async def test_unlimited_does_not_wait(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    async with client(env, rate_limits=RateLimits.unlimited()) as ecs:
        started = time.monotonic()
        await asyncio.gather(
            *(ecs.describe_container_instances([arn], cluster=CLUSTER) for _ in range(CALLS))
        )
        # From a burst-5, 20/s bucket these would take (25 - 5) / 20 = 1 s.
        assert time.monotonic() - started < 0.7


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
