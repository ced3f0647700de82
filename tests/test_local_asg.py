"""LocalEcs's Auto Scaling groups: real moto group members, registered in the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config

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
