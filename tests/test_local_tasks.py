"""DescribeTasks as LocalEcs answers it (not moto): moto's JSON, ECS's cluster scope and MISSING."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config

from ecs_safe.local import LocalEcs
from ecs_safe.local.tasks import TaskDescriber

CLUSTER = "c"
OTHER = "other"


@pytest.fixture
def ecs(ecs_env: LocalEcs) -> Iterator[Any]:
    client = boto3.session.Session(
        aws_access_key_id=ecs_env.access_key_id,
        aws_secret_access_key=ecs_env.secret_access_key,
        region_name=ecs_env.region_name,
    ).client(
        "ecs",
        endpoint_url=ecs_env.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    yield client
    client.close()


@pytest.fixture
def fleet(ecs_env: LocalEcs) -> dict[str, list[str]]:
    """Tasks in every state the SDK tells apart, on two instances of CLUSTER, and one elsewhere."""
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_cluster(OTHER)
    first, second = ecs_env.register_instances(CLUSTER, count=2)
    ecs_env.create_service(CLUSTER, "web")
    running = ecs_env.start_service_task(CLUSTER, first, "web", count=2)
    standalone = ecs_env.start_standalone_task(CLUSTER, second, count=3)
    ecs_env.set_task_status(CLUSTER, standalone[0], "PENDING")
    ecs_env.set_task_status(CLUSTER, standalone[1], "STOPPING")
    ecs_env.stop_task(CLUSTER, running[1])
    (elsewhere,) = ecs_env.register_instances(OTHER)
    return {
        "mine": [*running, *standalone],
        "other": ecs_env.start_standalone_task(OTHER, elsewhere),
    }


def _moto_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send DescribeTasks on to moto's own handler (the reference) for the rest of the test."""
    monkeypatch.setattr(TaskDescriber, "__call__", lambda self, request: None)


def _answer(ecs: Any, **kwargs: Any) -> dict[str, Any]:
    response: dict[str, Any] = ecs.describe_tasks(**kwargs)
    response.pop("ResponseMetadata")
    return response


@pytest.mark.parametrize("include", [[], ["TAGS"]])
def test_the_tasks_are_described_exactly_as_moto_describes_them(
    ecs: Any,
    fleet: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    include: list[str],
) -> None:
    # By ARN and by ID, with a repeat: ECS describes each task once.
    mine = fleet["mine"]
    refs = [*mine[:3], *(arn.rsplit("/", 1)[1] for arn in mine[3:]), mine[0]]
    ours = _answer(ecs, cluster=CLUSTER, tasks=refs, include=include)
    _moto_answers(monkeypatch)
    theirs = _answer(ecs, cluster=CLUSTER, tasks=refs, include=include)

    def by_arn(answer: dict[str, Any]) -> list[dict[str, Any]]:
        return sorted(answer["tasks"], key=lambda t: str(t["taskArn"]))

    assert by_arn(ours) == by_arn(theirs)
    assert ours["failures"] == theirs["failures"] == []
    assert sorted(t["lastStatus"] for t in ours["tasks"]) == sorted(
        ["RUNNING", "STOPPED", "PENDING", "STOPPING", "RUNNING"]
    )
    # moto renders tags only when asked (an empty list for these untagged tasks).
    assert [t.get("tags") for t in ours["tasks"]] == [[] if include else None] * 5


def test_an_unknown_task_is_a_missing_failure_named_by_its_arn(
    ecs: Any, ecs_env: LocalEcs, fleet: dict[str, list[str]]
) -> None:
    known = fleet["mine"][0]
    answer = _answer(
        ecs,
        cluster=CLUSTER,
        tasks=[known, "0123456789abcdef", f"{known.rsplit('/', 1)[0]}/fedcba9876543210"],
    )
    assert [t["taskArn"] for t in answer["tasks"]] == [known]
    prefix = f"arn:aws:ecs:{ecs_env.region_name}:123456789012:task/{CLUSTER}/"
    assert answer["failures"] == [
        {"arn": f"{prefix}0123456789abcdef", "reason": "MISSING"},
        {"arn": f"{prefix}fedcba9876543210", "reason": "MISSING"},
    ]


def test_a_task_of_another_cluster_is_missing_in_this_one(
    ecs: Any, fleet: dict[str, list[str]]
) -> None:
    # moto would describe it (it searches every cluster); ECS looks in the cluster asked.
    (elsewhere,) = fleet["other"]
    answer = _answer(ecs, cluster=CLUSTER, tasks=[elsewhere])
    assert answer == {"tasks": [], "failures": [{"arn": elsewhere, "reason": "MISSING"}]}
    [found] = _answer(
        ecs, cluster=f"arn:aws:ecs:us-east-1:123456789012:cluster/{OTHER}", tasks=[elsewhere]
    )["tasks"]
    assert found["taskArn"] == elsewhere


def test_a_task_started_after_a_describe_is_found(
    ecs: Any, ecs_env: LocalEcs, fleet: dict[str, list[str]]
) -> None:
    # The index is built on the first describe; a task moto adds later must not be MISSING.
    _answer(ecs, cluster=CLUSTER, tasks=fleet["mine"])
    instance = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"][0]
    (late,) = ecs_env.start_standalone_task(CLUSTER, instance)
    answer = _answer(ecs, cluster=CLUSTER, tasks=[late])
    assert ([t["taskArn"] for t in answer["tasks"]], answer["failures"]) == ([late], [])


def test_moto_still_refuses_what_it_refuses(ecs: Any, fleet: dict[str, list[str]]) -> None:
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.describe_tasks(cluster="nowhere", tasks=fleet["mine"][:1])
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.describe_tasks(cluster=CLUSTER, tasks=[])


def test_unfrozen_tasks_still_move_on_with_each_describe(
    ecs: Any, ecs_env: LocalEcs, fleet: dict[str, list[str]]
) -> None:
    running = fleet["mine"][0]
    ecs_env.set_task_transitions(frozen=False)
    seen = [
        _answer(ecs, cluster=CLUSTER, tasks=[running])["tasks"][0]["lastStatus"] for _ in range(3)
    ]
    assert seen[0] != seen[-1], seen
