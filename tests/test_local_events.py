"""LocalEcs's events on SQS: lifecycle actions and Spot notices, in EventBridge's shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config

from ecs_safe.local import LocalEcs
from ecs_safe.local.events import (
    LIFECYCLE_DETAIL_TYPE,
    REBALANCE_DETAIL_TYPE,
    SPOT_DETAIL_TYPE,
    TASK_STATE_DETAIL_TYPE,
)

CLUSTER = "spot"


@pytest.fixture(scope="module")
def clients(local_ecs: LocalEcs) -> Iterator[tuple[Any, Any]]:
    session = boto3.session.Session(
        aws_access_key_id=local_ecs.access_key_id,
        aws_secret_access_key=local_ecs.secret_access_key,
        region_name=local_ecs.region_name,
    )
    config = Config(retries={"total_max_attempts": 1})
    sqs = session.client("sqs", endpoint_url=local_ecs.endpoint_url, config=config)
    ecs = session.client("ecs", endpoint_url=local_ecs.endpoint_url, config=config)
    yield sqs, ecs
    sqs.close()
    ecs.close()


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_lifecycle_action_puts_an_eventbridge_event_on_the_queue(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    """EventBridge's "EC2 Instance-terminate Lifecycle Action": the fields a hook handler reads
    (EC2InstanceId, AutoScalingGroupName, LifecycleHookName, LifecycleActionToken,
    LifecycleTransition), and no ECS cluster."""
    sqs, _ = clients
    url = ecs_env.events.create_queue("lifecycle")
    action = ecs_env.lifecycle_actions.begin_termination("web-asg", "drain", "i-0123456789abcdef0")
    [event] = received(sqs, url)
    assert event["detail-type"] == LIFECYCLE_DETAIL_TYPE
    assert event["source"] == "aws.autoscaling"
    assert event["region"] == ecs_env.region_name
    assert event["resources"][0].endswith(":autoScalingGroupName/web-asg")
    assert event["detail"] == {
        "Origin": "AutoScalingGroup",
        "Destination": "EC2",
        "LifecycleActionToken": action.token,
        "AutoScalingGroupName": "web-asg",
        "LifecycleHookName": "drain",
        "EC2InstanceId": "i-0123456789abcdef0",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
    }
    assert "cluster" not in json.dumps(event).lower()


def test_an_sns_queue_gets_the_hooks_notification(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    sqs, _ = clients
    url = ecs_env.events.create_queue("via-sns", sns=True)
    action = ecs_env.lifecycle_actions.begin_termination("web-asg", "drain", "i-0123456789abcdef1")
    [notification] = received(sqs, url)
    assert notification["Type"] == "Notification"
    message = json.loads(notification["Message"])
    assert message["LifecycleActionToken"] == action.token
    assert message["EC2InstanceId"] == "i-0123456789abcdef1"
    assert message["Service"] == "AWS Auto Scaling"


def test_a_spot_interruption_is_announced_and_the_agent_drains(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    """The agent with ECS_ENABLE_SPOT_INSTANCE_DRAINING sets the instance DRAINING on the
    notice; the service scheduler then moves its service tasks."""
    sqs, ecs = clients
    url = ecs_env.events.create_queue("spot")
    ecs_env.create_cluster(CLUSTER)
    [spot, other] = ecs_env.register_instances(CLUSTER, 2)
    ecs_env.create_service(CLUSTER, "web", desired_count=1)
    ecs_env.start_service_task(CLUSTER, spot, "web")
    ecs_env.scheduler.manage(CLUSTER, "web")
    ec2_id = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[spot])[
        "containerInstances"
    ][0]["ec2InstanceId"]

    event = ecs_env.interrupt_spot(ec2_id)

    [delivered] = received(sqs, url)
    assert delivered == event
    assert delivered["detail-type"] == SPOT_DETAIL_TYPE
    assert delivered["source"] == "aws.ec2"
    assert delivered["detail"] == {"instance-id": ec2_id, "instance-action": "terminate"}
    assert delivered["resources"] == [
        f"arn:aws:ec2:{ecs_env.region_name}:123456789012:instance/{ec2_id}"
    ]
    [described] = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[spot])[
        "containerInstances"
    ]
    assert described["status"] == "DRAINING"
    ecs_env.scheduler.run_until_settled()
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(cluster=CLUSTER)["taskArns"])
    live = [t["containerInstanceArn"] for t in tasks["tasks"] if t["lastStatus"] == "RUNNING"]
    assert live == [other]


def test_interrupt_spot_without_the_agents_draining(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    _, ecs = clients
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    ec2_id = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])[
        "containerInstances"
    ][0]["ec2InstanceId"]
    ecs_env.interrupt_spot(ec2_id, drain=False)
    [described] = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])[
        "containerInstances"
    ]
    assert described["status"] == "ACTIVE"
    assert [e["detail-type"] for e in ecs_env.events.sent] == [SPOT_DETAIL_TYPE]


def test_a_rebalance_recommendation_changes_nothing_in_ecs(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    sqs, ecs = clients
    url = ecs_env.events.create_queue("rebalance")
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    ec2_id = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])[
        "containerInstances"
    ][0]["ec2InstanceId"]
    ecs_env.recommend_rebalance(ec2_id)
    [event] = received(sqs, url)
    assert (event["detail-type"], event["detail"]) == (
        REBALANCE_DETAIL_TYPE,
        {"instance-id": ec2_id},
    )
    [described] = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])[
        "containerInstances"
    ]
    assert described["status"] == "ACTIVE"


def test_reset_forgets_the_queues(ecs_env: LocalEcs) -> None:
    ecs_env.events.create_queue("short-lived")
    ecs_env.reset()
    ecs_env.lifecycle_actions.begin_termination("g", "h", "i-0123456789abcdef2")
    assert len(ecs_env.events.sent) == 1  # recorded, but no queue to deliver to


def test_task_stops_reach_only_the_queues_that_ask(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    """ECS Task State Change (EventBridge's shape) for each task the scheduler stops."""
    sqs, ecs = clients
    plain = ecs_env.events.create_queue("plain")
    tasks_url = ecs_env.events.create_queue("task-events", task_events=True)
    ecs_env.create_cluster(CLUSTER)
    [old, _] = ecs_env.register_instances(CLUSTER, 2)
    ecs_env.create_service(CLUSTER, "web", desired_count=1)
    [task] = ecs_env.start_service_task(CLUSTER, old, "web")
    ecs_env.scheduler.manage(CLUSTER, "web")
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[old], status="DRAINING"
    )
    ecs_env.scheduler.run_until_settled()
    [event] = [e for e in received(sqs, tasks_url) if e["detail"]["taskArn"] == task]
    assert (event["detail-type"], event["source"]) == (TASK_STATE_DETAIL_TYPE, "aws.ecs")
    assert event["resources"] == [task]
    detail = event["detail"]
    assert (detail["lastStatus"], detail["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert detail["containerInstanceArn"] == old
    assert detail["group"] == "service:web"
    assert detail["clusterArn"].endswith(f":cluster/{CLUSTER}")
    assert detail["stoppedReason"]
    assert received(sqs, plain) == []
