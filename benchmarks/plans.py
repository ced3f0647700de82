"""Plans: a dry run of an idle fleet next to describing it alone, and fetching many task lists.

1. ``deregister_many(..., dry_run=True)`` of N idle instances (the default policy), against
   a plain-aiobotocore loop that only describes them, 100 a call, 10 calls at once: the
   least any plan can cost. Reported: ECS requests per instance (counted by LocalEcs), the
   medians of both wall times and their ratio. Before issue 15 the plan listed every
   instance's tasks (two ListTasks and no describe for an idle one): ~2.01 requests per
   instance, 10x the describes' time.
2. The task lists of k busy instances (two service tasks each, in a cluster of only them),
   fetched one instance at a time (`EcsCalls.list_tasks`: two ListTasks and a DescribeTasks
   each) and in one cluster-wide listing (`EcsCalls.cluster_tasks`), requests and seconds
   each: what `CLUSTER_TASKS_MIN_INSTANCES` is chosen by. moto does not page ListTasks (ECS
   pages at 100), so the cluster-wide requests here are a lower bound by ceil(tasks / 100).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from benchmarks._harness import (
    BENCH_CLUSTER,
    Check,
    Result,
    baseline_client,
    baseline_config,
    ecs_safe_client,
    interleaved,
    median,
    requests_made,
    timed,
)
from ecs_safe._calls import EcsCalls
from ecs_safe._transport import EcsTransport
from ecs_safe.ratelimit import RateLimiter, RateLimits
from ecs_safe.retry import RetryConfig

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["TARGET_REQUESTS", "TARGET_TIME", "run"]

#: Requests per instance of an idle fleet's plan (issue 15).
TARGET_REQUESTS = 0.05
#: The plan's wall time / the describes' alone (issue 15).
TARGET_TIME = 1.5
_CONCURRENCY = 10


async def _describe_only(local: LocalEcs, refs: list[str]) -> float:
    async with baseline_client(local) as ecs:
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def one(batch: list[str]) -> None:
            async with gate:
                await ecs.describe_container_instances(
                    cluster=BENCH_CLUSTER, containerInstances=batch
                )

        batches = [refs[i : i + 100] for i in range(0, len(refs), 100)]
        return await timed(asyncio.gather(*(one(b) for b in batches)))


async def _plan(local: LocalEcs, refs: list[str], requests: list[int]) -> float:
    async with ecs_safe_client(local, rate_limits=RateLimits()) as ecs:
        local.reset_calls()
        seconds = await timed(
            ecs.deregister_many(refs, cluster=BENCH_CLUSTER, dry_run=True, concurrency=10)
        )
        requests.append(requests_made(local))
        return seconds


@asynccontextmanager
async def _calls(local: LocalEcs) -> AsyncIterator[EcsCalls]:
    session: Any = local.session()
    async with session.create_client(
        "ecs",
        region_name=local.region_name,
        endpoint_url=local.endpoint_url,
        config=baseline_config(),
    ) as client:
        limiter = RateLimiter(RateLimits.unlimited())
        yield EcsCalls(EcsTransport(client, retry=RetryConfig(), limiter=limiter))


async def _listings(local: LocalEcs, k: int) -> dict[str, float]:
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    local.create_service(BENCH_CLUSTER, "web")
    arns = local.register_instances(BENCH_CLUSTER, count=k)
    for arn in arns:
        local.start_service_task(BENCH_CLUSTER, arn, "web", count=2)
    out: dict[str, float] = {}
    async with _calls(local) as calls:
        await calls.list_tasks(arns[0], BENCH_CLUSTER)  # warm: endpoint, service cache
        local.reset_calls()
        out["per_instance_s"] = await timed(
            asyncio.gather(*(calls.list_tasks(a, BENCH_CLUSTER) for a in arns))
        )
        out["per_instance_requests"] = requests_made(local)
        local.reset_calls()
        out["cluster_s"] = await timed(calls.cluster_tasks(BENCH_CLUSTER, arns, budget=10**6))
        out["cluster_requests"] = requests_made(local)
    return out


async def run(local: LocalEcs, *, instances: int, rounds: int, busy: tuple[int, ...]) -> Result:
    """The plan of ``instances`` idle instances, ``rounds`` times; then the listings."""
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    refs: list[str] = []
    while len(refs) < instances:  # RunInstances of 5,000 at once outlasts its read timeout
        refs += local.register_instances(BENCH_CLUSTER, count=min(1000, instances - len(refs)))
    requests: list[int] = []
    samples = await interleaved(
        {
            "describes": lambda _r: _describe_only(local, refs),
            "plan": lambda _r: _plan(local, refs, requests),
        },
        rounds,
    )
    result = Result(
        name="plans",
        title=f"Plans: a dry run of {instances} idle instances, and many task lists",
        params={"instances": instances, "rounds": rounds, "busy": list(busy)},
    )
    per_instance = max(requests) / instances
    time_ratio = median(samples["plan"]) / median(samples["describes"])
    result.metrics.update(
        {
            "plan_requests_per_instance": per_instance,
            "describe_calls": math.ceil(instances / 100),
            "plan_median_s": median(samples["plan"]),
            "describes_median_s": median(samples["describes"]),
            "plan_vs_describes_ratio": time_ratio,
        }
    )
    for k in busy:
        for key, value in (await _listings(local, k)).items():
            result.metrics[f"tasks_{k}_{key}"] = value
    result.checks.append(
        Check("requests per instance, idle plan", per_instance, TARGET_REQUESTS, "")
    )
    result.checks.append(Check("plan time / describes' time (median)", time_ratio, TARGET_TIME))
    result.notes.append(
        "tasks_K_*: K busy instances (2 tasks each) listed one by one vs cluster-wide; "
        "moto does not page ListTasks, ECS pages at 100 (add ceil(tasks/100) - 1 per status)"
    )
    return result
