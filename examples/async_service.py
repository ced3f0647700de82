"""An async service that retires ECS container instances, awaiting `EcsSafeClient`.

The shape of a real consumer: a long-running worker (say, behind an Auto Scaling lifecycle hook
or a queue) that receives "retire this instance" requests, keeps **one** client open for its
whole life (client creation is expensive and bound to the event loop) and handles requests
concurrently. Each request is answered with what happened, and refusals are answers, not crashes.
The application, not the library, configures logging.

Run it:

    python examples/async_service.py
        Against an embedded local ECS (LocalEcs, moto's server mode): no AWS account needed.
        It seeds a cluster with two idle instances and one that runs a service task.

    python examples/async_service.py --aws --cluster CLUSTER [--apply] INSTANCE...
        Against real AWS (the normal credential chain and Region). A dry run unless --apply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from ecs_safe import EcsSafeClient, EcsSafeError, PolicyViolationError


@dataclass(frozen=True)
class RetireRequest:
    """One request the service receives: retire this container instance."""

    container_instance: str


class RetirementService:
    """Retires container instances on request, several at once, with one shared client."""

    def __init__(self, ecs: EcsSafeClient, *, cluster: str, dry_run: bool, workers: int) -> None:
        self._ecs = ecs
        self._cluster = cluster
        self._dry_run = dry_run
        self._workers = workers
        self._log = structlog.get_logger("retirement_service")

    async def handle(self, request: RetireRequest) -> str:
        """Retire one instance; return a one-line answer (never raise for an ECS outcome)."""
        ref = request.container_instance
        try:
            result = await self._ecs.deregister_container_instance(
                ref, cluster=self._cluster, dry_run=self._dry_run
            )
        except PolicyViolationError as refusal:
            # The policy said no before anything changed; the caller decides what next
            # (drain it, or come back later).
            reasons = "; ".join(v.rule for v in refusal.decision.violations)
            return f"refused {ref}: {reasons}"
        except EcsSafeError as exc:
            self._log.warning("retire.failed", container_instance=ref, error=str(exc))
            return f"failed {ref}: {exc.code}"
        verb = "would retire" if result.dry_run else "retired"
        return f"{verb} {ref} (EC2 {result.container_instance.ec2_instance_id})"

    async def serve(self, requests: asyncio.Queue[RetireRequest | None]) -> list[str]:
        """Consume requests until a ``None`` arrives for each worker; return the answers."""
        answers: list[str] = []

        async def worker() -> None:
            while (request := await requests.get()) is not None:
                answers.append(await self.handle(request))

        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(worker())
        return answers


@contextlib.asynccontextmanager
async def local_cluster() -> AsyncIterator[tuple[EcsSafeClient, str, list[str]]]:
    """An embedded ECS with a seeded cluster, and a client pointed at it."""
    from ecs_safe.local import LocalEcs  # noqa: PLC0415 - only the local mode needs moto

    async with LocalEcs() as local:
        local.create_cluster("workers")
        local.create_service("workers", "api")
        idle_a, idle_b, busy = local.register_instances("workers", count=3)
        local.start_service_task("workers", busy, "api")
        async with EcsSafeClient(**local.client_kwargs()) as ecs:
            yield ecs, "workers", [idle_a, busy, idle_b]


async def main(argv: list[str]) -> int:
    """Start the service, feed it requests, print its answers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aws", action="store_true", help="use real AWS, not LocalEcs")
    parser.add_argument("--cluster", help="the cluster (with --aws)")
    parser.add_argument("--apply", action="store_true", help="really deregister (with --aws)")
    parser.add_argument("instances", nargs="*", help="container instance IDs (with --aws)")
    args = parser.parse_args(argv)
    if args.aws and not (args.cluster and args.instances):
        parser.error("--aws needs --cluster and at least one container instance")

    # The application configures logging; the library only emits events.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )

    async with contextlib.AsyncExitStack() as stack:
        if args.aws:
            ecs = await stack.enter_async_context(EcsSafeClient())
            cluster, instances, dry_run = args.cluster, args.instances, not args.apply
        else:
            ecs, cluster, instances = await stack.enter_async_context(local_cluster())
            dry_run = False
        service = RetirementService(ecs, cluster=cluster, dry_run=dry_run, workers=2)
        requests: asyncio.Queue[RetireRequest | None] = asyncio.Queue()
        for ref in instances:
            requests.put_nowait(RetireRequest(ref))
        for _ in range(2):
            requests.put_nowait(None)  # one stop signal per worker
        answers = await service.serve(requests)

    for answer in sorted(answers):
        print(f"service: {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
