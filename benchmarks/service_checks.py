"""The reads the service-aware checks add: room elsewhere, disruption budgets, the steady gate.

A wave of N instances running the tasks of S services (each service one task per instance,
placed by LocalEcs's scheduler), with N empty instances beside them for room. ECS requests
are counted by LocalEcs, per operation, in the same run:

1. The wave's plan (``deregister_many(drain=True, dry_run=True)``) without the checks
   (``require_room=False``, the default policy) and with them (room, and `DisruptionBudgets`
   over DescribeServices). Deterministic. A plan reads the services and task definitions
   either way (it shows each affected service), so the checks add nothing to it.
2. A rolling drain of the wave one instance at a time (``drain_and_deregister`` per
   instance, as ``ecs-safe drain`` runs it), the scheduler ticking: without the checks
   (no room check, the default policy, no gate) and with all three (room, budgets, and
   one `EcsSafeClient.steady_gate` for the run). The gate's share depends on how many rounds
   it waits for the services, so on timing: reported as measured.

"Against the read bucket's floor": each added read costs 1 / `RateLimits.read_per_s`
seconds of the read bucket (20/s sustained against ECS) once its burst is spent; the floor is
the wave's added reads / 20 s, the least time they add to a run that keeps the bucket busy.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from benchmarks._harness import BENCH_CLUSTER, Check, Result
from ecs_safe import DisruptionBudgets, default_policy
from ecs_safe._constants import ECS_READ_OPERATIONS
from ecs_safe.client import EcsSafeClient
from ecs_safe.policy import Policy
from ecs_safe.ratelimit import RateLimits

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["TARGET_PLAN_READS", "run"]

#: Reads the room and budget checks may add per instance of a wave's plan: batched per wave,
#: so well under one per instance once the wave has a few instances.
TARGET_PLAN_READS = 1.0
_POLL = 0.05


def _seed(local: LocalEcs, instances: int, services: int) -> list[str]:
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    old = local.register_instances(BENCH_CLUSTER, instances)
    for n in range(services):
        local.create_service(
            BENCH_CLUSTER,
            f"svc{n}",
            desired_count=instances,
            scheduler=True,
            distinct_instance=True,
            cpu=64,
            memory=64,
        )
    local.scheduler.run_until_settled()
    local.register_instances(BENCH_CLUSTER, instances)  # room for the wave's tasks
    local.scheduler.reset_record()
    return old


def _reads(local: LocalEcs) -> Counter[str]:
    return Counter(op for op in local.call_log if op in ECS_READ_OPERATIONS)


async def _plan(local: LocalEcs, old: list[str], *, checks: bool) -> Counter[str]:
    async with EcsSafeClient(**local.client_kwargs(), policy=_policy(checks)) as ecs:
        local.reset_calls()
        batch = await ecs.deregister_many(
            old, cluster=BENCH_CLUSTER, drain=True, dry_run=True, require_room=checks
        )
        if {o.status for o in batch.outcomes} != {"would_deregister"}:
            raise AssertionError([str(o.error) for o in batch.outcomes if o.error])
        return _reads(local)


def _policy(checks: bool) -> Policy:
    return default_policy().with_rules(DisruptionBudgets()) if checks else default_policy()


async def _rolling(local: LocalEcs, old: list[str], *, checks: bool) -> Counter[str]:
    local.scheduler.start(interval=0.02)
    try:
        async with EcsSafeClient(**local.client_kwargs(), policy=_policy(checks)) as ecs:
            steady = ecs.steady_gate(cluster=BENCH_CLUSTER, poll_interval=_POLL) if checks else None
            local.reset_calls()
            for ref in old:
                await ecs.drain_and_deregister(
                    ref,
                    cluster=BENCH_CLUSTER,
                    poll_interval=_POLL,
                    timeout=120.0,
                    require_room=checks,
                    steady=steady,
                )
            return _reads(local)
    finally:
        local.scheduler.stop()


def _per_instance(counts: Counter[str], n: int) -> float:
    return sum(counts.values()) / n


async def run(local: LocalEcs, *, waves: tuple[tuple[int, int], ...]) -> list[Result]:
    """One report per (instances, services) wave."""
    read_rate = RateLimits().read_per_s
    results: list[Result] = []
    for instances, services in waves:
        old = _seed(local, instances, services)
        plan_off = await _plan(local, old, checks=False)
        plan_on = await _plan(local, old, checks=True)
        roll_off = await _rolling(local, old, checks=False)
        old = _seed(local, instances, services)
        roll_on = await _rolling(local, old, checks=True)
        result = Result(
            name=f"service_checks_{instances}x{services}",
            title=f"Service-aware checks: reads of a wave of {instances} instances, "
            f"{services} services",
            params={"instances": instances, "services": services, "poll_interval": _POLL},
        )
        added_plan = _per_instance(plan_on, instances) - _per_instance(plan_off, instances)
        added_gate = _per_instance(roll_on, instances) - _per_instance(roll_off, instances)
        result.metrics.update(
            {
                "plan_reads_per_instance_without": _per_instance(plan_off, instances),
                "plan_reads_per_instance_with": _per_instance(plan_on, instances),
                "plan_added_reads_per_instance": added_plan,
                "plan_added_floor_s": added_plan * instances / read_rate,
                "roll_reads_per_instance_without": _per_instance(roll_off, instances),
                "roll_reads_per_instance_with": _per_instance(roll_on, instances),
                "roll_added_reads_per_instance": added_gate,
                "roll_added_floor_s": added_gate * instances / read_rate,
            }
        )
        for label, counts in (
            ("plan_without", plan_off),
            ("plan_with", plan_on),
            ("roll_without", roll_off),
            ("roll_with", roll_on),
        ):
            for op, count in sorted(counts.items()):
                result.metrics[f"{label}_{op}"] = count
        result.checks.append(
            Check("reads added per instance, wave plan", added_plan, TARGET_PLAN_READS, "")
        )
        result.notes.append(
            f"floor: added reads / {read_rate:g} per s (the read bucket's sustained rate); "
            "the gate's reads depend on how long the services take to be steady"
        )
        results.append(result)
    return results
