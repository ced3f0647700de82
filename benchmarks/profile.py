"""Profile ecs-safe's hot paths with pyinstrument (the client side only).

    python -m benchmarks.profile percall [--n 300]
    python -m benchmarks.profile fleet [--n 1000]
    python -m benchmarks.profile plan [--n 1000]      # deregister_many(dry_run=True)

LocalEcs (moto) runs in this process, but on its own threads: pyinstrument samples the main
thread, where the event loop and ecs-safe run, so the report shows where the SDK spends its
time. Needs ``pyinstrument`` (in the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.frame import Frame

from benchmarks._harness import BENCH_CLUSTER, ecs_safe_client, log_to_devnull
from benchmarks.percall import NEVER_WAITING_LIMITS
from ecs_safe import RateLimits
from ecs_safe.local import LocalEcs

__all__ = ["main"]


async def _profile(kind: str, n: int, profiler: Profiler) -> None:
    log_to_devnull()
    async with LocalEcs() as local:
        local.create_cluster(BENCH_CLUSTER)
        arns = local.register_instances(BENCH_CLUSTER, count=n + 5)
        limits = NEVER_WAITING_LIMITS if kind == "percall" else RateLimits.unlimited()
        async with ecs_safe_client(local, rate_limits=limits) as ecs:
            # Warm up (first-call costs: model schemas, structlog, botocore's caches).
            for arn in arns[n:]:
                await ecs.deregister_container_instance(arn, cluster=BENCH_CLUSTER, dry_run=True)
            profiler.start()
            if kind == "percall":
                for arn in arns[:n]:
                    await ecs.deregister_container_instance(arn, cluster=BENCH_CLUSTER)
            else:
                await ecs.deregister_many(arns[:n], cluster=BENCH_CLUSTER, dry_run=kind == "plan")
            profiler.stop()


def _package(file_path: str | None) -> str:
    if not file_path:
        return "<unknown>"
    parts = Path(file_path).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "ecs_safe" in parts:
        return "ecs_safe/" + parts[-1]
    if "benchmarks" in parts:
        return "benchmarks"
    return "stdlib/" + parts[-1] if file_path.startswith(sys.base_prefix) else parts[-1]


def self_time_by_package(profiler: Profiler) -> list[tuple[str, float]]:
    """Seconds sampled in each package's own code (ecs_safe per module), most first."""
    totals: dict[str, float] = {}
    root = profiler.last_session.root_frame() if profiler.last_session else None
    # (frame, the file of the nearest real frame): pyinstrument records a frame's own time
    # in synthetic "[self]" children that have no file of their own.
    stack: list[tuple[Frame, str | None]] = [(root, None)] if root is not None else []
    while stack:
        frame, outer = stack.pop()
        builtin = not frame.file_path or frame.file_path.startswith("<built-in>")
        path = outer if frame.is_synthetic or builtin else frame.file_path
        if frame.children:
            stack.extend((child, path) for child in frame.children)
        else:
            key = _package(path)
            totals[key] = totals.get(key, 0.0) + frame.time
    return sorted(totals.items(), key=lambda item: -item[1])


def main(argv: Sequence[str] | None = None) -> int:
    """Profile one scenario and print pyinstrument's report."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("kind", choices=["percall", "fleet", "plan"])
    parser.add_argument("--n", type=int, default=300, help="instances (default 300)")
    parser.add_argument("--all", action="store_true", help="show library frames too")
    parser.add_argument("--top", type=int, default=25, help="packages in the summary")
    parser.add_argument("--html", help="write pyinstrument's HTML report to this file")
    args = parser.parse_args(argv)
    profiler = Profiler(async_mode="disabled", interval=0.0005)
    asyncio.run(_profile(args.kind, args.n, profiler))
    if args.html:
        profiler.write_html(args.html)
    print(profiler.output_text(unicode=True, color=False, show_all=args.all))
    print("self time by package (main thread):")
    table = self_time_by_package(profiler)
    total = sum(seconds for _, seconds in table) or 1.0
    for package, seconds in table[: args.top]:
        print(f"  {package:<32} {seconds:8.3f} s  {100 * seconds / total:5.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
