"""Notices: every shape a lifecycle or Spot notice reaches a worker in; the rest refused.

The literal payloads are AWS's documented shapes (EventBridge's events for Auto Scaling and
EC2, a hook's SNS notification, Auto Scaling's test notification); the last tests read what
LocalEcs puts on SQS over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config

from ecs_safe import InvalidInputError
from ecs_safe.local import LocalEcs
from ecs_safe.notices import (
    LifecycleActionNotice,
    NoticeError,
    RebalanceNotice,
    SpotInterruptionNotice,
    parse_notice,
)

TOKEN = "c613620e-07e2-4ed2-a9e2-ef8258911ade"

EVENTBRIDGE_LIFECYCLE: dict[str, Any] = {
    "version": "0",
    "id": "468fe059-f4b7-445f-bb22-2a3a4d0d7e09",
    "detail-type": "EC2 Instance-terminate Lifecycle Action",
    "source": "aws.autoscaling",
    "account": "123456789012",
    "time": "2026-12-02T03:51:05Z",
    "region": "us-west-2",
    "resources": [
        "arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:042cba90-ad2f-431c-9b4d-"
        "6d9055bcc9fb:autoScalingGroupName/my-asg"
    ],
    "detail": {
        "LifecycleActionToken": TOKEN,
        "AutoScalingGroupName": "my-asg",
        "LifecycleHookName": "my-hook",
        "EC2InstanceId": "i-1234567890abcdef0",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "NotificationMetadata": "cluster=prod",
        "Origin": "AutoScalingGroup",
        "Destination": "EC2",
    },
}

HOOK_MESSAGE: dict[str, Any] = {
    "Origin": "AutoScalingGroup",
    "LifecycleHookName": "my-hook",
    "Destination": "EC2",
    "AccountId": "123456789012",
    "RequestId": "4225d8f2-3fca-d7ae-8f89-87f1d29a2b2f",
    "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
    "AutoScalingGroupName": "my-asg",
    "Service": "AWS Auto Scaling",
    "Time": "2026-12-02T03:51:05.613Z",
    "EC2InstanceId": "i-1234567890abcdef0",
    "LifecycleActionToken": TOKEN,
}

SPOT: dict[str, Any] = {
    "version": "0",
    "id": "12345678-1234-1234-1234-123456789012",
    "detail-type": "EC2 Spot Instance Interruption Warning",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2026-12-02T03:52:00Z",
    "region": "us-east-2",
    "resources": ["arn:aws:ec2:us-east-2a:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "instance-action": "terminate"},
}

REBALANCE: dict[str, Any] = {
    "version": "0",
    "id": "12345678-1234-1234-1234-123456789013",
    "detail-type": "EC2 Instance Rebalance Recommendation",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2026-12-02T03:50:00Z",
    "region": "us-east-2",
    "resources": ["arn:aws:ec2:us-east-2a:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0"},
}

TEST_NOTIFICATION: dict[str, Any] = {
    "AccountId": "123456789012",
    "RequestId": "1e2b0b16-e5a4-11e5-9d97-3b7d7e23f8a5",
    "AutoScalingGroupARN": "arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:x",
    "AutoScalingGroupName": "my-asg",
    "Service": "AWS Auto Scaling",
    "Event": "autoscaling:TEST_NOTIFICATION",
    "Time": "2026-12-02T03:40:00.000Z",
}


def sns(message: dict[str, Any]) -> dict[str, Any]:
    """An SNS notification as SQS receives it (the message is a JSON string)."""
    return {
        "Type": "Notification",
        "MessageId": "b8a7c6d5-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-west-2:123456789012:my-hook-topic",
        "Subject": "Auto Scaling:  Lifecycle action 'TERMINATING' for instance i-1234567890abcdef0",
        "Message": json.dumps(message),
        "Timestamp": "2026-12-02T03:51:05.650Z",
        "SignatureVersion": "1",
    }


def test_eventbridge_lifecycle_action() -> None:
    notice = parse_notice(EVENTBRIDGE_LIFECYCLE)
    assert notice == LifecycleActionNotice(
        instance_id="i-1234567890abcdef0",
        group="my-asg",
        hook="my-hook",
        token=TOKEN,
        metadata="cluster=prod",
        time=datetime(2026, 12, 2, 3, 51, 5, tzinfo=UTC),
        event_id="468fe059-f4b7-445f-bb22-2a3a4d0d7e09",
        account="123456789012",
        region="us-west-2",
    )
    assert notice.kind == "lifecycle-action"
    assert notice.transition == "autoscaling:EC2_INSTANCE_TERMINATING"


def test_sns_wrapped_hook_message_and_every_route_has_one_key() -> None:
    from_sns = parse_notice(json.dumps(sns(HOOK_MESSAGE)))
    assert isinstance(from_sns, LifecycleActionNotice)
    assert (from_sns.instance_id, from_sns.group, from_sns.hook, from_sns.token) == (
        "i-1234567890abcdef0",
        "my-asg",
        "my-hook",
        TOKEN,
    )
    assert from_sns.event_id == HOOK_MESSAGE["RequestId"]
    assert from_sns.account == "123456789012"
    assert from_sns.metadata is None
    assert from_sns.time == datetime(2026, 12, 2, 3, 51, 5, 613000, tzinfo=UTC)
    direct = parse_notice(json.dumps(HOOK_MESSAGE))  # the hook's SQS target: no SNS
    eventbridge = parse_notice(EVENTBRIDGE_LIFECYCLE)
    assert from_sns.key == direct.key == eventbridge.key


def test_sqs_message_and_lambda_records_are_unwrapped() -> None:
    body = json.dumps(sns(HOOK_MESSAGE))
    received = {"MessageId": "m-1", "ReceiptHandle": "rh", "Body": body, "MD5OfBody": "x"}
    lambda_sqs = {"messageId": "m-1", "receiptHandle": "rh", "body": body, "eventSource": "aws:sqs"}
    lambda_sns = {"EventSource": "aws:sns", "Sns": sns(HOOK_MESSAGE)}
    keys = {parse_notice(x).key for x in (received, lambda_sqs, lambda_sns, body.encode())}
    assert keys == {f"lifecycle:my-asg:my-hook:i-1234567890abcdef0:{TOKEN}"}


def test_spot_and_rebalance_directly_and_through_sns() -> None:
    spot = parse_notice(SPOT)
    assert spot == SpotInterruptionNotice(
        instance_id="i-1234567890abcdef0",
        action="terminate",
        time=datetime(2026, 12, 2, 3, 52, tzinfo=UTC),
        event_id=SPOT["id"],
        account="123456789012",
        region="us-east-2",
    )
    assert parse_notice(sns(SPOT)) == spot
    rebalance = parse_notice(json.dumps(REBALANCE))
    assert isinstance(rebalance, RebalanceNotice)
    assert rebalance.instance_id == "i-1234567890abcdef0"
    assert spot.key != rebalance.key


@pytest.mark.parametrize(
    ("body", "kind", "match"),
    [
        (TEST_NOTIFICATION, "test", "test notification"),
        (sns(TEST_NOTIFICATION), "test", "test notification"),
        (
            HOOK_MESSAGE | {"LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"},
            "unsupported",
            "LAUNCHING",
        ),
        (
            EVENTBRIDGE_LIFECYCLE | {"detail-type": "EC2 Instance State-change Notification"},
            "unsupported",
            "State-change",
        ),
        (
            TEST_NOTIFICATION | {"Event": "autoscaling:EC2_INSTANCE_TERMINATE"},
            "unsupported",
            "EC2_INSTANCE_TERMINATE",
        ),
        ("not json", "malformed", "not JSON"),
        ("[1, 2]", "malformed", "JSON object, not list"),
        (b"\xff", "malformed", "UTF-8"),
        ({"hello": "world"}, "malformed", "got the keys hello"),
        ({k: v for k, v in HOOK_MESSAGE.items() if k != "EC2InstanceId"}, "malformed", "EC2"),
        (EVENTBRIDGE_LIFECYCLE | {"detail": "x"}, "malformed", "no detail object"),
        (SPOT | {"detail": {"instance-id": "i-1"}}, "malformed", "instance-action"),
        (SPOT | {"time": "yesterday"}, "malformed", "time"),
        (sns({"Type": "Notification", "Message": "not json"}), "malformed", "not JSON"),
    ],
)
def test_anything_else_is_a_notice_error(body: Any, kind: str, match: str) -> None:
    with pytest.raises(NoticeError, match=match) as caught:
        parse_notice(body)
    assert caught.value.kind == kind
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.code == "InvalidNotice"


def test_endless_wrapping_is_refused() -> None:
    body: dict[str, Any] = HOOK_MESSAGE
    for _ in range(6):
        body = sns(body)
    with pytest.raises(NoticeError, match="wrapped more than"):
        parse_notice(body)


# ------------------------------------------------------------------ what LocalEcs sends


@pytest.fixture
def sqs(ecs_env: LocalEcs) -> Iterator[Any]:
    client = boto3.session.Session(
        aws_access_key_id=ecs_env.access_key_id,
        aws_secret_access_key=ecs_env.secret_access_key,
        region_name=ecs_env.region_name,
    ).client(
        "sqs", endpoint_url=ecs_env.endpoint_url, config=Config(retries={"total_max_attempts": 1})
    )
    yield client
    client.close()


def test_localecs_queues_parse_to_the_same_action(ecs_env: LocalEcs, sqs: Any) -> None:
    plain = ecs_env.events.create_queue("notices-eventbridge")
    wrapped = ecs_env.events.create_queue("notices-sns", sns=True)
    action = ecs_env.lifecycle_actions.begin_termination("web-asg", "drain", "i-0aaaabbbbccccdddd")
    ecs_env.interrupt_spot("i-0aaaabbbbccccdddd", drain=False)
    notices = {
        url: [
            parse_notice(m["Body"])
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        ]
        for url in (plain, wrapped)
    }
    keys = set()
    for url in (plain, wrapped):
        lifecycle, spot = sorted(notices[url], key=lambda n: n.kind)
        assert isinstance(lifecycle, LifecycleActionNotice)
        assert (lifecycle.group, lifecycle.hook) == ("web-asg", "drain")
        assert lifecycle.token == action.token
        assert isinstance(spot, SpotInterruptionNotice)
        assert spot.instance_id == "i-0aaaabbbbccccdddd"
        keys.add(lifecycle.key)
    assert len(keys) == 1
