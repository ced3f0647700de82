"""The call layer of the services around ECS: EC2 Auto Scaling, EC2 and SQS.

`AutoScalingCalls`, `Ec2Calls` and `QueueCalls` are what `ecs_safe._calls.EcsCalls` is for ECS:
the requests the workflows need, in the batch sizes the services accept, their answers turned
into models (`ecs_safe.models`). Every request goes through a `ecs_safe._transport.Transport`
of its service, so pacing (that service's buckets), retries, error mapping, redaction and the
audit of mutating calls apply to them as to ECS's.

A mutating call whose response may be lost after it acted is never sent again blind: each
passes the transport a ``verify`` that reads the effect back (docs/reliability.md):

- CompleteLifecycleAction: the instance is past its ``*:Wait`` state (``Terminating:Proceed``,
  ``Terminated``, ...), or gone from the group;
- TerminateInstanceInAutoScalingGroup: the instance is ``Terminating*``/``Terminated`` or gone
  (and, when decrementing, the desired capacity went down);
- UpdateAutoScalingGroup: the group's sizes read back as asked;
- TerminateInstances: every instance is ``shutting-down`` or ``terminated`` (or gone).

RecordLifecycleActionHeartbeat, DeleteMessage(Batch) and ChangeMessageVisibility are idempotent: a
retry does what the lost attempt did, so they are retried like reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar

from ecs_safe._calls import listed, pages
from ecs_safe._constants import (
    AUTOSCALING_INSTANCES_BATCH,
    DESCRIBE_EC2_INSTANCES_BATCH,
    RECEIVE_BATCH,
)
from ecs_safe._transport import Response, Transport, Verify
from ecs_safe.errors import EcsApiError, InvalidInputError
from ecs_safe.models import (
    AutoScalingGroupState,
    AutoScalingInstance,
    Ec2Instance,
    LifecycleHook,
    QueueMessage,
)

__all__ = [
    "AUTOSCALING_GROUPS_BATCH",
    "GROUP_TAG",
    "AutoScalingCalls",
    "AutoScalingGroupNotFoundError",
    "Ec2Calls",
    "QueueCalls",
]

_T = TypeVar("_T")

#: DescribeAutoScalingGroups names at most this many groups a call (its MaxRecords).
AUTOSCALING_GROUPS_BATCH: Final = 100
#: The tag Auto Scaling puts on each instance it launches: the group's name.
GROUP_TAG: Final = "aws:autoscaling:groupName"
# The states that prove a lifecycle action was completed: past the hook's wait, on the way
# out (CONTINUE or ABANDON of a terminate hook, ABANDON of a launch hook) or in (CONTINUE of a
# launch hook). Not InService: an instance with no action at all is InService too, and a
# terminate hook's instance never returns to it.
_PAST_WAIT_STATES: Final = frozenset(
    {"Terminating", "Terminating:Proceed", "Terminated", "Pending:Proceed"}
)
# EC2 states that prove a TerminateInstances took effect.
_ENDING_STATES: Final = frozenset({"shutting-down", "terminated"})


def _chunks(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _ids(values: Iterable[object], what: str) -> list[str]:
    """The IDs given, de-duplicated in order; bad input before any request."""
    if isinstance(values, str):
        raise InvalidInputError(f"{what} must be a list of IDs, not one string: [{values!r}]")
    ids: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"{what} must hold non-empty strings, got {value!r}")
        ids.append(value)
    return list(dict.fromkeys(ids))


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty name, got {value!r}")
    return value


class AutoScalingGroupNotFoundError(EcsApiError):
    """DescribeAutoScalingGroups knows no group of that name in this account and Region.

    Attributes:
        group: the group name as given.
    """

    def __init__(self, group: str, *, request_id: str | None = None) -> None:
        super().__init__(
            f"no Auto Scaling group named {group!r} in this account and Region",
            code="AutoScalingGroupNotFound",
            operation="DescribeAutoScalingGroups",
            request_id=request_id,
        )
        self.group = group


def _as_instance(raw: Mapping[str, Any], group: str | None = None) -> AutoScalingInstance:
    return AutoScalingInstance(
        instance_id=str(raw["InstanceId"]),
        group=str(raw.get("AutoScalingGroupName") or group or ""),
        lifecycle_state=str(raw.get("LifecycleState") or ""),
        protected_from_scale_in=bool(raw.get("ProtectedFromScaleIn", False)),
        health_status=raw.get("HealthStatus"),
    )


def _as_group(raw: Mapping[str, Any]) -> AutoScalingGroupState:
    name = str(raw["AutoScalingGroupName"])
    return AutoScalingGroupState(
        name=name,
        min_size=int(raw.get("MinSize") or 0),
        max_size=int(raw.get("MaxSize") or 0),
        desired_capacity=int(raw.get("DesiredCapacity") or 0),
        instances=[
            _as_instance(m, name) for m in raw.get("Instances") or [] if m.get("InstanceId")
        ],
    )


class AutoScalingCalls:
    """The EC2 Auto Scaling calls of one client, over its ``autoscaling`` transport.

    Args:
        transport: the transport every request goes through.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # ------------------------------------------------------------------ reads

    async def describe_lifecycle_hooks(self, group: str) -> list[LifecycleHook]:
        """The lifecycle hooks of ``group`` (DescribeLifecycleHooks, one call)."""
        group = _name(group, "group")
        operation = "DescribeLifecycleHooks"
        response = await self.transport.call(
            operation,
            {"AutoScalingGroupName": group},
            check=listed(operation, "LifecycleHooks"),
        )
        return [
            LifecycleHook(
                name=str(raw["LifecycleHookName"]),
                group=str(raw.get("AutoScalingGroupName") or group),
                transition=str(raw.get("LifecycleTransition") or ""),
                heartbeat_timeout=int(raw.get("HeartbeatTimeout") or 0),
                global_timeout=int(raw.get("GlobalTimeout") or 0),
                default_result=str(raw.get("DefaultResult") or "ABANDON"),
            )
            for raw in response["LifecycleHooks"]
        ]

    async def describe_instances(self, instance_ids: Sequence[str]) -> list[AutoScalingInstance]:
        """DescribeAutoScalingInstances, 50 IDs a call (every page).

        An ID that is in no group (never was, or has left it) is simply absent from the result.
        """
        ids = _ids(instance_ids, "instance_ids")
        operation = "DescribeAutoScalingInstances"
        found: list[AutoScalingInstance] = []
        for batch in _chunks(ids, AUTOSCALING_INSTANCES_BATCH):
            async for page in pages(
                self.transport,
                operation,
                {"InstanceIds": list(batch), "MaxRecords": AUTOSCALING_INSTANCES_BATCH},
                check=listed(operation, "AutoScalingInstances"),
                cursor="NextToken",
            ):
                found += [
                    _as_instance(raw)
                    for raw in page["AutoScalingInstances"]
                    if raw.get("InstanceId")
                ]
        return found

    async def describe_groups(self, names: Sequence[str]) -> list[AutoScalingGroupState]:
        """DescribeAutoScalingGroups of ``names`` (every page); an unknown name is absent."""
        wanted = _ids(names, "names")
        operation = "DescribeAutoScalingGroups"
        found: list[AutoScalingGroupState] = []
        for batch in _chunks(wanted, AUTOSCALING_GROUPS_BATCH):
            async for page in pages(
                self.transport,
                operation,
                {"AutoScalingGroupNames": list(batch)},
                check=listed(operation, "AutoScalingGroups"),
                cursor="NextToken",
            ):
                found += [_as_group(raw) for raw in page["AutoScalingGroups"]]
        return found

    async def group(self, name: str) -> AutoScalingGroupState:
        """One group's sizes and members.

        Raises:
            AutoScalingGroupNotFoundError: no group has that name.
        """
        name = _name(name, "auto_scaling_group")
        for group in await self.describe_groups([name]):
            if group.name == name:
                return group
        raise AutoScalingGroupNotFoundError(name)

    async def group_instance_ids(self, name: str) -> list[str]:
        """The EC2 instance IDs of a group's members, in its order (de-duplicated).

        Raises:
            AutoScalingGroupNotFoundError: no group has that name.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"auto_scaling_group must be a group name, got {name!r}")
        return list(dict.fromkeys(m.instance_id for m in (await self.group(name)).instances))

    # ------------------------------------------------------------------ lifecycle actions

    async def record_heartbeat(
        self, *, group: str, hook: str, instance_id: str, token: str | None = None
    ) -> None:
        """RecordLifecycleActionHeartbeat: restart the hook's heartbeat timeout.

        Idempotent (a second heartbeat only restarts the count again), so a lost response is
        simply retried.
        """
        await self.transport.call(
            "RecordLifecycleActionHeartbeat",
            self._action_params(group, hook, instance_id, token),
        )

    async def complete_lifecycle_action(
        self,
        *,
        group: str,
        hook: str,
        instance_id: str,
        result: Literal["CONTINUE", "ABANDON"],
        token: str | None = None,
    ) -> bool:
        """CompleteLifecycleAction, with a lost response verified instead of re-sent blind.

        Returns:
            ``True`` when the response was lost (or a retry was refused because the first
            attempt had worked: "No active Lifecycle Action found") and a describe showed the
            instance past its ``*:Wait`` state, or gone; ``False`` on a plain success.

        Raises:
            LifecycleActionNotFoundError: no action was waiting, and none is known to have
                been completed by this call (completed earlier, timed out, wrong token).
        """
        if result not in ("CONTINUE", "ABANDON"):
            raise InvalidInputError(f"result must be 'CONTINUE' or 'ABANDON', got {result!r}")
        params = {
            **self._action_params(group, hook, instance_id, token),
            "LifecycleActionResult": result,
        }

        async def verify(_exc: EcsApiError) -> Response | None:
            return {} if await self._left_wait(instance_id) else None

        return await self._verified_call("CompleteLifecycleAction", params, verify)

    async def _left_wait(self, instance_id: str) -> bool:
        """Whether the instance is past its hook's wait state (or out of the group)."""
        try:
            found = await self.describe_instances([instance_id])
        except EcsApiError:
            return False  # a describe that fails proves nothing
        return all(i.lifecycle_state in _PAST_WAIT_STATES for i in found)

    @staticmethod
    def _action_params(
        group: str, hook: str, instance_id: str, token: str | None
    ) -> dict[str, Any]:
        if token is not None and (not isinstance(token, str) or not token):
            raise InvalidInputError(f"token must be a non-empty str or None, got {token!r}")
        return {
            "AutoScalingGroupName": _name(group, "group"),
            "LifecycleHookName": _name(hook, "hook"),
            "InstanceId": _name(instance_id, "instance_id"),
            "LifecycleActionToken": token,
        }

    # ------------------------------------------------------------------ sizes, termination

    async def set_sizes(
        self,
        group: str,
        *,
        min_size: int | None = None,
        max_size: int | None = None,
        desired_capacity: int | None = None,
    ) -> None:
        """UpdateAutoScalingGroup with the sizes given; a lost response is read back."""
        group = _name(group, "group")
        sizes = {"MinSize": min_size, "MaxSize": max_size, "DesiredCapacity": desired_capacity}
        for key, value in sizes.items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidInputError(f"{key} must be an int >= 0 or None, got {value!r}")
        if all(value is None for value in sizes.values()):
            raise InvalidInputError("set_sizes needs min_size, max_size or desired_capacity")

        async def verify(_exc: EcsApiError) -> Response | None:
            try:
                state = await self.group(group)
            except EcsApiError:
                return None
            now = {
                "MinSize": state.min_size,
                "MaxSize": state.max_size,
                "DesiredCapacity": state.desired_capacity,
            }
            asked = {key: value for key, value in sizes.items() if value is not None}
            return {} if all(now[key] == value for key, value in asked.items()) else None

        await self._verified_call(
            "UpdateAutoScalingGroup", {"AutoScalingGroupName": group, **sizes}, verify
        )

    async def terminate_instance(
        self, instance_id: str, *, decrement_desired_capacity: bool
    ) -> bool:
        """TerminateInstanceInAutoScalingGroup, with a lost response verified.

        When decrementing, the group's desired capacity is read first (two reads), so that a
        lost response is proven by the instance terminating *and* the capacity having gone
        down (a group replacing an instance it terminated on its own keeps its capacity).

        Returns:
            ``True`` when the response was lost and the effect was verified.
        """
        instance_id = _name(instance_id, "instance_id")
        if not isinstance(decrement_desired_capacity, bool):
            raise InvalidInputError(
                "decrement_desired_capacity must be a bool, "
                f"got {type(decrement_desired_capacity).__name__}"
            )
        before: AutoScalingGroupState | None = None
        if decrement_desired_capacity:
            members = await self.describe_instances([instance_id])
            if members:
                before = next(iter(await self.describe_groups([members[0].group])), None)

        async def verify(_exc: EcsApiError) -> Response | None:
            try:
                found = await self.describe_instances([instance_id])
                if any(not i.lifecycle_state.startswith("Terminat") for i in found):
                    return None
                if before is not None:
                    now = next(iter(await self.describe_groups([before.name])), None)
                    # At most, not exactly, one less: other terminations of the same wave
                    # may have lowered it too; with ours not done it would not have moved
                    # for this instance, which is still a member (checked above).
                    if now is None or now.desired_capacity > before.desired_capacity - 1:
                        return None
            except EcsApiError:
                return None
            return {}

        return await self._verified_call(
            "TerminateInstanceInAutoScalingGroup",
            {
                "InstanceId": instance_id,
                "ShouldDecrementDesiredCapacity": decrement_desired_capacity,
            },
            verify,
        )

    async def _verified_call(
        self, operation: str, params: Mapping[str, Any], verify: Verify
    ) -> bool:
        return await _verified_call(self.transport, operation, params, verify)


async def _verified_call(
    transport: Transport, operation: str, params: Mapping[str, Any], verify: Verify
) -> bool:
    """Call a mutating ``operation`` with ``verify``; whether it ended verified (not answered)."""
    verified = False

    async def checked(exc: EcsApiError) -> Response | None:
        nonlocal verified
        result = await verify(exc)
        verified = result is not None
        return result

    await transport.call(operation, params, verify=checked)
    return verified


def _as_ec2(raw: Mapping[str, Any]) -> Ec2Instance:
    tags = {str(t.get("Key")): t.get("Value") for t in raw.get("Tags") or []}
    group = tags.get(GROUP_TAG)
    return Ec2Instance(
        instance_id=str(raw["InstanceId"]),
        state=str((raw.get("State") or {}).get("Name") or ""),
        lifecycle=str(raw.get("InstanceLifecycle") or "on-demand"),
        group=str(group) if group else None,
    )


class Ec2Calls:
    """The EC2 calls of one client, over its ``ec2`` transport.

    Args:
        transport: the transport every request goes through.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def describe_instances(self, instance_ids: Sequence[str]) -> list[Ec2Instance]:
        """DescribeInstances, 200 IDs a call (every page); an unknown ID is absent.

        The IDs go in an ``instance-id`` filter, not ``InstanceIds``: EC2 fails the whole call
        (``InvalidInstanceID.NotFound``) for one ID it does not know, a filter just omits it.
        """
        ids = _ids(instance_ids, "instance_ids")
        operation = "DescribeInstances"
        found: list[Ec2Instance] = []
        for batch in _chunks(ids, DESCRIBE_EC2_INSTANCES_BATCH):
            async for page in pages(
                self.transport,
                operation,
                {"Filters": [{"Name": "instance-id", "Values": list(batch)}]},
                check=listed(operation, "Reservations"),
                cursor="NextToken",
            ):
                for reservation in page["Reservations"]:
                    found += [
                        _as_ec2(raw)
                        for raw in reservation.get("Instances") or []
                        if raw.get("InstanceId")
                    ]
        return found

    async def termination_protected(self, instance_ids: Sequence[str]) -> frozenset[str]:
        """Those of ``instance_ids`` with termination protection (``disableApiTermination``).

        One DescribeInstanceAttribute per instance (EC2 takes one a call), paced together.
        """
        ids = _ids(instance_ids, "instance_ids")
        operation = "DescribeInstanceAttribute"

        async def protected(instance_id: str) -> bool:
            response = await self.transport.call(
                operation, {"InstanceId": instance_id, "Attribute": "disableApiTermination"}
            )
            value = (response.get("DisableApiTermination") or {}).get("Value")
            return bool(value)

        flags = await asyncio.gather(*(protected(i) for i in ids))
        return frozenset(i for i, flag in zip(ids, flags, strict=True) if flag)

    async def terminate_instances(self, instance_ids: Sequence[str]) -> bool:
        """TerminateInstances, with a lost response verified by DescribeInstances.

        Returns:
            ``True`` when the response was lost and every instance was then seen
            ``shutting-down`` or ``terminated`` (or gone).
        """
        ids = _ids(instance_ids, "instance_ids")
        if not ids:
            return False

        async def verify(_exc: EcsApiError) -> Response | None:
            try:
                found = await self.describe_instances(ids)
            except EcsApiError:
                return None
            return {} if all(i.state in _ENDING_STATES for i in found) else None

        return await _verified_call(
            self.transport, "TerminateInstances", {"InstanceIds": ids}, verify
        )


def _as_message(raw: Mapping[str, Any]) -> QueueMessage:
    attributes = raw.get("Attributes") or {}
    count = str(attributes.get("ApproximateReceiveCount") or "")
    return QueueMessage(
        message_id=str(raw.get("MessageId") or ""),
        receipt_handle=str(raw["ReceiptHandle"]),
        body=str(raw.get("Body") or ""),
        receive_count=int(count) if count.isdigit() else 1,
    )


class QueueCalls:
    """The SQS calls of one client, over its ``sqs`` transport.

    Args:
        transport: the transport every request goes through.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def receive(
        self,
        queue_url: str,
        *,
        max_messages: int = 10,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
    ) -> list[QueueMessage]:
        """ReceiveMessage: up to ``max_messages`` (1-10), long-polling ``wait_seconds`` (0-20)."""
        queue_url = _name(queue_url, "queue_url")
        for key, value, low, high in (
            ("max_messages", max_messages, 1, 10),
            ("wait_seconds", wait_seconds, 0, 20),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInputError(f"{key} must be an int from {low} to {high}, got {value!r}")
        response = await self.transport.call(
            "ReceiveMessage",
            {
                "QueueUrl": queue_url,
                "MaxNumberOfMessages": max_messages,
                "WaitTimeSeconds": wait_seconds,
                "VisibilityTimeout": visibility_timeout,
                "AttributeNames": ["ApproximateReceiveCount"],
            },
        )
        return [
            _as_message(raw) for raw in response.get("Messages") or [] if raw.get("ReceiptHandle")
        ]

    async def delete(self, queue_url: str, receipt_handle: str) -> None:
        """DeleteMessage (idempotent: deleting twice is not an error)."""
        await self.transport.call(
            "DeleteMessage",
            {
                "QueueUrl": _name(queue_url, "queue_url"),
                "ReceiptHandle": _name(receipt_handle, "receipt_handle"),
            },
        )

    async def delete_many(self, queue_url: str, receipt_handles: Sequence[str]) -> int:
        """DeleteMessageBatch, 10 a call (idempotent); returns how many SQS failed to delete.

        A message SQS could not delete (``Failed``) comes back after its visibility timeout;
        the caller decides whether that matters.
        """
        queue_url = _name(queue_url, "queue_url")
        handles = [_name(h, "receipt_handle") for h in receipt_handles]
        failed = 0
        for batch in _chunks(handles, RECEIVE_BATCH):
            response = await self.transport.call(
                "DeleteMessageBatch",
                {
                    "QueueUrl": queue_url,
                    "Entries": [
                        {"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(batch)
                    ],
                },
            )
            failed += len(response.get("Failed") or [])
        return failed

    async def extend_visibility(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """ChangeMessageVisibility: keep the message hidden ``seconds`` more from now."""
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= 43200:
            raise InvalidInputError(f"seconds must be an int from 0 to 43200, got {seconds!r}")
        await self.transport.call(
            "ChangeMessageVisibility",
            {
                "QueueUrl": _name(queue_url, "queue_url"),
                "ReceiptHandle": _name(receipt_handle, "receipt_handle"),
                "VisibilityTimeout": seconds,
            },
        )
