"""Ownership: ecs-safe marks what it drains, rolls back only its own, and names other drainers.

Every path talks HTTP to LocalEcs. Two runs are two clients (each its own run ID); "another
tool" is a plain botocore client. Tests wait on events (a drain's progress), never on timers.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import botocore.session
import pytest
from drain_support import client
from moto.autoscaling.models import autoscaling_backends
from moto.core.models import DEFAULT_ACCOUNT_ID
from structlog.testing import capture_logs

from ecs_safe import DrainTimeoutError, PolicyViolationError
from ecs_safe._constants import OWNER_ATTRIBUTE, OWNER_RELEASED_PREFIX
from ecs_safe.local import LocalEcs
from ecs_safe.ownership import MANAGED_DRAINING_RULE, OWNERSHIP_RULE

CLUSTER = "own"
FAST: dict[str, Any] = {"timeout": 1.0, "poll_interval": 0.05}
MUTATING = ("PutAttributes", "DeleteAttributes", "UpdateContainerInstancesState")


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    return ecs_env


@functools.cache
def _boto(env: LocalEcs, service: str) -> Any:
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client(
        service, endpoint_url=env.endpoint_url, region_name=env.region_name
    )


def other_tool(env: LocalEcs) -> Any:
    """A plain botocore ECS client: an operator or another tool on the same cluster."""
    return _boto(env, "ecs")


def described(env: LocalEcs, arn: str) -> Mapping[str, Any]:
    found = other_tool(env).describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    return dict(found["containerInstances"][0])


def mark_of(env: LocalEcs, arn: str) -> str | None:
    attributes = described(env, arn).get("attributes") or []
    return next((a.get("value") for a in attributes if a["name"] == OWNER_ATTRIBUTE), None)


def mutating(env: LocalEcs) -> int:
    return sum(env.calls(op) for op in MUTATING)


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


def rules(error: BaseException) -> list[str]:
    assert isinstance(error, PolicyViolationError)
    return [v.rule for v in error.decision.violations]


def busy_instance(env: LocalEcs) -> tuple[str, str]:
    """An instance running one task of ``web`` (and a spare ACTIVE one, so the task has room)."""
    [arn, _spare] = env.register_instances(CLUSTER, 2)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    return arn, task


def set_draining(env: LocalEcs, arns: list[str]) -> None:
    other_tool(env).update_container_instances_state(
        cluster=CLUSTER, containerInstances=arns, status="DRAINING"
    )


# ----------------------------------------------------------------------------- the mark


async def test_drain_marks_before_draining_and_reactivate_removes_the_mark(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 12)  # two PutAttributes calls: 10 attributes each
    async with client(env) as ecs:
        run_id = ecs.run_id
        await ecs.drain(arns, cluster=CLUSTER)
        log = env.call_log
        assert {mark_of(env, a) for a in arns} == {run_id}
        assert env.calls("PutAttributes") == 2
        # Marked first: no instance is DRAINING before its mark is on.
        assert log.index("PutAttributes") < log.index("UpdateContainerInstancesState")
        back = await ecs.reactivate(arns, cluster=CLUSTER)
    assert {i.status for i in back} == {"ACTIVE"}
    assert {mark_of(env, a) for a in arns} == {None}
    assert env.calls("DeleteAttributes") == 2
    log = env.call_log
    # ACTIVE first, the mark after: a mark left on an ACTIVE instance means nothing.
    assert log.index("DeleteAttributes") > log.index("UpdateContainerInstancesState")


async def test_an_instance_that_cannot_be_marked_is_not_drained(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.inject_fault("PutAttributes", code="AccessDeniedException", message="no PutAttributes")
    async with client(env) as ecs:
        with pytest.raises(Exception, match="no PutAttributes") as caught:
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    assert "not marked" in "".join(getattr(caught.value, "__notes__", []))
    assert env.calls("UpdateContainerInstancesState") == 0
    assert described(env, arn)["status"] == "ACTIVE"


# ----------------------------------------------------------------------------- reactivate


async def test_reactivate_refuses_another_runs_mark_and_someone_elses_drain(
    env: LocalEcs,
) -> None:
    theirs, unmarked = env.register_instances(CLUSTER, 2)
    set_draining(env, [unmarked])
    async with client(env) as first:
        await first.drain([theirs], cluster=CLUSTER)
        owner = first.run_id
    async with client(env) as second:
        env.reset_calls()
        for arn in (theirs, unmarked):
            with pytest.raises(PolicyViolationError) as caught:
                await second.reactivate([arn], cluster=CLUSTER)
            assert rules(caught.value) == [OWNERSHIP_RULE]
            assert "take_over=True" in str(caught.value)
        assert "ecs-safe run " + owner in str(
            await _refusal(second.reactivate([theirs], cluster=CLUSTER))
        )
        assert mutating(env) == 0
        back = await second.reactivate([theirs, unmarked], cluster=CLUSTER, take_over=True)
    assert {i.status for i in back} == {"ACTIVE"}
    assert mark_of(env, theirs) is None


async def _refusal(call: Any) -> PolicyViolationError:
    with pytest.raises(PolicyViolationError) as caught:
        await call
    return caught.value


# ----------------------------------------------------------------------------- two runs


async def test_two_concurrent_runs_never_touch_each_others_instance(env: LocalEcs) -> None:
    arn, task = busy_instance(env)
    draining = asyncio.Event()

    def seen(event: Mapping[str, Any]) -> None:
        if event.get("event") == "ecs_safe.drain.progress":
            draining.set()

    async with client(env) as first, client(env) as second:
        first_run = asyncio.create_task(
            first.drain_and_deregister(
                arn,
                cluster=CLUSTER,
                timeout=120.0,
                poll_interval=0.05,
                on_timeout="reactivate",
                progress=seen,
            )
        )
        # Until the first run is draining (or has failed, which the await below then raises).
        waiting = asyncio.ensure_future(draining.wait())
        await asyncio.wait([first_run, waiting], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        assert not first_run.done(), first_run.result()
        before = mutating(env), env.calls("DeregisterContainerInstance")
        # The second run meets the first run's mark: refused before anything changes ...
        refused = await _refusal(second.drain_and_deregister(arn, cluster=CLUSTER, **FAST))
        assert rules(refused) == [OWNERSHIP_RULE]
        many = await second.deregister_many([arn], cluster=CLUSTER, drain=True, **FAST)
        assert [o.status for o in many.outcomes] == ["refused"]
        # ... and cannot roll it back either.
        await _refusal(second.reactivate([arn], cluster=CLUSTER))
        assert (mutating(env), env.calls("DeregisterContainerInstance")) == before
        assert described(env, arn)["status"] == "DRAINING"
        env.stop_task(CLUSTER, task)  # the scheduler moves the task; the first run finishes
        result = await first_run
    assert result.forced is False
    assert env.calls("DeregisterContainerInstance") == 1


async def test_a_run_left_draining_is_released_and_the_next_run_carries_on(
    env: LocalEcs,
) -> None:
    arn, task = busy_instance(env)
    async with client(env) as first:
        with pytest.raises(DrainTimeoutError):
            await first.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
        released = OWNER_RELEASED_PREFIX + first.run_id
    assert mark_of(env, arn) == released
    env.stop_task(CLUSTER, task)
    async with client(env) as second:
        env.reset_calls()
        result = await second.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
        # Released: the second run marks it its own (no UpdateContainerInstancesState: it is
        # DRAINING already) and deregisters it.
        assert env.calls("PutAttributes") == 1
    assert result.forced is False
    assert env.calls("DeregisterContainerInstance") == 1


async def test_on_timeout_reactivate_leaves_someone_elses_drain_draining(env: LocalEcs) -> None:
    arn, _task = busy_instance(env)
    set_draining(env, [arn])
    async with client(env) as ecs:
        with (
            capture_logs() as logs,
            pytest.raises(DrainTimeoutError, match="not set ACTIVE again") as caught,
        ):
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, on_timeout="reactivate", **FAST)
    assert "someone else" in str(caught.value)
    assert described(env, arn)["status"] == "DRAINING"
    assert mark_of(env, arn) is None
    assert env.calls("PutAttributes") == 0
    [other] = events(logs, "ecs_safe.drain.other_drainer")
    assert other["drainer"] == "someone-else"


async def test_on_timeout_reactivate_rolls_back_its_own(env: LocalEcs) -> None:
    arn, _task = busy_instance(env)
    async with client(env) as ecs:
        with pytest.raises(DrainTimeoutError, match="set ACTIVE again"):
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, on_timeout="reactivate", **FAST)
    assert described(env, arn)["status"] == "ACTIVE"
    assert mark_of(env, arn) is None


# ----------------------------------------------------------------------------- other drainers


def _auto_scaling(env: LocalEcs, *, managed_draining: bool) -> tuple[str, list[str]]:
    """A group of 3 registered in the cluster, with a capacity provider; returns (group, arns)."""
    group = env.create_auto_scaling_group("fleet", CLUSTER, 3)
    autoscaling = _boto(env, "autoscaling")
    [described_group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["fleet"])[
        "AutoScalingGroups"
    ]
    ecs = other_tool(env)
    ecs.create_capacity_provider(
        name="fleet-cp",
        autoScalingGroupProvider={
            "autoScalingGroupArn": described_group["AutoScalingGroupARN"],
            "managedDraining": "ENABLED" if managed_draining else "DISABLED",
        },
    )
    ecs.put_cluster_capacity_providers(
        cluster=CLUSTER, capacityProviders=["fleet-cp"], defaultCapacityProviderStrategy=[]
    )
    return group.name, list(group.container_instance_arns)


def _lifecycle_state(env: LocalEcs, group: str, index: int, state: str) -> None:
    # moto's DescribeAutoScalingInstances reports InService whatever LocalEcs's lifecycle
    # model holds: set the member's state in moto's backend, as Auto Scaling would.
    backend = autoscaling_backends[DEFAULT_ACCOUNT_ID][env.region_name]
    backend.autoscaling_groups[group].instance_states[index].lifecycle_state = state


async def test_managed_draining_is_named_in_the_plan_and_refused(env: LocalEcs) -> None:
    group, arns = _auto_scaling(env, managed_draining=True)
    # The group scales in: Auto Scaling holds the member it removes in Terminating:Wait (ECS's
    # managed-draining hook), and ECS sets it DRAINING.
    _lifecycle_state(env, group, 0, "Terminating:Wait")
    set_draining(env, [arns[0]])
    async with client(env) as ecs:
        plan = await ecs.deregister_many(arns, cluster=CLUSTER, drain=True, dry_run=True)
        refused = await _refusal(ecs.drain_and_deregister(arns[0], cluster=CLUSTER, **FAST))
    assert [o.status for o in plan.outcomes] == ["refused", "would_deregister", "would_deregister"]
    error = plan.outcomes[0].error
    assert error is not None
    assert rules(error) == [MANAGED_DRAINING_RULE]
    assert "ECS managed draining (capacity provider fleet-cp" in str(error)
    assert rules(refused) == [MANAGED_DRAINING_RULE]
    assert mark_of(env, arns[0]) is None


async def test_terminating_wait_is_named_in_the_plan(env: LocalEcs) -> None:
    group, arns = _auto_scaling(env, managed_draining=False)
    _lifecycle_state(env, group, 1, "Terminating:Wait")
    async with client(env) as ecs:
        plan = await ecs.deregister_many(arns, cluster=CLUSTER, drain=True, dry_run=True)
    assert [o.status for o in plan.outcomes] == ["would_deregister"] * 3
    notes = [o.result.notes if o.result else [] for o in plan.outcomes]
    assert notes[0] == notes[2] == []
    [note] = notes[1]
    assert "Terminating:Wait in Auto Scaling group fleet" in note


async def test_spot_draining_is_the_agents_not_someone_elses(env: LocalEcs) -> None:
    ec2 = _boto(env, "ec2")
    reservation = ec2.run_instances(
        ImageId="ami-1e749f67",
        MinCount=1,
        MaxCount=1,
        InstanceMarketOptions={"MarketType": "spot"},
    )
    ec2_id = reservation["Instances"][0]["InstanceId"]
    arn = other_tool(env).register_container_instance(
        cluster=CLUSTER, instanceIdentityDocument=json.dumps({"instanceId": ec2_id})
    )["containerInstance"]["containerInstanceArn"]
    set_draining(env, [arn])  # the agent, on the interruption notice
    async with client(env) as ecs:
        plan = await ecs.deregister_many([arn], cluster=CLUSTER, drain=True, dry_run=True)
        result = await ecs.drain_and_deregister(arn, cluster=CLUSTER, **FAST)
    [outcome] = plan.outcomes
    assert outcome.status == "would_deregister"
    assert outcome.result is not None
    [note] = outcome.result.notes
    assert "drained by the ECS agent on a Spot interruption notice" in note
    assert "someone else" not in note
    assert result.notes == [note]
