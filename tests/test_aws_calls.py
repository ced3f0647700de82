"""The Auto Scaling, EC2 and SQS call layer (`ecs_safe._aws_calls`) against LocalEcs.

Each test opens the public client and takes the call layers it hands its workflows
(``_autoscaling_calls``, ``_ec2_calls``, ``_queue_calls``), so the requests go the way every
user path sends them: the client's transports, buckets, retries and audit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from fault_proxy import Fault, FaultProxy

from ecs_safe import EcsSafeClient, InvalidInputError, LifecycleActionNotFoundError, RetryConfig
from ecs_safe._aws_calls import AutoScalingGroupNotFoundError
from ecs_safe.local import LocalEcs

UNKNOWN_ID = "i-0123456789abcdef0"


def _boto(env: LocalEcs, service: str) -> Any:
    """A plain botocore client for seeding and for reading the effect behind the client."""
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client(
        service,
        region_name=env.region_name,
        endpoint_url=env.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
async def client(ecs_env: LocalEcs) -> AsyncIterator[EcsSafeClient]:
    """The public async client on LocalEcs."""
    async with EcsSafeClient(**ecs_env.client_kwargs()) as opened:
        yield opened


def _group(env: LocalEcs, name: str = "web", count: int = 2) -> list[str]:
    env.create_cluster("prod")
    return list(env.create_auto_scaling_group(name, "prod", count).instance_ids)


async def test_groups_hooks_and_members_are_read_into_models(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    members = _group(ecs_env)
    _boto(ecs_env, "autoscaling").put_lifecycle_hook(
        LifecycleHookName="drain",
        AutoScalingGroupName="web",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=300,
        DefaultResult="CONTINUE",
    )
    calls = await client._autoscaling_calls()
    assert calls is await client._autoscaling_calls()  # made once

    [hook] = await calls.describe_lifecycle_hooks("web")
    assert (hook.name, hook.group, hook.transition) == (
        "drain",
        "web",
        "autoscaling:EC2_INSTANCE_TERMINATING",
    )
    assert (hook.heartbeat_timeout, hook.default_result) == (300, "CONTINUE")

    [group] = await calls.describe_groups(["web", "no-such-group"])
    assert (group.name, group.min_size, group.max_size, group.desired_capacity) == ("web", 0, 2, 2)
    assert [i.instance_id for i in group.instances] == members
    assert await calls.group_instance_ids("web") == members
    with pytest.raises(AutoScalingGroupNotFoundError):
        await calls.group("no-such-group")

    found = await calls.describe_instances([*members, UNKNOWN_ID])
    assert sorted(i.instance_id for i in found) == sorted(members)  # the unknown one is absent
    assert {(i.group, i.lifecycle_state) for i in found} == {("web", "InService")}


async def test_sizes_are_set_and_an_instance_terminated_in_its_group(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    members = _group(ecs_env, count=3)
    calls = await client._autoscaling_calls()
    await calls.set_sizes("web", min_size=1, max_size=5)
    [group] = await calls.describe_groups(["web"])
    assert (group.min_size, group.max_size, group.desired_capacity) == (1, 5, 3)

    assert await calls.terminate_instance(members[0], decrement_desired_capacity=True) is False
    [group] = await calls.describe_groups(["web"])
    assert group.desired_capacity == 2
    assert members[0] not in [
        i.instance_id for i in group.instances if i.lifecycle_state == "InService"
    ]

    with pytest.raises(InvalidInputError):
        await calls.set_sizes("web")  # nothing to set: refused before any request


async def test_ec2_instances_protection_and_termination(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    members = _group(ecs_env, count=2)
    _boto(ecs_env, "ec2").modify_instance_attribute(
        InstanceId=members[1], DisableApiTermination={"Value": True}
    )
    ec2 = await client._ec2_calls()

    found = await ec2.describe_instances([*members, UNKNOWN_ID])
    assert sorted(i.instance_id for i in found) == sorted(members)
    assert {(i.state, i.lifecycle, i.group) for i in found} == {("running", "on-demand", "web")}
    assert await ec2.termination_protected(members) == frozenset({members[1]})

    assert await ec2.terminate_instances([members[0]]) is False
    [gone] = await ec2.describe_instances([members[0]])
    assert gone.state in {"shutting-down", "terminated"}


async def test_queue_messages_are_received_extended_and_deleted(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    sqs = _boto(ecs_env, "sqs")
    url = sqs.create_queue(QueueName="events")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"detail-type": "x"}')
    queue = await client._queue_calls()

    [message] = await queue.receive(url, wait_seconds=0, visibility_timeout=30)
    assert (message.body, message.receive_count) == ('{"detail-type": "x"}', 1)
    assert message.message_id
    assert message.receipt_handle
    await queue.extend_visibility(url, message.receipt_handle, 60)
    assert await queue.receive(url, wait_seconds=0) == []  # still hidden
    await queue.delete(url, message.receipt_handle)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    with pytest.raises(InvalidInputError):
        await queue.receive(url, max_messages=11)


async def test_a_lifecycle_action_is_completed(ecs_env: LocalEcs, client: EcsSafeClient) -> None:
    members = _group(ecs_env, count=2)
    action = ecs_env.lifecycle_actions.begin_termination("web", "drain", members[0])
    calls = await client._autoscaling_calls()
    await calls.record_heartbeat(group="web", hook="drain", instance_id=members[0])
    assert action.heartbeats == 1
    verified = await calls.complete_lifecycle_action(
        group="web", hook="drain", instance_id=members[0], result="CONTINUE", token=action.token
    )
    assert verified is False
    assert (action.state, action.result) == ("Terminated", "CONTINUE")


async def test_a_lifecycle_action_that_is_not_waiting_is_a_typed_error(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    [member] = _group(ecs_env, count=1)
    calls = await client._autoscaling_calls()
    with pytest.raises(LifecycleActionNotFoundError):
        await calls.complete_lifecycle_action(
            group="web", hook="drain", instance_id=member, result="CONTINUE"
        )


def _proxied(env: LocalEcs, proxy: FaultProxy, **kwargs: Any) -> EcsSafeClient:
    return EcsSafeClient(
        endpoint_url=proxy.endpoint_url,
        region_name=env.region_name,
        session=env.session(),
        retry=RetryConfig(max_attempts=3),
        **kwargs,
    )


@pytest.mark.usefixtures("instant_retries")
async def test_a_refused_retry_after_a_lost_completion_is_verified_not_raised(
    ecs_env: LocalEcs,
) -> None:
    # The first response is lost after Auto Scaling acted, and the read that would prove it
    # fails too: the retry is sent, refused ("No active Lifecycle Action found") because the
    # first attempt worked, and that refusal is checked by a read, not raised.
    [member] = _group(ecs_env, count=1)
    action = ecs_env.lifecycle_actions.begin_termination("web", "drain", member)
    async with FaultProxy(ecs_env.endpoint_url) as proxy, _proxied(ecs_env, proxy) as client:
        proxy.inject("CompleteLifecycleAction", Fault.RESET, after_upstream=True)
        proxy.inject("DescribeAutoScalingInstances", Fault.DENIED)
        calls = await client._autoscaling_calls()
        verified = await calls.complete_lifecycle_action(
            group="web", hook="drain", instance_id=member, result="CONTINUE", token=action.token
        )
        assert verified is True
        assert proxy.forwarded("CompleteLifecycleAction") == 2  # the second one refused
        assert proxy.faulted("DescribeAutoScalingInstances") == 1
    assert (action.state, action.result) == ("Terminated", "CONTINUE")


@pytest.mark.usefixtures("instant_retries")
async def test_each_services_throttles_slow_that_services_bucket(ecs_env: LocalEcs) -> None:
    members = _group(ecs_env, count=1)
    async with FaultProxy(ecs_env.endpoint_url) as proxy, _proxied(ecs_env, proxy) as client:
        proxy.inject("TerminateInstances", Fault.THROTTLE, times=2)  # EC2's 503
        ec2 = await client._ec2_calls()
        assert await ec2.terminate_instances(members) is False
        limiter = client._opened().calls.transport.limiter
        ec2_bucket = limiter.bucket("TerminateInstances", "ec2")
        group_bucket = limiter.bucket("TerminateInstanceInAutoScalingGroup", "autoscaling")
        assert ec2_bucket is not None
        assert group_bucket is not None
        # Two throttles in a row lower EC2's modify rate; Auto Scaling's is its own.
        assert ec2_bucket.decreases == 1
        assert ec2_bucket.rate() < ec2_bucket.per_s
        assert group_bucket.decreases == 0
        assert proxy.forwarded("TerminateInstances") == 1
