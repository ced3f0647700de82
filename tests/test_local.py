"""`LocalEcs` over real HTTP: seeding, task states, request counts, fault injection, lifecycle."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from aiobotocore.config import AioConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_api import state_manager

from ecs_safe.local import ClientKwargs, LocalEcs, LocalEcsUnavailableError

# botocore's own retries would use up injected faults and hide what the server answered.
NO_RETRIES = Config(retries={"total_max_attempts": 1})


def boto3_client(local: LocalEcs, service: str = "ecs") -> Any:
    return boto3.session.Session(
        aws_access_key_id=local.access_key_id,
        aws_secret_access_key=local.secret_access_key,
        region_name=local.region_name,
    ).client(service, endpoint_url=local.endpoint_url, config=NO_RETRIES)


@pytest.fixture(scope="module")
def ecs_module_client(local_ecs: LocalEcs) -> Iterator[Any]:
    client = boto3_client(local_ecs)
    yield client
    client.close()


@pytest.fixture
def ecs(ecs_env: LocalEcs, ecs_module_client: Any) -> Any:
    """A boto3 ECS client on the freshly reset local endpoint."""
    return ecs_module_client


@pytest.fixture
def seeded(ecs_env: LocalEcs) -> tuple[str, list[str]]:
    """Cluster "c" with two container instances."""
    ecs_env.create_cluster("c")
    return "c", ecs_env.register_instances("c", count=2)


def describe_instance(ecs: Any, cluster: str, arn: str) -> dict[str, Any]:
    response = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
    found: dict[str, Any] = response["containerInstances"][0]
    return found


def describe_task(ecs: Any, cluster: str, arn: str) -> dict[str, Any]:
    found: dict[str, Any] = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    return found


def registered(ecs: Any, cluster: str) -> list[str]:
    arns: list[str] = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    return arns


# -- lifecycle --------------------------------------------------------------------------------


def test_importing_the_module_does_not_import_moto() -> None:
    code = "import sys, ecs_safe.local; print(sorted({'moto', 'werkzeug'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_missing_moto_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail, as if moto were not installed.
    monkeypatch.setitem(sys.modules, "moto.moto_server.werkzeug_app", None)
    local = LocalEcs()
    with pytest.raises(LocalEcsUnavailableError, match=r"pip install 'ecs-safe\[local\]'") as info:
        local.start()
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value.__cause__, ImportError)
    assert not local.is_running


def test_not_running_refuses_endpoint_and_stop_is_a_no_op() -> None:
    local = LocalEcs()
    with pytest.raises(RuntimeError, match="not running"):
        _ = local.endpoint_url
    with pytest.raises(RuntimeError, match="not running"):
        local.create_cluster()
    local.stop()
    local.stop()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"region_name": ""}, "region_name"), ({"port": -1}, "port"), ({"port": 70000}, "port")],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalEcs(**kwargs)


def test_with_block_serves_then_stops() -> None:
    with LocalEcs(region_name="eu-west-1") as local:
        assert local.is_running
        assert local.endpoint_url.startswith("http://127.0.0.1:")
        port = int(local.endpoint_url.rsplit(":", 1)[1])
        client = boto3_client(local)
        arn = local.create_cluster("demo")
        assert ":eu-west-1:" in arn
        # moto's state is per process: other clusters may exist, so look for this one.
        assert arn in client.list_clusters()["clusterArns"]
        client.close()
        with pytest.raises(RuntimeError, match="already running"):
            local.start()
    assert not local.is_running
    local.stop()  # idempotent
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_restart_after_stop() -> None:
    local = LocalEcs()
    local.start()
    local.stop()
    local.start()
    try:
        assert boto3_client(local).list_clusters()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        local.stop()


async def test_async_with_serves_aiobotocore() -> None:
    async with LocalEcs() as local:
        kwargs = local.client_kwargs()
        async with kwargs["session"].create_client(
            "ecs",
            endpoint_url=kwargs["endpoint_url"],
            region_name=kwargs["region_name"],
            config=AioConfig(retries={"total_max_attempts": 1}),
        ) as client:
            arn = local.create_cluster("async")
            assert arn in (await client.list_clusters())["clusterArns"]
    assert not local.is_running


def test_busy_port_raises_instead_of_hanging() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        local = LocalEcs(port=taken.getsockname()[1])
        with pytest.raises(OSError, match="could not listen"):
            local.start()
        assert not local.is_running


async def test_client_kwargs_carry_dummy_credentials(local_ecs: LocalEcs) -> None:
    kwargs: ClientKwargs = local_ecs.client_kwargs()
    assert set(kwargs) == {"endpoint_url", "region_name", "session"}
    assert kwargs["endpoint_url"] == local_ecs.endpoint_url
    credentials = await kwargs["session"].get_credentials()
    assert credentials is not None
    assert credentials.access_key == local_ecs.access_key_id == "testing"
    assert credentials.secret_key == local_ecs.secret_access_key == "testing"
    assert kwargs["session"] is not local_ecs.client_kwargs()["session"]


def test_requests_are_not_logged(ecs: Any, capfd: pytest.CaptureFixture[str]) -> None:
    level = logging.getLogger("werkzeug").level
    capfd.readouterr()
    for _ in range(3):
        ecs.list_clusters()
    out, err = capfd.readouterr()
    assert "HTTP/1.1" not in out + err
    assert logging.getLogger("werkzeug").level == level


# -- seeding ----------------------------------------------------------------------------------


def test_register_instances(ecs_env: LocalEcs, ecs: Any) -> None:
    arn = ecs_env.create_cluster("c")
    assert arn.endswith(":cluster/c")
    arns = ecs_env.register_instances(arn, count=3)
    assert sorted(registered(ecs, "c")) == sorted(arns)
    described = ecs.describe_container_instances(cluster="c", containerInstances=arns)
    instances = described["containerInstances"]
    assert [i["status"] for i in instances] == ["ACTIVE"] * 3
    assert len({i["ec2InstanceId"] for i in instances}) == 3
    assert [i["runningTasksCount"] for i in instances] == [0, 0, 0]


def test_register_many_instances(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.create_cluster("big")
    arns = ecs_env.register_instances("big", count=250)
    assert len(set(arns)) == 250
    ec2 = boto3_client(ecs_env, "ec2")
    reservations = ec2.describe_instances()["Reservations"]
    ec2.close()
    assert [len(r["Instances"]) for r in reservations] == [250]  # one RunInstances call


def test_register_instances_bad_input(ecs_env: LocalEcs) -> None:
    with pytest.raises(LookupError, match=r"create_cluster\('nope'\)"):
        ecs_env.register_instances("nope")
    ecs_env.create_cluster()
    with pytest.raises(ValueError, match="count"):
        ecs_env.register_instances(count=0)


def test_service_and_standalone_tasks(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, second) = seeded
    service_arn = ecs_env.create_service(cluster, "web")
    daemon_arn = ecs_env.create_service(cluster, "agent", scheduling_strategy="DAEMON")
    web = ecs_env.start_service_task(cluster, first, service_arn, count=12)
    agent = ecs_env.start_service_task(cluster, first, "agent")
    batch = ecs_env.start_standalone_task(cluster, first, family="nightly", count=2)
    assert len(set(web)) == 12

    deployment = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    tasks = {
        t["taskArn"]: t
        for t in ecs.describe_tasks(cluster=cluster, tasks=[*web, *agent, *batch])["tasks"]
    }
    assert {tasks[a]["group"] for a in web} == {"service:web"}
    assert {tasks[a]["startedBy"] for a in web} == {deployment["deployments"][0]["id"]}
    assert tasks[web[0]]["startedBy"].startswith("ecs-svc/")
    assert tasks[agent[0]]["group"] == "service:agent"
    assert ":service/c/agent" in daemon_arn
    assert {tasks[a]["group"] for a in batch} == {"family:nightly"}
    assert not any(tasks[a].get("startedBy") for a in batch)
    assert {t["lastStatus"] for t in tasks.values()} == {"RUNNING"}
    assert {t["containerInstanceArn"] for t in tasks.values()} == {first}
    assert describe_instance(ecs, cluster, first)["runningTasksCount"] == 15
    assert describe_instance(ecs, cluster, second)["runningTasksCount"] == 0


def test_stop_task(ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]) -> None:
    cluster, (first, _) = seeded
    [task] = ecs_env.start_standalone_task(cluster, first)
    ecs_env.stop_task(cluster, task)
    stopped = describe_task(ecs, cluster, task)
    assert (stopped["lastStatus"], stopped["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert describe_instance(ecs, cluster, first)["runningTasksCount"] == 0


def test_start_service_task_unknown_service(
    ecs_env: LocalEcs, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, _) = seeded
    with pytest.raises((LookupError, ClientError)):
        ecs_env.start_service_task(cluster, first, "ghost")


# -- task states ------------------------------------------------------------------------------


def test_tasks_are_frozen_by_default(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, _) = seeded
    [task] = ecs_env.start_standalone_task(cluster, first)
    assert ecs_env.tasks_frozen
    statuses = {describe_task(ecs, cluster, task)["lastStatus"] for _ in range(6)}
    assert statuses == {"RUNNING"}


def test_unfrozen_tasks_advance_on_each_describe(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, _) = seeded
    [task] = ecs_env.start_standalone_task(cluster, first)
    ecs_env.set_task_transitions(frozen=False)
    assert not ecs_env.tasks_frozen
    seen = [describe_task(ecs, cluster, task)["lastStatus"] for _ in range(5)]
    assert seen == ["DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED", "STOPPED"]
    ecs_env.reset()
    assert ecs_env.tasks_frozen


def test_set_task_status_hides_a_live_task_from_the_counters(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, _) = seeded
    [task] = ecs_env.start_standalone_task(cluster, first)
    assert describe_instance(ecs, cluster, first)["runningTasksCount"] == 1

    ecs_env.set_task_status(cluster, task.rsplit("/", 1)[1], "STOPPING")
    described = describe_task(ecs, cluster, task)
    assert (described["lastStatus"], described["desiredStatus"]) == ("STOPPING", "STOPPED")
    instance = describe_instance(ecs, cluster, first)
    assert (instance["runningTasksCount"], instance["pendingTasksCount"]) == (0, 0)
    assert task in ecs.list_tasks(cluster=cluster, containerInstance=first)["taskArns"]

    ecs_env.set_task_status(cluster, task, "PENDING")
    instance = describe_instance(ecs, cluster, first)
    assert (instance["runningTasksCount"], instance["pendingTasksCount"]) == (0, 1)
    ecs_env.set_task_status(cluster, task, "RUNNING")
    assert describe_task(ecs, cluster, task)["desiredStatus"] == "RUNNING"
    instance = describe_instance(ecs, cluster, first)
    assert (instance["runningTasksCount"], instance["pendingTasksCount"]) == (1, 0)


def test_set_task_status_bad_input(ecs_env: LocalEcs, seeded: tuple[str, list[str]]) -> None:
    cluster, (first, _) = seeded
    [task] = ecs_env.start_standalone_task(cluster, first)
    with pytest.raises(ValueError, match="DEACTIVATING"):
        ecs_env.set_task_status(cluster, task, "stopping")
    with pytest.raises(LookupError, match="no task"):
        ecs_env.set_task_status(cluster, "0123456789abcdef", "STOPPED")
    with pytest.raises(LookupError, match="no task"):
        ecs_env.set_task_status("other", task, "STOPPED")


# -- request counts ---------------------------------------------------------------------------


def test_counts_only_the_callers_requests(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, arns = seeded
    ecs_env.start_standalone_task(cluster, arns[0])  # seeding: not counted
    assert ecs_env.call_log == []

    ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
    ecs.list_tasks(cluster=cluster)
    ecs.describe_container_instances(cluster=cluster, containerInstances=arns[:1])
    assert ecs_env.calls("DescribeContainerInstances") == 2
    assert ecs_env.calls("ListTasks") == 1
    assert ecs_env.calls("DeregisterContainerInstance") == 0
    assert ecs_env.call_log == [
        "DescribeContainerInstances",
        "ListTasks",
        "DescribeContainerInstances",
    ]
    ecs_env.reset_calls()
    assert ecs_env.call_log == []
    assert ecs_env.calls("ListTasks") == 0


def test_call_log_is_a_copy(ecs: Any, ecs_env: LocalEcs) -> None:
    ecs.list_clusters()
    log = ecs_env.call_log
    log.clear()
    assert ecs_env.call_log == ["ListClusters"]


def test_counting_is_thread_safe(ecs_env: LocalEcs) -> None:
    clients = [boto3_client(ecs_env) for _ in range(8)]

    def hammer(client: Any) -> None:
        for _ in range(25):
            client.list_clusters()

    threads = [threading.Thread(target=hammer, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert ecs_env.calls("ListClusters") == 200
    assert len(ecs_env.call_log) == 200


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("deregister_container_instance", "DeregisterContainerInstance"),
        ("DescribeTask", "DescribeTasks"),
        ("Nothing", "DescribeTasks"),
    ],
)
def test_unknown_operation_names_are_refused(ecs_env: LocalEcs, name: str, hint: str) -> None:
    with pytest.raises(ValueError, match=hint):
        ecs_env.calls(name)
    with pytest.raises(ValueError, match=hint):
        ecs_env.inject_fault(name)


# -- fault injection --------------------------------------------------------------------------


def test_json_fault_fails_before_acting(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, _) = seeded
    ecs_env.inject_fault("DeregisterContainerInstance")
    assert ecs_env.pending_faults("DeregisterContainerInstance") == 1
    with pytest.raises(ClientError) as info:
        ecs.deregister_container_instance(cluster=cluster, containerInstance=first)
    response = info.value.response
    assert response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RequestId"]
    assert first in registered(ecs, cluster)  # nothing happened
    assert ecs_env.pending_faults() == 0

    ecs.deregister_container_instance(cluster=cluster, containerInstance=first)  # used up
    assert first not in registered(ecs, cluster)
    assert ecs_env.calls("DeregisterContainerInstance") == 2


def test_fault_with_custom_code_and_repeats(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, arns = seeded
    ecs_env.inject_fault(
        "DescribeContainerInstances",
        code="ServerException",
        http_status=500,
        message="Service unavailable. Please try again later.",
        times=2,
    )
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
        assert info.value.response["Error"]["Code"] == "ServerException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
    assert ecs_env.calls("DescribeContainerInstances") == 3


@pytest.mark.parametrize(("status", "code"), [(None, "503"), (502, "502"), (429, "429")])
def test_html_fault_has_no_aws_code(
    ecs_env: LocalEcs, ecs: Any, status: int | None, code: str
) -> None:
    ecs_env.inject_fault("ListClusters", html=True, http_status=status)
    with pytest.raises(ClientError) as info:
        ecs.list_clusters()
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == int(code)
    ecs.list_clusters()


def test_after_acting_fault_loses_the_response(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, second) = seeded
    ecs_env.inject_fault("DeregisterContainerInstance", after_acting=True, html=True)
    with pytest.raises(ClientError) as info:
        ecs.deregister_container_instance(cluster=cluster, containerInstance=first)
    assert info.value.response["Error"]["Code"] == "503"
    assert registered(ecs, cluster) == [second]  # the deregistration happened

    ecs_env.inject_fault("DeregisterContainerInstance", after_acting=True, code="ServerException")
    with pytest.raises(ClientError, match="ServerException"):
        ecs.deregister_container_instance(cluster=cluster, containerInstance=second)
    assert registered(ecs, cluster) == []


def test_faults_queue_in_order(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.inject_fault("ListClusters", code="AccessDeniedException", times=2)
    ecs_env.inject_fault("ListClusters", html=True)
    codes = []
    for _ in range(3):
        with pytest.raises(ClientError) as info:
            ecs.list_clusters()
        codes.append(info.value.response["Error"]["Code"])
    assert codes == ["AccessDeniedException", "AccessDeniedException", "503"]
    ecs.list_clusters()


def test_clear_faults_and_reset_drop_pending_faults(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.inject_fault("ListClusters", times=3)
    ecs_env.inject_fault("DescribeTasks")
    assert ecs_env.pending_faults() == 4
    ecs_env.clear_faults()
    assert ecs_env.pending_faults() == 0
    ecs.list_clusters()

    ecs_env.inject_fault("ListClusters")
    ecs_env.create_cluster("gone")
    ecs_env.reset()
    assert ecs_env.pending_faults() == 0
    assert ecs_env.call_log == []
    assert ecs.list_clusters()["clusterArns"] == []


def test_seeding_helpers_never_receive_faults(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, _) = seeded
    ecs_env.inject_fault("StartTask")
    ecs_env.inject_fault("RegisterTaskDefinition")
    [task] = ecs_env.start_standalone_task(cluster, first)
    assert ecs_env.pending_faults() == 2
    with pytest.raises(ClientError, match="ThrottlingException"):
        ecs.start_task(
            cluster=cluster,
            taskDefinition=describe_task(ecs, cluster, task)["taskDefinitionArn"],
            containerInstances=[first],
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"times": 0}, "times"),
        ({"http_status": 200}, "http_status"),
        ({"http_status": 599}, "http_status"),
        ({"code": ""}, "code"),
    ],
)
def test_inject_fault_bad_input(ecs_env: LocalEcs, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ecs_env.inject_fault("ListClusters", **kwargs)
    assert ecs_env.pending_faults() == 0


async def test_faults_reach_aiobotocore(ecs_env: LocalEcs, seeded: tuple[str, list[str]]) -> None:
    cluster, (first, _) = seeded
    kwargs = ecs_env.client_kwargs()
    async with kwargs["session"].create_client(
        "ecs",
        endpoint_url=kwargs["endpoint_url"],
        region_name=kwargs["region_name"],
        config=AioConfig(retries={"total_max_attempts": 1}),
    ) as client:
        ecs_env.inject_fault("DeregisterContainerInstance")
        ecs_env.inject_fault("DeregisterContainerInstance", html=True, http_status=504)
        with pytest.raises(ClientError) as throttled:
            await client.deregister_container_instance(cluster=cluster, containerInstance=first)
        with pytest.raises(ClientError) as gateway:
            await client.deregister_container_instance(cluster=cluster, containerInstance=first)
        response = await client.deregister_container_instance(
            cluster=cluster, containerInstance=first
        )
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert gateway.value.response["Error"]["Code"] == "504"
    assert response["containerInstance"]["containerInstanceArn"] == first
    assert ecs_env.call_log == ["DeregisterContainerInstance"] * 3


def test_stop_drops_faults_and_gives_transitions_back() -> None:
    local = LocalEcs()
    local.start()
    assert state_manager.get_transition("ecs::task")["times"] > 1000
    local.inject_fault("ListClusters")
    local.stop()
    assert local.pending_faults() == 0
    assert state_manager.get_transition("ecs::task") == {"progression": "manual", "times": 1}


def test_moto_api_reset_over_http(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.create_cluster("a")
    ecs_env.reset()
    assert ecs.list_clusters()["clusterArns"] == []
    # The instance identity document registration path still works after a reset.
    ec2 = boto3_client(ecs_env, "ec2")
    ecs_env.create_cluster("a")
    [instance] = ec2.run_instances(ImageId="ami-1e749f67", MinCount=1, MaxCount=1)["Instances"]
    ec2.close()
    ecs.register_container_instance(
        cluster="a", instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"]})
    )
    assert len(registered(ecs, "a")) == 1


# --------------------------------------------------------------------------- ECS's answers


def test_a_terminated_instance_is_inactive_too(ecs_env: LocalEcs, ecs: Any) -> None:
    ecs_env.create_cluster("c")
    [arn] = ecs_env.register_instances("c")
    ec2_id = describe_instance(ecs, "c", arn)["ec2InstanceId"]
    ecs_env.start_standalone_task("c", arn)
    ecs_env.terminate_instance(ec2_id)
    gone = describe_instance(ecs, "c", arn)
    assert (gone["status"], gone["agentConnected"], gone["ec2InstanceId"]) == (
        "INACTIVE",
        False,
        ec2_id,
    )
    assert gone["registeredAt"].year >= 2024


def test_moto_answers_missing_when_asked(ecs_env: LocalEcs) -> None:
    with LocalEcs(report_inactive=False) as local:
        client = boto3_client(local)
        local.create_cluster("c")
        [arn] = local.register_instances("c")
        client.deregister_container_instance(cluster="c", containerInstance=arn)
        response = client.describe_container_instances(cluster="c", containerInstances=[arn])
        assert response["containerInstances"] == []
        assert [f["reason"] for f in response["failures"]] == ["MISSING"]
        client.close()
    assert ecs_env.is_running


def test_stopping_a_pending_task_lowers_the_pending_count(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    """ECS counts a PENDING task in pendingTasksCount; stopping it lowers that counter, not
    runningTasksCount (moto lowers the running one whatever the status)."""
    cluster, (first, _) = seeded
    [running, pending] = ecs_env.start_standalone_task(cluster, first, count=2)
    ecs_env.set_task_status(cluster, pending, "PENDING")
    before = describe_instance(ecs, cluster, first)
    assert (before["runningTasksCount"], before["pendingTasksCount"]) == (1, 1)
    ecs.stop_task(cluster=cluster, task=pending)
    after = describe_instance(ecs, cluster, first)
    assert (after["runningTasksCount"], after["pendingTasksCount"]) == (1, 0)
    assert running


def test_stopping_a_task_twice_changes_nothing_the_second_time(
    ecs_env: LocalEcs, ecs: Any, seeded: tuple[str, list[str]]
) -> None:
    cluster, (first, _) = seeded
    memory = {
        r["name"]: r.get("integerValue")
        for r in describe_instance(ecs, cluster, first)["remainingResources"]
    }["MEMORY"]
    [task] = ecs_env.start_standalone_task(cluster, first)
    ecs.stop_task(cluster=cluster, task=task)
    ecs.stop_task(cluster=cluster, task=task)
    after = describe_instance(ecs, cluster, first)
    assert after["runningTasksCount"] == 0
    assert {r["name"]: r.get("integerValue") for r in after["remainingResources"]}[
        "MEMORY"
    ] == memory
