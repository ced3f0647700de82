"""The operator verbs: reactivate/activate (uncordon), drain without deregistering, cancellation
that says what it left, a hard drain deadline, inert terminal output, and ``ecs-safe local``.

Every user path talks HTTP to LocalEcs; tests wait on events (never on wall-clock speed).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import botocore.session
import pytest
import structlog
from drain_support import client, ecs_backend
from structlog.testing import capture_logs
from typer.testing import CliRunner

from ecs_safe import ContainerInstanceNotFoundError, DrainTimeoutError, SyncEcsSafeClient
from ecs_safe.cli import app
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import LogFormat
from ecs_safe.errors import DrainNotFoundError, PartialDrainError
from ecs_safe.local import LocalEcs

CLUSTER = "verbs"
GHOST = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    # A spare ACTIVE instance: where ECS would start the drained service tasks (a drain
    # whose tasks have nowhere to go is refused: RoomElsewhere).
    ecs_env.register_instances(CLUSTER, 1)
    return ecs_env


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI reads the AWS chain; the test must never find a real one.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@functools.cache
def boto_ecs(env: LocalEcs) -> Any:
    """A plain botocore client: another tool looking at (or acting on) the same cluster."""
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client("ecs", endpoint_url=env.endpoint_url, region_name=env.region_name)


def status_of(env: LocalEcs, arn: str) -> str | None:
    response = boto_ecs(env).describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    return str(response["containerInstances"][0]["status"])


def cli(env: LocalEcs, *args: str) -> Any:
    return CliRunner().invoke(
        app, [*args, "--endpoint-url", env.endpoint_url, "--cluster", CLUSTER]
    )


# --------------------------------------------------------------------------- reactivate


async def test_reactivate_sets_draining_instances_active_and_logs_each(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 12)  # two UpdateContainerInstancesState calls
    async with client(env) as ecs:
        await ecs.drain(arns, cluster=CLUSTER)
        env.reset_calls()
        with capture_logs() as logs:
            back = await ecs.reactivate(arns, cluster=CLUSTER)
    assert [i.container_instance_arn for i in back] == arns
    assert {i.status for i in back} == {"ACTIVE"}
    assert {status_of(env, a) for a in arns} == {"ACTIVE"}
    assert env.calls("UpdateContainerInstancesState") == 2
    reactivated = [e for e in logs if e["event"] == "ecs_safe.drain.reactivated"]
    assert sorted(e["container_instance_arn"] for e in reactivated) == sorted(arns)


async def test_reactivate_failures_are_typed_as_for_drain(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 2)
    async with client(env) as ecs:
        await ecs.drain(arns, cluster=CLUSTER)
        with pytest.raises(DrainNotFoundError) as caught:
            await ecs.reactivate([arns[0], GHOST, arns[1]], cluster=CLUSTER)
    error = caught.value
    assert isinstance(error, ContainerInstanceNotFoundError)
    assert isinstance(error, PartialDrainError)
    assert error.container_instances == [GHOST]
    assert "could not be set ACTIVE" in str(error)
    assert [i.container_instance_arn for i in error.drained] == arns
    assert [status_of(env, a) for a in arns] == ["ACTIVE", "ACTIVE"]


def test_sync_reactivate(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    with SyncEcsSafeClient(**env.client_kwargs()) as ecs:
        ecs.drain([arn], cluster=CLUSTER)
        [back] = ecs.reactivate([arn], cluster=CLUSTER)
    assert back.status == "ACTIVE"
    assert status_of(env, arn) == "ACTIVE"


def test_cli_activate_text_and_json(env: LocalEcs) -> None:
    arns = env.register_instances(CLUSTER, 2)
    boto_ecs(env).update_container_instances_state(
        cluster=CLUSTER, containerInstances=arns, status="DRAINING"
    )
    ids = [a.rsplit("/", 1)[-1] for a in arns]
    # Drained by "another tool" (no ecs-safe mark): activate needs --take-over for them.
    text = cli(env, "activate", ids[0], "--take-over")
    assert text.exit_code == 0, text.output
    assert ids[0] in text.stdout
    assert "ACTIVE" in text.stdout
    result = cli(env, "activate", ids[1], "-o", "json", "--take-over")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["command"] == "activate"
    assert [i["status"] for i in document["container_instances"]] == ["ACTIVE"]
    assert [status_of(env, a) for a in arns] == ["ACTIVE", "ACTIVE"]


def test_cli_activate_missing_instance_exits_1(env: LocalEcs) -> None:
    env.register_instances(CLUSTER, 1)  # moto answers 500 for a cluster that never had one
    result = cli(env, "activate", GHOST, "-o", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["command"] == "activate"
    assert document["error"]["type"] == "DrainNotFoundError"


# --------------------------------------------------------------------------- cancellation


def draining_signal(arn: str) -> tuple[asyncio.Event, Any]:
    """An event set by the progress callback once ``arn`` is polled as DRAINING."""
    seen = asyncio.Event()

    def progress(event: Mapping[str, Any]) -> None:
        if (
            event.get("event") == "ecs_safe.drain.progress"
            and event.get("container_instance_arn") == arn
            and event.get("status") == "DRAINING"
        ):
            seen.set()

    return seen, progress


def interrupted_events(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "ecs_safe.drain.interrupted"]


async def test_cancelled_drain_and_deregister_logs_what_it_left(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.start_service_task(CLUSTER, arn, "web")
    seen, progress = draining_signal(arn)
    async with client(env) as ecs:
        with capture_logs() as logs:
            call = asyncio.create_task(
                ecs.drain_and_deregister(
                    arn, cluster=CLUSTER, timeout=600, poll_interval=0.05, progress=progress
                )
            )
            await seen.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
    [event] = interrupted_events(logs)
    assert event["left_draining"] == [arn]
    assert event["deregistered"] == []
    assert event["not_started"] == []
    assert event["cluster"] == CLUSTER
    assert status_of(env, arn) == "DRAINING"


async def test_cancelled_fleet_drain_logs_what_it_left_and_what_finished(env: LocalEcs) -> None:
    idle, busy, queued = env.register_instances(CLUSTER, 3)
    for arn in (busy, queued):
        env.start_service_task(CLUSTER, arn, "web")
    seen, progress = draining_signal(busy)
    async with client(env) as ecs:
        with capture_logs() as logs:
            call = asyncio.create_task(
                ecs.deregister_many(
                    [idle, busy, queued],
                    cluster=CLUSTER,
                    drain=True,
                    concurrency=1,
                    timeout=600,
                    poll_interval=0.05,
                    progress=progress,
                )
            )
            await seen.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
    [event] = interrupted_events(logs)
    assert event["deregistered"] == [idle]
    assert event["left_draining"] == [busy]
    assert event["not_started"] == [queued]
    assert event["failed"] == []
    assert status_of(env, busy) == "DRAINING"
    assert status_of(env, queued) == "ACTIVE"


# --------------------------------------------------------------------------- hard deadline


async def test_drain_deadline_bounds_a_held_read(
    env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll whose read the server holds past the deadline: the drain ends at the deadline,
    while the read is still held, and the message states the time it really took."""
    [arn] = env.register_instances(CLUSTER, 1)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    backend = ecs_backend(env)
    armed, held, release = threading.Event(), threading.Event(), threading.Event()
    update, describe = (
        backend.update_container_instances_state,
        backend.describe_container_instances,
    )

    def set_state(*args: Any, **kwargs: Any) -> Any:
        try:
            return update(*args, **kwargs)
        finally:
            armed.set()  # from now on, the drain's polls

    def held_describe(*args: Any, **kwargs: Any) -> Any:
        if armed.is_set():
            held.set()
            release.wait()
            held.clear()
        return describe(*args, **kwargs)

    monkeypatch.setattr(backend, "update_container_instances_state", set_state)
    monkeypatch.setattr(backend, "describe_container_instances", held_describe)
    # The safety net only: were the deadline soft, the read would end here and the test fail.
    safety = threading.Timer(60, release.set)
    safety.daemon = True
    safety.start()
    try:
        async with client(env) as ecs:
            with capture_logs() as logs, pytest.raises(DrainTimeoutError) as caught:
                await ecs.drain_and_deregister(
                    arn, cluster=CLUSTER, timeout=0.2, poll_interval=0.05
                )
            still_held = held.is_set() and not release.is_set()
    finally:
        release.set()
        safety.cancel()
    assert still_held
    found = re.search(r"after (\d+\.\d)s of draining \(timeout 0.2s\)", str(caught.value))
    assert found, str(caught.value)
    assert float(found[1]) >= 0.2
    [timed_out] = [e for e in logs if e["event"] == "ecs_safe.drain.timed_out"]
    assert timed_out["remaining_task_arns"] == [task]
    assert timed_out["remaining_tasks"] == 1


async def test_drain_timed_out_event_names_the_remaining_tasks(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    tasks = env.start_service_task(CLUSTER, arn, "web", count=2)
    async with client(env) as ecs:
        with capture_logs() as logs, pytest.raises(DrainTimeoutError):
            await ecs.drain_and_deregister(arn, cluster=CLUSTER, timeout=0.1, poll_interval=0.05)
    [timed_out] = [e for e in logs if e["event"] == "ecs_safe.drain.timed_out"]
    assert sorted(timed_out["remaining_task_arns"]) == sorted(tasks)


# --------------------------------------------------------------------------- inert output

ESC_GROUP = "service:\x1b[2K\x1b[1Gderegistered"


def test_cli_text_output_makes_server_strings_inert_and_json_keeps_them(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    definition = env.register_task_definition(family="evil")
    boto_ecs(env).start_task(
        cluster=CLUSTER, taskDefinition=definition, containerInstances=[arn], group=ESC_GROUP
    )
    ref = arn.rsplit("/", 1)[-1]
    text = cli(env, "describe", "--tasks", ref)
    assert text.exit_code == 0, text.output
    assert "\x1b" not in text.output
    assert "\\x1b[2K" in text.stdout  # shown, as visible characters
    document = json.loads(cli(env, "describe", "--tasks", ref, "-o", "json").stdout)
    [instance] = document["container_instances"]
    assert [t["group"] for t in instance["tasks"]] == [ESC_GROUP]


def test_cli_error_line_and_log_lines_make_a_fault_message_inert(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    message = "\x1b[2K\x1b[1Gderegistered"
    env.inject_fault("DescribeContainerInstances", code="AccessDeniedException", message=message)
    result = cli(env, "describe", arn.rsplit("/", 1)[-1], "-v")
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output
    assert "\\x1b[2K" in result.stderr
    env.inject_fault("DescribeContainerInstances", code="AccessDeniedException", message=message)
    document = json.loads(cli(env, "describe", arn.rsplit("/", 1)[-1], "-o", "json").stdout)
    assert message in document["error"]["message"]


def test_cli_console_log_lines_are_inert(capsys: pytest.CaptureFixture[str]) -> None:
    with logging_configured(LogFormat.CONSOLE, 1):
        structlog.get_logger("ecs_safe").warning("ecs_safe.test", error=ESC_GROUP)
    err = capsys.readouterr().err
    assert "ecs_safe.test" in err
    assert "\x1b[2K" not in err
    assert "\\x1b[2K" in err


# --------------------------------------------------------------------------- drain and wait


async def test_drain_and_wait_leaves_the_instance_registered(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    [task] = env.start_service_task(CLUSTER, arn, "web")
    polled = asyncio.Event()

    def progress(event: Mapping[str, Any]) -> None:
        # Plays the scheduler: the service task leaves once the drain has seen it.
        if event.get("remaining_tasks") and not polled.is_set():
            polled.set()
            env.stop_task(CLUSTER, task)

    async with client(env) as ecs:
        with capture_logs() as logs:
            drained = await ecs.drain_and_wait(
                arn, cluster=CLUSTER, timeout=600, poll_interval=0.05, progress=progress
            )
    assert polled.is_set()
    assert drained.status == "DRAINING"
    assert status_of(env, arn) == "DRAINING"
    assert env.calls("DeregisterContainerInstance") == 0
    assert [
        e["container_instance_arn"] for e in logs if e["event"] == "ecs_safe.drain.drained"
    ] == [arn]


async def test_drain_and_wait_times_out_leaving_it_draining(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    env.start_service_task(CLUSTER, arn, "web")
    async with client(env) as ecs:
        with pytest.raises(DrainTimeoutError):
            await ecs.drain_and_wait(arn, cluster=CLUSTER, timeout=0.1, poll_interval=0.05)
    assert status_of(env, arn) == "DRAINING"
    assert env.calls("DeregisterContainerInstance") == 0


def test_sync_drain_and_wait(env: LocalEcs) -> None:
    [arn] = env.register_instances(CLUSTER, 1)
    with SyncEcsSafeClient(**env.client_kwargs()) as ecs:
        drained = ecs.drain_and_wait(arn, cluster=CLUSTER, timeout=60, poll_interval=0.05)
    assert drained.status == "DRAINING"
    assert status_of(env, arn) == "DRAINING"


# --------------------------------------------------------------------------- ecs-safe local


def test_cli_local_serves_and_prints_the_environment_until_sigint() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with subprocess.Popen(
        [sys.executable, "-m", "ecs_safe", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as server:
        assert server.stdout is not None
        # Waits on the server's own output: it prints only once it serves.
        first = server.stdout.readline().strip()
        name, _, url = first.removeprefix("export ").partition("=")
        assert name == "AWS_ENDPOINT_URL_ECS"
        assert url.startswith("http://127.0.0.1:")
        server.send_signal(signal.SIGINT)
        assert server.wait() == 0
