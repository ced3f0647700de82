"""Drain: the peers' scenarios (issue 15), on LocalEcs with a simulated ECS scheduler.

moto never moves tasks off a DRAINING instance, so the benchmark plays the scheduler: when an
instance is set DRAINING (seen in moto's backend), its service tasks are stopped after the
scenario's delays, by one thread, straight in moto's backend. Two scenarios, both in *scaled
time* so that they run in seconds:

- ``drain_single``: one instance, two service tasks stopped 33 s and 67 s after DRAINING;
  requests per instance (target <= 6), and the lag from the last task stopped to the
  deregistration (target: median <= 5 s). Repeated ``rounds`` times; once by polling alone,
  and once with a task-events queue (``task_events_queue``): the scheduler then also sends
  each stop's ECS Task State Change event to it, as an EventBridge rule would (at once: the
  real rule's delivery lag, typically under a second, is not in the numbers), and the SQS
  requests are counted apart from ECS's.
- ``drain_fleet``: 120 instances, one service task each, stopped 33 s after DRAINING, at the
  default concurrency (10) and at 120; wall time and requests per instance (peers: 66-94 s,
  5.2-18.9 requests).

Scaled time: every duration of the scenario (the task delays) and of ecs-safe's pacing (the
poller's minimum interval, ``poll_interval``, the read and modify rates) is multiplied by
``SCALE``; the times reported are divided by it again (scenario seconds). What does not scale
is the machine: a moto request takes a few real milliseconds, which count 1/``SCALE`` times
more in scenario seconds, so scaled results are pessimistic. Request counts do not depend on
the scale. The 1,000-instance run through exact ECS buckets is in real time
(`benchmarks.drain_buckets`).
"""

from __future__ import annotations

import heapq
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from benchmarks._harness import BENCH_CLUSTER, Check, Result, median
from ecs_safe import EcsSafeClient, RateLimits
from ecs_safe._constants import DEFAULT_POLL_INTERVAL, MIN_POLL_INTERVAL
from ecs_safe._poller import Poller

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = [
    "FLEET_SCALE",
    "SCALE",
    "WIDE_SCALE",
    "Scheduler",
    "run_fleet",
    "run_single",
    "scaled_client",
    "seed",
]

#: Real seconds per scenario second for the single drain: 0.2 runs its 67 s in 13.4 s (at
#: 0.05 a moto request's real milliseconds added about 2 s to each lag).
SCALE = 0.2
#: The same for the fleet: slower, since a fleet's pre-flights are hundreds of moto requests
#: whose real milliseconds would otherwise count 20 times over.
FLEET_SCALE = 0.25
#: The fleet at concurrency = its size, in real time: one wave of 33 s, where the pre-flight's
#: and the rounds' moto milliseconds, counted four times over at FLEET_SCALE, would add 20 s.
WIDE_SCALE = 1.0
#: Requests per instance, single-instance scenario (the fewest peer: 6).
TARGET_REQUESTS = 6.0
#: Median seconds from the last task stopped to the deregistration.
TARGET_LAG_S = 5.0
#: The fastest peer's 120-instance fleet drain, seconds.
TARGET_FLEET_S = 66.0


@dataclass
class Scheduler:
    """Plays ECS's scheduler on LocalEcs: stops each instance's tasks after delays from DRAINING.

    Wraps moto's ``update_container_instances_state`` and ``deregister_container_instance``
    (in-process), so the delays run from the moment the backend set DRAINING, whoever asked,
    and deregistrations are timed where they happen.
    """

    local: LocalEcs
    cluster: str
    tasks: dict[str, list[tuple[str, float]]]  # instance ID -> (task ARN, delay in seconds)
    stopped_at: dict[str, float] = field(default_factory=dict)  # instance ID -> last stop
    deregistered_at: dict[str, float] = field(default_factory=dict)
    # Send each stop's ECS Task State Change event (to LocalEcs's task-events queues).
    events: bool = False
    draining_at: dict[str, float] = field(default_factory=dict)
    stops: int = 0
    # One thread stops every task when due, straight in moto's backend (what StopTask's handler
    # calls): a thousand HTTP StopTasks at once would only measure moto's server.
    _due: list[tuple[float, str, str]] = field(default_factory=list)
    _wake: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _restore: list[Callable[[], None]] = field(default_factory=list)

    def __enter__(self) -> Scheduler:
        backend = ecs_backends[DEFAULT_ACCOUNT_ID][self.local.region_name]
        self._backend = backend
        worker = threading.Thread(target=self._serve, name="bench-scheduler", daemon=True)
        worker.start()
        self._restore.append(lambda: self._close(worker))
        set_state = backend.update_container_instances_state
        deregister = backend.deregister_container_instance

        def on_set_state(cluster_str: str, list_container_instance_ids: Any, status: str) -> Any:
            answer = set_state(cluster_str, list_container_instance_ids, status)
            if status == "DRAINING":
                for ref in list_container_instance_ids:
                    with self._lock:
                        self.draining_at[ref.rsplit("/", 1)[-1]] = time.perf_counter()
                    for task, delay in self.tasks.pop(ref.rsplit("/", 1)[-1], []):
                        self._stop_later(ref.rsplit("/", 1)[-1], task, delay)
            return answer

        def on_deregister(cluster_str: str, container_instance_str: str, force: bool) -> Any:
            answer = deregister(cluster_str, container_instance_str, force)
            with self._lock:
                self.deregistered_at[container_instance_str.rsplit("/", 1)[-1]] = (
                    time.perf_counter()
                )
            return answer

        backend.update_container_instances_state = on_set_state  # type: ignore[method-assign]
        backend.deregister_container_instance = on_deregister  # type: ignore[method-assign]

        def restore() -> None:
            backend.update_container_instances_state = set_state  # type: ignore[method-assign]
            backend.deregister_container_instance = deregister  # type: ignore[method-assign]

        self._restore.append(restore)
        return self

    def __exit__(self, *_exc: object) -> None:
        for restore in self._restore:
            restore()

    def _close(self, worker: threading.Thread) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        worker.join()

    def _stop_later(self, instance: str, task: str, delay: float) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.perf_counter() + delay, instance, task))
            self._wake.notify()

    def stopped_event(self, instance: str, task: str) -> dict[str, Any]:
        """The ECS Task State Change event of ``task`` stopping, as EventBridge sends it."""
        region = self.local.region_name
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "ECS Task State Change",
            "source": "aws.ecs",
            "account": DEFAULT_ACCOUNT_ID,
            "time": at,
            "region": region,
            "resources": [task],
            "detail": {
                "clusterArn": f"arn:aws:ecs:{region}:{DEFAULT_ACCOUNT_ID}:cluster/{self.cluster}",
                "taskArn": task,
                "containerInstanceArn": (
                    f"arn:aws:ecs:{region}:{DEFAULT_ACCOUNT_ID}:container-instance/"
                    f"{self.cluster}/{instance}"
                ),
                "lastStatus": "STOPPED",
                "desiredStatus": "STOPPED",
                "stoppedReason": "Stopped by the benchmark's scheduler",
            },
        }

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._due or self._due[0][0] > time.perf_counter()):
                    wait = self._due[0][0] - time.perf_counter() if self._due else None
                    self._wake.wait(wait)
                if self._closed:
                    return
                _, instance, task = heapq.heappop(self._due)
            self._backend.stop_task(self.cluster, task, "Stopped by the benchmark's scheduler")
            if self.events:
                # After the stop, as ECS emits it; to every task-events queue of LocalEcs.
                self.local.events.publish(self.stopped_event(instance, task))
            with self._lock:
                self.stops += 1
                self.stopped_at[instance] = max(
                    self.stopped_at.get(instance, 0.0), time.perf_counter()
                )

    def lags(self) -> list[float]:
        """Seconds from each instance's last task stopped to its deregistration."""
        return [
            self.deregistered_at[i] - self.stopped_at[i]
            for i in self.deregistered_at
            if i in self.stopped_at
        ]


def scaled_limits(scale: float) -> RateLimits:
    """ECS's documented buckets, with rates in scaled time (bursts unchanged)."""
    defaults = RateLimits()
    return RateLimits(
        read_per_s=defaults.read_per_s / scale,
        read_burst=defaults.read_burst,
        modify_per_s=defaults.modify_per_s / scale,
        modify_burst=defaults.modify_burst,
    )


@asynccontextmanager
async def scaled_client(
    local: LocalEcs,
    scale: float,
    *,
    min_interval: float = MIN_POLL_INTERVAL,
    task_events_queue: str | None = None,
) -> AsyncIterator[EcsSafeClient]:
    """An `EcsSafeClient` paced in scaled time: its buckets and its poller's floor scaled.

    The poller is the client's own, rebuilt with the scaled minimum interval (a private of the
    client: the benchmark reaches in, as the tests do with the transport), keeping the
    client's task-events loop when ``task_events_queue`` is given.
    """
    limits = scaled_limits(scale)
    async with EcsSafeClient(
        **local.client_kwargs(), rate_limits=limits, task_events_queue=task_events_queue
    ) as ecs:
        gate = ecs._gate
        assert gate is not None
        ecs._poller = Poller(
            gate.calls,
            read_per_s=limits.read_per_s,
            min_interval=min_interval * scale,
            events=ecs._task_events,
        )
        yield ecs


def seed(local: LocalEcs, instances: int, delays: Sequence[float]) -> dict[str, list[Any]]:
    local.reset()
    local.create_cluster(BENCH_CLUSTER)
    local.create_service(BENCH_CLUSTER, "web")
    arns = local.register_instances(BENCH_CLUSTER, count=instances)
    plan: dict[str, list[Any]] = {}
    for arn in arns:
        tasks = local.start_service_task(BENCH_CLUSTER, arn, "web", count=len(delays))
        plan[arn] = list(zip(tasks, delays, strict=True))
    return plan


def _requests(local: LocalEcs) -> int:
    return len(local.call_log)


# The SQS requests the client makes (LocalEcs's own SendMessage, the events, are not).
_SQS_CLIENT_OPERATIONS = frozenset(
    {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteMessageBatch"}
)


async def run_single(
    local: LocalEcs,
    *,
    rounds: int,
    scale: float = SCALE,
    min_interval: float = MIN_POLL_INTERVAL,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    task_events: bool = False,
) -> Result:
    """One instance, two service tasks stopped 33 s and 67 s after DRAINING, ``rounds`` times.

    ``min_interval`` is the poller's floor and ``poll_interval`` the drain's (scenario
    seconds): the defaults, or others to show the trade between requests and lag (a quiet
    instance is looked at every ``poll_interval``). With ``task_events`` the client reads a
    task-events queue that the scheduler sends each stop's event to: the rounds come when an
    event says so, and every `TASK_EVENTS_POLL_FACTOR` ``poll_interval`` as a safety net.
    """
    lags: list[float] = []
    requests: list[int] = []
    sqs: list[int] = []
    receives: list[int] = []
    queue = None
    if task_events:
        queue = local.events.create_queue("bench-task-events", task_events=True)
    async with scaled_client(
        local, scale, min_interval=min_interval, task_events_queue=queue
    ) as ecs:
        for _ in range(rounds):
            plan = seed(local, 1, [33.0 * scale, 67.0 * scale])
            if task_events:
                # The seed resets LocalEcs (its queues too): the queue is made again, same URL.
                assert local.events.create_queue("bench-task-events", task_events=True) == queue
            [arn] = plan
            local.reset_calls()
            tasks = {arn.rsplit("/", 1)[-1]: plan[arn]}
            with Scheduler(local, BENCH_CLUSTER, tasks, events=task_events) as sched:
                await ecs.drain_and_deregister(
                    arn,
                    cluster=BENCH_CLUSTER,
                    timeout=600 * scale,
                    poll_interval=poll_interval * scale,
                    # The peers' scenario has no spare host: the room check (measured on its
                    # own in benchmarks.service_checks) would rightly refuse it.
                    require_room=False,
                )
            requests.append(_requests(local))
            ours = [op for op in local.service_call_log("sqs") if op in _SQS_CLIENT_OPERATIONS]
            sqs.append(len(ours))
            receives.append(ours.count("sqs:ReceiveMessage"))
            lags.extend(lag / scale for lag in sched.lags())
    suffix = "_events" if task_events else ""
    how = "with task events" if task_events else "polling only"
    result = Result(
        name=f"drain_single_poll{poll_interval:g}{suffix}",
        title="Drain one instance: 2 service tasks stopped 33 s / 67 s after DRAINING "
        f"({how}, poll_interval {poll_interval:g} s, poller floor {min_interval:g} s, "
        f"scaled time x{scale:g})",
        params={
            "rounds": rounds,
            "scale": scale,
            "min_interval": min_interval,
            "poll_interval": poll_interval,
            "task_events": task_events,
        },
    )
    result.metrics.update(
        {
            "requests_per_instance_median": median(requests),
            "requests_per_instance_max": max(requests),
            "lag_s_median": median(lags),
            "lag_s_max": max(lags),
        }
    )
    if task_events:
        result.metrics.update(
            {
                "sqs_requests_median": median(sqs),
                "sqs_requests_max": max(sqs),
                "sqs_receives_median": median(receives),
            }
        )
    result.checks.append(
        Check("ECS requests per instance (median)", median(requests), TARGET_REQUESTS, "")
    )
    result.checks.append(
        Check("last task stopped -> deregistered (median)", median(lags), TARGET_LAG_S, " s")
    )
    result.notes.append(
        "fixed ECS costs before any look: describe, ListTasks (desired RUNNING) + DescribeTasks "
        "+ DescribeServices (pre-flight), PutAttributes (mark), DRAINING, then the confirming "
        "round's 2 ListTasks + DescribeTasks and the deregistration = 10; on top, one describe "
        "per round (the first look, then one per poll_interval while quiet, or, with task "
        "events, one per event and one per safety-net interval)"
    )
    if task_events:
        result.notes.append(
            "SQS requests (ReceiveMessage long polls of up to 20 s, one DeleteMessageBatch per "
            "receive that got messages) are counted apart; they are not ECS's buckets. The "
            "events reach the queue at once here; EventBridge's delivery adds its lag"
        )
    return result


async def run_fleet(
    local: LocalEcs, *, instances: int, concurrency: int, scale: float = FLEET_SCALE
) -> Result:
    """``instances`` instances, one service task each stopped 33 s after DRAINING."""
    plan = seed(local, instances, [33.0 * scale])
    local.reset_calls()
    tasks = {arn.rsplit("/", 1)[-1]: entries for arn, entries in plan.items()}
    async with scaled_client(local, scale) as ecs:
        with Scheduler(local, BENCH_CLUSTER, tasks) as sched:
            start = time.perf_counter()
            batch = await ecs.deregister_many(
                list(plan),
                cluster=BENCH_CLUSTER,
                drain=True,
                concurrency=concurrency,
                timeout=600 * scale,
                poll_interval=DEFAULT_POLL_INTERVAL * scale,
                require_room=False,  # no spare hosts in the peers' scenario (as above)
            )
            took = (time.perf_counter() - start) / scale
        stats = ecs.poll_stats
    result = Result(
        name=f"drain_fleet_{instances}_c{concurrency}",
        title=f"Drain a fleet of {instances} (1 service task each, stopped 33 s after DRAINING), "
        f"concurrency {concurrency} (scaled time x{scale:g})",
        params={"instances": instances, "concurrency": concurrency, "scale": scale},
    )
    result.metrics.update(
        {
            "scenario_s": took,
            "requests_per_instance": _requests(local) / instances,
            "deregistered": len(batch.succeeded),
            "lag_s_median": median([lag / scale for lag in sched.lags()]),
            "poll_rounds": stats.rounds,
            "reads_per_instance_per_round": stats.reads_per_look,
        }
    )
    if concurrency >= instances:
        result.checks.append(Check("fleet drain, scenario seconds", took, TARGET_FLEET_S, " s"))
    return result


async def main_async(
    local: LocalEcs,
    *,
    single_rounds: int,
    fleet: int,
    fleet_scale: float = FLEET_SCALE,
    wide_scale: float = WIDE_SCALE,
) -> list[Result]:
    """Every scenario of this module, as `benchmarks.run` calls it (a smaller fleet scale, as
    ``--quick`` passes, runs the single drain no slower than that)."""
    single = min(SCALE, fleet_scale)
    results = [await run_single(local, rounds=single_rounds, scale=single)]
    # The same drain woken by task events, in the same run: ECS and SQS requests, lag.
    results.append(await run_single(local, rounds=single_rounds, scale=single, task_events=True))
    # The trade: a quiet instance is looked at every poll_interval, so a longer one is fewer
    # describes for a longer lag (about half of it, median).
    results.append(
        await run_single(
            local, rounds=single_rounds, scale=single, poll_interval=2 * DEFAULT_POLL_INTERVAL
        )
    )
    results.append(await run_fleet(local, instances=fleet, concurrency=10, scale=fleet_scale))
    results.append(await run_fleet(local, instances=fleet, concurrency=fleet, scale=wide_scale))
    return results
