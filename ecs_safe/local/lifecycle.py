"""Auto Scaling's terminate lifecycle hook: ``Terminating:Wait``, heartbeats, the global limit.

moto has groups and lifecycle hooks but neither RecordLifecycleActionHeartbeat nor
CompleteLifecycleAction. `LifecycleModel` models what Auto Scaling does once an instance of a
group with a terminate hook is to leave:

- the instance waits in ``Terminating:Wait`` for at most the hook's heartbeat timeout;
- each heartbeat restarts that timeout, but never past the global limit, the smaller of
  48 hours and 100 heartbeat timeouts from the start of the wait;
- CompleteLifecycleAction (CONTINUE or ABANDON; for a terminate hook both end in termination),
  or the timeout (the hook's default result), ends the wait and the instance is terminated;
- termination deregisters the instance from its cluster, as ECS does when the agent sees
  the instance go.

Time is the model's own clock: tests call `LifecycleModel.advance` instead of waiting.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from ecs_safe.local.traffic import EcsError, QueryHandler, query_response

__all__ = ["LifecycleAction", "LifecycleError", "LifecycleModel"]

#: The global limit of a lifecycle action: 48 hours at most.
MAX_GLOBAL_TIMEOUT: Final = timedelta(hours=48)
#: ... and at most this many heartbeat timeouts.
HEARTBEAT_TIMEOUTS_LIMIT: Final = 100
_RESULTS: Final = frozenset({"CONTINUE", "ABANDON"})


class LifecycleError(ValueError):
    """What Auto Scaling answers with a ValidationError: no such action, a bad result, ..."""


@dataclass(slots=True)
class LifecycleAction:
    """One instance waiting in ``Terminating:Wait`` for one hook."""

    group: str
    """The Auto Scaling group's name."""
    hook: str
    """The lifecycle hook's name."""
    instance_id: str
    """The EC2 instance leaving the group."""
    token: str
    """The LifecycleActionToken Auto Scaling gives the handler."""
    heartbeat_timeout: timedelta
    """The hook's HeartbeatTimeout."""
    default_result: str
    """What happens when the wait times out: CONTINUE or ABANDON."""
    started_at: datetime
    """When the wait began."""
    expires_at: datetime
    """When the wait times out unless a heartbeat extends it."""
    global_deadline: datetime
    """The latest moment any heartbeat can extend the wait to."""
    state: str = "Terminating:Wait"
    """``Terminating:Wait``, then ``Terminated``."""
    result: str | None = None
    """How the wait ended: CONTINUE, ABANDON, or the default result on a timeout."""
    heartbeats: int = 0
    """Heartbeats recorded."""
    timed_out: bool = False
    """Whether the wait ended by timing out."""
    metadata: str | None = None
    """The hook's NotificationMetadata, passed on in the lifecycle event."""


class LifecycleModel:
    """Terminate lifecycle actions with a controllable clock.

    Args:
        terminate: Called with the instance ID when an action ends: terminates the EC2 instance
            and deregisters it from its cluster.
        start: The clock's starting time (now, unless given).
        on_begin: Called with each action as it begins.
    """

    def __init__(
        self,
        terminate: Callable[[str], None],
        *,
        start: datetime | None = None,
        on_begin: Callable[[LifecycleAction], None] | None = None,
    ) -> None:
        """Create the model; nothing waits until `begin_termination`.

        ``on_begin`` is told of every action that begins (LocalEcs puts its event on SQS).
        """
        self._terminate = terminate
        self._on_begin = on_begin
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()
        self._actions: dict[str, LifecycleAction] = {}

    def now(self) -> datetime:
        """The model's clock."""
        with self._lock:
            return self._now

    def begin_termination(
        self,
        group: str,
        hook: str,
        instance_id: str,
        *,
        heartbeat_timeout: float = 3600,
        default_result: str = "ABANDON",
        metadata: str | None = None,
    ) -> LifecycleAction:
        """Put an instance in ``Terminating:Wait`` for ``hook``; returns the action (and token).

        This is the model alone: a group's scale-in calls it for you (`ecs_safe.local.scaling`),
        and also marks the instance ``Terminating:Wait`` in moto's group. ``metadata`` is the
        hook's NotificationMetadata, carried by the lifecycle event.
        """
        if heartbeat_timeout <= 0:
            msg = f"heartbeat_timeout must be positive, not {heartbeat_timeout}"
            raise LifecycleError(msg)
        if default_result not in _RESULTS:
            msg = f"default_result must be CONTINUE or ABANDON, not {default_result!r}"
            raise LifecycleError(msg)
        timeout = timedelta(seconds=heartbeat_timeout)
        with self._lock:
            if any(
                a.instance_id == instance_id and a.state == "Terminating:Wait"
                for a in self._actions.values()
            ):
                msg = f"{instance_id} is already in Terminating:Wait"
                raise LifecycleError(msg)
            action = LifecycleAction(
                group=group,
                hook=hook,
                instance_id=instance_id,
                token=str(uuid.uuid4()),
                heartbeat_timeout=timeout,
                default_result=default_result,
                started_at=self._now,
                expires_at=self._now + timeout,
                global_deadline=self._now
                + min(MAX_GLOBAL_TIMEOUT, HEARTBEAT_TIMEOUTS_LIMIT * timeout),
                metadata=metadata,
            )
            self._actions[action.token] = action
        if self._on_begin is not None:
            self._on_begin(action)
        return action

    def _find(
        self, group: str, hook: str, token: str | None, instance_id: str | None
    ) -> LifecycleAction:
        for action in self._actions.values():
            if action.group != group or action.hook != hook or action.state != "Terminating:Wait":
                continue
            if (token is not None and action.token == token) or (
                token is None and instance_id is not None and action.instance_id == instance_id
            ):
                return action
        msg = "No active Lifecycle Action found with the given token or instance ID"
        raise LifecycleError(msg)

    def record_heartbeat(
        self, group: str, hook: str, *, token: str | None = None, instance_id: str | None = None
    ) -> datetime:
        """RecordLifecycleActionHeartbeat: restart the timeout (never past the global limit).

        Returns when the wait now times out.
        """
        with self._lock:
            action = self._find(group, hook, token, instance_id)
            action.heartbeats += 1
            action.expires_at = min(self._now + action.heartbeat_timeout, action.global_deadline)
            return action.expires_at

    def complete(
        self,
        group: str,
        hook: str,
        result: str,
        *,
        token: str | None = None,
        instance_id: str | None = None,
    ) -> None:
        """CompleteLifecycleAction: end the wait with CONTINUE or ABANDON; the instance goes."""
        if result not in _RESULTS:
            msg = f"LifecycleActionResult must be CONTINUE or ABANDON, not {result!r}"
            raise LifecycleError(msg)
        with self._lock:
            action = self._find(group, hook, token, instance_id)
            self._end(action, result, timed_out=False)
        self._terminate(action.instance_id)

    def advance(self, seconds: float) -> list[LifecycleAction]:
        """Move the clock on; every wait that times out ends with its default result.

        Returns the actions that timed out (their instances are terminated).
        """
        if seconds < 0:
            msg = "the clock only moves forward"
            raise ValueError(msg)
        with self._lock:
            self._now += timedelta(seconds=seconds)
            expired = [
                a
                for a in self._actions.values()
                if a.state == "Terminating:Wait" and a.expires_at <= self._now
            ]
            for action in expired:
                self._end(action, action.default_result, timed_out=True)
        for action in expired:
            self._terminate(action.instance_id)
        return expired

    def instance_gone(self, instance_id: str) -> list[LifecycleAction]:
        """End the waits of an instance terminated by other means (EC2, Spot); no result.

        Auto Scaling then has no action left to complete: CompleteLifecycleAction and
        heartbeats for it are refused, as for any ended action. Returns the actions ended.
        """
        with self._lock:
            ended = [
                a
                for a in self._actions.values()
                if a.instance_id == instance_id and a.state == "Terminating:Wait"
            ]
            for action in ended:
                action.state = "Terminated"
        return ended

    def waiting(self) -> list[LifecycleAction]:
        """The actions still in ``Terminating:Wait``, oldest first."""
        with self._lock:
            return [a for a in self._actions.values() if a.state == "Terminating:Wait"]

    def action(self, token: str) -> LifecycleAction:
        """The action with this token (whatever its state)."""
        with self._lock:
            return self._actions[token]

    def reset(self) -> None:
        """Forget every action."""
        with self._lock:
            self._actions.clear()

    def query_handlers(self) -> dict[str, QueryHandler]:
        """RecordLifecycleActionHeartbeat and CompleteLifecycleAction over HTTP (query protocol)."""
        return {
            "autoscaling:RecordLifecycleActionHeartbeat": self._heartbeat_request,
            "autoscaling:CompleteLifecycleAction": self._complete_request,
        }

    def _heartbeat_request(self, params: dict[str, str]) -> str:
        group, hook, token, instance_id = _action_params(params)
        try:
            self.record_heartbeat(group, hook, token=token, instance_id=instance_id)
        except LifecycleError as exc:
            raise EcsError("ValidationError", str(exc)) from None
        return query_response("RecordLifecycleActionHeartbeat")

    def _complete_request(self, params: dict[str, str]) -> str:
        group, hook, token, instance_id = _action_params(params)
        result = params.get("LifecycleActionResult", "")
        try:
            self.complete(group, hook, result, token=token, instance_id=instance_id)
        except LifecycleError as exc:
            raise EcsError("ValidationError", str(exc)) from None
        return query_response("CompleteLifecycleAction")

    @staticmethod
    def _end(action: LifecycleAction, result: str, *, timed_out: bool) -> None:
        action.state = "Terminated"
        action.result = result
        action.timed_out = timed_out


def _action_params(params: dict[str, str]) -> tuple[str, str, str | None, str | None]:
    group, hook = params.get("AutoScalingGroupName"), params.get("LifecycleHookName")
    token, instance_id = params.get("LifecycleActionToken"), params.get("InstanceId")
    if not group or not hook:
        msg = "AutoScalingGroupName and LifecycleHookName are required"
        raise EcsError("ValidationError", msg)
    if token is None and instance_id is None:
        msg = "Either LifecycleActionToken or InstanceId is required"
        raise EcsError("ValidationError", msg)
    return group, hook, token, instance_id
