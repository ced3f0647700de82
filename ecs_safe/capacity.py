"""Room elsewhere: whether the tasks of a wave of drains fit on the rest of the cluster.

Draining an instance only helps when its service tasks can start somewhere else. When they
cannot, the old tasks keep running (ECS never stops a task for lack of room), and the drain
burns its whole deadline. `Wave` holds what the service-aware rules judge (the instances of
one wave, their tasks, the cluster's other ACTIVE instances, the services and task
definitions involved) and `pack` simulates the placement of every moving task of the wave
at once, so ten hosts of one service are judged together, not one by one.

The simulation is **first-fit decreasing**: the moving tasks, largest first (memory, then
CPU), each go to the first instance (in ARN order) that still has room for it, reserving:

- CPU units and memory (MiB), against the instance's ``remainingResources``; a task's
  reservation is its task-level ``cpu``/``memory`` when set, else the sum over its containers
  (``memoryReservation`` where given, else ``memory``), as ECS reserves on EC2;
- static host ports (a ``hostPort`` other than 0, or the container port in ``host`` network
  mode), TCP and UDP apart, against the ports the instance has reserved; ``awsvpc`` tasks
  reserve none (ENI trunking limits are not modelled);
- ``distinctInstance`` (a service placement constraint): no two tasks of the service on one
  instance, counting the tasks it already runs there.

It is a conservative check. A placement it finds is real (every task fits within what the
instances report remaining), but first-fit may miss a packing that exists, and ECS's own
placement strategy (spread, binpack) may not find the one found here. ``memberOf``
constraints are not evaluated: a task that has one is reported (`Placement.unjudged`). A task
whose task definition is unknown, or an instance that reports no remaining resources, has
no room (fails closed).

Only tasks that the scheduler moves need room: those of REPLICA services (``kind ==
"service"``) that are not already told to stop. Daemon tasks stop with their instance;
standalone tasks are never moved by a drain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from ecs_safe.models import (
    CapacityProvider,
    ContainerInstance,
    Service,
    Task,
    TaskDefinition,
    service_name,
)

__all__ = [
    "Demand",
    "Placement",
    "Unplaced",
    "Wave",
    "demand_of",
    "moving_tasks",
    "pack",
]

_DISTINCT_INSTANCE: Final = "distinctInstance"
_MEMBER_OF: Final = "memberOf"


@dataclass(frozen=True, slots=True)
class Demand:
    """What one task reserves on the instance it runs on.

    Attributes:
        cpu: CPU units.
        memory: memory in MiB.
        ports: static host ports, as ``(protocol, port)`` (``"tcp"`` or ``"udp"``).
        member_of: the ``memberOf`` expressions of its task definition (not evaluated).
    """

    cpu: int
    memory: int
    ports: frozenset[tuple[str, int]] = frozenset()
    member_of: tuple[str, ...] = ()


def _as_int(value: str | int | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def demand_of(definition: TaskDefinition) -> Demand:
    """What a task of ``definition`` reserves on an EC2 container instance."""
    containers = definition.container_definitions or []
    cpu = _as_int(definition.cpu)
    if cpu is None:
        cpu = sum(c.cpu or 0 for c in containers)
    memory = _as_int(definition.memory)
    if memory is None:
        memory = sum(c.memory_reservation or c.memory or 0 for c in containers)
    ports: set[tuple[str, int]] = set()
    if definition.network_mode != "awsvpc":
        for container in containers:
            for mapping in container.port_mappings or []:
                port = mapping.host_port
                if not port and definition.network_mode == "host":
                    port = mapping.container_port
                if port:
                    ports.add(((mapping.protocol or "tcp").lower(), port))
    member_of = tuple(
        c.expression or "" for c in definition.placement_constraints or [] if c.type == _MEMBER_OF
    )
    return Demand(cpu=cpu, memory=memory, ports=frozenset(ports), member_of=member_of)


@dataclass(frozen=True, slots=True)
class Unplaced:
    """A moving task of the wave that has nowhere to go.

    Attributes:
        task: the task.
        instance_arn: the ARN of the wave's instance it runs on.
        service: its service's name.
        reason: why nothing takes it, in words.
        scales: the service's capacity provider has managed scaling on, so ECS will add
            instances for it (a warning, not a refusal).
    """

    task: Task
    instance_arn: str
    service: str | None
    reason: str
    scales: bool = False

    def describe(self) -> str:
        """``ARN (service web: reason)``, for messages."""
        return (
            f"{self.task.task_arn or '(task without ARN)'} (service {self.service}: {self.reason})"
        )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where `pack` put each moving task of a wave, and which found no room.

    Attributes:
        placed: task ARN -> the ARN of the instance it would start on.
        unplaced: every moving task that fits nowhere, in the order they were tried.
        unjudged: task ARN -> the ``memberOf`` expressions not evaluated for it.
    """

    placed: Mapping[str, str]
    unplaced: tuple[Unplaced, ...]
    unjudged: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def unplaced_on(self, instance_arn: str | None) -> list[Unplaced]:
        """The unplaced tasks that run on ``instance_arn`` now."""
        return [u for u in self.unplaced if u.instance_arn == instance_arn]


@dataclass(frozen=True)
class Wave:
    """What the service-aware rules judge: one wave of drains and the cluster around it.

    Attributes:
        instances: the wave's instances, as described before the decision.
        tasks: the tasks (not STOPPED) on each of them, keyed by instance ARN.
        targets: the cluster's instances that may take tasks: ACTIVE, agent connected,
            not in this run.
        services: the services of the wave's service tasks, keyed by name, as described in
            this round (DescribeServices).
        task_definitions: the task definitions of the moving tasks, keyed by ARN.
        capacity_providers: the capacity providers of those services (and of the wave's
            instances), keyed by name.
        hosts: for each ``distinctInstance`` service, the target instances (ARNs) that
            already run one of its tasks.
    """

    instances: tuple[ContainerInstance, ...]
    tasks: Mapping[str, tuple[Task, ...]]
    targets: tuple[ContainerInstance, ...] = ()
    services: Mapping[str, Service] = field(default_factory=dict)
    task_definitions: Mapping[str, TaskDefinition] = field(default_factory=dict)
    capacity_providers: Mapping[str, CapacityProvider] = field(default_factory=dict)
    hosts: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def tasks_of_service(self, name: str) -> list[Task]:
        """The wave's tasks (not STOPPED, not told to stop) of the service ``name``."""
        return [
            task
            for tasks in self.tasks.values()
            for task in tasks
            if service_name(task.group) == name and _live(task)
        ]

    @cached_property
    def placement(self) -> Placement:
        """`pack` of this wave, computed once however many rules and instances ask."""
        return pack(self)

    def scales(self, service: Service | None, instance: ContainerInstance | None) -> bool:
        """Whether ECS adds capacity for the service's tasks (managed scaling ENABLED).

        The providers are the service's capacity provider strategy, else the capacity
        provider of the instance its task runs on.
        """
        names = (
            [s.capacity_provider for s in (service.capacity_provider_strategy or [])]
            if (service is not None)
            else []
        )
        if not names and instance is not None and instance.capacity_provider_name:
            names = [instance.capacity_provider_name]
        return any(
            (p := self.capacity_providers.get(n or "")) is not None and p.managed_scaling_enabled
            for n in names
        )


def _live(task: Task) -> bool:
    return task.last_status != "STOPPED" and task.desired_status != "STOPPED"


def distinct_instance(service: Service | None) -> bool:
    """Whether the service's tasks must each run on a different instance."""
    return service is not None and any(
        c.type == _DISTINCT_INSTANCE for c in service.placement_constraints or []
    )


def moving_tasks(wave: Wave) -> list[tuple[ContainerInstance, Task]]:
    """The tasks the scheduler will start elsewhere: REPLICA service tasks not told to stop."""
    moving: list[tuple[ContainerInstance, Task]] = []
    for instance in wave.instances:
        for task in wave.tasks.get(instance.container_instance_arn or "", ()):
            if task.kind == "service" and _live(task):
                moving.append((instance, task))
    return moving


@dataclass
class _Room:
    """What one target instance has left during the simulation."""

    arn: str
    cpu: int
    memory: int
    ports: set[tuple[str, int]]
    services: set[str]

    @classmethod
    def of(cls, instance: ContainerInstance, hosts: Mapping[str, frozenset[str]]) -> _Room:
        arn = instance.container_instance_arn or ""
        cpu = memory = 0
        ports: set[tuple[str, int]] = set()
        for resource in instance.remaining_resources or []:
            if resource.name == "CPU":
                cpu = resource.integer_value or 0
            elif resource.name == "MEMORY":
                memory = resource.integer_value or 0
            elif resource.name in ("PORTS", "PORTS_UDP"):
                protocol = "udp" if resource.name == "PORTS_UDP" else "tcp"
                ports.update(
                    (protocol, int(p)) for p in resource.string_set_value or [] if p.isdigit()
                )
        return cls(arn, cpu, memory, ports, {s for s, on in hosts.items() if arn in on})

    def lacks(self, demand: Demand, service: str | None, distinct: bool) -> str | None:
        """Why the task does not fit here, or ``None`` when it does."""
        if demand.cpu > self.cpu:
            return "cpu"
        if demand.memory > self.memory:
            return "memory"
        if demand.ports & self.ports:
            return "ports"
        if distinct and service in self.services:
            return "distinctInstance"
        return None

    def take(self, demand: Demand, service: str | None) -> None:
        self.cpu -= demand.cpu
        self.memory -= demand.memory
        self.ports |= demand.ports
        if service is not None:
            self.services.add(service)


def _reason(demand: Demand, misses: Iterable[str], targets: int) -> str:
    if targets == 0:
        return "no ACTIVE instance is left outside this run"
    counted = dict.fromkeys(("cpu", "memory", "ports", "distinctInstance"), 0)
    for miss in misses:
        counted[miss] += 1
    parts = []
    if counted["cpu"]:
        parts.append(f"{counted['cpu']} lack {demand.cpu} CPU units")
    if counted["memory"]:
        parts.append(f"{counted['memory']} lack {demand.memory} MiB")
    if counted["ports"]:
        ports = ", ".join(f"{p}/{proto}" for proto, p in sorted(demand.ports))
        parts.append(f"{counted['ports']} have host port {ports} taken")
    if counted["distinctInstance"]:
        parts.append(f"{counted['distinctInstance']} run one already (distinctInstance)")
    return f"none of {targets} ACTIVE instance(s) has room: " + "; ".join(parts)


def pack(wave: Wave) -> Placement:
    """Place every moving task of the wave on the targets, first-fit decreasing.

    Deterministic: tasks largest first (memory, CPU, then ARN), instances in ARN order.
    """
    rooms = [
        _Room.of(i, wave.hosts)
        for i in sorted(wave.targets, key=lambda i: i.container_instance_arn or "")
    ]
    demands: list[tuple[ContainerInstance, Task, Demand | None]] = []
    for instance, task in moving_tasks(wave):
        definition = wave.task_definitions.get(task.task_definition_arn or "")
        demands.append((instance, task, demand_of(definition) if definition else None))
    demands.sort(
        key=lambda d: (
            -(d[2].memory if d[2] else 0),
            -(d[2].cpu if d[2] else 0),
            d[1].task_arn or "",
        )
    )
    placed: dict[str, str] = {}
    unplaced: list[Unplaced] = []
    unjudged: dict[str, tuple[str, ...]] = {}
    for instance, task, demand in demands:
        name = service_name(task.group)
        service = wave.services.get(name or "")
        here = instance.container_instance_arn or ""
        scales = wave.scales(service, instance)
        if demand is None:
            why = f"its task definition {task.task_definition_arn} could not be read"
            unplaced.append(Unplaced(task, here, name, why, scales))
            continue
        if demand.member_of:
            unjudged[task.task_arn or ""] = demand.member_of
        distinct = distinct_instance(service)
        misses: list[str] = []
        for room in rooms:
            miss = room.lacks(demand, name, distinct)
            if miss is None:
                room.take(demand, name)
                placed[task.task_arn or ""] = room.arn
                break
            misses.append(miss)
        else:
            unplaced.append(Unplaced(task, here, name, _reason(demand, misses, len(rooms)), scales))
    return Placement(placed, tuple(unplaced), unjudged)
