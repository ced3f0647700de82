"""Room elsewhere: the placement simulation (unit) and the drain refusal it drives (LocalEcs)."""

from __future__ import annotations

from typing import Any

import pytest
from drain_support import client
from service_support import CLUSTER, scaling_provider, service, start, task_definition

from ecs_safe import (
    Caution,
    DeregistrationResult,
    Policy,
    PolicyViolationError,
    RoomElsewhere,
    TaskDefinition,
)
from ecs_safe.capacity import demand_of
from ecs_safe.local import LocalEcs
from ecs_safe.policy import RuleExample

FAST: dict[str, Any] = {"timeout": 3.0, "poll_interval": 0.05}
READS = (
    "DescribeContainerInstances",
    "ListTasks",
    "DescribeTasks",
    "DescribeServices",
    "DescribeTaskDefinition",
    "ListContainerInstances",
    "DescribeCapacityProviders",
)
# moto registers every instance with 4096 CPU units and 7482 MiB: two of these fit, not three.
BIG = {"cpu": 1024, "memory": 3000}


# ----------------------------------------------------------------------------- unit


def _definition(**fields: Any) -> TaskDefinition:
    return TaskDefinition.model_validate(fields)


def test_demand_prefers_task_level_sizes_and_memory_reservation() -> None:
    containers = [
        {"cpu": 100, "memory": 512, "memoryReservation": 128},
        {"cpu": 50, "memory": 256},
    ]
    assert demand_of(_definition(containerDefinitions=containers)).memory == 384
    assert demand_of(_definition(containerDefinitions=containers)).cpu == 150
    sized = demand_of(_definition(cpu="512", memory="1024", containerDefinitions=containers))
    assert (sized.cpu, sized.memory) == (512, 1024)


def test_demand_ports_by_network_mode() -> None:
    mapping = [{"containerPort": 80, "portMappings": None}]
    host = _definition(
        networkMode="host",
        containerDefinitions=[{"portMappings": [{"containerPort": 80}]}],
    )
    assert demand_of(host).ports == {("tcp", 80)}
    dynamic = _definition(containerDefinitions=[{"portMappings": [{"containerPort": 80}]}])
    assert demand_of(dynamic).ports == frozenset()
    awsvpc = _definition(
        networkMode="awsvpc",
        containerDefinitions=[{"portMappings": [{"containerPort": 80, "hostPort": 80}]}],
    )
    assert demand_of(awsvpc).ports == frozenset()
    udp = _definition(
        containerDefinitions=[{"portMappings": [{"hostPort": 53, "protocol": "UDP"}]}, *mapping]
    )
    assert demand_of(udp).ports == {("udp", 53)}


@pytest.mark.parametrize("example", RoomElsewhere.WARN, ids=lambda e: e.note)
def test_warn_examples_allow_with_a_caution(example: RuleExample) -> None:
    rule = example.make_rule(RoomElsewhere)
    caution = rule.check(example.context)
    assert isinstance(caution, Caution)
    assert "managed scaling ENABLED" in caution.message
    decision = Policy([rule]).evaluate(example.context)
    assert decision.allowed
    assert decision.warnings == (caution,)


def test_the_whole_wave_is_packed_once() -> None:
    (example,) = [e for e in RoomElsewhere.INVALID if "first instance" in e.note]
    wave = example.context.wave
    assert wave is not None
    assert wave.placement is wave.placement  # computed once, however many rules ask
    assert len(wave.placement.placed) == 1
    assert len(wave.placement.unplaced) == 1


# ----------------------------------------------------------------------------- LocalEcs


def _cluster(local: LocalEcs, count: int) -> list[str]:
    local.create_cluster(CLUSTER)
    return local.register_instances(CLUSTER, count)


async def test_a_drain_with_no_room_is_refused_before_draining_naming_the_tasks(
    ecs_env: LocalEcs,
) -> None:
    drained, other = _cluster(ecs_env, 2)
    definition = task_definition(ecs_env, "web", **BIG)
    service(ecs_env, "web", desired=4, definition=definition)
    tasks = start(ecs_env, drained, "web", 2)
    start(ecs_env, other, "web", 2)  # the other instance is full
    ecs_env.reset_calls()
    async with client(ecs_env) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.drain_and_deregister(drained, cluster=CLUSTER, **FAST)
    assert ecs_env.calls("UpdateContainerInstancesState") == 0
    assert ecs_env.calls("DeregisterContainerInstance") == 0
    (violation,) = caught.value.decision.violations
    assert violation.rule == "room-elsewhere"
    for task in tasks:
        assert task in violation.message
    assert "lack 3000 MiB" in violation.message
    assert "--no-room-check" in violation.message


async def test_room_on_another_instance_allows_and_counts_its_reads(ecs_env: LocalEcs) -> None:
    drained, _other = _cluster(ecs_env, 2)
    service(ecs_env, "web", desired=2, definition=task_definition(ecs_env, "web", **BIG))
    start(ecs_env, drained, "web", 2)
    ecs_env.reset_calls()
    async with client(ecs_env) as ecs:
        batch = await ecs.deregister_many([drained], cluster=CLUSTER, drain=True, dry_run=True)
        assert [o.status for o in batch.outcomes] == ["would_deregister"]
        first = {op: ecs_env.calls(op) for op in READS}
        ecs_env.reset_calls()
        await ecs.deregister_many([drained], cluster=CLUSTER, drain=True, dry_run=True)
        second = {op: ecs_env.calls(op) for op in READS}
    # The pre-flight of one instance (describe, two task listings, describe its tasks, its
    # services for the tasks' kinds) plus the wave's own reads: DescribeServices again (a
    # fresh round), the task definition once per revision for the client's lifetime, and
    # the cluster's ACTIVE instances (one listing, one describe).
    wave = {"DescribeServices": 1, "ListContainerInstances": 1, "DescribeContainerInstances": 1}
    preflight = {"DescribeContainerInstances": 1, "ListTasks": 2, "DescribeTasks": 1}
    expected = {op: preflight.get(op, 0) + wave.get(op, 0) for op in READS}
    assert second == expected
    assert first == {**expected, "DescribeServices": 2, "DescribeTaskDefinition": 1}


async def test_a_wave_is_packed_as_a_whole(ecs_env: LocalEcs) -> None:
    first, second, spare = _cluster(ecs_env, 3)
    service(ecs_env, "web", desired=4, definition=task_definition(ecs_env, "web", **BIG))
    tasks = start(ecs_env, first, "web", 2) + start(ecs_env, second, "web", 2)
    ecs_env.reset_calls()
    async with client(ecs_env) as ecs:
        alone = [
            await ecs.deregister_many([one], cluster=CLUSTER, drain=True, dry_run=True)
            for one in (first, second)
        ]
        together = await ecs.deregister_many(
            [first, second], cluster=CLUSTER, drain=True, dry_run=True
        )
    # Each fits on the spare alone; together two of the four tasks have nowhere to go.
    assert [b.outcomes[0].status for b in alone] == ["would_deregister"] * 2
    refused = together.refused
    assert refused
    messages = " ".join(str(o.error) for o in refused)
    assert sum(task in messages for task in tasks) == 2
    assert "(2 of the wave's 4)" in messages
    assert ecs_env.calls("UpdateContainerInstancesState") == 0
    assert spare not in messages


async def test_a_taken_host_port_leaves_no_room(ecs_env: LocalEcs) -> None:
    drained, other = _cluster(ecs_env, 2)
    definition = task_definition(ecs_env, "edge", cpu=128, memory=128, host_port=8080)
    service(ecs_env, "edge", desired=2, definition=definition)
    [task] = start(ecs_env, drained, "edge")
    start(ecs_env, other, "edge")
    async with client(ecs_env) as ecs:
        batch = await ecs.deregister_many([drained], cluster=CLUSTER, drain=True, dry_run=True)
    (outcome,) = batch.refused
    assert task in str(outcome.error)
    assert "host port 8080/tcp taken" in str(outcome.error)


async def test_distinct_instance_counts_the_tasks_already_there(ecs_env: LocalEcs) -> None:
    drained, other = _cluster(ecs_env, 2)
    definition = task_definition(ecs_env, "db", cpu=128, memory=128)
    service(ecs_env, "db", desired=2, definition=definition, distinct_instance=True)
    [task] = start(ecs_env, drained, "db")
    start(ecs_env, other, "db")
    async with client(ecs_env) as ecs:
        batch = await ecs.deregister_many([drained], cluster=CLUSTER, drain=True, dry_run=True)
        (outcome,) = batch.refused
        assert task in str(outcome.error)
        assert "distinctInstance" in str(outcome.error)
        ecs_env.register_instances(CLUSTER, 1)  # a third instance: room again
        again = await ecs.deregister_many([drained], cluster=CLUSTER, drain=True, dry_run=True)
    assert [o.status for o in again.outcomes] == ["would_deregister"]


async def test_managed_scaling_warns_instead_of_refusing(ecs_env: LocalEcs) -> None:
    [drained] = _cluster(ecs_env, 1)
    provider = scaling_provider(ecs_env)
    definition = task_definition(ecs_env, "web", **BIG)
    service(ecs_env, "web", desired=1, definition=definition, capacity_provider=provider)
    start(ecs_env, drained, "web")
    async with client(ecs_env) as ecs:
        batch = await ecs.deregister_many([drained], cluster=CLUSTER, drain=True, dry_run=True)
    (outcome,) = batch.outcomes
    assert outcome.status == "would_deregister"
    assert isinstance(outcome.result, DeregistrationResult)
    rules = {w.rule: w.message for w in outcome.result.decision.warnings}
    assert "managed scaling ENABLED" in rules["room-elsewhere"]
    assert ecs_env.calls("DescribeCapacityProviders") == 1


async def test_the_opt_out_skips_the_check_and_the_plan_says_no_instance_is_left(
    ecs_env: LocalEcs,
) -> None:
    [drained] = _cluster(ecs_env, 1)
    service(ecs_env, "web", desired=1, definition=task_definition(ecs_env, "web"))
    start(ecs_env, drained, "web")
    async with client(ecs_env) as ecs:
        refused = await ecs.deregister_many([drained], cluster=CLUSTER, drain=True, dry_run=True)
        planned = await ecs.deregister_many(
            [drained], cluster=CLUSTER, drain=True, dry_run=True, require_room=False
        )
    assert "no ACTIVE instance is left outside this run" in str(refused.refused[0].error)
    (outcome,) = planned.outcomes
    assert outcome.status == "would_deregister"
    assert outcome.result is not None
    (warning,) = outcome.result.decision.warnings
    assert warning.rule == "wave"
    assert "service(s) web would have no ACTIVE instance" in warning.message
