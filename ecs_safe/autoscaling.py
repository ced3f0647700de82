"""The terminate lifecycle hook's handler: drain, deregister, verify, then CONTINUE.

An Auto Scaling group with an ``autoscaling:EC2_INSTANCE_TERMINATING`` hook keeps each instance
it lets go in ``Terminating:Wait`` until the hook's handler completes the action, or the hook's
HeartbeatTimeout passes. `handle_lifecycle_action` is that handler
(`EcsSafeClient.handle_lifecycle_action` on validated arguments):

1. Read the hook (DescribeLifecycleHooks): its HeartbeatTimeout and its global timeout, and
   check the instance is still in ``Terminating:Wait`` (DescribeAutoScalingInstances); an
   action that is over (a redelivered event, another handler, the timeout) is left alone.
2. From now until the action is completed, send RecordLifecycleActionHeartbeat every
   `HEARTBEAT_FRACTION` of the HeartbeatTimeout (a third: two heartbeats may fail, and be
   retried, before the hook would time out), never past the global limit.
3. Find the container instance: in the configured cluster, or in any cluster of the account
   and Region (`ecs_safe._targets.locate`). None: nothing to drain, CONTINUE at once.
4. Drain and deregister it through the same workflow and policy as `drain_and_deregister`
   (`ecs_safe.drain`), with the drain's deadline bounded by the global limit, then VERIFY the
   deregistration by a describe (the instance INACTIVE or gone), then CompleteLifecycleAction
   CONTINUE. The instance is terminated only after it was deregistered empty.
5. When the drain cannot finish (the policy refused, e.g. a standalone task; it timed out;
   a call failed after retries), an alert is raised (the ``ecs_safe.lifecycle.alert`` log
   event, and the result's ``alert``), then, as the caller chose:

   - ``on_failure="hold"``: keep the instance in ``Terminating:Wait`` (heartbeats go on) and
     try the drain again every `HOLD_RETRY_INTERVAL` (at most every heartbeat interval) until
     it succeeds (someone stopped the task: CONTINUE as above) or the hold's deadline, bounded
     by the global limit, passes: then CompleteLifecycleAction ABANDON (for a terminate hook
     it too ends in termination, but said, logged and recorded, never a silent timeout);
   - ``on_failure="continue"``: CONTINUE at once; the instance goes with what is left on it.

A lost CompleteLifecycleAction response is verified by a read in the call layer
(`ecs_safe._aws_calls.AutoScalingCalls`), never resent blind. Time is the injectable `Clock`'s
(the event loop's by default), so tests drive the heartbeats without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ecs_safe import _constants, _events, _targets
from ecs_safe import drain as _drain
from ecs_safe._validation import INSTANCE_ARN_RE, instance_id_of
from ecs_safe.errors import ContainerInstanceNotFoundError, EcsApiError, EcsSafeError
from ecs_safe.notices import LifecycleActionNotice
from ecs_safe.results import DeregistrationResult

if TYPE_CHECKING:
    from ecs_safe._aws_calls import AutoScalingCalls
    from ecs_safe._gate import Gate
    from ecs_safe._poller import Poller
    from ecs_safe._progress import ProgressCallback
    from ecs_safe.models import LifecycleHook

__all__ = [
    "HEARTBEAT_FRACTION",
    "HOLD_RETRY_INTERVAL",
    "Clock",
    "LifecycleActionResult",
    "LifecycleOutcome",
    "LifecycleSettings",
    "LoopClock",
    "OnFailure",
    "handle_lifecycle_action",
]

#: The part of the hook's HeartbeatTimeout between two heartbeats (`_constants`).
HEARTBEAT_FRACTION: Final = _constants.HEARTBEAT_FRACTION
#: The longest wait between two drain attempts while holding (`_constants`).
HOLD_RETRY_INTERVAL: Final = _constants.HOLD_RETRY_INTERVAL
#: What the handler does when the drain cannot finish.
OnFailure = _constants.LifecycleOnFailure
#: How a lifecycle action was handled (`LifecycleActionResult.outcome`).
LifecycleOutcome = Literal[
    "deregistered", "not_registered", "continued", "hold_expired", "action_ended"
]

_WAITING: Final = "Terminating:Wait"


class Clock(Protocol):
    """The handler's time: what it is now, and a way to wait.

    The default (`LoopClock`) is the wall clock and the event loop's ``asyncio.sleep``; tests
    give a clock they move themselves, so that no heartbeat depends on the machine's speed.
    """

    def now(self) -> datetime:
        """The current time, timezone-aware (compared with the notice's time)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (0 or more)."""
        ...


class LoopClock:
    """The real `Clock`: UTC wall time, and the running event loop's ``asyncio.sleep``."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)`` on the running loop."""
        await asyncio.sleep(max(seconds, 0.0))


@dataclass(frozen=True, slots=True)
class LifecycleSettings:
    """The handler's choices, validated by the client.

    Args:
        cluster: The cluster to find the instance in; ``None`` looks in every cluster.
        on_failure: ``"hold"`` or ``"continue"`` (see the module's docstring).
        hold_timeout: How long, in seconds, ``"hold"`` keeps the instance once the drain
            failed; ``None``: until just before the hook's global limit.
        drain: The drain's options (its ``timeout`` is bounded by the global limit).
        clock: Where time comes from.
    """

    cluster: str | None = None
    on_failure: OnFailure = "hold"
    hold_timeout: float | None = None
    drain: _drain.DrainOptions = field(default_factory=_drain.DrainOptions)
    clock: Clock = field(default_factory=LoopClock)


class LifecycleActionResult(BaseModel):
    """What `EcsSafeClient.handle_lifecycle_action` did with one terminate lifecycle action."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    notice: LifecycleActionNotice = Field(description="The lifecycle action handled.")
    outcome: LifecycleOutcome = Field(
        description='"deregistered" (drained, deregistered, verified, CONTINUE), '
        '"not_registered" (in no cluster: CONTINUE at once), "continued" (the drain failed '
        'and on_failure="continue" sent CONTINUE), "hold_expired" (held until the deadline, '
        'then ABANDON) or "action_ended" (the action was over before the handler finished: '
        "a duplicate, another handler, the hook's timeout)."
    )
    cluster: str | None = Field(default=None, description="The cluster the instance was in.")
    container_instance_arn: str | None = Field(
        default=None, description="The container instance, when one was found."
    )
    deregistration: DeregistrationResult | None = Field(
        default=None, description="The deregistration's result, when it was deregistered."
    )
    deregistered: bool = Field(
        default=False,
        description="True when a describe after the deregistration found it INACTIVE or gone.",
    )
    completed: Literal["CONTINUE", "ABANDON"] | None = Field(
        default=None, description="The result CompleteLifecycleAction was sent with, if any."
    )
    completion_verified: bool = Field(
        default=False,
        description="True when CompleteLifecycleAction's response was lost and a read proved "
        "the instance out of Terminating:Wait.",
    )
    heartbeats: int = Field(default=0, description="RecordLifecycleActionHeartbeat calls made.")
    heartbeat_timeout: float = Field(description="The hook's HeartbeatTimeout, in seconds.")
    heartbeat_interval: float = Field(description="Seconds between two heartbeats.")
    global_deadline: datetime = Field(
        description="The hook's global limit: no heartbeat extends the action past it."
    )
    held: bool = Field(default=False, description='True when on_failure="hold" held it.')
    hold_deadline: datetime | None = Field(
        default=None, description="Until when it was (to be) held, when it was."
    )
    alert: str | None = Field(
        default=None,
        description="Why the drain could not finish, as in the ecs_safe.lifecycle.alert event.",
    )
    error: EcsSafeError | None = Field(
        default=None,
        description="The drain's last failure, when it failed (also when a later attempt "
        "of a hold went through: it is why the instance was held).",
    )
    attempts: int = Field(default=0, description="Drain attempts made.")
    notes: list[str] = Field(default_factory=list, description="What else is worth saying.")


# ----------------------------------------------------------------------------- heartbeats


@dataclass
class _Heartbeats:
    """RecordLifecycleActionHeartbeat every ``interval`` from ``since``, up to the limit."""

    autoscaling: AutoScalingCalls
    notice: LifecycleActionNotice
    clock: Clock
    interval: float
    since: datetime
    limit: datetime
    sent: int = 0
    ended: bool = False
    """Set when Auto Scaling said the action is over (a heartbeat was refused)."""
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        """End the heartbeats (before the completion: none may race it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        last = self.since
        while True:
            due = last + timedelta(seconds=self.interval)
            if due >= self.limit:
                return  # no heartbeat can extend the action past its global limit
            await self.clock.sleep((due - self.clock.now()).total_seconds())
            try:
                await self.autoscaling.record_heartbeat(
                    group=self.notice.group,
                    hook=self.notice.hook,
                    instance_id=self.notice.instance_id,
                    token=self.notice.token,
                )
            except EcsSafeError as exc:
                # Retried already; the next one comes well before the hook's timeout.
                _events.logger.warning(
                    "ecs_safe.lifecycle.heartbeat_failed", **_fields(self.notice), error=str(exc)
                )
                if await self._over():
                    self.ended = True
                    return
            else:
                self.sent += 1
                _events.logger.debug(
                    "ecs_safe.lifecycle.heartbeat", **_fields(self.notice), heartbeats=self.sent
                )
            last = self.clock.now()

    async def _over(self) -> bool:
        """Whether a describe shows the action over; a describe that fails proves nothing."""
        try:
            return not await _waiting(self.autoscaling, self.notice)
        except EcsSafeError:
            return False


# ----------------------------------------------------------------------------- the handler


@dataclass
class _Run:
    gate: Gate
    autoscaling: AutoScalingCalls
    poller: Poller
    notice: LifecycleActionNotice
    settings: LifecycleSettings
    progress: ProgressCallback | None
    hook: LifecycleHook
    beats: _Heartbeats
    global_deadline: datetime
    #: The latest moment the handler itself may act: one heartbeat interval before the limit.
    last_call: datetime
    cluster: str | None = None
    arn: str | None = None
    attempts: int = 0
    notes: list[str] = field(default_factory=list)

    def result(self, outcome: LifecycleOutcome, **fields: object) -> LifecycleActionResult:
        return LifecycleActionResult.model_validate(
            {
                "notice": self.notice,
                "outcome": outcome,
                "cluster": self.cluster,
                "container_instance_arn": self.arn,
                "heartbeats": self.beats.sent,
                "heartbeat_timeout": float(self.hook.heartbeat_timeout),
                "heartbeat_interval": self.beats.interval,
                "global_deadline": self.global_deadline,
                "attempts": self.attempts,
                "notes": list(self.notes),
                **fields,
            }
        )

    def remaining(self, until: datetime) -> float:
        return (until - self.settings.clock.now()).total_seconds()

    async def locate(self) -> bool:
        """Find the container instance; False when it is in no cluster (nothing to drain)."""
        ec2_id = self.notice.instance_id
        if self.settings.cluster is not None:
            resolution = await _targets.resolve(
                self.gate.calls, [ec2_id], cluster=self.settings.cluster
            )
            (item,) = resolution.items
            if item.ref is None:
                return False
            self.cluster, self.arn = self.settings.cluster, item.ref
        else:
            found = (await _targets.locate(self.gate.calls, [ec2_id])).get(ec2_id)
            if found is None or found.status not in ("ACTIVE", "DRAINING"):
                return False
            self.arn = found.container_instance_arn
            # Today's (long) ARNs name the cluster: the one the instance was found in.
            match = INSTANCE_ARN_RE.match(self.arn or "")
            self.cluster = match.group("cluster") if match else None
        return self.arn is not None

    async def attempt(self, until: datetime) -> DeregistrationResult | EcsSafeError | None:
        """Locate (first time), drain and deregister, verify; the failure is returned.

        Returns the verified deregistration, ``None`` when no container instance is
        registered (any more: someone else deregistered it), or the error that stopped it.
        The drain's deadline is bounded by ``until``.
        """
        self.attempts += 1
        try:
            if self.arn is None and not await self.locate():
                return None
            assert self.arn is not None
            left = self.remaining(until)
            if left <= 0:
                return _OutOfTime(f"no time is left for a drain before {until.isoformat()}")
            options = replace(self.settings.drain, timeout=min(self.settings.drain.timeout, left))
            try:
                result = await _drain.drain_and_deregister(
                    self.gate, self.arn, self.cluster, options, self.progress, poller=self.poller
                )
            except ContainerInstanceNotFoundError as exc:
                if not await self.gone():
                    raise
                self.notes.append(f"{self.arn} was deregistered by someone else ({exc})")
                return None
            if not await self.gone():
                # Deregistered, yet still described live: never let it be terminated on a claim.
                return _NotVerified(
                    f"container instance {self.arn} was deregistered, but a describe still "
                    "finds it live"
                )
            return result
        except EcsSafeError as exc:
            return exc

    async def gone(self) -> bool:
        """Whether a describe finds the container instance INACTIVE or not at all."""
        assert self.arn is not None
        answers = await self.gate.calls.describe_instances([self.arn], self.cluster)
        found = answers.found.get(instance_id_of(self.arn))
        return found is None or found.status == "INACTIVE"

    async def complete(
        self, result: Literal["CONTINUE", "ABANDON"]
    ) -> tuple[Literal["CONTINUE", "ABANDON"] | None, bool]:
        """CompleteLifecycleAction; (the result sent, or None if the action was over; verified)."""
        await self.beats.stop()
        if self.beats.ended:
            return None, False
        try:
            verified = await self.autoscaling.complete_lifecycle_action(
                group=self.notice.group,
                hook=self.notice.hook,
                instance_id=self.notice.instance_id,
                result=result,
                token=self.notice.token,
            )
        except EcsApiError as exc:
            if await _waiting(self.autoscaling, self.notice):
                raise
            self.notes.append(f"the lifecycle action was already over when completed ({exc})")
            return None, False
        _events.logger.info(
            "ecs_safe.lifecycle.completed",
            **_fields(self.notice),
            result=result,
            verified=verified,
            heartbeats=self.beats.sent,
        )
        return result, verified

    def alert(self, error: EcsSafeError, *, hold_deadline: datetime | None) -> str:
        choice = self.settings.on_failure
        then = (
            f"holding it in Terminating:Wait until {hold_deadline.isoformat()} and retrying"
            if hold_deadline is not None
            else "sending CONTINUE anyway: the instance is terminated with what is left on it"
        )
        message = (
            f"instance {self.notice.instance_id} of Auto Scaling group {self.notice.group} "
            f"could not be drained and deregistered ({type(error).__name__}: {error}); {then}"
        )
        _events.logger.error(
            "ecs_safe.lifecycle.alert",
            **_fields(self.notice),
            cluster=self.cluster,
            container_instance_arn=self.arn,
            on_failure=choice,
            hold_deadline=hold_deadline.isoformat() if hold_deadline else None,
            error=str(error),
            error_code=error.code,
            message=message,
        )
        return message

    async def handle(self) -> LifecycleActionResult:
        attempt = await self.attempt(self.last_call)
        if attempt is None and self.arn is None:
            where = f"cluster {self.settings.cluster}" if self.settings.cluster else "any cluster"
            self.notes.append(
                f"EC2 instance {self.notice.instance_id} is not registered in {where}: "
                "nothing to drain"
            )
            return await self.finish("not_registered", "CONTINUE")
        if not isinstance(attempt, EcsSafeError):
            return await self.deregistered(attempt)
        error: EcsSafeError = attempt
        if self.settings.on_failure == "continue":
            alert = self.alert(error, hold_deadline=None)
            return await self.finish("continued", "CONTINUE", alert=alert, error=error)
        hold = self.last_call
        if self.settings.hold_timeout is not None:
            asked = self.settings.clock.now() + timedelta(seconds=self.settings.hold_timeout)
            hold = min(hold, asked)
        held: dict[str, object] = {
            "held": True,
            "hold_deadline": hold,
            "alert": self.alert(error, hold_deadline=hold),
        }
        pause = min(self.beats.interval, HOLD_RETRY_INTERVAL)
        while not self.beats.ended and (left := self.remaining(hold)) > 0:
            await self.settings.clock.sleep(min(pause, left))
            if self.beats.ended or self.remaining(hold) <= 0:
                break  # at the deadline no drain has time left to finish
            attempt = await self.attempt(hold)
            if not isinstance(attempt, EcsSafeError):
                # The error stays in the result: it is why the instance was held.
                return await self.deregistered(attempt, error=error, **held)
            error = attempt
        if self.beats.ended:
            return self.result("action_ended", error=error, **held)
        _events.logger.error(
            "ecs_safe.lifecycle.hold_expired",
            **_fields(self.notice),
            container_instance_arn=self.arn,
            attempts=self.attempts,
            error=str(error),
        )
        self.notes.append(f"held until {hold.isoformat()}; the drain never finished")
        return await self.finish("hold_expired", "ABANDON", error=error, **held)

    async def deregistered(
        self, deregistration: DeregistrationResult | None, **fields: object
    ) -> LifecycleActionResult:
        return await self.finish(
            "deregistered", "CONTINUE", deregistration=deregistration, deregistered=True, **fields
        )

    async def finish(
        self,
        outcome: LifecycleOutcome,
        result: Literal["CONTINUE", "ABANDON"],
        **fields: object,
    ) -> LifecycleActionResult:
        sent, verified = await self.complete(result)
        if sent is None:
            outcome = "action_ended"
        return self.result(outcome, completed=sent, completion_verified=verified, **fields)


class _OutOfTime(EcsSafeError):
    """The hook's global limit leaves no time for another drain attempt."""

    code = "LifecycleOutOfTime"


class _NotVerified(EcsSafeError):
    """A deregistration that a describe does not confirm."""

    code = "DeregistrationNotVerified"


def _fields(notice: LifecycleActionNotice) -> dict[str, object]:
    return {
        "group": notice.group,
        "hook": notice.hook,
        "ec2_instance_id": notice.instance_id,
        "token": notice.token,
    }


async def _waiting(autoscaling: AutoScalingCalls, notice: LifecycleActionNotice) -> bool:
    """Whether the instance is still in ``Terminating:Wait`` (DescribeAutoScalingInstances)."""
    instances = await autoscaling.describe_instances([notice.instance_id])
    return any(
        i.instance_id == notice.instance_id and i.lifecycle_state == _WAITING for i in instances
    )


async def _hook(autoscaling: AutoScalingCalls, notice: LifecycleActionNotice) -> LifecycleHook:
    hooks = await autoscaling.describe_lifecycle_hooks(notice.group)
    for hook in hooks:
        if hook.name == notice.hook:
            return hook
    names = ", ".join(h.name for h in hooks) or "none"
    msg = (
        f"Auto Scaling group {notice.group} has no lifecycle hook {notice.hook!r} (it has: "
        f"{names}); was the hook deleted?"
    )
    raise _HookNotFound(msg)


class _HookNotFound(EcsSafeError):
    code = "LifecycleHookNotFound"


async def handle_lifecycle_action(
    gate: Gate,
    autoscaling: AutoScalingCalls,
    poller: Poller,
    notice: LifecycleActionNotice,
    settings: LifecycleSettings,
    *,
    progress: ProgressCallback | None = None,
) -> LifecycleActionResult:
    """Handle one terminate lifecycle action (see the module's docstring for the steps).

    Raises:
        EcsSafeError: the hook could not be read, or CompleteLifecycleAction failed while
            the instance is still waiting (after retries). A failed drain does not raise: it
            is the result's ``error`` (and ``alert``).
    """
    clock = settings.clock
    now = clock.now()
    hook = await _hook(autoscaling, notice)
    heartbeat_timeout = float(hook.heartbeat_timeout)
    began = min(notice.time or now, now)
    global_deadline = began + timedelta(seconds=_global_timeout(hook))
    interval = heartbeat_timeout * HEARTBEAT_FRACTION
    beats = _Heartbeats(autoscaling, notice, clock, interval, since=began, limit=global_deadline)
    run = _Run(
        gate,
        autoscaling,
        poller,
        notice,
        settings,
        progress,
        hook,
        beats,
        global_deadline,
        last_call=global_deadline - timedelta(seconds=interval),
    )
    if not await _waiting(autoscaling, notice):
        run.notes.append(
            f"instance {notice.instance_id} is not in Terminating:Wait: the action is over "
            "(a duplicate or redelivered notice, another handler, or the hook timed out)"
        )
        return run.result("action_ended")
    beats.start()
    try:
        return await run.handle()
    finally:
        await beats.stop()


def _global_timeout(hook: LifecycleHook) -> float:
    """The hook's global timeout, or AWS's rule when it is not given (48 h or 100 timeouts)."""
    given = hook.global_timeout
    if given:
        return float(given)
    return min(
        _constants.LIFECYCLE_MAX_GLOBAL_TIMEOUT,
        _constants.LIFECYCLE_HEARTBEAT_TIMEOUTS_LIMIT * float(hook.heartbeat_timeout),
    )
