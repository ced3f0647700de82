"""The event worker: how many events a second ``EcsSafeClient.watch`` sustains on LocalEcs.

Three workloads, each a queue holding N events before the worker starts, timed from the
worker's start until its ``max_events``-th event has ended (received, acted on, recorded in
the audit log, deleted):

- **Spot warnings, ECS's rate limits** (the client's default `RateLimits`): N idle instances,
  each interrupted: the fast path's cordon (one DRAINING call per batch), the pre-flight, the
  poller's looks and the deregistration. Bound by ECS's read bucket (20/s after a burst of
  100): the number a real account gets.
- **Spot warnings, unlimited rates**: the same, without client-side pacing: what the worker
  itself costs (LocalEcs's own speed and the poller's rounds, every 2 s at best, bound it).
- **Recorded, no ECS call**: rebalance recommendations (``rebalance="log"``): the queue and the
  record alone (ReceiveMessage, two audit records, DeleteMessage per event).

There is no baseline: no other tool drains ECS instances from a queue to run side by side.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks._harness import BENCH_CLUSTER, Check, Result
from ecs_safe import EcsSafeClient, RateLimits

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["CONCURRENCY", "TARGET_DRAINING_CALLS", "run"]

#: Events in flight at once.
CONCURRENCY = 50
#: UpdateContainerInstancesState calls per Spot warning: the notices that arrive together go
#: in one call (10 instances a call at most), so about a tenth.
TARGET_DRAINING_CALLS = 0.2


async def _spot(
    local: LocalEcs, instances: int, rate_limits: RateLimits | None
) -> dict[str, float]:
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    arns = local.register_instances(BENCH_CLUSTER, count=instances)
    url = local.events.create_queue("bench-spot")
    with tempfile.TemporaryDirectory() as tmp:
        async with EcsSafeClient(
            **local.client_kwargs(), rate_limits=rate_limits, audit_log=Path(tmp) / "audit.jsonl"
        ) as ecs:
            described = await ecs.describe_container_instances(arns, cluster=BENCH_CLUSTER)
            for instance in described:
                local.interrupt_spot(str(instance.ec2_instance_id), drain=False)
            local.reset_calls()
            start = time.perf_counter()
            summary = await ecs.watch(
                url,
                cluster=BENCH_CLUSTER,
                concurrency=CONCURRENCY,
                max_events=instances,
                wait_seconds=1,
            )
            elapsed = time.perf_counter() - start
    return {
        "events_per_s": instances / elapsed,
        "elapsed_s": elapsed,
        "handled": summary.handled,
        "draining_calls_per_event": local.calls("UpdateContainerInstancesState") / instances,
        "ecs_requests_per_event": sum(
            1 for op in local.call_log if not op.startswith(("sqs:", "ec2:", "autoscaling:"))
        )
        / instances,
    }


async def _recorded_only(local: LocalEcs, events: int) -> dict[str, float]:
    local.reset()
    url = local.events.create_queue("bench-log")
    for n in range(events):
        local.recommend_rebalance(f"i-{n:017x}")
    with tempfile.TemporaryDirectory() as tmp:
        async with EcsSafeClient(
            **local.client_kwargs(), audit_log=Path(tmp) / "audit.jsonl"
        ) as ecs:
            start = time.perf_counter()
            summary = await ecs.watch(
                url, concurrency=CONCURRENCY, max_events=events, wait_seconds=1
            )
            elapsed = time.perf_counter() - start
    return {"events_per_s": events / elapsed, "elapsed_s": elapsed, "handled": summary.handled}


async def run(local: LocalEcs, *, spot: int, logged: int) -> Result:
    """``spot`` Spot warnings (paced, then unlimited) and ``logged`` recorded-only events."""
    paced = await _spot(local, spot, None)
    unlimited = await _spot(local, spot, RateLimits.unlimited())
    recorded = await _recorded_only(local, logged)
    result = Result(
        name=f"worker_{spot}",
        title=f"Event worker: events/s over {spot} Spot warnings and {logged} recorded-only events",
        params={"spot_events": spot, "logged_events": logged, "concurrency": CONCURRENCY},
    )
    result.metrics.update(
        {
            "spot_events_per_s": paced["events_per_s"],
            "spot_elapsed_s": paced["elapsed_s"],
            "spot_unlimited_events_per_s": unlimited["events_per_s"],
            "recorded_only_events_per_s": recorded["events_per_s"],
            "spot_ecs_requests_per_event": paced["ecs_requests_per_event"],
            "spot_draining_calls_per_event": paced["draining_calls_per_event"],
            "handled": paced["handled"] + unlimited["handled"] + recorded["handled"],
        }
    )
    worst = max(paced["draining_calls_per_event"], unlimited["draining_calls_per_event"])
    result.checks.append(
        Check(
            "UpdateContainerInstancesState calls per Spot warning (worst run)",
            worst if math.isfinite(worst) else 1.0,
            TARGET_DRAINING_CALLS,
            "",
        )
    )
    result.notes.append(
        "Spot events/s under ECS's rate limits is bound by the read bucket (20/s after a "
        "burst of 100): each warning costs a few reads (pre-flight, poller looks)"
    )
    return result
