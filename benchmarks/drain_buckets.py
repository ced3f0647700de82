"""Drain a fleet at once through ECS's exact buckets: the poller's cost at scale (issue 15).

N instances, two service tasks each, stopped 5 s after DRAINING (the simulated scheduler of
`benchmarks.drain`), drained with ``deregister_many(drain=True, concurrency=N)`` through
`ThrottlingProxy` (ECS's documented buckets, exact: read burst 100 at 20/s, modify burst 100 at
40/s), with the client's default `RateLimits`, in real time.

The floor of the job is what the modify bucket allows once the tasks are gone: N/10 DRAINING
calls inside the burst, 5 s for the tasks to stop (the bucket refills meanwhile), then N
deregistrations, 100 at once and 40 a second after: ``5 + (N - 100) / 40`` (27.5 s for 1,000).

Beside it, in the same run, through the same proxy, on its own fresh seed, interleaved
(A B, B A, ...): the issue's baseline, a careful plain-aiobotocore script (`drain_fleet`) that
polls the whole fleet each round. Reported for both: the whole run and its wait phase (from
the last DRAINING to the last deregistration) against the floor, ecs-safe / baseline, the
requests and ThrottlingExceptions, and a breakdown by phase, so that a run on a loaded machine
can still be reasoned about:

- ``pre_flight_s``: start -> the first mutating call (ecs-safe's first ownership mark, the
  baseline's first DRAINING), as ECS (LocalEcs's backend) saw it;
- ``cordon_s``: the first mutating call -> the last instance set DRAINING;
- ``first_deregistration_after_stop_s``: the first task stopped -> the first deregistration
  (what the confirming look costs: one task describe round trip at best);
- ``deregistration_phase_s`` and ``deregistrations_per_s``: the first deregistration -> the
  last, and its rate (the modify bucket allows 40/s);
- ``throttled_at_s``: when each ThrottlingException was answered, seconds from the start
  (sampled every 50 ms).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from benchmarks._harness import (
    BENCH_CLUSTER,
    Check,
    Result,
    baseline_config,
    ecs_safe_client,
    interleaved,
    median,
)
from benchmarks.drain import Scheduler, seed
from benchmarks.throttle_proxy import ECS_BUCKETS, ThrottlingProxy

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

    from ecs_safe.local import LocalEcs

__all__ = [
    "BASELINE_POLL_S",
    "TARGET_FLOOR_RATIO",
    "TARGET_READS_PER_ROUND",
    "drain_fleet",
    "floor_s",
    "run",
]

#: The run's wall time / the floor.
TARGET_FLOOR_RATIO = 1.3
#: Reads per instance per poll round.
TARGET_READS_PER_ROUND = 0.1
#: Seconds from DRAINING to the tasks stopped.
STOP_AFTER_S = 5.0
#: Seconds between the starts of two of the baseline's rounds (ecs-safe's poller floor).
BASELINE_POLL_S = 2.0
# Requests of one kind the baseline has in flight at once (fewer than its 64 connections).
_IN_FLIGHT = 50
# botocore's standard retry mode, with room for the throttles that jitter still causes.
_BASELINE_RETRIES = {"mode": "standard", "max_attempts": 10}
# How often the proxy's throttle count is sampled, to say when throttles came.
_SAMPLE_S = 0.05


def floor_s(instances: int) -> float:
    """The least time the job can take through ECS's buckets (see the module's docstring)."""
    return STOP_AFTER_S + max(0, instances - 100) / 40.0


# ----------------------------------------------------------------------------- the baseline


class _Pacer:
    """A careful script's pacing: ECS's documented bucket, kept on the client side.

    A token is taken once the request has one of the few connections it may use
    (`_IN_FLIGHT`): a token taken while the request then waits for a connection would reach
    ECS late, bunched with the next, and be throttled.
    """

    def __init__(self, burst: int, per_s: float) -> None:
        self.burst, self.per_s = burst, per_s
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.slots = asyncio.Semaphore(_IN_FLIGHT)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.slots:
            await self.take()
            yield

    async def take(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_s)
        self.updated = now
        self.tokens -= 1.0
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.per_s)


@dataclass
class _Script:
    """The baseline's client, its two pacers, and the requests it sent (retries apart)."""

    client: ECSClient
    cluster: str
    read: _Pacer = field(default_factory=lambda: _Pacer(100, ECS_BUCKETS["read"].per_s))
    modify: _Pacer = field(default_factory=lambda: _Pacer(100, ECS_BUCKETS["modify"].per_s))
    retries: int = 0

    def _count(self, response: Any) -> Any:
        self.retries += int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return response

    async def describe(self, arns: Sequence[str]) -> list[Any]:
        async def one(batch: Sequence[str]) -> list[Any]:
            async with self.read.slot():
                answer = self._count(
                    await self.client.describe_container_instances(
                        cluster=self.cluster, containerInstances=list(batch)
                    )
                )
            return list(answer["containerInstances"])

        batches = [arns[i : i + 100] for i in range(0, len(arns), 100)]
        found = await asyncio.gather(*(one(b) for b in batches))
        return [instance for batch in found for instance in batch]

    async def tasks(self, stopped: set[str]) -> list[Any] | None:
        """The cluster's tasks not seen STOPPED before; ``None`` if one could not be described.

        Listed for both desired statuses (a task told to stop is still on its instance until
        STOPPED: aws-cdk #13506), every page, described 100 a call.
        """
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            token: str | None = None
            while True:
                params: dict[str, Any] = {"cluster": self.cluster, "desiredStatus": desired}
                if token:
                    params["nextToken"] = token
                async with self.read.slot():
                    page = self._count(await self.client.list_tasks(**params))
                arns.extend(page.get("taskArns", []))
                token = page.get("nextToken")
                if not token:
                    break
        fresh = [a for a in dict.fromkeys(arns) if a not in stopped]

        async def one(batch: Sequence[str]) -> tuple[list[Any], bool]:
            async with self.read.slot():
                answer = self._count(
                    await self.client.describe_tasks(cluster=self.cluster, tasks=batch)
                )
            failed = any(f.get("reason") != "MISSING" for f in answer.get("failures", []))
            return list(answer["tasks"]), failed

        described = await asyncio.gather(
            *(one(fresh[i : i + 100]) for i in range(0, len(fresh), 100))
        )
        if any(failed for _, failed in described):
            return None  # a task it could not see may be on any instance: judge none
        found = [task for tasks, _ in described for task in tasks]
        stopped.update(t["taskArn"] for t in found if t.get("lastStatus") == "STOPPED")
        return [t for t in found if t.get("lastStatus") != "STOPPED"]

    async def drain(self, arns: Sequence[str]) -> None:
        await asyncio.gather(*(self._draining(arns[i : i + 10]) for i in range(0, len(arns), 10)))

    async def _draining(self, batch: Sequence[str]) -> None:
        async with self.modify.slot():
            self._count(
                await self.client.update_container_instances_state(
                    cluster=self.cluster, containerInstances=list(batch), status="DRAINING"
                )
            )

    async def deregister(self, arn: str) -> None:
        async with self.modify.slot():
            self._count(
                await self.client.deregister_container_instance(
                    cluster=self.cluster, containerInstance=arn, force=False
                )
            )


async def drain_fleet(client: ECSClient, cluster: str, arns: Sequence[str]) -> tuple[int, int]:
    """The issue's baseline: drain ``arns`` with plain aiobotocore, polling the whole fleet.

    What a careful script does: describe every instance (100 a call) and refuse what is not
    ACTIVE; list the cluster's tasks (both desired statuses) and describe them (100 a call),
    and refuse an instance with a task no service runs; set the rest DRAINING (10 a call);
    then each round (every `BASELINE_POLL_S`) describe every instance still draining and the
    cluster's tasks again (those not seen STOPPED), and deregister, unforced, each instance
    that is DRAINING, whose counters are zero and on which no listed task is left. Every call
    waits for its bucket (`_Pacer`, ECS's documented shape); botocore's own retries take the
    throttles jitter still causes (counted). Returns (deregistered, botocore retries).
    """
    script = _Script(client, cluster)
    stopped: set[str] = set()
    instances = await script.describe(arns)
    tasks = await script.tasks(stopped)
    if tasks is None:
        msg = "a task could not be described: nothing is drained"
        raise RuntimeError(msg)
    standalone = {
        t.get("containerInstanceArn")
        for t in tasks
        if not str(t.get("group", "")).startswith("service:")
    }
    chosen = [
        i["containerInstanceArn"]
        for i in instances
        if i.get("status") == "ACTIVE" and i["containerInstanceArn"] not in standalone
    ]
    await script.drain(chosen)
    waiting = set(chosen)
    started: list[asyncio.Task[None]] = []
    while waiting:
        began = time.monotonic()
        described = await script.describe(sorted(waiting))
        live = await script.tasks(stopped)
        if live is not None:
            busy = {t.get("containerInstanceArn") for t in live}
            for instance in described:
                arn = instance["containerInstanceArn"]
                idle = not instance.get("runningTasksCount") and not instance.get(
                    "pendingTasksCount"
                )
                if instance.get("status") == "DRAINING" and idle and arn not in busy:
                    waiting.discard(arn)
                    started.append(asyncio.create_task(script.deregister(arn)))
        if waiting:
            await asyncio.sleep(max(0.0, began + BASELINE_POLL_S - time.monotonic()))
    await asyncio.gather(*started)
    return len(started), script.retries


# ----------------------------------------------------------------------------- one run


@dataclass
class _Run:
    """One side's run: its times (as ECS saw them) and counts."""

    took: float
    requests: int
    throttled: int
    throttled_at: list[float]
    deregistered: int
    phases: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _marks(local: LocalEcs) -> Iterator[list[float]]:
    """When LocalEcs's backend took each PutAttributes (ecs-safe's ownership marks)."""
    backend = ecs_backends[DEFAULT_ACCOUNT_ID][local.region_name]
    original = backend.put_attributes
    seen: list[float] = []

    def put_attributes(cluster_name: str, attributes: Any = None) -> None:
        seen.append(time.perf_counter())
        return original(cluster_name, attributes)

    backend.put_attributes = put_attributes  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        backend.put_attributes = original  # type: ignore[method-assign]


async def _sample_throttles(proxy: ThrottlingProxy, start: float, out: list[float]) -> None:
    last = 0
    while True:
        await asyncio.sleep(_SAMPLE_S)
        _, throttled = proxy.counts()
        out.extend([round(time.perf_counter() - start, 2)] * (throttled - last))
        last = throttled


def _phases(sched: Scheduler, marks: list[float], start: float) -> dict[str, float]:
    draining = sorted(sched.draining_at.values())
    deregistered = sorted(sched.deregistered_at.values())
    stopped = sorted(sched.stopped_at.values())
    first_change = min([*marks[:1], *draining[:1]])
    span = deregistered[-1] - deregistered[0]
    return {
        "pre_flight_s": first_change - start,
        "cordon_s": draining[-1] - first_change,
        "first_deregistration_after_stop_s": deregistered[0] - stopped[0],
        "deregistration_phase_s": span,
        "deregistrations_per_s": (len(deregistered) - 1) / span if span > 0 else 0.0,
        "wait_phase_s": deregistered[-1] - draining[-1],
    }


Side = Callable[[str, list[str]], Awaitable[dict[str, Any]]]


async def _one_run(local: LocalEcs, instances: int, side: Side) -> _Run:
    plan = seed(local, instances, [STOP_AFTER_S, STOP_AFTER_S])
    tasks = {arn.rsplit("/", 1)[-1]: entries for arn, entries in plan.items()}
    throttled_at: list[float] = []
    async with ThrottlingProxy(local.endpoint_url) as proxy:
        proxy.reset()
        with Scheduler(local, BENCH_CLUSTER, tasks) as sched, _marks(local) as marks:
            start = time.perf_counter()
            sampler = asyncio.create_task(_sample_throttles(proxy, start, throttled_at))
            try:
                extra = await side(proxy.url, list(plan))
                took = extra.pop("took")
            finally:
                sampler.cancel()
                with suppress(asyncio.CancelledError):
                    await sampler
        forwarded, throttled = proxy.counts()
    return _Run(
        took=took,
        requests=forwarded,
        throttled=throttled,
        throttled_at=throttled_at,
        deregistered=len(sched.deregistered_at),
        phases=_phases(sched, marks, start),
        extra=extra,
    )


@asynccontextmanager
async def _timer() -> AsyncIterator[dict[str, Any]]:
    out: dict[str, Any] = {}
    began = time.perf_counter()
    yield out
    out["took"] = time.perf_counter() - began


def _ecs_safe_side(local: LocalEcs, instances: int) -> Side:
    async def side(url: str, arns: list[str]) -> dict[str, Any]:
        # The client is made before the clock starts, as the baseline's is.
        async with ecs_safe_client(local, endpoint_url=url) as ecs:
            async with _timer() as out:
                await ecs.deregister_many(
                    arns,
                    cluster=BENCH_CLUSTER,
                    drain=True,
                    concurrency=instances,
                    require_room=False,  # every host drains at once: no room by construction
                )
            stats = ecs.poll_stats
        out.update(
            poll_rounds=stats.rounds,
            poll_reads=stats.reads,
            reads_per_instance_per_round=stats.reads_per_look,
        )
        return out

    return side


def _baseline_side(local: LocalEcs) -> Side:
    async def side(url: str, arns: list[str]) -> dict[str, Any]:
        config = baseline_config().merge(AioConfig(retries=_BASELINE_RETRIES))
        async with (
            local.session().create_client(
                "ecs", region_name=local.region_name, endpoint_url=url, config=config
            ) as client,
            _timer() as out,
        ):
            _, retries = await drain_fleet(client, BENCH_CLUSTER, arns)
        out["botocore_retries"] = retries
        return out

    return side


# ----------------------------------------------------------------------------- the report


async def run(local: LocalEcs, *, instances: int, rounds: int = 2) -> Result:
    """Drain ``instances`` at once through the exact buckets: ecs-safe and the baseline.

    ``rounds`` of each, interleaved (A B, B A, ...), each on a fresh seed.
    """
    load_before = os.getloadavg()[0]
    runs: dict[str, list[_Run]] = {"ecs_safe": [], "baseline": []}
    sides = {"ecs_safe": _ecs_safe_side(local, instances), "baseline": _baseline_side(local)}

    def measured(name: str) -> Callable[[int], Awaitable[float]]:
        async def one(_round: int) -> float:
            done = await _one_run(local, instances, sides[name])
            runs[name].append(done)
            return done.took

        return one

    took = await interleaved({name: measured(name) for name in sides}, rounds)
    load_after = os.getloadavg()[0]
    floor = floor_s(instances)
    ours, theirs = median(took["ecs_safe"]), median(took["baseline"])
    result = Result(
        name=f"drain_buckets_{instances}",
        title=f"Drain {instances} instances at once through ECS's exact buckets (real time), "
        "beside the issue's plain-aiobotocore baseline",
        params={"instances": instances, "stop_after_s": STOP_AFTER_S, "rounds": rounds},
    )
    mine = runs["ecs_safe"]
    wait = median([r.phases["wait_phase_s"] for r in mine])
    per_round = median([r.extra["reads_per_instance_per_round"] for r in mine])
    metrics: dict[str, Any] = {
        "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
        "floor_s": floor,
        "run_s": ours,
        "run_over_floor": ours / floor,
        "wait_phase_s": wait,
        "wait_phase_over_floor": wait / floor,
        "baseline_run_s": theirs,
        "baseline_over_floor": theirs / floor,
        "ecs_safe_over_baseline": ours / theirs,
    }
    for name, done in runs.items():
        prefix = "" if name == "ecs_safe" else "baseline_"
        metrics[f"{prefix}runs_s"] = [round(r.took, 2) for r in done]
        metrics[f"{prefix}requests"] = [r.requests for r in done]
        metrics[f"{prefix}throttled"] = [r.throttled for r in done]
        metrics[f"{prefix}throttled_at_s"] = [r.throttled_at for r in done]
        metrics[f"{prefix}deregistered"] = [r.deregistered for r in done]
        for phase in done[0].phases:
            if phase != "wait_phase_s" or prefix:
                # The median as the metric (a number, like every timing of a report); each
                # run's value in the notes.
                values = [round(r.phases[phase], 2) for r in done]
                metrics[f"{prefix}{phase}"] = median(values)
                result.notes.append(f"{prefix}{phase} per run: {values}")
    metrics["poll_rounds"] = [r.extra["poll_rounds"] for r in mine]
    metrics["poll_reads"] = [r.extra["poll_reads"] for r in mine]
    metrics["reads_per_instance_per_round"] = per_round
    metrics["baseline_botocore_retries"] = [r.extra["botocore_retries"] for r in runs["baseline"]]
    result.metrics.update(metrics)
    result.checks.append(Check("whole run / floor (median)", ours / floor, TARGET_FLOOR_RATIO))
    result.checks.append(Check("wait phase / floor (median)", wait / floor, TARGET_FLOOR_RATIO))
    result.checks.append(
        Check("reads per instance per poll round", per_round, TARGET_READS_PER_ROUND, "")
    )
    result.notes.append(
        "phases as LocalEcs's backend saw them; lists hold one value per run, in run order "
        f"(interleaved); load_avg_1m before and after ({os.cpu_count()} cores)"
    )
    return result
