"""``ecs-safe watch``: each event's outcome on stdout, and SIGTERM's clean stop.

The first test runs in-process (typer's `CliRunner`, ``--max-events``); the second runs the
installed console script and signals it once the worker's Spot drain is under way (its own
log line says so), so no wait depends on the machine's speed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ecs_safe import AuditLog
from ecs_safe.cli import app
from ecs_safe.local import LocalEcs
from ecs_safe.worker import EVENT_DONE, EVENT_STARTED

ECS_SAFE = Path(sys.executable).with_name("ecs-safe")
CLUSTER = "watching"
_FOREIGN_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "ECS_SAFE_AUDIT_LOG",
    "ECS_SAFE_CLUSTER",
    "ECS_SAFE_CONCURRENCY",
    "ECS_SAFE_OUTPUT",
    "ECS_SAFE_QUEUE_URL",
    "COLUMNS",
)


def ec2_id_of(env: LocalEcs, arn: str) -> str:
    result = CliRunner().invoke(
        app,
        ["describe", "--endpoint-url", env.endpoint_url, "--region", env.region_name,
         "--cluster", CLUSTER, "-o", "json", arn],
    )  # fmt: skip
    return str(json.loads(result.stdout)["container_instances"][0]["ec2_instance_id"])


def test_each_outcome_is_a_json_line_then_the_summary(
    ecs_env: LocalEcs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ecs_env.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ecs_env.secret_access_key)
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    url = ecs_env.events.create_queue("cli-watch")
    ecs_env.interrupt_spot(ec2_id_of(ecs_env, arn), drain=False)
    ecs_env.events.publish({"Event": "autoscaling:TEST_NOTIFICATION", "Service": "x"})
    audit = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(
        app,
        ["watch", "--queue", url, "--endpoint-url", ecs_env.endpoint_url, "--region",
         ecs_env.region_name, "--cluster", CLUSTER, "--max-events", "2", "--wait-seconds", "1",
         "--audit-log", str(audit), "-o", "json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    events, summary = lines[:-1], lines[-1]
    assert sorted((e["status"], e["kind"], e["action"]) for e in events) == [
        ("handled", "spot", "deregistered"),
        ("ignored", "unknown", "none"),
    ]
    assert all(e["type"] == "event" and e["deleted"] for e in events)
    assert (summary["type"], summary["handled"], summary["ignored"]) == ("summary", 1, 1)
    assert summary["stopped_by"] == "max_events"
    kinds = [r["kind"] for r in AuditLog.read(audit)]
    assert kinds.count(EVENT_STARTED) == kinds.count(EVENT_DONE) == 1


@pytest.mark.skipif(not ECS_SAFE.exists(), reason="the ecs-safe console script is not installed")
def test_sigterm_hands_the_event_in_flight_back_and_exits_cleanly(
    ecs_env: LocalEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ecs_env.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ecs_env.secret_access_key)
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    ecs_env.start_standalone_task(CLUSTER, arn)  # the Spot drain waits for it
    url = ecs_env.events.create_queue("cli-sigterm")
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env |= {
        "AWS_ACCESS_KEY_ID": ecs_env.access_key_id,
        "AWS_SECRET_ACCESS_KEY": ecs_env.secret_access_key,
    }
    ecs_env.interrupt_spot(ec2_id_of(ecs_env, arn), drain=False)
    with subprocess.Popen(
        [str(ECS_SAFE), "watch", "--queue", url, "--endpoint-url", ecs_env.endpoint_url,
         "--region", ecs_env.region_name, "--cluster", CLUSTER, "--grace-period", "0",
         "--wait-seconds", "1", "-o", "json", "-v", "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:  # fmt: skip
        try:
            assert process.stderr is not None
            said: list[str] = []
            for line in process.stderr:
                said.append(line)
                if line.startswith("{") and json.loads(line)["event"] == "ecs_safe.drain.started":
                    break
            else:
                pytest.fail("".join(said))
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    *events, summary = [json.loads(line) for line in stdout.splitlines()]
    assert [e["status"] for e in events] == ["handed_back"]
    assert (summary["handed_back"], summary["stopped_by"]) == (1, "SIGTERM")
