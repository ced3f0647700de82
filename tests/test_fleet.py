"""deregister_many() against the local endpoint: outcomes, batching, concurrency, dry runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest
from clock_support import BucketSpy
from drain_support import client, ecs_backend, instant_retries, later, watch
from structlog.testing import capture_logs

from ecs_safe import (
    AccessDeniedException,
    ClusterAllowlist,
    ContainerInstanceNotFoundError,
    DrainTimeoutError,
    EcsSafeError,
    InvalidInputError,
    PolicyViolationError,
    RateLimits,
    ServerException,
    default_policy,
)
from ecs_safe.local import LocalEcs

CLUSTER = "fleet"
MUTATING = ("UpdateContainerInstancesState", "DeregisterContainerInstance", "StopTask")
GHOST = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    # A spare ACTIVE instance: where ECS would start the drained service tasks (a drain
    # whose tasks have nowhere to go is refused: RoomElsewhere).
    ecs_env.register_instances(CLUSTER, 1)
    return ecs_env


def mutating_calls(env: LocalEcs) -> int:
    return sum(env.calls(op) for op in MUTATING)


async def test_250_instances_with_describes_batched_across_the_fleet(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = env.register_instances(CLUSTER, 250)
    spy = BucketSpy.install(monkeypatch)
    # ECS's own bucket sizes, so the run is paced as it would be against AWS.
    async with client(env, rate_limits=RateLimits()) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER)
    assert batch.ok
    assert [o.container_instance for o in batch.outcomes] == arns
    assert {o.status for o in batch.outcomes} == {"deregistered"}
    assert env.calls("DescribeContainerInstances") == 3  # 100 + 100 + 50
    assert env.calls("DeregisterContainerInstance") == 250
    assert len(env.call_log) == 253  # 1.012 calls per instance
    # Every call took a token of ECS's buckets (burst 100 less the jitter allowance): the 250
    # deregistrations from the modify bucket (40/s), the 3 describes from the read bucket
    # (20/s). What that costs in time is proven on a virtual clock (test_ratelimit.py).
    shapes = {(b.capacity, round(b.per_s)): spy.count(b) for b in spy.buckets()}
    assert shapes == {(96, 40): 250, (98, 20): 3}


async def test_a_real_run_describes_each_batch_while_the_one_before_is_deregistered(
    env: LocalEcs,
) -> None:
    arns = env.register_instances(CLUSTER, 130)
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, concurrency=5)
    assert {o.status for o in batch.outcomes} == {"deregistered"}
    log = env.call_log  # in the order the server received them
    describes = [i for i, op in enumerate(log) if op == "DescribeContainerInstances"]
    # 30 first, then 100: no more describes than 100 a call needs, the quickest one first.
    assert len(describes) == 2
    first_deregistration = log.index("DeregisterContainerInstance")
    assert describes[0] < first_deregistration < describes[1]
    # The second describe takes its turn for a slot behind the first batch's deregistrations:
    # it goes out only once the last of them has a slot (26 of 30 done, 5 slots).
    assert log[: describes[1]].count("DeregisterContainerInstance") >= 30 - 5 + 1
    assert log.count("DeregisterContainerInstance") == 130


async def test_a_plan_describes_100_a_call_and_nothing_more(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 130)
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, dry_run=True, concurrency=5)
    assert {o.status for o in batch.outcomes} == {"would_deregister"}
    assert env.calls("DescribeContainerInstances") == 2  # 100 + 30
    assert mutating_calls(env) == 0


async def test_concurrency_never_exceeds_the_bound(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = env.register_instances(CLUSTER, 24)
    server = watch(monkeypatch, env, "deregister_container_instance", hold=0.03)
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, concurrency=4)
    assert batch.ok
    assert len(server.spans) == 24
    assert server.max_in_flight == 4


async def test_concurrency_one_is_sequential(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = env.register_instances(CLUSTER, 5)
    server = watch(monkeypatch, env, "deregister_container_instance", hold=0.01)
    async with client(env) as ecs:
        await ecs.deregister_many(arns, cluster=CLUSTER, concurrency=1)
    assert server.max_in_flight == 1


async def test_outcomes_follow_the_input_bad_input_and_duplicates(env: LocalEcs) -> None:
    a, b = env.register_instances(CLUSTER, 2)
    a_id = a.rsplit("/", 1)[-1]
    given: list[Any] = ["not an id!", a, a_id, GHOST, None, b]
    async with client(env) as ecs:
        batch = await ecs.deregister_many(given, cluster=CLUSTER)
    statuses = [o.status for o in batch.outcomes]
    assert statuses == [
        "failed",
        "deregistered",
        "deregistered",
        "failed",
        "failed",
        "deregistered",
    ]
    assert [o.container_instance for o in batch.outcomes] == [
        "not an id!",
        a,
        a_id,
        GHOST,
        "None",
        b,
    ]
    bad, first, again, ghost, none, _ = batch.outcomes
    assert isinstance(bad.error, InvalidInputError)
    assert isinstance(none.error, InvalidInputError)
    assert isinstance(ghost.error, ContainerInstanceNotFoundError)
    assert ghost.error.container_instances == [GHOST]
    # The instance named twice was deregistered once; both positions say so.
    assert again.result is first.result
    assert env.calls("DeregisterContainerInstance") == 2
    assert not batch.ok
    assert len(batch.failed) == 3


async def test_refusals_do_not_stop_the_others(env: LocalEcs) -> None:
    busy, idle = env.register_instances(CLUSTER, 2)
    env.start_service_task(CLUSTER, busy, "web")
    async with client(env) as ecs:
        batch = await ecs.deregister_many([busy, idle], cluster=CLUSTER)
    refused, done = batch.outcomes
    assert refused.status == "refused"
    assert isinstance(refused.error, PolicyViolationError)
    assert refused.error.decision.violations[0].rule == "no-running-tasks-unless-forced"
    assert done.status == "deregistered"
    assert env.calls("DeregisterContainerInstance") == 1


async def test_force_deregisters_busy_instances(env: LocalEcs) -> None:
    busy = env.register_instances(CLUSTER, 3)
    for arn in busy:
        env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:
        batch = await ecs.deregister_many(busy, cluster=CLUSTER, force=True)
    assert batch.ok
    assert all(o.result is not None and o.result.forced for o in batch.outcomes)


async def test_an_api_failure_of_one_instance_does_not_stop_the_others(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 6)
    env.inject_fault("DeregisterContainerInstance", code="AccessDeniedException")
    async with client(env) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, concurrency=1)
    assert [o.status for o in batch.outcomes] == ["failed"] + ["deregistered"] * 5
    assert isinstance(batch.outcomes[0].error, AccessDeniedException)


async def test_an_unexpected_exception_becomes_a_typed_outcome(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    arns = env.register_instances(CLUSTER, 3)
    async with client(env) as ecs:
        # The deregistration step lives in the client's gate: patched there.
        gate = ecs._gate
        assert gate is not None
        original = gate.deregister

        async def bug_on_second(request: Any, *args: Any, **kwargs: Any) -> Any:
            if request.instance == arns[1]:
                raise KeyError("a bug")
            return await original(request, *args, **kwargs)

        monkeypatch.setattr(gate, "deregister", bug_on_second)
        batch = await ecs.deregister_many(arns, cluster=CLUSTER)
    assert [o.status for o in batch.outcomes] == ["deregistered", "failed", "deregistered"]
    error = batch.outcomes[1].error
    assert type(error) is EcsSafeError
    assert isinstance(error.__cause__, KeyError)
    assert "KeyError" in str(error)


async def test_a_failed_describe_fails_its_instances_with_the_typed_error(env: LocalEcs) -> None:
    # A pre-flight that could not be done is "failed" with the error that stopped it, not
    # "refused" (API.md): an outage says nothing about whether the instances are safe.
    arns = env.register_instances(CLUSTER, 3)
    env.inject_fault("DescribeContainerInstances", code="ServerException", times=5)
    with instant_retries():
        async with client(env) as ecs:
            batch = await ecs.deregister_many(arns, cluster=CLUSTER)
    assert {o.status for o in batch.outcomes} == {"failed"}
    assert all(isinstance(o.error, ServerException) and o.error.retryable for o in batch.outcomes)
    assert mutating_calls(env) == 0


async def test_dry_run_is_the_full_plan_without_a_mutating_call(env: LocalEcs) -> None:
    idle, busy = env.register_instances(CLUSTER, 2)
    [task] = env.start_service_task(CLUSTER, busy, "web")
    async with client(env) as ecs:
        with capture_logs() as logs:
            batch = await ecs.deregister_many([idle, busy, GHOST], cluster=CLUSTER, dry_run=True)
    would, refused, missing = batch.outcomes
    assert would.status == "would_deregister"
    assert would.result is not None
    assert would.result.dry_run
    assert would.result.tasks == []
    assert refused.status == "refused"
    assert isinstance(refused.error, PolicyViolationError)
    assert "1 running task" in str(refused.error)
    assert [t.task_arn for t in refused.error.tasks] == [task]
    assert missing.status == "failed"
    assert mutating_calls(env) == 0
    # A plan is logged as planned, not succeeded (API.md).
    assert [e["dry_run"] for e in logs if e["event"] == "ecs_safe.deregister.planned"] == [True]
    assert not [e for e in logs if e["event"] == "ecs_safe.deregister.succeeded"]


async def test_dry_run_with_force_lists_the_tasks_that_would_be_orphaned(env: LocalEcs) -> None:
    [busy] = env.register_instances(CLUSTER, 1)
    tasks = env.start_service_task(CLUSTER, busy, "web", count=2)
    async with client(env) as ecs:
        batch = await ecs.deregister_many([busy], cluster=CLUSTER, dry_run=True, force=True)
    [outcome] = batch.outcomes
    assert outcome.status == "would_deregister"
    assert outcome.result is not None
    assert sorted(t.task_arn or "" for t in outcome.result.tasks) == sorted(tasks)
    assert mutating_calls(env) == 0


async def test_drain_then_deregister_a_fleet(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 12)
    for arn in arns:
        [task] = env.start_service_task(CLUSTER, arn, "web")
        later(0.3, env.stop_task, CLUSTER, task)
    seen: list[Mapping[str, Any]] = []
    async with client(env) as ecs:
        batch = await ecs.deregister_many(
            arns, cluster=CLUSTER, drain=True, timeout=3.0, poll_interval=0.05, progress=seen.append
        )
    assert batch.ok, [str(o.error) for o in batch.outcomes if o.error]
    assert all(o.result is not None and not o.result.forced for o in batch.outcomes)
    # The first 10 (the concurrency) start together and share one DRAINING call; the other
    # two start as slots free up: together (one call) or apart (two).
    assert env.calls("UpdateContainerInstancesState") in {2, 3}
    assert env.calls("DeregisterContainerInstance") == 12
    done = [e for e in seen if e["event"] == "ecs_safe.batch.progress"]
    assert [e["done"] for e in done] == list(range(1, 13))
    assert any(e["event"] == "ecs_safe.drain.progress" for e in seen)


async def test_drain_keeps_at_most_concurrency_instances_draining(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 9)
    for arn in arns:
        [task] = env.start_service_task(CLUSTER, arn, "web")
        later(0.2 + 0.05 * arns.index(arn), env.stop_task, CLUSTER, task)
    instances = ecs_backend(env).container_instances[CLUSTER]
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            draining = sum(1 for i in list(instances.values()) if i.status == "DRAINING")
            peak = max(peak, draining)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        async with client(env) as ecs:
            batch = await ecs.deregister_many(
                arns, cluster=CLUSTER, drain=True, concurrency=3, timeout=5.0, poll_interval=0.02
            )
    finally:
        stop.set()
        sampler.join()
    assert batch.ok, [str(o.error) for o in batch.outcomes if o.error]
    assert 1 <= peak <= 3
    assert env.calls("DeregisterContainerInstance") == 9


async def test_drain_refusals_come_before_any_instance_is_drained(env: LocalEcs) -> None:
    ok, standalone = env.register_instances(CLUSTER, 2)
    env.start_standalone_task(CLUSTER, standalone)
    async with client(env) as ecs:
        batch = await ecs.deregister_many(
            [ok, standalone], cluster=CLUSTER, drain=True, timeout=2.0, poll_interval=0.05
        )
    assert [o.status for o in batch.outcomes] == ["deregistered", "refused"]
    error = batch.outcomes[1].error
    assert isinstance(error, PolicyViolationError)
    assert error.decision.violations[0].rule == "standalone-tasks"
    # Only the first instance was set DRAINING.
    assert env.calls("UpdateContainerInstancesState") == 1


async def test_drain_timeouts_fail_their_instance_only(env: LocalEcs) -> None:
    stuck, free = env.register_instances(CLUSTER, 2)
    env.start_service_task(CLUSTER, stuck, "web")
    async with client(env) as ecs:
        batch = await ecs.deregister_many(
            [stuck, free], cluster=CLUSTER, drain=True, timeout=0.2, poll_interval=0.05
        )
    assert [o.status for o in batch.outcomes] == ["failed", "deregistered"]
    assert isinstance(batch.outcomes[0].error, DrainTimeoutError)


async def test_drain_with_force_forces_what_is_left_at_the_deadline(env: LocalEcs) -> None:
    [stuck] = env.register_instances(CLUSTER, 1)
    env.start_service_task(CLUSTER, stuck, "web")
    async with client(env) as ecs:
        batch = await ecs.deregister_many(
            [stuck], cluster=CLUSTER, drain=True, force=True, timeout=0.2, poll_interval=0.05
        )
    [outcome] = batch.outcomes
    assert outcome.status == "deregistered"
    assert outcome.result is not None
    assert outcome.result.forced


async def test_drain_dry_run_plans_on_the_drained_projection(env: LocalEcs) -> None:
    busy, standalone = env.register_instances(CLUSTER, 2)
    env.start_service_task(CLUSTER, busy, "web")
    env.start_standalone_task(CLUSTER, standalone)
    async with client(env) as ecs:
        batch = await ecs.deregister_many(
            [busy, standalone], cluster=CLUSTER, drain=True, dry_run=True
        )
    would, refused = batch.outcomes
    # Busy with service tasks is fine when draining first: they move elsewhere.
    assert would.status == "would_deregister"
    assert would.result is not None
    assert [t.kind for t in would.result.tasks] == ["service"]
    assert refused.status == "refused"
    assert mutating_calls(env) == 0


async def test_a_policy_refusal_applies_to_every_instance(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 3)
    policy = default_policy().with_rules(ClusterAllowlist(["other"]))
    async with client(env, policy=policy) as ecs:
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, drain=True)
    assert {o.status for o in batch.outcomes} == {"refused"}
    assert mutating_calls(env) == 0


async def test_progress_is_reported_per_instance_and_a_broken_callback_is_harmless(
    env: LocalEcs,
) -> None:
    arns = env.register_instances(CLUSTER, 4)
    calls: list[int] = []

    async def flaky(event: Mapping[str, Any]) -> None:
        calls.append(event["done"])
        if event["done"] == 2:
            raise ValueError("oops")

    async with client(env) as ecs:
        with capture_logs() as logs:
            batch = await ecs.deregister_many([*arns, "bad id"], cluster=CLUSTER, progress=flaky)
    assert sorted(calls) == [1, 2, 3, 4, 5]
    assert len(batch.succeeded) == 4
    assert [e["total"] for e in logs if e["event"] == "ecs_safe.batch.progress"] == [5] * 5
    assert [e for e in logs if e["event"] == "ecs_safe.progress.callback_failed"]
    [summary] = [e for e in logs if e["event"] == "ecs_safe.batch.finished"]
    assert (summary["succeeded"], summary["failed"]) == (4, 1)


@pytest.mark.parametrize(
    "bad",
    [
        {"container_instances": "one-string"},
        {"container_instances": []},
        {"container_instances": 42},
        {"concurrency": 0},
        {"concurrency": 2.5},
        {"concurrency": True},
        {"force": "yes"},
        {"drain": 1},
        {"dry_run": None},
        {"progress": 3},
        {"timeout": -1},
        {"standalone_tasks": "ignore"},
        {"cluster": "no spaces"},
    ],
)
async def test_call_level_arguments_are_validated_before_any_call(
    env: LocalEcs, bad: dict[str, Any]
) -> None:
    kwargs: dict[str, Any] = {"container_instances": [GHOST], "cluster": CLUSTER, **bad}
    async with client(env) as ecs:
        with pytest.raises(InvalidInputError):
            await ecs.deregister_many(**kwargs)
    assert env.call_log == []
