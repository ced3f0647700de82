"""Room elsewhere and disruption budgets against LocalEcs's service scheduler (acceptance).

The scheduler places each service's tasks and moves them off DRAINING instances as ECS does
(`ecs_safe.local.scheduler`), so what the checks predict is what then happens: a drain they
allow completes without taking a service below its floor, and a drain they refuse is refused
before anything is set DRAINING.
"""

from __future__ import annotations

from typing import Any

import pytest
from drain_support import client

from ecs_safe import DisruptionBudget, DisruptionBudgets, PolicyViolationError, default_policy
from ecs_safe.local import LocalEcs

CLUSTER = "sched"
FAST: dict[str, Any] = {"timeout": 30.0, "poll_interval": 0.05}
# moto registers every instance with 4096 CPU units and 7482 MiB: two of these fit, not three.
BIG: dict[str, Any] = {"cpu": 1024, "memory": 3000}


def _hosts_of(local: LocalEcs, service: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for event in local.scheduler.events_for(service):
        delta = {"started": 1, "stopped": -1}.get(event.kind, 0)
        found[event.container_instance_arn] = found.get(event.container_instance_arn, 0) + delta
    return {arn: n for arn, n in found.items() if n}


async def _seed(local: LocalEcs, hosts: int, **service: Any) -> list[str]:
    local.create_cluster(CLUSTER)
    arns = local.register_instances(CLUSTER, hosts)
    local.create_service(CLUSTER, "web", scheduler=True, **service)
    await local.scheduler.settle()
    assert local.scheduler.is_steady(CLUSTER, "web")
    local.reset_calls()
    return arns


async def test_a_drain_the_checks_allow_completes_above_the_floor(ecs_env: LocalEcs) -> None:
    arns = await _seed(ecs_env, 2, desired_count=2, **BIG)
    [spare] = ecs_env.register_instances(CLUSTER, 1)
    hosted = _hosts_of(ecs_env, "web")
    drained = next(arn for arn in arns if arn in hosted)
    ecs_env.scheduler.reset_record()
    policy = default_policy().with_rules(DisruptionBudgets(DisruptionBudget("web", 1)))
    ecs_env.scheduler.start(0.02)
    try:
        async with client(ecs_env, policy=policy) as ecs:
            result = await ecs.drain_and_deregister(drained, cluster=CLUSTER, **FAST)
    finally:
        ecs_env.scheduler.stop()
    assert result.container_instance.container_instance_arn == drained
    started = [e for e in ecs_env.scheduler.events_for("web") if e.kind == "started"]
    assert [e.container_instance_arn for e in started] == [spare]
    assert ecs_env.scheduler.lowest_running("web") == 2  # minimumHealthyPercent 100


async def test_no_room_under_the_scheduler_is_refused_before_draining(ecs_env: LocalEcs) -> None:
    arns = await _seed(ecs_env, 2, desired_count=4, **BIG)
    ecs_env.scheduler.reset_record()
    async with client(ecs_env) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.drain_and_deregister(arns[0], cluster=CLUSTER, **FAST)
    assert ecs_env.calls("UpdateContainerInstancesState") == 0
    (violation,) = caught.value.decision.violations
    assert violation.rule == "room-elsewhere"
    assert violation.message.count("lack 3000 MiB") == 2
    await ecs_env.scheduler.settle()
    assert ecs_env.scheduler.record == []  # nothing moved


async def test_a_wave_breaking_the_budget_is_refused_with_the_scheduler_numbers(
    ecs_env: LocalEcs,
) -> None:
    arns = await _seed(ecs_env, 4, desired_count=4, distinct_instance=True)
    ecs_env.register_instances(CLUSTER, 2)
    policy = default_policy().with_rules(DisruptionBudgets(DisruptionBudget("web*", 1)))
    async with client(ecs_env, policy=policy) as ecs:
        one = await ecs.deregister_many(arns[:1], cluster=CLUSTER, drain=True, dry_run=True)
        two = await ecs.deregister_many(arns[:2], cluster=CLUSTER, drain=True, **FAST)
    assert [o.status for o in one.outcomes] == ["would_deregister"]
    assert [o.status for o in two.outcomes] == ["refused", "refused"]
    assert "service web: desired 4, running 4, after the wave 2 (2 on these instances)" in str(
        two.outcomes[0].error
    )
    assert ecs_env.calls("UpdateContainerInstancesState") == 0


async def test_ecs_limits_with_no_surge_refuse_a_wave(ecs_env: LocalEcs) -> None:
    arns = await _seed(ecs_env, 4, desired_count=4, minimum_healthy_percent=50, maximum_percent=100)
    ecs_env.register_instances(CLUSTER, 3)
    policy = default_policy().with_rules(DisruptionBudgets())
    async with client(ecs_env, policy=policy) as ecs:
        two = await ecs.deregister_many(arns[:2], cluster=CLUSTER, drain=True, dry_run=True)
        three = await ecs.deregister_many(arns[:3], cluster=CLUSTER, drain=True, dry_run=True)
    assert {o.status for o in two.outcomes} == {"would_deregister"}
    assert {o.status for o in three.outcomes} == {"refused"}
    assert "below its minimumHealthyPercent 50% (2 of 4)" in str(three.outcomes[0].error)


async def test_a_service_mid_deployment_is_refused(ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, 3)
    ecs_env.create_service(CLUSTER, "web", scheduler=True, desired_count=2)
    ecs_env.scheduler.fail_starts(CLUSTER, "web", times=1, how="PENDING")
    await ecs_env.scheduler.settle()
    policy = default_policy().with_rules(DisruptionBudgets())
    async with client(ecs_env, policy=policy) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, drain=True, dry_run=True)
    messages = " ".join(str(o.error) for o in batch.refused)
    assert "degraded already: 1 of 2 running" in messages
    assert "IN_PROGRESS" in messages
