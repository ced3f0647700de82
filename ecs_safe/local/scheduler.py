"""The service scheduler: what ECS does for a service's tasks, which moto never does.

moto 5.2.5 starts nothing for a service, never moves tasks off a DRAINING instance, and
reports whatever ``runningCount`` an environment variable says. `ServiceScheduler` is a small
loop that acts on moto's in-process backend as ECS's service scheduler would, for the services
it is told to manage. Nothing else changes: services it does not manage, and standalone tasks,
are never touched.

The helper API (stable; other parts of the suite build on it)::

    local = LocalEcs()                        # or LocalEcs(scheduler_interval=0.05): ticking
    local.create_cluster("prod")
    hosts = local.register_instances("prod", 3)
    local.create_service(
        "prod", "web", desired_count=4, scheduler=True,   # scheduler=True: managed
        minimum_healthy_percent=50, maximum_percent=200,   # deploymentConfiguration
        cpu=256, memory=512, host_port=8080,               # the task definition's reservation
        distinct_instance=True,                            # placementConstraints
        member_of="attribute:pool == web",                 # ... and memberOf
    )
    local.put_attribute("prod", hosts[0], "pool", "web")   # a custom attribute
    local.scheduler.step()                    # one pass; returns the TaskEvents it caused
    await local.scheduler.settle()            # step until a pass changes nothing (async)
    local.scheduler.run_until_settled()       # the same, from sync code
    local.scheduler.start(interval=0.05)      # a background tick; .stop() ends it
    local.scheduler.manage("prod", "api")     # manage a service created some other way
    local.scheduler.manage_cluster("prod")    # every service of the cluster, present and future
    local.scheduler.fail_starts("prod", "web", times=1, how="STOPPED")  # or how="PENDING"
    local.scheduler.record                    # every start and stop: list[TaskEvent]
    local.scheduler.reset_record()            # forget it (e.g. after seeding)
    local.scheduler.events_for("web")         # the same, one service
    local.scheduler.lowest_running("web")     # fewest RUNNING tasks the service ever had
    local.scheduler.is_steady("prod", "web")  # running == desired, nothing pending or drained
    local.scheduler.wait_for_step(n)          # block until pass n + 1 ran (with the tick)
    local.register_instances("prod", 2, memory=1024)        # smaller hosts: less room

A `TaskEvent` has ``step, at, kind ("started" | "running" | "stopped"), by ("scheduler" |
"external"), cluster, service, task_arn, container_instance_arn, ec2_instance_id, reason`` and
the service's ``running``, ``pending`` and ``desired`` counts right after it: "never below its
budget" is ``all(e.running >= budget for e in local.scheduler.events_for("web"))``.

What a pass does, per managed service (each rule quotes the ECS developer guide; the tests in
``tests/test_local_scheduler.py`` check each against LocalEcs):

1. Observe: tasks of the service started or stopped by someone else since the last pass
   (a test's StopTask, a forced deregistration) are recorded with ``by="external"``. Tasks on
   an instance that left the cluster are lost to the service and recorded stopped.
2. Promote: tasks this scheduler started on an earlier pass go PENDING → RUNNING, unless
   `fail_starts` holds them in PENDING for ever or stops them (``stoppedReason`` says why).
3. REPLICA: PENDING tasks on a DRAINING instance stop at once; RUNNING tasks on a DRAINING
   instance stop only while the service keeps ``ceil(desired * minimumHealthyPercent / 100)``
   RUNNING tasks; extra tasks on ACTIVE instances (desired lowered) stop; then tasks start on
   ACTIVE instances up to ``desired`` there, never more than
   ``floor(desired * maximumPercent / 100)`` RUNNING + PENDING in all.
4. DAEMON: one task per ACTIVE instance; on a DRAINING instance a PENDING daemon task stops at
   once and a RUNNING one stops last, once every other task on the instance has stopped.
5. Placement: an ACTIVE instance whose remainingResources cover the task definition's CPU and
   memory, whose reserved ports do not include its static host ports, that (``distinctInstance``)
   runs no other task of the service and that matches every ``memberOf`` expression (the
   cluster query language of `ecs_safe.local.query`); among those, spread (fewest tasks of
   the service, then fewest tasks), or ``binpack`` on memory or CPU when the service asks. When no
   instance fits, the task is not started and the service gets an event saying so.
6. Deployments: UpdateService with a new task definition (or ``forceNewDeployment``) makes
   a new PRIMARY deployment; the old one stays ACTIVE while its tasks are replaced, as
   drained ones are (within the same two limits), and goes once they are gone. With
   ``deploymentCircuitBreaker`` enabled, ``ceil(desired / 2)`` failed starts (at least 3, at
   most 200) make the rollout FAILED and stop the starts.
7. Counters: the service's ``runningCount``/``pendingCount`` and its PRIMARY deployment
   (``rolloutState`` IN_PROGRESS until the service first reaches a steady state with it,
   then COMPLETED, or FAILED; ``failedTasks``) are set from the tasks; moto's
   StartTask/StopTask keep the instances' remainingResources and task counts.

Limits: a stop is immediate (no DEACTIVATING/STOPPING on the way); no load balancer health
checks (RUNNING is healthy); no capacity providers or managed scaling; ``memberOf`` takes what
`ecs_safe.local.query` parses (no ``task:group``); placement strategies other than spread and
binpack are ignored; the circuit breaker never rolls back; no task retry back-off; no
blue/green or external deployment controllers.
"""

from __future__ import annotations

import asyncio
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from ecs_safe.local.instances import facts_of
from ecs_safe.local.names import last_segment
from ecs_safe.local.query import Query, QueryError, parse
from ecs_safe.local.tasks import set_task_status, shift_counter
from ecs_safe.local.traffic import Amend, Handler

if TYPE_CHECKING:
    from moto.ecs.models import (
        ContainerInstance,
        EC2ContainerServiceBackend,
        Service,
        Task,
        TaskDefinition,
    )

    from ecs_safe.local.state_lock import StateLock

__all__ = [
    "DEFAULT_INTERVAL",
    "DeploymentLimits",
    "SchedulerError",
    "ServiceScheduler",
    "TaskEvent",
    "deployment_limits",
]

#: The background tick's default interval, in seconds.
DEFAULT_INTERVAL: Final = 0.05
#: A `ServiceScheduler.settle` that takes more passes than this is not settling.
MAX_SETTLE_STEPS: Final = 1000
#: ECS's defaults for a REPLICA service's deploymentConfiguration.
REPLICA_DEFAULTS: Final = (100, 200)
#: ... and for a DAEMON service's.
DAEMON_DEFAULTS: Final = (0, 100)
_LIVE_COUNTED: Final = frozenset({"RUNNING", "PENDING"})
_GONE: Final = frozenset({"STOPPED", "DELETED"})
# The service settings moto's CreateService/UpdateService drop, and the model attribute
# each is kept in (moto's serializer reads them from there).
_KEPT_SETTINGS: Final = {
    "deploymentConfiguration": "deployment_configuration",
    "placementConstraints": "placement_constraints",
    "placementStrategy": "placement_strategy",
}
_FAILED_REASON: Final = (
    "CannotStartContainerError: the replacement was made to fail (LocalEcs fail_starts)"
)

Kind = Literal["started", "running", "stopped"]
By = Literal["scheduler", "external"]
FailMode = Literal["PENDING", "STOPPED"]


class SchedulerError(RuntimeError):
    """The scheduler could not do what it was asked (e.g. the background tick failed)."""


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One start, RUNNING or stop of a managed service's task, as the scheduler made or saw it.

    ``running`` and ``pending`` are the service's counts right after the event, so a test can
    assert on the record alone that a service never went below a budget.
    """

    step: int
    """The pass (`ServiceScheduler.steps`) that made or saw it."""
    at: datetime
    """When, in UTC."""
    kind: Kind
    """``started`` (placed, PENDING), ``running`` (reached RUNNING) or ``stopped``."""
    by: By
    """``scheduler`` for its own moves, ``external`` for what someone else did."""
    cluster: str
    """The cluster's name."""
    service: str
    """The service's name."""
    task_arn: str
    """The task."""
    container_instance_arn: str
    """Where it runs (or ran); empty if unknown."""
    ec2_instance_id: str
    """The EC2 instance behind that container instance; empty if unknown."""
    reason: str
    """Why: e.g. the instance is DRAINING, the service scaled in, a failed start."""
    running: int
    """The service's RUNNING tasks after the event."""
    pending: int
    """The service's PENDING tasks after the event."""
    desired: int
    """The service's desired count at the time."""


@dataclass(frozen=True, slots=True)
class DeploymentLimits:
    """A service's deploymentConfiguration as task counts (ECS's rounding)."""

    minimum_healthy: int
    """RUNNING tasks kept while replacing: ``ceil(desired * minimumHealthyPercent / 100)``."""
    maximum: int
    """RUNNING + PENDING tasks at most: ``floor(desired * maximumPercent / 100)``."""


def deployment_limits(desired: int, minimum_percent: int, maximum_percent: int) -> DeploymentLimits:
    """The task counts ECS derives from desiredCount and the two percentages.

    ECS rounds the minimum up and the maximum down ("service definition parameters").
    """
    return DeploymentLimits(
        minimum_healthy=math.ceil(desired * minimum_percent / 100),
        maximum=math.floor(desired * maximum_percent / 100),
    )


@dataclass(slots=True)
class _Faults:
    remaining: int | None
    how: FailMode


@dataclass(slots=True)
class _ServiceState:
    """What the scheduler remembers of one managed service between passes."""

    cluster: str
    name: str
    seen: dict[str, str] = field(default_factory=dict)  # task ARN -> last status seen
    started_at_step: dict[str, int] = field(default_factory=dict)  # its own PENDING tasks
    stuck: set[str] = field(default_factory=set)  # held in PENDING by fail_starts
    failed_tasks: int = 0
    reached_steady: bool = False
    unplaced_reported: bool = False
    rollout_failed: bool = False  # the deployment circuit breaker tripped


@dataclass(frozen=True, slots=True)
class Requirements:
    """What one task reserves on its instance."""

    cpu: int
    """CPU units."""
    memory: int
    """MiB."""
    ports: frozenset[str]
    """Static host ports (TCP)."""


def requirements_of(definition: TaskDefinition) -> Requirements:
    """The reservation ECS makes for a task of ``definition`` on an EC2 instance.

    The containers' ``cpu`` and ``memory`` (or ``memoryReservation``) add up; a task-level
    ``cpu``/``memory`` counts when it is larger. Host ports are the static ones (``hostPort``
    given and not 0; 0 asks for a dynamic port, which never collides).
    """
    cpu = memory = 0
    ports: set[str] = set()
    containers: list[dict[str, Any]] = list(definition.container_definitions)
    for container in containers:
        cpu += int(container.get("cpu") or 0)
        memory += int(container.get("memory") or container.get("memoryReservation") or 0)
        for mapping in container.get("portMappings") or []:
            port = int(mapping.get("hostPort") or 0)
            if port:
                ports.add(str(port))
    cpu = max(cpu, int(definition.cpu or 0)) if str(definition.cpu or "").isdigit() else cpu
    memory = (
        max(memory, int(definition.memory or 0))
        if str(definition.memory or "").isdigit()
        else memory
    )
    return Requirements(cpu=cpu, memory=memory, ports=frozenset(ports))


def _remaining(instance: ContainerInstance) -> tuple[int, int, set[str]]:
    cpu = memory = 0
    ports: set[str] = set()
    for resource in instance.remaining_resources:
        if resource.get("name") == "CPU":
            cpu = int(resource.get("integerValue") or 0)
        elif resource.get("name") == "MEMORY":
            memory = int(resource.get("integerValue") or 0)
        elif resource.get("name") == "PORTS":
            ports = {str(p) for p in resource.get("stringSetValue") or []}
    return cpu, memory, ports


def fits(instance: ContainerInstance, needs: Requirements) -> bool:
    """Whether ``instance``'s remainingResources take one more task that ``needs`` this."""
    cpu, memory, ports = _remaining(instance)
    return needs.cpu <= cpu and needs.memory <= memory and not (needs.ports & ports)


def _percentages(service: Service) -> tuple[int, int]:
    config = getattr(service, "deployment_configuration", None) or {}
    daemon = service.scheduling_strategy == "DAEMON"
    default_min, default_max = DAEMON_DEFAULTS if daemon else REPLICA_DEFAULTS
    minimum = config.get("minimumHealthyPercent")
    maximum = config.get("maximumPercent")
    return (
        default_min if minimum is None else int(minimum),
        default_max if maximum is None else int(maximum),
    )


def _distinct_instance(service: Service) -> bool:
    constraints = getattr(service, "placement_constraints", None) or []
    return any(c.get("type") == "distinctInstance" for c in constraints)


def _member_of(service: Service) -> list[Query]:
    """The service's ``memberOf`` constraints, parsed (the cluster query language)."""
    queries: list[Query] = []
    for constraint in getattr(service, "placement_constraints", None) or []:
        if constraint.get("type") == "memberOf":
            try:
                queries.append(parse(str(constraint.get("expression") or "")))
            except QueryError as exc:
                msg = f"service {service.name!r}: memberOf expression not supported: {exc}"
                raise SchedulerError(msg) from exc
    return queries


def _arn(task: Task) -> str:
    return str(task.task_arn)


def _circuit_breaker(service: Service) -> bool:
    config = getattr(service, "deployment_configuration", None) or {}
    return bool((config.get("deploymentCircuitBreaker") or {}).get("enable"))


def _breaker_threshold(desired: int) -> int:
    """ECS's circuit breaker trips after half the desired count failed, at least 3, at most 200."""
    return min(max(math.ceil(desired / 2), 3), 200)


def _binpack_field(service: Service) -> str | None:
    for strategy in getattr(service, "placement_strategy", None) or []:
        if strategy.get("type") == "binpack":
            return str(strategy.get("field") or "memory").lower()
    return None


class ServiceScheduler:
    """ECS's service scheduler for the services it manages, over moto's backend (see module).

    `LocalEcs` makes one (`LocalEcs.scheduler`); its passes hold the server's state lock
    exclusively, so no request is half-served while tasks move.
    """

    def __init__(
        self,
        backend: Callable[[], EC2ContainerServiceBackend],
        lock: StateLock,
        *,
        clock: Callable[[], datetime] | None = None,
        on_events: Callable[[list[TaskEvent]], None] | None = None,
    ) -> None:
        """Act on the backend ``backend`` returns, under ``lock``; ``clock`` stamps events.

        ``on_events`` is told of each pass's events once the pass has let go of the lock
        (LocalEcs publishes ECS Task State Change events from them).
        """
        self._on_events = on_events
        self._backend = backend
        self._lock = lock
        self._clock = clock or (lambda: datetime.now(UTC))
        self._guard = threading.Lock()  # the scheduler's own bookkeeping
        self._services: dict[tuple[str, str], _ServiceState] = {}
        self._clusters: set[str] = set()
        self._faults: dict[tuple[str, str], _Faults] = {}
        self._record: list[TaskEvent] = []
        # container instance ID -> EC2 instance ID, remembered past deregistration.
        self._ec2_ids: dict[str, str] = {}
        self._steps = 0
        self._thread: threading.Thread | None = None
        self._stop_ticking = threading.Event()
        self._tick_error: BaseException | None = None
        self._ticked = threading.Condition()

    # -- what it manages ------------------------------------------------------------------

    def manage(self, cluster: str, service: str) -> None:
        """Manage a service from the next pass on (its existing tasks count as its own)."""
        key = (last_segment(cluster), last_segment(service))
        with self._guard:
            self._services.setdefault(key, _ServiceState(*key))

    def unmanage(self, cluster: str, service: str) -> None:
        """Stop managing a service; its tasks stay as they are."""
        with self._guard:
            self._services.pop((last_segment(cluster), last_segment(service)), None)

    def manage_cluster(self, cluster: str) -> None:
        """Manage every service of a cluster, including those created later (e.g. over HTTP)."""
        with self._guard:
            self._clusters.add(last_segment(cluster))

    def managed(self) -> list[tuple[str, str]]:
        """The (cluster, service) pairs managed so far, sorted."""
        with self._guard:
            return sorted(self._services)

    def fail_starts(
        self, cluster: str, service: str, *, times: int | None = 1, how: FailMode = "STOPPED"
    ) -> None:
        """Make the service's next ``times`` task starts fail (``None``: every one; 0: none).

        A failed start is placed (PENDING, reserving its resources) and then either stays
        PENDING for ever (``how="PENDING"``: a container that never starts) or stops with a
        ``stoppedReason`` on the pass that would have made it RUNNING (``how="STOPPED"``); in
        either case it never reaches RUNNING. A stopped one is replaced on the next pass,
        as ECS keeps trying.
        """
        if how not in ("PENDING", "STOPPED"):
            msg = f"how must be 'PENDING' or 'STOPPED', not {how!r}"
            raise ValueError(msg)
        if times is not None and times < 0:
            msg = f"times must be 0 or more (or None for every start), not {times}"
            raise ValueError(msg)
        key = (last_segment(cluster), last_segment(service))
        with self._guard:
            if times == 0:
                self._faults.pop(key, None)
            else:
                self._faults[key] = _Faults(times, how)

    def reset(self) -> None:
        """Forget every managed service, fault and event (moto's state is being cleared).

        The background tick stops; if it had failed, the error is raised after the reset.
        """
        try:
            self.stop()
        finally:
            with self._guard:
                self._services.clear()
                self._clusters.clear()
                self._faults.clear()
                self._record.clear()
                self._ec2_ids.clear()
                self._steps = 0

    # -- what it did ----------------------------------------------------------------------

    def reset_record(self) -> None:
        """Forget the events recorded so far (to look at one drain's moves alone)."""
        with self._guard:
            self._record.clear()

    @property
    def record(self) -> list[TaskEvent]:
        """Every start, RUNNING and stop of a managed service's task, in order (a copy)."""
        with self._guard:
            return list(self._record)

    def events_for(self, service: str, cluster: str | None = None) -> list[TaskEvent]:
        """The record of one service (of one cluster, if given)."""
        name = last_segment(service)
        where = None if cluster is None else last_segment(cluster)
        return [
            e for e in self.record if e.service == name and (where is None or e.cluster == where)
        ]

    def lowest_running(self, service: str, cluster: str | None = None) -> int | None:
        """The fewest RUNNING tasks the service had after any event; None if it has none."""
        counts = [e.running for e in self.events_for(service, cluster)]
        return min(counts) if counts else None

    @property
    def steps(self) -> int:
        """How many passes have run since the last `reset`."""
        with self._guard:
            return self._steps

    def is_steady(self, cluster: str, service: str) -> bool:
        """Whether the service runs ``desired`` tasks, none PENDING, none on a DRAINING host."""
        with self._lock.shared():
            backend = self._backend()
            found = backend.services.get(f"{last_segment(cluster)}:{last_segment(service)}")
            if found is None:
                return False
            view = _View(backend, found.cluster_name)
            tasks = view.tasks_of(found.name)
            running = [t for t in tasks if t.last_status == "RUNNING"]
            return (
                len(running) == len(tasks) == int(found.desired_count)
                and len(found.deployments) <= 1
                and not any(view.status_of(t) != "ACTIVE" for t in tasks)
            )

    # -- passes -----------------------------------------------------------------------------

    def step(self) -> list[TaskEvent]:
        """Run one pass over every managed service; returns the events it caused or saw."""
        self._raise_tick_error()
        with self._lock.exclusive():
            backend = self._backend()
            with self._guard:
                self._steps += 1
                step = self._steps
                self._adopt_clusters(backend)
                states = list(self._services.values())
            events: list[TaskEvent] = []
            views: dict[str, _View] = {}
            for state in states:
                service = backend.services.get(f"{state.cluster}:{state.name}")
                if service is None:
                    continue
                view = views.get(state.cluster)
                if view is None:
                    view = views[state.cluster] = _View(backend, state.cluster)
                    self._ec2_ids.update(
                        {i.id: str(i.ec2_instance_id) for i in view.instances.values()}
                    )
                _Pass(self, view, service=service, state=state, step=step, events=events).run()
            with self._guard:
                self._record.extend(events)
        if events and self._on_events is not None:
            # Outside the lock: the listener may make requests to the server.
            self._on_events(events)
        with self._ticked:
            self._ticked.notify_all()
        return events

    def run_until_settled(self, *, max_steps: int = MAX_SETTLE_STEPS) -> int:
        """Step until a pass changes nothing; returns the passes that changed something.

        Raises:
            SchedulerError: it was still changing things after ``max_steps`` passes (e.g.
                `fail_starts` with ``times=None`` and ``how="STOPPED"`` never settles).
        """
        for busy in range(max_steps):
            if not self.step():
                return busy
        msg = f"the scheduler was still moving tasks after {max_steps} passes"
        raise SchedulerError(msg)

    async def settle(self, *, max_steps: int = MAX_SETTLE_STEPS) -> int:
        """`run_until_settled` from async code (the passes run in a worker thread)."""
        return await asyncio.to_thread(self.run_until_settled, max_steps=max_steps)

    # -- the background tick ----------------------------------------------------------------

    @property
    def is_ticking(self) -> bool:
        """Whether the background tick runs."""
        return self._thread is not None

    def start(self, interval: float = DEFAULT_INTERVAL) -> None:
        """Run a pass every ``interval`` seconds in a background thread, until `stop`.

        A pass that raises ends the tick; the error is raised again by the next `step`,
        `settle` or `stop`.
        """
        if interval <= 0:
            msg = f"interval must be a positive number of seconds, not {interval}"
            raise ValueError(msg)
        if self._thread is not None:
            msg = "the scheduler is already ticking: call stop() first"
            raise RuntimeError(msg)
        self._stop_ticking.clear()
        thread = threading.Thread(
            target=self._tick, args=(interval,), name="ecs-safe-local-scheduler", daemon=True
        )
        self._thread = thread
        thread.start()

    def stop(self) -> None:
        """End the background tick (waiting for a pass under way); a no-op if not ticking."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop_ticking.set()
            thread.join()
        self._raise_tick_error()

    def wait_for_step(self, after: int, timeout: float | None = None) -> bool:
        """Block until pass number ``after`` + 1 has run (for code waiting on the tick)."""
        with self._ticked:
            return self._ticked.wait_for(lambda: self.steps > after, timeout)

    def _tick(self, interval: float) -> None:
        while not self._stop_ticking.wait(interval):
            try:
                self.step()
            except BaseException as exc:
                with self._guard:
                    self._tick_error = exc
                return

    def _raise_tick_error(self) -> None:
        with self._guard:
            error, self._tick_error = self._tick_error, None
        if error is not None:
            msg = "the scheduler's background tick failed"
            raise SchedulerError(msg) from error

    # -- the wire ---------------------------------------------------------------------------

    def handlers(self) -> dict[str, Handler]:
        """The ECS operations the scheduler amends (they run on the server's request threads).

        CreateService and UpdateService keep the settings moto drops (deploymentConfiguration,
        placementConstraints, placementStrategy); UpdateService and DescribeServices report a
        managed service's running and pending counts from its tasks, where moto makes them up.
        """
        return {
            "CreateService": self._amend_service_call,
            "UpdateService": self._amend_service_call,
            "DescribeServices": self._amend_describe_services,
        }

    def _amend_service_call(self, request: dict[str, Any]) -> Amend:
        cluster = last_segment(str(request.get("cluster") or "default"))
        name = last_segment(str(request.get("serviceName") or request.get("service") or ""))
        kept = {k: request[k] for k in _KEPT_SETTINGS if request.get(k) is not None}
        # UpdateService starts a new deployment when the task definition changes or one is
        # forced; moto only renames its one deployment, so the old ones are kept from here.
        before = self._backend().services.get(f"{cluster}:{name}")
        old_deployments = [dict(d) for d in before.deployments] if before is not None else []
        old_definition = before.task_definition if before is not None else None

        def amend(response: dict[str, Any]) -> dict[str, Any]:
            backend = self._backend()
            service = backend.services.get(f"{cluster}:{name}")
            described = response.get("service")
            if service is None or not isinstance(described, dict):
                return response
            for key, value in kept.items():
                setattr(service, _KEPT_SETTINGS[key], value)
                described[key] = value
            redeploy = "service" in request and (
                bool(request.get("forceNewDeployment")) or service.task_definition != old_definition
            )
            if redeploy and old_deployments and self._is_managed(cluster, name):
                self._new_deployment(service, old_deployments)
                described["deployments"] = [dict(d) for d in service.deployments]
            self._true_counts(backend, described)
            return response

        return amend

    def _is_managed(self, cluster: str, name: str) -> bool:
        with self._guard:
            return (cluster, name) in self._services or cluster in self._clusters

    def _new_deployment(self, service: Service, old_deployments: list[dict[str, Any]]) -> None:
        """Make a new PRIMARY deployment; the old ones stay ACTIVE until their tasks are gone."""
        now = self._now()
        primary = {
            **old_deployments[0],
            "id": f"ecs-svc/{uuid.uuid4().int % 10**19}",
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "createdAt": now,
            "updatedAt": now,
            "runningCount": 0,
            "pendingCount": 0,
            "failedTasks": 0,
            "rolloutState": "IN_PROGRESS",
        }
        for deployment in old_deployments:
            deployment["status"] = "ACTIVE"
        service.deployments = [primary, *old_deployments]
        with self._guard:
            state = self._services.get((service.cluster_name, service.name))
        if state is not None:
            state.reached_steady = False
            state.failed_tasks = 0
            state.rollout_failed = False

    def _amend_describe_services(self, request: dict[str, Any]) -> Amend | None:
        with self._guard:
            if not self._services and not self._clusters:
                return None

        def amend(response: dict[str, Any]) -> dict[str, Any]:
            backend = self._backend()
            for described in response.get("services") or []:
                self._true_counts(backend, described)
            return response

        del request
        return amend

    def _true_counts(self, backend: EC2ContainerServiceBackend, described: dict[str, Any]) -> None:
        """Put a managed service's counts, from its tasks, into its description."""
        cluster = last_segment(str(described.get("clusterArn", "")))
        name = str(described.get("serviceName", ""))
        if not self._is_managed(cluster, name):
            return
        tasks = _View(backend, cluster).tasks_of(name)
        running = sum(1 for t in tasks if t.last_status == "RUNNING")
        pending = sum(1 for t in tasks if t.last_status == "PENDING")
        described["runningCount"], described["pendingCount"] = running, pending
        for deployment in (described.get("deployments") or [])[:1]:
            deployment["runningCount"], deployment["pendingCount"] = running, pending
            deployment["desiredCount"] = described.get("desiredCount", 0)

    # -- for the passes ---------------------------------------------------------------------

    def _adopt_clusters(self, backend: EC2ContainerServiceBackend) -> None:
        for service in list(backend.services.values()):
            key = (service.cluster_name, service.name)
            if service.cluster_name in self._clusters and key not in self._services:
                self._services[key] = _ServiceState(*key)

    def _take_fault(self, state: _ServiceState) -> FailMode | None:
        with self._guard:
            fault = self._faults.get((state.cluster, state.name))
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[state.cluster, state.name]
            return fault.how

    def _now(self) -> datetime:
        return self._clock()


class _View:
    """One cluster's instances and tasks, read once per pass (shared by its services)."""

    def __init__(self, backend: EC2ContainerServiceBackend, cluster: str) -> None:
        self.backend = backend
        self.cluster = cluster
        self.instances: dict[str, ContainerInstance] = dict(
            backend.container_instances.get(cluster, {})
        )
        # Tasks by group, built on first use: a pass reads a service's tasks many times,
        # and scanning every task of the cluster each time made a pass O(tasks^2).
        self._by_group: dict[str, list[Task]] | None = None

    def _groups(self) -> dict[str, list[Task]]:
        if self._by_group is None:
            grouped: dict[str, list[Task]] = {}
            for task in self.backend.tasks.get(self.cluster, {}).values():
                if task.last_status not in _GONE:
                    grouped.setdefault(str(task.group), []).append(task)
            self._by_group = grouped
        return self._by_group

    def tasks_of(self, service: str) -> list[Task]:
        return [
            t for t in self._groups().get(f"service:{service}", []) if t.last_status not in _GONE
        ]

    def live_tasks(self) -> list[Task]:
        return [t for tasks in self._groups().values() for t in tasks if t.last_status not in _GONE]

    def started(self, task: Task) -> None:
        """Count a task started during the pass."""
        self._groups().setdefault(str(task.group), []).append(task)

    def instance_of(self, task: Task) -> ContainerInstance | None:
        return self.instances.get(last_segment(task.container_instance_arn or ""))

    def status_of(self, task: Task) -> str:
        instance = self.instance_of(task)
        return "GONE" if instance is None else str(instance.status)


class _Pass:
    """One pass over one service: observe, promote, stop, start, count."""

    def __init__(
        self,
        scheduler: ServiceScheduler,
        view: _View,
        *,
        service: Service,
        state: _ServiceState,
        step: int,
        events: list[TaskEvent],
    ) -> None:
        self.scheduler = scheduler
        self.backend = view.backend
        self.service = service
        self.state = state
        self.step = step
        self.events = events
        self.view = view
        self.daemon = service.scheduling_strategy == "DAEMON"

    # -- the pass ---------------------------------------------------------------------------

    def run(self) -> None:
        self.observe()
        if self.service.status != "ACTIVE":
            # A deleted service's tasks go with it (DeleteService with force).
            for task in self.tasks():
                self.stop(task, "Service deleted")
            self.count()
            return
        self.promote()
        if self.daemon:
            self.run_daemon()
        else:
            self.run_replica()
        self.count()

    def tasks(self) -> list[Task]:
        return self.view.tasks_of(self.state.name)

    def observe(self) -> None:
        """Record what others did to the service's tasks since the last pass."""
        tasks = {t.task_arn: t for t in self.view.tasks_of(self.state.name)}
        everything = self.backend.tasks.get(self.state.cluster, {})
        for arn in list(self.state.seen):
            if arn in tasks:
                continue
            gone = everything.get(arn)
            self.state.seen.pop(arn)
            self.state.started_at_step.pop(arn, None)
            self.state.stuck.discard(arn)
            reason = (gone.stopped_reason if gone is not None else "") or "stopped outside"
            self.note("stopped", "external", arn, gone, reason)
        for arn, task in tasks.items():
            if arn not in self.state.seen:
                self.state.seen[arn] = task.last_status
                self.note("started", "external", arn, task, "started outside the scheduler")
            elif self.state.seen[arn] != "RUNNING" and task.last_status == "RUNNING":
                self.state.seen[arn] = "RUNNING"
                self.note("running", "external", arn, task, "RUNNING (set outside)")
            else:
                self.state.seen[arn] = task.last_status
        for task in list(tasks.values()):
            if self.view.instance_of(task) is None:
                # Its instance left the cluster (a forced deregistration, a termination): ECS
                # no longer accounts for the task, and the service replaces it.
                self.stop(task, "Container instance deregistered", release=False)

    def promote(self) -> None:
        """Move the scheduler's own PENDING tasks, started on an earlier pass, to RUNNING."""
        for task in self.tasks():
            arn = task.task_arn
            started = self.state.started_at_step.get(arn)
            if started is None or started >= self.step or arn in self.state.stuck:
                continue
            if task.last_status != "PENDING":
                self.state.started_at_step.pop(arn, None)
                continue
            how = self.scheduler._take_fault(self.state)
            if how == "PENDING":
                self.state.stuck.add(arn)
                continue
            self.state.started_at_step.pop(arn, None)
            if how == "STOPPED":
                self.state.failed_tasks += 1
                self.stop(task, _FAILED_REASON)
                self.check_breaker()
                continue
            set_task_status(self.backend, self.state.cluster, arn, "RUNNING")
            self.state.seen[arn] = "RUNNING"
            self.note("running", "scheduler", arn, task, "container started")

    def check_breaker(self) -> None:
        """Trip the deployment circuit breaker (if enabled) once enough tasks failed."""
        threshold = _breaker_threshold(int(self.service.desired_count or 0))
        if _circuit_breaker(self.service) and self.state.failed_tasks >= threshold:
            self.state.rollout_failed = True

    def outdated_ids(self) -> set[str]:
        """The IDs of the service's deployments older than the PRIMARY one."""
        return {str(d.get("id")) for d in self.service.deployments[1:]}

    def run_replica(self) -> None:
        desired = int(self.service.desired_count or 0)
        limits = deployment_limits(desired, *_percentages(self.service))
        old = self.outdated_ids()
        tasks = self.tasks()
        draining = [t for t in tasks if self.view.status_of(t) == "DRAINING"]
        # A new deployment replaces the tasks of the old ones, within the same limits.
        outdated = [t for t in tasks if self.view.status_of(t) == "ACTIVE" and t.started_by in old]
        # "Any tasks that are part of a service that are in a PENDING state are stopped
        # immediately." (container instance draining)
        for task in draining:
            if task.last_status == "PENDING":
                self.stop(task, "Container instance is DRAINING")
        for task in outdated:
            if task.last_status == "PENDING":
                self.stop(task, "Replaced by a new deployment")
        # Scale-in: more current tasks on ACTIVE instances than desired. PENDING ones first.
        # A task already on its way out (DEACTIVATING, STOPPING, ...) no longer counts.
        placed = [
            t
            for t in self.tasks()
            if self.view.status_of(t) == "ACTIVE"
            and t.started_by not in old
            and t.last_status in _LIVE_COUNTED
        ]
        extra = len(placed) - desired
        if extra > 0:
            for task in sorted(placed, key=self.scale_in_order)[:extra]:
                self.stop(task, "Service scaled in")
        # "If the minimum is 100%, the service scheduler can't remove existing tasks until
        # the replacement tasks are considered healthy" (RUNNING is healthy here).
        running = sum(1 for t in self.tasks() if t.last_status == "RUNNING")
        leaving = [(t, "Container instance is DRAINING") for t in sorted(draining, key=_arn)]
        leaving += [(t, "Replaced by a new deployment") for t in sorted(outdated, key=_arn)]
        for task, reason in leaving:
            if task.last_status != "RUNNING":
                continue
            if running - 1 < limits.minimum_healthy:
                break
            self.stop(task, reason)
            running -= 1
        if self.state.rollout_failed:
            return  # the circuit breaker stopped the deployment: no more starts
        # "The maximumPercent parameter represents an upper limit on the number of running
        # tasks during task replacement" (PENDING ones included).
        tasks = self.tasks()
        counted = sum(1 for t in tasks if t.last_status in _LIVE_COUNTED)
        placed_now = sum(
            1
            for t in tasks
            if self.view.status_of(t) == "ACTIVE"
            and t.started_by not in old
            and t.last_status in _LIVE_COUNTED
        )
        wanted = min(desired - placed_now, limits.maximum - counted)
        for _ in range(max(0, wanted)):
            if not self.start_one():
                break

    def run_daemon(self) -> None:
        tasks = self.tasks()
        daemon_groups = {
            f"service:{s.name}"
            for s in self.backend.services.values()
            if s.cluster_name == self.state.cluster and s.scheduling_strategy == "DAEMON"
        }
        on: dict[str, list[Task]] = {}
        for task in tasks:
            on.setdefault(last_segment(task.container_instance_arn or ""), []).append(task)
        live = self.view.live_tasks()
        for instance_id, instance in sorted(self.view.instances.items()):
            mine = on.get(instance_id, [])
            if instance.status == "DRAINING":
                others = [
                    t
                    for t in live
                    if last_segment(t.container_instance_arn or "") == instance_id
                    and t.group not in daemon_groups
                ]
                for task in mine:
                    # Daemon tasks stop last: PENDING at once, RUNNING once nothing else runs.
                    if task.last_status == "PENDING" or not others:
                        self.stop(task, "Container instance is DRAINING")
            elif instance.status == "ACTIVE" and not mine:
                self.start_one(only=instance)
        # A daemon's desired count is the number of instances it should run on.
        self.service.desired_count = sum(
            1 for i in self.view.instances.values() if i.status == "ACTIVE"
        )

    # -- moves ------------------------------------------------------------------------------

    def scale_in_order(self, task: Task) -> tuple[int, int, str]:
        same_host = sum(
            1 for t in self.tasks() if t.container_instance_arn == task.container_instance_arn
        )
        return (0 if task.last_status == "PENDING" else 1, -same_host, task.task_arn)

    def start_one(self, only: ContainerInstance | None = None) -> bool:
        """Place one task, PENDING; False (and a service event) when nothing has room."""
        definition = self.backend.describe_task_definition(str(self.service.task_definition))
        needs = requirements_of(definition)
        tasks = self.tasks()
        per_host: dict[str, int] = {}
        for task in tasks:
            key = last_segment(task.container_instance_arn or "")
            per_host[key] = per_host.get(key, 0) + 1
        distinct = _distinct_instance(self.service)
        member_of = _member_of(self.service)
        pool = [only] if only is not None else list(self.view.instances.values())
        candidates = [
            i
            for i in pool
            if i.status == "ACTIVE"
            and fits(i, needs)
            and not (distinct and per_host.get(i.id, 0))
            and all(q.matches(facts_of(i)) for q in member_of)
        ]
        if not candidates:
            self.unplaced(needs, distinct)
            return False
        self.state.unplaced_reported = False
        binpack = _binpack_field(self.service)
        if binpack is not None:
            index = 0 if binpack == "cpu" else 1
            chosen = min(candidates, key=lambda i: (_remaining(i)[index], i.id))
        else:
            chosen = min(
                candidates,
                key=lambda i: (
                    per_host.get(i.id, 0),
                    int(i.running_tasks_count) + int(i.pending_tasks_count),
                    i.id,
                ),
            )
        deployments = self.service.deployments or [{}]
        started_by = str(deployments[0].get("id") or f"ecs-svc/{uuid.uuid4().int % 10**19}")
        [task] = self.backend.start_task(
            self.state.cluster,
            definition.arn,
            [chosen.id],
            overrides={},
            started_by=started_by,
            group=f"service:{self.state.name}",
        )
        # ECS places a task PENDING; it runs once its containers start (the next pass).
        set_task_status(self.backend, self.state.cluster, task.task_arn, "PENDING")
        self.view.started(task)
        self.state.started_at_step[task.task_arn] = self.step
        self.state.seen[task.task_arn] = "PENDING"
        self.note("started", "scheduler", task.task_arn, task, "placed")
        return True

    def stop(self, task: Task, reason: str, *, release: bool = True) -> None:
        """Stop a task as ECS does: its resources go back to its instance, its counter drops."""
        previous = task.last_status
        instance = self.view.instance_of(task)
        if release and instance is not None:
            # moto's own release: frees CPU, memory and ports and lowers runningTasksCount;
            # the counter it should lower is the one of the task's status.
            self.backend.update_container_instance_resources(
                instance, task.resource_requirements or {}, removing=True
            )
            instance.running_tasks_count += 1
            shift_counter(instance, previous, -1)
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        self.state.seen.pop(task.task_arn, None)
        self.state.started_at_step.pop(task.task_arn, None)
        self.state.stuck.discard(task.task_arn)
        self.note("stopped", "scheduler", task.task_arn, task, reason)

    def unplaced(self, needs: Requirements, distinct: bool) -> None:
        if self.state.unplaced_reported:
            return
        self.state.unplaced_reported = True
        why = f"CPU {needs.cpu}, memory {needs.memory} MiB"
        if needs.ports:
            why += f", host ports {', '.join(sorted(needs.ports))}"
        if distinct:
            why += ", distinctInstance"
        for constraint in getattr(self.service, "placement_constraints", None) or []:
            if constraint.get("type") == "memberOf":
                why += f", memberOf({constraint.get('expression')})"
        self.service_event(
            f"(service {self.state.name}) was unable to place a task because no container "
            f"instance met all of its requirements ({why})."
        )

    def service_event(self, message: str) -> None:
        events = self.service.events
        events.insert(
            0, {"id": str(uuid.uuid4()), "createdAt": self.scheduler._now(), "message": message}
        )
        del events[100:]

    # -- the service's counters ---------------------------------------------------------------

    def count(self) -> None:
        tasks = self.tasks()
        running = sum(1 for t in tasks if t.last_status == "RUNNING")
        pending = sum(1 for t in tasks if t.last_status == "PENDING")
        desired = int(self.service.desired_count or 0)
        self.service.running_count = running
        self.service.pending_count = pending
        old = self.outdated_ids()
        if old and not any(t.started_by in old for t in tasks):
            # The old deployments' tasks are all gone: only the PRIMARY one is left.
            del self.service.deployments[1:]
        self.check_breaker()
        steady = (
            running == desired
            and pending == 0
            and len(self.service.deployments) <= 1
            and all(self.view.status_of(t) == "ACTIVE" for t in tasks)
        )
        if steady and not self.state.reached_steady:
            self.state.reached_steady = True
            self.service_event(f"(service {self.state.name}) has reached a steady state.")
        for deployment in self.service.deployments[:1]:
            deployment["runningCount"] = running
            deployment["pendingCount"] = pending
            deployment["desiredCount"] = desired
            deployment["failedTasks"] = self.state.failed_tasks
            deployment["taskDefinition"] = self.service.task_definition
            deployment["updatedAt"] = self.scheduler._now()
            completed = self.state.reached_steady
            failed = self.state.rollout_failed and not completed
            ident = deployment.get("id")
            if failed:
                state, reason = "FAILED", f"ECS deployment circuit breaker: {ident} failed."
            elif completed:
                state, reason = "COMPLETED", f"ECS deployment {ident} completed."
            else:
                state, reason = "IN_PROGRESS", f"ECS deployment {ident} in progress."
            deployment["rolloutState"], deployment["rolloutStateReason"] = state, reason

    # -- the record ---------------------------------------------------------------------------

    def note(
        self,
        kind: Kind,
        by: By,
        arn: str,
        task: Task | None,
        reason: str,
    ) -> None:
        tasks = self.tasks()
        instance_arn = str(task.container_instance_arn or "") if task is not None else ""
        ec2_ids = self.scheduler._ec2_ids
        instance = self.view.instances.get(last_segment(instance_arn))
        if instance is not None:
            ec2_ids[instance.id] = str(instance.ec2_instance_id)
        self.events.append(
            TaskEvent(
                step=self.step,
                at=self.scheduler._now(),
                kind=kind,
                by=by,
                cluster=self.state.cluster,
                service=self.state.name,
                task_arn=arn,
                container_instance_arn=instance_arn,
                ec2_instance_id=ec2_ids.get(last_segment(instance_arn), ""),
                reason=reason,
                running=sum(1 for t in tasks if t.last_status == "RUNNING"),
                pending=sum(1 for t in tasks if t.last_status == "PENDING"),
                desired=int(self.service.desired_count or 0),
            )
        )
