"""LocalEcs's cluster query language, paging, status and container-instance tags.

The parser is tested on its own (every operator, precedence, errors), then over HTTP against
LocalEcs, as a user's ListContainerInstances call reaches it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ecs_safe.local import LocalEcs
from ecs_safe.local.query import And, InstanceFacts, Not, Or, QueryError, parse

REGISTERED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
FACTS = InstanceFacts(
    attributes={
        "ecs.instance-type": "t3.large",
        "ecs.ami-id": "ami-old",
        "ecs.availability-zone": "us-east-1a",
        "ecs.os-type": "linux",
        "team": "web",
        "flag": None,
    },
    ec2_instance_id="i-0123456789abcdef0",
    agent_connected=True,
    running_tasks_count=3,
    registered_at=REGISTERED,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attribute:ecs.instance-type == t3.large", True),
        ("attribute:ecs.instance-type equals t3.small", False),
        ("attribute:ecs.ami-id != ami-new", True),
        ("attribute:missing != anything", True),
        ("attribute:ecs.ami-id not_equals ami-old", False),
        ("attribute:team exists", True),
        ("attribute:flag exists", True),
        ("attribute:missing exists", False),
        ("attribute:missing !exists", True),
        ("attribute:team not_exists", False),
        ("attribute:ecs.instance-type in [t3.small, t3.large]", True),
        ("attribute:ecs.instance-type in [t3.small,m5.large]", False),
        ("attribute:ecs.instance-type not_in [t3.small]", True),
        ("attribute:ecs.availability-zone == us-east-1a", True),
        ("attribute:ecs.os-type == linux", True),
        ("ec2InstanceId == i-0123456789abcdef0", True),
        ("ec2InstanceId in [i-1, i-0123456789abcdef0]", True),
        ("ec2InstanceId in [i-1, i-2]", False),
        ("agentConnected == true", True),
        ("agentConnected == FALSE", False),
        ("agentConnected != false", True),
        ("runningTasksCount == 3", True),
        ("runningTasksCount != 3", False),
        ("runningTasksCount > 2", True),
        ("runningTasksCount > 3", False),
        ("runningTasksCount >= 3", True),
        ("runningTasksCount < 3", False),
        ("runningTasksCount <= 3", True),
        ("runningTasksCount greater_than 1", True),
        ("registeredAt < 2024-06-02", True),
        ("registeredAt > 2024-06-01T11:59:00Z", True),
        ("registeredAt >= 2024-06-01T12:00:00+00:00", True),
        ("registeredAt < 2024-06-01T12:00:00Z", False),
    ],
)
def test_each_operator(text: str, expected: bool) -> None:
    assert parse(text).matches(FACTS) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # not > and > or: "a or b and c" is "a or (b and c)".
        ("runningTasksCount == 3 or runningTasksCount == 9 and agentConnected == false", True),
        ("(runningTasksCount == 3 or runningTasksCount == 9) and agentConnected == false", False),
        ("not attribute:team exists or runningTasksCount == 3", True),
        ("not (attribute:team exists or runningTasksCount == 3)", False),
        ("! attribute:team exists", False),
        ("not not attribute:team exists", True),
        ("attribute:team == web && attribute:missing !exists", True),
        ("attribute:team == db || runningTasksCount > 10", False),
        ("attribute:team == web AND (agentConnected == true OR runningTasksCount < 1)", True),
    ],
)
def test_precedence_and_grouping(text: str, expected: bool) -> None:
    assert parse(text).matches(FACTS) is expected


def test_the_tree_follows_the_precedence() -> None:
    tree = parse("not attribute:a exists or attribute:b exists and attribute:c exists")
    assert isinstance(tree, Or)
    assert isinstance(tree.left, Not)
    assert isinstance(tree.right, And)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("attribute:team", "operator"),
        ("attribute: == x", "needs a name"),
        ("attribute:team ==", "value"),
        ("attribute:team == web and", "subject"),
        ("(attribute:team exists", "'\\)' was expected"),
        ("attribute:team exists)", "unexpected"),
        ("attribute:team in t3", "list"),
        ("attribute:team in [a, b", "']' was expected"),
        ("attribute:team > 3", "does not take"),
        ("attribute:team =~ w.*", "not supported"),
        ("agentVersion == 1.0", "not supported"),
        ("task:group == service:web", "not supported"),
        ("color == red", "not a subject"),
        ("runningTasksCount == many", "whole number"),
        ("runningTasksCount exists", "does not take"),
        ("agentConnected == yes", "true or false"),
        ("registeredAt > yesterday", "ISO 8601"),
        ("ec2InstanceId > i-1", "does not take"),
        ("attribute:team == web attribute:x exists", "unexpected"),
        ("attribute:team == web & x", "read"),
        ("x" * 1025, "longer"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse(text)


# -- over HTTP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecs_client(local_ecs: LocalEcs) -> Iterator[Any]:
    client = boto3.session.Session(
        aws_access_key_id=local_ecs.access_key_id,
        aws_secret_access_key=local_ecs.secret_access_key,
        region_name=local_ecs.region_name,
    ).client(
        "ecs",
        endpoint_url=local_ecs.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    yield client
    client.close()


@pytest.fixture
def ecs(ecs_env: LocalEcs, ecs_client: Any) -> Any:
    return ecs_client


def listed(ecs: Any, cluster: str, **kwargs: Any) -> list[str]:
    arns: list[str] = ecs.list_container_instances(cluster=cluster, **kwargs)[
        "containerInstanceArns"
    ]
    return arns


def test_filter_over_http(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.create_cluster("q")
    busy, idle, tagged = ecs_env.register_instances("q", count=3)
    ecs_env.start_standalone_task("q", busy, count=2)
    ecs.put_attributes(
        cluster="q", attributes=[{"name": "team", "value": "web", "targetId": tagged}]
    )
    described = ecs.describe_container_instances(cluster="q", containerInstances=[idle])
    ec2_id = described["containerInstances"][0]["ec2InstanceId"]
    assert listed(ecs, "q", filter="runningTasksCount > 1") == [busy]
    assert sorted(listed(ecs, "q", filter="runningTasksCount == 0")) == sorted([idle, tagged])
    assert listed(ecs, "q", filter="attribute:team == web") == [tagged]
    assert listed(ecs, "q", filter=f"ec2InstanceId in [{ec2_id}, i-00000000]") == [idle]
    assert (
        len(listed(ecs, "q", filter="attribute:ecs.ami-id exists and agentConnected == true")) == 3
    )
    ecs.update_container_instances_state(cluster="q", containerInstances=[idle], status="DRAINING")
    assert listed(ecs, "q", status="DRAINING") == [idle]
    assert listed(ecs, "q", status="DRAINING", filter="runningTasksCount > 0") == []
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(listed(ecs, "q", filter=f"registeredAt < {soon}")) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filter": "attribute:team =~ w.*"},
        {"filter": "(attribute:team exists"},
        {"maxResults": 101},
        {"status": "GONE"},
        {"nextToken": "!!!"},
    ],
)
def test_bad_requests_are_invalid_parameter(
    ecs_env: LocalEcs, ecs: Any, kwargs: dict[str, Any]
) -> None:
    ecs_env.create_cluster("q")
    with pytest.raises(ClientError) as info:
        ecs.list_container_instances(cluster="q", **kwargs)
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_cluster_is_cluster_not_found(ecs: Any) -> None:
    with pytest.raises(ClientError) as info:
        ecs.list_container_instances(cluster="nowhere")
    assert info.value.response["Error"]["Code"] == "ClusterNotFoundException"


def every_page(ecs: Any, cluster: str, **kwargs: Any) -> tuple[list[str], int]:
    arns: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        extra = {"nextToken": token} if token else {}
        response = ecs.list_container_instances(cluster=cluster, **kwargs, **extra)
        pages += 1
        arns.extend(response["containerInstanceArns"])
        token = response.get("nextToken")
        if not token:
            return arns, pages


@pytest.mark.parametrize(("count", "pages"), [(100, 1), (101, 2), (1234, 13)])
def test_paging_returns_every_instance_once(
    ecs_env: LocalEcs, ecs: Any, count: int, pages: int
) -> None:
    ecs_env.create_cluster("big")
    started = time.perf_counter()
    registered = ecs_env.register_instances("big", count=count)
    seeding = time.perf_counter() - started
    arns, seen_pages = every_page(ecs, "big")
    assert sorted(arns) == sorted(registered)
    assert len(set(arns)) == count
    assert seen_pages == pages
    # Informational, never asserted: seeding cost on this machine.
    print(f"seeded {count} instances in {seeding:.2f}s")


def test_paging_with_a_small_page_and_a_filter(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.create_cluster("p")
    arns = ecs_env.register_instances("p", count=25)
    for arn in arns[:7]:
        ecs_env.start_standalone_task("p", arn)
    found, pages = every_page(ecs, "p", maxResults=3, filter="runningTasksCount == 1")
    assert sorted(found) == sorted(arns[:7])
    assert pages == 3


def test_container_instance_tags(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.create_cluster("t")
    arn, other = ecs_env.register_instances("t", count=2)
    ecs.tag_resource(
        resourceArn=arn, tags=[{"key": "owner", "value": "ops"}, {"key": "x", "value": "1"}]
    )
    ecs.untag_resource(resourceArn=arn, tagKeys=["x"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "owner", "value": "ops"}]
    described = ecs.describe_container_instances(
        cluster="t", containerInstances=[arn, other], include=["TAGS"]
    )["containerInstances"]
    by_arn = {d["containerInstanceArn"]: d.get("tags") for d in described}
    assert by_arn == {arn: [{"key": "owner", "value": "ops"}], other: []}
    # Cluster tags are still moto's.
    cluster_arn = ecs_env.create_cluster("t")
    ecs.tag_resource(resourceArn=cluster_arn, tags=[{"key": "env", "value": "dev"}])
    assert ecs.list_tags_for_resource(resourceArn=cluster_arn)["tags"] == [
        {"key": "env", "value": "dev"}
    ]
    ecs_env.reset()
    ecs_env.create_cluster("t")
    with pytest.raises(ClientError) as info:
        ecs.list_tags_for_resource(resourceArn=arn)
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"


def test_deregistered_instances_are_inactive_when_asked_explicitly() -> None:
    with LocalEcs(report_inactive=True) as local:
        local.reset()
        client: Any = boto3.session.Session(
            aws_access_key_id=local.access_key_id,
            aws_secret_access_key=local.secret_access_key,
            region_name=local.region_name,
        ).client(
            "ecs", endpoint_url=local.endpoint_url, config=Config(retries={"total_max_attempts": 1})
        )
        local.create_cluster("gone")
        arn, kept = local.register_instances("gone", count=2)
        client.deregister_container_instance(cluster="gone", containerInstance=arn)
        response = client.describe_container_instances(
            cluster="gone", containerInstances=[arn, kept]
        )
        statuses = {d["containerInstanceArn"]: d["status"] for d in response["containerInstances"]}
        assert statuses == {arn: "INACTIVE", kept: "ACTIVE"}
        assert response["failures"] == []
        assert client.list_container_instances(cluster="gone")["containerInstanceArns"] == [kept]
        client.close()
        local.reset()


def test_by_default_a_deregistered_instance_is_inactive_as_in_ecs(
    ecs_env: LocalEcs, ecs: Any
) -> None:
    ecs_env.create_cluster("gone")
    arn, kept = ecs_env.register_instances("gone", count=2)
    ecs.deregister_container_instance(cluster="gone", containerInstance=arn)
    response = ecs.describe_container_instances(cluster="gone", containerInstances=[arn, kept])
    assert response["failures"] == []
    statuses = {d["containerInstanceArn"]: d["status"] for d in response["containerInstances"]}
    assert statuses == {arn: "INACTIVE", kept: "ACTIVE"}
