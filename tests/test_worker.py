"""The event worker against LocalEcs over HTTP: Spot at once, once only, delete after record.

Each test puts events on a LocalEcs SQS queue (`LocalEcs.interrupt_spot`, `events.publish`) and
runs `EcsSafeClient.watch` until its ``max_events`` ended (or a ``stop`` set on an event), so no
wait depends on the machine's speed: the worker's long poll is cut by the stop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config

from ecs_safe import AuditLog, EcsSafeClient, SyncEcsSafeClient
from ecs_safe import drain as _drain
from ecs_safe._aws_calls import QueueCalls
from ecs_safe.local import LocalEcs
from ecs_safe.worker import EVENT_DONE, EVENT_STARTED, EventOutcome, Ledger, Worker

pytestmark = pytest.mark.usefixtures("instant_retries")

CLUSTER = "spot"


@pytest.fixture(scope="module")
def sqs(local_ecs: LocalEcs) -> Iterator[Any]:
    session = boto3.session.Session(
        aws_access_key_id=local_ecs.access_key_id,
        aws_secret_access_key=local_ecs.secret_access_key,
        region_name=local_ecs.region_name,
    )
    client = session.client(
        "sqs",
        endpoint_url=local_ecs.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    yield client
    client.close()


def client(env: LocalEcs, **kwargs: Any) -> EcsSafeClient:
    return EcsSafeClient(**env.client_kwargs(), **kwargs)


async def ec2_ids(ecs: EcsSafeClient, arns: list[str]) -> list[str]:
    described = await ecs.describe_container_instances(arns, cluster=CLUSTER)
    return [str(i.ec2_instance_id) for i in described]


class Outcomes:
    """Collects the worker's outcomes; sets ``stop`` once ``until`` says so."""

    def __init__(self, until: int | None = None) -> None:
        self.seen: list[EventOutcome] = []
        self.stop = asyncio.Event()
        self._until = until

    def __call__(self, event: Mapping[str, Any]) -> None:
        fields = {k: v for k, v in event.items() if k != "event"}
        self.seen.append(EventOutcome.model_validate(fields))
        if self._until is not None and len(self.seen) >= self._until:
            self.stop.set()

    def statuses(self) -> list[str]:
        return sorted(o.status for o in self.seen)


def ops(env: LocalEcs, name: str) -> list[int]:
    return [i for i, op in enumerate(env.call_log) if op == name]


async def test_a_spot_warning_drains_at_once_in_one_call(ecs_env: LocalEcs) -> None:
    """The notices of one receive are set DRAINING by ONE UpdateContainerInstancesState call,
    before the drain poller's first look; then each empty instance is deregistered."""
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, count=3)
    url = ecs_env.events.create_queue("spot-at-once")
    seen = Outcomes()
    async with client(ecs_env) as ecs:
        first, second, _ = await ec2_ids(ecs, arns)
        for ec2_id in (first, second):
            ecs_env.interrupt_spot(ec2_id, drain=False)  # no agent draining: ecs-safe must
        ecs_env.reset_calls()
        summary = await ecs.watch(
            url, cluster=CLUSTER, wait_seconds=1, max_events=2, on_outcome=seen
        )
        remaining = await ecs.list_container_instances(cluster=CLUSTER)
    assert summary.handled == 2
    assert {(o.kind, o.action) for o in seen.seen} == {("spot", "deregistered")}
    assert {o.instance_id for o in seen.seen} == {first, second}
    [update] = ops(ecs_env, "UpdateContainerInstancesState")
    looks = ops(ecs_env, "ListTasks") + ops(ecs_env, "DescribeTasks")
    assert looks, "the drain looked at the tasks"
    assert update < min(looks), "DRAINING came before any look at the tasks"
    assert [i.container_instance_arn for i in remaining] == [arns[2]]


async def test_a_spot_wait_never_outlasts_the_notice(ecs_env: LocalEcs) -> None:
    """A notice whose two minutes are (nearly) over: DRAINING, and no wait, no deregistration."""
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    ecs_env.start_service_task(CLUSTER, arn, "web")
    url = ecs_env.events.create_queue("spot-late")
    seen = Outcomes()
    async with client(ecs_env) as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        event = ecs_env.interrupt_spot(ec2_id, drain=False)
        # The same warning as if it had been sent 115 s ago: 5 s are left, under the reserve.
        event["time"] = "2020-01-01T00:00:00Z"
        await ecs.handle_event(json.dumps(event), cluster=CLUSTER)
        [described] = await ecs.describe_container_instances([arn], cluster=CLUSTER)
        summary = await ecs.watch(
            url, cluster=CLUSTER, wait_seconds=1, max_events=1, on_outcome=seen
        )
    assert described.status == "DRAINING"
    assert ops(ecs_env, "DeregisterContainerInstance") == []
    # The queue's copy of the same warning is a duplicate of the one just handled.
    assert [o.status for o in seen.seen] == ["duplicate"]
    assert summary.duplicates == 1


async def test_duplicates_and_redeliveries_act_once(ecs_env: LocalEcs) -> None:
    """The same warning delivered twice (EventBridge is at-least-once) and a lifecycle test
    notification: one DRAINING call, one deregistration, a duplicate, an ignored event."""
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    url = ecs_env.events.create_queue("spot-twice")
    seen = Outcomes()
    async with client(ecs_env) as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        event = ecs_env.interrupt_spot(ec2_id, drain=False)
        ecs_env.events.publish(event)
        ecs_env.events.publish({**event, "id": "another-id"})  # same instance, new envelope
        ecs_env.events.publish({"Event": "autoscaling:TEST_NOTIFICATION", "Service": "x"})
        ecs_env.reset_calls()
        await ecs.watch(url, cluster=CLUSTER, wait_seconds=1, max_events=4, on_outcome=seen)
    assert seen.statuses() == ["duplicate", "duplicate", "handled", "ignored"]
    assert all(o.deleted for o in seen.seen)
    assert len(ops(ecs_env, "UpdateContainerInstancesState")) == 1
    assert len(ops(ecs_env, "DeregisterContainerInstance")) == 1


class Crash(Exception):
    """The process dying at a chosen point (the worker's task ends there)."""


async def test_a_crash_between_recording_and_deleting_is_a_duplicate_on_redelivery(
    ecs_env: LocalEcs, sqs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outcome is recorded before the delete: a worker that dies between the two leaves a
    message that comes back, and a new worker on the same audit log deletes it, acting on
    nothing."""
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    url = ecs_env.events.create_queue("spot-crash")
    audit = tmp_path / "audit.jsonl"
    receipts: list[str] = []
    stop = asyncio.Event()

    async def crash(self: Worker, queue: Any, queue_url: str, message: Any) -> bool:
        receipts.append(message.receipt_handle)
        stop.set()
        raise Crash

    async with client(ecs_env, audit_log=audit) as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        ecs_env.interrupt_spot(ec2_id, drain=False)
        with monkeypatch.context() as patch:
            patch.setattr(Worker, "_delete", crash)
            await ecs.watch(url, cluster=CLUSTER, wait_seconds=1, stop=stop)
    records = AuditLog.read(audit)
    assert [r["kind"] for r in records if r["kind"] in (EVENT_STARTED, EVENT_DONE)] == [
        EVENT_STARTED,
        EVENT_DONE,
    ]
    # The message is back (as after the crashed worker's visibility timeout).
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipts[0], VisibilityTimeout=0)
    ecs_env.reset_calls()
    seen = Outcomes()
    async with client(ecs_env, audit_log=audit) as ecs:
        await ecs.watch(url, cluster=CLUSTER, wait_seconds=1, max_events=1, on_outcome=seen)
    [again] = seen.seen
    assert (again.status, again.deleted) == ("duplicate", True)
    # Not one ECS call: the record said it all.
    assert [op for op in ecs_env.call_log if not op.startswith("sqs:")] == []
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)


async def test_a_crash_before_the_outcome_is_recorded_resumes_without_acting_twice(
    ecs_env: LocalEcs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acted, then the record fails: the message is kept, and its redelivery is a resumed
    handling that finds the instance gone: nothing is set DRAINING or deregistered again."""
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    url = ecs_env.events.create_queue("spot-resume")
    done = Ledger.done
    calls = {"done": 0}

    def fail_once(self: Ledger, keys: Any, outcome: EventOutcome) -> None:
        calls["done"] += 1
        if calls["done"] == 1:
            raise Crash
        done(self, keys, outcome)

    monkeypatch.setattr(Ledger, "done", fail_once)
    seen = Outcomes()
    async with client(ecs_env, audit_log=tmp_path / "audit.jsonl") as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        ecs_env.interrupt_spot(ec2_id, drain=False)
        ecs_env.reset_calls()
        await ecs.watch(
            url, cluster=CLUSTER, wait_seconds=1, max_events=2, retry_delay=0, on_outcome=seen
        )
    first, second = seen.seen
    assert (first.status, first.deleted) == ("retry", False)
    assert (second.status, second.resumed, second.deleted) == ("ignored", True, True)
    assert len(ops(ecs_env, "UpdateContainerInstancesState")) == 1
    assert len(ops(ecs_env, "DeregisterContainerInstance")) == 1


async def test_many_events_run_concurrently_within_the_bound(
    ecs_env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight warnings, ``concurrency=4``: never more than four in flight, several at once,
    every one handled, on one client (its one limiter paced every call)."""
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, count=8)
    url = ecs_env.events.create_queue("spot-many")
    active = {"now": 0, "peak": 0}
    handle = Worker.handle

    async def counted(self: Worker, body: Any, **kwargs: Any) -> EventOutcome:
        active["now"] += 1
        active["peak"] = max(active["peak"], active["now"])
        try:
            return await handle(self, body, **kwargs)
        finally:
            active["now"] -= 1

    monkeypatch.setattr(Worker, "handle", counted)
    seen = Outcomes()
    async with client(ecs_env) as ecs:
        for ec2_id in await ec2_ids(ecs, arns):
            ecs_env.interrupt_spot(ec2_id, drain=False)
        summary = await ecs.watch(
            url, cluster=CLUSTER, wait_seconds=1, concurrency=4, max_events=8, on_outcome=seen
        )
        left = await ecs.list_container_instances(cluster=CLUSTER)
    assert summary.handled == 8
    assert {o.action for o in seen.seen} == {"deregistered"}
    assert 2 <= active["peak"] <= 4
    assert left == []
    # The cordons of the events that arrived together went in one call.
    assert len(ops(ecs_env, "UpdateContainerInstancesState")) < 8


async def test_a_stop_hands_the_events_in_flight_back(
    ecs_env: LocalEcs, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM's path: a Spot drain waiting for a standalone task is cut after the grace
    period, and its message is visible again at once for another worker."""
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    ecs_env.start_standalone_task(CLUSTER, arn)
    url = ecs_env.events.create_queue("spot-stop")
    seen = Outcomes()
    draining = asyncio.Event()
    start_draining = _drain.start_draining

    async def cordoned(*args: Any, **kwargs: Any) -> Any:
        errors = await start_draining(*args, **kwargs)
        draining.set()  # the event is in flight, its instance DRAINING
        return errors

    monkeypatch.setattr(_drain, "start_draining", cordoned)
    async with client(ecs_env) as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        ecs_env.interrupt_spot(ec2_id, drain=False)
        watching = asyncio.create_task(
            ecs.watch(
                url,
                cluster=CLUSTER,
                wait_seconds=1,
                stop=seen.stop,
                grace_period=0,
                on_outcome=seen,
            )
        )
        await draining.wait()
        seen.stop.set()
        summary = await watching
    assert summary.handed_back == 1
    assert [o.status for o in seen.seen] == ["handed_back"]
    back = sqs.receive_message(
        QueueUrl=url, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in back] == ["2"]


async def test_a_rebalance_recommendation_is_logged_only_by_default(ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    async with client(ecs_env) as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        event = ecs_env.recommend_rebalance(ec2_id)
        ecs_env.reset_calls()
        logged = await ecs.handle_event(event, cluster=CLUSTER)
        drained = await ecs.handle_event(
            {**event, "id": "other", "time": "2026-01-01T00:00:00Z"},
            cluster=CLUSTER,
            rebalance="drain",
        )
        [described] = await ecs.describe_container_instances([arn], cluster=CLUSTER)
    assert (logged.action, drained.action) == ("logged", "drained")
    assert described.status == "DRAINING"
    assert len(ops(ecs_env, "UpdateContainerInstancesState")) == 1


async def test_a_scale_in_goes_through_the_lifecycle_handler_once(
    ecs_env: LocalEcs, local_ecs: LocalEcs
) -> None:
    """A hooked group scales in: the worker hands the lifecycle action to the handler (drain,
    deregister, CONTINUE); the same event delivered again is a duplicate."""
    session = boto3.session.Session(
        aws_access_key_id=local_ecs.access_key_id,
        aws_secret_access_key=local_ecs.secret_access_key,
        region_name=local_ecs.region_name,
    )
    autoscaling = session.client(
        "autoscaling",
        endpoint_url=local_ecs.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    ecs_env.create_cluster(CLUSTER)
    url = ecs_env.events.create_queue("lifecycle-worker")
    ecs_env.create_auto_scaling_group("web-asg", CLUSTER, 2)
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName="web-asg",
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=300,
        DefaultResult="ABANDON",
    )
    autoscaling.set_desired_capacity(AutoScalingGroupName="web-asg", DesiredCapacity=1)
    [event] = ecs_env.events.sent
    ecs_env.events.publish(event)  # delivered twice
    seen = Outcomes()
    async with client(ecs_env) as ecs:
        await ecs.watch(url, cluster=CLUSTER, wait_seconds=1, max_events=2, on_outcome=seen)
        left = await ecs.list_container_instances(cluster=CLUSTER)
    autoscaling.close()
    handled = [o for o in seen.seen if o.status == "handled"]
    assert [(o.kind, o.action) for o in handled] == [("lifecycle", "deregistered")]
    assert handled[0].result is not None
    assert handled[0].result["completed"] == "CONTINUE"
    assert seen.statuses() == ["duplicate", "handled"]
    assert len(left) == 1
    assert ecs_env.calls("DeregisterContainerInstance") == 1


def test_the_sync_client_handles_one_event(ecs_env: LocalEcs) -> None:
    event = ecs_env.recommend_rebalance("i-0123456789abcdef0")
    with SyncEcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        first = ecs.handle_event(event)
        again = ecs.handle_event(json.dumps(event))
    assert (first.status, first.action) == ("handled", "logged")
    assert again.status == "duplicate"


async def test_an_event_in_flight_keeps_its_message_hidden(
    ecs_env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a Spot drain waits (a standalone task), the message's visibility is extended by
    the whole timeout, every third of it; then the stop hands it back (visibility 0)."""
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    ecs_env.start_standalone_task(CLUSTER, arn)
    url = ecs_env.events.create_queue("spot-hidden")
    extended: list[int] = []
    kept = asyncio.Event()
    extend = QueueCalls.extend_visibility

    async def spy(self: QueueCalls, queue_url: str, receipt_handle: str, seconds: int) -> None:
        await extend(self, queue_url, receipt_handle, seconds)
        extended.append(seconds)
        if seconds:
            kept.set()

    monkeypatch.setattr(QueueCalls, "extend_visibility", spy)
    seen = Outcomes()
    async with client(ecs_env) as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        ecs_env.interrupt_spot(ec2_id, drain=False)
        watching = asyncio.create_task(
            ecs.watch(
                url,
                cluster=CLUSTER,
                wait_seconds=1,
                visibility_timeout=3,
                stop=seen.stop,
                grace_period=0,
                on_outcome=seen,
            )
        )
        await kept.wait()
        seen.stop.set()
        await watching
    assert extended[0] == 3
    assert extended[-1] == 0  # handed back
    assert [o.status for o in seen.seen] == ["handed_back"]


async def test_without_a_cluster_each_instance_is_found_where_it_is(ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster("other")
    ecs_env.register_instances("other")
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    async with client(ecs_env) as ecs:
        [ec2_id] = await ec2_ids(ecs, [arn])
        outcome = await ecs.handle_event(ecs_env.interrupt_spot(ec2_id, drain=False))
        missing = await ecs.handle_event(ecs_env.interrupt_spot("i-0123456789abcdef0"))
    assert (outcome.action, outcome.container_instance_arn) == ("deregistered", arn)
    assert outcome.cluster == CLUSTER
    assert (missing.status, missing.action) == ("ignored", "none")


def test_the_ledger_reads_its_history_back() -> None:
    ledger = Ledger(
        history=[
            {"kind": EVENT_STARTED, "keys": ["event:a", "spot:i-1"]},
            {"kind": EVENT_STARTED, "keys": ["event:b"]},
            {"kind": EVENT_DONE, "keys": ["event:b"]},
            {"kind": "intent", "keys": ["event:c"]},  # another kind of record: skipped
        ]
    )
    assert ledger.state(["event:a"]) == "started"
    assert ledger.state(["spot:i-1"]) == "started"
    assert ledger.state(["event:b"]) == "done"
    assert ledger.state(["event:a", "event:b"]) == "done"
    assert ledger.state(["event:c"]) == "new"
    ledger.started(["event:b"])  # a start never overwrites an end
    assert ledger.state(["event:b"]) == "done"
