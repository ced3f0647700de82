"""Memory: a dry-run plan of N instances (``deregister_many(dry_run=True)``) vs the baseline.

ecs-safe's plan describes every instance (100 per call) and lists the tasks of those whose
counters show any (ListTasks for desired RUNNING and STOPPED; DescribeTasks when there are
any; none for the idle instances here, see docs/performance.md "Plans"), then holds a
`BatchResult`: an outcome per instance with its snapshot, decision and tasks. The baseline
makes the same calls with plain aiobotocore (same concurrency) and holds the raw responses.
Both run with ``RateLimits.unlimited()``-equivalent pacing (none), interleaved.

Measured with tracemalloc: the peak of traced memory during the run, and what is still
allocated after it while the plan is held ("retained"). tracemalloc sees every thread, so
the peak includes LocalEcs's own allocations while it serves the requests; both sides make
the same requests, so that share is the same on both sides. Peak RSS cannot be split between
two runs in one process; the process's own peak RSS is reported for scale only.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from benchmarks._baseline import describe_fleet
from benchmarks._harness import (
    BENCH_CLUSTER,
    Result,
    baseline_client,
    ecs_safe_client,
    median,
)
from ecs_safe import RateLimits

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

    from ecs_safe import EcsSafeClient
    from ecs_safe.local import LocalEcs

__all__ = ["CONCURRENCY", "run"]

#: Instances planned at once, both sides (deregister_many's default).
CONCURRENCY = 10


async def _baseline_plan(client: ECSClient, arns: Sequence[str]) -> list[Any]:
    """Describe all, list the tasks of those the counters say are busy: a plan's material."""
    instances = await describe_fleet(client, BENCH_CLUSTER, arns, concurrency=CONCURRENCY)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def tasks_of(instance: Any) -> list[str]:
        arns: list[str] = []
        async with gate:
            for desired in ("RUNNING", "STOPPED"):
                page = await client.list_tasks(
                    cluster=BENCH_CLUSTER,
                    containerInstance=instance["containerInstanceArn"],
                    desiredStatus=desired,
                )
                arns.extend(page["taskArns"])
        return arns

    def busy(instance: Any) -> bool:
        return bool(instance.get("runningTasksCount") or instance.get("pendingTasksCount"))

    tasks = await asyncio.gather(*(tasks_of(i) for i in instances if busy(i)))
    return [instances, tasks]


async def _measure(make_plan: Callable[[], Awaitable[object]]) -> tuple[int, int, object]:
    """(peak, retained) bytes of traced memory over one plan, and the plan (kept alive)."""
    gc.collect()
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    plan = await make_plan()
    current, peak = tracemalloc.get_traced_memory()
    return peak - before, current - before, plan


def _max_rss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


async def run(local: LocalEcs, *, instances: int, rounds: int) -> Result:
    """Plan ``instances`` instances per side, ``rounds`` times each, interleaved."""
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    # A dry run changes nothing: both sides plan the same instances in every round.
    arns = local.register_instances(BENCH_CLUSTER, count=instances)
    peaks: dict[str, list[float]] = {"ecs_safe": [], "baseline": []}
    retained: dict[str, list[float]] = {"ecs_safe": [], "baseline": []}
    requests: dict[str, int] = {}
    async with (
        ecs_safe_client(local, rate_limits=RateLimits.unlimited()) as ecs,
        baseline_client(local) as plain,
    ):

        async def ours(ecs: EcsSafeClient = ecs) -> object:
            batch = await ecs.deregister_many(
                arns, cluster=BENCH_CLUSTER, dry_run=True, concurrency=CONCURRENCY
            )
            assert len(batch.succeeded) == instances, "every instance would be deregistered"
            return batch

        sides: dict[str, Callable[[], Awaitable[object]]] = {
            "ecs_safe": ours,
            "baseline": lambda: _baseline_plan(plain, arns),
        }
        # One untimed plan each: first-use costs (schemas, caches) are not a plan's memory.
        for name, make_plan in sides.items():
            local.reset_calls()
            await make_plan()
            requests[name] = len(local.call_log)
        tracemalloc.start()
        try:
            for round_ in range(rounds):
                order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
                for name in order:
                    peak, kept, plan = await _measure(sides[name])
                    peaks[name].append(peak / 2**20)
                    retained[name].append(kept / 2**20)
                    del plan
        finally:
            tracemalloc.stop()

    result = Result(
        name="memory",
        title=f"Memory: dry-run plan of {instances} instances vs aiobotocore (tracemalloc)",
        params={"instances": instances, "rounds": rounds, "concurrency": CONCURRENCY},
    )
    value = median(peaks["ecs_safe"]) / median(peaks["baseline"])
    result.metrics.update(
        {
            "ecs_safe_peak_mib": median(peaks["ecs_safe"]),
            "baseline_peak_mib": median(peaks["baseline"]),
            "peak_ratio": value,
            "ecs_safe_retained_mib": median(retained["ecs_safe"]),
            "baseline_retained_mib": median(retained["baseline"]),
            "ecs_safe_retained_kib_per_instance": median(retained["ecs_safe"]) * 1024 / instances,
            "ecs_safe_requests": requests["ecs_safe"],
            "baseline_requests": requests["baseline"],
            "process_max_rss_mib": _max_rss_mib(),
        }
    )
    result.notes.append("no target in the issue: reported for the record")
    return result
