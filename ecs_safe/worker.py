"""The event worker: lifecycle actions, Spot interruptions and rebalance notices from SQS.

`EcsSafeClient.watch` (and ``ecs-safe watch --queue URL``) runs a `Worker`: it long-polls an
SQS queue that an EventBridge rule (or a lifecycle hook's SNS topic) feeds, and hands each
event to its path:

- **"EC2 Instance-terminate Lifecycle Action"**: the client's lifecycle handler
  (`EcsSafeClient.handle_lifecycle_action`, `ecs_safe.autoscaling`): drain, deregister,
  heartbeats, CompleteLifecycleAction CONTINUE after a verified deregistration.
- **"EC2 Spot Instance Interruption Warning"**: the fast path. The instances of the notices
  that arrive together are set DRAINING at once, in one UpdateContainerInstancesState call per
  10 instances of a cluster, before any other read. Then each is waited for (standalone tasks
  waited for or stopped, ``spot_standalone_tasks``) and deregistered without force, through
  the policy, only if it is empty before the two minutes end; the wait ends
  `SPOT_DEREGISTER_RESERVE` seconds before the notice does, never later.
- **"EC2 Instance Rebalance Recommendation"**: logged only by default (``rebalance="log"``):
  a recommendation is often never followed by an interruption, and draining on each one would
  churn a fleet's capacity for nothing; ``rebalance="drain"`` sets the instance DRAINING (the
  Spot fast path's cordon, without the deregistration: the instance may stay).

**Once, and deleted only after it is recorded.** Each event has keys: its EventBridge ``id``,
and the instance with the lifecycle token (a lifecycle action), or the instance (a Spot
notice: an instance is interrupted once). The worker's record, the `Ledger`, is written to the
client's audit log (``audit_log=``) as two records per event:

1. ``event_started`` (the keys, the event), before anything is done;
2. ``event_done`` (the keys, the outcome), after the event's path ended and *before* its
   message is deleted.

So a crash after ``event_done`` and before the delete leaves a message that comes back
(SQS redelivers it) and is recognised from the record as a duplicate: deleted, not acted on.
A crash between ``event_started`` and ``event_done`` leaves a started event: its redelivery
is a *resumed* handling (the outcome says ``resumed``) whose every step reads before it acts,
so nothing is done twice: an instance already DRAINING is not set DRAINING again, one already
deregistered is found gone, a lifecycle action already completed is verified, not resent
(`ecs_safe.autoscaling`). A worker started on the same audit log reads the record back
(`Ledger.from_audit_log`); without an audit log the record lives in memory, for the worker's
life only. Duplicates delivered to two workers at once are not recognised across workers
(their records are their own); the steps' reads still keep them from acting twice.

**In flight.** Each event holds its message: its visibility is extended every third of the
visibility timeout while the event is in flight, so no other worker takes it. At most
``concurrency`` events run at once, on ONE client: its rate limits pace all of them, its drain
poller looks at all their instances in shared rounds.

**Stopping** (SIGTERM, or `Worker.run`'s ``stop``): receiving stops at once (a long poll in
flight is abandoned: messages it may have taken come back after their visibility timeout);
the events in flight get ``grace_period`` seconds to finish, then they are cancelled and their
messages made visible again at once (ChangeMessageVisibility 0), so another worker takes them
and resumes them from the record.

The worker takes the client's `Gate` and `Poller`, the lifecycle handler as a callable and the
queue calls (`ecs_safe._aws_calls.QueueCalls`), never the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ecs_safe import _constants, _events, _targets
from ecs_safe import drain as _drain
from ecs_safe._batching import TurnBatcher
from ecs_safe._progress import ProgressCallback, report
from ecs_safe._validation import check_choice, check_positive_number, classify, instance_id_of
from ecs_safe.audit import AuditLog
from ecs_safe.autoscaling import LifecycleActionResult
from ecs_safe.errors import (
    ContainerInstanceNotFoundError,
    DrainTimeoutError,
    EcsSafeError,
    InvalidInputError,
    PolicyViolationError,
)
from ecs_safe.notices import (
    LifecycleActionNotice,
    Notice,
    NoticeError,
    RebalanceNotice,
    SpotInterruptionNotice,
    parse_notice,
)
from ecs_safe.policy import Decision

if TYPE_CHECKING:
    from ecs_safe._gate import Gate
    from ecs_safe._poller import Poller
    from ecs_safe.audit import AuditRun
    from ecs_safe.models import ContainerInstance, QueueMessage

__all__ = [
    "EVENT_DONE",
    "EVENT_STARTED",
    "EventKind",
    "EventOutcome",
    "EventStatus",
    "Ledger",
    "LifecycleHandler",
    "QueueClient",
    "Rebalance",
    "SpotStandaloneTasks",
    "WatchSummary",
    "Worker",
    "WorkerSettings",
]

#: The audit record kind written before an event is acted on.
EVENT_STARTED: Final = "event_started"
#: The audit record kind written once an event's path ended, before its message is deleted.
EVENT_DONE: Final = "event_done"

#: Which path an event took.
EventKind = Literal["lifecycle", "spot", "rebalance", "unknown"]
#: How an event ended for the worker (what `EventOutcome.status` says).
EventStatus = Literal["handled", "duplicate", "ignored", "failed", "retry", "handed_back"]
#: What the Spot path does with a task no service manages: wait for it (until the notice's
#: end) or stop it (StopTask: its containers get their stop signal now, not with the host).
SpotStandaloneTasks = Literal["wait", "stop"]
#: What a rebalance recommendation does: log it only, or set the instance DRAINING.
Rebalance = Literal["log", "drain"]

_SPOT_STANDALONE: Final[tuple[SpotStandaloneTasks, ...]] = ("wait", "stop")
_REBALANCE: Final[tuple[Rebalance, ...]] = ("log", "drain")
# The statuses whose message is deleted: the event is over, for good or for nothing.
_FINAL: Final = frozenset({"handled", "duplicate", "ignored", "failed"})


class EventOutcome(BaseModel):
    """What the worker did with one event (one SQS message, or one Lambda record)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    status: EventStatus
    """``handled``; ``duplicate`` (recognised from the record: nothing done); ``ignored`` (not
    an event ecs-safe acts on: a test notification, an instance in no cluster); ``failed``
    (for good: refused, bad input; the message is deleted); ``retry`` (failed in a way worth
    trying again: the message comes back after a delay); ``handed_back`` (cut by a stop or a
    time limit: made visible again for another worker)."""
    kind: EventKind
    """The event's path: ``lifecycle``, ``spot``, ``rebalance``, or ``unknown``."""
    action: str
    """What was done, in a word or two: ``deregistered``, ``left_draining``, ``drained``,
    ``logged``, ``continued``, ``none``, ... (the lifecycle handler's own for lifecycle events)."""
    detail: str
    """One sentence for a person."""
    instance_id: str | None = None
    """The EC2 instance the event is about."""
    event_id: str | None = None
    """The EventBridge event ID."""
    message_id: str | None = None
    """The SQS message ID (or the Lambda record's)."""
    container_instance_arn: str | None = None
    """The container instance acted on, when one was found."""
    cluster: str | None = None
    """Its cluster."""
    resumed: bool = False
    """An earlier handling of this event was interrupted (the record says it started and never
    ended): this one carried on from what the instance's state showed."""
    deleted: bool = False
    """The message was deleted (after the outcome was recorded)."""
    error_code: str | None = None
    """The typed error's code, for ``failed`` and ``retry``."""
    elapsed_s: float = 0.0
    """Seconds from the message's receipt to its outcome."""
    result: dict[str, Any] | None = Field(default=None)
    """The lifecycle handler's result (``LifecycleActionResult``, as JSON), for lifecycle events."""

    def to_event(self) -> dict[str, Any]:
        """The fields of the ``ecs_safe.worker.event`` log event (and of a JSON line)."""
        return self.model_dump(mode="json", exclude_none=True)


class WatchSummary(BaseModel):
    """What a `Worker.run` (`EcsSafeClient.watch`) did, counted by outcome."""

    model_config = ConfigDict(frozen=True)

    received: int = 0
    """Messages received."""
    handled: int = 0
    """Events acted on."""
    duplicates: int = 0
    """Events recognised as already handled."""
    ignored: int = 0
    """Events ecs-safe does not act on."""
    failed: int = 0
    """Events that failed for good (their messages deleted)."""
    retried: int = 0
    """Events that failed in a way worth retrying (their messages come back later)."""
    handed_back: int = 0
    """Events cut by the stop (their messages made visible again)."""
    stopped_by: str | None = None
    """Why the worker stopped: ``"stop"``, ``"max_events"``, or a signal's name."""


class QueueClient(Protocol):
    """The SQS calls the worker makes (`ecs_safe._aws_calls.QueueCalls`)."""

    async def receive(
        self,
        queue_url: str,
        *,
        max_messages: int = 10,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
    ) -> list[QueueMessage]:
        """ReceiveMessage (long poll)."""
        ...

    async def delete(self, queue_url: str, receipt_handle: str) -> None:
        """DeleteMessage."""
        ...

    async def extend_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """ChangeMessageVisibility (0: visible again at once)."""
        ...


#: The lifecycle path: `EcsSafeClient.handle_lifecycle_action` with the worker's options bound;
#: the flag says the event is resumed (an earlier handling was cut: take its drain over).
LifecycleHandler = Callable[[LifecycleActionNotice, bool], Awaitable[LifecycleActionResult]]


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """The knobs of a worker, validated once (`EcsSafeClient.watch`'s keyword arguments).

    Args:
        cluster: the cluster the instances are registered in; ``None``: found per instance
            over every cluster of the account and Region (`ecs_safe._targets.locate`).
        concurrency: events in flight at once.
        wait_seconds: ReceiveMessage's long-poll wait (1-20).
        visibility_timeout: seconds a received message stays invisible; extended while its
            event is in flight.
        grace_period: seconds in-flight events may take after a stop before they are handed
            back.
        retry_delay: seconds a message whose event failed retryably stays invisible.
        spot_standalone_tasks: ``"wait"`` or ``"stop"`` (`SpotStandaloneTasks`).
        rebalance: ``"log"`` or ``"drain"`` (`Rebalance`).
        max_events: stop after this many events ended (any status but ``handed_back``).
    """

    cluster: str | None = None
    concurrency: int = _constants.WORKER_CONCURRENCY
    wait_seconds: int = _constants.WORKER_WAIT_SECONDS
    visibility_timeout: int = _constants.WORKER_VISIBILITY_TIMEOUT
    grace_period: float = _constants.WORKER_GRACE_PERIOD
    retry_delay: int = _constants.WORKER_RETRY_DELAY
    spot_standalone_tasks: SpotStandaloneTasks = "wait"
    rebalance: Rebalance = "log"
    max_events: int | None = None

    def __post_init__(self) -> None:
        """Check every knob; a bad one raises `InvalidInputError` naming it."""
        for name, low, high in (
            ("concurrency", 1, 1000),
            ("wait_seconds", 0, 20),
            ("visibility_timeout", 1, 43_200),
            ("retry_delay", 0, 43_200),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInputError(
                    f"{name} must be an int from {low} to {high}, got {value!r}"
                )
        check_positive_number(self.grace_period, "grace_period", allow_zero=True)
        check_choice(self.spot_standalone_tasks, "spot_standalone_tasks", _SPOT_STANDALONE)
        check_choice(self.rebalance, "rebalance", _REBALANCE)
        if self.max_events is not None and (
            isinstance(self.max_events, bool)
            or not isinstance(self.max_events, int)
            or self.max_events < 1
        ):
            raise InvalidInputError(
                f"max_events must be an int >= 1 or None, got {self.max_events!r}"
            )


# ----------------------------------------------------------------------------- the record


def event_keys(notice: Notice) -> list[str]:
    """The keys that make two deliveries the same event (any key in common).

    The EventBridge event ID, and the notice's own `key`, the same whatever envelope carried
    it (an SNS-wrapped lifecycle notification has no EventBridge ID): the group, hook,
    instance and token of a lifecycle action; the instance (and action) of a Spot warning.
    """
    keys = [f"event:{notice.event_id}"] if notice.event_id else []
    keys.append(notice.key)
    return keys


class Ledger:
    """The worker's record of events: which were started and which ended, by key.

    Written through the client's audit run (``event_started`` and ``event_done`` records, each
    flushed before the call that wrote it returns), kept in memory for lookups, the oldest
    forgotten past `WORKER_LEDGER_KEYS`.

    Args:
        audit: the client's audit run; ``None``: the record is in memory only.
        history: earlier records to start from (`from_audit_log`).
    """

    def __init__(
        self, audit: AuditRun | None = None, history: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """Start from ``history`` (records of either kind; others are skipped)."""
        self._audit = audit
        self._keys: OrderedDict[str, str] = OrderedDict()  # key -> "started" | "done"
        #: The events in flight in this process, by key: a duplicate waits for the first to
        #: end (its future says whether it was recorded done). Shared by every worker of a
        #: client, so concurrent `EcsSafeClient.handle_event` calls see each other.
        self.in_flight: dict[str, asyncio.Future[bool]] = {}
        for record in history:
            kind = record.get("kind")
            if kind in (EVENT_STARTED, EVENT_DONE):
                self._remember(record.get("keys") or (), "done" if kind == EVENT_DONE else None)

    @classmethod
    def from_audit_log(cls, audit: AuditRun | None) -> Ledger:
        """A ledger writing to ``audit`` that starts from the records its log file holds.

        A log given as a stream (no file to read back) starts empty.
        """
        path = audit.log.path if audit is not None else None
        history: list[dict[str, Any]] = []
        if path is not None and path.exists():
            history = AuditLog.read(path)
        return cls(audit, history)

    def _remember(self, keys: Iterable[str], state: str | None) -> None:
        for key in keys:
            if not isinstance(key, str):
                continue
            # A start never overwrites an end (a resumed handling's start comes after one).
            self._keys[key] = state or self._keys.get(key) or "started"
            self._keys.move_to_end(key)
        while len(self._keys) > _constants.WORKER_LEDGER_KEYS:
            self._keys.popitem(last=False)

    def state(self, keys: Sequence[str]) -> Literal["new", "started", "done"]:
        """``done`` when any key ended, else ``started`` when any began, else ``new``."""
        found = {self._keys.get(key) for key in keys}
        if "done" in found:
            return "done"
        return "started" if "started" in found else "new"

    def started(self, keys: Sequence[str], **fields: Any) -> None:
        """Record that the event is about to be acted on (before anything is done)."""
        if self._audit is not None:
            self._audit.write(EVENT_STARTED, keys=list(keys), event=fields)
        self._remember(keys, None)

    def done(self, keys: Sequence[str], outcome: EventOutcome) -> None:
        """Record the event's outcome (before its message is deleted).

        Raises:
            EcsSafeError: the record could not be written (code ``AuditLog``); the message
                must then not be deleted.
        """
        if self._audit is not None:
            self._audit.write(EVENT_DONE, keys=list(keys), outcome=outcome.to_event())
        self._remember(keys, "done")


# ----------------------------------------------------------------------------- the Spot cordon


@dataclass(frozen=True, slots=True)
class _Cordoned:
    """One Spot (or rebalance) instance after the cordon: where it is, or why not."""

    ref: str | None = None
    cluster: str | None = None
    snapshot: ContainerInstance | None = None
    error: EcsSafeError | None = None


def _cluster_of(instance: ContainerInstance, default: str | None) -> str | None:
    arn = instance.container_instance_arn or ""
    try:
        return classify(arn).cluster_in_arn or default
    except InvalidInputError:
        return default


@dataclass
class _Cordon:
    """Sets the instances of the notices that arrive together DRAINING, in as few calls as can be.

    The notices that reach `drain` in the same turn of the event loop (a receive's batch, and
    any arriving meanwhile) are looked up together (one resolution for all) and set DRAINING
    together: one UpdateContainerInstancesState per 10 instances of a cluster
    (`ecs_safe.drain.start_draining`, which marks each as this run's first). Nothing is read
    before it but the lookup: DRAINING is always safe (it only stops placement), and two
    minutes are short.
    """

    gate: Gate
    cluster: str | None
    _batcher: TurnBatcher[str, _Cordoned] = field(init=False)

    def __post_init__(self) -> None:
        self._batcher = TurnBatcher(self._cordon_all)

    async def drain(self, ec2_id: str) -> _Cordoned:
        """Set the instance DRAINING (with the others of this turn); where it is, or why not."""
        # Shielded (TurnBatcher): a cancelled event never abandons the others' mutating call.
        return await self._batcher.submit(ec2_id)

    async def _cordon_all(self, ec2_ids: list[str]) -> list[_Cordoned]:
        found = await self._cordon(ec2_ids)
        return [found[ec2_id] for ec2_id in ec2_ids]

    async def _locate(self, ec2_ids: list[str]) -> dict[str, ContainerInstance]:
        calls = self.gate.calls
        if self.cluster is None:
            return await _targets.locate(calls, ec2_ids)
        resolution = await _targets.resolve(calls, ec2_ids, cluster=self.cluster)
        located: dict[str, ContainerInstance] = {}
        for item in resolution.items:
            instance = resolution.described.get(item.instance_id or "")
            if item.error is None and instance is not None:
                located[item.given] = instance
        return located

    async def _cordon(self, ec2_ids: list[str]) -> dict[str, _Cordoned]:
        unique = list(dict.fromkeys(ec2_ids))
        located = await self._locate(unique)
        where = self.cluster or "any cluster of the account and Region"
        found: dict[str, _Cordoned] = {
            ec2_id: _Cordoned(
                error=ContainerInstanceNotFoundError(
                    f"EC2 instance {ec2_id} is not registered as a container instance in {where}",
                    container_instances=[ec2_id],
                    code="ContainerInstanceNotFound",
                    operation="ListContainerInstances",
                )
            )
            for ec2_id in unique
            if ec2_id not in located
        }
        by_cluster: dict[str | None, list[tuple[str, _drain.DrainPlan]]] = {}
        for ec2_id, instance in located.items():
            cluster = _cluster_of(instance, self.cluster)
            ref = instance.container_instance_arn or ec2_id
            # No pre-flight: the plan is what the lookup saw, allowed (DRAINING is always
            # safe); the policy has its word at the deregistration.
            plan = _drain.DrainPlan(
                ref, cluster, instance, [], Decision.allow(), drainer=None, take_over=True
            )
            by_cluster.setdefault(cluster, []).append((ec2_id, plan))
        for cluster, members in by_cluster.items():
            errors = await _drain.start_draining(self.gate, [p for _, p in members], cluster)
            for ec2_id, plan in members:
                error = errors.get(instance_id_of(plan.ref))
                found[ec2_id] = (
                    _Cordoned(error=error)
                    if error is not None
                    else _Cordoned(plan.ref, cluster, plan.snapshot)
                )
        return found


# ----------------------------------------------------------------------------- the worker


def _utc(value: datetime | str | None) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return None


class Worker:
    """Handles notices: from a queue (`run`) or one at a time (`handle`, the Lambda's way).

    Args:
        gate: the client's decision gate (its calls, policy and audit).
        poller: the client's drain poller.
        lifecycle: the lifecycle path (`EcsSafeClient.handle_lifecycle_action`, bound).
        settings: the worker's knobs.
        ledger: the record of events (`Ledger.from_audit_log` of the client's audit run).
        queue: the SQS calls (only `run` needs them).
        on_outcome: called with each `EventOutcome` (sync or async), after it is recorded.
        clock: the wall clock the Spot deadline is judged by (a test's may differ).
    """

    def __init__(
        self,
        gate: Gate,
        poller: Poller,
        lifecycle: LifecycleHandler,
        settings: WorkerSettings,
        ledger: Ledger,
        *,
        queue: QueueClient | None = None,
        on_outcome: ProgressCallback | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Ready to `handle` notices, or to `run` on a queue (with ``queue``)."""
        self._gate = gate
        self._poller = poller
        self._lifecycle = lifecycle
        self.settings = settings
        self.ledger = ledger
        self._queue = queue
        self._on_outcome = on_outcome
        self._clock = clock
        self._cordon = _Cordon(gate, settings.cluster)
        self._counts: dict[str, int] = dict.fromkeys(
            ("received", "handled", "duplicate", "ignored", "failed", "retry", "handed_back"), 0
        )

    # -------------------------------------------------------------------- one event

    async def handle(
        self,
        body: str | Mapping[str, Any],
        *,
        message_id: str | None = None,
        deadline: float | None = None,
    ) -> EventOutcome:
        """Handle one notice (an SQS body, an EventBridge event): once, recorded.

        ``deadline`` (the event loop's clock) bounds the Spot path's wait too (a Lambda's
        limit). Never raises for the event itself: every end is an `EventOutcome`; a
        cancellation (a stop, a time limit) propagates, leaving the event started, not done.

        Raises:
            EcsSafeError: the outcome could not be recorded (code ``AuditLog``): the message
                must not be deleted.
        """
        started = time.monotonic()
        try:
            notice = parse_notice(body)
        except NoticeError as exc:
            # A test notification or an event of another kind is nothing to do; a malformed
            # body never parses however often it comes back: both are deleted, the malformed
            # one as a failure (logged as a warning).
            malformed = exc.kind == "malformed"
            outcome = EventOutcome(
                status="failed" if malformed else "ignored",
                kind="unknown",
                action="none",
                detail=f"{'malformed' if malformed else 'not an event ecs-safe acts on'}: {exc}",
                message_id=message_id,
                error_code=exc.code if malformed else None,
            )
            return await self._finish([], outcome, started)
        keys = event_keys(notice)
        base = _base_fields(notice, message_id)
        state = self.ledger.state(keys)
        if state == "done":
            return await self._finish(
                [],
                EventOutcome(
                    status="duplicate",
                    action="none",
                    detail="already handled (the worker's record says so): nothing done",
                    **base,
                ),
                started,
            )
        first = next((self.ledger.in_flight[k] for k in keys if k in self.ledger.in_flight), None)
        if first is not None:
            # The same event is in flight here: its outcome decides this one's.
            ended = await asyncio.shield(first)
            status: EventStatus = "duplicate" if ended else "handed_back"
            detail = (
                "a duplicate of an event handled at the same time: nothing done"
                if ended
                else "a duplicate of an event that did not end here: handed back with it"
            )
            return await self._finish(
                [], EventOutcome(status=status, action="none", detail=detail, **base), started
            )
        resumed = state == "started"
        mine: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        for key in keys:
            self.ledger.in_flight[key] = mine
        recorded = False
        try:
            self.ledger.started(keys, **base, resumed=resumed)
            outcome = await self._act(notice, base, resumed=resumed, deadline=deadline)
            if outcome.status in ("handled", "ignored", "failed"):
                outcome = await self._finish(keys, outcome, started)
                recorded = True
                return outcome
            return await self._finish([], outcome, started)
        finally:
            for key in keys:
                if self.ledger.in_flight.get(key) is mine:
                    del self.ledger.in_flight[key]
            if not mine.done():
                mine.set_result(recorded)

    async def _finish(
        self, keys: Sequence[str], outcome: EventOutcome, started: float
    ) -> EventOutcome:
        outcome = outcome.model_copy(update={"elapsed_s": round(time.monotonic() - started, 3)})
        if keys:
            self.ledger.done(keys, outcome)
        return outcome

    async def _act(
        self,
        notice: Notice,
        base: dict[str, Any],
        *,
        resumed: bool,
        deadline: float | None,
    ) -> EventOutcome:
        base = {**base, "resumed": resumed}
        try:
            if isinstance(notice, LifecycleActionNotice):
                return await self._lifecycle_action(notice, base, resumed=resumed)
            if isinstance(notice, SpotInterruptionNotice):
                return await self._spot(notice, base, deadline)
            return await self._rebalance(notice, base)
        except EcsSafeError as exc:
            retry = bool(getattr(exc, "retryable", False))
            return EventOutcome(
                status="retry" if retry else "failed",
                action="none",
                detail=f"{'failed, to be retried' if retry else 'failed'}: {exc}",
                error_code=exc.code,
                **base,
            )

    async def _lifecycle_action(
        self, notice: LifecycleActionNotice, base: dict[str, Any], *, resumed: bool
    ) -> EventOutcome:
        result = await self._lifecycle(notice, resumed)
        return EventOutcome(
            status="handled",
            action=result.outcome,
            detail=_lifecycle_detail(result),
            result={
                **result.model_dump(mode="json", exclude={"error", "notice", "deregistration"}),
                "error": str(result.error) if result.error is not None else None,
            },
            container_instance_arn=result.container_instance_arn,
            cluster=result.cluster,
            **base,
        )

    def _spot_deadline(self, notice: SpotInterruptionNotice) -> float:
        """The event loop's time at which the Spot wait must end (the reserve kept)."""
        loop = asyncio.get_running_loop()
        noticed = _utc(notice.time) or self._clock()
        ends = noticed + timedelta(seconds=_constants.SPOT_NOTICE_SECONDS)
        left = (ends - self._clock()).total_seconds() - _constants.SPOT_DEREGISTER_RESERVE
        return loop.time() + left

    async def _spot(
        self, notice: SpotInterruptionNotice, base: dict[str, Any], limit: float | None
    ) -> EventOutcome:
        notice_ends = self._spot_deadline(notice)
        # A caller's limit (a Lambda's) that comes first cuts the wait, not the event: then it
        # is handed back unfinished, for the next invocation to carry on with.
        cut_by_limit = limit is not None and limit < notice_ends
        deadline = min(notice_ends, limit) if limit is not None else notice_ends
        cordoned = await self._cordon.drain(notice.instance_id)
        if cordoned.error is not None or cordoned.ref is None:
            return _not_cordoned(cordoned, base)
        where = {"container_instance_arn": cordoned.ref, "cluster": cordoned.cluster}
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0 and cut_by_limit:
            return EventOutcome(
                status="handed_back",
                action="left_draining",
                detail="set DRAINING; no time was left before the limit: handed back",
                **base,
                **where,
            )
        if left <= 0:
            return EventOutcome(
                status="handled",
                action="left_draining",
                detail="set DRAINING; the notice's two minutes were over, so no wait and no "
                "deregistration: EC2 reclaims the instance",
                **base,
                **where,
            )
        standalone = self.settings.spot_standalone_tasks
        try:
            plan = await _drain.prepare(
                self._gate, cordoned.ref, cordoned.cluster, standalone_tasks=standalone,
                take_over=True,
            )  # fmt: skip
            options = _drain.DrainOptions(
                timeout=max(deadline - asyncio.get_running_loop().time(), 0.001),
                on_timeout="raise",
                standalone_tasks=standalone,
                take_over=True,
                require_room=False,
            )
            await _drain.wait_and_deregister(self._gate, self._poller, plan, options, None)
        except DrainTimeoutError as exc:
            left_tasks = len(exc.remaining_tasks)
            if cut_by_limit:
                return EventOutcome(
                    status="handed_back",
                    action="left_draining",
                    detail=f"set DRAINING; {left_tasks} task(s) were left when the time limit "
                    "came, before the notice's end: handed back to carry on",
                    **base,
                    **where,
                )
            return EventOutcome(
                status="handled",
                action="left_draining",
                detail=f"set DRAINING; {left_tasks} task(s) were left when the wait ended "
                "before the notice did: not deregistered, EC2 reclaims the instance",
                **base,
                **where,
            )
        except PolicyViolationError as exc:
            return EventOutcome(
                status="handled",
                action="left_draining",
                detail=f"set DRAINING; the policy refused the deregistration: {exc}",
                error_code=exc.code,
                **base,
                **where,
            )
        except ContainerInstanceNotFoundError:
            return EventOutcome(
                status="handled",
                action="gone",
                detail="set DRAINING; the instance left the cluster during the wait (terminated "
                "or deregistered by someone else)",
                **base,
                **where,
            )
        return EventOutcome(
            status="handled",
            action="deregistered",
            detail="set DRAINING at once, emptied and deregistered before the notice ended",
            **base,
            **where,
        )

    async def _rebalance(self, notice: RebalanceNotice, base: dict[str, Any]) -> EventOutcome:
        if self.settings.rebalance == "log":
            _events.logger.info(
                "ecs_safe.worker.rebalance", instance_id=notice.instance_id, action="logged"
            )
            return EventOutcome(
                status="handled",
                action="logged",
                detail="a rebalance recommendation: logged only (rebalance='log')",
                **base,
            )
        cordoned = await self._cordon.drain(notice.instance_id)
        if cordoned.error is not None or cordoned.ref is None:
            return _not_cordoned(cordoned, base)
        return EventOutcome(
            status="handled",
            action="drained",
            detail="a rebalance recommendation: set DRAINING (rebalance='drain'); left registered",
            container_instance_arn=cordoned.ref,
            cluster=cordoned.cluster,
            **base,
        )

    # -------------------------------------------------------------------- the queue

    async def run(self, queue_url: str, stop: asyncio.Event) -> WatchSummary:
        """Receive and handle events until ``stop`` is set (or ``max_events`` ended).

        Raises:
            InvalidInputError: the worker was made without queue calls.
            EcsApiError: a receive failed in a way retrying cannot mend (no such queue,
                access denied); the events in flight are handed back first.
        """
        queue = self._queue
        if queue is None:
            raise InvalidInputError("this worker has no queue calls: pass queue= to run it")
        settings = self.settings
        in_flight: set[asyncio.Task[EventOutcome]] = set()
        room = asyncio.Event()
        room.set()
        stopped_by = "stop"
        ended = 0

        def finished(task: asyncio.Task[EventOutcome]) -> None:
            nonlocal ended, stopped_by
            in_flight.discard(task)
            room.set()
            if task.cancelled() or task.exception() is not None:
                return
            if task.result().status != "handed_back":
                ended += 1
                if settings.max_events is not None and ended >= settings.max_events:
                    stopped_by = "max_events"
                    stop.set()

        _events.logger.info(
            "ecs_safe.worker.started",
            queue_url=queue_url,
            cluster=settings.cluster,
            concurrency=settings.concurrency,
        )
        try:
            while not stop.is_set():
                free = settings.concurrency - len(in_flight)
                if free <= 0:
                    room.clear()
                    await _first(room.wait(), stop.wait())
                    continue
                try:
                    messages = await _first(
                        queue.receive(
                            queue_url,
                            max_messages=min(free, _constants.RECEIVE_BATCH),
                            wait_seconds=settings.wait_seconds,
                            visibility_timeout=settings.visibility_timeout,
                        ),
                        stop.wait(),
                    )
                except EcsSafeError as exc:
                    if not getattr(exc, "retryable", False):
                        raise
                    _events.logger.warning(
                        "ecs_safe.worker.receive_failed", queue_url=queue_url, error_code=exc.code
                    )
                    await _first(asyncio.sleep(_constants.WORKER_RECEIVE_BACKOFF), stop.wait())
                    continue
                if not isinstance(messages, list):
                    break  # stopped while receiving
                self._counts["received"] += len(messages)
                for message in messages:
                    task = asyncio.create_task(self._message(queue, queue_url, message))
                    in_flight.add(task)
                    task.add_done_callback(finished)
        except asyncio.CancelledError:
            # Cancelled rather than stopped: no grace, hand everything back at once.
            await self._wind_down(in_flight, 0)
            raise
        finally:
            await self._wind_down(in_flight, settings.grace_period)
        summary = self.summary(stopped_by)
        _events.logger.info("ecs_safe.worker.stopped", **summary.model_dump())
        return summary

    def summary(self, stopped_by: str | None = None) -> WatchSummary:
        """The counts so far."""
        counts = self._counts
        return WatchSummary(
            received=counts["received"],
            handled=counts["handled"],
            duplicates=counts["duplicate"],
            ignored=counts["ignored"],
            failed=counts["failed"],
            retried=counts["retry"],
            handed_back=counts["handed_back"],
            stopped_by=stopped_by,
        )

    async def _wind_down(self, in_flight: set[asyncio.Task[EventOutcome]], grace: float) -> None:
        """Let the events in flight finish within ``grace`` seconds, then hand them back."""
        if not in_flight:
            return
        _events.logger.info(
            "ecs_safe.worker.stopping", in_flight=len(in_flight), grace_period_s=grace
        )
        tasks = set(in_flight)
        pending = tasks
        if grace > 0:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()  # each hands its message back as it ends (`_message`)
        # Shielded from a second cancellation: the hand-backs must be sent.
        await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))

    async def _message(
        self, queue: QueueClient, queue_url: str, message: QueueMessage
    ) -> EventOutcome:
        """One message: kept invisible while in flight, deleted once its outcome is recorded."""
        keep = asyncio.create_task(self._keep_invisible(queue, queue_url, message))
        try:
            outcome = await self.handle(message.body, message_id=message.message_id)
        except asyncio.CancelledError:
            keep.cancel()
            await self._hand_back(queue, queue_url, message, 0)
            outcome = EventOutcome(
                status="handed_back",
                kind="unknown",
                action="none",
                detail="cut by the stop: made visible again for another worker (which resumes "
                "it from the record)",
                message_id=message.message_id,
            )
            await self.announce(outcome)
            return outcome
        except Exception as exc:
            # The outcome could not be recorded (or a bug broke the handling): not deleted,
            # so it comes back, and its redelivery resumes it from the record.
            keep.cancel()
            _events.logger.error(
                "ecs_safe.worker.record_failed",
                message_id=message.message_id,
                error_code=getattr(exc, "code", None) or type(exc).__name__,
                error=str(exc),
            )
            await self._hand_back(queue, queue_url, message, self.settings.retry_delay)
            outcome = EventOutcome(
                status="retry",
                kind="unknown",
                action="none",
                detail=f"the outcome could not be recorded, so the message was kept: {exc}",
                message_id=message.message_id,
                error_code=getattr(exc, "code", None) or type(exc).__name__,
            )
            await self.announce(outcome)
            return outcome
        finally:
            keep.cancel()
        if outcome.status in _FINAL:
            outcome = outcome.model_copy(
                update={"deleted": await self._delete(queue, queue_url, message)}
            )
        else:
            delay = self.settings.retry_delay if outcome.status == "retry" else 0
            await self._hand_back(queue, queue_url, message, delay)
        await self.announce(outcome)
        return outcome

    async def announce(self, outcome: EventOutcome) -> None:
        """Count ``outcome``, log it (``ecs_safe.worker.event``) and tell ``on_outcome``."""
        self._counts[outcome.status] += 1
        level = "warning" if outcome.status in ("failed", "retry") else "info"
        # The callback gets the outcome's fields (`EventOutcome.model_validate` rebuilds it).
        await report(self._on_outcome, "ecs_safe.worker.event", level=level, **outcome.to_event())

    async def _delete(self, queue: QueueClient, queue_url: str, message: QueueMessage) -> bool:
        try:
            await queue.delete(queue_url, message.receipt_handle)
        except EcsSafeError as exc:
            # Recorded already: when it comes back, the record makes it a duplicate.
            _events.logger.warning(
                "ecs_safe.worker.delete_failed", message_id=message.message_id, error_code=exc.code
            )
            return False
        return True

    async def _hand_back(
        self, queue: QueueClient, queue_url: str, message: QueueMessage, seconds: int
    ) -> None:
        try:
            await queue.extend_visibility(queue_url, message.receipt_handle, seconds)
        except EcsSafeError as exc:
            # It comes back anyway, when its visibility timeout runs out.
            _events.logger.warning(
                "ecs_safe.worker.hand_back_failed",
                message_id=message.message_id,
                error_code=exc.code,
            )

    async def _keep_invisible(
        self, queue: QueueClient, queue_url: str, message: QueueMessage
    ) -> None:
        timeout = self.settings.visibility_timeout
        while True:
            await asyncio.sleep(timeout / 3)
            try:
                await queue.extend_visibility(queue_url, message.receipt_handle, timeout)
            except EcsSafeError as exc:
                _events.logger.warning(
                    "ecs_safe.worker.extend_failed",
                    message_id=message.message_id,
                    error_code=exc.code,
                )


def _base_fields(notice: Notice, message_id: str | None) -> dict[str, Any]:
    kind: EventKind = (
        "lifecycle"
        if isinstance(notice, LifecycleActionNotice)
        else "spot"
        if isinstance(notice, SpotInterruptionNotice)
        else "rebalance"
    )
    return {
        "kind": kind,
        "instance_id": notice.instance_id,
        "event_id": notice.event_id,
        "message_id": message_id,
    }


def _lifecycle_detail(result: LifecycleActionResult) -> str:
    """One sentence for what the lifecycle handler did."""
    verified = " (verified after a lost response)" if result.completion_verified else ""
    sent = f"{result.completed} sent{verified}" if result.completed else "nothing sent"
    beats = f"; {result.heartbeats} heartbeat(s)" if result.heartbeats else ""
    why = f": {result.alert}" if result.alert else ""
    return {
        "deregistered": f"drained and deregistered (verified); {sent}{beats}",
        "not_registered": f"not a container instance in any cluster; {sent} at once",
        "continued": f"the drain could not finish{why}; {sent} (on_failure='continue'){beats}",
        "hold_expired": f"held in Terminating:Wait until {result.hold_deadline}, then {sent}"
        f"{why}{beats}",
        "action_ended": "the lifecycle action was over before the handler finished (a "
        "duplicate, another handler, the hook's timeout)",
    }.get(str(result.outcome), f"{result.outcome}; {sent}{beats}")


def _not_cordoned(cordoned: _Cordoned, base: dict[str, Any]) -> EventOutcome:
    error = cordoned.error
    if isinstance(error, ContainerInstanceNotFoundError):
        return EventOutcome(
            status="ignored",
            action="none",
            detail=f"not a container instance: {error}",
            error_code=error.code,
            **base,
        )
    retry = bool(getattr(error, "retryable", False))
    return EventOutcome(
        status="retry" if retry else "failed",
        action="none",
        detail=f"could not be set DRAINING: {error}",
        error_code=getattr(error, "code", None),
        **base,
    )


async def _first(work: Awaitable[Any], stop: Awaitable[Any]) -> Any:
    """``work``'s result, or ``None`` when ``stop`` ends first (``work`` is then cancelled)."""
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(stop)
    try:
        await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_task.cancel()
        if not work_task.done():
            work_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work_task
    if work_task.cancelled():
        return None
    return work_task.result()
