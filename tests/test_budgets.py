"""Disruption budgets, and the service layer they read (DescribeServices, task definitions)."""

from __future__ import annotations

from typing import Any

import pytest
from drain_support import client
from service_support import CLUSTER, calls_on, service, set_running, start, task_definition

from ecs_safe import (
    DisruptionBudget,
    DisruptionBudgets,
    InvalidInputError,
    default_policy,
)
from ecs_safe.budgets import budget_for, impact_of
from ecs_safe.local import LocalEcs
from ecs_safe.models import Service

FAST: dict[str, Any] = {"timeout": 3.0, "poll_interval": 0.05}


def _seed_services(local: LocalEcs, count: int) -> str:
    local.create_cluster(CLUSTER)
    definition = task_definition(local, "web", cpu=128, memory=256, host_port=8080)
    for number in range(count):
        service(local, f"web-{number:02d}", desired=2, definition=definition, minimum_healthy=50)
    local.reset_calls()
    return definition


async def test_describe_services_batches_ten_a_call_and_caches_until_refreshed(
    ecs_env: LocalEcs,
) -> None:
    _seed_services(ecs_env, 12)
    names = [f"web-{n:02d}" for n in range(12)]
    async with calls_on(ecs_env) as calls:
        found = await calls.describe_services(CLUSTER, [*names, "nope"])
        assert ecs_env.calls("DescribeServices") == 2
        assert sorted(found) == names
        web = found["web-00"]
        assert isinstance(web, Service)
        assert web.desired_count == 2
        assert web.scheduling_strategy == "REPLICA"
        # moto 5.2.5 keeps no deploymentConfiguration; `service` gives its backend one.
        assert web.deployment_configuration is not None
        assert web.deployment_configuration.minimum_healthy_percent == 50
        assert web.deployment_configuration.maximum_percent == 200
        assert web.deployments
        assert web.deployments[0].status == "PRIMARY"
        assert web.deployments[0].rollout_state == "COMPLETED"
        # Cached: the same names (the missing one included) cost nothing more...
        await calls.describe_services(CLUSTER, [*names, "nope"])
        assert ecs_env.calls("DescribeServices") == 2
        # ...until a new round asks again.
        await calls.describe_services(CLUSTER, names[:3], refresh=True)
        assert ecs_env.calls("DescribeServices") == 3


async def test_task_definitions_are_described_once_per_revision(ecs_env: LocalEcs) -> None:
    definition = _seed_services(ecs_env, 1)
    async with calls_on(ecs_env) as calls:
        found = await calls.describe_task_definitions([definition, definition])
        await calls.describe_task_definitions([definition])
    assert ecs_env.calls("DescribeTaskDefinition") == 1
    containers = found[definition].container_definitions or []
    assert containers[0].cpu == 128
    assert containers[0].memory == 256
    assert containers[0].port_mappings
    assert containers[0].port_mappings[0].host_port == 8080


# ----------------------------------------------------------------------------- budgets (unit)


@pytest.mark.parametrize(
    "bad",
    [-1, "10", "110%", "x%", 1.5, True, None],
)
def test_a_bad_budget_is_refused_with_the_fix(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="max_unavailable"):
        DisruptionBudget("web", max_unavailable=bad)


def test_an_empty_pattern_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="service name or pattern"):
        DisruptionBudget("", max_unavailable=1)


def test_rules_take_only_budgets() -> None:
    with pytest.raises(InvalidInputError, match="DisruptionBudget values"):
        DisruptionBudgets("web")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("max_unavailable", "desired", "allowed"),
    [(1, 10, 1), ("10%", 10, 1), ("10%", 5, 0), ("50%", 5, 2), ("100%", 3, 3), (0, 3, 0)],
)
def test_allowed_rounds_percentages_down(
    max_unavailable: int | str, desired: int, allowed: int
) -> None:
    assert DisruptionBudget("*", max_unavailable=max_unavailable).allowed(desired) == allowed


def test_the_first_matching_budget_applies() -> None:
    budgets = [DisruptionBudget("web-api", max_unavailable=0), DisruptionBudget("web*", 2)]
    assert budget_for("web-api", budgets) is budgets[0]
    assert budget_for("web-ui", budgets) is budgets[1]
    assert budget_for("db", budgets) is None


def _service(**fields: Any) -> Service:
    return Service.model_validate(
        {
            "serviceName": "web",
            "status": "ACTIVE",
            "schedulingStrategy": "REPLICA",
            "desiredCount": 4,
            "runningCount": 4,
            "deployments": [{"id": "d1", "status": "PRIMARY", "rolloutState": "COMPLETED"}],
            **fields,
        }
    )


def test_the_numbers_of_an_impact() -> None:
    impact = impact_of(_service(), 2, [DisruptionBudget("web", max_unavailable=1)])
    assert (impact.desired, impact.running, impact.disrupted, impact.after) == (4, 4, 2, 2)
    assert impact.floor == 4  # ECS's default minimum healthy: 100 %
    assert impact.budget is not None
    assert not impact.ok
    assert "its budget allows 1 unavailable" in impact.problems[0]
    assert impact.summary() == (
        "service web: desired 4, running 4, after the wave 2 (2 on these instances); "
        "minimumHealthyPercent 100%, maximumPercent 200%, budget web: max_unavailable=1"
    )


def test_ecs_defaults_never_refuse_a_healthy_service() -> None:
    # 100 % / 200 %: the scheduler starts every replacement before it stops an old task.
    assert impact_of(_service(), 4).ok


def test_ecs_limits_without_surge_refuse_below_the_minimum() -> None:
    config = {"deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100}}
    assert impact_of(_service(**config), 2).ok
    refused = impact_of(_service(**config), 3)
    assert "below its minimumHealthyPercent 50% (2 of 4)" in refused.problems[0]


def test_degraded_and_moving_services_are_refused() -> None:
    assert "degraded already: 3 of 4 running" in impact_of(_service(runningCount=3), 1).problems
    rolling = _service(
        deployments=[
            {"id": "d2", "status": "PRIMARY", "rolloutState": "IN_PROGRESS"},
            {"id": "d1", "status": "ACTIVE", "rolloutState": "COMPLETED"},
        ]
    )
    assert impact_of(rolling, 1).problems == ("deployment d2 is IN_PROGRESS",)
    missing = impact_of(Service.model_validate({"serviceName": "web"}), 1)
    assert "fail closed" in missing.problems[0]


# ----------------------------------------------------------------------------- LocalEcs


def _fleet(local: LocalEcs, hosts: int, *, desired: int, spare: int = 2) -> list[str]:
    """``hosts`` instances running the service "web" evenly, and ``spare`` empty ones."""
    local.create_cluster(CLUSTER)
    arns = local.register_instances(CLUSTER, hosts + spare)
    service(local, "web", desired=desired, definition=task_definition(local, "web"))
    for n, arn in enumerate(arns[:hosts]):
        start(local, arn, "web", desired // hosts + (n < desired % hosts))
    local.reset_calls()
    return arns[:hosts]


async def test_a_wave_breaking_a_budget_is_refused_with_the_service_numbers(
    ecs_env: LocalEcs,
) -> None:
    hosts = _fleet(ecs_env, 2, desired=4)
    policy = default_policy().with_rules(
        DisruptionBudgets(DisruptionBudget(service="web*", max_unavailable=1))
    )
    async with client(ecs_env, policy=policy) as ecs:
        one = await ecs.deregister_many(hosts[:1], cluster=CLUSTER, drain=True, dry_run=True)
        both = await ecs.deregister_many(hosts, cluster=CLUSTER, drain=True, **FAST)
    # Alone, a host holds 2 of web's 4 tasks: more than a budget of 1.
    assert [o.status for o in one.outcomes] == ["refused"]
    assert [o.status for o in both.outcomes] == ["refused", "refused"]
    message = str(both.outcomes[0].error)
    assert "disruption-budgets" in message
    assert "service web: desired 4, running 4, after the wave 0 (4 on these instances)" in message
    assert "budget web*: max_unavailable=1: 4 of its tasks are on these instances" in message
    assert "its budget allows 1 unavailable" in message
    assert ecs_env.calls("UpdateContainerInstancesState") == 0


async def test_ten_percent_of_a_large_service_lets_one_host_go(ecs_env: LocalEcs) -> None:
    hosts = _fleet(ecs_env, 10, desired=20)
    policy = default_policy().with_rules(DisruptionBudgets(DisruptionBudget("web", "10%")))
    async with client(ecs_env, policy=policy) as ecs:
        one = await ecs.deregister_many(hosts[:1], cluster=CLUSTER, drain=True, dry_run=True)
        two = await ecs.deregister_many(hosts[:2], cluster=CLUSTER, drain=True, dry_run=True)
    (planned,) = one.outcomes
    assert planned.status == "would_deregister"
    assert planned.result is not None
    (impact,) = planned.result.decision.services
    assert (impact.desired, impact.running, impact.after, impact.floor) == (20, 20, 18, 20)
    # Two hosts at once take 4 of 20: the budget allows 2.
    assert {o.status for o in two.outcomes} == {"refused"}


async def test_a_degraded_service_is_refused(ecs_env: LocalEcs) -> None:
    hosts = _fleet(ecs_env, 2, desired=4)
    set_running(ecs_env, "web", 3)
    policy = default_policy().with_rules(DisruptionBudgets())
    async with client(ecs_env, policy=policy) as ecs:
        batch = await ecs.deregister_many(hosts[:1], cluster=CLUSTER, drain=True, dry_run=True)
    message = str(batch.outcomes[0].error)
    assert "degraded already: 3 of 4 running" in message
    assert "deployment" in message  # moto's rollout is IN_PROGRESS while not all run


async def test_every_read_of_a_wave_is_batched(ecs_env: LocalEcs) -> None:
    """A wave of 12 hosts of 11 services: reads per wave, never per task."""
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, 14)
    definition = task_definition(ecs_env, "web", cpu=16, memory=16)
    names = [f"svc-{n:02d}" for n in range(11)]
    for name in names:
        service(ecs_env, name, desired=12, definition=definition)
    for arn in arns[:12]:
        for name in names:
            start(ecs_env, arn, name)
    ecs_env.reset_calls()
    policy = default_policy().with_rules(DisruptionBudgets(DisruptionBudget("*", "100%")))
    async with client(ecs_env, policy=policy) as ecs:
        batch = await ecs.deregister_many(arns[:12], cluster=CLUSTER, drain=True, dry_run=True)
    assert {o.status for o in batch.outcomes} == {"would_deregister"}
    # The pre-flight's task lists: one cluster-wide listing for the wave (2 ListTasks, then the
    # 132 tasks described 100 a call), cheaper than 2 ListTasks + 1 DescribeTasks per instance.
    # Per wave: 2 describes of the 11 services (the classification's, then the wave's own
    # round), 1 task definition, 1 listing + 1 describe of the cluster's instances; and 1
    # describe of the 12 drained.
    assert ecs_env.calls("ListTasks") == 2
    assert ecs_env.calls("DescribeTasks") == 2
    assert ecs_env.calls("DescribeServices") == 2 * 2
    assert ecs_env.calls("DescribeTaskDefinition") == 1
    assert ecs_env.calls("ListContainerInstances") == 1
    assert ecs_env.calls("DescribeContainerInstances") == 2
