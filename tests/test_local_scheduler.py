"""LocalEcs's service scheduler against ECS's documented behaviour, rule by rule.

Each test drives the scheduler one pass at a time (`step`) or until nothing moves (`settle`)
and reads the result over HTTP, as a client would (DescribeServices, DescribeTasks,
DescribeContainerInstances), or from the scheduler's record of every start and stop. The
quotes are from the Amazon ECS Developer Guide: "Draining Amazon ECS container instances"
(container-instance-draining.html), "Amazon ECS services" / "Service scheduler concepts"
(ecs_services.html), "Service definition parameters" (service_definition_parameters.html) and
"Amazon ECS task placement constraints" (task-placement-constraints.html).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from botocore.config import Config

from ecs_safe import EcsSafeClient
from ecs_safe.local import LocalEcs
from ecs_safe.local.scheduler import SchedulerError, TaskEvent, deployment_limits

CLUSTER = "prod"
# A host registers 4096 CPU units and 7482 MiB with moto.
HOST_MEMORY = 7482


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
def env(ecs_env: LocalEcs) -> Iterator[LocalEcs]:
    ecs_env.create_cluster(CLUSTER)
    yield ecs_env
    ecs_env.scheduler.stop()


def service(ecs: Any, name: str) -> dict[str, Any]:
    [found] = ecs.describe_services(cluster=CLUSTER, services=[name])["services"]
    return dict(found)


def tasks_of(ecs: Any, name: str, *, live: bool = True) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=CLUSTER)["taskArns"]
    if not arns:
        return []
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
    return [
        t
        for t in described
        if t["group"] == f"service:{name}" and (not live or t["lastStatus"] != "STOPPED")
    ]


def hosts_of(ecs: Any, name: str) -> list[str]:
    return sorted(t["containerInstanceArn"] for t in tasks_of(ecs, name))


def drain(ecs: Any, *instances: str) -> None:
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=list(instances), status="DRAINING"
    )


def instance(ecs: Any, arn: str) -> dict[str, Any]:
    [found] = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])[
        "containerInstances"
    ]
    return dict(found)


def remaining(ecs: Any, arn: str, name: str) -> Any:
    for resource in instance(ecs, arn)["remainingResources"]:
        if resource["name"] == name:
            return resource.get("integerValue") or resource.get("stringSetValue")
    raise AssertionError(name)


def stops(events: list[TaskEvent]) -> list[TaskEvent]:
    return [e for e in events if e.kind == "stopped"]


# --------------------------------------------------------------------------- the service


def test_a_managed_service_gets_its_desired_count_pending_then_running(
    env: LocalEcs, ecs_client: Any
) -> None:
    """ECS: "the service scheduler launches ... the number of tasks specified in desiredCount";
    a task is PENDING until its containers start, then RUNNING (task lifecycle)."""
    env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=3, scheduler=True)
    first = env.scheduler.step()
    assert [e.kind for e in first] == ["started"] * 3
    described = service(ecs_client, "web")
    assert (described["runningCount"], described["pendingCount"]) == (0, 3)
    [deployment] = described["deployments"]
    assert (deployment["status"], deployment["rolloutState"]) == ("PRIMARY", "IN_PROGRESS")

    env.scheduler.step()
    described = service(ecs_client, "web")
    assert (described["runningCount"], described["pendingCount"]) == (3, 0)
    [deployment] = described["deployments"]
    assert deployment["rolloutState"] == "COMPLETED"
    assert deployment["runningCount"] == 3
    assert "has reached a steady state" in described["events"][0]["message"]
    assert all(t["lastStatus"] == "RUNNING" for t in tasks_of(ecs_client, "web"))
    assert all(t["startedBy"] == deployment["id"] for t in tasks_of(ecs_client, "web"))
    assert env.scheduler.is_steady(CLUSTER, "web")
    assert env.scheduler.step() == []  # nothing left to do


async def test_settle_steps_until_nothing_moves(env: LocalEcs, ecs_client: Any) -> None:
    env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=2, scheduler=True)
    busy = await env.scheduler.settle()
    assert busy == 2  # placed, then RUNNING
    assert service(ecs_client, "web")["runningCount"] == 2
    assert env.scheduler.steps == 3


def test_unmanaged_services_and_standalone_tasks_are_never_touched(
    env: LocalEcs, ecs_client: Any
) -> None:
    """The existing suite starts service tasks by hand: a service that did not opt in keeps
    moto's behaviour. ECS: standalone tasks on a DRAINING instance "are not affected"."""
    [host, other] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "legacy")  # not managed
    [legacy] = env.start_service_task(CLUSTER, host, "legacy")
    [batch] = env.start_standalone_task(CLUSTER, host)
    env.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
    drain(ecs_client, host)
    env.scheduler.run_until_settled()
    statuses = {
        t["taskArn"]: t["lastStatus"]
        for t in ecs_client.describe_tasks(cluster=CLUSTER, tasks=[legacy, batch])["tasks"]
    }
    assert statuses == {legacy: "RUNNING", batch: "RUNNING"}
    assert {e.service for e in env.scheduler.record} == {"web"}
    assert hosts_of(ecs_client, "web") == [other]


def test_scale_in_and_out_follow_update_service(env: LocalEcs, ecs_client: Any) -> None:
    env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=2, scheduler=True)
    env.scheduler.run_until_settled()
    updated = ecs_client.update_service(cluster=CLUSTER, service="web", desiredCount=4)
    # moto would report runningCount == desiredCount at once; ECS reports what runs.
    assert updated["service"]["runningCount"] == 2
    env.scheduler.run_until_settled()
    assert service(ecs_client, "web")["runningCount"] == 4
    ecs_client.update_service(cluster=CLUSTER, service="web", desiredCount=1)
    env.scheduler.run_until_settled()
    assert service(ecs_client, "web")["runningCount"] == 1
    assert len(stops(env.scheduler.record)) == 3


# --------------------------------------------------------------------------- placement


def test_placement_reserves_cpu_and_memory_and_keeps_remaining_resources_true(
    env: LocalEcs, ecs_client: Any
) -> None:
    """ECS places a task only where the instance's remaining CPU and memory cover the task
    definition's reservation; remainingResources drop by it and come back on stop."""
    [host] = env.register_instances(CLUSTER, 1)
    before = remaining(ecs_client, host, "MEMORY")
    env.create_service(CLUSTER, "web", desired_count=3, memory=3000, cpu=512, scheduler=True)
    env.scheduler.run_until_settled()
    # Two fit in 7482 MiB, the third does not.
    assert len(tasks_of(ecs_client, "web")) == 2
    assert remaining(ecs_client, host, "MEMORY") == before - 6000
    assert remaining(ecs_client, host, "CPU") == 4096 - 1024
    described = service(ecs_client, "web")
    assert (described["desiredCount"], described["runningCount"]) == (3, 2)
    assert any("unable to place a task" in e["message"] for e in described["events"])
    ecs_client.update_service(cluster=CLUSTER, service="web", desiredCount=0)
    env.scheduler.run_until_settled()
    assert remaining(ecs_client, host, "MEMORY") == before
    assert instance(ecs_client, host)["runningTasksCount"] == 0


def test_static_host_ports_allow_one_task_per_instance(env: LocalEcs, ecs_client: Any) -> None:
    """Two tasks that map the same static host port cannot share an instance."""
    hosts = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=3, host_port=8080, scheduler=True)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "web") == sorted(hosts)
    assert "8080" in remaining(ecs_client, hosts[0], "PORTS")


def test_distinct_instance_places_each_task_on_a_different_instance(
    env: LocalEcs, ecs_client: Any
) -> None:
    """ECS: "distinctInstance: Place each task on a different container instance.\""""
    hosts = env.register_instances(CLUSTER, 3)
    env.create_service(CLUSTER, "web", desired_count=4, distinct_instance=True, scheduler=True)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "web") == sorted(hosts)
    assert service(ecs_client, "web")["placementConstraints"] == [{"type": "distinctInstance"}]


def test_member_of_places_only_on_matching_instances(env: LocalEcs, ecs_client: Any) -> None:
    """ECS: "memberOf: Place tasks on container instances that satisfy an expression" (the
    cluster query language)."""
    [web, _other, also] = env.register_instances(CLUSTER, 3)
    env.put_attribute(CLUSTER, web, "pool", "web")
    env.put_attribute(CLUSTER, also, "pool", "web")
    env.create_service(
        CLUSTER, "web", desired_count=4, member_of="attribute:pool == web", scheduler=True
    )
    env.scheduler.run_until_settled()
    assert set(hosts_of(ecs_client, "web")) == {web, also}
    drain(ecs_client, web, also)
    env.scheduler.run_until_settled()
    # Nowhere else matches: the tasks stay, and the service says why.
    assert set(hosts_of(ecs_client, "web")) == {web, also}
    assert "memberOf(attribute:pool == web)" in service(ecs_client, "web")["events"][0]["message"]


def test_default_placement_spreads_and_binpack_packs(env: LocalEcs, ecs_client: Any) -> None:
    hosts = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "spread", desired_count=2, scheduler=True)
    env.create_service(
        CLUSTER,
        "packed",
        desired_count=2,
        placement_strategy=[{"type": "binpack", "field": "memory"}],
        scheduler=True,
    )
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "spread") == sorted(hosts)
    assert len(set(hosts_of(ecs_client, "packed"))) == 1


def test_draining_instances_get_no_new_tasks(env: LocalEcs, ecs_client: Any) -> None:
    """ECS: "When a container instance is set to DRAINING, Amazon ECS prevents new tasks from
    being scheduled for placement on the container instance.\""""
    [draining, active] = env.register_instances(CLUSTER, 2)
    drain(ecs_client, draining)
    env.create_service(CLUSTER, "web", desired_count=3, scheduler=True)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "web") == [active] * 3


# --------------------------------------------------------------------------- draining


def test_drain_with_default_config_starts_replacements_before_stopping(
    env: LocalEcs, ecs_client: Any
) -> None:
    """minimumHealthyPercent 100, maximumPercent 200 (ECS's defaults): "If the minimum is
    100%, the service scheduler can't remove existing tasks until the replacement tasks are
    considered healthy"; "a maximum of 200% starts four new tasks before stopping the four
    tasks to be drained"."""
    [old, new] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=2, scheduler=True)
    drain(ecs_client, new)  # all of them on `old` first
    env.scheduler.run_until_settled()
    ecs_client.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[new], status="ACTIVE"
    )
    env.scheduler.reset_record()
    drain(ecs_client, old)
    env.scheduler.run_until_settled()
    record = env.scheduler.record
    first_stop = next(i for i, e in enumerate(record) if e.kind == "stopped")
    assert sum(1 for e in record[:first_stop] if e.kind == "running") == 2
    assert env.scheduler.lowest_running("web") == 2
    assert max(e.running + e.pending for e in record) == 4  # 200% of 2
    assert hosts_of(ecs_client, "web") == [new, new]
    assert instance(ecs_client, old)["runningTasksCount"] == 0
    assert env.scheduler.is_steady(CLUSTER, "web")


def test_drain_with_half_minimum_stops_before_starting(env: LocalEcs, ecs_client: Any) -> None:
    """ECS: "desiredCount is four tasks, a minimum of 50% allows the scheduler to stop two
    existing tasks before starting two new tasks"; maximumPercent 100 caps the total."""
    [old, new] = env.register_instances(CLUSTER, 2)
    env.create_service(
        CLUSTER,
        "web",
        desired_count=4,
        minimum_healthy_percent=50,
        maximum_percent=100,
        scheduler=True,
    )
    drain(ecs_client, new)
    env.scheduler.run_until_settled()
    ecs_client.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[new], status="ACTIVE"
    )
    env.scheduler.reset_record()
    drain(ecs_client, old)
    [first_pass, *_] = [env.scheduler.step()]
    assert [e.kind for e in first_pass] == ["stopped", "stopped", "started", "started"]
    env.scheduler.run_until_settled()
    assert env.scheduler.lowest_running("web") == 2  # ceil(4 * 50%)
    assert max(e.running + e.pending for e in env.scheduler.record) == 4
    assert hosts_of(ecs_client, "web") == [new] * 4


def test_drain_with_no_headroom_and_full_minimum_moves_nothing(
    env: LocalEcs, ecs_client: Any
) -> None:
    """minimumHealthyPercent 100 and maximumPercent 100: the scheduler may neither stop a task
    first nor start one first, so nothing leaves the DRAINING instance."""
    [old, _new] = env.register_instances(CLUSTER, 2)
    env.create_service(
        CLUSTER, "web", desired_count=1, minimum_healthy_percent=100, maximum_percent=100
    )
    [task] = env.start_service_task(CLUSTER, old, "web")
    env.scheduler.manage(CLUSTER, "web")
    drain(ecs_client, old)
    env.scheduler.run_until_settled()
    assert [t["taskArn"] for t in tasks_of(ecs_client, "web")] == [task]


def test_with_no_room_elsewhere_the_old_tasks_keep_running(env: LocalEcs, ecs_client: Any) -> None:
    """ECS: "If there isn't enough container instance capacity, a service event message will
    be sent indicating the issue"; with minimumHealthyPercent 100 the tasks stay."""
    [old, full] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "hog", desired_count=1, memory=HOST_MEMORY, scheduler=True)
    drain(ecs_client, old)
    env.scheduler.run_until_settled()  # the hog fills `full`
    ecs_client.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[old], status="ACTIVE"
    )
    env.create_service(CLUSTER, "web", desired_count=2, scheduler=True)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "web") == [old, old]
    drain(ecs_client, old)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "web") == [old, old]
    described = service(ecs_client, "web")
    assert described["runningCount"] == 2
    assert "unable to place a task" in described["events"][0]["message"]
    assert not env.scheduler.is_steady(CLUSTER, "web")
    assert full  # the hog's host


def test_pending_tasks_on_a_draining_instance_stop_at_once(env: LocalEcs, ecs_client: Any) -> None:
    """ECS: "Any tasks that are part of a service that are in a PENDING state are stopped
    immediately.\""""
    [host, _other] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=1, distinct_instance=True, scheduler=True)
    env.scheduler.fail_starts(CLUSTER, "web", times=1, how="PENDING")
    env.scheduler.step()
    env.scheduler.step()  # the start that never comes
    [pending] = tasks_of(ecs_client, "web")
    assert pending["lastStatus"] == "PENDING"
    drain(ecs_client, pending["containerInstanceArn"])
    events = env.scheduler.step()
    assert (events[0].kind, events[0].task_arn) == ("stopped", pending["taskArn"])
    assert host


def test_fleet_drain_keeps_the_minimum_on_the_record(env: LocalEcs, ecs_client: Any) -> None:
    """Several hosts drained at once: the scheduler never goes below the minimum."""
    hosts = env.register_instances(CLUSTER, 6)
    env.create_service(CLUSTER, "web", desired_count=6, minimum_healthy_percent=50, scheduler=True)
    env.create_service(CLUSTER, "api", desired_count=3, scheduler=True)
    env.scheduler.run_until_settled()
    env.scheduler.reset_record()
    drain(ecs_client, *hosts[:3])
    env.scheduler.run_until_settled()
    assert env.scheduler.lowest_running("web") == deployment_limits(6, 50, 200).minimum_healthy
    assert env.scheduler.lowest_running("api") == 3
    assert all(
        h not in hosts[:3] for h in hosts_of(ecs_client, "web") + hosts_of(ecs_client, "api")
    )


# --------------------------------------------------------------------------- daemons


def test_daemon_runs_one_task_per_active_instance(env: LocalEcs, ecs_client: Any) -> None:
    """ECS: "The daemon scheduling strategy deploys exactly one task on each active container
    instance that meets all of the task placement constraints.\""""
    hosts = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "agent", scheduling_strategy="DAEMON", scheduler=True)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "agent") == sorted(hosts)
    [third] = env.register_instances(CLUSTER, 1)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "agent") == sorted([*hosts, third])
    described = service(ecs_client, "agent")
    assert (described["desiredCount"], described["runningCount"]) == (3, 3)


def test_daemon_tasks_stop_last_on_a_draining_instance(env: LocalEcs, ecs_client: Any) -> None:
    """ECS: on a draining instance daemon tasks are stopped after the other tasks."""
    [old, _new] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "agent", scheduling_strategy="DAEMON", scheduler=True)
    env.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
    drain(ecs_client, _new)
    env.scheduler.run_until_settled()
    ecs_client.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[_new], status="ACTIVE"
    )
    env.scheduler.run_until_settled()
    [batch] = env.start_standalone_task(CLUSTER, old)
    env.scheduler.reset_record()
    drain(ecs_client, old)
    env.scheduler.run_until_settled()
    # The web task left; the daemon stays while the standalone task runs.
    assert [e.service for e in stops(env.scheduler.record)] == ["web"]
    assert old in hosts_of(ecs_client, "agent")
    env.stop_task(CLUSTER, batch)
    env.scheduler.run_until_settled()
    assert [e.service for e in stops(env.scheduler.record)] == ["web", "agent"]
    assert instance(ecs_client, old)["runningTasksCount"] == 0


# --------------------------------------------------------------------------- failed starts


def test_a_replacement_that_fails_to_start_never_runs_and_the_old_task_stays(
    env: LocalEcs, ecs_client: Any
) -> None:
    [old, _new] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=1)
    [task] = env.start_service_task(CLUSTER, old, "web")
    env.scheduler.manage(CLUSTER, "web")
    env.scheduler.fail_starts(CLUSTER, "web", times=2, how="STOPPED")
    drain(ecs_client, old)
    for _ in range(4):
        env.scheduler.step()
    stopped = [e for e in stops(env.scheduler.record) if "CannotStartContainerError" in e.reason]
    assert len(stopped) == 2
    failed = ecs_client.describe_tasks(cluster=CLUSTER, tasks=[stopped[0].task_arn])["tasks"][0]
    assert failed["lastStatus"] == "STOPPED"
    assert failed["stoppedReason"].startswith("CannotStartContainerError")
    # The third start works; only then does the drained task go (minimum 100%).
    env.scheduler.run_until_settled()
    assert [t["taskArn"] for t in tasks_of(ecs_client, "web")] != [task]
    assert env.scheduler.lowest_running("web") == 1
    assert service(ecs_client, "web")["deployments"][0]["failedTasks"] == 2


def test_fail_starts_pending_holds_the_drain(env: LocalEcs, ecs_client: Any) -> None:
    [old, _new] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=1)
    [task] = env.start_service_task(CLUSTER, old, "web")
    env.scheduler.manage(CLUSTER, "web")
    env.scheduler.fail_starts(CLUSTER, "web", times=None, how="PENDING")
    drain(ecs_client, old)
    env.scheduler.run_until_settled()
    statuses = sorted(t["lastStatus"] for t in tasks_of(ecs_client, "web"))
    assert statuses == ["PENDING", "RUNNING"]
    assert task in {t["taskArn"] for t in tasks_of(ecs_client, "web")}
    assert service(ecs_client, "web")["pendingCount"] == 1


def test_fail_starts_bad_input(env: LocalEcs) -> None:
    with pytest.raises(ValueError, match="how must be"):
        env.scheduler.fail_starts(CLUSTER, "web", how="LATER")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="times must be"):
        env.scheduler.fail_starts(CLUSTER, "web", times=-1)


# --------------------------------------------------------------------------- the record


def test_stops_by_others_are_on_the_record_and_replaced(env: LocalEcs, ecs_client: Any) -> None:
    [host, other] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=2, scheduler=True)
    env.scheduler.run_until_settled()
    victim = tasks_of(ecs_client, "web")[0]["taskArn"]
    ecs_client.stop_task(cluster=CLUSTER, task=victim, reason="operator")
    env.scheduler.run_until_settled()
    [external] = [e for e in env.scheduler.record if e.by == "external"]
    assert (external.kind, external.task_arn, external.reason) == ("stopped", victim, "operator")
    assert external.running == 1
    assert service(ecs_client, "web")["runningCount"] == 2
    assert {host, other} >= set(hosts_of(ecs_client, "web"))


def test_a_forced_deregistration_loses_the_tasks_and_they_are_replaced(
    env: LocalEcs, ecs_client: Any
) -> None:
    """A forced deregistration orphans the tasks; the service replaces them elsewhere."""
    [gone, other] = env.register_instances(CLUSTER, 2)
    env.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
    drain(ecs_client, other)
    env.scheduler.run_until_settled()
    ecs_client.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[other], status="ACTIVE"
    )
    ecs_client.deregister_container_instance(cluster=CLUSTER, containerInstance=gone, force=True)
    env.scheduler.run_until_settled()
    assert hosts_of(ecs_client, "web") == [other]
    lost = [e for e in stops(env.scheduler.record) if e.reason == "Container instance deregistered"]
    assert [e.container_instance_arn for e in lost] == [gone]
    assert lost[0].ec2_instance_id.startswith("i-")


def test_record_events_carry_where_and_when(env: LocalEcs) -> None:
    [host] = env.register_instances(CLUSTER, 1)
    env.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
    [started] = env.scheduler.step()
    assert started.container_instance_arn == host
    assert started.ec2_instance_id.startswith("i-")
    assert started.at.tzinfo is not None
    assert (started.step, started.by, started.desired) == (1, "scheduler", 1)
    assert env.scheduler.events_for("web", CLUSTER) == [started]
    env.reset()
    assert env.scheduler.record == []
    assert env.scheduler.managed() == []


# --------------------------------------------------------------------------- settings and wire


def test_a_service_created_over_the_api_keeps_its_settings(env: LocalEcs, ecs_client: Any) -> None:
    """moto drops deploymentConfiguration and placementConstraints; LocalEcs keeps them, and
    manage_cluster adopts services created by the code under test."""
    env.register_instances(CLUSTER, 2)
    env.scheduler.manage_cluster(CLUSTER)
    definition = env.register_task_definition("api")
    created = ecs_client.create_service(
        cluster=CLUSTER,
        serviceName="api",
        taskDefinition=definition,
        desiredCount=2,
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 100},
        placementConstraints=[{"type": "distinctInstance"}],
    )["service"]
    assert created["deploymentConfiguration"] == {
        "minimumHealthyPercent": 50,
        "maximumPercent": 100,
    }
    env.scheduler.run_until_settled()
    described = service(ecs_client, "api")
    assert described["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert described["runningCount"] == 2
    assert len(set(hosts_of(ecs_client, "api"))) == 2


def test_create_service_bad_input(env: LocalEcs) -> None:
    with pytest.raises(ValueError, match="DAEMON service takes no desired_count"):
        env.create_service(CLUSTER, "d", scheduling_strategy="DAEMON", desired_count=2)
    with pytest.raises(ValueError, match="minimum_healthy_percent"):
        env.create_service(CLUSTER, "w", minimum_healthy_percent=150)
    with pytest.raises(ValueError, match="not with task_definition"):
        env.create_service(CLUSTER, "w", task_definition="x:1", memory=64)
    with pytest.raises(ValueError, match="scheduling_strategy"):
        env.create_service(CLUSTER, "w", scheduling_strategy="BATCH")


@pytest.mark.parametrize(
    ("desired", "minimum", "maximum", "expected"),
    [(4, 50, 200, (2, 8)), (3, 50, 150, (2, 4)), (1, 100, 200, (1, 2)), (5, 0, 100, (0, 5))],
)
def test_deployment_limits_round_like_ecs(
    desired: int, minimum: int, maximum: int, expected: tuple[int, int]
) -> None:
    """ECS rounds minimumHealthyPercent's count up and maximumPercent's down."""
    limits = deployment_limits(desired, minimum, maximum)
    assert (limits.minimum_healthy, limits.maximum) == expected


# --------------------------------------------------------------------------- the tick


async def test_the_background_tick_lets_a_drain_finish_by_itself(ecs_env: LocalEcs) -> None:
    """With the tick on, drain_and_deregister ends when the scheduler has moved the tasks:
    the test waits on the drain's own result, not on time."""
    ecs_env.create_cluster(CLUSTER)
    [old, new] = ecs_env.register_instances(CLUSTER, 2)
    ecs_env.create_service(CLUSTER, "web", desired_count=2, scheduler=True)
    ecs_env.create_service(CLUSTER, "agent", scheduling_strategy="DAEMON", scheduler=True)
    ecs_env.scheduler.run_until_settled()
    ecs_env.scheduler.reset_record()
    ecs_env.scheduler.start(interval=0.01)
    try:
        async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
            result = await ecs.drain_and_deregister(
                old, cluster=CLUSTER, poll_interval=0.02, timeout=120
            )
    finally:
        ecs_env.scheduler.stop()
    assert result.container_instance.container_instance_arn == old
    assert not result.forced
    assert ecs_env.scheduler.lowest_running("web") == 2
    assert {e.service for e in stops(ecs_env.scheduler.record)} == {"web", "agent"}
    assert new


def test_the_constructor_can_start_the_tick(ecs_env: LocalEcs) -> None:
    del ecs_env  # the shared one stays as it is; this one shares moto's state
    with LocalEcs(scheduler_interval=0.01) as local:
        assert local.scheduler.is_ticking
        local.create_cluster(CLUSTER)
        local.register_instances(CLUSTER, 1)
        local.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
        seen = local.scheduler.steps
        # Waiting on the tick's own condition: two passes place the task and run it.
        while not local.scheduler.is_steady(CLUSTER, "web"):
            assert local.scheduler.wait_for_step(seen, timeout=60)
            seen = local.scheduler.steps
    assert not local.scheduler.is_ticking


def test_tick_and_requests_do_not_interleave(env: LocalEcs, ecs_client: Any) -> None:
    """Requests served while the tick moves tasks see whole moves only: in every answer each
    instance's remaining memory is its registered memory less one reservation per task it
    counts (a half-made start or stop would break that)."""
    hosts = env.register_instances(CLUSTER, 3)
    env.create_service(CLUSTER, "web", desired_count=6, memory=100, scheduler=True)
    env.scheduler.start(interval=0.001)
    errors: list[str] = []
    done = threading.Event()

    def churn() -> None:
        try:
            for desired in (1, 6, 2, 5, 0, 6):
                ecs_client.update_service(cluster=CLUSTER, service="web", desiredCount=desired)
                seen = env.scheduler.steps
                assert env.scheduler.wait_for_step(seen + 1, timeout=60)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            done.set()

    worker = threading.Thread(target=churn)
    worker.start()
    answers = 0
    try:
        while not done.is_set() or not answers:
            described = ecs_client.describe_container_instances(
                cluster=CLUSTER, containerInstances=hosts
            )["containerInstances"]
            for host in described:
                [memory] = [r for r in host["remainingResources"] if r["name"] == "MEMORY"]
                counted = host["runningTasksCount"] + host["pendingTasksCount"]
                assert memory["integerValue"] == HOST_MEMORY - 100 * counted
            answers += 1
    finally:
        worker.join()
        env.scheduler.stop()
    assert errors == []
    env.scheduler.run_until_settled()
    assert service(ecs_client, "web")["runningCount"] == 6


def test_a_failing_pass_stops_the_tick_and_is_raised(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.register_instances(CLUSTER, 1)
    env.create_service(CLUSTER, "web", desired_count=1, scheduler=True)
    broken = threading.Event()

    def explode(*args: Any, **kwargs: Any) -> Any:
        broken.set()
        raise RuntimeError("boom")

    backend = env._ecs_backend()
    monkeypatch.setattr(backend, "start_task", explode)
    env.scheduler.start(interval=0.01)
    assert broken.wait(60)
    with pytest.raises(SchedulerError, match="background tick failed"):
        env.scheduler.stop()
    assert not env.scheduler.is_ticking


def test_start_refuses_bad_input(env: LocalEcs) -> None:
    with pytest.raises(ValueError, match="interval"):
        env.scheduler.start(interval=0)
    env.scheduler.start(interval=10)
    try:
        with pytest.raises(RuntimeError, match="already ticking"):
            env.scheduler.start()
    finally:
        env.scheduler.stop()
    with pytest.raises(ValueError, match="scheduler_interval"):
        LocalEcs(scheduler_interval=-1)
