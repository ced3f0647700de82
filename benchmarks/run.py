"""Run the benchmarks: ``python -m benchmarks [--quick] [--only NAME ...] [--json PATH]``.

Every benchmark runs ecs-safe and its baseline against one in-process `LocalEcs`, interleaved,
and prints medians and ratios. ``--quick`` is the smoke variant: small sizes, a few seconds,
numbers too noisy to mean anything (CI runs it to prove the benchmarks still work).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import (
    drain,
    drain_buckets,
    fleet,
    local_ops,
    memory,
    percall,
    plans,
    ratelimits,
    replace,
    service_checks,
    startup,
    targets,
    worker,
)
from benchmarks._harness import Result, log_to_devnull
from ecs_safe.local import LocalEcs

__all__ = ["BENCHMARKS", "Sizes", "main", "run_benchmarks"]


# Bound before `Sizes`, whose ``drain`` field hides the module inside the class body.
_WIDE_SCALE = drain.WIDE_SCALE


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is."""

    percall_samples: int
    percall_warmup: int
    fleet: tuple[tuple[int, int], ...]  # (instances, rounds)
    ratelimit_instances: int
    ratelimit_rounds: int
    startup_rounds: int
    memory_instances: int
    memory_rounds: int
    targets: tuple[int, int, int]  # (EC2 IDs, cluster size, rounds)
    plans: tuple[int, int, tuple[int, ...]]  # (idle instances, rounds, busy instances)
    # (single-drain rounds, fleet size, fleet's time scale, instances through exact buckets)
    drain: tuple[int, int, float, int] = (5, 120, drain.FLEET_SCALE, 1000)
    # The time scale of the fleet drained at concurrency = its size (real time by default).
    drain_wide_scale: float = _WIDE_SCALE
    # Waves of (instances, services) for the service-aware checks' reads.
    service_checks: tuple[tuple[int, int], ...] = ((10, 3), (30, 5))
    # Rolling replacements of (instances, services, wave size, surge).
    replace: tuple[tuple[int, int, int, bool], ...] = ((12, 3, 1, False), (12, 3, 3, True))
    # The event worker: (Spot warnings, recorded-only events).
    worker: tuple[int, int] = (100, 500)
    # Runs of each side of the exact-bucket drain (ecs-safe, the baseline), interleaved.
    drain_buckets_rounds: int = 2
    # LocalEcs's DescribeTasks vs moto's: (tasks in the cluster, samples per side).
    local_ops: tuple[int, int] = (2000, 30)


FULL = Sizes(
    percall_samples=200,
    percall_warmup=20,
    fleet=((300, 5), (1000, 3)),
    ratelimit_instances=300,
    ratelimit_rounds=3,
    startup_rounds=15,
    memory_instances=1000,
    memory_rounds=2,
    targets=(1000, 5000, 3),
    plans=(5000, 3, (1, 2, 3, 5, 10, 100)),
)
# Small, but a fleet still needs > 50 instances for its ceil(N/100) describes to stay within
# 1.02 requests per instance, and a rate-limited run > 100 to get past the burst.
QUICK = Sizes(
    percall_samples=6,
    percall_warmup=2,
    fleet=((60, 1),),
    ratelimit_instances=105,
    ratelimit_rounds=1,
    startup_rounds=1,
    memory_instances=20,
    memory_rounds=1,
    targets=(100, 500, 1),
    drain=(1, 12, 0.1, 105),
    drain_wide_scale=0.1,
    plans=(300, 1, (1, 3)),
    service_checks=((4, 2),),
    replace=((4, 2, 2, True),),
    worker=(12, 30),
    drain_buckets_rounds=1,
    local_ops=(200, 3),
)

Benchmark = Callable[[LocalEcs, Sizes], Awaitable[list[Result]]]


async def _percall(local: LocalEcs, sizes: Sizes) -> list[Result]:
    return [await percall.run(local, samples=sizes.percall_samples, warmup=sizes.percall_warmup)]


async def _fleet(local: LocalEcs, sizes: Sizes) -> list[Result]:
    return [await fleet.run(local, instances=n, rounds=rounds) for n, rounds in sizes.fleet]


async def _ratelimits(local: LocalEcs, sizes: Sizes) -> list[Result]:
    return [
        await ratelimits.run(
            local, instances=sizes.ratelimit_instances, rounds=sizes.ratelimit_rounds
        )
    ]


async def _startup(_local: LocalEcs, sizes: Sizes) -> list[Result]:
    return [await asyncio.to_thread(startup.run, rounds=sizes.startup_rounds)]


async def _memory(local: LocalEcs, sizes: Sizes) -> list[Result]:
    return [await memory.run(local, instances=sizes.memory_instances, rounds=sizes.memory_rounds)]


async def _targets(local: LocalEcs, sizes: Sizes) -> list[Result]:
    ids, cluster_size, rounds = sizes.targets
    return [await targets.run(local, ids=ids, cluster_size=cluster_size, rounds=rounds)]


async def _drain(local: LocalEcs, sizes: Sizes) -> list[Result]:
    rounds, fleet_size, scale, _ = sizes.drain
    return await drain.main_async(
        local,
        single_rounds=rounds,
        fleet=fleet_size,
        fleet_scale=scale,
        wide_scale=sizes.drain_wide_scale,
    )


async def _drain_buckets(local: LocalEcs, sizes: Sizes) -> list[Result]:
    return [
        await drain_buckets.run(local, instances=sizes.drain[3], rounds=sizes.drain_buckets_rounds)
    ]


async def _plans(local: LocalEcs, sizes: Sizes) -> list[Result]:
    instances, rounds, busy = sizes.plans
    return [await plans.run(local, instances=instances, rounds=rounds, busy=busy)]


async def _service_checks(local: LocalEcs, sizes: Sizes) -> list[Result]:
    return await service_checks.run(local, waves=sizes.service_checks)


async def _replace(local: LocalEcs, sizes: Sizes) -> list[Result]:
    return await replace.run(local, cases=sizes.replace)


async def _worker(local: LocalEcs, sizes: Sizes) -> list[Result]:
    spot, logged = sizes.worker
    return [await worker.run(local, spot=spot, logged=logged)]


async def _local_ops(local: LocalEcs, sizes: Sizes) -> list[Result]:
    tasks, samples = sizes.local_ops
    return [await local_ops.run(local, tasks=tasks, samples=samples)]


#: Every benchmark, by the name ``--only`` takes, in the order they run.
BENCHMARKS: dict[str, Benchmark] = {
    "startup": _startup,
    "percall": _percall,
    "fleet": _fleet,
    "ratelimits": _ratelimits,
    "memory": _memory,
    "targets": _targets,
    "drain": _drain,
    "drain_buckets": _drain_buckets,
    "plans": _plans,
    "service_checks": _service_checks,
    "replace": _replace,
    "worker": _worker,
    "local_ops": _local_ops,
}


async def run_benchmarks(names: Sequence[str], sizes: Sizes) -> list[Result]:
    """Run the named benchmarks on one `LocalEcs`, printing each report as it completes."""
    results: list[Result] = []
    log_to_devnull()
    async with LocalEcs() as local:
        for name in names:
            for result in await BENCHMARKS[name](local, sizes):
                print(result.render(), flush=True)
                results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run, print, and write the JSON report if asked."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smoke variant: small sizes, a few seconds"
    )
    parser.add_argument(
        "--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS), metavar="NAME"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    results = asyncio.run(run_benchmarks(args.only, sizes))
    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} benchmark report(s) in {elapsed:.1f} s", flush=True)
    if args.json is not None:
        report: dict[str, Any] = {
            "quick": args.quick,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "elapsed_s": elapsed,
            "results": [result.to_json() for result in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0
