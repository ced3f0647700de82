"""LocalEcs's Auto Scaling groups: real moto group members, registered in the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ecs_safe.local import LocalEcs


def client(local: LocalEcs, service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id=local.access_key_id,
        aws_secret_access_key=local.secret_access_key,
        region_name=local.region_name,
    ).client(
        service, endpoint_url=local.endpoint_url, config=Config(retries={"total_max_attempts": 1})
    )


@pytest.fixture(scope="module")
def clients(local_ecs: LocalEcs) -> Iterator[tuple[Any, Any]]:
    ecs, autoscaling = client(local_ecs, "ecs"), client(local_ecs, "autoscaling")
    yield ecs, autoscaling
    ecs.close()
    autoscaling.close()


def test_group_members_are_registered_except_the_ones_left_out(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    ecs, autoscaling = clients
    ecs_env.create_cluster("fleet")
    group = ecs_env.create_auto_scaling_group("web-asg", "fleet", 5, unregistered=2)
    members = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])
    assert sorted(i["InstanceId"] for i in members["AutoScalingGroups"][0]["Instances"]) == sorted(
        group.instance_ids
    )
    assert len(group.container_instance_arns) == 3
    assert len(group.unregistered_instance_ids) == 2
    listed = ecs.list_container_instances(cluster="fleet")["containerInstanceArns"]
    assert sorted(listed) == sorted(group.container_instance_arns)
    described = ecs.describe_container_instances(cluster="fleet", containerInstances=listed)
    registered_ids = {d["ec2InstanceId"] for d in described["containerInstances"]}
    assert registered_ids == set(group.instance_ids) - set(group.unregistered_instance_ids)
    # The built-in attributes come from the group's launch template.
    found = ecs.list_container_instances(
        cluster="fleet", filter="attribute:ecs.instance-type == t3.large"
    )
    assert len(found["containerInstanceArns"]) == 3


@pytest.mark.parametrize(("count", "unregistered"), [(0, 0), (2, 3), (2, -1)])
def test_bad_sizes_are_refused(ecs_env: LocalEcs, count: int, unregistered: int) -> None:
    ecs_env.create_cluster("fleet")
    with pytest.raises(ValueError, match=r"count|unregistered"):
        ecs_env.create_auto_scaling_group("g", "fleet", count, unregistered=unregistered)


def test_unknown_cluster_is_refused(ecs_env: LocalEcs) -> None:
    with pytest.raises(LookupError, match="create_cluster"):
        ecs_env.create_auto_scaling_group("g", "nowhere", 1)


# -- the terminate lifecycle hook: Terminating:Wait ------------------------------------------


def instance_state(ecs_env: LocalEcs, instance_id: str) -> str:
    ec2 = client(ecs_env, "ec2")
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return str(reservations[0]["Instances"][0]["State"]["Name"])
    finally:
        ec2.close()


def registered_ids(ecs: Any, cluster: str) -> set[str]:
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    if not arns:
        return set()
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
    return {d["ec2InstanceId"] for d in described["containerInstances"]}


@pytest.fixture
def waiting(ecs_env: LocalEcs) -> tuple[LocalEcs, str]:
    """A registered group member in Terminating:Wait, heartbeat timeout 300 s."""
    ecs_env.create_cluster("fleet")
    group = ecs_env.create_auto_scaling_group("asg", "fleet", 2)
    return ecs_env, group.instance_ids[0]


def test_heartbeats_extend_the_wait_and_continue_terminates_and_deregisters(
    waiting: tuple[LocalEcs, str], clients: tuple[Any, Any]
) -> None:
    local, instance_id = waiting
    ecs, _ = clients
    model = local.lifecycle_actions
    action = model.begin_termination("asg", "drain", instance_id, heartbeat_timeout=300)
    # A drain three times the heartbeat timeout, kept alive by heartbeats.
    for _ in range(9):
        assert model.advance(100) == []
        model.record_heartbeat("asg", "drain", token=action.token)
    assert action.state == "Terminating:Wait"
    assert action.heartbeats == 9
    assert instance_id in registered_ids(ecs, "fleet")
    model.complete("asg", "drain", "CONTINUE", instance_id=instance_id)
    assert (action.state, action.result, action.timed_out) == ("Terminated", "CONTINUE", False)
    assert instance_state(local, instance_id) == "terminated"
    assert instance_id not in registered_ids(ecs, "fleet")
    with pytest.raises(ValueError, match="No active Lifecycle Action"):
        model.record_heartbeat("asg", "drain", token=action.token)


def test_without_heartbeats_the_default_result_ends_it(
    waiting: tuple[LocalEcs, str], clients: tuple[Any, Any]
) -> None:
    local, instance_id = waiting
    ecs, _ = clients
    model = local.lifecycle_actions
    action = model.begin_termination(
        "asg", "drain", instance_id, heartbeat_timeout=300, default_result="ABANDON"
    )
    assert model.advance(299) == []
    assert model.advance(1) == [action]
    assert (action.state, action.result, action.timed_out) == ("Terminated", "ABANDON", True)
    # For a terminate hook ABANDON ends in termination too.
    assert instance_state(local, instance_id) == "terminated"
    assert instance_id not in registered_ids(ecs, "fleet")


def test_heartbeats_never_pass_the_global_limit(waiting: tuple[LocalEcs, str]) -> None:
    local, instance_id = waiting
    model = local.lifecycle_actions
    # 100 x 60 s = 100 minutes, below 48 h: the limit is 6,000 s after the start.
    action = model.begin_termination("asg", "drain", instance_id, heartbeat_timeout=60)
    assert action.global_deadline - action.started_at == timedelta(seconds=6000)
    for _ in range(100):
        model.advance(59)
        model.record_heartbeat("asg", "drain", instance_id=instance_id)
    # 5,900 s have passed; at 5,959 s a heartbeat may extend only to 6,000 s, not 6,019 s.
    model.advance(59)
    expires = model.record_heartbeat("asg", "drain", instance_id=instance_id)
    assert expires == action.global_deadline
    assert model.advance(100) == [action]


def test_the_global_limit_is_48_hours_for_long_timeouts(waiting: tuple[LocalEcs, str]) -> None:
    local, instance_id = waiting
    action = local.lifecycle_actions.begin_termination(
        "asg", "drain", instance_id, heartbeat_timeout=7200
    )
    assert action.global_deadline - action.started_at == timedelta(hours=48)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"heartbeat_timeout": 0}, "positive"), ({"default_result": "MAYBE"}, "CONTINUE or ABANDON")],
)
def test_bad_actions_are_refused(
    waiting: tuple[LocalEcs, str], kwargs: dict[str, Any], message: str
) -> None:
    local, instance_id = waiting
    with pytest.raises(ValueError, match=message):
        local.lifecycle_actions.begin_termination("asg", "drain", instance_id, **kwargs)


def test_a_bad_result_or_unknown_action_is_refused(waiting: tuple[LocalEcs, str]) -> None:
    local, instance_id = waiting
    model = local.lifecycle_actions
    model.begin_termination("asg", "drain", instance_id)
    with pytest.raises(ValueError, match="CONTINUE or ABANDON"):
        model.complete("asg", "drain", "STOP", instance_id=instance_id)
    with pytest.raises(ValueError, match="No active"):
        model.complete("asg", "other-hook", "CONTINUE", instance_id=instance_id)
    with pytest.raises(ValueError, match="already"):
        model.begin_termination("asg", "drain", instance_id)


def test_heartbeat_and_complete_over_http(
    waiting: tuple[LocalEcs, str], clients: tuple[Any, Any]
) -> None:
    local, instance_id = waiting
    ecs, autoscaling = clients
    action = local.lifecycle_actions.begin_termination(
        "asg", "drain", instance_id, heartbeat_timeout=300
    )
    local.lifecycle_actions.advance(200)
    autoscaling.record_lifecycle_action_heartbeat(
        AutoScalingGroupName="asg", LifecycleHookName="drain", LifecycleActionToken=action.token
    )
    assert action.heartbeats == 1
    assert local.lifecycle_actions.advance(200) == []
    with pytest.raises(ClientError) as info:
        autoscaling.complete_lifecycle_action(
            AutoScalingGroupName="asg",
            LifecycleHookName="drain",
            InstanceId=instance_id,
            LifecycleActionResult="LATER",
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"
    autoscaling.complete_lifecycle_action(
        AutoScalingGroupName="asg",
        LifecycleHookName="drain",
        InstanceId=instance_id,
        LifecycleActionResult="CONTINUE",
    )
    assert action.result == "CONTINUE"
    assert instance_id not in registered_ids(ecs, "fleet")
    # Everything else still reaches moto.
    assert autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["asg"])[
        "AutoScalingGroups"
    ]


# -- termination, joining, faults over HTTP ---------------------------------------------------


@pytest.fixture(scope="module")
def ec2_client(local_ecs: LocalEcs) -> Iterator[Any]:
    ec2 = client(local_ecs, "ec2")
    yield ec2
    ec2.close()


def members(autoscaling: Any, name: str = "asg") -> list[str]:
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    return [i["InstanceId"] for i in group["Instances"]]


def test_terminate_instances_leaves_the_cluster_and_the_replacement_joins(
    ecs_env: LocalEcs, clients: tuple[Any, Any], ec2_client: Any
) -> None:
    ecs, autoscaling = clients
    ecs_env.create_cluster("fleet")
    group = ecs_env.create_auto_scaling_group("asg", "fleet", 2)
    gone, kept = group.instance_ids
    ec2_client.terminate_instances(InstanceIds=[gone])
    [new] = set(members(autoscaling)) - {kept}
    assert registered_ids(ecs, "fleet") == {kept, new}
    assert instance_state(ecs_env, gone) == "terminated"


def test_disable_api_termination_is_refused_as_ec2_does(
    ecs_env: LocalEcs, clients: tuple[Any, Any], ec2_client: Any
) -> None:
    ecs, _ = clients
    ecs_env.create_cluster("fleet")
    protected, other = ecs_env.create_auto_scaling_group("asg", "fleet", 2).instance_ids
    ec2_client.modify_instance_attribute(
        InstanceId=protected, DisableApiTermination={"Value": True}
    )
    with pytest.raises(ClientError) as info:
        ec2_client.terminate_instances(InstanceIds=[other, protected])
    assert info.value.response["Error"]["Code"] == "OperationNotPermitted"
    # Refused as a whole: neither instance went anywhere.
    assert registered_ids(ecs, "fleet") == {protected, other}
    assert instance_state(ecs_env, other) == "running"


def test_a_surge_joins_the_cluster_and_the_scheduler_places_there(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    ecs, autoscaling = clients
    ecs_env.create_cluster("fleet")
    group = ecs_env.create_auto_scaling_group("asg", "fleet", 1, max_size=3)
    ecs_env.create_service("fleet", "web", desired_count=2, scheduler=True, host_port=8080)
    ecs_env.scheduler.run_until_settled()
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="asg", DesiredCapacity=3)
    new = set(members(autoscaling)) - set(group.instance_ids)
    assert len(new) == 2
    assert registered_ids(ecs, "fleet") == set(members(autoscaling))
    ecs_env.scheduler.run_until_settled()
    tasks = ecs.describe_tasks(cluster="fleet", tasks=ecs.list_tasks(cluster="fleet")["taskArns"])
    placed = {t["containerInstanceArn"] for t in tasks["tasks"] if t["lastStatus"] == "RUNNING"}
    assert len(placed) == 2  # one per host (a static host port)


def test_a_group_created_with_join_false_stays_out(
    ecs_env: LocalEcs, clients: tuple[Any, Any]
) -> None:
    ecs, autoscaling = clients
    ecs_env.create_cluster("fleet")
    group = ecs_env.create_auto_scaling_group("asg", "fleet", 1, max_size=2, join=False)
    autoscaling.set_desired_capacity(AutoScalingGroupName="asg", DesiredCapacity=2)
    assert len(members(autoscaling)) == 2
    assert registered_ids(ecs, "fleet") == set(group.instance_ids)
    ecs_env.join_cluster("asg", "fleet")
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=group.instance_ids[0], ShouldDecrementDesiredCapacity=False
    )
    assert len(registered_ids(ecs, "fleet")) == 1  # the replacement joined; the old one left
    with pytest.raises(LookupError):
        ecs_env.join_cluster("no-such-group", "fleet")


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        (
            "autoscaling:UpdateAutoScalingGroup",
            lambda a, e, ids: a.update_auto_scaling_group(
                AutoScalingGroupName="asg", DesiredCapacity=1
            ),
        ),
        (
            "TerminateInstanceInAutoScalingGroup",
            lambda a, e, ids: a.terminate_instance_in_auto_scaling_group(
                InstanceId=ids[0], ShouldDecrementDesiredCapacity=True
            ),
        ),
        ("ec2:TerminateInstances", lambda a, e, ids: e.terminate_instances(InstanceIds=[ids[0]])),
    ],
)
@pytest.mark.parametrize(
    "fault", [{"code": "ServiceUnavailable", "http_status": 503}, {"disconnect": True}]
)
def test_a_lost_response_acted(
    ecs_env: LocalEcs,
    clients: tuple[Any, Any],
    ec2_client: Any,
    operation: str,
    call: Any,
    fault: dict[str, Any],
) -> None:
    ecs, autoscaling = clients
    ecs_env.create_cluster("fleet")
    ids = ecs_env.create_auto_scaling_group("asg", "fleet", 2).instance_ids
    ecs_env.inject_fault(operation, after_acting=True, **fault)
    with pytest.raises(Exception, match=r"ServiceUnavailable|Connection was closed"):
        call(autoscaling, ec2_client, ids)
    assert ecs_env.pending_faults() == 0
    assert ecs_env.calls(operation) == 1
    assert ids[0] not in registered_ids(ecs, "fleet")
    assert instance_state(ecs_env, ids[0]) == "terminated"


def test_operation_names_of_other_services(ecs_env: LocalEcs, clients: tuple[Any, Any]) -> None:
    _, autoscaling = clients
    with pytest.raises(ValueError, match="'autoscaling:DescribeTags' or 'ec2:DescribeTags'"):
        ecs_env.inject_fault("DescribeTags")
    with pytest.raises(ValueError, match="did you mean 'autoscaling:SetDesiredCapacity'"):
        ecs_env.calls("autoscaling:SetDesiredCapacit")
    ecs_env.inject_fault("autoscaling:DescribeAutoScalingGroups", code="Throttling")
    with pytest.raises(ClientError) as info:
        autoscaling.describe_auto_scaling_groups()
    assert info.value.response["Error"]["Code"] == "Throttling"
    assert ecs_env.call_log == []  # ECS's only
    assert ecs_env.service_call_log() == ["autoscaling:DescribeAutoScalingGroups"]
    assert ecs_env.service_call_log("autoscaling") == ecs_env.service_call_log()
    assert ecs_env.calls("DescribeAutoScalingGroups") == 1


def test_a_wait_begun_by_hand_is_what_the_group_reports(
    waiting: tuple[LocalEcs, str], clients: tuple[Any, Any]
) -> None:
    local, instance_id = waiting
    _, autoscaling = clients
    local.lifecycle_actions.begin_termination("asg", "drain", instance_id)
    described = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
    assert described["AutoScalingInstances"][0]["LifecycleState"] == "Terminating:Wait"
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["asg"])[
        "AutoScalingGroups"
    ]
    assert group["DesiredCapacity"] == 1
    local.lifecycle_actions.complete("asg", "drain", "CONTINUE", instance_id=instance_id)
    # A scale-in: nothing replaces it.
    assert len(members(autoscaling)) == 1
    assert instance_id not in members(autoscaling)
