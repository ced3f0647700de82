"""The terminate lifecycle hook's handler against LocalEcs, over HTTP, on a test-driven clock.

Each test scales a group in (TerminateInstanceInAutoScalingGroup) so that LocalEcs holds the
instance in ``Terminating:Wait`` and puts the lifecycle event on SQS; the test reads the event
from the queue and hands it to `EcsSafeClient.handle_lifecycle_action` with a `StepClock` on
LocalEcs's lifecycle clock. Time moves only when the test moves it, a heartbeat interval at a
time, and the test waits for the handler's loops to be asleep again, never for a duration: the
only real waiting is the drain poller's own rounds. What is asserted is LocalEcs's record:
the heartbeats it counted, how the action ended, and that the instance was terminated only
after it had been deregistered empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config
from drain_support import client
from lifecycle_support import StepClock
from structlog.testing import capture_logs

from ecs_safe import (
    EcsSafeClient,
    InvalidInputError,
    LifecycleActionResult,
    NoticeError,
    PolicyViolationError,
    SyncEcsSafeClient,
)
from ecs_safe.local import LocalEcs
from ecs_safe.notices import LifecycleActionNotice, parse_notice

CLUSTER = "hooked"
GROUP = "hooked-asg"
HOOK = "drain-before-terminate"
HEARTBEAT_TIMEOUT = 60  # seconds of the hook; a heartbeat every 20
STEP = HEARTBEAT_TIMEOUT / 3


@pytest.fixture
def aws(ecs_env: LocalEcs) -> Iterator[dict[str, Any]]:
    """boto3 clients (the operator's side: group, hook, queue) on LocalEcs."""
    session = boto3.session.Session(
        aws_access_key_id=ecs_env.access_key_id,
        aws_secret_access_key=ecs_env.secret_access_key,
        region_name=ecs_env.region_name,
    )
    config = Config(retries={"total_max_attempts": 1})
    made = {
        name: session.client(name, endpoint_url=ecs_env.endpoint_url, config=config)
        for name in ("autoscaling", "sqs", "ecs", "ec2")
    }
    yield made
    for each in made.values():
        each.close()


def hooked_group(ecs_env: LocalEcs, aws: dict[str, Any], count: int = 2) -> tuple[list[str], str]:
    """A group of ``count`` registered instances with a terminate hook; (EC2 IDs, queue URL)."""
    ecs_env.create_cluster(CLUSTER)
    group = ecs_env.create_auto_scaling_group(GROUP, CLUSTER, count)
    aws["autoscaling"].put_lifecycle_hook(
        LifecycleHookName=HOOK,
        AutoScalingGroupName=GROUP,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=HEARTBEAT_TIMEOUT,
        DefaultResult="ABANDON",
    )
    queue = ecs_env.events.create_queue("lifecycle-actions")
    return list(group.instance_ids), queue


def scale_in(aws: dict[str, Any], queue: str, instance_id: str) -> LifecycleActionNotice:
    """Let the group go of ``instance_id``; the notice the hook's event brings (from SQS)."""
    aws["autoscaling"].terminate_instance_in_auto_scaling_group(
        InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
    )
    messages = aws["sqs"].receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    notices = [parse_notice(m["Body"]) for m in messages]
    [notice] = [n for n in notices if n.instance_id == instance_id]
    assert isinstance(notice, LifecycleActionNotice)
    return notice


def lifecycle_state(aws: dict[str, Any], instance_id: str) -> str | None:
    found = aws["autoscaling"].describe_auto_scaling_instances(InstanceIds=[instance_id])
    states = [i["LifecycleState"] for i in found["AutoScalingInstances"]]
    return states[0] if states else None


def ec2_state(aws: dict[str, Any], instance_id: str) -> str:
    reservations = aws["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def step_clock(ecs_env: LocalEcs) -> StepClock:
    return StepClock(ecs_env.lifecycle_actions.now, ecs_env.lifecycle_actions.advance)


async def beat(
    clock: StepClock, task: asyncio.Task[LifecycleActionResult], steps: int, asleep: int
) -> None:
    """Move ``steps`` heartbeat intervals on, waiting each time for ``asleep`` sleeps again."""
    for _ in range(steps):
        await clock.advance(STEP, then_asleep=asleep, unless=task)
        assert not task.done(), task.result()


async def first(waiting: Any, task: asyncio.Task[LifecycleActionResult]) -> None:
    """Await ``waiting``, unless the handler ends first (then its result tells why)."""
    waiter = asyncio.ensure_future(waiting)
    await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    assert not task.done(), task.result()


def host_of_service_task(aws: dict[str, Any], service: str) -> str:
    ecs = aws["ecs"]
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=service)["taskArns"]
    [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
    return str(task["containerInstanceArn"])


def ec2_of(aws: dict[str, Any], container_instance_arn: str) -> str:
    described = aws["ecs"].describe_container_instances(
        cluster=CLUSTER, containerInstances=[container_instance_arn]
    )
    return str(described["containerInstances"][0]["ec2InstanceId"])


async def test_a_drain_three_heartbeat_timeouts_long_ends_in_continue_after_deregistration(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    """The issue's first "done when": a scale-in whose drain takes 3x the hook's heartbeat
    timeout completes with CONTINUE, the instance terminated only once deregistered empty."""
    _, queue = hooked_group(ecs_env, aws)
    ecs_env.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
    ecs_env.scheduler.run_until_settled()
    host = host_of_service_task(aws, "web")
    leaving = ec2_of(aws, host)
    notice = scale_in(aws, queue, leaving)
    assert lifecycle_state(aws, leaving) == "Terminating:Wait"
    clock = step_clock(ecs_env)
    draining = asyncio.Event()
    async with client(ecs_env) as ecs:
        with capture_logs() as logs:
            task = asyncio.create_task(
                ecs.handle_lifecycle_action(
                    notice, progress=lambda _event: draining.set(), clock=clock
                )
            )
            await clock.asleep(1, unless=task)  # the heartbeat loop waits for its first turn
            await beat(clock, task, 9, asleep=1)  # 9 x 20 s = 3 heartbeat timeouts
            action = ecs_env.lifecycle_actions.action(notice.token or "")
            assert action.state == "Terminating:Wait"
            assert action.heartbeats == 9
            await first(draining.wait(), task)
            # Only now does the service scheduler move the task off the DRAINING instance.
            await ecs_env.scheduler.settle()
            result = await task
    assert result.outcome == "deregistered"
    assert result.completed == "CONTINUE"
    assert result.deregistered
    assert result.heartbeats == 9
    assert result.deregistration is not None
    assert not result.deregistration.forced
    assert result.deregistration.tasks == []
    assert result.container_instance_arn == host
    assert result.alert is None
    action = ecs_env.lifecycle_actions.action(notice.token or "")
    assert (action.state, action.result, action.timed_out) == ("Terminated", "CONTINUE", False)
    assert action.heartbeats == 9
    assert (ecs_env.lifecycle_actions.now() - action.started_at).total_seconds() >= 3 * 60
    assert ec2_state(aws, leaving) in ("shutting-down", "terminated")
    # Deregistered (unforced, nothing left on it) before the completion that terminated it,
    # and the service's task was stopped by its scheduler, not lost with the host.
    names = [entry["event"] for entry in logs]
    assert names.index("ecs_safe.deregister.succeeded") < names.index(
        "ecs_safe.lifecycle.completed"
    )
    stops = [e for e in ecs_env.scheduler.events_for("web") if e.kind == "stopped"]
    assert [(e.by, e.container_instance_arn) for e in stops] == [("scheduler", host)]


async def test_a_refused_drain_is_held_with_heartbeats_and_an_alert_until_it_can_go(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    """The issue's second "done when": a drain refused for a standalone task never lets the
    hook time out silently: an alert, heartbeats, retries; once the task is gone, CONTINUE."""
    ids, queue = hooked_group(ecs_env, aws)
    [batch] = ecs_env.start_standalone_task(CLUSTER, arn_of(aws, ids[0]))
    notice = scale_in(aws, queue, ids[0])
    clock = step_clock(ecs_env)
    async with client(ecs_env) as ecs:
        with capture_logs() as logs:
            task = asyncio.create_task(ecs.handle_lifecycle_action(notice, clock=clock))
            await clock.asleep(2, unless=task)  # heartbeats + the hold's retry loop
            alerts = [e for e in logs if e["event"] == "ecs_safe.lifecycle.alert"]
            assert len(alerts) == 1
            assert "standalone" in alerts[0]["error"]
            await beat(clock, task, 12, asleep=2)  # 4 heartbeat timeouts, still waiting
            action = ecs_env.lifecycle_actions.action(notice.token or "")
            assert action.state == "Terminating:Wait"
            assert action.heartbeats == 12
            ecs_env.stop_task(CLUSTER, batch)  # the operator deals with the batch job
            await clock.advance(STEP, then_asleep=99, unless=task)
            result = await task
    assert result.outcome == "deregistered"
    assert result.held
    assert result.alert is not None
    assert "standalone" in result.alert
    assert isinstance(result.error, PolicyViolationError)
    assert result.completed == "CONTINUE"
    assert result.attempts == 14  # the first, 12 refused retries, the one that went through
    action = ecs_env.lifecycle_actions.action(notice.token or "")
    assert (action.result, action.timed_out) == ("CONTINUE", False)
    # The 13th heartbeat races the completion that ends the heartbeats; never fewer than 12.
    assert 12 <= result.heartbeats <= action.heartbeats <= 13


def arn_of(aws: dict[str, Any], instance_id: str) -> str:
    arns = aws["ecs"].list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    described = aws["ecs"].describe_container_instances(cluster=CLUSTER, containerInstances=arns)
    [found] = [
        i["containerInstanceArn"]
        for i in described["containerInstances"]
        if i["ec2InstanceId"] == instance_id
    ]
    return str(found)


async def test_a_hold_that_expires_ends_in_abandon_never_in_a_timeout(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    ids, queue = hooked_group(ecs_env, aws)
    ecs_env.start_standalone_task(CLUSTER, arn_of(aws, ids[0]))
    notice = scale_in(aws, queue, ids[0])
    clock = step_clock(ecs_env)
    async with client(ecs_env) as ecs:
        with capture_logs() as logs:
            task = asyncio.create_task(
                ecs.handle_lifecycle_action(notice, clock=clock, hold_timeout=2 * STEP)
            )
            await clock.asleep(2, unless=task)
            await clock.advance(STEP, then_asleep=2, unless=task)
            await clock.advance(STEP, then_asleep=99, unless=task)
            result = await task
    assert result.outcome == "hold_expired"
    assert result.completed == "ABANDON"
    assert result.held
    assert result.alert is not None
    assert not result.deregistered
    action = ecs_env.lifecycle_actions.action(notice.token or "")
    assert (action.result, action.timed_out) == ("ABANDON", False)
    said = [e["event"] for e in logs if e["event"].startswith("ecs_safe.lifecycle.")]
    assert [e for e in said if e != "ecs_safe.lifecycle.heartbeat"] == [
        "ecs_safe.lifecycle.alert",
        "ecs_safe.lifecycle.hold_expired",
        "ecs_safe.lifecycle.completed",
    ]


async def test_on_failure_continue_sends_continue_at_once_and_says_so(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    ids, queue = hooked_group(ecs_env, aws)
    ecs_env.start_standalone_task(CLUSTER, arn_of(aws, ids[0]))
    notice = scale_in(aws, queue, ids[0])
    async with client(ecs_env) as ecs:
        result = await ecs.handle_lifecycle_action(
            notice, on_failure="continue", clock=step_clock(ecs_env)
        )
    assert result.outcome == "continued"
    assert result.completed == "CONTINUE"
    assert not result.held
    assert result.alert is not None
    assert "CONTINUE anyway" in result.alert
    assert ecs_env.lifecycle_actions.action(notice.token or "").result == "CONTINUE"
    assert ec2_state(aws, ids[0]) in ("shutting-down", "terminated")


async def test_an_instance_in_no_cluster_is_continued_at_once(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    ids, queue = hooked_group(ecs_env, aws)
    arn = arn_of(aws, ids[1])
    aws["ecs"].deregister_container_instance(cluster=CLUSTER, containerInstance=arn)
    notice = scale_in(aws, queue, ids[1])
    async with client(ecs_env) as ecs:
        result = await ecs.handle_lifecycle_action(notice, clock=step_clock(ecs_env))
    assert result.outcome == "not_registered"
    assert result.completed == "CONTINUE"
    assert result.heartbeats == 0
    assert any("not registered" in note for note in result.notes)
    assert ecs_env.lifecycle_actions.action(notice.token or "").result == "CONTINUE"


async def test_a_redelivered_notice_does_nothing_twice(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    ids, queue = hooked_group(ecs_env, aws)
    notice = scale_in(aws, queue, ids[1])
    async with client(ecs_env) as ecs:
        first = await ecs.handle_lifecycle_action(notice, clock=step_clock(ecs_env))
        ecs_env.reset_calls()
        again = await ecs.handle_lifecycle_action(notice, clock=step_clock(ecs_env))
    assert first.outcome == "deregistered"
    assert again.outcome == "action_ended"
    assert again.completed is None
    assert ecs_env.calls("DeregisterContainerInstance") == 0


def test_the_sync_client_handles_an_sns_wrapped_notice(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    ids, queue = hooked_group_sns(ecs_env, aws)
    aws["autoscaling"].terminate_instance_in_auto_scaling_group(
        InstanceId=ids[1], ShouldDecrementDesiredCapacity=True
    )
    [message] = aws["sqs"].receive_message(QueueUrl=queue)["Messages"]
    with SyncEcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        result = ecs.handle_lifecycle_action(message["Body"], cluster=CLUSTER)
    assert result.outcome == "deregistered"
    assert result.cluster == CLUSTER
    assert lifecycle_state(aws, ids[1]) in (None, "Terminated")


def hooked_group_sns(ecs_env: LocalEcs, aws: dict[str, Any]) -> tuple[list[str], str]:
    ids, _ = hooked_group(ecs_env, aws)
    return ids, ecs_env.events.create_queue("lifecycle-sns", sns=True)


@pytest.mark.parametrize(
    ("notice", "kwargs", "match"),
    [
        ({"detail-type": "EC2 Spot Instance Interruption Warning", "detail": {}}, {}, "has no"),
        ('{"Event": "autoscaling:TEST_NOTIFICATION"}', {}, "test notification"),
        ("not json", {}, "not JSON"),
        (None, {"on_failure": "later"}, "on_failure must be one of 'hold', 'continue'"),
        (None, {"hold_timeout": 0}, "hold_timeout"),
        (None, {"timeout": -1}, "timeout"),
        (None, {"cluster": ""}, "cluster"),
    ],
)
async def test_bad_input_is_refused_before_any_call(
    notice: Any, kwargs: dict[str, Any], match: str
) -> None:
    spot = {
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "detail": {"instance-id": "i-1", "instance-action": "terminate"},
    }
    lifecycle = LifecycleActionNotice(instance_id="i-1", group="g", hook="h", token="t")
    ecs = EcsSafeClient(region_name="us-east-1")  # never opened: no call can be made
    with pytest.raises(InvalidInputError, match=match):
        await ecs.handle_lifecycle_action(lifecycle if notice is None else notice, **kwargs)
    with pytest.raises(NoticeError, match="spot-interruption notice for i-1"):
        await ecs.handle_lifecycle_action(spot)


@pytest.mark.usefixtures("instant_retries")
async def test_a_lost_completion_is_verified_not_resent(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    ids, queue = hooked_group(ecs_env, aws)
    notice = scale_in(aws, queue, ids[1])
    # CONTINUE takes effect, then the connection drops: the answer is lost.
    ecs_env.inject_fault("autoscaling:CompleteLifecycleAction", after_acting=True, disconnect=True)
    async with client(ecs_env) as ecs:
        result = await ecs.handle_lifecycle_action(notice, clock=step_clock(ecs_env))
    assert result.outcome == "deregistered"
    assert (result.completed, result.completion_verified) == ("CONTINUE", True)
    assert ecs_env.lifecycle_actions.action(notice.token or "").result == "CONTINUE"
    assert ecs_env.calls("CompleteLifecycleAction") == 1  # read back, never sent again


@pytest.mark.usefixtures("instant_retries")
async def test_a_failed_heartbeat_is_logged_and_the_next_one_keeps_the_hook_alive(
    ecs_env: LocalEcs, aws: dict[str, Any]
) -> None:
    ids, queue = hooked_group(ecs_env, aws)
    [batch] = ecs_env.start_standalone_task(CLUSTER, arn_of(aws, ids[0]))
    notice = scale_in(aws, queue, ids[0])
    clock = step_clock(ecs_env)
    # More failures than the retries: the first heartbeat fails outright.
    ecs_env.inject_fault("RecordLifecycleActionHeartbeat", code="Throttling", times=20)
    async with client(ecs_env) as ecs:
        with capture_logs() as logs:
            task = asyncio.create_task(ecs.handle_lifecycle_action(notice, clock=clock))
            await clock.asleep(2, unless=task)
            await beat(clock, task, 1, asleep=2)
            assert [e["event"] for e in logs].count("ecs_safe.lifecycle.heartbeat_failed") == 1
            ecs_env.clear_faults()
            await beat(clock, task, 2, asleep=2)  # the next two go through: it never lapsed
            action = ecs_env.lifecycle_actions.action(notice.token or "")
            assert (action.state, action.heartbeats) == ("Terminating:Wait", 2)
            ecs_env.stop_task(CLUSTER, batch)
            await clock.advance(STEP, then_asleep=99, unless=task)
            result = await task
    assert result.outcome == "deregistered"
    assert ecs_env.lifecycle_actions.action(notice.token or "").timed_out is False
