"""LocalEcs's own DescribeTasks vs moto's, in the same run: 100 tasks of a cluster a call.

LocalEcs answers DescribeTasks itself (`ecs_safe.local.tasks.TaskDescriber`); the reference
side sends the same request on to moto's handler (the describer is switched off for its
samples). Both go over HTTP through the same middleware, from one plain aiobotocore client,
interleaved; the median per call of each side and their ratio are reported. Not a target of
the issue: LocalEcs's speed is the tests' and the benchmarks' own cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from benchmarks._harness import (
    BENCH_CLUSTER,
    Result,
    baseline_client,
    interleaved,
    median,
    ratio,
    timed,
)
from ecs_safe.local.tasks import TaskDescriber

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["run"]

# Tasks started per instance: a fleet's tasks, spread as the drain benchmarks spread them.
_TASKS_PER_INSTANCE = 20
_BATCH = 100


@contextmanager
def _moto_answers() -> Iterator[None]:
    """DescribeTasks goes on to moto's handler while inside."""
    original = TaskDescriber.__call__

    def pass_on(self: TaskDescriber, request: dict[str, Any]) -> None:
        return None

    TaskDescriber.__call__ = pass_on  # type: ignore[method-assign]
    try:
        yield
    finally:
        TaskDescriber.__call__ = original  # type: ignore[method-assign]


async def run(local: LocalEcs, *, tasks: int, samples: int) -> Result:
    """Time ``samples`` DescribeTasks of 100 tasks per side, in a cluster of ``tasks`` tasks."""
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    instances = local.register_instances(BENCH_CLUSTER, count=max(1, tasks // _TASKS_PER_INSTANCE))
    arns: list[str] = []
    for instance in instances:
        arns += local.start_standalone_task(BENCH_CLUSTER, instance, count=_TASKS_PER_INSTANCE)
    async with baseline_client(local) as ecs:

        def batch(round_: int) -> list[str]:
            start = (round_ * _BATCH) % max(1, len(arns) - _BATCH)
            return arns[start : start + _BATCH]

        async def ours(round_: int) -> float:
            return await timed(ecs.describe_tasks(cluster=BENCH_CLUSTER, tasks=batch(round_)))

        async def moto(round_: int) -> float:
            with _moto_answers():
                return await timed(ecs.describe_tasks(cluster=BENCH_CLUSTER, tasks=batch(round_)))

        # One untimed call each: moto's first serialization and our index are built here.
        await ours(0)
        await moto(0)
        times = await interleaved({"local_ecs": ours, "moto": moto}, samples)
    return Result(
        name="local_ops",
        title="LocalEcs's DescribeTasks vs moto's (100 tasks a call)",
        params={"tasks": len(arns), "samples": samples},
        metrics={
            "local_ecs_ms": round(median(times["local_ecs"]) * 1000, 2),
            "moto_ms": round(median(times["moto"]) * 1000, 2),
            "ratio": round(ratio(times["local_ecs"], times["moto"]), 3),
        },
        notes=[
            "medians per call over HTTP; moto's side is its own handler behind the same middleware"
        ],
    )
