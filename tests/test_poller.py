"""The drain poller (`ecs_safe._poller`): rounds, what each round reads, its pace, its errors.

Unit tests over a fake call layer and a fake clock: each fake call is recorded, and the clock
only moves when the poller sleeps, so nothing here depends on how fast the machine is. The
user paths (drains through LocalEcs) are in test_drain.py and test_fleet.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from drain_support import client
from structlog.testing import capture_logs

from ecs_safe import ClientException, ClientStateError, ContainerInstanceNotFoundError, EcsApiError
from ecs_safe._calls import ClusterListing, InstanceAnswers, PaginationError
from ecs_safe._constants import MIN_POLL_INTERVAL
from ecs_safe._poller import INTERRUPTED, Look, Poller, Watch
from ecs_safe.local import LocalEcs
from ecs_safe.models import ContainerInstance, Task

CLUSTER = "prod"
PREFIX = "arn:aws:ecs:us-east-1:123456789012"


def instance_arn(n: int) -> str:
    return f"{PREFIX}:container-instance/{CLUSTER}/{n:032x}"


def task_arn(n: int) -> str:
    return f"{PREFIX}:task/{CLUSTER}/{n:032x}"


@dataclass
class FakeTask:
    arn: str
    instance: str
    last: str = "RUNNING"

    @property
    def desired(self) -> str:
        return "RUNNING" if self.last in {"PENDING", "RUNNING"} else "STOPPED"

    def model(self) -> Task:
        return Task.from_api(self.raw())

    def raw(self) -> dict[str, Any]:
        return {
            "taskArn": self.arn,
            "lastStatus": self.last,
            "desiredStatus": self.desired,
            "containerInstanceArn": self.instance,
            "group": "service:web",
            "startedBy": "ecs-svc/1",
        }


@dataclass
class FakeCalls:
    """The three reads the poller makes, over a dict of instances and tasks; every call kept."""

    status: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    log: list[tuple[str, Any]] = field(default_factory=list)
    fail_describe: BaseException | None = None
    hold: asyncio.Event | None = None
    missing_reason: dict[str, str] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    # DescribeTasks of a batch holding one of these ARNs waits for its event / raises.
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    failing: dict[str, BaseException] = field(default_factory=dict)
    # The batches DescribeTasks answered, in order; `answered` is set after each.
    answers: list[list[str]] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, n: int, *, tasks: int = 0, counted: int | None = None) -> str:
        arn = instance_arn(n)
        self.status[arn] = "DRAINING"
        for k in range(tasks):
            t = FakeTask(task_arn(n * 1000 + k), arn)
            self.tasks[t.arn] = t
        self.counters[arn] = tasks if counted is None else counted
        return arn

    def on(self, arn: str) -> list[FakeTask]:
        return [t for t in self.tasks.values() if t.instance == arn]

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.log if op == operation)

    async def describe_instances(self, refs: Sequence[str], cluster: str | None) -> InstanceAnswers:
        assert len(refs) <= 100
        self.log.append(("DescribeContainerInstances", list(refs)))
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_describe is not None:
            raise self.fail_describe
        found = {}
        for ref in refs:
            if ref in self.status:
                found[ref.rsplit("/", 1)[-1]] = ContainerInstance.model_validate(
                    {
                        "containerInstanceArn": ref,
                        "status": self.status[ref],
                        "runningTasksCount": self.counters[ref],
                        "pendingTasksCount": 0,
                    }
                )
        missing = {r.rsplit("/", 1)[-1]: why for r, why in self.missing_reason.items()}
        return InstanceAnswers(found, missing)

    async def task_arns(
        self,
        cluster: str | None,
        desired: str,
        *,
        container_instance: str | None = None,
        page_cap: int | None = None,
    ) -> list[str]:
        self.log.append(("ListTasks", (container_instance, desired)))
        found = [
            t.arn
            for t in self.tasks.values()
            if t.desired == desired and container_instance in (None, t.instance)
        ]
        if page_cap is not None and math.ceil(len(found) / 100) > page_cap:
            raise PaginationError("too many pages", code="PaginationCap", operation="ListTasks")
        return found

    async def cluster_task_arns(
        self, cluster: str | None, *, budget: int, describes: bool
    ) -> ClusterListing:
        # As EcsCalls.cluster_task_arns: pages of 100, given up once past the budget.
        assert not describes, "the poller describes only the tasks it has not seen"
        arns: list[str] = []
        spent = 0
        for desired in ("RUNNING", "STOPPED"):
            self.log.append(("ListTasks", (None, desired)))
            found = [t.arn for t in self.tasks.values() if t.desired == desired]
            spent += max(1, math.ceil(len(found) / 100))
            if spent > budget:
                return ClusterListing(None, spent)
            arns.extend(found)
        return ClusterListing(arns, spent)

    async def describe_tasks(
        self, arns: Sequence[str], cluster: str | None
    ) -> tuple[list[Task], set[str]]:
        assert len(arns) <= 100
        self.log.append(("DescribeTasks", list(arns)))
        for arn in arns:
            if arn in self.held:
                await self.held[arn].wait()
            if arn in self.failing:
                raise self.failing[arn]
        self.answers.append(list(arns))
        self.answered.set()
        live = [self.tasks[a] for a in arns if self.tasks[a].last != "STOPPED"]
        models = [t.model() for t in live if t.arn not in self.unknown]
        # A describe failure other than MISSING: kept, with nothing known but its ARN.
        models += [Task.from_api({"taskArn": a}) for a in arns if a in self.unknown]
        return models, {a for a in arns if self.tasks[a].last == "STOPPED"}

    def stop(self, arn: str, last: str = "STOPPED") -> None:
        task = self.tasks[arn]
        task.last = last
        self.counters[task.instance] = sum(
            1 for t in self.on(task.instance) if t.last in {"RUNNING", "PENDING"}
        )


class FakeClock:
    """Time that passes only when the poller sleeps; the sleeps are kept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def poller(
    calls: FakeCalls, clock: FakeClock, *, read_per_s: float = 20.0, share: float = 0.5
) -> Poller:
    return Poller(
        calls,  # type: ignore[arg-type]
        read_per_s=read_per_s,
        share=share,
        clock=clock,
        sleep=clock.sleep,
    )


def watch(p: Poller, calls: FakeCalls, arn: str, max_interval: float = 5.0) -> Watch:
    return p.watch(arn, CLUSTER, [t.model() for t in calls.on(arn)], max_interval=max_interval)


async def test_a_round_describes_every_instance_100_a_call_and_lists_none_that_is_busy() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arns = [calls.add(n, tasks=2) for n in range(250)]
    watches = [watch(p, calls, arn) for arn in arns]
    looks = [await w.next() for w in watches]
    assert calls.count("DescribeContainerInstances") == 3
    assert calls.count("ListTasks") == calls.count("DescribeTasks") == 0
    assert not any(look.empty or look.listed for look in looks)
    assert {len(look.tasks) for look in looks} == {2}  # the pre-flight's list, until re-listed
    for w in watches:
        w.close()


async def test_empty_is_judged_by_the_task_list_not_the_counters() -> None:
    """aws-cdk #13506: a DEACTIVATING task is in no counter but still serves connections."""
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arn = calls.add(1, tasks=1)
    [task] = calls.on(arn)
    calls.stop(task.arn, "DEACTIVATING")
    assert calls.counters[arn] == 0
    w = watch(p, calls, arn)
    first = await w.next()
    assert first.listed
    assert not first.empty
    assert [t.last_status for t in first.tasks] == ["DEACTIVATING"]
    calls.stop(task.arn)
    second = await w.next()
    assert second.listed
    assert second.empty
    w.close()


async def test_counters_at_zero_with_a_running_task_keep_it_non_empty() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arn = calls.add(1, tasks=1, counted=0)  # stale counters
    w = watch(p, calls, arn)
    look = await w.next()
    assert look.listed
    assert not look.empty
    w.close()


async def test_a_task_seen_stopped_is_never_described_again() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arn = calls.add(1, tasks=251)
    for task in calls.on(arn)[:250]:
        calls.stop(task.arn)
    last = calls.on(arn)[250]
    calls.stop(last.arn, "STOPPING")
    w = watch(p, calls, arn)
    assert not (await w.next()).empty
    assert calls.count("DescribeTasks") == 3  # 251 tasks, 100 a call
    calls.stop(last.arn)
    assert (await w.next()).empty
    [*_, (_, described)] = [entry for entry in calls.log if entry[0] == "DescribeTasks"]
    assert described == [last.arn]  # the 250 known STOPPED were not asked about again
    w.close()


async def test_rising_counters_are_listed_so_a_new_task_is_seen() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arn = calls.add(1, tasks=1)
    w = watch(p, calls, arn)
    await w.next()
    assert calls.count("ListTasks") == 0
    newcomer = FakeTask(task_arn(99), arn)
    calls.tasks[newcomer.arn] = newcomer
    calls.counters[arn] = 2
    look = await w.next()
    assert look.listed
    assert newcomer.arn in {t.task_arn for t in look.tasks}
    assert calls.count("ListTasks") == 2
    w.close()


async def test_many_candidates_are_listed_for_the_cluster_at_once() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    busy = [calls.add(n, tasks=2) for n in range(50)]
    emptying = [calls.add(n, tasks=2) for n in range(50, 100)]
    watches = {arn: watch(p, calls, arn) for arn in busy + emptying}
    for each in watches.values():
        await each.next()
    for arn in emptying:
        for task in calls.on(arn):
            calls.stop(task.arn)
    calls.log.clear()
    looks = {arn: await w.next() for arn, w in watches.items()}
    listings = [args for op, args in calls.log if op == "ListTasks"]
    assert listings == [(None, "RUNNING"), (None, "STOPPED")]  # not 2 per instance
    described = [a for op, args in calls.log if op == "DescribeTasks" for a in args]
    # Only the tasks of the instances being confirmed: those of busy ones are known elsewhere.
    assert sorted(described) == sorted(t.arn for arn in emptying for t in calls.on(arn))
    assert all(looks[arn].empty for arn in emptying)
    assert not any(looks[arn].empty for arn in busy)
    for w in watches.values():
        w.close()


async def test_a_cluster_too_big_to_list_is_left_to_the_instances_listings() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arns = [calls.add(n, tasks=1) for n in range(3)]
    for n in range(3, 1000):  # 997 busy instances nobody drains: 10 pages of RUNNING tasks
        calls.add(n, tasks=1)
    for arn in arns:
        for task in calls.on(arn):
            calls.stop(task.arn)
    watches = [watch(p, calls, arn) for arn in arns]
    looks = [await w.next() for w in watches]
    listings = [args for op, args in calls.log if op == "ListTasks"]
    # Tried for the cluster within 6 pages (2 per instance), then 2 listings per instance.
    assert listings[0] == (None, "RUNNING")
    assert sorted(listings[1:]) == sorted((arn, d) for arn in arns for d in ("RUNNING", "STOPPED"))
    assert all(look.empty for look in looks)
    calls.log.clear()
    await watches[0].next()  # the next round remembers: no cluster listing tried again
    assert (None, "RUNNING") not in [args for op, args in calls.log if op == "ListTasks"]
    for w in watches:
        w.close()


async def test_a_task_of_unknown_place_keeps_every_candidate_non_empty() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arns = [calls.add(n, tasks=1) for n in range(30)]
    stranger = FakeTask(task_arn(7777), instance_arn(999), last="STOPPING")
    calls.tasks[stranger.arn] = stranger
    calls.unknown.add(stranger.arn)
    for arn in arns:
        for task in calls.on(arn):
            calls.stop(task.arn)
    watches = [watch(p, calls, arn) for arn in arns]
    looks = [await w.next() for w in watches]
    assert calls.count("ListTasks") == 2  # the cluster listing
    assert not any(look.empty for look in looks)
    for w in watches:
        w.close()


# A guard, not a measure: a poller that held every look behind the slowest describe would
# wait here for ever, and the test must fail instead.
HANG_GUARD_S = 30.0


async def _answered(calls: FakeCalls, count: int) -> None:
    """Until DescribeTasks has answered ``count`` batches (each answer sets the event)."""
    async with asyncio.timeout(HANG_GUARD_S):
        while len(calls.answers) < count:
            calls.answered.clear()
            await calls.answered.wait()


async def _looked_at(p: Poller, calls: FakeCalls, arns: Sequence[str]) -> dict[str, Watch]:
    """A watch of each instance, past its first round (counters count its tasks: no list)."""
    watches = {arn: watch(p, calls, arn) for arn in arns}
    for w in watches.values():
        await w.next()
    return watches


def _emptied(calls: FakeCalls, arns: Sequence[str]) -> None:
    for arn in arns:
        for task in calls.on(arn):
            calls.stop(task.arn)


async def test_a_look_goes_out_when_its_own_tasks_are_described() -> None:
    """Pipelined: the first instance's look while the second's describe is still held."""
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    first, second = calls.add(1, tasks=100), calls.add(2, tasks=100)
    watches = await _looked_at(p, calls, (first, second))
    _emptied(calls, [first, second])
    release = asyncio.Event()
    calls.held[calls.on(second)[0].arn] = release
    async with asyncio.timeout(HANG_GUARD_S):
        look = await watches[first].next()
    assert look.listed
    assert look.empty
    # Grouped by instance (the pre-flight said where each task is): one batch each.
    batches = [args for op, args in calls.log if op == "DescribeTasks"]
    assert sorted(map(sorted, batches)) == sorted(
        sorted(t.arn for t in calls.on(arn)) for arn in (first, second)
    )
    earlier = watches[second].last
    assert earlier is not None
    assert not earlier.listed
    release.set()
    assert (await watches[second].next()).empty
    for w in watches.values():
        w.close()


async def test_an_instance_with_more_tasks_than_a_batch_waits_for_all_its_batches() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    big, small = calls.add(1, tasks=150), calls.add(2, tasks=10)
    watches = await _looked_at(p, calls, (big, small))
    last = calls.on(big)[-1]
    _emptied(calls, [big, small])
    calls.stop(last.arn, "STOPPING")
    release = asyncio.Event()
    calls.held[calls.on(big)[0].arn] = release  # the big one's first batch is held
    await _answered(calls, 1)
    # Its other batch (with the small one's tasks) is in; the big one is not whole yet.
    assert not watches[big].last.listed  # type: ignore[union-attr]
    release.set()
    look = await watches[big].next()
    assert [t.task_arn for t in look.tasks] == [last.arn]
    assert not look.empty
    assert (await watches[small].next()).empty
    for w in watches.values():
        w.close()


@pytest.mark.parametrize("on_watched", [False, True])
async def test_a_task_of_unknown_place_holds_every_look_until_described(on_watched: bool) -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    first, second = calls.add(1, tasks=100), calls.add(2, tasks=100)
    watches = await _looked_at(p, calls, (first, second))
    _emptied(calls, [first, second])
    # A task the poller never saw (started since the pre-flight): it may be on either.
    stranger = FakeTask(task_arn(7777), first if on_watched else instance_arn(999))
    calls.tasks[stranger.arn] = stranger
    release = asyncio.Event()
    calls.held[stranger.arn] = release
    await _answered(calls, 2)  # every batch but the stranger's is in
    assert not any(w.last.listed for w in watches.values())  # type: ignore[union-attr]
    release.set()
    looks = {arn: await w.next() for arn, w in watches.items()}
    assert looks[second].empty
    assert looks[first].empty is not on_watched
    if on_watched:
        assert [t.task_arn for t in looks[first].tasks] == [stranger.arn]
    for w in watches.values():
        w.close()


async def test_a_failed_task_describe_fails_its_instances_and_no_other() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    first, second = calls.add(1, tasks=100), calls.add(2, tasks=100)
    watches = await _looked_at(p, calls, (first, second))
    _emptied(calls, [first, second])
    calls.failing[calls.on(first)[0].arn] = EcsApiError("denied", code="AccessDeniedException")
    with pytest.raises(EcsApiError):
        await watches[first].next()  # fail closed: not judged on a partial answer
    assert (await watches[second].next()).empty
    for w in watches.values():
        w.close()


async def test_a_failed_describe_of_a_task_of_unknown_place_fails_every_instance() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    first, second = calls.add(1, tasks=100), calls.add(2, tasks=100)
    watches = await _looked_at(p, calls, (first, second))
    _emptied(calls, [first, second])
    stranger = FakeTask(task_arn(7777), instance_arn(999))
    calls.tasks[stranger.arn] = stranger
    calls.failing[stranger.arn] = EcsApiError("throttled", code="ServerException")
    errors = []
    for w in watches.values():
        with pytest.raises(EcsApiError) as caught:
            await w.next()
        errors.append(caught.value)
    assert errors[0] is not errors[1]  # each waiter its own copy
    for w in watches.values():
        w.close()


def test_the_interval_spends_the_budget_between_a_floor_and_poll_interval() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock, read_per_s=20.0, share=0.5)  # 10 reads a second
    arn = calls.add(1)
    p._watches[0] = Watch(p, arn, CLUSTER, [], max_interval=30.0)
    assert p.interval(1) == MIN_POLL_INTERVAL  # one describe: the floor
    assert p.interval(50) == pytest.approx(5.0)  # 50 reads at 10/s
    assert p.interval(10_000) == 30.0  # poll_interval bounds the wait
    p._watches[0].max_interval = 0.05
    assert p.interval(0) == 0.05  # a shorter poll_interval lowers the floor
    unpaced = poller(calls, clock, read_per_s=math.inf)
    unpaced._watches[0] = Watch(unpaced, arn, CLUSTER, [], max_interval=5.0)
    assert unpaced.interval(1_000) == MIN_POLL_INTERVAL


async def test_rounds_are_paced_by_the_injected_clock() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arn = calls.add(1, tasks=1)
    w = watch(p, calls, arn)
    for _ in range(4):
        await w.next()
    # Quiet (the counters count the task): a round every poll_interval, the lag budget.
    assert clock.sleeps[:3] == [5.0] * 3
    assert calls.count("DescribeContainerInstances") >= 4
    assert p.rounds >= 4
    # Told to stop, still STOPPING (the counters no longer count it, the list does): the
    # instance may empty any second, so rounds come at the floor.
    [task] = calls.on(arn)
    calls.stop(task.arn, last="STOPPING")
    look = await w.next()
    while not look.listed:
        look = await w.next()
    assert look.tasks
    assert not look.empty
    await w.next()
    assert clock.sleeps[-1] == MIN_POLL_INTERVAL
    w.close()


def test_a_watch_is_eager_until_looked_at_and_while_its_tasks_are_stopping() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arn = calls.add(1, tasks=1)
    w = Watch(p, arn, CLUSTER, [], max_interval=5.0)
    assert w.eager  # not looked at yet
    [task] = calls.on(arn)
    instance = ContainerInstance.model_validate(
        {"containerInstanceArn": arn, "status": "DRAINING", "runningTasksCount": 1}
    )
    empty = instance.model_copy(update={"running_tasks_count": 0, "pending_tasks_count": 0})
    w.deliver(Look(instance, [task.model()], listed=False))
    assert not w.eager  # counted, not listed: quiet
    w.deliver(Look(instance, [task.model()], listed=True))
    assert not w.eager  # listed (a newcomer's check), running: quiet
    calls.stop(task.arn, last="STOPPING")
    w.deliver(Look(empty, [task.model()], listed=True))
    assert w.eager  # desired STOPPED, not yet STOPPED
    w.deliver(Look(empty, [], listed=True))
    assert not w.eager  # empty: the drain deregisters it


async def test_a_failed_describe_gives_each_waiter_its_own_error() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arns = [calls.add(n, tasks=1) for n in range(2)]
    calls.fail_describe = EcsApiError("denied", code="AccessDeniedException")
    watches = [watch(p, calls, arn) for arn in arns]
    errors = []
    for w in watches:
        with pytest.raises(EcsApiError) as caught:
            await w.next()
        caught.value.add_note(f"note of {w.ref}")
        errors.append(caught.value)
    assert errors[0] is not errors[1]
    assert [e.code for e in errors] == ["AccessDeniedException"] * 2
    assert errors[0].__notes__ == [f"note of {arns[0]}"]
    for w in watches:
        w.close()


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ("ACTIVE", ClientException, INTERRUPTED),
        ("gone", ContainerInstanceNotFoundError, None),
        ("ACCESS_DENIED", EcsApiError, "ACCESS_DENIED"),
    ],
)
async def test_an_instance_no_longer_draining_ends_its_watch(
    change: str, error: type[Exception], code: str | None
) -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    arn, other = calls.add(1, tasks=1), calls.add(2, tasks=1)
    mine, theirs = watch(p, calls, arn), watch(p, calls, other)
    await mine.next()
    if change == "ACTIVE":
        calls.status[arn] = "ACTIVE"
    else:
        del calls.status[arn]
        if change != "gone":
            calls.missing_reason[arn] = change
    with pytest.raises(error) as caught:
        await mine.next()
    if code is not None:
        assert getattr(caught.value, "code", None) == code
    await theirs.next()  # the other drain goes on
    mine.close()
    theirs.close()


async def test_closing_the_last_watch_cuts_the_round_in_flight() -> None:
    calls, clock = FakeCalls(), FakeClock()
    calls.hold = asyncio.Event()  # the describe never answers
    p = poller(calls, clock)
    entered = asyncio.Event()
    original = calls.describe_instances

    async def describe(refs: Sequence[str], cluster: str | None) -> InstanceAnswers:
        entered.set()
        return await original(refs, cluster)

    calls.describe_instances = describe  # type: ignore[method-assign]
    w = watch(p, calls, calls.add(1, tasks=1))
    await entered.wait()  # the round is in flight, held in its describe
    task = p._task
    assert task is not None
    w.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_concurrent_drains_of_one_client_share_its_rounds(ecs_env: LocalEcs) -> None:
    """Through LocalEcs: two drains at once, one poller; each round describes both in one call."""
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    arns = ecs_env.register_instances(CLUSTER, 2)
    tasks = {arn: ecs_env.start_service_task(CLUSTER, arn, "web")[0] for arn in arns}
    looks: dict[str, int] = dict.fromkeys(arns, 0)

    def scheduler(event: Mapping[str, Any]) -> None:
        # Plays ECS: each instance's task stops after the drain's second look at it.
        arn = event["container_instance_arn"]
        looks[arn] += 1
        if looks[arn] == 2:
            ecs_env.stop_task(CLUSTER, tasks[arn])

    async with client(ecs_env) as ecs:
        with capture_logs():
            await asyncio.gather(
                *(
                    ecs.drain_and_deregister(
                        arn, cluster=CLUSTER, timeout=60, poll_interval=0.05, progress=scheduler
                    )
                    for arn in arns
                )
            )
    assert ecs_env.calls("DeregisterContainerInstance") == 2
    # Every describe after DRAINING is a poll round's (pre-flights and wave checks come
    # before it); each round describes both instances at once.
    log = ecs_env.call_log
    after_draining = log[log.index("UpdateContainerInstancesState") :]
    rounds = after_draining.count("DescribeContainerInstances")
    assert rounds < sum(looks.values())


def test_a_look_is_empty_only_when_listed_with_the_counters() -> None:
    instance = ContainerInstance.model_validate(
        {"containerInstanceArn": instance_arn(1), "runningTasksCount": 0, "pendingTasksCount": 0}
    )
    assert Look(instance, [], listed=True).empty
    assert not Look(instance, [], listed=False).empty


async def test_closing_the_poller_ends_every_wait_with_a_typed_error() -> None:
    calls, clock = FakeCalls(), FakeClock()
    p = poller(calls, clock)
    w = watch(p, calls, calls.add(1, tasks=1))
    await w.next()
    p.close()
    with pytest.raises(ClientStateError, match="left DRAINING"):
        await w.next()
    assert w.closed
