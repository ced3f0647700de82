"""Events on SQS queues, as EventBridge (or SNS) delivers them: lifecycle actions and Spot.

An event worker learns that an instance is leaving from a queue: an EventBridge rule (or a
lifecycle hook's SNS topic) sends the events to SQS. LocalEcs puts the same events on SQS
queues of moto's, which any SQS client reads over HTTP:

- ``EC2 Instance-terminate Lifecycle Action`` (source ``aws.autoscaling``) whenever an
  instance enters ``Terminating:Wait`` (`LifecycleModel.begin_termination`);
- ``EC2 Spot Instance Interruption Warning`` (source ``aws.ec2``, ``instance-action``
  ``terminate``) and ``EC2 Instance Rebalance Recommendation`` from
  `LocalEcs.interrupt_spot` and `LocalEcs.recommend_rebalance`;
- ``ECS Task State Change`` (source ``aws.ecs``, ``lastStatus`` STOPPED) for each task of a
  service the scheduler manages that it stops or sees stopped, only to the queues created
  with ``task_events=True`` (a worker that does not expect them never gets them).

A queue gets either EventBridge's envelope (``version``, ``id``, ``detail-type``, ``source``,
``account``, ``time``, ``region``, ``resources``, ``detail``), or, with ``sns=True``, the
lifecycle hook's SNS notification (``Type: Notification`` with the hook's message as a JSON
string in ``Message``); Spot events exist only in EventBridge's shape, so an SNS queue gets
them wrapped as an EventBridge-to-SNS target would.

Limits: no EventBridge rules or patterns (every queue gets every event), no delivery retries,
no dead-letter queues.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ecs_safe.local.lifecycle import LifecycleAction
    from ecs_safe.local.scheduler import TaskEvent

__all__ = [
    "LIFECYCLE_DETAIL_TYPE",
    "REBALANCE_DETAIL_TYPE",
    "SPOT_DETAIL_TYPE",
    "TASK_STATE_DETAIL_TYPE",
    "EventQueues",
    "lifecycle_event",
    "rebalance_event",
    "spot_interruption_event",
    "task_stopped_event",
]

# Written out from AWS's documentation here, not imported from `ecs_safe._constants`: LocalEcs
# is what the product is tested against, so a wrong name on the product's side must fail.
#: EventBridge's detail-type of a terminate lifecycle action.
LIFECYCLE_DETAIL_TYPE: Final = "EC2 Instance-terminate Lifecycle Action"
#: ... of a Spot interruption notice (two minutes before the instance goes).
SPOT_DETAIL_TYPE: Final = "EC2 Spot Instance Interruption Warning"
#: ... of a rebalance recommendation (earlier, with no ECS notice at all).
REBALANCE_DETAIL_TYPE: Final = "EC2 Instance Rebalance Recommendation"
#: ... of a task changing state (LocalEcs sends only its stops).
TASK_STATE_DETAIL_TYPE: Final = "ECS Task State Change"
_TERMINATING: Final = "autoscaling:EC2_INSTANCE_TERMINATING"
_SNS_TOPIC: Final = "ecs-safe-local-lifecycle"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(
    detail_type: str,
    source: str,
    detail: dict[str, Any],
    *,
    account: str,
    region: str,
    resources: list[str],
    at: datetime,
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": _stamp(at),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def _group_arn(region: str, account: str, group: str) -> str:
    # The group's UUID is not known to the model; a fixed one keeps the ARN's shape.
    return (
        f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:"
        f"{uuid.UUID(int=0)}:autoScalingGroupName/{group}"
    )


def lifecycle_event(
    action: LifecycleAction, *, account: str, region: str, metadata: str | None = None
) -> dict[str, Any]:
    """The EventBridge event of a terminate lifecycle action (``Terminating:Wait`` began)."""
    detail: dict[str, Any] = {
        "Origin": "AutoScalingGroup",
        "Destination": "EC2",
        "LifecycleActionToken": action.token,
        "AutoScalingGroupName": action.group,
        "LifecycleHookName": action.hook,
        "EC2InstanceId": action.instance_id,
        "LifecycleTransition": _TERMINATING,
    }
    if metadata is not None:
        detail["NotificationMetadata"] = metadata
    return _envelope(
        LIFECYCLE_DETAIL_TYPE,
        "aws.autoscaling",
        detail,
        account=account,
        region=region,
        resources=[_group_arn(region, account, action.group)],
        at=action.started_at,
    )


def _instance_arn(region: str, account: str, instance_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"


def spot_interruption_event(
    instance_id: str, *, account: str, region: str, at: datetime, action: str = "terminate"
) -> dict[str, Any]:
    """The EventBridge event of a Spot interruption notice for ``instance_id``."""
    return _envelope(
        SPOT_DETAIL_TYPE,
        "aws.ec2",
        {"instance-id": instance_id, "instance-action": action},
        account=account,
        region=region,
        resources=[_instance_arn(region, account, instance_id)],
        at=at,
    )


def rebalance_event(instance_id: str, *, account: str, region: str, at: datetime) -> dict[str, Any]:
    """The EventBridge event of a rebalance recommendation for ``instance_id``."""
    return _envelope(
        REBALANCE_DETAIL_TYPE,
        "aws.ec2",
        {"instance-id": instance_id},
        account=account,
        region=region,
        resources=[_instance_arn(region, account, instance_id)],
        at=at,
    )


def task_stopped_event(event: TaskEvent, *, account: str, region: str) -> dict[str, Any]:
    """The EventBridge event of a service task that stopped (the scheduler's record of it)."""
    cluster_arn = f"arn:aws:ecs:{region}:{account}:cluster/{event.cluster}"
    detail: dict[str, Any] = {
        "clusterArn": cluster_arn,
        "taskArn": event.task_arn,
        "containerInstanceArn": event.container_instance_arn,
        "group": f"service:{event.service}",
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "stoppedReason": event.reason,
        "stoppedAt": _stamp(event.at),
        "updatedAt": _stamp(event.at),
    }
    return _envelope(
        TASK_STATE_DETAIL_TYPE,
        "aws.ecs",
        detail,
        account=account,
        region=region,
        resources=[event.task_arn],
        at=event.at,
    )


def _sns_notification(event: dict[str, Any], *, account: str, region: str) -> dict[str, Any]:
    """What SQS receives from an SNS topic: the lifecycle hook's own message, or the event."""
    if event["detail-type"] == LIFECYCLE_DETAIL_TYPE:
        detail = event["detail"]
        message: dict[str, Any] = {
            "Origin": detail["Origin"],
            "Destination": detail["Destination"],
            "Service": "AWS Auto Scaling",
            "Time": event["time"],
            "AccountId": account,
            "LifecycleTransition": detail["LifecycleTransition"],
            "RequestId": str(uuid.uuid4()),
            "LifecycleActionToken": detail["LifecycleActionToken"],
            "EC2InstanceId": detail["EC2InstanceId"],
            "LifecycleHookName": detail["LifecycleHookName"],
            "AutoScalingGroupName": detail["AutoScalingGroupName"],
        }
        if "NotificationMetadata" in detail:
            message["NotificationMetadata"] = detail["NotificationMetadata"]
        subject = (
            f"Auto Scaling:  Lifecycle action 'TERMINATING' for instance "
            f"{detail['EC2InstanceId']} in progress."
        )
    else:
        message, subject = event, event["detail-type"]
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": f"arn:aws:sns:{region}:{account}:{_SNS_TOPIC}",
        "Subject": subject,
        "Message": json.dumps(message),
        "Timestamp": event["time"],
        "SignatureVersion": "1",
    }


@dataclass(frozen=True, slots=True)
class _Queue:
    url: str
    sns: bool
    task_events: bool = False


class EventQueues:
    """The SQS queues LocalEcs delivers events to, and the delivery.

    Args:
        sqs: The seeding helpers' SQS client (botocore's), looked up on each use.
        account: The account ID in the events.
        region: The Region in the events.
    """

    def __init__(self, sqs: Callable[[], Any], *, account: str, region: str) -> None:
        """Deliver to no queue until `create_queue`."""
        self._sqs = sqs
        self._account = account
        self._region = region
        self._lock = threading.Lock()
        self._queues: list[_Queue] = []
        self._sent: list[dict[str, Any]] = []

    def create_queue(
        self, name: str = "ecs-safe-events", *, sns: bool = False, task_events: bool = False
    ) -> str:
        """Create an SQS queue that gets every event from now on; returns its URL.

        With ``sns=True`` each message is an SNS notification wrapping the event, as when a
        lifecycle hook notifies an SNS topic that the queue subscribes to. With
        ``task_events=True`` it also gets ECS Task State Change events (the scheduler's
        task stops), which no other queue gets.
        """
        url = str(self._sqs().create_queue(QueueName=name)["QueueUrl"])
        with self._lock:
            if all(q.url != url for q in self._queues):
                self._queues.append(_Queue(url, sns, task_events))
        return url

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every event delivered so far, in EventBridge's shape (a copy)."""
        with self._lock:
            return list(self._sent)

    def publish(self, event: dict[str, Any]) -> None:
        """Send ``event`` (EventBridge's shape) to every queue."""
        task_event = event.get("detail-type") == TASK_STATE_DETAIL_TYPE
        with self._lock:
            queues = [q for q in self._queues if q.task_events or not task_event]
            if task_event and not queues:
                return  # asked for by no queue: not delivered, not recorded
            self._sent.append(event)
        for queue in queues:
            body = (
                _sns_notification(event, account=self._account, region=self._region)
                if queue.sns
                else event
            )
            self._sqs().send_message(QueueUrl=queue.url, MessageBody=json.dumps(body))

    def lifecycle_action_began(self, action: LifecycleAction) -> None:
        """Publish the event of an instance entering ``Terminating:Wait``."""
        self.publish(
            lifecycle_event(
                action, account=self._account, region=self._region, metadata=action.metadata
            )
        )

    def tasks_stopped(self, events: list[TaskEvent]) -> None:
        """Publish ECS Task State Change for each stop in a scheduler pass's events."""
        for event in events:
            if event.kind == "stopped":
                self.publish(task_stopped_event(event, account=self._account, region=self._region))

    def spot_interruption(self, instance_id: str, *, at: datetime) -> dict[str, Any]:
        """Publish a Spot interruption notice; returns the event."""
        event = spot_interruption_event(
            instance_id, account=self._account, region=self._region, at=at
        )
        self.publish(event)
        return event

    def rebalance_recommendation(self, instance_id: str, *, at: datetime) -> dict[str, Any]:
        """Publish a rebalance recommendation; returns the event."""
        event = rebalance_event(instance_id, account=self._account, region=self._region, at=at)
        self.publish(event)
        return event

    def reset(self) -> None:
        """Forget the queues and the events (moto's SQS state is being cleared too)."""
        with self._lock:
            self._queues.clear()
            self._sent.clear()
