"""LocalEcs's scale-in through the terminate lifecycle hook, over HTTP, as AWS documents it.

A group with an ``autoscaling:EC2_INSTANCE_TERMINATING`` hook keeps a leaving instance in
``Terminating:Wait`` (DescribeAutoScalingInstances says so) until CompleteLifecycleAction or the
heartbeat timeout; only then is it terminated, and only then does it leave its ECS cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from aiobotocore.config import AioConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from ecs_safe.local import LocalEcs
from ecs_safe.local.events import LIFECYCLE_DETAIL_TYPE

CLUSTER = "fleet"
GROUP = "web-asg"
HOOK = "drain"


@dataclass(frozen=True)
class Clients:
    ecs: Any
    autoscaling: Any
    ec2: Any
    sqs: Any


@pytest.fixture(scope="module")
def aws(local_ecs: LocalEcs) -> Iterator[Clients]:
    session = boto3.session.Session(
        aws_access_key_id=local_ecs.access_key_id,
        aws_secret_access_key=local_ecs.secret_access_key,
        region_name=local_ecs.region_name,
    )
    config = Config(retries={"total_max_attempts": 1})
    made = {
        name: session.client(name, endpoint_url=local_ecs.endpoint_url, config=config)
        for name in ("ecs", "autoscaling", "ec2", "sqs")
    }
    yield Clients(**made)
    for client in made.values():
        client.close()


def states(aws: Clients) -> dict[str, str]:
    described = aws.autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
    return {i["InstanceId"]: i["LifecycleState"] for i in described}


def group(aws: Clients) -> dict[str, Any]:
    [described] = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    return dict(described)


def ec2_state(aws: Clients, instance_id: str) -> str:
    reservations = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def registered(aws: Clients) -> dict[str, str]:
    """EC2 instance ID -> status, for the container instances listed in the cluster."""
    arns = aws.ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    if not arns:
        return {}
    described = aws.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)
    return {d["ec2InstanceId"]: d["status"] for d in described["containerInstances"]}


def put_hook(aws: Clients, *, timeout: int = 300, result: str = "ABANDON") -> None:
    aws.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=GROUP,
        LifecycleHookName=HOOK,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=timeout,
        DefaultResult=result,
        NotificationMetadata=json.dumps({"cluster": CLUSTER}),
    )


def events(aws: Clients, url: str) -> list[dict[str, Any]]:
    messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def fleet(ecs_env: LocalEcs, aws: Clients) -> tuple[LocalEcs, str, list[str]]:
    """Three registered members of a hooked group (heartbeat 300 s), and the event queue."""
    ecs_env.create_cluster(CLUSTER)
    url = ecs_env.events.create_queue("lifecycle")
    created = ecs_env.create_auto_scaling_group(GROUP, CLUSTER, 3, max_size=5)
    put_hook(aws)
    return ecs_env, url, list(created.instance_ids)


def test_scale_in_waits_in_terminating_wait_until_continue(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients
) -> None:
    local, url, ids = fleet
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)

    [leaving] = [i for i, state in states(aws).items() if state == "Terminating:Wait"]
    # The default policy's simplification: the first launched of the fullest zone.
    assert leaving == ids[0]
    described = group(aws)
    assert described["DesiredCapacity"] == 2
    assert {i["InstanceId"]: i["LifecycleState"] for i in described["Instances"]}[leaving] == (
        "Terminating:Wait"
    )
    [event] = events(aws, url)
    assert event["detail-type"] == LIFECYCLE_DETAIL_TYPE
    assert event["detail"]["EC2InstanceId"] == leaving
    assert event["detail"]["LifecycleHookName"] == HOOK
    assert json.loads(event["detail"]["NotificationMetadata"]) == {"cluster": CLUSTER}
    # Waiting is not terminating: the instance is running and still in the cluster.
    assert ec2_state(aws, leaving) == "running"
    assert registered(aws)[leaving] == "ACTIVE"
    # No replacement: the desired capacity went down.
    assert len(states(aws)) == 3
    [arn] = [a for a, i in _arns(aws).items() if i == leaving]

    aws.autoscaling.complete_lifecycle_action(
        AutoScalingGroupName=GROUP,
        LifecycleHookName=HOOK,
        LifecycleActionToken=event["detail"]["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    assert ec2_state(aws, leaving) == "terminated"
    assert leaving not in registered(aws)
    assert set(states(aws)) == set(ids[1:])
    [gone] = aws.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])[
        "containerInstances"
    ]
    assert gone["status"] == "INACTIVE"
    assert local.lifecycle_actions.advance(300) == []


def test_update_group_lowering_desired_times_out_with_the_default_result(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients
) -> None:
    local, _, ids = fleet
    arns = {v: k for k, v in _arns(aws).items()}
    [task] = local.start_standalone_task(CLUSTER, arns[ids[0]])
    aws.autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    assert states(aws)[ids[0]] == "Terminating:Wait"
    assert local.lifecycle_actions.advance(299) == []
    assert states(aws)[ids[0]] == "Terminating:Wait"
    [action] = local.lifecycle_actions.advance(1)
    assert (action.instance_id, action.result, action.timed_out) == (ids[0], "ABANDON", True)
    # For a terminate hook ABANDON ends in termination too, and the host's tasks stop.
    assert ec2_state(aws, ids[0]) == "terminated"
    assert ids[0] not in registered(aws)
    [stopped] = aws.ecs.describe_tasks(cluster=CLUSTER, tasks=[task])["tasks"]
    assert stopped["lastStatus"] == "STOPPED"
    assert stopped["stoppedReason"] == f"Host EC2 (instance {ids[0]}) terminated."


def _arns(aws: Clients) -> dict[str, str]:
    """Container instance ARN -> EC2 instance ID."""
    arns = aws.ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    described = aws.ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)
    return {d["containerInstanceArn"]: d["ec2InstanceId"] for d in described["containerInstances"]}


def test_terminate_in_group_without_decrement_launches_a_replacement_that_joins(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients
) -> None:
    _, _, ids = fleet
    answer = aws.autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=ids[1], ShouldDecrementDesiredCapacity=False
    )
    assert answer["Activity"]["Description"] == f"Terminating EC2 instance: {ids[1]}"
    now = states(aws)
    assert now[ids[1]] == "Terminating:Wait"
    [new] = set(now) - set(ids)
    assert now[new] == "InService"
    assert group(aws)["DesiredCapacity"] == 3
    # The replacement's agent joined; the leaving instance is still registered.
    assert registered(aws) == {**dict.fromkeys(ids, "ACTIVE"), new: "ACTIVE"}


def test_terminate_in_group_with_decrement_lowers_desired(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients
) -> None:
    _, _, ids = fleet
    answer = aws.autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=ids[2], ShouldDecrementDesiredCapacity=True
    )
    assert "shrinking the capacity from 3 to 2" in answer["Activity"]["Cause"]
    assert states(aws) == {ids[0]: "InService", ids[1]: "InService", ids[2]: "Terminating:Wait"}
    assert group(aws)["DesiredCapacity"] == 2
    with pytest.raises(ClientError) as info:
        aws.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=ids[2], ShouldDecrementDesiredCapacity=True
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_without_a_hook_scale_in_terminates_at_once_and_leaves_the_cluster(
    ecs_env: LocalEcs, aws: Clients
) -> None:
    ecs_env.create_cluster(CLUSTER)
    created = ecs_env.create_auto_scaling_group(GROUP, CLUSTER, 2)
    ids = list(created.instance_ids)
    ecs_env.create_service(CLUSTER, "web", desired_count=1)
    [task] = ecs_env.start_service_task(CLUSTER, created.container_instance_arns[0], "web")
    ecs_env.scheduler.manage(CLUSTER, "web")
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=1)
    assert states(aws) == {ids[1]: "InService"}
    assert ec2_state(aws, ids[0]) == "terminated"
    assert registered(aws) == {ids[1]: "ACTIVE"}
    assert ecs_env.lifecycle_actions.advance(7200) == []
    # The host's task stopped with it; the service scheduler replaces it on the other host.
    ecs_env.scheduler.run_until_settled()
    described = aws.ecs.describe_tasks(
        cluster=CLUSTER, tasks=aws.ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    )["tasks"]
    by_arn = {t["taskArn"]: t for t in described}
    assert by_arn[task]["lastStatus"] == "STOPPED"
    [replacement] = [t for t in described if t["lastStatus"] == "RUNNING"]
    assert replacement["containerInstanceArn"] == created.container_instance_arns[1]


def test_the_termination_policy_skips_protected_instances_and_balances_zones(
    ecs_env: LocalEcs, aws: Clients
) -> None:
    ecs_env.create_cluster(CLUSTER)
    zones = ("us-east-1a", "us-east-1b")
    ids = list(
        ecs_env.create_auto_scaling_group(GROUP, CLUSTER, 4, availability_zones=zones).instance_ids
    )
    put_hook(aws)
    described = aws.autoscaling.describe_auto_scaling_instances(InstanceIds=ids)
    zone_of = {i["InstanceId"]: i["AvailabilityZone"] for i in described["AutoScalingInstances"]}
    aws.autoscaling.set_instance_protection(
        AutoScalingGroupName=GROUP, InstanceIds=[ids[0]], ProtectedFromScaleIn=True
    )
    protected = aws.autoscaling.describe_auto_scaling_instances(InstanceIds=[ids[0]])
    assert protected["AutoScalingInstances"][0]["ProtectedFromScaleIn"] is True

    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=0)

    # Every unprotected instance leaves; the protected one stays above the desired capacity.
    now = states(aws)
    assert now[ids[0]] == "InService"
    assert sorted(i for i, s in now.items() if s == "Terminating:Wait") == sorted(ids[1:])
    # Zone by zone: whichever zone has the most instances loses one first.
    order = [a.instance_id for a in ecs_env.lifecycle_actions.waiting()]
    counts = {z: sum(1 for i in ids if zone_of[i] == z) for z in set(zone_of.values())}
    first_zone = zone_of[order[0]]
    assert counts[first_zone] == max(counts.values())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"op": "set_desired_capacity", "DesiredCapacity": 6}, "above max value 5"),
        ({"op": "update_auto_scaling_group", "DesiredCapacity": 9}, "must be between"),
        ({"op": "update_auto_scaling_group", "MinSize": 4, "MaxSize": 2}, "Max bound"),
        ({"op": "put_lifecycle_hook", "HeartbeatTimeout": 20}, "between 30 and 7200"),
    ],
)
def test_what_aws_refuses_is_refused(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients, call: dict[str, Any], message: str
) -> None:
    kwargs = dict(call)
    operation = getattr(aws.autoscaling, kwargs.pop("op"))
    if operation == aws.autoscaling.put_lifecycle_hook:
        kwargs |= {
            "LifecycleHookName": "short",
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        }
    with pytest.raises(ClientError) as info:
        operation(AutoScalingGroupName=GROUP, **kwargs)
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert message in info.value.response["Error"]["Message"]
    assert set(states(aws).values()) == {"InService"}


def test_hooks_report_aws_global_timeout(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients
) -> None:
    [hook] = aws.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=GROUP)["LifecycleHooks"]
    # The smaller of 48 hours and 100 heartbeat timeouts (moto says 48 hours whatever).
    assert (hook["HeartbeatTimeout"], hook["GlobalTimeout"]) == (300, 30_000)


def test_an_ec2_termination_mid_wait_ends_the_action(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients
) -> None:
    _, _, ids = fleet
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    aws.ec2.terminate_instances(InstanceIds=[ids[0]])
    assert ids[0] not in registered(aws)
    assert ids[0] not in states(aws)
    # It was leaving: no replacement.
    assert len(states(aws)) == 2
    with pytest.raises(ClientError, match="No active Lifecycle Action"):
        aws.autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=GROUP,
            LifecycleHookName=HOOK,
            InstanceId=ids[0],
            LifecycleActionResult="CONTINUE",
        )


async def test_a_lost_complete_lifecycle_action_response_still_acted(
    fleet: tuple[LocalEcs, str, list[str]], aws: Clients
) -> None:
    """Through aiobotocore, as ecs-safe calls: the response is lost, the instance is gone."""
    local, _, ids = fleet
    aws.autoscaling.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=2)
    local.inject_fault("CompleteLifecycleAction", after_acting=True, disconnect=True)
    kwargs = local.client_kwargs()
    async with kwargs["session"].create_client(
        "autoscaling",
        endpoint_url=kwargs["endpoint_url"],
        region_name=kwargs["region_name"],
        config=AioConfig(retries={"total_max_attempts": 1}),
    ) as autoscaling:
        with pytest.raises(Exception, match="Connection was closed"):
            await autoscaling.complete_lifecycle_action(
                AutoScalingGroupName=GROUP,
                LifecycleHookName=HOOK,
                InstanceId=ids[0],
                LifecycleActionResult="CONTINUE",
            )
        described = await autoscaling.describe_auto_scaling_instances(InstanceIds=[ids[0]])
    assert described["AutoScalingInstances"] == []
    assert ec2_state(aws, ids[0]) == "terminated"
    assert local.calls("autoscaling:CompleteLifecycleAction") == 1
    assert local.pending_faults() == 0
