"""API calls per replaced instance: a rolling replacement of an Auto Scaling group.

A group of N instances bound to its cluster (LocalEcs registers the instances it launches, as
the ECS agent would) runs S services of N / S tasks each, placed by LocalEcs's scheduler,
which also moves them off DRAINING instances as ECS does. `replace_auto_scaling_group`
replaces the whole group, in waves of W, with or without a surge, under the disruption
budgets rule and the steady-state gate.

Every logical API call the client makes is counted where it is made (`Transport.call`, one
per call, retries not included), by service and operation, and divided by N. The drain's
share (the poller's looks, the steady gate's rounds) depends on how long the scheduler takes
to move the tasks, so on timing: reported as measured, with ``poll_interval`` as given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from benchmarks._harness import BENCH_CLUSTER, Check, Result
from ecs_safe import DisruptionBudgets, default_policy
from ecs_safe._constants import MUTATING_OPERATIONS
from ecs_safe._transport import Transport
from ecs_safe.client import EcsSafeClient
from ecs_safe.ratelimit import RateLimits

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["TARGET_WRITES_PER_INSTANCE", "run"]

#: Mutating calls per replaced instance: its ownership mark, DRAINING, the deregistration and
#: the termination, plus the surge and the restore shared by the whole group.
TARGET_WRITES_PER_INSTANCE = 5.0
_GROUP = "bench-fleet"
_POLL = 0.05


@contextmanager
def _counted() -> Iterator[Counter[tuple[str, str]]]:
    """Count every `Transport.call` made inside the block, by (service, operation)."""
    counts: Counter[tuple[str, str]] = Counter()
    original = Transport.call

    async def call(self: Transport, operation: str, *args: Any, **kwargs: Any) -> Any:
        counts[self.service, operation] += 1
        return await original(self, operation, *args, **kwargs)

    Transport.call = call  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        Transport.call = original  # type: ignore[method-assign]


def _seed(local: LocalEcs, instances: int, services: int) -> None:
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    local.create_auto_scaling_group(_GROUP, BENCH_CLUSTER, instances, join=True)
    for n in range(services):
        local.create_service(
            BENCH_CLUSTER,
            f"svc{n}",
            desired_count=max(1, instances // services),
            scheduler=True,
            cpu=64,
            memory=64,
        )
    local.scheduler.run_until_settled()


async def _replace(local: LocalEcs, instances: int, wave: int, surge: bool) -> Counter[Any]:
    policy = default_policy().with_rules(DisruptionBudgets())
    local.scheduler.start(interval=0.02)
    try:
        async with EcsSafeClient(
            **local.client_kwargs(), policy=policy, rate_limits=RateLimits.unlimited()
        ) as ecs:
            with _counted() as counts:
                result = await ecs.replace_auto_scaling_group(
                    _GROUP,
                    cluster=BENCH_CLUSTER,
                    wave_size=wave,
                    surge=surge,
                    poll_interval=_POLL,
                    timeout=120.0,
                    capacity_timeout=120.0,
                    steady_timeout=120.0,
                )
    finally:
        local.scheduler.stop()
    if result.status != "replaced" or len(result.terminated) != instances:
        raise AssertionError(f"replacement {result.status}: {result.error}")
    return counts


async def run(local: LocalEcs, *, cases: tuple[tuple[int, int, int, bool], ...]) -> list[Result]:
    """One report per (instances, services, wave size, surge) case."""
    results: list[Result] = []
    for instances, services, wave, surge in cases:
        _seed(local, instances, services)
        counts = await _replace(local, instances, wave, surge)
        name = f"replace_{instances}_w{wave}" + ("_surge" if surge else "")
        result = Result(
            name=name,
            title=f"Rolling replacement: API calls per replaced instance ({instances} "
            f"instances, {services} services, waves of {wave}" + (", surge" if surge else "") + ")",
            params={
                "instances": instances,
                "services": services,
                "wave_size": wave,
                "surge": surge,
                "poll_interval": _POLL,
            },
        )
        writes = sum(n for (_, op), n in counts.items() if op in MUTATING_OPERATIONS)
        total = sum(counts.values())
        by_service: Counter[str] = Counter()
        for (service, _), n in counts.items():
            by_service[service] += n
        result.metrics.update(
            {
                "calls_per_instance": total / instances,
                "writes_per_instance": writes / instances,
                "reads_per_instance": (total - writes) / instances,
                **{f"{s}_per_instance": n / instances for s, n in sorted(by_service.items())},
            }
        )
        for (service, op), n in sorted(counts.items()):
            result.metrics[f"{service}.{op}"] = n
        result.checks.append(
            Check(
                "mutating calls per replaced instance",
                writes / instances,
                TARGET_WRITES_PER_INSTANCE,
                "",
            )
        )
        result.notes.append(
            "reads include the drain poller's looks and the steady gate's rounds, which "
            "depend on how fast the scheduler moves tasks (timing)"
        )
        results.append(result)
    return results
