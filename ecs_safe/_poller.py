"""One poller for every instance a client is draining: a round for all, paced to a read budget.

A drain waits for its instance to empty, and the only way to know is to look. Looking per
instance (a describe, two ListTasks and a DescribeTasks every few seconds, each instance on its
own timer) spends the account's read bucket in proportion to the fleet, and a fleet of a
thousand then waits on its own reads. The `Poller` looks at everything the client is draining
in one *round*:

1. Describe every watched instance, 100 a call (counters and status; an instance that is no
   longer DRAINING, or gone, is that drain's error).
2. List tasks only where the counters say the instance is empty (the list must confirm it, and
   sees the tasks the counters miss: DEACTIVATING, STOPPING, ...: aws-cdk #13506), or where they
   count more tasks than the last list knew running (a new task: ``standalone_tasks="stop"``
   must see it). The task list stays the judge of "empty"; the counters only say when it is
   worth asking. Few
   candidates are listed per instance (two ListTasks each); many are listed for the whole
   cluster at once (two paginated ListTasks), whichever costs fewer calls.
3. Describe only the listed tasks not already seen STOPPED (STOPPED is final), 100 a call.

Each drain holds a `Watch` and awaits its instance's next `Look`; there is no per-instance
timer. How often rounds run adapts to what the last one saw:

- **quiet**: every instance's counters still count its tasks and no listed task is stopping.
  Nothing says the instance will empty soon, so the next round waits the drains'
  ``poll_interval`` (`DEFAULT_POLL_INTERVAL`, 5 s): the lag budget. A task that stops
  unannounced is seen within it, about half of it on average.
- **eager**: a watch not looked at yet, or whose last look listed its tasks and found them
  stopping (told to stop, ``desiredStatus`` STOPPED, not yet STOPPED: DEACTIVATING behind a
  load balancer, STOPPING) or found the counters empty while the list is not. The instance
  may empty any second, so the next round comes after `MIN_POLL_INTERVAL` (2 s).

Either way rounds are paced to a budget: the poller spends ``share`` of the client's read
rate (`RateLimits.read_per_s`; `DEFAULT_POLL_SHARE`, half, by default), so a thousand
instances share the same reads and their rounds stretch with the fleet. A watch's
``max_interval`` (the drain's ``poll_interval``) bounds the wait between rounds: when the share
cannot pay for rounds that often, the poller spends more than its share (the rate limiter still
paces every call, so ECS never throttles it for that).

With a task-events queue (``EcsSafeClient(task_events_queue=...)``, `ecs_safe._task_events`), a
loop beside the rounds long-polls the queue while anything is watched, and an ECS Task State
Change event for a watched instance `wake`-s the poller: the next round runs at once (within the
budget), however long the wait. Events are hints: the round judges as always. So the waits
become a safety net for a lost or late event (`Poller.interval`): a quiet instance is looked at
every `TASK_EVENTS_POLL_FACTOR` x ``poll_interval`` (30 s), an eager one every
``poll_interval`` (a stopping task's STOPPED event is on its way), a new one after the floor.
While the loop cannot receive (an SQS outage), the waits are those without events.

The client owns one poller, so concurrent `drain_and_deregister` calls and a fleet drain share
its rounds. It sits below the workflows, over the call layer (`ecs_safe._calls.EcsCalls`).
"""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ecs_safe._calls import GONE_REASONS, InstanceAnswers
from ecs_safe._constants import (
    DEFAULT_POLL_SHARE,
    DESCRIBE_INSTANCES_BATCH,
    DESCRIBE_TASKS_BATCH,
    MIN_POLL_INTERVAL,
    TASK_EVENTS_POLL_FACTOR,
)
from ecs_safe._validation import instance_id_of
from ecs_safe.errors import (
    ClientException,
    ClientStateError,
    ContainerInstanceNotFoundError,
    EcsApiError,
    EcsSafeError,
)
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.results import PollStats

if TYPE_CHECKING:
    from ecs_safe._calls import EcsCalls
    from ecs_safe._task_events import TaskEvents

__all__ = ["INTERRUPTED", "Look", "Poller", "Watch"]

#: The code of the error a watch gets when something else set its instance ACTIVE mid-drain.
INTERRUPTED: Final = "DrainInterrupted"
# The task statuses the instance counters count (running + pending); a listed task in any
# other status (DEACTIVATING, STOPPING, ACTIVATING, unknown) is on the instance unseen by them.
_COUNTED: Final = frozenset({"RUNNING", "PENDING"})


@dataclass(frozen=True, slots=True)
class Look:
    """One round's view of one instance.

    Attributes:
        instance: the instance as the round described it (counters, status).
        tasks: the tasks on it that are not STOPPED, by the latest task list (this round's
            when ``listed``, else the last one taken).
        listed: whether the task list was taken this round, with the counters.
    """

    instance: ContainerInstance
    tasks: list[Task]
    listed: bool

    @property
    def empty(self) -> bool:
        """Nothing left, by a task list taken with the counters, and the counters agree.

        The list sees tasks the counters miss (STOPPING, DEACTIVATING); counters above zero
        mean the policy's counter rules would refuse anyway.
        """
        return (
            self.listed
            and not self.tasks
            and (self.instance.running_tasks_count or 0) <= 0
            and (self.instance.pending_tasks_count or 0) <= 0
        )


def _counted(instance: ContainerInstance) -> int:
    return max(instance.running_tasks_count or 0, 0) + max(instance.pending_tasks_count or 0, 0)


class Watch:
    """One drain's interest in one instance: await `next` for each round's `Look`.

    Only the latest look is kept: a waiter that is slow (a progress callback, a StopTask)
    gets the newest view, never a backlog of stale ones. `close` it when done.
    """

    def __init__(
        self,
        poller: Poller,
        ref: str,
        cluster: str | None,
        tasks: Sequence[Task],
        max_interval: float,
    ) -> None:
        self.poller = poller
        self.ref = ref
        self.cluster = cluster
        self.key = instance_id_of(ref)
        self.max_interval = max_interval
        self.started = poller.clock()
        # What the last task list (at first, the pre-flight's) found live on the instance.
        self.tasks: list[Task] = list(tasks)
        self._latest: Look | BaseException | None = None
        # The last look delivered (an error is not one): what the next round's interval reads.
        self.last: Look | None = None
        self._fresh = asyncio.Event()
        self.closed = False

    async def next(self) -> Look:
        """The next round's look at the instance (cancel-safe: nothing is lost by a timeout).

        Raises:
            EcsSafeError: the round failed for this instance (a read failed after retries;
                the instance is gone or ACTIVE again).
        """
        await self._fresh.wait()
        self._fresh.clear()
        latest = self._latest
        assert latest is not None, "set before the event"
        if isinstance(latest, BaseException):
            raise latest
        return latest

    def close(self) -> None:
        """Stop watching (idempotent); the last watch closed stops the poller's rounds."""
        if not self.closed:
            self.closed = True
            self.poller.unwatch(self)

    # -- what the poller calls -------------------------------------------------------------

    def deliver(self, look: Look | BaseException) -> None:
        """Hand the waiter this round's look (or its error)."""
        if isinstance(look, Look):
            self.last = look
            if look.listed:
                self.tasks = list(look.tasks)
        self._latest = look
        self._fresh.set()

    def wants_list(self, instance: ContainerInstance) -> bool:
        """Whether this round must list the instance's tasks (see the module's step 2).

        While the counters count a task, the instance is not empty whatever the list says, so
        listing only pays when they say empty (the list must confirm it, and sees the tasks
        they miss: a DEACTIVATING task keeps the instance listed every round until STOPPED),
        or when they count more tasks than the last list knew running (a newcomer).
        """
        counted = _counted(instance)
        return counted == 0 or counted > sum(1 for t in self.tasks if t.last_status in _COUNTED)

    @property
    def eager(self) -> bool:
        """Whether the instance may empty any second (see the module: quiet or eager).

        Not looked at yet, or its last look listed tasks that are stopping (told to stop,
        not yet STOPPED) or that the counters no longer count: the next look comes after
        the poller's floor rather than after ``max_interval``.
        """
        last = self.last
        if last is None:
            return True
        if not last.listed or last.empty:
            return False
        return _counted(last.instance) == 0 or any(
            t.desired_status == "STOPPED" for t in last.tasks
        )

    def elapsed(self) -> float:
        """Seconds since the watch began."""
        return self.poller.clock() - self.started


def _own_copy(exc: BaseException) -> BaseException:
    """One error per waiter: each adds its own notes (which instance was left DRAINING)."""
    mine = copy.copy(exc)
    notes = getattr(exc, "__notes__", None)
    if notes is not None:
        mine.__notes__ = list(notes)
    mine.__cause__ = exc.__cause__
    return mine


def _check_instance(watch: Watch, answers: InstanceAnswers) -> ContainerInstance:
    """The watched instance as described, if it is still DRAINING; else why the drain ends."""
    elapsed = watch.elapsed()
    instance = answers.found.get(watch.key)
    reason = answers.missing.get(watch.key)
    if instance is None and reason is not None and reason not in GONE_REASONS:
        # Only MISSING or INACTIVE proves it gone: its state is unknown, and it may well be
        # DRAINING still (the error's note says so).
        raise EcsApiError(
            f"ECS reported container instance {watch.ref} in failures[] ({reason}) "
            f"{elapsed:.1f}s into the drain; its state is unknown",
            code=reason,
            operation="DescribeContainerInstances",
        )
    if instance is None or instance.status == "INACTIVE":
        raise ContainerInstanceNotFoundError(
            f"container instance {watch.ref} was deregistered by someone else {elapsed:.1f}s "
            "into the drain; ecs-safe did not deregister it, and any task still on it may "
            "have been orphaned",
            container_instances=[watch.ref],
            operation="DescribeContainerInstances",
        )
    if instance.status != "DRAINING":
        raise ClientException(
            f"container instance {watch.ref} is {instance.status} again: something else "
            f"changed it {elapsed:.1f}s into the drain. ecs-safe stops rather than fight over it",
            code=INTERRUPTED,
            operation="DescribeContainerInstances",
        )
    return instance


@dataclass
class _ClusterTasks:
    """What the poller remembers of one cluster's tasks between rounds."""

    # Task ARN -> the ID of its instance (a task never moves), for every task described.
    where: dict[str, str] = field(default_factory=dict)
    # Tasks seen STOPPED: never described again.
    stopped: set[str] = field(default_factory=set)
    # Pages the last cluster-wide listing took (both desired statuses), to price the next.
    listing_pages: int | None = None


class _Confirming:
    """One round's task describes for the instances it lists, each look delivered when whole.

    A task never moves, so the cluster's memory (`_ClusterTasks.where`) says which instance
    each listed task ARN is on, for every task described before (the pre-flight's included)
    or listed on its instance. The ARNs are described 100 a call, grouped by instance, and an
    instance's look is delivered once every batch holding one of its tasks is in. A listed
    ARN of unknown place may be on any instance: the batches holding one block every look
    until they are in. The judgement is the one a single describe of every task makes: an
    instance is judged only on the describes of every task that may be on it, a failed
    describe fails its instances (fail closed), STOPPED is final.
    """

    def __init__(
        self, wanted: list[tuple[Watch, ContainerInstance]], fresh: list[str], memory: _ClusterTasks
    ) -> None:
        self.memory = memory
        # Instance ID -> its waiters (two drains may watch one instance) and its description.
        self.pending: dict[str, list[tuple[Watch, ContainerInstance]]] = {}
        for watch, instance in wanted:
            self.pending.setdefault(watch.key, []).append((watch, instance))
        self.tasks: dict[str, list[Task]] = {key: [] for key in self.pending}
        where = memory.where
        unknown = [a for a in fresh if where.get(a) not in self.pending]
        grouped: dict[str, list[str]] = {key: [] for key in self.pending}
        for arn in fresh:
            home = where.get(arn)
            if home in grouped:
                grouped[home].append(arn)
        # Unknown first, then instance by instance: as few calls as one describe of them all.
        ordered = unknown + [arn for arns in grouped.values() for arn in arns]
        self.batches = [
            ordered[start : start + DESCRIBE_TASKS_BATCH]
            for start in range(0, len(ordered), DESCRIBE_TASKS_BATCH)
        ]
        strangers = set(unknown)
        self.blocking = {i for i, b in enumerate(self.batches) if strangers.intersection(b)}
        self.waits: dict[str, set[int]] = {key: set() for key in self.pending}
        for index, batch in enumerate(self.batches):
            for arn in batch:
                if arn not in strangers:
                    self.waits[where[arn]].add(index)

    def described(self, index: int, live: list[Task], stopped: set[str]) -> None:
        """Batch ``index`` answered: note its tasks, deliver the looks now whole."""
        memory = self.memory
        memory.stopped |= stopped
        for arn in stopped:
            memory.where.pop(arn, None)
        for task in live:
            arn = task.task_arn or ""
            remembered = memory.where.get(arn)
            home = instance_id_of(task.container_instance_arn or "")
            if home:
                memory.where[arn] = home
            homes = {h for h in (home, remembered) if h}
            if not homes:
                # A task whose describe failed (reason other than MISSING) and whose instance
                # is unknown: it keeps every candidate non-empty (fail closed). It was in a
                # blocking batch, so no look has gone yet.
                for tasks in self.tasks.values():
                    tasks.append(task)
                continue
            # Where it was remembered and where it is described, if they ever differed (a
            # task never moves, so they do not): each instance it may be on counts it.
            for key in homes:
                if key in self.tasks:
                    self.tasks[key].append(task)
        self._settled(index)

    def failed(self, index: int, exc: BaseException) -> None:
        """Batch ``index`` failed: fail every look still waiting on it (all, if blocking)."""
        if index in self.blocking:
            keys = list(self.pending)
        else:
            keys = [key for key in self.pending if index in self.waits[key]]
        _fail([w for key in keys for w, _ in self.pending.pop(key)], exc)
        self._settled(index)

    def _settled(self, index: int) -> None:
        self.blocking.discard(index)
        for waits in self.waits.values():
            waits.discard(index)
        self.deliver_ready()

    def deliver_ready(self) -> None:
        """Deliver every look whose tasks are all described (none while a stranger is not)."""
        if self.blocking:
            return
        for key in [k for k in self.pending if not self.waits[k]]:
            for watch, instance in self.pending.pop(key):
                watch.deliver(Look(instance, list(self.tasks[key]), listed=True))


class Poller:
    """The rounds of one client: every watched instance looked at together, to a budget.

    Args:
        calls: the client's call layer.
        read_per_s: the client's read rate (`RateLimits.read_per_s`; ``inf``: unpaced).
        share: the part of it the rounds may spend (0 < share <= 1).
        min_interval: the shortest time between two rounds (`MIN_POLL_INTERVAL`; a watch
            whose ``max_interval`` is shorter lowers it to that).
        clock: seconds, monotonic (injectable for tests).
        sleep: waits that many seconds (injectable for tests).
        events: the task-events loop (`ecs_safe._task_events.TaskEvents`) run beside the
            rounds while anything is watched; ``None``: rounds on time alone.
    """

    def __init__(
        self,
        calls: EcsCalls,
        *,
        read_per_s: float = math.inf,
        share: float = DEFAULT_POLL_SHARE,
        min_interval: float = MIN_POLL_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        events: TaskEvents | None = None,
    ) -> None:
        self.calls = calls
        self.budget = read_per_s * share
        self.min_interval = min_interval
        self.clock = clock
        self._sleep = sleep
        self._watches: dict[int, Watch] = {}
        self._clusters: dict[str | None, _ClusterTasks] = {}
        self._task: asyncio.Task[None] | None = None
        #: Rounds run and read calls made, for benchmarks and tests.
        self.rounds = 0
        self.reads = 0
        #: Instances looked at, summed over rounds (reads / looks: the cost of one look).
        self.looks = 0
        #: The task-events loop, if the client has a queue (see the module: it wakes rounds).
        self.events = events
        # Set by `wake`: the wait before the next round is cut short.
        self._woken = asyncio.Event()
        # The current run's events loop, while it runs (one per `_run`).
        self._listener: asyncio.Task[None] | None = None

    def stats(self) -> PollStats:
        """The rounds, reads and looks so far."""
        return PollStats(rounds=self.rounds, reads=self.reads, looks=self.looks)

    # -- watches ---------------------------------------------------------------------------

    def watch(
        self, ref: str, cluster: str | None, tasks: Sequence[Task], *, max_interval: float
    ) -> Watch:
        """Watch a DRAINING instance; ``tasks`` is what its pre-flight listed on it."""
        watch = Watch(self, ref, cluster, tasks, max_interval)
        self._watches[id(watch)] = watch
        memory = self._clusters.setdefault(cluster, _ClusterTasks())
        memory.where.update({t.task_arn: watch.key for t in tasks if t.task_arn})
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return watch

    def unwatch(self, watch: Watch) -> None:
        """Forget ``watch``; with none left, the round in flight is cut (its reads too)."""
        self._watches.pop(id(watch), None)
        if not self._watches:
            # Nothing draining: what was learnt of the clusters' tasks goes too (bounded memory).
            self._clusters.clear()
            if self._task is not None:
                self._task.cancel()
                self._task = None

    def close(self) -> None:
        """Stop the rounds (the client is closing): each waiter gets a `ClientStateError`."""
        for watch in list(self._watches.values()):
            watch.deliver(
                ClientStateError(
                    f"the client was closed while draining container instance {watch.ref}; "
                    "it is left DRAINING"
                )
            )
            watch.close()

    # -- rounds ----------------------------------------------------------------------------

    def interval(self, reads: int) -> float:
        """Seconds from the start of a round that cost ``reads`` to the start of the next.

        The floor while any watch is eager, the shortest ``max_interval`` while all are quiet
        (the module's two states); never less than the budget pays for, never more than that
        shortest ``max_interval``. While task events are `listening`, the events say when to
        look and these waits are the safety net for a lost or late one: the floor only for a
        watch not looked at yet, ``max_interval`` while one is eager (its tasks' STOPPED
        events are on their way), and `TASK_EVENTS_POLL_FACTOR` x ``max_interval`` while all
        are quiet, which is also the longest wait.
        """
        watches = self._watches.values()
        longest = min((w.max_interval for w in watches), default=self.min_interval)
        floor = min(self.min_interval, longest)
        eager = any(w.eager for w in watches)
        if self.listening:
            cap = longest * TASK_EVENTS_POLL_FACTOR
            fresh = any(w.last is None for w in watches)
            shortest = floor if fresh else longest if eager else cap
        else:
            cap = longest
            shortest = floor if eager else longest
        paid = self._paid(reads)
        return min(cap, max(shortest, paid))

    def _paid(self, reads: int) -> float:
        """Seconds the poller's share of the read rate takes to pay for ``reads``."""
        return reads / self.budget if self.budget > 0 else math.inf

    @property
    def listening(self) -> bool:
        """Whether task events can wake the rounds now: the loop runs and its receives work."""
        listener = self._listener
        return (
            self.events is not None
            and self.events.live
            and listener is not None
            and not listener.done()
        )

    def wake(self, container_instance: str | None = None) -> bool:
        """Cut the wait before the next round short: it runs at once, within the read budget.

        With ``container_instance`` (an ID or ARN), only if a watch is on that instance. Wakes
        before the next round starts are one round (a receive's events are debounced so); a
        wake during a round asks for another right after it (the round may have looked too
        early). A wake is a hint: the round judges as always.

        Returns:
            Whether it woke the poller (something is watched, and it is that instance).
        """
        if not self._watches:
            return False
        if container_instance is not None:
            key = instance_id_of(container_instance)
            if all(w.key != key for w in self._watches.values()):
                return False
        self._woken.set()
        return True

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # The events loop lives as long as this run: it stops when nothing is watched (this
        # task is cancelled) and when the client closes.
        listener = None if self.events is None else loop.create_task(self.events.listen(self))
        self._listener = listener
        try:
            while self._watches:
                # A wake from here on asks for the round after this one.
                self._woken.clear()
                started = self.clock()
                try:
                    reads = await self.round()
                except Exception as exc:  # a bug here must end the waits, not hang them
                    _fail(list(self._watches.values()), exc)
                    reads = 0
                if self._watches:
                    await self._pause(started, reads)
        finally:
            if listener is not None:
                listener.cancel()
            if self._listener is listener:
                self._listener = None

    async def _pause(self, started: float, reads: int) -> None:
        """Wait out `interval` from ``started``; a `wake` cuts it to what the budget pays."""
        interval = self.interval(reads)
        if not self._woken.is_set():
            wait = started + interval - self.clock()
            if wait <= 0:
                return
            sleeper = asyncio.ensure_future(self._sleep(wait))
            woken = asyncio.ensure_future(self._woken.wait())
            try:
                await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()
            if not self._woken.is_set():
                return
        # Woken: no sooner than the budget pays for the last round (an event storm on a busy
        # cluster must not spend more than the poller's share of the reads).
        paid = self._paid(reads)
        wait = started + min(interval, paid) - self.clock()
        if wait > 0:
            await self._sleep(wait)

    async def round(self) -> int:
        """Look at every watched instance once; deliver each look. Returns the reads made."""
        before = self.reads
        self.rounds += 1
        by_cluster: dict[str | None, list[Watch]] = {}
        for watch in list(self._watches.values()):
            by_cluster.setdefault(watch.cluster, []).append(watch)
        await asyncio.gather(*(self._cluster_round(c, ws) for c, ws in by_cluster.items()))
        return self.reads - before

    async def _cluster_round(self, cluster: str | None, watches: list[Watch]) -> None:

        async def describe(batch: list[Watch]) -> list[tuple[Watch, ContainerInstance]]:
            self.reads += 1
            try:
                answers = await self.calls.describe_instances([w.ref for w in batch], cluster)
            except Exception as exc:  # every waiter of the batch gets it (a bug included)
                _fail(batch, exc)
                return []
            out: list[tuple[Watch, ContainerInstance]] = []
            for watch in batch:
                try:
                    out.append((watch, _check_instance(watch, answers)))
                except EcsSafeError as exc:
                    watch.deliver(exc)
            return out

        # The batches go out together (the read bucket paces them), not a round trip each.
        batches = [
            watches[start : start + DESCRIBE_INSTANCES_BATCH]
            for start in range(0, len(watches), DESCRIBE_INSTANCES_BATCH)
        ]
        answered = await asyncio.gather(*(describe(batch) for batch in batches))
        described = [pair for pairs in answered for pair in pairs]
        self.looks += len(watches)
        wanted: list[tuple[Watch, ContainerInstance]] = []
        for watch, instance in described:
            if watch.wants_list(instance):
                wanted.append((watch, instance))
            else:
                # Nothing to confirm: its look goes now, not after the others' task describes.
                watch.deliver(Look(instance, watch.tasks, listed=False))
        await self._list(cluster, wanted)

    async def _list(
        self, cluster: str | None, wanted: list[tuple[Watch, ContainerInstance]]
    ) -> None:
        """List the tasks of ``wanted``'s instances, describe them, deliver each listed look.

        Each look goes out as soon as every task that may be on its instance is described
        (`_Confirming`): a fleet's first deregistrations wait on one DescribeTasks, not on
        the twenty that describe all its tasks. A failed listing fails every waiter; a failed
        describe, those whose tasks it held (every one still waiting, if it held a task of
        unknown place).
        """
        if not wanted:
            return
        memory = self._clusters.setdefault(cluster, _ClusterTasks())
        watches = [w for w, _ in wanted]
        try:
            arns = await self._listed_arns(cluster, watches, memory)
        except Exception as exc:  # only the waiters whose tasks were being listed
            _fail(watches, exc)
            return
        fresh = [a for a in dict.fromkeys(arns) if a not in memory.stopped]
        confirming = _Confirming(wanted, fresh, memory)
        self.reads += len(confirming.batches)
        confirming.deliver_ready()

        async def describe(index: int, batch: list[str]) -> None:
            try:
                answer = await self.calls.describe_tasks(batch, cluster)
            except Exception as exc:  # its waiters get it (a bug included), the others go on
                confirming.failed(index, exc)
                return
            confirming.described(index, *answer)

        # The batches go out together (the read bucket paces them); each look is delivered
        # when the last batch it waits for is in.
        await asyncio.gather(*(describe(i, b) for i, b in enumerate(confirming.batches)))

    async def _listed_arns(
        self, cluster: str | None, watches: list[Watch], memory: _ClusterTasks
    ) -> list[str]:
        """The task ARNs to look at for ``watches``: the cluster's listing or each instance's."""
        per_instance = 2 * len(watches)
        if (memory.listing_pages or 2) < per_instance:
            # The cluster's listing is tried within the pages the instances' listings would
            # take (`EcsCalls.cluster_task_arns`, the budget rule plans use too); a cluster
            # too big for that (many tasks on other instances) is left to them, so a round
            # never costs more than twice the per-instance price.
            listing = await self.calls.cluster_task_arns(
                cluster, budget=per_instance, describes=False
            )
            self.reads += listing.pages
            if listing.arns is None:
                memory.listing_pages = per_instance + 1
            else:
                memory.listing_pages = listing.pages
                # A task known to be on an instance not listed this round needs no describe.
                wanted = {w.key for w in watches}
                return [
                    a for a in listing.arns if a not in memory.where or memory.where[a] in wanted
                ]
        listings = await asyncio.gather(*(self._arns(cluster, w.ref, memory) for w in watches))
        return [arn for found in listings for arn in found]

    async def _arns(self, cluster: str | None, ref: str, memory: _ClusterTasks) -> list[str]:
        """Both of one instance's task listings (desired RUNNING and STOPPED), every page."""
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            found = await self.calls.task_arns(cluster, desired, container_instance=ref)
            self.reads += max(1, math.ceil(len(found) / 100))
            arns.extend(found)
        # Listed on this instance: where a task is, even if its describe fails.
        memory.where.update(dict.fromkeys(arns, instance_id_of(ref)))
        return arns


def _fail(watches: Iterable[Watch], exc: BaseException) -> None:
    many = list(watches)
    for watch in many:
        watch.deliver(exc if len(many) == 1 else _own_copy(exc))
