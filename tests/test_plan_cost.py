"""What a plan (and a real run's pre-flight) costs: tasks are listed only where needed.

Counted on LocalEcs, request by request. The safety that the task list exists for stays: a
task that is DEACTIVATING or STOPPING is in neither counter, and wherever a rule judges by the
list, an instance holding one is still refused (single call and fleet, dry run and real).
"""

from __future__ import annotations

import pytest
from drain_support import client

from ecs_safe import PolicyViolationError, ProtectStandaloneTasks, default_policy
from ecs_safe._constants import CLUSTER_TASKS_MIN_INSTANCES
from ecs_safe.local import LocalEcs

CLUSTER = "plans"
MUTATING = ("UpdateContainerInstancesState", "DeregisterContainerInstance", "StopTask")
#: The default rules plus one that asks for the task list (so every rule sees it).
LISTING_POLICY = default_policy().with_rules(ProtectStandaloneTasks())


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    return ecs_env


def task_reads(env: LocalEcs) -> int:
    return env.calls("ListTasks") + env.calls("DescribeTasks")


def mutating_calls(env: LocalEcs) -> int:
    return sum(env.calls(op) for op in MUTATING)


def stopping_instance(env: LocalEcs) -> tuple[str, str]:
    """An instance whose counters are zero while a service task is still STOPPING on it."""
    [arn] = env.register_instances(CLUSTER, 1)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    env.set_task_status(CLUSTER, task, "STOPPING")
    return arn, task


# ----------------------------------------------------------------------------- cost


async def test_an_idle_fleets_plan_costs_its_describes_only(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 250)
    env.reset_calls()
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, dry_run=True)
    assert {o.status for o in batch.outcomes} == {"would_deregister"}
    assert env.calls("ListTasks") == 0
    assert env.calls("DescribeTasks") == 0
    assert env.calls("DescribeContainerInstances") == 3
    assert len(env.call_log) == 3


async def test_an_idle_single_plan_costs_one_describe(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.reset_calls()
    async with client(env) as ecs:
        result = await ecs.deregister_container_instance(arn, cluster=CLUSTER, dry_run=True)
    assert result.dry_run
    assert env.call_log == ["DescribeContainerInstances"]


async def test_a_busy_instance_is_still_listed_and_its_blockers_named(env: LocalEcs) -> None:
    idle, running, pending = env.register_instances(CLUSTER, 3)
    [run_task] = env.start_service_task(CLUSTER, running, "web")
    [pend_task] = env.start_service_task(CLUSTER, pending, "web")
    env.set_task_status(CLUSTER, pend_task, "PENDING")
    env.reset_calls()
    async with client(env) as ecs:
        batch = await ecs.deregister_many([idle, running, pending], cluster=CLUSTER, dry_run=True)
    would, refused_running, refused_pending = batch.outcomes
    assert would.status == "would_deregister"
    assert isinstance(refused_running.error, PolicyViolationError)
    assert [t.task_arn for t in refused_running.error.tasks] == [run_task]
    assert isinstance(refused_pending.error, PolicyViolationError)
    assert "pending" in str(refused_pending.error)
    assert [t.task_arn for t in refused_pending.error.tasks] == [pend_task]
    # Two instances need lists, the idle one not: one cluster-wide listing serves both.
    assert CLUSTER_TASKS_MIN_INSTANCES <= 2
    assert env.calls("ListTasks") == 2
    assert mutating_calls(env) == 0


async def test_a_single_busy_plan_names_its_tasks(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    env.reset_calls()
    async with client(env) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.deregister_container_instance(arn, cluster=CLUSTER, dry_run=True)
    assert [t.task_arn for t in caught.value.tasks] == [task]
    assert env.calls("ListTasks") == 2


async def test_many_busy_instances_are_listed_cluster_wide(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 40)
    tasks = {arn: env.start_service_task(CLUSTER, arn, "web", count=2) for arn in arns}
    env.reset_calls()
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, dry_run=True, force=True)
    assert {o.status for o in batch.outcomes} == {"would_deregister"}
    for arn, outcome in zip(arns, batch.outcomes, strict=True):
        assert outcome.result is not None
        assert sorted(t.task_arn or "" for t in outcome.result.tasks) == sorted(tasks[arn])
        assert {t.kind for t in outcome.result.tasks} == {"service"}
    # One listing of the cluster (RUNNING and STOPPED) instead of 80; 80 tasks, one describe.
    assert env.calls("ListTasks") == 2
    assert env.calls("DescribeTasks") == 1
    assert mutating_calls(env) == 0


async def test_a_cluster_too_busy_to_list_whole_is_listed_per_instance(env: LocalEcs) -> None:
    [other] = env.register_instances(CLUSTER, 1)
    env.start_service_task(CLUSTER, other, "web", count=1200)  # 12 describes to list them all
    arns = env.register_instances(CLUSTER, 3)
    for arn in arns:
        env.start_service_task(CLUSTER, arn, "web")
    env.reset_calls()
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, dry_run=True, force=True)
    assert all(o.result is not None and len(o.result.tasks) == 1 for o in batch.outcomes)
    # The cluster-wide listing gave up after its first page (1 + 13 describes > the 9
    # requests of listing each instance); each was listed on its own: 3 x (2 + 1).
    assert env.calls("DescribeTasks") == 3
    assert env.calls("ListTasks") == 1 + 6


async def test_a_real_run_with_the_default_policy_lists_nothing(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 5)
    env.reset_calls()
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER)
    assert batch.ok
    assert task_reads(env) == 0


async def test_a_cluster_wide_listing_that_fails_fails_its_instances(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 4)
    for arn in arns:
        env.start_service_task(CLUSTER, arn, "web")
    env.inject_fault("ListTasks", code="AccessDeniedException", http_status=400)
    async with client(env, policy=LISTING_POLICY) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, force=True)
    assert {o.status for o in batch.outcomes} == {"failed"}
    assert {o.error.code for o in batch.outcomes if o.error} == {"AccessDeniedException"}
    assert mutating_calls(env) == 0


# ----------------------------------------------------------------------------- safety


@pytest.mark.parametrize("dry_run", [False, True])
async def test_a_stopping_task_is_refused_by_a_listing_policy_single(
    env: LocalEcs, dry_run: bool
) -> None:
    arn, task = stopping_instance(env)
    async with client(env, policy=LISTING_POLICY) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.deregister_container_instance(arn, cluster=CLUSTER, dry_run=dry_run)
    assert [v.rule for v in caught.value.decision.violations] == ["no-running-tasks-unless-forced"]
    assert [t.task_arn for t in caught.value.tasks] == [task]
    assert mutating_calls(env) == 0


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("idle", [0, 5], ids=["per-instance", "cluster-wide"])
async def test_a_stopping_task_is_refused_by_a_listing_policy_fleet(
    env: LocalEcs, dry_run: bool, idle: int
) -> None:
    """Counters at zero never skip the list a rule asked for, however the list is fetched."""
    arn, task = stopping_instance(env)
    others = env.register_instances(CLUSTER, idle) if idle else []
    env.reset_calls()
    async with client(env, policy=LISTING_POLICY) as ecs:
        batch = await ecs.deregister_many([arn, *others], cluster=CLUSTER, dry_run=dry_run)
    refused, *rest = batch.outcomes
    assert refused.status == "refused"
    assert isinstance(refused.error, PolicyViolationError)
    assert [t.task_arn for t in refused.error.tasks] == [task]
    assert {o.status for o in rest} <= {"would_deregister" if dry_run else "deregistered"}
    assert env.calls("ListTasks") == 2  # on its own, or once for the cluster
    assert env.calls("DeregisterContainerInstance") == (0 if dry_run else idle)


async def test_a_plan_with_the_default_policy_decides_as_the_real_run(env: LocalEcs) -> None:
    """The default rules judge by the counters and see no list, in a plan as in a real run.

    So skipping the list of a counters-at-zero instance changes no decision: the plan says
    what the real run does. (A policy with a rule that asks for the list refuses it, above.)
    """
    arn, _task = stopping_instance(env)
    async with client(env) as ecs:
        plan = await ecs.deregister_many([arn], cluster=CLUSTER, dry_run=True)
        assert plan.outcomes[0].status == "would_deregister"
        assert env.calls("DeregisterContainerInstance") == 0
        real = await ecs.deregister_many([arn], cluster=CLUSTER)
    assert real.outcomes[0].status == "deregistered"


async def test_a_forced_plan_names_the_stopping_task_it_would_orphan(env: LocalEcs) -> None:
    arn, task = stopping_instance(env)
    async with client(env) as ecs:
        batch = await ecs.deregister_many([arn], cluster=CLUSTER, dry_run=True, force=True)
    [outcome] = batch.outcomes
    assert outcome.result is not None
    assert [t.task_arn for t in outcome.result.tasks] == [task]
