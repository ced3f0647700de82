"""Per-call overhead: one policy-checked deregistration vs the same calls in plain aiobotocore.

ecs-safe: ``deregister_container_instance(arn, cluster=...)`` with the default policy and
retries: validation, DescribeContainerInstances, policy evaluation,
DeregisterContainerInstance, the parsed models and the log event. Baseline: aiobotocore's
``describe_container_instances`` + a running/pending check + ``deregister_container_instance``.
Every sample takes a fresh idle instance (registered before timing starts).

The rate limiter is on, with buckets large enough never to make a call wait: the benchmark
measures the cost of taking a token, not pacing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks._baseline import deregister_one
from benchmarks._harness import (
    BENCH_CLUSTER,
    Check,
    Result,
    baseline_client,
    ecs_safe_client,
    interleaved,
    median,
    ratio,
    requests_made,
    timed,
)
from ecs_safe import RateLimits

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["NEVER_WAITING_LIMITS", "TARGET", "run"]

#: ecs-safe / baseline, median per call.
TARGET = 1.10
#: Real token buckets that a benchmark never empties.
NEVER_WAITING_LIMITS = RateLimits(
    read_per_s=1e6, read_burst=10**6, modify_per_s=1e6, modify_burst=10**6
)


async def run(local: LocalEcs, *, samples: int, warmup: int) -> Result:
    """Time ``samples`` deregistrations per side (after ``warmup`` untimed ones each)."""
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    per_side = samples + warmup
    arns = local.register_instances(BENCH_CLUSTER, count=2 * per_side)
    ours_arns, base_arns = iter(arns[:per_side]), iter(arns[per_side:])

    async with (
        ecs_safe_client(local, rate_limits=NEVER_WAITING_LIMITS) as ecs,
        baseline_client(local) as plain,
    ):
        requests = {"ecs_safe": 0, "baseline": 0}

        async def ecs_safe_side(_round: int) -> float:
            before = requests_made(local)
            seconds = await timed(
                ecs.deregister_container_instance(next(ours_arns), cluster=BENCH_CLUSTER)
            )
            requests["ecs_safe"] += requests_made(local) - before
            return seconds

        async def baseline_side(_round: int) -> float:
            before = requests_made(local)
            seconds = await timed(deregister_one(plain, BENCH_CLUSTER, next(base_arns)))
            requests["baseline"] += requests_made(local) - before
            return seconds

        sides = {"ecs_safe": ecs_safe_side, "baseline": baseline_side}
        await interleaved(sides, warmup)
        requests.update(ecs_safe=0, baseline=0)
        times = await interleaved(sides, samples)

    result = Result(
        name="percall",
        title="Per-call overhead: deregister_container_instance vs aiobotocore describe+deregister",
        params={"samples": samples, "warmup": warmup},
    )
    ours_ms, base_ms = median(times["ecs_safe"]) * 1e3, median(times["baseline"]) * 1e3
    value = ratio(times["ecs_safe"], times["baseline"])
    result.metrics.update(
        {
            "ecs_safe_median_ms": ours_ms,
            "baseline_median_ms": base_ms,
            "overhead_median_ms": ours_ms - base_ms,
            "ratio": value,
            "ecs_safe_requests_per_call": requests["ecs_safe"] / samples,
            "baseline_requests_per_call": requests["baseline"] / samples,
        }
    )
    result.checks.append(Check("per-call time, ecs_safe / baseline (medians)", value, TARGET))
    return result
