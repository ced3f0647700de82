"""A fleet roll: plan with a dry run, then drain and deregister the fleet, showing progress.

The shape of an AMI or instance-type roll: take a whole set of container instances out of the
cluster, each drained first so that its service tasks move elsewhere. The dry run comes first
and costs reads only; what it refuses (say, an instance running a task that no service manages)
is left alone and reported. The rest is rolled in waves with `deregister_many`: it sets a whole
batch DRAINING at once, so the wave size is how much capacity the roll takes away at a time.

Run it:

    python examples/fleet_roll.py
        Against an embedded local ECS (LocalEcs, moto's server mode): no AWS account needed.
        It seeds six old instances to roll (idle ones, service tasks, one standalone task)
        and two new ones that joined the cluster. LocalEcs's service scheduler moves the
        service tasks off DRAINING instances onto instances with room, as ECS's does: a
        replacement starts before the old task stops (the service's minimumHealthyPercent
        of 100), and the script shows the fewest tasks the service ever ran.

    python examples/fleet_roll.py --aws --cluster CLUSTER [--apply] INSTANCE...
        Against real AWS (the normal credential chain and Region). Only the plan unless --apply.

Exit status: 0 when everything the plan allowed was rolled, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from ecs_safe import BatchResult, EcsSafeClient, PolicyViolationError

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

WAVE = 2  # instances per wave: deregister_many drains a whole batch at once


def short(ref: str) -> str:
    """The container instance ID of an ID or ARN."""
    return ref.rsplit("/", 1)[-1]


def summary(batch: BatchResult) -> str:
    """``3 succeeded, 1 refused, 0 failed``."""
    return (
        f"{len(batch.succeeded)} succeeded, {len(batch.refused)} refused, "
        f"{len(batch.failed)} failed"
    )


class ProgressPrinter:
    """A progress callback: one line per finished instance and per change of a drain."""

    def __init__(self) -> None:
        self._left: dict[str, int] = {}

    def __call__(self, event: Mapping[str, Any]) -> None:
        """Receive one progress event (`deregister_many` calls it on its own loop)."""
        if event["event"] == "ecs_safe.batch.progress":
            ref = short(str(event["container_instance"]))
            print(f"  [{event['done']}/{event['total']}] {event['status']:<12} {ref}")
        elif event["event"] == "ecs_safe.drain.progress":
            ref, left = short(str(event["container_instance_arn"])), int(event["remaining_tasks"])
            if self._left.get(ref) != left:  # only changes, not every poll
                self._left[ref] = left
                print(f"  draining {ref}: {left} task(s) left")


async def roll(
    ecs: EcsSafeClient, cluster: str, instances: list[str], *, apply: bool
) -> BatchResult | None:
    """Plan the roll, print the plan, and (with ``apply``) roll what the plan allows."""
    plan = await ecs.deregister_many(instances, cluster=cluster, drain=True, dry_run=True)
    print(f"plan: {summary(plan)}")
    for outcome in [*plan.refused, *plan.failed]:
        error = outcome.error
        why = (
            ", ".join(v.rule for v in error.decision.violations)
            if isinstance(error, PolicyViolationError)
            else str(error)
        )
        print(f"  left alone: {short(outcome.container_instance)} ({why})")
    if not apply:
        print("plan only (pass --apply to roll)")
        return None
    rollable = [outcome.container_instance for outcome in plan.succeeded]
    waves = [rollable[i : i + WAVE] for i in range(0, len(rollable), WAVE)]
    outcomes = []
    for number, wave in enumerate(waves, start=1):
        print(f"wave {number}/{len(waves)}: {', '.join(short(ref) for ref in wave)}")
        result = await ecs.deregister_many(
            wave,
            cluster=cluster,
            drain=True,
            timeout=60.0,
            poll_interval=0.2,
            progress=ProgressPrinter(),
        )
        outcomes.extend(result.outcomes)
        if not result.ok:
            print("stopping the roll: this wave did not finish cleanly")
            break
    return BatchResult(outcomes=outcomes)


@contextlib.asynccontextmanager
async def local_fleet() -> AsyncIterator[tuple[LocalEcs, EcsSafeClient, str, list[str]]]:
    """An embedded ECS with a seeded fleet, and a client pointed at it."""
    from ecs_safe.local import LocalEcs  # noqa: PLC0415 - only the local mode needs moto

    # A service scheduler pass every 50 ms: ECS reacts within seconds, LocalEcs in a blink.
    async with LocalEcs(scheduler_interval=0.05) as local:
        local.create_cluster("fleet")
        fleet = local.register_instances("fleet", count=6)  # the old ones, to roll
        local.register_instances("fleet", count=2)  # the new ones
        local.create_service("fleet", "web", desired_count=3)
        for ref in fleet[2:5]:
            local.start_service_task("fleet", ref, "web")
        local.scheduler.manage("fleet", "web")  # from here on, the scheduler's
        local.start_standalone_task("fleet", fleet[5], family="nightly-report")
        async with EcsSafeClient(**local.client_kwargs()) as ecs:
            yield local, ecs, "fleet", fleet


async def main(argv: list[str]) -> int:
    """Parse the arguments, pick local or AWS, and roll the fleet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aws", action="store_true", help="use real AWS, not LocalEcs")
    parser.add_argument("--cluster", help="the cluster (with --aws)")
    parser.add_argument("--apply", action="store_true", help="really roll (with --aws)")
    parser.add_argument("instances", nargs="*", help="container instance IDs (with --aws)")
    args = parser.parse_args(argv)
    # The script configures logging (the library never does): warnings and up, on stderr.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    if args.aws:
        if not (args.cluster and args.instances):
            parser.error("--aws needs --cluster and at least one container instance")
        async with EcsSafeClient() as ecs:
            result = await roll(ecs, args.cluster, args.instances, apply=args.apply)
    else:
        async with local_fleet() as (local, ecs, cluster, fleet):
            result = await roll(ecs, cluster, fleet, apply=True)
            # The scheduler's record of every task start and stop during the roll.
            print(f"service web: never below {local.scheduler.lowest_running('web')} running")
    if result is None:
        return 0
    print(f"roll: {summary(result)}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
