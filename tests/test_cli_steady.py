"""``ecs-safe drain`` of several hosts passes the steady-state gate between its drains.

Against LocalEcs's service scheduler (`ecs_safe.local.scheduler`), ticking in its thread while
the CLI runs in-process; the assertions replay the scheduler's record of every task start and
stop. No test waits on a timer of its own.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ecs_safe.cli import app
from ecs_safe.local import LocalEcs
from ecs_safe.local.scheduler import TaskEvent

CLUSTER = "clisteady"


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "ECS_SAFE_CLUSTER", "ECS_SAFE_OUTPUT", "ECS_SAFE_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def env(ecs_env: LocalEcs) -> Iterator[LocalEcs]:
    ecs_env.create_cluster(CLUSTER)
    yield ecs_env
    ecs_env.scheduler.stop()


def _seed(env: LocalEcs, old: int, spare: int, desired: int) -> list[str]:
    hosts = env.register_instances(CLUSTER, old)
    env.create_service(CLUSTER, "web", desired_count=desired, scheduler=True)
    env.scheduler.run_until_settled()
    assert env.scheduler.is_steady(CLUSTER, "web")
    env.register_instances(CLUSTER, spare)
    env.scheduler.reset_record()
    env.reset_calls()
    return hosts


def _drain(env: LocalEcs, *args: str) -> Result:
    return CliRunner().invoke(
        app,
        ["drain", *args, "--endpoint-url", env.endpoint_url, "--cluster", CLUSTER],
        catch_exceptions=False,
    )


def _stops_by_host(record: list[TaskEvent], hosts: list[str]) -> dict[str, list[int]]:
    """Per old host, the positions in the record of the stops of its tasks."""
    found: dict[str, list[int]] = {h: [] for h in hosts}
    for position, event in enumerate(record):
        if event.kind == "stopped" and event.container_instance_arn in found:
            found[event.container_instance_arn].append(position)
    return found


def test_a_cli_drain_of_several_hosts_never_drains_one_while_the_service_is_unsteady(
    env: LocalEcs,
) -> None:
    old = _seed(env, old=4, spare=4, desired=8)
    env.scheduler.start(interval=0.02)
    result = _drain(
        env,
        *old,
        "--concurrency",
        "2",
        "--timeout",
        "120",
        "--poll-interval",
        "0.05",
        "--steady-timeout",
        "120",
        "--output",
        "json",
    )
    env.scheduler.stop()
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    assert [o["status"] for o in document["outcomes"]] == ["deregistered"] * 4
    record = env.scheduler.record
    stops = _stops_by_host(record, old)
    assert all(stops.values()), stops  # every old host had web tasks, and lost them
    # Hosts in the order their drain began; with two slots and no gate, two would drain at once.
    order = sorted(old, key=lambda h: stops[h][0])
    for before, after in itertools.pairwise(order):
        last, first = stops[before][-1], stops[after][0]
        assert last < first, "a host was drained while the previous one still had web tasks"
        between = record[last:first]
        # web was steady again in between: desired RUNNING, nothing pending.
        assert any(e.running == e.desired and not e.pending for e in between), between
    assert (env.scheduler.lowest_running("web") or 0) >= 8  # minimumHealthyPercent 100
    assert env.scheduler.is_steady(CLUSTER, "web")


def test_a_gate_timeout_reports_the_remaining_hosts_as_not_started(env: LocalEcs) -> None:
    old = _seed(env, old=3, spare=2, desired=3)
    # web's replacements never reach RUNNING: it never becomes steady again.
    env.scheduler.fail_starts(CLUSTER, "web", times=None, how="PENDING")
    env.scheduler.start(interval=0.02)
    common = ["--concurrency", "1", "--timeout", "1", "--poll-interval", "0.05"]
    result = _drain(env, *old, *common, "--steady-timeout", "0.3", "--output", "json")
    env.scheduler.stop()
    assert result.exit_code == 5, result.output  # partial: a timeout and two not started
    document: dict[str, Any] = json.loads(result.stdout)
    outcomes = document["outcomes"]
    assert sorted(o["status"] for o in outcomes) == ["failed", "failed", "timed_out"]
    not_started = [o for o in outcomes if o["status"] == "failed"]
    for outcome in not_started:
        text = json.dumps(outcome)
        assert "was never set DRAINING" in text
        assert "steady_timeout=0.3s" in text
    # Only the first host was ever set DRAINING; the others are untouched.
    assert env.calls("UpdateContainerInstancesState") == 1


def test_the_text_report_says_not_started_with_the_reason(env: LocalEcs) -> None:
    old = _seed(env, old=2, spare=1, desired=2)
    env.scheduler.fail_starts(CLUSTER, "web", times=None, how="PENDING")
    env.scheduler.start(interval=0.02)
    common = ["--concurrency", "1", "--timeout", "1", "--poll-interval", "0.05"]
    result = _drain(env, *old, *common, "--steady-timeout", "0.2")
    env.scheduler.stop()
    assert result.exit_code == 5
    flat = " ".join(result.stdout.split())
    assert "not started:" in flat
    assert "steady_timeout=0.2s" in flat


def test_steady_timeout_is_a_usage_error_when_not_positive(env: LocalEcs) -> None:
    [host] = env.register_instances(CLUSTER, 1)
    env.reset_calls()
    result = _drain(env, host, "--steady-timeout", "0")
    assert result.exit_code == 2
    assert "--steady-timeout" in result.stderr
    assert env.call_log == []
