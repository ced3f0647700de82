"""An orchestration script: retire instances one by one with the blocking `SyncEcsSafeClient`.

The shape of a maintenance job (a runbook step, a CI job, an Ansible/Fabric task): plan first,
show the plan, then drain and deregister each instance in turn, each with a deadline, and exit
non-zero if anything was left undone. No ``async`` anywhere: `SyncEcsSafeClient` runs the async
client on its own background loop.

Run it:

    python examples/orchestration_sync.py
        Against an embedded local ECS (LocalEcs, moto's server mode): no AWS account needed.
        It seeds two idle instances and one that runs a standalone batch task.

    python examples/orchestration_sync.py --aws --cluster CLUSTER [--apply] INSTANCE...
        Against real AWS (the normal credential chain and Region). Only the plan unless --apply.

Exit status: 0 when every instance was retired (or, without --apply, would be), 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

import structlog

from ecs_safe import EcsSafeError, SyncEcsSafeClient


@contextlib.contextmanager
def local_cluster() -> Iterator[tuple[dict[str, Any], str, list[str]]]:
    """An embedded ECS with a seeded cluster; yields client keywords, cluster and instances."""
    from ecs_safe.local import LocalEcs  # noqa: PLC0415 - only the local mode needs moto

    with LocalEcs() as local:
        local.create_cluster("batch")
        idle_a, idle_b, worker = local.register_instances("batch", count=3)
        # A task no service manages: draining never moves it, so this job stops it.
        local.start_standalone_task("batch", worker, family="report")
        yield dict(local.client_kwargs()), "batch", [idle_a, worker, idle_b]


def retire(ecs: SyncEcsSafeClient, cluster: str, instances: list[str], *, apply: bool) -> int:
    """Plan, then drain and deregister each instance in turn; return the exit status."""
    # 1. The plan: reads only. Standalone tasks are planned to be stopped, as this job will.
    plan = ecs.deregister_many(
        instances, cluster=cluster, drain=True, dry_run=True, standalone_tasks="stop"
    )
    print("plan:")
    for outcome in plan.outcomes:
        tasks = outcome.result.tasks if outcome.result else []
        kinds = ", ".join(sorted({t.kind for t in tasks})) or "no tasks"
        print(f"  {outcome.status:<17} {outcome.container_instance.rsplit('/', 1)[-1]} ({kinds})")
    if not plan.ok:
        for outcome in [*plan.refused, *plan.failed]:
            print(f"  blocked: {outcome.error}")
        return 1
    if not apply:
        print("plan only (pass --apply to retire them)")
        return 0

    # 2. One at a time: never more than one instance's capacity out of service.
    failures = 0
    for ref in instances:
        short = ref.rsplit("/", 1)[-1]
        try:
            result = ecs.drain_and_deregister(
                ref,
                cluster=cluster,
                timeout=120.0,
                poll_interval=0.5,
                on_timeout="reactivate",  # a stuck drain gives its capacity back
                standalone_tasks="stop",
            )
        except EcsSafeError as exc:
            failures += 1
            print(f"retire {short}: FAILED ({exc.code}): {exc}")
            continue
        print(f"retire {short}: deregistered (EC2 {result.container_instance.ec2_instance_id})")
    print(f"done: {len(instances) - failures} of {len(instances)} retired")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    """Parse the arguments, pick local or AWS, and retire the instances."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aws", action="store_true", help="use real AWS, not LocalEcs")
    parser.add_argument("--cluster", help="the cluster (with --aws)")
    parser.add_argument("--apply", action="store_true", help="really retire (with --aws)")
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
        with SyncEcsSafeClient() as ecs:
            return retire(ecs, args.cluster, args.instances, apply=args.apply)
    with (
        local_cluster() as (client_kwargs, cluster, instances),
        SyncEcsSafeClient(**client_kwargs) as ecs,
    ):
        return retire(ecs, cluster, instances, apply=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
