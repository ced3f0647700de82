"""Disruption budgets: how many of a service's tasks one wave of drains may take away.

For each REPLICA service with tasks on the wave's instances, `impact_of` works out the
numbers a plan shows and a refusal names:

- ``desired`` and ``running``: the service's ``desiredCount`` and ``runningCount``, as
  DescribeServices answered in this round;
- ``disrupted``: its tasks on the wave's instances (every instance of the wave counts, so ten
  hosts of one service are judged together);
- ``after``: ``running - disrupted``, the tasks left running on instances the wave leaves
  alone before any replacement is running (the worst case: replacements that cannot start);
- ``floor``: the fewest RUNNING tasks allowed, ``max(ceil(minimumHealthyPercent * desired),
  desired - max_unavailable)``.

A wave is refused for a service when

- it is **degraded** already (``runningCount < desiredCount``), or a deployment is under way
  or failed (a rollout ``IN_PROGRESS`` or ``FAILED``, or more than one deployment): draining
  now would stack a second disruption on the first;
- its own **ECS limits** cannot hold: the scheduler starts replacements first as far as
  ``maximumPercent`` allows (``floor(maximumPercent * desired) - running`` of them) and stops
  the rest before theirs run, which would leave fewer than ``ceil(minimumHealthyPercent *
  desired)`` RUNNING (ECS would then wait, and the drain burn its deadline); with ECS's
  defaults (100 % / 200 %) this never refuses;
- its **user budget** is exceeded: ``after < desired - max_unavailable`` (a budget counts
  every disrupted task, as a Kubernetes PodDisruptionBudget counts evictions, whether or not
  a replacement starts first).

A `DisruptionBudget` names services by name or glob pattern (``"web*"``) with a count or a
percentage of ``desiredCount`` (rounded down: ``"10%"`` of 5 tasks allows none). The first
budget that matches a service is its budget. Percentages of ECS's limits round as ECS rounds
them (minimum up, maximum down). DescribeServices omits nothing on AWS; where an endpoint
leaves ``deploymentConfiguration`` out (moto does), ECS's defaults apply.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from ecs_safe._constants import DEFAULT_MAXIMUM_PERCENT, DEFAULT_MINIMUM_HEALTHY_PERCENT
from ecs_safe.capacity import Wave
from ecs_safe.errors import InvalidInputError
from ecs_safe.models import Service, service_name

__all__ = ["DisruptionBudget", "ServiceImpact", "budget_for", "impact_of", "impacts"]

_PERCENT = re.compile(r"^\s*(\d{1,3})\s*%\s*$")
_MOVING_ROLLOUTS: Final = frozenset({"IN_PROGRESS", "FAILED"})


@dataclass(frozen=True)
class DisruptionBudget:
    """How many tasks of the services matching ``service`` one wave may disrupt.

    Args:
        service: a service name or a glob pattern (``"web*"``, ``"*"``), case-sensitive.
        max_unavailable: a count (``1``) or a percentage of ``desiredCount`` (``"10%"``,
            rounded down).

    Raises:
        InvalidInputError: an empty pattern, a negative count, or a percentage that is not
            ``"N%"`` with N from 0 to 100.
    """

    service: str
    max_unavailable: int | str = 1

    def __post_init__(self) -> None:
        if not isinstance(self.service, str) or not self.service:
            raise InvalidInputError(
                "DisruptionBudget needs a service name or pattern, e.g. "
                "DisruptionBudget(service='web*', max_unavailable=1)"
            )
        value = self.max_unavailable
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidInputError(
                f"max_unavailable must be a count (1) or a percentage ('10%'), got {value!r}"
            )
        if isinstance(value, int) and value < 0:
            raise InvalidInputError(f"max_unavailable must be 0 or more, got {value}")
        if isinstance(value, str):
            match = _PERCENT.match(value)
            if match is None or int(match.group(1)) > 100:
                raise InvalidInputError(
                    f"max_unavailable {value!r} is not a percentage from '0%' to '100%'; "
                    "pass a count (max_unavailable=1) or a string such as '10%'"
                )

    def matches(self, name: str) -> bool:
        """Whether this budget covers the service ``name`` (glob match)."""
        return fnmatchcase(name, self.service)

    def allowed(self, desired: int) -> int:
        """How many of ``desired`` tasks may be unavailable at once under this budget."""
        if isinstance(self.max_unavailable, int):
            return self.max_unavailable
        match = _PERCENT.match(self.max_unavailable)
        percent = int(match.group(1)) if match else 0
        return desired * percent // 100

    def __str__(self) -> str:
        return f"{self.service}: max_unavailable={self.max_unavailable!r}"


def budget_for(name: str, budgets: Iterable[DisruptionBudget]) -> DisruptionBudget | None:
    """The first of ``budgets`` that covers the service ``name``, if any."""
    return next((b for b in budgets if b.matches(name)), None)


@dataclass(frozen=True)
class ServiceImpact:
    """What one wave does to one REPLICA service (see the module's text for each number).

    Attributes:
        service: the service's name.
        desired: its ``desiredCount``.
        running: its ``runningCount``.
        disrupted: its tasks on the wave's instances.
        after: ``running - disrupted``.
        floor: the fewest RUNNING tasks allowed (ECS's minimum or the budget's, the higher).
        minimum_healthy_percent: from its deploymentConfiguration (or ECS's default).
        maximum_percent: from its deploymentConfiguration (or ECS's default).
        budget: the user's budget that covers it, if any.
        problems: why the wave is refused for it; empty when it is not.
    """

    service: str
    desired: int
    running: int
    disrupted: int
    after: int
    floor: int
    minimum_healthy_percent: int
    maximum_percent: int
    budget: DisruptionBudget | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether the wave may go ahead for this service."""
        return not self.problems

    def summary(self) -> str:
        """The numbers on one line, as a plan and a refusal show them."""
        budget = f"budget {self.budget}" if self.budget else "no budget"
        return (
            f"service {self.service}: desired {self.desired}, running {self.running}, "
            f"after the wave {self.after} ({self.disrupted} on these instances); "
            f"minimumHealthyPercent {self.minimum_healthy_percent}%, maximumPercent "
            f"{self.maximum_percent}%, {budget}"
        )


def _rollout_problems(service: Service) -> list[str]:
    live = [d for d in service.deployments or [] if d.status != "INACTIVE"]
    problems = [
        f"deployment {d.id} is {d.rollout_state}"
        for d in live
        if d.rollout_state in _MOVING_ROLLOUTS
    ]
    if len(live) > 1 and not problems:
        problems.append(f"{len(live)} deployments are active (a deployment is under way)")
    return problems


def impact_of(
    service: Service, disrupted: int, budgets: Sequence[DisruptionBudget] = ()
) -> ServiceImpact:
    """The impact on ``service`` of disrupting ``disrupted`` of its tasks."""
    name = service.service_name or "(unnamed)"
    desired = service.desired_count or 0
    running = service.running_count or 0
    config = service.deployment_configuration
    minimum = (
        config.minimum_healthy_percent
        if config and config.minimum_healthy_percent is not None
        else DEFAULT_MINIMUM_HEALTHY_PERCENT
    )
    maximum = (
        config.maximum_percent
        if config and config.maximum_percent is not None
        else DEFAULT_MAXIMUM_PERCENT
    )
    budget = budget_for(name, budgets)
    ecs_floor = math.ceil(desired * minimum / 100)
    floor = max(ecs_floor, desired - budget.allowed(desired)) if budget else ecs_floor
    after = running - disrupted
    problems: list[str] = []
    if service.running_count is None or service.desired_count is None:
        problems.append("DescribeServices gave no runningCount/desiredCount (fail closed)")
    elif running < desired:
        problems.append(f"degraded already: {running} of {desired} running")
    problems.extend(_rollout_problems(service))
    surge = max(0, desired * maximum // 100 - running)
    stopped_first = max(0, disrupted - surge)
    if disrupted and running - stopped_first < ecs_floor:
        problems.append(
            f"ECS would have to stop {stopped_first} before their replacements run "
            f"(maximumPercent {maximum}% allows {surge} extra), leaving "
            f"{running - stopped_first}, below its minimumHealthyPercent {minimum}% "
            f"({ecs_floor} of {desired})"
        )
    if budget is not None and disrupted and after < desired - budget.allowed(desired):
        problems.append(
            f"{disrupted} of its tasks are on these instances, its budget allows "
            f"{budget.allowed(desired)} unavailable"
        )
    return ServiceImpact(
        service=name,
        desired=desired,
        running=running,
        disrupted=disrupted,
        after=after,
        floor=floor,
        minimum_healthy_percent=minimum,
        maximum_percent=maximum,
        budget=budget,
        problems=tuple(problems),
    )


def impacts(wave: Wave, budgets: Sequence[DisruptionBudget] = ()) -> list[ServiceImpact]:
    """The impact of the wave on every REPLICA service with tasks on its instances, by name."""
    names = sorted(
        {
            name
            for tasks in wave.tasks.values()
            for task in tasks
            if task.kind == "service" and (name := service_name(task.group))
        }
    )
    found: list[ServiceImpact] = []
    for name in names:
        service = wave.services.get(name)
        if service is None or service.is_daemon:
            continue
        found.append(impact_of(service, len(wave.tasks_of_service(name)), budgets))
    return found
