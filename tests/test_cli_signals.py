"""SIGINT and SIGTERM to ``ecs-safe drain`` mid-wait: the report and the audit log (issue 13.6).

The console script runs in a subprocess against the test session's `LocalEcs`, draining two
instances whose tasks never leave (so both are DRAINING and polled when the signal comes), one
idle instance before them and one after. Every wait is on an event: the drain's own progress
log lines say when both instances are being polled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ecs_safe import AuditLog
from ecs_safe.audit import unfinished
from ecs_safe.local import LocalEcs

ECS_SAFE = Path(sys.executable).with_name("ecs-safe")
CLUSTER = "signals"
# Credentials and settings of the developer's own AWS set-up must not reach the subprocess.
_FOREIGN_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_DEFAULT_REGION",
    "ECS_SAFE_AUDIT_LOG",
    "ECS_SAFE_CLUSTER",
    "ECS_SAFE_DRY_RUN",
    "ECS_SAFE_CONCURRENCY",
    "ECS_SAFE_TIMEOUT",
    "ECS_SAFE_OUTPUT",
    "ECS_SAFE_LOG_FORMAT",
    "COLUMNS",
)
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _short(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


@pytest.mark.skipif(not ECS_SAFE.exists(), reason="the ecs-safe console script is not installed")
@pytest.mark.parametrize("output", ["json", "text"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_mid_wait_closes_the_audit_run_and_names_every_draining_instance(
    ecs_env: LocalEcs, tmp_path: Path, sig: signal.Signals, output: str
) -> None:
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    first, busy_a, busy_b, last = ecs_env.register_instances(CLUSTER, count=4)
    for busy in (busy_a, busy_b):
        ecs_env.start_service_task(CLUSTER, busy, "web")
    audit = tmp_path / "audit.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env |= {
        "AWS_ACCESS_KEY_ID": ecs_env.access_key_id,
        "AWS_SECRET_ACCESS_KEY": ecs_env.secret_access_key,
    }
    with subprocess.Popen(
        [
            str(ECS_SAFE), "drain", "--endpoint-url", ecs_env.endpoint_url, "--region",
            ecs_env.region_name, "--cluster", CLUSTER,
            "--poll-interval", "0.1", "--concurrency", "2", "--audit-log", str(audit),
            "-o", output, "-v", "--log-format", "json", first, busy_a, busy_b, last,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:  # fmt: skip
        try:
            assert process.stderr is not None
            polled: set[str] = set()
            said: list[str] = []
            for line in process.stderr:
                said.append(line)
                event = json.loads(line) if line.startswith("{") else {"event": line}
                if event["event"] == "ecs_safe.drain.progress":
                    polled.add(event.get("container_instance_arn", ""))
                if {busy_a, busy_b} <= polled:
                    break
            assert {busy_a, busy_b} <= polled, "".join(said)
            process.send_signal(sig)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:  # a failed wait must not leave the drain running
                process.kill()
    assert process.returncode == CODES[sig], stderr

    # The report: the first deregistered, both busy ones named as left DRAINING, the last
    # never started.
    if output == "json":
        document = json.loads(stdout)
        assert document["exit_code"] == CODES[sig]
        done, cut_a, cut_b, never = document["outcomes"]
        assert done["status"] == "deregistered"
        for cut, arn in ((cut_a, busy_a), (cut_b, busy_b)):
            assert cut["container_instance"] == arn
            assert cut["instance"]["status"] == "DRAINING"
            assert "left DRAINING" in cut["error"]["message"]
            assert sig.name in cut["error"]["message"]
        assert never["error"]["message"].startswith("not started")
    else:
        lines = stdout.splitlines()
        for arn in (busy_a, busy_b):
            assert any(_short(arn) in ln and "left DRAINING" in ln for ln in lines), stdout
        assert any(_short(last) in ln and "not started" in ln for ln in lines), stdout
    assert ecs_env.calls("DeregisterContainerInstance") == 1

    # The audit run is closed: its last record is run_finished, and no call is unaccounted for.
    records = AuditLog.read(audit)
    assert records[0]["kind"] == "run_started"
    assert records[-1]["kind"] == "run_finished"
    assert {r["run_id"] for r in records} == {records[0]["run_id"]}
    assert unfinished(records) == []
    drained = [
        r["params"]["containerInstances"]
        for r in records
        if r["kind"] == "intent" and r["operation"] == "UpdateContainerInstancesState"
    ]
    assert sorted(ref for refs in drained for ref in refs) == sorted([first, busy_a, busy_b])
