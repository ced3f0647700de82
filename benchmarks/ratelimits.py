"""Rate limits: a fleet run through a proxy that throttles as ECS does.

Four clients take turns deregistering N fresh idle instances through `ThrottlingProxy`
(ECS's buckets: modify burst 100 at 40/s, read burst 100 at 20/s; the buckets are refilled
before each run, as if the account had been idle):

- ``ecs_safe``: ``deregister_many`` with the default `RateLimits` (a new client per run, so
  its own buckets start full too);
- ``ecs_safe_fixed``: the same with ``RateLimits(adaptive=False)`` (no reactive layer: the
  client as it was before issue 15);
- ``naive_retrying``: the plain-aiobotocore gather of the fleet benchmark, with botocore's
  default retries (legacy mode, 5 attempts, exponential backoff), which a script gets unless
  it says otherwise;
- ``naive_no_retries``: the same with botocore's retries off.

All use concurrency 10. The floor is what the buckets alone allow: N deregistrations after a
burst of 100 at 40/s, plus ceil(N/100) describes (inside the read burst), see
`minimum_seconds`. ecs-safe should never be throttled and finish within 1.05x of that floor.

Then the account is shared: another tool spends 20% of each bucket through the same proxy
(`ThrottlingProxy.share`), and two ecs-safe clients take turns on fresh instances:

- ``shared_adaptive``: the default `RateLimits` (the reactive AIMD layer on);
- ``shared_fixed``: ``RateLimits(adaptive=False)``, the proactive buckets alone.

Their floor is that of the remaining 80% of the refill (the other tool also spends from the
burst, so it is a floor, not a promise). The adaptive client should see next to no throttles
and finish near that floor.
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
    frozen_heap,
    median,
)
from benchmarks.throttle_proxy import (
    ECS_BUCKETS,
    BucketSpec,
    Kind,
    ThrottlingProxy,
    minimum_seconds,
)
from ecs_safe import RateLimits

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["CONCURRENCY", "TARGET", "run"]

#: ecs-safe's wall time / the buckets' floor.
TARGET = 1.05
#: The share of each bucket another tool of the account spends in the shared runs.
OTHER_TOOL_SHARE = 0.2
#: ecs-safe's wall time / the floor of what the other tool leaves (adaptive client).
SHARED_TARGET = 1.15
#: Throttles the adaptive client may see in a shared run (worst round): each one is a probe.
SHARED_THROTTLES = 5
#: Instances in flight at once, every client.
CONCURRENCY = 10
_SIDES = ("ecs_safe", "ecs_safe_fixed", "naive_retrying", "naive_no_retries")
_SHARED_SIDES = ("shared_adaptive", "shared_fixed")
_LIMITS = {
    "ecs_safe": RateLimits(),
    "ecs_safe_fixed": RateLimits(adaptive=False),
    "shared_adaptive": RateLimits(),
    "shared_fixed": RateLimits(adaptive=False),
}


async def _run_side(
    side: str, local: LocalEcs, proxy: ThrottlingProxy, refs: list[str]
) -> tuple[float, int]:
    """One fleet run through the proxy: its seconds and the instances not deregistered."""
    if side in _LIMITS:
        async with ecs_safe_client(local, endpoint_url=proxy.url, rate_limits=_LIMITS[side]) as ecs:
            with frozen_heap():
                proxy.reset()
                start = time.perf_counter()
                batch = await ecs.deregister_many(
                    refs, cluster=BENCH_CLUSTER, concurrency=CONCURRENCY
                )
                seconds = time.perf_counter() - start
            return seconds, len(batch.outcomes) - len(batch.succeeded)
    async with baseline_client(
        local, endpoint_url=proxy.url, botocore_retries=side == "naive_retrying"
    ) as plain:
        with frozen_heap():
            proxy.reset()
            start = time.perf_counter()
            try:
                failed = await deregister_fleet(plain, BENCH_CLUSTER, refs, concurrency=CONCURRENCY)
            except Exception:  # a throttled describe sinks the whole naive run
                failed = len(refs)
            return time.perf_counter() - start, failed


def _new_stats(sides: tuple[str, ...]) -> dict[str, dict[str, list[float]]]:
    keys = ("seconds", "throttled", "requests", "failed", "first_modify", "after_last_modify")
    return {side: {key: [] for key in keys} for side in sides}


async def _rounds(
    local: LocalEcs,
    proxy: ThrottlingProxy,
    sides: tuple[str, ...],
    *,
    instances: int,
    rounds: int,
    stats: dict[str, dict[str, list[float]]],
) -> None:
    for round_ in range(rounds):
        local.reset()
        local.create_cluster(BENCH_CLUSTER)
        arns = local.register_instances(BENCH_CLUSTER, count=len(sides) * instances)
        shift = round_ % len(sides)
        for position, side in enumerate(sides[shift:] + sides[:shift]):
            refs = arns[position * instances : (position + 1) * instances]
            seconds, failed = await _run_side(side, local, proxy, refs)
            record = stats[side]
            record["seconds"].append(seconds)
            forwarded, throttled = proxy.counts()
            record["throttled"].append(throttled)
            record["requests"].append(forwarded + throttled)
            record["failed"].append(failed)
            modifies = [a.at for a in proxy.timeline() if a.kind == "modify"]
            record["first_modify"].append(modifies[0] if modifies else math.nan)
            record["after_last_modify"].append(seconds - modifies[-1] if modifies else math.nan)


def _summary(
    stats: dict[str, dict[str, list[float]]], floor: float, instances: int
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for side, record in stats.items():
        logical = math.ceil(instances / DESCRIBE_BATCH) + instances
        # Where the time goes: until the first deregistration reached the proxy, and after
        # the last one did (the rest is the buckets' pace).
        summary[f"{side}_first_modify_median_s"] = median(record["first_modify"])
        summary[f"{side}_after_last_modify_median_s"] = median(record["after_last_modify"])
        summary[f"{side}_median_s"] = median(record["seconds"])
        summary[f"{side}_vs_floor"] = median(record["seconds"]) / floor if floor else math.nan
        summary[f"{side}_vs_floor_max"] = max(record["seconds"]) / floor if floor else math.nan
        summary[f"{side}_throttled_max"] = int(max(record["throttled"]))
        summary[f"{side}_retries_median"] = median(record["requests"]) - logical
        summary[f"{side}_failed_max"] = int(max(record["failed"]))
    return summary


async def run(local: LocalEcs, *, instances: int, rounds: int) -> Result:
    """``rounds`` rounds of the three clients, then of the two shared ones, on fresh instances."""
    calls: dict[Kind, int] = {"read": math.ceil(instances / DESCRIBE_BATCH), "modify": instances}
    floor = minimum_seconds(calls)
    left = 1 - OTHER_TOOL_SHARE
    shared_buckets = {k: BucketSpec(b.burst, b.per_s * left) for k, b in ECS_BUCKETS.items()}
    shared_floor = minimum_seconds(calls, shared_buckets)
    stats = _new_stats(_SIDES)
    shared = _new_stats(_SHARED_SIDES)
    async with ThrottlingProxy(local.endpoint_url) as proxy:
        await _rounds(local, proxy, _SIDES, instances=instances, rounds=rounds, stats=stats)
        await proxy.share(OTHER_TOOL_SHARE)
        await _rounds(local, proxy, _SHARED_SIDES, instances=instances, rounds=rounds, stats=shared)
        await proxy.share(0)

    result = Result(
        name="ratelimits",
        title=f"Rate limits: {instances} instances through a proxy with ECS's token buckets",
        params={
            "instances": instances,
            "rounds": rounds,
            "concurrency": CONCURRENCY,
            "other_tool_share": OTHER_TOOL_SHARE,
        },
    )
    result.metrics["floor_s"] = floor
    result.metrics["shared_floor_s"] = shared_floor
    summary = _summary(stats, floor, instances)
    summary.update(_summary(shared, shared_floor, instances))
    result.metrics.update(summary)
    result.checks.append(
        Check(
            "throttled requests, ecs_safe (worst round)", summary["ecs_safe_throttled_max"], 0, ""
        )
    )
    result.checks.append(
        Check(
            "throttled requests, shared account, adaptive (worst round)",
            summary["shared_adaptive_throttled_max"],
            SHARED_THROTTLES,
            "",
        )
    )
    if floor:
        result.checks.append(
            Check(
                "wall time / buckets' floor, ecs_safe (worst round)",
                summary["ecs_safe_vs_floor_max"],
                TARGET,
            )
        )
        result.checks.append(
            Check(
                "wall time / floor of the 80% left, adaptive (median)",
                summary["shared_adaptive_vs_floor"],
                SHARED_TARGET,
            )
        )
    result.notes.append(
        "retries = requests the proxy received minus the logical calls "
        f"({calls['read']} describes + {calls['modify']} deregistrations)"
    )
    result.notes.append(
        f"shared_*: another tool spends {OTHER_TOOL_SHARE:.0%} of each bucket through the same "
        "proxy; their floor is that of the rest"
    )
    return result
