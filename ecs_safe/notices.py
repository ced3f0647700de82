"""Notices that an EC2 instance is leaving: lifecycle actions, Spot interruptions, rebalancing.

Auto Scaling and EC2 announce an instance's end in a few shapes, and a worker reading an SQS
queue (or a Lambda function) meets all of them. `parse_notice` turns any of them into one typed
`Notice`:

- EventBridge's envelope (``detail-type``, ``source``, ``detail``, ...) of an
  ``EC2 Instance-terminate Lifecycle Action``, an ``EC2 Spot Instance Interruption Warning`` or
  an ``EC2 Instance Rebalance Recommendation``;
- a lifecycle hook's own notification (``LifecycleTransition``, ``LifecycleActionToken``, ...),
  as the hook sends it to its SQS queue directly, or wrapped by its SNS topic (``Type:
  Notification`` with the hook's message as a JSON string in ``Message``); an EventBridge event
  that reached SQS through SNS is unwrapped the same way;
- any of these as an SQS message body (a JSON string), or as the SQS message itself (its
  ``Body``, or a Lambda record's ``body``), or as a Lambda record from SNS (``Sns``).

`parse_task_state_change` reads the same shapes for EventBridge's ``ECS Task State Change``: not a
notice that an instance is leaving, but the hint that wakes the drain poller
(`EcsSafeClient(task_events_queue=...)`, see the drain guide's "Waking on task events").

Anything else raises `NoticeError`, including Auto Scaling's ``autoscaling:TEST_NOTIFICATION``
(sent once when a hook or notification configuration is created) and launch lifecycle
actions: ecs-safe acts only on instances that are leaving. ``NoticeError.kind`` tells a worker
whether the message is one to drop quietly (``"test"``, ``"unsupported"``) or a malformed one
worth a look (``"malformed"``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ecs_safe._constants import (
    LIFECYCLE_DETAIL_TYPE,
    REBALANCE_DETAIL_TYPE,
    SPOT_DETAIL_TYPE,
    TASK_STATE_DETAIL_TYPE,
    TERMINATING_TRANSITION,
    TEST_NOTIFICATION_EVENT,
)
from ecs_safe.errors import InvalidInputError

__all__ = [
    "LifecycleActionNotice",
    "Notice",
    "NoticeError",
    "NoticeErrorKind",
    "RebalanceNotice",
    "SpotInterruptionNotice",
    "TaskStateChange",
    "parse_notice",
    "parse_task_state_change",
]

#: Why a body is not a notice: it is not JSON or lacks a field (``"malformed"``), it is Auto
#: Scaling's test notification (``"test"``), or it is an event ecs-safe does not act on
#: (``"unsupported"``: a launch lifecycle action, an EC2 state change, ...).
NoticeErrorKind = Literal["malformed", "test", "unsupported"]

# SNS inside SQS inside a Lambda record is three wrappers; more is a loop, not a notice.
_MAX_WRAPPERS: Final = 4


class NoticeError(InvalidInputError):
    """The body is not a notice ecs-safe handles (test notifications and launch actions included).

    Attributes:
        kind: ``"malformed"``, ``"test"`` or ``"unsupported"`` (see `NoticeErrorKind`).
    """

    code = "InvalidNotice"

    def __init__(self, message: str, *, kind: NoticeErrorKind = "malformed") -> None:
        super().__init__(message)
        self.kind: NoticeErrorKind = kind


class _Notice(BaseModel):
    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)


class LifecycleActionNotice(_Notice):
    """An instance of an Auto Scaling group is waiting in ``Terminating:Wait`` for a hook.

    The handler (`EcsSafeClient.handle_lifecycle_action`) drains and deregisters it, then
    completes the action. The notice names no ECS cluster: the handler finds it.
    """

    kind: Literal["lifecycle-action"] = "lifecycle-action"
    """The notice's kind, for telling notices apart."""
    instance_id: str
    """The EC2 instance ID (``EC2InstanceId``)."""
    group: str
    """The Auto Scaling group's name (``AutoScalingGroupName``)."""
    hook: str
    """The lifecycle hook's name (``LifecycleHookName``)."""
    token: str | None = None
    """The ``LifecycleActionToken`` that heartbeats and the completion quote."""
    transition: str = TERMINATING_TRANSITION
    """The ``LifecycleTransition``; always ``autoscaling:EC2_INSTANCE_TERMINATING`` here."""
    metadata: str | None = None
    """The hook's ``NotificationMetadata``, if it has any."""
    time: datetime | None = None
    """When the action began (the event's ``time``, the message's ``Time``)."""
    event_id: str | None = None
    """The EventBridge event ID, or the hook message's ``RequestId`` (SNS's ``MessageId``
    when it has none)."""
    account: str | None = None
    """The AWS account, when the notice names it."""
    region: str | None = None
    """The Region, when the notice names it (EventBridge does)."""

    @property
    def key(self) -> str:
        """The same for every delivery of one action, whichever route it took (for duplicates)."""
        return f"lifecycle:{self.group}:{self.hook}:{self.instance_id}:{self.token or ''}"


class SpotInterruptionNotice(_Notice):
    """EC2 takes a Spot instance back in about two minutes.

    EventBridge's ``EC2 Spot Instance Interruption Warning``.
    """

    kind: Literal["spot-interruption"] = "spot-interruption"
    """The notice's kind, for telling notices apart."""
    instance_id: str
    """The EC2 instance ID (``instance-id``)."""
    action: str
    """What EC2 will do: ``terminate``, ``stop`` or ``hibernate`` (``instance-action``)."""
    time: datetime | None = None
    """When the warning was sent (the event's ``time``)."""
    event_id: str | None = None
    """The EventBridge event ID."""
    account: str | None = None
    """The AWS account."""
    region: str | None = None
    """The Region."""

    @property
    def key(self) -> str:
        """The same for every delivery of one warning (for duplicates)."""
        return f"spot:{self.instance_id}:{self.action}"


class RebalanceNotice(_Notice):
    """EC2 recommends replacing a Spot instance at elevated risk of interruption.

    EventBridge's ``EC2 Instance Rebalance Recommendation``; the instance may be interrupted
    later, or not at all, and ECS does nothing about it.
    """

    kind: Literal["rebalance"] = "rebalance"
    """The notice's kind, for telling notices apart."""
    instance_id: str
    """The EC2 instance ID (``instance-id``)."""
    time: datetime | None = None
    """When the recommendation was sent (the event's ``time``)."""
    event_id: str | None = None
    """The EventBridge event ID."""
    account: str | None = None
    """The AWS account."""
    region: str | None = None
    """The Region."""

    @property
    def key(self) -> str:
        """The same for every delivery of one recommendation (for duplicates)."""
        return f"rebalance:{self.instance_id}:{self.time.isoformat() if self.time else ''}"


class TaskStateChange(_Notice):
    """An ECS task changed state: EventBridge's ``ECS Task State Change`` (source ``aws.ecs``).

    Not a `Notice` (nothing is leaving): the hint that wakes the drain poller when a task on
    an instance it watches stops. The drain still judges by the task list; this says only
    when to look.
    """

    kind: Literal["task-state-change"] = "task-state-change"
    """The event's kind, for telling events apart."""
    task_arn: str
    """The task (``taskArn``)."""
    container_instance_arn: str | None = None
    """Where it runs (``containerInstanceArn``); ``None`` for Fargate tasks."""
    cluster_arn: str | None = None
    """Its cluster (``clusterArn``)."""
    last_status: str | None = None
    """The status it reached (``lastStatus``): ``RUNNING``, ``STOPPING``, ``STOPPED``, ..."""
    desired_status: str | None = None
    """The status it is headed for (``desiredStatus``)."""
    group: str | None = None
    """``service:NAME`` for a service's task (``group``)."""
    time: datetime | None = None
    """When the change happened (the event's ``time``)."""
    event_id: str | None = None
    """The EventBridge event ID."""
    account: str | None = None
    """The AWS account."""
    region: str | None = None
    """The Region."""


_N = TypeVar("_N", bound=_Notice)

#: A notice ecs-safe acts on; ``notice.kind`` tells which.
Notice = LifecycleActionNotice | SpotInterruptionNotice | RebalanceNotice


def parse_notice(body: str | bytes | Mapping[str, Any]) -> Notice:
    """Parse a lifecycle, Spot or rebalance notice from any of the shapes it arrives in.

    Args:
        body: An SQS message body (a JSON string or bytes), the decoded JSON, or an SQS message
            or Lambda record holding one (see the module's docstring for every shape).

    Returns:
        A `LifecycleActionNotice`, `SpotInterruptionNotice` or `RebalanceNotice`.

    Raises:
        NoticeError: the body is not JSON, lacks a field, is Auto Scaling's test notification
            or is an event ecs-safe does not act on; ``kind`` says which.
    """
    return _notice(_innermost(body))


def parse_task_state_change(body: str | bytes | Mapping[str, Any]) -> TaskStateChange:
    """Parse EventBridge's ``ECS Task State Change`` from any shape `parse_notice` reads.

    Args:
        body: An SQS message body (a JSON string or bytes), the decoded JSON, or an SQS message
            or Lambda record holding one; SNS's wrapping is undone as for notices.

    Returns:
        The `TaskStateChange`.

    Raises:
        NoticeError: the body is not JSON or lacks a field (``"malformed"``), or is some other
            event or notice (``"unsupported"``).
    """
    event = _innermost(body)
    detail_type = event.get("detail-type")
    if detail_type != TASK_STATE_DETAIL_TYPE:
        msg = f"not an ECS Task State Change event (detail-type {detail_type!r})"
        raise NoticeError(msg, kind="unsupported" if detail_type else "malformed")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        msg = f"the {detail_type!r} event has no detail object"
        raise NoticeError(msg)
    fields = {
        "task_arn": _required(detail, "taskArn", detail_type),
        "container_instance_arn": detail.get("containerInstanceArn") or None,
        "cluster_arn": detail.get("clusterArn"),
        "last_status": detail.get("lastStatus"),
        "desired_status": detail.get("desiredStatus"),
        "group": detail.get("group"),
        "time": event.get("time"),
        "event_id": event.get("id"),
        "account": event.get("account"),
        "region": event.get("region"),
    }
    return _build(TaskStateChange, fields, detail_type)


def _innermost(body: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON object inside every wrapper (SQS, SNS, a Lambda record) of ``body``."""
    value: Any = body
    for _ in range(_MAX_WRAPPERS):
        decoded = _decode(value)
        inner = _unwrap(decoded)
        if inner is None:
            return decoded
        value = inner
    msg = f"a notice wrapped more than {_MAX_WRAPPERS} times is not one ecs-safe reads"
    raise NoticeError(msg)


def _decode(value: Any) -> Mapping[str, Any]:
    if isinstance(value, bytes | bytearray):
        try:
            value = value.decode()
        except UnicodeDecodeError as exc:
            msg = f"a notice must be UTF-8 JSON: {exc}"
            raise NoticeError(msg) from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            msg = f"a notice must be a JSON object, and this is not JSON ({exc}): {value[:80]!r}"
            raise NoticeError(msg) from None
    if not isinstance(value, Mapping):
        msg = f"a notice must be a JSON object, not {type(value).__name__}"
        raise NoticeError(msg)
    return value


def _unwrap(value: Mapping[str, Any]) -> Any | None:
    """What a wrapper holds (SNS's ``Message``, SQS's body, a Lambda record's); None if none."""
    if value.get("Type") == "Notification" and "Message" in value:
        return value["Message"]
    if isinstance(value.get("Sns"), Mapping):  # a Lambda record from SNS
        return value["Sns"]
    for body in ("Body", "body"):  # an SQS message (ReceiveMessage), a Lambda record from SQS
        if body in value and ("ReceiptHandle" in value or "receiptHandle" in value):
            return value[body]
    return None


def _notice(value: Mapping[str, Any]) -> Notice:
    if "detail-type" in value:
        return _from_eventbridge(value)
    if value.get("Event") == TEST_NOTIFICATION_EVENT:
        group = value.get("AutoScalingGroupName", "?")
        msg = f"Auto Scaling's test notification (group {group}): nothing to do"
        raise NoticeError(msg, kind="test")
    if "LifecycleTransition" in value:
        return _lifecycle(value, event_id=value.get("RequestId"), time=value.get("Time"))
    if "Event" in value:
        msg = f"Auto Scaling's {value['Event']!r} notification is not one ecs-safe acts on"
        raise NoticeError(msg, kind="unsupported")
    keys = ", ".join(sorted(map(str, value))[:8])
    msg = (
        "not a notice ecs-safe reads: expected EventBridge's envelope (detail-type, detail) or "
        f"a lifecycle hook's message (LifecycleTransition, ...), got the keys {keys}"
    )
    raise NoticeError(msg)


def _from_eventbridge(event: Mapping[str, Any]) -> Notice:
    detail_type = event["detail-type"]
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        msg = f"the {detail_type!r} event has no detail object"
        raise NoticeError(msg)
    common = {
        "time": event.get("time"),
        "event_id": event.get("id"),
        "account": event.get("account"),
        "region": event.get("region"),
    }
    if detail_type == LIFECYCLE_DETAIL_TYPE:
        return _lifecycle(detail, **common)
    if detail_type == SPOT_DETAIL_TYPE:
        fields = {
            "instance_id": _required(detail, "instance-id", detail_type),
            "action": _required(detail, "instance-action", detail_type),
        }
        return _build(SpotInterruptionNotice, fields | common, detail_type)
    if detail_type == REBALANCE_DETAIL_TYPE:
        fields = {"instance_id": _required(detail, "instance-id", detail_type)}
        return _build(RebalanceNotice, fields | common, detail_type)
    msg = f"the EventBridge event {detail_type!r} is not one ecs-safe acts on"
    raise NoticeError(msg, kind="unsupported")


def _lifecycle(message: Mapping[str, Any], **common: Any) -> LifecycleActionNotice:
    what = "lifecycle action"
    transition = _required(message, "LifecycleTransition", what)
    if transition != TERMINATING_TRANSITION:
        msg = (
            f"the {transition!r} lifecycle action is not one ecs-safe acts on "
            f"(only {TERMINATING_TRANSITION})"
        )
        raise NoticeError(msg, kind="unsupported")
    fields = {
        "instance_id": _required(message, "EC2InstanceId", what),
        "group": _required(message, "AutoScalingGroupName", what),
        "hook": _required(message, "LifecycleHookName", what),
        "token": message.get("LifecycleActionToken") or None,
        "transition": transition,
        "metadata": message.get("NotificationMetadata"),
    }
    if common.get("account") is None and "AccountId" in message:
        common["account"] = message["AccountId"]
    return _build(LifecycleActionNotice, fields | common, what)


def _required(message: Mapping[str, Any], key: str, what: str) -> Any:
    value = message.get(key)
    if value in (None, ""):
        msg = f"the {what} has no {key}"
        raise NoticeError(msg)
    return value


def _build(model: type[_N], fields: dict[str, Any], what: str) -> _N:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        msg = f"the {what} is malformed: {problems}"
        raise NoticeError(msg) from None
