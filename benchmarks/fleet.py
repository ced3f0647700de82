"""Fleet: ``deregister_many`` vs a plain-aiobotocore ``asyncio.gather``, same concurrency.

Both sides take N fresh idle instances and make the same calls: DescribeContainerInstances
batched 100 per call across the fleet, then one unforced DeregisterContainerInstance per
instance, at most ``concurrency`` (10, ``deregister_many``'s default) requests in flight. The
baseline sends its ceil(N/100) describes concurrently (under the same bound), which is the
fastest way to write it: if anything, it is the stronger side.

ecs-safe runs with ``RateLimits.unlimited()``: this benchmark measures the SDK's overhead,
not its pacing (the rate-limit benchmark measures pacing). Requests are counted by LocalEcs
on the server side, retries included.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from benchmarks._baseline import deregister_fleet
from benchmarks._harness import (
    BENCH_CLUSTER,
    Check,
    Result,
    baseline_client,
    ecs_safe_client,
    median,
    ratio,
    requests_made,
)
from ecs_safe import RateLimits

if TYPE_CHECKING:
    from ecs_safe import EcsSafeClient
    from ecs_safe.local import LocalEcs

__all__ = ["CONCURRENCY", "TARGET_REQUESTS", "TARGET_TIME", "run"]

#: ecs-safe / baseline, median wall time of a fleet run.
TARGET_TIME = 1.15
#: ECS requests per instance, ecs-safe.
TARGET_REQUESTS = 1.02
#: Instances in flight at once, both sides.
CONCURRENCY = 10


async def _ecs_safe_side(ecs: EcsSafeClient, refs: list[str]) -> int:
    batch = await ecs.deregister_many(refs, cluster=BENCH_CLUSTER, concurrency=CONCURRENCY)
    return len(batch.outcomes) - len(batch.succeeded)


async def run(local: LocalEcs, *, instances: int, rounds: int) -> Result:
    """Deregister ``instances`` instances per side per round, ``rounds`` rounds."""
    times: dict[str, list[float]] = {"ecs_safe": [], "baseline": []}
    requests: dict[str, list[int]] = {"ecs_safe": [], "baseline": []}
    failures: dict[str, int] = {"ecs_safe": 0, "baseline": 0}
    async with (
        ecs_safe_client(local, rate_limits=RateLimits.unlimited()) as ecs,
        baseline_client(local) as plain,
    ):
        for round_ in range(rounds):
            # A fresh cluster each round keeps moto's state the same size for every run.
            local.reset()
            local.create_cluster(BENCH_CLUSTER)
            arns = local.register_instances(BENCH_CLUSTER, count=2 * instances)
            sides: dict[str, Callable[[], Awaitable[int]]] = {
                "ecs_safe": functools.partial(_ecs_safe_side, ecs, arns[:instances]),
                "baseline": functools.partial(
                    deregister_fleet,
                    plain,
                    BENCH_CLUSTER,
                    arns[instances:],
                    concurrency=CONCURRENCY,
                ),
            }
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                before = requests_made(local)
                start = time.perf_counter()
                failures[side] += await sides[side]()
                times[side].append(time.perf_counter() - start)
                requests[side].append(requests_made(local) - before)

    result = Result(
        name=f"fleet_{instances}",
        title=f"Fleet: deregister_many of {instances} vs aiobotocore gather (unlimited rates)",
        params={"instances": instances, "rounds": rounds, "concurrency": CONCURRENCY},
    )
    time_ratio = ratio(times["ecs_safe"], times["baseline"])
    ours_per_instance = max(requests["ecs_safe"]) / instances
    result.metrics.update(
        {
            "ecs_safe_median_s": median(times["ecs_safe"]),
            "baseline_median_s": median(times["baseline"]),
            "ratio": time_ratio,
            "ecs_safe_requests_per_instance": ours_per_instance,
            "baseline_requests_per_instance": max(requests["baseline"]) / instances,
            "ecs_safe_failed_instances": failures["ecs_safe"],
            "baseline_failed_instances": failures["baseline"],
        }
    )
    result.checks.append(
        Check("fleet wall time, ecs_safe / baseline (medians)", time_ratio, TARGET_TIME)
    )
    result.checks.append(
        Check(
            "ECS requests per instance, ecs_safe (worst round)",
            ours_per_instance,
            TARGET_REQUESTS,
            "",
        )
    )
    return result
