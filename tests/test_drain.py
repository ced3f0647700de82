"""drain() and drain_and_deregister() against the local endpoint (real HTTP, moto behind it).

moto never moves tasks off a DRAINING instance, so each test plays the ECS scheduler itself:
a progress callback (`after_looks`) stops (or re-states) tasks after the drain's n-th look, so
that no test depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import botocore.session
import pytest
from drain_support import client, ecs_backend, instant_retries
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT
from moto.ecs.models import ContainerInstanceFailure
from structlog.testing import capture_logs

from ecs_safe import (
    ClientException,
    ClusterAllowlist,
    ContainerInstanceNotFoundError,
    DeregistrationResult,
    DrainTimeoutError,
    EcsApiError,
    EcsSafeError,
    InvalidInputError,
    PolicyContext,
    PolicyViolationError,
    ProtectStandaloneTasks,
    Violation,
    default_policy,
)
from ecs_safe.drain import STANDALONE_TASKS_RULE
from ecs_safe.errors import DrainNotFoundError, DrainRejectedError, PartialDrainError
from ecs_safe.local import LocalEcs

CLUSTER = "prod"
MUTATING = ("UpdateContainerInstancesState", "DeregisterContainerInstance", "StopTask")
# Small numbers keep the suite fast; the logic is the same at 600 s / 5 s.
FAST: dict[str, Any] = {"timeout": 3.0, "poll_interval": 0.05}


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    # A spare ACTIVE instance: where ECS would start the drained service tasks (a drain
    # whose tasks have nowhere to go is refused: RoomElsewhere).
    ecs_env.register_instances(CLUSTER, 1)
    return ecs_env


def one_instance(env: LocalEcs) -> str:
    [arn] = env.register_instances(CLUSTER, 1)
    return arn


def status_of(env: LocalEcs, arn: str) -> str | None:
    """The instance's status; None once it is deregistered (ECS describes it as INACTIVE)."""
    found = env_ecs(env).describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    instances = found["containerInstances"]
    status = str(instances[0]["status"]) if instances else None
    return None if status == "INACTIVE" else status


@functools.cache
def env_ecs(env: LocalEcs) -> Any:
    """A plain boto3 client: another tool acting on the same cluster (its calls are counted)."""
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client("ecs", endpoint_url=env.endpoint_url, region_name=env.region_name)


def mutating_calls(env: LocalEcs) -> int:
    return sum(env.calls(op) for op in MUTATING)


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


# ----------------------------------------------------------------------------- drain()


async def test_drain_sets_draining_ten_per_call_in_input_order(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 23)
    given = list(reversed(arns))
    async with client(env) as ecs:
        drained = await ecs.drain(given, cluster=CLUSTER)
    assert [i.container_instance_arn for i in drained] == given
    assert {i.status for i in drained} == {"DRAINING"}
    assert env.calls("UpdateContainerInstancesState") == 3
    assert status_of(env, arns[0]) == "DRAINING"


async def test_drain_reports_missing_instances_and_keeps_the_rest_draining(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 2)
    ghost = "0123456789abcdef0123456789abcdef"
    async with client(env) as ecs:
        with pytest.raises(DrainNotFoundError) as caught:
            await ecs.drain([arns[0], ghost, arns[1]], cluster=CLUSTER)
    error = caught.value
    # One error, usable as any of the types a caller may catch.
    assert isinstance(error, ContainerInstanceNotFoundError)
    assert isinstance(error, PartialDrainError)
    assert error.container_instances == [ghost]
    assert error.failures == {ghost: "MISSING"}
    assert [i.container_instance_arn for i in error.drained] == [arns[0], arns[1]]
    assert ghost in str(error)
    assert "the other 2 were set DRAINING" in str(error)
    assert [status_of(env, a) for a in arns] == ["DRAINING", "DRAINING"]


async def test_drain_reports_other_failure_reasons_as_rejected(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = env.register_instances(CLUSTER, 2)
    backend = ecs_backend(env)
    original = backend.update_container_instances_state

    def refuse_second(cluster: str, ids: list[str], status: str) -> Any:
        # A reason other than MISSING, as ECS may send one some day.
        done, _ = original(cluster, ids[:1], status)
        return done, [ContainerInstanceFailure("ACCESS_DENIED", ids[1], ACCOUNT, env.region_name)]

    monkeypatch.setattr(backend, "update_container_instances_state", refuse_second)
    async with client(env) as ecs:
        with pytest.raises(DrainRejectedError) as caught:
            await ecs.drain(arns, cluster=CLUSTER)
    assert isinstance(caught.value, ClientException)
    assert caught.value.code == "ACCESS_DENIED"
    assert caught.value.failures == {arns[1]: "ACCESS_DENIED"}
    assert [i.container_instance_arn for i in caught.value.drained] == [arns[0]]


async def test_drain_api_error_names_instances_already_draining(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 12)
    async with client(env) as ecs:
        # The first call (10 instances) works, the second is refused outright.
        # Wrapped at the transport (a private of the client): the one path every request takes.
        transport = ecs._transport
        assert transport is not None
        original_call = transport.call
        calls = 0

        async def second_fails(operation: str, params: Mapping[str, Any], **kw: Any) -> Any:
            nonlocal calls
            if operation == "UpdateContainerInstancesState":
                calls += 1
                if calls == 2:
                    env.inject_fault(operation, code="AccessDeniedException")
            return await original_call(operation, params, **kw)

        transport.call = second_fails  # type: ignore[method-assign]
        with pytest.raises(EcsApiError) as caught:
            await ecs.drain(arns, cluster=CLUSTER)
    assert caught.value.code == "AccessDeniedException"
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "set DRAINING already" in notes
    assert arns[0].rsplit("/", 1)[-1] in notes


async def test_drain_validates_before_any_call(env: LocalEcs) -> None:
    async with client(env) as ecs:
        for bad in ("not-a-list", [], ["i-0123456789abcdef"], [""]):
            with pytest.raises(InvalidInputError):
                await ecs.drain(bad, cluster=CLUSTER)
    assert env.call_log == []


# ----------------------------------------------------------------------------- the happy path


async def test_drain_and_deregister_waits_for_service_tasks_then_deregisters(
    env: LocalEcs,
) -> None:
    arn = one_instance(env)
    tasks = env.start_service_task(CLUSTER, arn, "web", count=2)
    seen: list[Mapping[str, Any]] = []

    def scheduler_moves_them() -> None:
        for task in tasks:
            env.stop_task(CLUSTER, task)

    scheduler = after_looks(1, scheduler_moves_them, seen)
    async with client(env) as ecs:
        with capture_logs() as logs:
            result = await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, progress=scheduler, **FAST
            )
    assert scheduler.acted  # not before the scheduler moved the tasks
    assert result.forced is False
    assert result.dry_run is False
    assert result.decision.allowed
    assert status_of(env, arn) is None  # moto drops deregistered instances at once
    assert env.calls("DeregisterContainerInstance") == 1
    assert env.calls("UpdateContainerInstancesState") == 1
    progress = events(logs, "ecs_safe.drain.progress")
    assert progress[0]["remaining_tasks"] == 2
    assert progress[-1]["remaining_tasks"] == 0
    assert {"container_instance_arn", "remaining_tasks", "elapsed_s"} <= set(progress[0])
    assert [e["elapsed_s"] for e in progress] == sorted(e["elapsed_s"] for e in progress)
    # The callback got exactly what was logged.
    assert [e["remaining_tasks"] for e in seen] == [e["remaining_tasks"] for e in progress]
    assert seen[0]["event"] == "ecs_safe.drain.progress"
    [started_event] = events(logs, "ecs_safe.drain.started")
    assert started_event["already_draining"] is False
    assert events(logs, "ecs_safe.deregister.succeeded")


async def test_an_empty_instance_is_deregistered_after_one_poll(env: LocalEcs) -> None:
    arn = one_instance(env)
    async with client(env) as ecs:
        with capture_logs() as logs:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    assert len(events(logs, "ecs_safe.drain.progress")) == 1
    assert env.calls("DeregisterContainerInstance") == 1


class after_looks:  # noqa: N801 (used like a function)
    """A progress callback that plays the ECS scheduler: ``act()`` after the ``n``-th look.

    Waiting on the drain's own looks, not on a timer, keeps the tests independent of the
    machine's speed. Every event is also appended to ``seen``.
    """

    def __init__(self, n: int, act: Any, seen: list[Mapping[str, Any]] | None = None) -> None:
        self.n = n
        self.act = act
        self.looks = 0
        self.acted = False
        self.seen = seen if seen is not None else []

    def __call__(self, event: Mapping[str, Any]) -> None:
        self.seen.append(event)
        self.looks += 1
        if self.looks == self.n:
            assert not self.acted
            self.act()
            self.acted = True


async def test_polls_describe_and_list_tasks_only_once_the_counters_say_empty(
    env: LocalEcs,
) -> None:
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    scheduler = after_looks(3, lambda: env.stop_task(CLUSTER, task))
    async with client(env) as ecs:
        with capture_logs() as logs:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, progress=scheduler, **FAST)
    looks = events(logs, "ecs_safe.drain.progress")
    assert [e["running_tasks_count"] for e in looks[:3]] == [1, 1, 1]
    assert looks[-1]["remaining_tasks"] == 0
    # The pre-flight lists what the drain moves (1 ListTasks, desired RUNNING, and 1
    # DescribeTasks); the waits describe the instance only, until its counters say empty; then
    # one list of both desired statuses confirms it, and it goes.
    assert env.calls("ListTasks") == 1 + 2
    assert env.calls("DescribeTasks") == 1 + 1
    assert env.calls("DescribeContainerInstances") >= 1 + len(looks)
    assert env.call_log[-1] == "DeregisterContainerInstance"
    assert env.call_log[-4:-1] == ["ListTasks", "ListTasks", "DescribeTasks"]


async def test_a_drain_that_times_out_keeps_its_task(env: LocalEcs) -> None:
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:
        with pytest.raises(DrainTimeoutError):
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, timeout=0.3, poll_interval=0.05)
    assert env.calls("ListTasks") == 1  # the pre-flight's; the counters never said empty
    assert task in {t.task_arn for t in (await _remaining(env, arn))}


async def _remaining(env: LocalEcs, arn: str) -> list[Any]:
    async with client(env) as ecs:
        return await ecs.list_tasks(arn, cluster=CLUSTER)


# ----------------------------------------------------------------------------- counters lie


async def test_counters_at_zero_do_not_end_the_wait_while_a_task_is_stopping(
    env: LocalEcs,
) -> None:
    """aws-cdk #13506: a DEACTIVATING task is in no counter but still serves connections."""
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    env.set_task_status(CLUSTER, task, "DEACTIVATING")
    scheduler = after_looks(2, lambda: env.set_task_status(CLUSTER, task, "STOPPED"))
    async with client(env) as ecs:
        with capture_logs() as logs:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, progress=scheduler, **FAST)
    assert scheduler.acted  # the two looks before it saw the task, and did not deregister
    assert [e["remaining_tasks"] for e in events(logs, "ecs_safe.drain.progress")[:2]] == [1, 1]
    first = events(logs, "ecs_safe.drain.progress")[0]
    assert first["running_tasks_count"] == 0
    assert first["remaining_tasks"] == 1


async def test_counters_at_zero_do_not_end_the_wait_while_a_task_runs(env: LocalEcs) -> None:
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    # Counters that disagree with the task list (stale, or a non-AWS endpoint).
    ecs_backend(env).container_instances[CLUSTER][arn.rsplit("/", 1)[-1]].running_tasks_count = 0
    scheduler = after_looks(2, lambda: env.stop_task(CLUSTER, task))
    async with client(env) as ecs:
        with capture_logs() as logs:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, progress=scheduler, **FAST)
    assert scheduler.acted
    first = events(logs, "ecs_safe.drain.progress")[0]
    assert (first["running_tasks_count"], first["remaining_tasks"]) == (0, 1)


# ----------------------------------------------------------------------------- on_timeout


async def test_timeout_raise_leaves_the_instance_draining(env: LocalEcs) -> None:
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:
        with pytest.raises(DrainTimeoutError) as caught:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, timeout=0.3, poll_interval=0.05)
    error = caught.value
    # The time stated is the real one, measured by the drain (not the timeout restated).
    stated = re.search(r"after (\d+\.\d)s of draining \(timeout 0.3s\)", str(error))
    assert stated, str(error)
    assert float(stated[1]) >= 0.3
    assert [t.task_arn for t in error.remaining_tasks] == [task]
    assert error.container_instance.status == "DRAINING"
    assert "left DRAINING" in str(error)
    assert status_of(env, arn) == "DRAINING"
    assert env.calls("DeregisterContainerInstance") == 0


async def test_timeout_reactivate_sets_it_active_again_then_raises(env: LocalEcs) -> None:
    arn = one_instance(env)
    env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:
        with capture_logs() as logs, pytest.raises(DrainTimeoutError) as caught:
            await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, timeout=0.2, poll_interval=0.05, on_timeout="reactivate"
            )
    assert "set ACTIVE again" in str(caught.value)
    assert len(caught.value.remaining_tasks) == 1
    assert status_of(env, arn) == "ACTIVE"
    assert env.calls("UpdateContainerInstancesState") == 2
    assert env.calls("DeregisterContainerInstance") == 0
    assert events(logs, "ecs_safe.drain.reactivated")


async def test_timeout_reactivate_that_fails_says_it_is_still_draining(env: LocalEcs) -> None:
    arn = one_instance(env)
    env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:

        async def block_reactivation(event: Mapping[str, Any]) -> None:
            # After the DRAINING call: the next UpdateContainerInstancesState is refused.
            env.inject_fault("UpdateContainerInstancesState", code="AccessDeniedException")

        with pytest.raises(DrainTimeoutError) as caught:
            await ecs.drain_and_deregister(
                arn,
                cluster=CLUSTER,
                timeout=0.2,
                poll_interval=0.05,
                on_timeout="reactivate",
                progress=block_reactivation,
            )
    assert "still DRAINING" in str(caught.value)
    assert isinstance(caught.value.__cause__, EcsApiError)
    assert status_of(env, arn) == "DRAINING"


async def test_timeout_force_deregisters_with_force(env: LocalEcs) -> None:
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:
        result = await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, timeout=0.2, poll_interval=0.05, on_timeout="force"
        )
    assert result.forced is True
    assert [t.task_arn for t in result.tasks] == [task]
    assert status_of(env, arn) is None


async def test_timeout_force_is_still_subject_to_the_policy(env: LocalEcs) -> None:
    arn = one_instance(env)
    env.start_standalone_task(CLUSTER, arn)
    policy = default_policy().with_rules(ProtectStandaloneTasks())
    async with client(env, policy=policy) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.drain_and_deregister(
                arn,
                cluster=CLUSTER,
                timeout=0.2,
                poll_interval=0.05,
                on_timeout="force",
                standalone_tasks="wait",
            )
    assert [v.rule for v in caught.value.decision.violations] == ["protect-standalone-tasks"]
    assert "left DRAINING" in "\n".join(caught.value.__notes__)
    assert status_of(env, arn) == "DRAINING"
    assert env.calls("DeregisterContainerInstance") == 0


# ----------------------------------------------------------------------------- standalone tasks


async def test_standalone_refuse_names_every_blocker_before_draining(env: LocalEcs) -> None:
    arn = one_instance(env)
    standalone = env.start_standalone_task(CLUSTER, arn, count=2)
    env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    error = caught.value
    [violation] = error.decision.violations
    assert violation.rule == STANDALONE_TASKS_RULE
    for task in standalone:
        assert task in violation.message
    assert "standalone_tasks='stop'" in violation.message
    assert len(error.tasks) == 3
    assert error.container_instance is not None
    assert error.container_instance.status == "ACTIVE"
    assert mutating_calls(env) == 0
    assert status_of(env, arn) == "ACTIVE"


async def test_standalone_wait_waits_for_them(env: LocalEcs) -> None:
    arn = one_instance(env)
    [task] = env.start_standalone_task(CLUSTER, arn)
    scheduler = after_looks(1, lambda: env.stop_task(CLUSTER, task))
    async with client(env) as ecs:
        result = await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, standalone_tasks="wait", progress=scheduler, **FAST
        )
    assert scheduler.acted
    assert result.forced is False
    assert env.calls("StopTask") == 0


async def test_standalone_stop_stops_each_once(env: LocalEcs) -> None:
    arn = one_instance(env)
    standalone = env.start_standalone_task(CLUSTER, arn, count=2)
    [service_task] = env.start_service_task(CLUSTER, arn, "web")
    scheduler = after_looks(1, lambda: env.stop_task(CLUSTER, service_task))
    async with client(env) as ecs:
        with capture_logs() as logs:
            result = await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, standalone_tasks="stop", progress=scheduler, **FAST
            )
    assert result.forced is False
    assert env.calls("StopTask") == 2
    assert {e["task_arn"] for e in events(logs, "ecs_safe.drain.task_stopped")} == set(standalone)
    stopped = env_ecs(env).describe_tasks(cluster=CLUSTER, tasks=standalone)["tasks"]
    assert {t["lastStatus"] for t in stopped} == {"STOPPED"}
    assert all("ecs-safe: draining" in t["stoppedReason"] for t in stopped)


# ------------------------------------------------------------------------ the pre-flight's list
# A real drain's pre-flight lists only desired-RUNNING tasks (one ListTasks fewer): a task
# already told to stop leaves by itself. Each test shows the unsafe case is still caught.


async def test_a_stopping_task_unseen_by_the_pre_flight_is_waited_for(env: LocalEcs) -> None:
    """Counters at zero, a task STOPPING: the pre-flight skips it, the wait's list sees it."""
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    env.set_task_status(CLUSTER, task, "STOPPING")
    env.reset_calls()
    scheduler = after_looks(2, lambda: env.set_task_status(CLUSTER, task, "STOPPED"))
    async with client(env) as ecs:
        with capture_logs() as logs:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, progress=scheduler, **FAST)
    assert scheduler.acted  # deregistered only after the task was STOPPED
    looks = events(logs, "ecs_safe.drain.progress")
    assert [e["remaining_task_arns"] for e in looks[:2]] == [[task], [task]]
    assert env.call_log[:3] == ["DescribeContainerInstances", "ListTasks", "PutAttributes"]


async def test_a_stopping_standalone_task_does_not_refuse_and_is_waited_for(
    env: LocalEcs,
) -> None:
    """Told to stop already, it ends by itself: nothing for "refuse" to protect; still waited."""
    arn = one_instance(env)
    [task] = env.start_standalone_task(CLUSTER, arn)
    env.set_task_status(CLUSTER, task, "STOPPING")
    scheduler = after_looks(2, lambda: env.set_task_status(CLUSTER, task, "STOPPED"))
    async with client(env) as ecs:
        plan = await ecs.deregister_many([arn], cluster=CLUSTER, drain=True, dry_run=True)
        [planned] = plan.outcomes
        # The plan decides as the real run (no refusal) and still names the stopping task.
        assert planned.result is not None
        assert [t.task_arn for t in planned.result.tasks] == [task]
        result = await ecs.drain_and_deregister(arn, cluster=CLUSTER, progress=scheduler, **FAST)
    assert scheduler.acted
    assert result.forced is False
    assert env.calls("StopTask") == 0


async def test_a_running_standalone_task_is_still_refused_before_draining(env: LocalEcs) -> None:
    arn = one_instance(env)
    [running] = env.start_standalone_task(CLUSTER, arn)
    [stopping] = env.start_standalone_task(CLUSTER, arn, family="other")
    env.set_task_status(CLUSTER, stopping, "STOPPING")
    async with client(env) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    [violation] = caught.value.decision.violations
    assert violation.rule == STANDALONE_TASKS_RULE
    assert running in violation.message
    assert stopping not in violation.message
    assert mutating_calls(env) == 0


async def test_a_task_placed_during_the_drain_is_caught_by_the_confirming_list(
    env: LocalEcs,
) -> None:
    """A task started on the DRAINING instance after the pre-flight keeps it registered."""
    arn = one_instance(env)
    [old] = env.start_service_task(CLUSTER, arn, "web")
    placed: list[str] = []

    def place_then_stop() -> None:
        placed.extend(env.start_standalone_task(CLUSTER, arn))
        env.set_task_status(CLUSTER, placed[0], "DEACTIVATING")  # in no counter
        env.stop_task(CLUSTER, old)

    stop_new = after_looks(3, lambda: env.set_task_status(CLUSTER, placed[0], "STOPPED"))
    seen: list[Mapping[str, Any]] = []
    first = after_looks(1, place_then_stop, seen)

    def progress(event: Mapping[str, Any]) -> None:
        first(event)
        if first.acted:
            stop_new(event)

    async with client(env) as ecs:
        await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, standalone_tasks="wait", progress=progress, **FAST
        )
    assert stop_new.acted  # not deregistered while the new task was DEACTIVATING
    assert any(e["remaining_task_arns"] == placed for e in seen)


# ----------------------------------------------------------------------------- policy pre-check


async def test_policy_refusal_comes_before_draining(env: LocalEcs) -> None:
    """The default rules refuse busy instances; only what would refuse once drained counts."""
    arn = one_instance(env)
    env.start_service_task(CLUSTER, arn, "web")
    policy = default_policy().with_rules(ClusterAllowlist(["staging"]))
    async with client(env, policy=policy) as ecs:
        with pytest.raises(PolicyViolationError) as caught:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    assert [v.rule for v in caught.value.decision.violations] == ["cluster-allowlist"]
    # The error carries the real snapshot, not the projection it was judged on.
    assert caught.value.container_instance is not None
    assert caught.value.container_instance.running_tasks_count == 1
    assert mutating_calls(env) == 0


class NoDeregistrationOnFridays:
    name = "not-today"

    def check(self, context: PolicyContext) -> Violation | None:
        return Violation(self.name, "change freeze")


async def test_a_users_rule_and_standalone_tasks_are_reported_together(env: LocalEcs) -> None:
    arn = one_instance(env)
    env.start_standalone_task(CLUSTER, arn)
    policy = default_policy().with_rules(NoDeregistrationOnFridays())
    async with client(env, policy=policy) as ecs:
        with capture_logs() as logs, pytest.raises(PolicyViolationError) as caught:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    rules = [v.rule for v in caught.value.decision.violations]
    assert rules == ["not-today", STANDALONE_TASKS_RULE]
    assert mutating_calls(env) == 0
    [refused] = events(logs, "ecs_safe.deregister.refused")
    assert len(refused["violations"]) == 2


# ----------------------------------------------------------------------------- instance states


async def test_an_instance_already_draining_is_carried_on_with(env: LocalEcs) -> None:
    arn = one_instance(env)
    async with client(env) as ecs:
        await ecs.drain([arn], cluster=CLUSTER)
        env.reset_calls()
        with capture_logs() as logs:
            result = await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    assert result.forced is False
    assert env.calls("UpdateContainerInstancesState") == 0
    [started] = events(logs, "ecs_safe.drain.started")
    assert started["already_draining"] is True


async def test_an_unknown_instance_fails_before_any_change(env: LocalEcs) -> None:
    one_instance(env)
    async with client(env) as ecs:
        with pytest.raises(ContainerInstanceNotFoundError):
            await ecs.drain_and_deregister(
                "0123456789abcdef0123456789abcdef", cluster=CLUSTER, **FAST
            )
    assert mutating_calls(env) == 0


async def test_an_inactive_instance_is_reported_as_already_deregistered(
    env: LocalEcs,
) -> None:
    arn = one_instance(env)
    ecs_backend(env).container_instances[CLUSTER][arn.rsplit("/", 1)[-1]].status = "INACTIVE"
    async with client(env) as ecs:
        with pytest.raises(ContainerInstanceNotFoundError, match="already been deregistered"):
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    assert mutating_calls(env) == 0


@pytest.mark.parametrize(
    ("act", "error", "says", "left"),
    [
        ("deregister", ContainerInstanceNotFoundError, "deregistered by someone else", None),
        ("reactivate", ClientException, "is ACTIVE again", "ACTIVE"),
    ],
)
async def test_another_tool_acting_mid_drain_is_reported(
    env: LocalEcs, act: str, error: type[Exception], says: str, left: str | None
) -> None:
    arn = one_instance(env)
    env.start_service_task(CLUSTER, arn, "web")
    other = env_ecs(env)
    actions = {
        "deregister": lambda: other.deregister_container_instance(
            cluster=CLUSTER, containerInstance=arn, force=True
        ),
        "reactivate": lambda: other.update_container_instances_state(
            cluster=CLUSTER, containerInstances=[arn], status="ACTIVE"
        ),
    }
    async with client(env) as ecs:
        with pytest.raises(error, match=says) as caught:
            await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, progress=after_looks(1, actions[act]), **FAST
            )
    if act == "reactivate":
        assert getattr(caught.value, "code", None) == "DrainInterrupted"
    assert status_of(env, arn) == left
    # ecs-safe itself deregistered nothing; only the other tool may have.
    assert env.calls("DeregisterContainerInstance") == (act == "deregister")


async def test_two_drains_of_the_same_instance_at_once(env: LocalEcs) -> None:
    """Two drainers race (two operators, or a run started twice): nothing is forced, the
    instance goes once, and each drainer ends with a typed answer."""
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    scheduler = after_looks(1, lambda: env.stop_task(CLUSTER, task))
    with instant_retries():
        async with client(env) as first, client(env) as second:
            results = await asyncio.gather(
                first.drain_and_deregister(arn, cluster=CLUSTER, progress=scheduler, **FAST),
                second.drain_and_deregister(arn, cluster=CLUSTER, **FAST),
                return_exceptions=True,
            )
    assert all(isinstance(r, DeregistrationResult | EcsSafeError) for r in results), results
    done = [r for r in results if isinstance(r, DeregistrationResult)]
    # One deregistration is ECS's answer; the other drainer finds the instance gone (its own
    # call refused or verified by a describe), never a second, forced attempt.
    assert [r.verified for r in done].count(False) == 1
    assert not any(r.forced for r in done)
    assert status_of(env, arn) is None
    assert env.calls("DeregisterContainerInstance") <= 2


# ----------------------------------------------------------------------------- failures


async def test_an_api_error_mid_drain_leaves_it_draining_and_says_so(env: LocalEcs) -> None:
    arn = one_instance(env)
    env.start_service_task(CLUSTER, arn, "web")

    def refuse_next_describe(event: Mapping[str, Any]) -> None:
        env.inject_fault("DescribeContainerInstances", code="AccessDeniedException")

    async with client(env) as ecs:
        with capture_logs() as logs, pytest.raises(EcsApiError) as caught:
            await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, progress=refuse_next_describe, **FAST
            )
    assert caught.value.code == "AccessDeniedException"
    assert "left DRAINING" in "\n".join(caught.value.__notes__)
    [failed] = events(logs, "ecs_safe.drain.failed")
    assert failed["left_draining"] is True
    assert status_of(env, arn) == "DRAINING"


async def test_retryable_errors_mid_drain_are_ridden_out(env: LocalEcs) -> None:
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    env.inject_fault("DescribeTasks", code="ServerException", http_status=500, times=2)
    env.inject_fault("ListTasks", code="ThrottlingException", times=2)
    scheduler = after_looks(1, lambda: env.stop_task(CLUSTER, task))
    with instant_retries():
        async with client(env) as ecs:
            result = await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, progress=scheduler, **FAST
            )
    assert result.forced is False
    assert env.pending_faults() == 0


async def test_a_failing_progress_callback_does_not_break_the_drain(env: LocalEcs) -> None:
    arn = one_instance(env)
    [task] = env.start_service_task(CLUSTER, arn, "web")

    def broken(event: Mapping[str, Any]) -> None:
        env.stop_task(CLUSTER, task)  # the scheduler moves it after the first look
        raise RuntimeError("progress bar exploded")

    async with client(env) as ecs:
        with capture_logs() as logs:
            result = await ecs.drain_and_deregister(arn, cluster=CLUSTER, progress=broken, **FAST)
    assert result.forced is False
    failures = events(logs, "ecs_safe.progress.callback_failed")
    assert failures
    assert failures[0]["error"] == "progress bar exploded"


async def test_an_async_progress_callback_is_awaited(env: LocalEcs) -> None:
    arn = one_instance(env)
    seen: list[int] = []

    async def record(event: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(event["remaining_tasks"])

    async with client(env) as ecs:
        await ecs.drain_and_deregister(arn, cluster=CLUSTER, progress=record, **FAST)
    assert seen == [0]


async def test_cancellation_leaves_it_draining(env: LocalEcs) -> None:
    arn = one_instance(env)
    env.start_service_task(CLUSTER, arn, "web")
    looked = asyncio.Event()
    async with client(env) as ecs:
        with capture_logs() as logs:
            job = asyncio.create_task(
                ecs.drain_and_deregister(
                    arn, cluster=CLUSTER, progress=lambda _e: looked.set(), **FAST
                )
            )
            await looked.wait()  # cancelled mid-wait, once a look has been taken
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
    [cancelled] = events(logs, "ecs_safe.drain.cancelled")
    assert cancelled["left_draining"] is True
    assert status_of(env, arn) == "DRAINING"
    assert env.calls("DeregisterContainerInstance") == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"timeout": 0},
        {"timeout": -1.0},
        {"timeout": float("inf")},
        {"timeout": "60"},
        {"poll_interval": 0},
        {"poll_interval": True},
        {"on_timeout": "ignore"},
        {"on_timeout": None},
        {"standalone_tasks": "kill"},
        {"progress": "print"},
        {"cluster": ""},
        {"container_instance": "i-0123456789abcdef"},
        {"container_instance": "arn:aws:ecs:us-east-1:123456789012:container-instance/other/0a"},
    ],
)
async def test_every_argument_is_validated_before_any_call(
    env: LocalEcs, bad: dict[str, Any]
) -> None:
    kwargs: dict[str, Any] = {"container_instance": "0a1b2c", "cluster": CLUSTER, **FAST, **bad}
    async with client(env) as ecs:
        with pytest.raises(InvalidInputError):
            await ecs.drain_and_deregister(**kwargs)
    assert env.call_log == []


def lose_every_state_response(env: LocalEcs) -> None:
    """Every UpdateContainerInstancesState attempt (5 by default) acts, then its answer is lost."""
    env.inject_fault(
        "UpdateContainerInstancesState",
        code="ServerException",
        http_status=500,
        times=5,
        after_acting=True,
    )


async def test_a_lost_draining_response_is_verified_and_the_drain_carries_on(
    env: LocalEcs,
) -> None:
    arn = one_instance(env)
    lose_every_state_response(env)
    with instant_retries():
        async with client(env) as ecs:
            with capture_logs() as logs:
                result = await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    assert result.forced is False
    assert env.calls("UpdateContainerInstancesState") == 5
    assert not events(logs, "ecs_safe.drain.failed")


async def test_a_failed_draining_call_is_one_failure_event_and_changes_nothing(
    env: LocalEcs,
) -> None:
    arn = one_instance(env)
    env.inject_fault("UpdateContainerInstancesState", code="AccessDeniedException")
    async with client(env) as ecs:
        with capture_logs() as logs, pytest.raises(EcsApiError) as caught:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    assert caught.value.code == "AccessDeniedException"
    [failed] = events(logs, "ecs_safe.drain.failed")
    assert failed["left_draining"] is False
    assert not events(logs, "ecs_safe.deregister.failed")
    assert status_of(env, arn) == "ACTIVE"


async def test_drain_reports_instances_a_lost_response_set_draining(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 3)
    lose_every_state_response(env)
    with instant_retries():
        async with client(env) as ecs:
            drained = await ecs.drain(arns, cluster=CLUSTER)
    assert [i.container_instance_arn for i in drained] == arns
    assert {i.status for i in drained} == {"DRAINING"}
