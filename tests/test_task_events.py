"""Task events wake the drain poller (`ecs_safe._task_events`): over LocalEcs, and in units.

LocalEcs sends ECS Task State Change events (EventBridge's shape) for the tasks its scheduler
stops, to the queues made with ``task_events=True``; tests that need an event the scheduler
would not send (one for a task still STOPPING, a malformed one) put it on the queue themselves.
A drain whose ``poll_interval`` is an hour ends in seconds only if an event woke it: the
timeout (a minute) would fail the test otherwise. Nothing is timed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import botocore.session
import pytest
from structlog.testing import capture_logs

from ecs_safe import ClientStateError, EcsSafeClient, InvalidInputError, RateLimits
from ecs_safe._constants import MIN_POLL_INTERVAL, TASK_EVENTS_POLL_FACTOR
from ecs_safe._poller import Look, Poller, Watch
from ecs_safe._task_events import TaskEvents
from ecs_safe.local import LocalEcs
from ecs_safe.models import ContainerInstance, QueueMessage
from ecs_safe.notices import NoticeError, parse_task_state_change

CLUSTER = "events"
#: Far longer than any test may take: a drain that ends did so because an event woke it.
HOUR = 3600.0
#: The drain's deadline in these tests: reached only if a wake-up was missed.
DEADLINE = 60.0


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    return ecs_env


@functools.cache
def boto(env: LocalEcs, service: str) -> Any:
    """A plain botocore client of ``service`` on ``env`` (the test's own, not ecs-safe's)."""
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client(
        service, endpoint_url=env.endpoint_url, region_name=env.region_name
    )


def events_client(env: LocalEcs, queue_url: str | None) -> EcsSafeClient:
    return EcsSafeClient(
        endpoint_url=env.endpoint_url,
        region_name=env.region_name,
        session=env.session(),
        rate_limits=RateLimits.unlimited(),
        task_events_queue=queue_url,
    )


def task_event(
    env: LocalEcs, task: str, instance: str | None, *, last: str = "STOPPED"
) -> dict[str, Any]:
    """An ECS Task State Change event, as EventBridge sends it."""
    detail: dict[str, Any] = {
        "clusterArn": f"arn:aws:ecs:{env.region_name}:123456789012:cluster/{CLUSTER}",
        "taskArn": task,
        "lastStatus": last,
        "desiredStatus": "STOPPED",
        "group": "service:web",
    }
    if instance is not None:
        detail["containerInstanceArn"] = instance
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2026-12-02T07:00:00Z",
        "region": env.region_name,
        "resources": [task],
        "detail": detail,
    }


def queue_depth(env: LocalEcs, url: str) -> int:
    attributes = boto(env, "sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


class on_look:  # noqa: N801 (used like a function)
    """A progress callback: ``acts[n]()`` after the drain's ``n``-th look (1-based)."""

    def __init__(self, acts: Mapping[int, Callable[[], object]]) -> None:
        self.acts = dict(acts)
        self.looks: list[Mapping[str, Any]] = []
        self.first = asyncio.Event()

    def __call__(self, event: Mapping[str, Any]) -> None:
        self.looks.append(event)
        self.first.set()
        act = self.acts.get(len(self.looks))
        if act is not None:
            act()


# ----------------------------------------------------------------------------- over LocalEcs


async def test_the_stop_event_wakes_the_drain_without_waiting_out_poll_interval(
    env: LocalEcs,
) -> None:
    """The scheduler stops the task and sends its event; the woken round deregisters."""
    url = env.events.create_queue("task-events", task_events=True)
    env.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
    [arn, spare] = env.register_instances(CLUSTER, 2)
    env.scheduler.run_until_settled()
    [started] = [e for e in env.scheduler.events_for("web") if e.kind == "started"]
    task = started.task_arn
    if started.container_instance_arn != arn:  # drain the instance the task runs on
        arn, spare = spare, arn
    env.reset_calls()
    # After the first look, the scheduler moves the task (a replacement elsewhere, then the
    # stop on the DRAINING instance): its STOPPED event goes to the queue.
    progress = on_look({1: env.scheduler.run_until_settled})
    async with events_client(env, url) as ecs:
        result = await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, timeout=DEADLINE, poll_interval=HOUR, progress=progress
        )
        rounds = ecs.poll_stats.rounds
    assert result.forced is False
    assert env.calls("DeregisterContainerInstance") == 1
    assert rounds == 2  # the first look, and the one the event woke
    assert [look["remaining_tasks"] for look in progress.looks] == [1, 0]
    assert progress.looks[0]["remaining_task_arns"] == [task]
    log = env.service_call_log()
    assert "sqs:DeleteMessageBatch" in log
    assert log.index("sqs:ReceiveMessage") < log.index("DeregisterContainerInstance")
    assert queue_depth(env, url) == 0


async def test_lost_events_only_cost_lag_the_rounds_still_find_the_instance_empty(
    env: LocalEcs,
) -> None:
    """No event ever comes (stopped behind the scheduler's back): polling finishes the drain."""
    url = env.events.create_queue("task-events", task_events=True)
    env.create_service(CLUSTER, "web")
    [arn, _spare] = env.register_instances(CLUSTER, 2)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    progress = on_look({1: lambda: env.stop_task(CLUSTER, task)})
    async with events_client(env, url) as ecs:
        await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, timeout=DEADLINE, poll_interval=0.05, progress=progress
        )
        rounds = ecs.poll_stats.rounds
    assert rounds >= 2
    assert "sqs:DeleteMessageBatch" not in env.service_call_log("sqs")
    assert env.calls("DeregisterContainerInstance") == 1


async def test_malformed_and_foreign_events_are_ignored_and_deleted(env: LocalEcs) -> None:
    url = env.events.create_queue("task-events", task_events=True)
    env.create_service(CLUSTER, "web")
    [arn, other] = env.register_instances(CLUSTER, 2)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    [elsewhere] = env.start_service_task(CLUSTER, other, "web")
    sqs = boto(env, "sqs")

    def junk_then_stop() -> None:
        sqs.send_message(QueueUrl=url, MessageBody="{not json")
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"detail-type": "Something"}))
        env.events.publish(task_event(env, elsewhere, other))  # an instance nobody drains
        env.events.publish(task_event(env, "arn:aws:ecs:::task/fargate", None))  # Fargate
        env.stop_task(CLUSTER, task)
        env.events.publish(task_event(env, task, arn))

    progress = on_look({1: junk_then_stop})
    async with events_client(env, url) as ecs:
        with capture_logs() as logs:
            await ecs.drain_and_deregister(
                arn, cluster=CLUSTER, timeout=DEADLINE, poll_interval=HOUR, progress=progress
            )
    ignored = [e for e in logs if e["event"] == "ecs_safe.task_events.ignored"]
    assert sorted(str(e["reason"]) for e in ignored) == [
        "malformed",
        "not watched",
        "not watched",
        "unsupported",
    ]
    assert [e["task_arn"] for e in logs if e["event"] == "ecs_safe.task_events.woke"] == [task]
    assert env.calls("DeregisterContainerInstance") == 1
    assert queue_depth(env, url) == 0  # a dedicated queue: every message read is deleted


async def test_a_stopped_event_does_not_deregister_while_the_list_shows_the_task_stopping(
    env: LocalEcs,
) -> None:
    """The event is a hint: the task list judges, and it says STOPPING."""
    url = env.events.create_queue("task-events", task_events=True)
    env.create_service(CLUSTER, "web")
    [arn, _spare] = env.register_instances(CLUSTER, 2)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    env.set_task_status(CLUSTER, task, "STOPPING")
    statuses: list[str] = []

    def early_event() -> None:
        env.events.publish(task_event(env, task, arn))  # says STOPPED; the task is not

    def really_stopped() -> None:
        [found] = boto(env, "ecs").describe_container_instances(
            cluster=CLUSTER, containerInstances=[arn]
        )["containerInstances"]
        statuses.append(found["status"])
        env.set_task_status(CLUSTER, task, "STOPPED")
        env.events.publish(task_event(env, task, arn))

    progress = on_look({1: early_event, 2: really_stopped})
    async with events_client(env, url) as ecs:
        await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, timeout=DEADLINE, poll_interval=HOUR, progress=progress
        )
    # The look the early event woke still listed the task, and nothing was deregistered.
    assert [look["remaining_task_arns"] for look in progress.looks] == [[task], [task], []]
    assert statuses == ["DRAINING"]
    assert env.calls("DeregisterContainerInstance") == 1


async def test_the_queue_loop_runs_only_while_something_drains(env: LocalEcs) -> None:
    url = env.events.create_queue("task-events", task_events=True)
    env.create_service(CLUSTER, "web")
    [arn, _spare] = env.register_instances(CLUSTER, 2)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    running_while_draining: list[bool] = []
    loop: list[TaskEvents] = []

    async with events_client(env, url) as ecs:
        events = ecs._task_events
        assert events is not None
        loop.append(events)
        assert events.idle.is_set()  # nothing watched: no receive

        def stop() -> None:
            running_while_draining.append(not events.idle.is_set())
            env.stop_task(CLUSTER, task)
            env.events.publish(task_event(env, task, arn))

        await ecs.drain_and_deregister(
            arn,
            cluster=CLUSTER,
            timeout=DEADLINE,
            poll_interval=HOUR,
            progress=on_look({1: stop}),
        )
        # The last watch closed: the loop is cancelled with the poller's run.
        await asyncio.wait_for(events.idle.wait(), DEADLINE)
        receives = env.service_call_log("sqs").count("sqs:ReceiveMessage")
    assert running_while_draining == [True]
    assert loop[0].idle.is_set()
    # Nothing was received after the drain ended (the client stayed open a moment).
    assert env.service_call_log("sqs").count("sqs:ReceiveMessage") == receives


async def test_closing_the_client_mid_drain_stops_the_queue_loop(env: LocalEcs) -> None:
    url = env.events.create_queue("task-events", task_events=True)
    env.create_service(CLUSTER, "web")
    [arn, _spare] = env.register_instances(CLUSTER, 2)
    env.start_service_task(CLUSTER, arn, "web")
    progress = on_look({})
    ecs = events_client(env, url)
    await ecs.__aenter__()
    events = ecs._task_events
    assert events is not None
    drain = asyncio.create_task(
        ecs.drain_and_deregister(
            arn, cluster=CLUSTER, timeout=DEADLINE, poll_interval=HOUR, progress=progress
        )
    )
    await progress.first.wait()
    assert not events.idle.is_set()  # long-polling beside the rounds
    await ecs.close()
    assert events.idle.is_set()  # close() waited for the loop to end
    with pytest.raises(ClientStateError):
        await drain


@pytest.mark.usefixtures("instant_retries")
@pytest.mark.parametrize(
    ("code", "status", "times", "logged"),
    [
        ("AccessDenied", 403, 1, "ecs_safe.task_events.stopped"),
        ("ThrottlingException", 400, 50, "ecs_safe.task_events.receive_failed"),
    ],
    ids=["denied", "throttled"],
)
async def test_sqs_errors_are_mapped_and_the_drain_goes_on_by_polling(
    env: LocalEcs, code: str, status: int, times: int, logged: str
) -> None:
    url = env.events.create_queue("task-events", task_events=True)
    env.create_service(CLUSTER, "web")
    [arn, _spare] = env.register_instances(CLUSTER, 2)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    env.inject_fault("sqs:ReceiveMessage", code=code, http_status=status, times=times)
    logs: Sequence[Mapping[str, Any]] = []

    def stop_once_failed(_event: Mapping[str, Any]) -> None:
        # The drain goes on polling (every 0.05 s) while the queue fails; once the failure
        # is logged, the task stops with no event, and a round must still find it gone.
        if any(e["event"] == logged for e in logs):
            env.stop_task(CLUSTER, task)

    async with events_client(env, url) as ecs:
        with capture_logs() as captured:
            logs = captured
            await ecs.drain_and_deregister(
                arn,
                cluster=CLUSTER,
                timeout=DEADLINE,
                poll_interval=0.05,
                progress=stop_once_failed,
            )
    [entry] = [e for e in logs if e["event"] == logged][:1]
    assert entry["error_code"] == code
    assert env.calls("DeregisterContainerInstance") == 1


def test_a_bad_queue_url_is_refused_at_construction() -> None:
    with pytest.raises(InvalidInputError, match="task_events_queue"):
        EcsSafeClient(task_events_queue="sqs/my-queue")
    with pytest.raises(InvalidInputError, match="task_events_queue"):
        EcsSafeClient(task_events_queue=123)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- units


def test_parse_task_state_change_reads_every_shape() -> None:
    event = {
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "id": "e-1",
        "detail": {
            "taskArn": "arn:aws:ecs:us-east-1:1:task/c/t",
            "containerInstanceArn": "arn:aws:ecs:us-east-1:1:container-instance/c/i",
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
        },
    }
    sns = {"Type": "Notification", "Message": json.dumps(event)}
    sqs = {"Body": json.dumps(sns), "ReceiptHandle": "r"}
    for shape in (event, json.dumps(event), json.dumps(event).encode(), sns, sqs):
        parsed = parse_task_state_change(shape)
        assert parsed.task_arn.endswith("/t")
        assert parsed.container_instance_arn is not None
        assert parsed.last_status == "STOPPED"
        assert parsed.event_id == "e-1"
    with pytest.raises(NoticeError) as other:
        parse_task_state_change({"detail-type": "EC2 Spot Instance Interruption Warning"})
    assert other.value.kind == "unsupported"
    with pytest.raises(NoticeError) as broken:
        parse_task_state_change({"detail-type": "ECS Task State Change", "detail": {}})
    assert broken.value.kind == "malformed"


class FakeQueue:
    """The two SQS calls the loop makes, over a list of batches; then it blocks."""

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = batches
        self.deleted: list[str] = []
        self.received = asyncio.Event()
        self.forever = asyncio.Event()

    async def receive(self, queue_url: str, **_: Any) -> list[QueueMessage]:
        if not self.batches:
            self.received.set()
            await self.forever.wait()
        bodies = self.batches.pop(0)
        return [
            QueueMessage(message_id=str(n), receipt_handle=f"h{n}", body=b)
            for n, b in enumerate(bodies)
        ]

    async def delete_many(self, queue_url: str, handles: list[str]) -> int:
        self.deleted.extend(handles)
        return 0


class FakePoller:
    def __init__(self, watched: set[str]) -> None:
        self.watched = watched
        self.wakes: list[str | None] = []

    def wake(self, container_instance: str | None = None) -> bool:
        self.wakes.append(container_instance)
        return container_instance in self.watched


async def test_the_loop_wakes_for_watched_instances_only_and_deletes_everything() -> None:
    watched = "arn:aws:ecs:us-east-1:1:container-instance/c/watched"

    def body(instance: str) -> str:
        detail = {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/t", "containerInstanceArn": instance}
        return json.dumps({"detail-type": "ECS Task State Change", "detail": detail})

    queue = FakeQueue([[body(watched), body("arn:aws:ecs:::container-instance/c/x"), "junk"]])

    async def made() -> Any:
        return queue

    events = TaskEvents("https://sqs.local/q", made)
    poller = FakePoller({watched})
    listening = asyncio.create_task(events.listen(poller))  # type: ignore[arg-type]
    await queue.received.wait()
    assert poller.wakes == [watched, "arn:aws:ecs:::container-instance/c/x"]
    assert (events.wakes, events.ignored) == (1, 2)
    assert queue.deleted == ["h0", "h1", "h2"]
    await events.aclose()
    assert listening.cancelled()
    assert events.idle.is_set()


class _NoCalls:
    """A call layer the interval and wake units never call."""


def _poller(events: TaskEvents | None) -> Poller:
    return Poller(_NoCalls(), read_per_s=20.0, events=events)  # type: ignore[arg-type]


async def test_wake_is_for_watched_instances_and_cuts_a_long_wait() -> None:
    p = _poller(None)
    watched = "arn:aws:ecs:us-east-1:1:container-instance/c/0abc"
    assert not p.wake(watched)  # nothing watched
    w = Watch(p, watched, "c", [], max_interval=HOUR)
    p._watches[id(w)] = w
    assert not p.wake("arn:aws:ecs:us-east-1:1:container-instance/c/other")
    assert not p._woken.is_set()
    assert p.wake("0abc")  # the ID alone names it too
    assert p.wake(watched)
    assert p._woken.is_set()
    # Quiet, so the pause after a round is the hour; a wake cuts it to what the budget
    # pays for that round (none here).
    busy = ContainerInstance.model_validate(
        {"containerInstanceArn": watched, "status": "DRAINING", "runningTasksCount": 1}
    )
    w.deliver(Look(busy, [], listed=False))
    assert p.interval(1) == HOUR
    p._woken.clear()
    pause = asyncio.create_task(p._pause(p.clock(), 1))
    await asyncio.sleep(0)
    assert not pause.done()
    assert p.wake(watched)
    await asyncio.wait_for(pause, DEADLINE)


async def test_with_task_events_the_waits_are_a_safety_net() -> None:
    async def never() -> Any:
        await asyncio.Event().wait()

    events = TaskEvents("https://sqs.local/q", never)
    p = _poller(events)
    w = Watch(p, "arn:aws:ecs:us-east-1:1:container-instance/c/0abc", "c", [], max_interval=5.0)
    p._watches[id(w)] = w
    assert p.interval(1) == MIN_POLL_INTERVAL  # not listening yet: as without events
    p._listener = asyncio.create_task(events.listen(p))
    await asyncio.sleep(0)  # let it start (it then waits for its queue for ever)
    assert p.listening
    assert p.interval(1) == MIN_POLL_INTERVAL  # not looked at yet: the floor
    busy = ContainerInstance.model_validate(
        {"containerInstanceArn": w.ref, "status": "DRAINING", "runningTasksCount": 1}
    )
    w.deliver(Look(busy, [], listed=False))  # quiet
    assert p.interval(1) == 5.0 * TASK_EVENTS_POLL_FACTOR
    events.live = False  # receives failing: as without events
    assert p.interval(1) == 5.0
    events.live = True
    await events.aclose()
    assert not p.listening
    assert p.interval(1) == 5.0
