"""Drain a fleet at once through ECS's exact buckets: the poller's cost at scale (issue 15).

N instances, two service tasks each, stopped 5 s after DRAINING (the simulated scheduler of
`benchmarks.drain`), drained with ``deregister_many(drain=True, concurrency=N)`` through
`ThrottlingProxy` (ECS's documented buckets, exact: read burst 100 at 20/s, modify burst 100 at
40/s), with the client's default `RateLimits`, in real time.

The floor of the job is what the modify bucket allows once the tasks are gone: N/10 DRAINING
calls inside the burst, 5 s for the tasks to stop (the bucket refills meanwhile), then N
deregistrations, 100 at once and 40 a second after: ``5 + (N - 100) / 40`` (27.5 s for 1,000).
Reported: the whole run, and its wait phase (from the last DRAINING to the last deregistration,
the part the poller owns: the pre-flight's task lists are the plan's, see issue 15's
"plans that cost describes only"), each against the floor; the reads per instance per poll
round; ThrottlingExceptions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from benchmarks._harness import BENCH_CLUSTER, Check, Result, ecs_safe_client
from benchmarks.drain import Scheduler, seed
from benchmarks.throttle_proxy import ThrottlingProxy

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["TARGET_FLOOR_RATIO", "TARGET_READS_PER_ROUND", "floor_s", "run"]

#: The run's wall time / the floor.
TARGET_FLOOR_RATIO = 1.3
#: Reads per instance per poll round.
TARGET_READS_PER_ROUND = 0.1
#: Seconds from DRAINING to the tasks stopped.
STOP_AFTER_S = 5.0


def floor_s(instances: int) -> float:
    """The least time the job can take through ECS's buckets (see the module's docstring)."""
    return STOP_AFTER_S + max(0, instances - 100) / 40.0


async def run(local: LocalEcs, *, instances: int) -> Result:
    """Drain ``instances`` at once through the exact buckets."""
    plan = seed(local, instances, [STOP_AFTER_S, STOP_AFTER_S])
    tasks = {arn.rsplit("/", 1)[-1]: entries for arn, entries in plan.items()}
    async with (
        ThrottlingProxy(local.endpoint_url) as proxy,
        ecs_safe_client(local, endpoint_url=proxy.url) as ecs,
    ):
        proxy.reset()
        with Scheduler(local, BENCH_CLUSTER, tasks) as sched:
            start = time.perf_counter()
            batch = await ecs.deregister_many(
                list(plan),
                cluster=BENCH_CLUSTER,
                drain=True,
                concurrency=instances,
                require_room=False,  # every host drains at once: no room by construction
            )
            took = time.perf_counter() - start
        stats = ecs.poll_stats
        forwarded, throttled = proxy.counts()
    wait_phase = max(sched.deregistered_at.values()) - max(sched.draining_at.values())
    floor = floor_s(instances)
    per_round = stats.reads_per_look
    result = Result(
        name=f"drain_buckets_{instances}",
        title=f"Drain {instances} instances at once through ECS's exact buckets (real time)",
        params={"instances": instances, "stop_after_s": STOP_AFTER_S},
    )
    result.metrics.update(
        {
            "run_s": took,
            "wait_phase_s": wait_phase,
            "floor_s": floor,
            "run_over_floor": took / floor,
            "wait_phase_over_floor": wait_phase / floor,
            "requests": forwarded,
            "throttled": throttled,
            "poll_rounds": stats.rounds,
            "poll_reads": stats.reads,
            "reads_per_instance_per_round": per_round,
            "deregistered": len(batch.succeeded),
        }
    )
    result.checks.append(Check("whole run / floor", took / floor, TARGET_FLOOR_RATIO))
    result.checks.append(Check("wait phase / floor", wait_phase / floor, TARGET_FLOOR_RATIO))
    result.checks.append(
        Check("reads per instance per poll round", per_round, TARGET_READS_PER_ROUND, "")
    )
    return result
