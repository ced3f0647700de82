"""The steady-state gate between the waves of a rolling drain (`EcsSafeClient.deregister_many`).

A rolling run that drains the next host before the previous host's replacements are running
makes tasks bounce from instance to instance, and can take a service below its minimum. The
gate holds every new drain of a run until the services that lost tasks to the drains it
already started are steady again. A service is steady when:

- ``runningCount == desiredCount`` (and nothing pending);
- it has exactly one deployment, the PRIMARY one, with ``rolloutState`` COMPLETED;
- at least ``desiredCount`` of its tasks are RUNNING on instances this run has not started
  draining: the replacements, not the old tasks still on a draining host (ECS counts those as
  running until they stop).

Only services that were steady when the run began are waited for (`SteadyGate.begin`, one
round before the first drain): the gate waits for a service to be steady *again*. One that
was already degraded or mid-deployment is not the run's to wait for (the disruption-budget
rule refuses it before anything changes); it is logged as ``ecs_safe.steady.unsteady``.

The counters are read with DescribeServices (10 a call, refreshed each round, through
`ecs_safe._calls.EcsCalls.describe_services`); the task placement only when the counters say
steady (ListTasks by service, DescribeTasks 100 a call), so a round costs one read per ten
services while they are still moving. Daemon services are not waited for: a drained host's
daemon task is never replaced elsewhere.

The gate has its own deadline (``steady_timeout``), counted from the moment a drain starts
waiting at it. Each round is reported as an ``ecs_safe.steady.waiting`` progress event naming
every service that is not steady with its numbers; ``ecs_safe.steady.open`` when a drain may
start. When the deadline passes the gate closes for the rest of the run
(``ecs_safe.steady.expired``): no new drain starts (those already draining finish, or follow
``on_timeout``), and every instance not started fails with `NotStartedError`, which says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ecs_safe import _constants, _events
from ecs_safe._calls import listed, pages
from ecs_safe._checks import accounted
from ecs_safe._progress import ProgressCallback, report
from ecs_safe._validation import instance_id_of
from ecs_safe.errors import EcsSafeError
from ecs_safe.models import Service, Task, service_name

if TYPE_CHECKING:
    from ecs_safe._calls import EcsCalls

__all__ = ["NotStartedError", "ServiceState", "SteadyGate"]

_RUNNING: Final = "RUNNING"


class NotStartedError(EcsSafeError):
    """A rolling drain never started on this instance: the steady-state gate had closed.

    The services that lost tasks in earlier waves were not steady again within
    ``steady_timeout``, so the run stopped starting new drains. Nothing was changed on the
    instance (it is as it was: not marked, not DRAINING).

    Attributes:
        services: the services that were not steady when the gate closed, each with its
            numbers (`ServiceState`).
    """

    code = "NotStarted"

    def __init__(self, message: str, *, services: Sequence[ServiceState] = ()) -> None:
        super().__init__(message)
        self.services = list(services)


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One service as the gate judged it.

    Attributes:
        name: the service's name.
        desired: its ``desiredCount``.
        running: its ``runningCount``.
        pending: its ``pendingCount``.
        deployments: its deployments, as ``STATUS/rolloutState`` (``PRIMARY/COMPLETED``).
        placed: its RUNNING tasks on instances this run has not started draining (``None``
            when not counted: the counters already said not steady).
        steady: whether it is steady.
    """

    name: str
    desired: int
    running: int
    pending: int
    deployments: tuple[str, ...]
    placed: int | None
    steady: bool

    def summary(self) -> str:
        """One line: ``web: 3/4 running, 1 pending, PRIMARY/IN_PROGRESS``."""
        line = f"{self.name}: {self.running}/{self.desired} running"
        if self.pending:
            line += f", {self.pending} pending"
        line += ", " + (" + ".join(self.deployments) or "no deployment")
        if self.placed is not None:
            line += f", {self.placed} running off the drained hosts"
        return line

    def fields(self) -> dict[str, Any]:
        """The fields of a progress event."""
        return {
            "service": self.name,
            "desired": self.desired,
            "running": self.running,
            "pending": self.pending,
            "deployments": list(self.deployments),
            "placed": self.placed,
        }


def _services_of(tasks: Iterable[Task]) -> set[str]:
    # Daemon tasks are never replaced elsewhere: nothing to wait for.
    return {name for t in tasks if t.kind == "service" and (name := service_name(t.group))}


def _counters_steady(service: Service) -> bool:
    deployments = service.deployments or []
    return (
        (service.running_count or 0) == (service.desired_count or 0)
        and not service.pending_count
        and len(deployments) == 1
        and deployments[0].status == "PRIMARY"
        and deployments[0].rollout_state == "COMPLETED"
    )


@dataclass
class SteadyGate:
    """The gate of one rolling run: which instances it started, which services they touched.

    Args:
        calls: the client's call layer.
        cluster: the run's cluster.
        timeout: seconds a drain may wait at the gate before it closes (``steady_timeout``).
        poll_interval: seconds between the first rounds; later ones back off as a drain's
            polls do, up to `ecs_safe._constants.MAX_POLL_INTERVAL`.
        progress: the run's progress callback.
        survey_each: survey each service when a drain first touches it, instead of all of
            them in `begin` (a run of single-instance drains, `EcsSafeClient.steady_gate`).
    """

    calls: EcsCalls
    cluster: str | None
    timeout: float
    poll_interval: float
    progress: ProgressCallback | None = None
    survey_each: bool = False
    started: set[str] = field(default_factory=set)
    surveyed: set[str] = field(default_factory=set)
    touched: set[str] = field(default_factory=set)
    expected: set[str] | None = None
    closed: NotStartedError | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def begin(self, tasks: Iterable[Task]) -> None:
        """Before the first drain: note which services of the run's tasks are steady now.

        One round of DescribeServices (10 a call) over every service the run will touch;
        only those steady now are waited for later.
        """
        await self._survey(_services_of(tasks))

    async def _survey(self, names: set[str]) -> None:
        # Which of ``names`` (not surveyed before) are steady now: only those are waited for.
        names = names - self.surveyed
        if self.surveyed and self.expected is None:
            return  # an earlier survey failed: every service is waited for
        if not names:
            self.expected = self.expected or set()
            return
        self.surveyed |= names
        try:
            found = await self.calls.describe_services(self.cluster, names, refresh=True)
        except EcsSafeError as exc:
            # Not known to be unsteady: every touched service is waited for (fail closed).
            self.expected = None
            _events.logger.warning(
                "ecs_safe.steady.unchecked", cluster=self.cluster, error_code=exc.code
            )
            return
        self.expected = (self.expected or set()) | {
            n for n, s in found.items() if _counters_steady(s)
        }
        unsteady = sorted(n for n, s in found.items() if n not in self.expected and not s.is_daemon)
        if unsteady:
            _events.logger.warning(
                "ecs_safe.steady.unsteady",
                cluster=self.cluster,
                services=unsteady,
                note="not steady before the run began: not waited for",
            )

    async def admit(self, label: str, tasks: Iterable[Task]) -> None:
        """Wait until a drain of ``label`` (whose tasks are ``tasks``) may start; then record it.

        One drain is admitted at a time, each after its own steady check, so the services of
        every drain admitted before it count as touched. The services an admitted drain
        touches are those of ``tasks`` (the pre-flight's) and of the tasks on the instance
        now (one listing), since replacements of earlier waves may have landed on it.

        Raises:
            NotStartedError: the gate closed (now, or earlier in the run).
        """
        async with self._lock:
            if self.closed is not None:
                raise self._not_started(label)
            if self.touched:
                await self._wait(label)
            self.started.add(instance_id_of(label))
            names = _services_of(tasks)
            if self.survey_each or self.expected is None or self.expected:
                # The pre-flight's task list may be minutes old in a long roll: replacements of
                # earlier waves may have landed here since. What the drain will move is what
                # is on the instance now.
                names |= _services_of(await self.calls.list_tasks(label, self.cluster))
            if self.survey_each:
                # No survey of the whole run up front (one drain at a time, `begin` unused):
                # each service is surveyed when a drain first touches it.
                await self._survey(names)
            self.touched.update(n for n in names if self.expected is None or n in self.expected)
            await report(
                self.progress,
                "ecs_safe.steady.admitted",
                level="debug",
                container_instance=label,
                touched=sorted(self.touched),
            )

    async def settle(self, label: str) -> None:
        """Wait, admitting nothing, until the services touched so far are steady again.

        What `admit` waits for, before a caller's own pre-flight: a rolling replacement
        (`ecs_safe.replace`) settles between its waves, so that each wave's budgets are judged
        on services that are whole again. ``label`` names what waits (in events and errors).

        Raises:
            NotStartedError: the gate closed (now, or earlier in the run).
        """
        async with self._lock:
            if self.closed is not None:
                raise self._not_started(label)
            if self.touched:
                await self._wait(label)

    def _not_started(self, label: str) -> NotStartedError:
        closed = self.closed
        assert closed is not None
        return NotStartedError(
            f"container instance {label} was never set DRAINING: {closed}",
            services=closed.services,
        )

    async def _wait(self, label: str) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + self.timeout
        delay = self.poll_interval
        longest = max(self.poll_interval, _constants.MAX_POLL_INTERVAL)
        while True:
            states = await self.states(refresh=True)
            waiting = [s for s in states if not s.steady]
            elapsed = round(loop.time() - began, 3)
            if not waiting:
                await report(
                    self.progress,
                    "ecs_safe.steady.open",
                    container_instance=label,
                    services=sorted(self.touched),
                    elapsed_s=elapsed,
                )
                return
            await report(
                self.progress,
                "ecs_safe.steady.waiting",
                container_instance=label,
                services=[s.fields() for s in waiting],
                elapsed_s=elapsed,
                steady_timeout=self.timeout,
            )
            left = deadline - loop.time()
            if left <= 0:
                self.closed = NotStartedError(
                    f"the services that lost tasks in earlier waves were not steady again "
                    f"within steady_timeout={self.timeout:g}s, so no new drain was started ("
                    + "; ".join(s.summary() for s in waiting)
                    + ")",
                    services=waiting,
                )
                _events.logger.warning(
                    "ecs_safe.steady.expired",
                    cluster=self.cluster,
                    container_instance=label,
                    services=[s.fields() for s in waiting],
                    elapsed_s=elapsed,
                )
                await report(
                    self.progress,
                    "ecs_safe.steady.expired",
                    container_instance=label,
                    services=[s.fields() for s in waiting],
                    elapsed_s=elapsed,
                )
                raise self._not_started(label)
            await asyncio.sleep(min(delay, left))
            delay = min(delay * _constants.POLL_BACKOFF, longest)

    async def states(self, *, refresh: bool) -> list[ServiceState]:
        """Every touched REPLICA service as it stands (a round: DescribeServices, refreshed)."""
        found = await self.calls.describe_services(self.cluster, self.touched, refresh=refresh)
        states: list[ServiceState] = []
        for name in sorted(self.touched):
            service = found.get(name)
            if service is None or service.is_daemon or service.status not in ("ACTIVE", None):
                continue  # gone, draining or a daemon: nothing to wait for
            placed: int | None = None
            steady = _counters_steady(service)
            if steady:
                placed = await self._placed(name)
                steady = placed >= (service.desired_count or 0)
            states.append(
                ServiceState(
                    name=name,
                    desired=service.desired_count or 0,
                    running=service.running_count or 0,
                    pending=service.pending_count or 0,
                    deployments=tuple(
                        f"{d.status}/{d.rollout_state}" for d in service.deployments or []
                    ),
                    placed=placed,
                    steady=steady,
                )
            )
        return states

    async def _placed(self, service: str) -> int:
        """The service's RUNNING tasks on instances this run has not started draining."""
        arns: list[str] = []
        params = {"cluster": self.cluster, "serviceName": service, "desiredStatus": _RUNNING}
        check = listed("ListTasks", "taskArns")
        async for page in pages(self.calls.transport, "ListTasks", params, check=check):
            arns.extend(str(a) for a in page["taskArns"])
        placed = 0
        size = _constants.DESCRIBE_TASKS_BATCH
        for start in range(0, len(arns), size):
            batch = arns[start : start + size]
            response = await self.calls.transport.call(
                "DescribeTasks",
                {"cluster": self.cluster, "tasks": batch},
                check=accounted("DescribeTasks", batch, "tasks", "taskArn"),
            )
            placed += sum(
                1
                for raw in response.get("tasks") or []
                if isinstance(raw, Mapping)
                # ECS lists the service's tasks only; LocalEcs (moto) ignores serviceName.
                and service_name(raw.get("group")) == service
                and raw.get("lastStatus") == _RUNNING
                and instance_id_of(str(raw.get("containerInstanceArn") or "")) not in self.started
            )
        return placed
