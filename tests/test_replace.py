"""Rolling replacement of an Auto Scaling group against LocalEcs with the service scheduler on.

A 12-instance group bound to its cluster (new instances join it, as the ECS agent would) runs
three services; the scheduler moves their tasks off DRAINING instances as ECS does, and its
record of every task start and stop is what "within budget" is asserted on. The crash test
runs the replacement in a child process (`replace_crash_run.py`), kills it with SIGKILL when
the server receives a chosen termination, and resumes it from the audit log.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
import pytest
from moto.autoscaling.models import AutoScalingBackend
from test_audit import crash_env
from typer.testing import CliRunner, Result

from ecs_safe import (
    AuditLog,
    DisruptionBudget,
    DisruptionBudgets,
    EcsSafeClient,
    InvalidInputError,
    PolicyViolationError,
    default_policy,
)
from ecs_safe.cli import app
from ecs_safe.local import LocalEcs
from ecs_safe.local.scaling import GroupModel
from ecs_safe.replace import REPLACE_STARTED, plan_waves

CLUSTER = "repl"
GROUP = "fleet"
SERVICES = ("web", "api", "worker")
DESIRED = 6
WAVE = 3
# Half of each service may be away at once: a wave of three hosts holds at most three of its
# six tasks (the scheduler spreads them, one a host).
BUDGET = DisruptionBudget("*", "50%")
FLOOR = DESIRED - DESIRED // 2
FAST: dict[str, Any] = {
    "timeout": 60.0,
    "poll_interval": 0.05,
    "capacity_timeout": 60.0,
    "steady_timeout": 60.0,
}
CRASH_RUNNER = Path(__file__).with_name("replace_crash_run.py")

pytestmark = pytest.mark.usefixtures("instant_retries")


class ServerSide:
    """Counts the terminations and size changes the server acts on; may hold the Nth one.

    Patched into LocalEcs's group model and moto's backend (the server runs on threads of this
    process), so a count is what the service did, across every client and process.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, hold_at: int | None = None) -> None:
        self.lock = threading.Lock()
        self.terminated: list[str] = []
        self.acted: list[str] = []
        self.sizes: list[dict[str, Any]] = []
        self.held = threading.Event()
        self.release = threading.Event()
        terminate = GroupModel.terminated
        update = AutoScalingBackend.update_auto_scaling_group

        def held_terminate(model: GroupModel, instance_id: str) -> None:
            with self.lock:
                self.terminated.append(instance_id)
                hold = hold_at is not None and len(self.terminated) == hold_at
            if hold:
                self.held.set()
                self.release.wait(30)
            terminate(model, instance_id)
            with self.lock:
                self.acted.append(instance_id)

        def counted_update(backend: AutoScalingBackend, *a: Any, **kw: Any) -> Any:
            with self.lock:
                self.sizes.append(dict(kw))
            return update(backend, *a, **kw)

        monkeypatch.setattr(GroupModel, "terminated", held_terminate)
        monkeypatch.setattr(AutoScalingBackend, "update_auto_scaling_group", counted_update)


@pytest.fixture
def fleet(ecs_env: LocalEcs) -> Iterator[list[str]]:
    """The group's 12 instances (EC2 IDs) with three services of 6 tasks; scheduler ticking."""
    ecs_env.create_cluster(CLUSTER)
    group = ecs_env.create_auto_scaling_group(GROUP, CLUSTER, 12, join=True)
    for name in SERVICES:
        ecs_env.create_service(CLUSTER, name, desired_count=DESIRED, scheduler=True)
    ecs_env.scheduler.run_until_settled()
    ecs_env.scheduler.reset_record()
    ecs_env.scheduler.start(0.02)
    try:
        yield list(group.instance_ids)
    finally:
        ecs_env.scheduler.stop()


def _group(local: LocalEcs) -> dict[str, Any]:
    autoscaling = boto3.session.Session(
        aws_access_key_id=local.access_key_id,
        aws_secret_access_key=local.secret_access_key,
        region_name=local.region_name,
    ).client("autoscaling", endpoint_url=local.endpoint_url)
    found: dict[str, Any] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ][0]
    return found


def _sizes(local: LocalEcs) -> tuple[int, int, int]:
    group = _group(local)
    return group["MinSize"], group["MaxSize"], group["DesiredCapacity"]


def _members(local: LocalEcs) -> list[str]:
    return [i["InstanceId"] for i in _group(local)["Instances"]]


def _assert_within_budget(local: LocalEcs) -> None:
    for name in SERVICES:
        events = local.scheduler.events_for(name)
        assert any(e.kind == "stopped" for e in events), f"{name} was never moved"
        assert all(e.running >= FLOOR for e in events), (name, local.scheduler.lowest_running(name))


def test_waves_put_the_remainder_first() -> None:
    assert plan_waves(list("abcde"), 2) == [["a"], ["b", "c"], ["d", "e"]]
    assert plan_waves(list("abcd"), 2) == [["a", "b"], ["c", "d"]]
    assert plan_waves([], 3) == []


async def test_the_plan_shows_waves_surge_and_restore_and_changes_nothing(
    ecs_env: LocalEcs, fleet: list[str], tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    async with EcsSafeClient(**ecs_env.client_kwargs(), audit_log=log) as ecs:
        plan = await ecs.replace_auto_scaling_group(
            GROUP, cluster=CLUSTER, wave_size=5, surge=True, dry_run=True, **FAST
        )
    assert plan.status == "planned"
    assert [w.instance_ids for w in plan.waves] == plan_waves(fleet, 5)
    assert [w.decrement_desired_capacity for w in plan.waves] == [False, False, True]
    assert (plan.saved_sizes.desired_capacity, plan.saved_sizes.max_size) == (12, 12)
    assert plan.surge_sizes is not None
    assert (plan.surge_sizes.desired_capacity, plan.surge_sizes.max_size) == (17, 17)
    assert {o.status for w in plan.waves for o in w.outcomes} == {"would_deregister"}
    assert _sizes(ecs_env) == (0, 12, 12)
    kinds = {r["kind"] for r in AuditLog.read(log)}
    assert "intent" not in kinds  # no mutating call
    assert REPLACE_STARTED not in kinds  # nothing saved: there is nothing to resume
    assert ecs_env.calls("UpdateContainerInstancesState") == 0


@pytest.mark.parametrize("surge", [False, True], ids=["in-place", "surge"])
async def test_a_group_is_replaced_with_every_service_within_budget(
    ecs_env: LocalEcs,
    fleet: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    surge: bool,
) -> None:
    server = ServerSide(monkeypatch)
    log = tmp_path / "audit.jsonl"
    policy = default_policy().with_rules(DisruptionBudgets(BUDGET))
    async with EcsSafeClient(**ecs_env.client_kwargs(), audit_log=log, policy=policy) as ecs:
        result = await ecs.replace_auto_scaling_group(
            GROUP, cluster=CLUSTER, wave_size=WAVE, surge=surge, **FAST
        )
    assert result.status == "replaced", result.error
    assert result.restored
    assert sorted(result.terminated) == sorted(fleet)
    assert sorted(server.terminated) == sorted(fleet)  # each exactly once
    assert _sizes(ecs_env) == (0, 12, 12)
    members = _members(ecs_env)
    assert len(members) == 12
    assert not set(members) & set(fleet)
    _assert_within_budget(ecs_env)
    raised = [s for s in server.sizes if s.get("desired_capacity") == 12 + WAVE]
    assert len(raised) == (1 if surge else 0)


async def test_an_unfinished_replacement_must_be_resumed_not_started_over(
    ecs_env: LocalEcs, fleet: list[str], tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    with AuditLog(log, run_id="crashed") as audit:
        audit.start_run().write(
            REPLACE_STARTED,
            group=GROUP,
            cluster=CLUSTER,
            saved_sizes={"min_size": 0, "max_size": 12, "desired_capacity": 12},
            old_instances=fleet,
        )
    async with EcsSafeClient(**ecs_env.client_kwargs(), audit_log=log) as ecs:
        with pytest.raises(InvalidInputError, match="--resume crashed"):
            await ecs.replace_auto_scaling_group(GROUP, cluster=CLUSTER, **FAST)
    async with EcsSafeClient(**ecs_env.client_kwargs(), audit_log=log, run_id="other") as ecs:
        with pytest.raises(InvalidInputError, match="no replacement of group 'fleet' by run other"):
            await ecs.replace_auto_scaling_group(GROUP, cluster=CLUSTER, resume=True, **FAST)
    assert _sizes(ecs_env) == (0, 12, 12)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _run_and_kill(local: LocalEcs, server: ServerSide, log: Path) -> None:
    """Run the replacement in a child process; SIGKILL it once the server holds a termination."""
    command = [
        sys.executable,
        str(CRASH_RUNNER),
        local.endpoint_url,
        local.region_name,
        str(log),
        "crashed",
        CLUSTER,
        GROUP,
        str(WAVE),
    ]
    process = subprocess.Popen(
        command, env=crash_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(lambda: server.held.is_set() or process.poll() is not None, "the termination")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        server.release.set()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL, stderr.decode(errors="replace")


async def test_a_replacement_killed_midway_resumes_with_nothing_done_twice(
    ecs_env: LocalEcs, fleet: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed while the server holds wave 2's first termination: its result is unknown to the
    # run, and the server acts on it after the run is gone.
    server = ServerSide(monkeypatch, hold_at=WAVE + 1)
    log = tmp_path / "audit.jsonl"
    _run_and_kill(ecs_env, server, log)
    _wait_for(lambda: len(server.acted) == WAVE + 1, "the held termination to act")
    assert len(server.terminated) == WAVE + 1

    policy = default_policy().with_rules(DisruptionBudgets(BUDGET))
    async with EcsSafeClient(
        **ecs_env.client_kwargs(), audit_log=log, run_id="crashed", policy=policy
    ) as ecs:
        result = await ecs.replace_auto_scaling_group(
            GROUP, cluster=CLUSTER, wave_size=WAVE, surge=True, resume=True, **FAST
        )
    assert result.status == "replaced", result.error
    assert result.resumed
    assert sorted(result.already_replaced) == sorted(server.terminated[: WAVE + 1])
    assert sorted(server.terminated) == sorted(fleet)  # every old instance once, none twice
    assert [s.get("desired_capacity") for s in server.sizes].count(12 + WAVE) == 1  # one surge
    assert _sizes(ecs_env) == (0, 12, 12)
    assert not set(_members(ecs_env)) & set(fleet)
    _assert_within_budget(ecs_env)
    records = [r for r in AuditLog.read(log) if r["kind"] != "torn"]
    seqs = [r["seq"] for r in records if r["run_id"] == "crashed"]
    assert seqs == list(range(1, len(seqs) + 1))  # the resumed run numbers on


def _cli(local: LocalEcs, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    for name, value in crash_env().items():
        monkeypatch.setenv(name, value)
    endpoint = ["--endpoint-url", local.endpoint_url, "--region", local.region_name]
    return CliRunner().invoke(
        app, ["replace", "--auto-scaling-group", GROUP, "--cluster", CLUSTER, *endpoint, *args]
    )


def test_the_cli_plans_as_json_and_refuses_a_run_without_an_audit_log(
    ecs_env: LocalEcs, fleet: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = _cli(ecs_env, monkeypatch, "--wave-size", "6", "--dry-run", "--output", "json")
    assert planned.exit_code == 0, planned.output
    document = json.loads(planned.stdout)
    assert (document["command"], document["status"], document["exit_code"]) == (
        "replace",
        "planned",
        0,
    )
    assert [w["instance_ids"] for w in document["waves"]] == plan_waves(fleet, 6)
    assert document["saved_sizes"] == {"min_size": 0, "max_size": 12, "desired_capacity": 12}
    unlogged = _cli(ecs_env, monkeypatch, "--wave-size", "6")
    assert unlogged.exit_code == 2
    assert "needs --audit-log" in unlogged.output
    assert _sizes(ecs_env) == (0, 12, 12)


async def test_a_protected_instance_stops_the_run_before_anything_changes(
    ecs_env: LocalEcs, fleet: list[str], tmp_path: Path
) -> None:
    autoscaling = boto3.session.Session(
        aws_access_key_id=ecs_env.access_key_id,
        aws_secret_access_key=ecs_env.secret_access_key,
        region_name=ecs_env.region_name,
    ).client("autoscaling", endpoint_url=ecs_env.endpoint_url)
    autoscaling.set_instance_protection(
        AutoScalingGroupName=GROUP, InstanceIds=fleet[:1], ProtectedFromScaleIn=True
    )
    log = tmp_path / "audit.jsonl"
    async with EcsSafeClient(**ecs_env.client_kwargs(), audit_log=log) as ecs:
        result = await ecs.replace_auto_scaling_group(
            GROUP, cluster=CLUSTER, wave_size=WAVE, **FAST
        )
    assert result.status == "stopped"
    assert isinstance(result.error, PolicyViolationError)
    assert [v.rule for v in result.error.decision.violations] == ["termination-protection"]
    # The rest of its wave was judged safe and replaced; no wave started after it.
    assert sorted(result.terminated) == sorted(fleet[1:WAVE])
    assert len(result.waves) == 1
    assert fleet[0] in _members(ecs_env)  # the protected one: untouched, still serving
    assert _sizes(ecs_env) == (0, 12, 12)
    # Stopped is not finished: a new run is refused, this one is to be resumed.
    async with EcsSafeClient(**ecs_env.client_kwargs(), audit_log=log) as ecs:
        with pytest.raises(InvalidInputError, match=f"--resume {result.run_id}"):
            await ecs.replace_auto_scaling_group(GROUP, cluster=CLUSTER, **FAST)
