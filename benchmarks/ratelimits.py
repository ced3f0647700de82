"""Rate limits: a fleet run through a proxy that throttles as ECS does.

Three clients take turns deregistering N fresh idle instances through `ThrottlingProxy`
(ECS's buckets: modify burst 100 at 40/s, read burst 100 at 20/s; the buckets are refilled
before each run, as if the account had been idle):

- ``ecs_safe``: ``deregister_many`` with the default `RateLimits` (a new client per run, so
  its own buckets start full too);
- ``naive_retrying``: the plain-aiobotocore gather of the fleet benchmark, with botocore's
  default retries (legacy mode, 5 attempts, exponential backoff), which a script gets unless
  it says otherwise;
- ``naive_no_retries``: the same with botocore's retries off.

All use concurrency 10. The floor is what the buckets alone allow: N deregistrations after a
burst of 100 at 40/s, plus ceil(N/100) describes (inside the read burst), see
`minimum_seconds`. ecs-safe should never be throttled and finish within 1.10x of that floor.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from benchmarks._baseline import DESCRIBE_BATCH, deregister_fleet
from benchmarks._harness import (
    BENCH_CLUSTER,
    Check,
    Result,
    baseline_client,
    ecs_safe_client,
    median,
)
from benchmarks.throttle_proxy import Kind, ThrottlingProxy, minimum_seconds

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["CONCURRENCY", "TARGET", "run"]

#: ecs-safe's wall time / the buckets' floor.
TARGET = 1.10
#: Instances in flight at once, every client.
CONCURRENCY = 10
_SIDES = ("ecs_safe", "naive_retrying", "naive_no_retries")


async def _run_side(
    side: str, local: LocalEcs, proxy: ThrottlingProxy, refs: list[str]
) -> tuple[float, int]:
    """One fleet run through the proxy: its seconds and the instances not deregistered."""
    if side == "ecs_safe":
        async with ecs_safe_client(local, endpoint_url=proxy.url) as ecs:
            proxy.reset()
            start = time.perf_counter()
            batch = await ecs.deregister_many(refs, cluster=BENCH_CLUSTER, concurrency=CONCURRENCY)
            return time.perf_counter() - start, len(batch.outcomes) - len(batch.succeeded)
    async with baseline_client(
        local, endpoint_url=proxy.url, botocore_retries=side == "naive_retrying"
    ) as plain:
        proxy.reset()
        start = time.perf_counter()
        try:
            failed = await deregister_fleet(plain, BENCH_CLUSTER, refs, concurrency=CONCURRENCY)
        except Exception:  # a throttled describe sinks the whole naive run
            failed = len(refs)
        return time.perf_counter() - start, failed


async def run(local: LocalEcs, *, instances: int, rounds: int) -> Result:
    """``rounds`` rounds of the three clients, each on ``instances`` fresh instances."""
    calls: dict[Kind, int] = {"read": math.ceil(instances / DESCRIBE_BATCH), "modify": instances}
    floor = minimum_seconds(calls)
    logical = sum(calls.values())
    stats: dict[str, dict[str, list[float]]] = {
        side: {"seconds": [], "throttled": [], "requests": [], "failed": []} for side in _SIDES
    }
    async with ThrottlingProxy(local.endpoint_url) as proxy:
        for round_ in range(rounds):
            local.reset()
            local.create_cluster(BENCH_CLUSTER)
            arns = local.register_instances(BENCH_CLUSTER, count=len(_SIDES) * instances)
            shift = round_ % len(_SIDES)
            for position, side in enumerate(_SIDES[shift:] + _SIDES[:shift]):
                refs = arns[position * instances : (position + 1) * instances]
                seconds, failed = await _run_side(side, local, proxy, refs)
                record = stats[side]
                record["seconds"].append(seconds)
                forwarded, throttled = proxy.counts()
                record["throttled"].append(throttled)
                record["requests"].append(forwarded + throttled)
                record["failed"].append(failed)

    result = Result(
        name="ratelimits",
        title=f"Rate limits: {instances} instances through a proxy with ECS's token buckets",
        params={"instances": instances, "rounds": rounds, "concurrency": CONCURRENCY},
    )
    result.metrics["floor_s"] = floor
    summary: dict[str, Any] = {}
    for side in _SIDES:
        record = stats[side]
        summary[f"{side}_median_s"] = median(record["seconds"])
        summary[f"{side}_vs_floor"] = median(record["seconds"]) / floor if floor else math.nan
        summary[f"{side}_throttled_max"] = int(max(record["throttled"]))
        summary[f"{side}_retries_median"] = median(record["requests"]) - logical
        summary[f"{side}_failed_max"] = int(max(record["failed"]))
    result.metrics.update(summary)
    result.checks.append(
        Check(
            "throttled requests, ecs_safe (worst round)", summary["ecs_safe_throttled_max"], 0, ""
        )
    )
    if floor:
        result.checks.append(
            Check(
                "wall time / buckets' floor, ecs_safe (median)",
                summary["ecs_safe_vs_floor"],
                TARGET,
            )
        )
    result.notes.append(
        "retries = requests the proxy received minus the logical calls "
        f"({calls['read']} describes + {calls['modify']} deregistrations)"
    )
    return result
