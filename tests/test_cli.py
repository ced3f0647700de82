"""The ``ecs-safe`` CLI, against a real local ECS endpoint (LocalEcs) over HTTP.

Most tests go through typer's `CliRunner`; the ``Subprocess`` ones run the installed console
script, which is what users run (entry point, exit status, pipes, a terminal).
"""

from __future__ import annotations

import http.server
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from drain_support import ecs_backend
from typer.testing import CliRunner, Result

from ecs_safe.cli import JSON_SCHEMA_VERSION, app
from ecs_safe.local import LocalEcs

CLUSTER = "c1"
ECS_SAFE = Path(sys.executable).with_name("ecs-safe")
MUTATING = ("DeregisterContainerInstance", "UpdateContainerInstancesState", "StopTask")

# The documented keys of the --output json documents (ecs_safe.cli's module docs).
BATCH_KEYS = {
    "schema_version",
    "command",
    "cluster",
    "dry_run",
    "exit_code",
    "error",
    "summary",
    "outcomes",
    "resolution",
    "deregister",
}
SUMMARY_KEYS = {
    "total",
    "deregistered",
    "would_deregister",
    "drained",
    "would_drain",
    "refused",
    "failed",
    "timed_out",
}
OUTCOME_KEYS = {
    "container_instance",
    "status",
    "exit_code",
    "instance",
    "forced",
    "request_id",
    "violations",
    "tasks",
    "error",
    "input",
    "selected_by",
    "container_instance_id",
    "ec2_instance_id",
}
INSTANCE_KEYS = {
    "container_instance_arn",
    "ec2_instance_id",
    "status",
    "agent_connected",
    "running_tasks_count",
    "pending_tasks_count",
}
TASK_KEYS = {"task_arn", "kind", "last_status", "desired_status", "group", "started_by"}
DESCRIBE_KEYS = {
    "schema_version",
    "command",
    "cluster",
    "exit_code",
    "error",
    "container_instances",
    "resolution",
}
ERROR_KEYS = {"type", "code", "message"}

# Variables that would make a test depend on the machine it runs on.
_FOREIGN_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_DEFAULT_REGION",
    "ECS_SAFE_CLUSTER",
    "ECS_SAFE_DRY_RUN",
    "ECS_SAFE_CONCURRENCY",
    "ECS_SAFE_TIMEOUT",
    "ECS_SAFE_OUTPUT",
    "ECS_SAFE_LOG_FORMAT",
    "COLUMNS",
)


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@dataclass
class Seeded:
    """A cluster with two idle instances, a busy one and one with a standalone task."""

    local: LocalEcs
    idle: list[str]
    busy: str
    busy_tasks: list[str]
    mixed: str
    mixed_service_task: str

    @property
    def url(self) -> str:
        return self.local.endpoint_url

    def mutating_calls(self) -> int:
        return sum(self.local.calls(op) for op in MUTATING)

    def stop_later(self, tasks: list[str], delay: float) -> threading.Timer:
        """Stop tasks after ``delay`` seconds, as the ECS scheduler would during a drain."""

        def stop() -> None:
            for task in tasks:
                self.local.stop_task(CLUSTER, task)

        timer = threading.Timer(delay, stop)
        timer.start()
        return timer


@pytest.fixture
def seeded(ecs_env: LocalEcs) -> Seeded:
    ecs_env.create_cluster(CLUSTER)
    ecs_env.create_service(CLUSTER, "web")
    idle_a, idle_b, busy, mixed = ecs_env.register_instances(CLUSTER, count=4)
    busy_tasks = ecs_env.start_service_task(CLUSTER, busy, "web", count=2)
    [mixed_service_task] = ecs_env.start_service_task(CLUSTER, mixed, "web")
    ecs_env.start_standalone_task(CLUSTER, mixed, family="nightly")
    ecs_env.reset_calls()
    return Seeded(ecs_env, [idle_a, idle_b], busy, busy_tasks, mixed, mixed_service_task)


def short(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def invoke(seeded: Seeded, *args: str) -> Result:
    """Run the CLI in-process against the seeded endpoint (unless given) and cluster."""
    endpoint = [] if "--endpoint-url" in args else ["--endpoint-url", seeded.url]
    return CliRunner().invoke(app, [*args, *endpoint, "--cluster", CLUSTER], catch_exceptions=False)


def as_json(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def assert_one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    return lines[0]


def statuses(document: dict[str, Any]) -> list[str]:
    return [o["status"] for o in document["outcomes"]]


# --------------------------------------------------------------------------- help


def test_help_lists_the_commands_and_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("deregister", "drain", "describe", "demo"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout
    for code in range(6):
        assert re.search(rf"^\s*{code}\s+\S", result.stdout, re.MULTILINE), code


@pytest.mark.parametrize("command", ["deregister", "drain", "describe", "demo"])
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "--log-format" in result.stdout
    if command != "demo":
        for option in ("--cluster", "--region", "--endpoint-url", "--profile", "--output"):
            assert option in result.stdout


def test_no_arguments_prints_the_help_and_exits_2() -> None:
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "deregister" in result.output


@pytest.mark.parametrize("command", [[], ["deregister"], ["drain"], ["describe"], ["demo"]])
def test_help_has_no_type_labels_and_no_rest(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for label in ("<bool>", "<int>", "<str>", "<float>", "<list", "<int range>", "::", "``"):
        assert label not in result.stdout, label


def test_version() -> None:
    from ecs_safe import __version__  # noqa: PLC0415

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"ecs-safe {__version__}\n"


def test_python_m_ecs_safe_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ecs_safe", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "deregister" in done.stdout


def test_a_bad_choice_lists_the_valid_values() -> None:
    result = CliRunner().invoke(app, ["drain", "--standalone-tasks", "kill", "abc"])
    assert result.exit_code == 2
    line = assert_one_error_line(result.stderr)
    for value in ("refuse", "wait", "stop"):
        assert value in line


# --------------------------------------------------------------------------- describe


def test_describe_prints_a_table(seeded: Seeded) -> None:
    result = invoke(seeded, "describe", "--tasks", *map(short, [*seeded.idle, seeded.mixed]))
    assert result.exit_code == 0, result.output
    for ref in [*seeded.idle, seeded.mixed]:
        assert short(ref) in result.stdout
    assert "ACTIVE" in result.stdout
    assert "1 standalone (nightly)" in result.stdout
    assert seeded.mutating_calls() == 0


def test_describe_json_has_the_documented_keys(seeded: Seeded) -> None:
    result = invoke(seeded, "describe", "--tasks", "-o", "json", seeded.busy, seeded.idle[0])
    assert result.exit_code == 0, result.output
    document = as_json(result)
    assert set(document) == DESCRIBE_KEYS
    assert document["schema_version"] == 1
    assert document["error"] is None
    busy, idle = document["container_instances"]
    assert set(busy) == INSTANCE_KEYS | {"registered_at", "tasks"}
    assert busy["container_instance_arn"] == seeded.busy
    assert busy["running_tasks_count"] == 2
    assert [set(t) for t in busy["tasks"]] == [TASK_KEYS, TASK_KEYS]
    assert {t["kind"] for t in busy["tasks"]} == {"service"}
    assert idle["tasks"] == []


def test_describe_of_a_missing_instance_exits_1(seeded: Seeded) -> None:
    result = invoke(seeded, "describe", "0123456789abcdef0123456789abcdef")
    assert result.exit_code == 1
    line = assert_one_error_line(result.stderr)
    assert "0123456789abcdef0123456789abcdef" in line
    assert result.stdout == ""


# --------------------------------------------------------------------------- deregister


def test_deregister_idle_instances_exits_0(seeded: Seeded) -> None:
    result = invoke(seeded, "deregister", "-o", "json", *seeded.idle)
    assert result.exit_code == 0, result.output
    document = as_json(result)
    assert set(document) == BATCH_KEYS
    assert set(document["summary"]) == SUMMARY_KEYS
    assert document["summary"]["deregistered"] == 2
    assert document["exit_code"] == 0
    for outcome, ref in zip(document["outcomes"], seeded.idle, strict=True):
        assert set(outcome) == OUTCOME_KEYS
        assert outcome["container_instance"] == ref
        assert outcome["status"] == "deregistered"
        assert set(outcome["instance"]) == INSTANCE_KEYS
        assert outcome["request_id"]
        assert outcome["forced"] is False
    assert seeded.local.calls("DeregisterContainerInstance") == 2


def test_deregister_text_output_is_a_table_and_a_summary(seeded: Seeded) -> None:
    result = invoke(seeded, "deregister", short(seeded.idle[0]))
    assert result.exit_code == 0
    assert short(seeded.idle[0]) in result.stdout
    assert "deregistered" in result.stdout
    assert "1 deregistered (exit 0: success)" in result.stdout


def test_a_refusal_exits_3_before_any_mutating_call(seeded: Seeded) -> None:
    result = invoke(seeded, "deregister", "-o", "json", seeded.busy)
    assert result.exit_code == 3
    [outcome] = as_json(result)["outcomes"]
    assert outcome["status"] == "refused"
    assert outcome["exit_code"] == 3
    assert [v["rule"] for v in outcome["violations"]] == ["no-running-tasks-unless-forced"]
    assert {t["task_arn"] for t in outcome["tasks"]} == set(seeded.busy_tasks)
    assert outcome["error"]["type"] == "PolicyViolationError"
    assert seeded.mutating_calls() == 0
    # The report already shows the refusal; at the default verbosity it is not logged again.
    assert result.stderr == ""


def test_force_never_loses_a_standalone_task_unless_allowed(seeded: Seeded) -> None:
    refused = invoke(seeded, "deregister", "--force", "-o", "json", seeded.mixed)
    assert refused.exit_code == 3
    [outcome] = as_json(refused)["outcomes"]
    assert [v["rule"] for v in outcome["violations"]] == ["protect-standalone-tasks"]
    assert seeded.mutating_calls() == 0

    allowed = invoke(
        seeded, "deregister", "--force", "--allow-standalone-loss", "-o", "json", seeded.mixed
    )
    assert allowed.exit_code == 0
    [outcome] = as_json(allowed)["outcomes"]
    assert outcome["status"] == "deregistered"
    assert outcome["forced"] is True


def test_a_mixed_batch_exits_5(seeded: Seeded) -> None:
    result = invoke(seeded, "deregister", "-o", "json", seeded.idle[0], seeded.busy)
    assert result.exit_code == 5
    document = as_json(result)
    assert statuses(document) == ["deregistered", "refused"]
    assert document["summary"] | {} == {
        "total": 2,
        "deregistered": 1,
        "would_deregister": 0,
        "drained": 0,
        "would_drain": 0,
        "refused": 1,
        "failed": 0,
        "timed_out": 0,
    }


def test_instances_that_all_fail_exit_1(seeded: Seeded) -> None:
    missing = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]
    result = invoke(seeded, "deregister", "-o", "json", *missing)
    assert result.exit_code == 1
    document = as_json(result)
    assert statuses(document) == ["failed", "failed"]
    assert {o["error"]["type"] for o in document["outcomes"]} == {"ContainerInstanceNotFoundError"}
    assert seeded.mutating_calls() == 0


def test_an_aws_error_exits_1(seeded: Seeded) -> None:
    seeded.local.inject_fault(
        "DeregisterContainerInstance",
        code="AccessDeniedException",
        message="User is not authorized",
    )
    result = invoke(seeded, "deregister", "-o", "json", seeded.idle[0])
    assert result.exit_code == 1
    [outcome] = as_json(result)["outcomes"]
    assert outcome["status"] == "failed"
    assert set(outcome["error"]) == ERROR_KEYS
    assert outcome["error"]["code"] == "AccessDeniedException"


def test_a_command_that_fails_as_a_whole_writes_a_json_error_document(seeded: Seeded) -> None:
    result = CliRunner().invoke(
        app,
        ["describe", "-o", "json", "--endpoint-url", seeded.url, "--cluster", "nope", "abc123"],
    )
    assert result.exit_code == 1
    document = as_json(result)
    assert set(document) == DESCRIBE_KEYS
    assert document["exit_code"] == 1
    assert document["error"]["type"] == "ClusterNotFoundException"
    assert document["container_instances"] == []
    assert_one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("command", "force"), [("deregister", False), ("deregister", True), ("drain", False)]
)
def test_dry_run_prints_the_plan_and_makes_no_mutating_call(
    seeded: Seeded, command: str, force: bool
) -> None:
    args = [command, "--dry-run", "-o", "json", *(["--force"] if force else [])]
    refs = [seeded.idle[0], seeded.busy, seeded.mixed]
    result = invoke(seeded, *args, *refs)
    document = as_json(result)
    assert document["dry_run"] is True
    expected = {
        ("deregister", False): ["would_deregister", "refused", "refused"],
        ("deregister", True): ["would_deregister", "would_deregister", "refused"],
        ("drain", False): ["would_deregister", "would_deregister", "refused"],
    }[command, force]
    assert statuses(document) == expected
    assert result.exit_code == 5
    # The plan names the tasks each instance holds.
    assert len(document["outcomes"][1]["tasks"]) == 2
    assert seeded.mutating_calls() == 0


def test_dry_run_text_says_nothing_changed(seeded: Seeded) -> None:
    result = invoke(seeded, "drain", "--dry-run", seeded.busy)
    assert result.exit_code == 0
    assert "DRY RUN" in result.stdout
    assert "would set DRAINING, wait for 2 task(s)" in result.stdout


def test_a_plan_for_an_instance_already_draining_says_so(seeded: Seeded) -> None:
    left = invoke(seeded, "drain", "--timeout", "0.3", "--poll-interval", "0.1", seeded.busy)
    assert left.exit_code == 4
    result = invoke(seeded, "drain", "--dry-run", seeded.busy)
    assert result.exit_code == 0, result.output
    assert "already DRAINING; would wait for 2 task(s)" in result.stdout
    assert "would set DRAINING" not in result.stdout


@pytest.mark.parametrize("force", [False, True])
def test_a_standalone_refusal_names_every_blocker(seeded: Seeded, force: bool) -> None:
    result = invoke(
        seeded, "deregister", "--dry-run", *(["--force"] if force else []), seeded.mixed
    )
    assert result.exit_code == 3
    out = " ".join(result.stdout.split())
    # Neither a plain drain nor --force gets past a standalone task: the hint says so.
    assert "drain it first (ecs-safe drain) or pass --force" not in out
    assert "--standalone-tasks stop" in out
    assert "--allow-standalone-loss" in out


class InactiveProxy:
    """An HTTP proxy before LocalEcs that answers as AWS does after a deregistration.

    moto forgets a deregistered instance (describe reports it MISSING); ECS keeps reporting it
    INACTIVE for a while. For the IDs in `gone` the proxy turns the one into the other.
    """

    def __init__(self, upstream: str) -> None:
        self.gone: set[str] = set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                request = urllib.request.Request(upstream + self.path, body, headers)
                try:
                    with urllib.request.urlopen(request) as answer:
                        status, data = answer.status, answer.read()
                        answer_headers = list(answer.headers.items())
                except urllib.error.HTTPError as error:
                    status, data = error.code, error.read()
                    answer_headers = list(error.headers.items())
                if self.headers.get("X-Amz-Target", "").endswith("DescribeContainerInstances"):
                    data = proxy.rewrite(data)
                self.send_response(status)
                for key, value in answer_headers:
                    if key.lower() not in {"content-length", "transfer-encoding", "connection"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rewrite(self, data: bytes) -> bytes:
        document = json.loads(data)
        kept = []
        for failure in document.get("failures", []):
            if failure.get("reason") == "MISSING" and short(failure["arn"]) in self.gone:
                instance = {"containerInstanceArn": failure["arn"], "status": "INACTIVE"}
                document.setdefault("containerInstances", []).append(
                    instance | {"runningTasksCount": 0, "pendingTasksCount": 0}
                )
            else:
                kept.append(failure)
        document["failures"] = kept
        return json.dumps(document).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inactive_proxy(seeded: Seeded) -> Iterator[InactiveProxy]:
    proxy = InactiveProxy(seeded.url)
    yield proxy
    proxy.close()


def test_deregistering_an_instance_again_is_already_deregistered(
    seeded: Seeded, inactive_proxy: InactiveProxy
) -> None:
    [ref] = seeded.idle[:1]
    via_proxy = ["--endpoint-url", inactive_proxy.url]
    assert invoke(seeded, "deregister", *via_proxy, ref).exit_code == 0
    inactive_proxy.gone.add(short(ref))

    again = invoke(seeded, "deregister", *via_proxy, "-o", "json", ref)
    assert again.exit_code == 0, again.output
    [outcome] = as_json(again)["outcomes"]
    assert outcome["status"] == "deregistered"
    assert outcome["instance"]["status"] == "INACTIVE"
    assert outcome["request_id"] is None
    assert seeded.local.calls("DeregisterContainerInstance") == 1  # nothing sent again

    text = invoke(seeded, "deregister", *via_proxy, ref)
    assert text.exit_code == 0
    assert "already deregistered" in text.stdout

    never = invoke(seeded, "deregister", *via_proxy, "0123456789abcdef0123456789abcdef")
    assert never.exit_code == 1


def test_describe_shows_the_found_and_names_the_missing(seeded: Seeded) -> None:
    missing = "0123456789abcdef0123456789abcdef"
    result = invoke(seeded, "describe", seeded.busy, missing)
    assert result.exit_code == 5
    assert short(seeded.busy) in result.stdout
    assert missing in assert_one_error_line(result.stderr)

    document = as_json(invoke(seeded, "describe", "-o", "json", seeded.busy, missing))
    assert document["exit_code"] == 5
    [found] = document["container_instances"]
    assert found["container_instance_arn"] == seeded.busy
    assert missing in document["error"]["message"]


# --------------------------------------------------------------------------- drain


def test_drain_waits_for_the_tasks_then_deregisters(seeded: Seeded) -> None:
    timer = seeded.stop_later(seeded.busy_tasks, delay=0.4)
    result = invoke(seeded, "drain", "--poll-interval", "0.1", "-o", "json", seeded.busy)
    timer.join()
    assert result.exit_code == 0, result.output
    [outcome] = as_json(result)["outcomes"]
    assert outcome["status"] == "deregistered"
    assert outcome["forced"] is False
    assert seeded.local.calls("UpdateContainerInstancesState") == 1


def test_drain_with_task_events_is_woken_by_the_stop_events(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--task-events: the stops' events end the wait; an hour's --poll-interval never does."""
    local = seeded.local
    queue = local.events.create_queue("cli-task-events", task_events=True)
    backend = ecs_backend(local)
    describe = backend.describe_container_instances

    def stop_and_announce() -> None:
        for task in seeded.busy_tasks:
            local.stop_task(CLUSTER, task)
            local.events.publish(
                {
                    "detail-type": "ECS Task State Change",
                    "source": "aws.ecs",
                    "detail": {
                        "taskArn": task,
                        "containerInstanceArn": seeded.busy,
                        "lastStatus": "STOPPED",
                        "desiredStatus": "STOPPED",
                    },
                }
            )

    stopper = threading.Thread(target=stop_and_announce)
    started = threading.Event()

    def first_look_then_stop(cluster: str, refs: list[str]) -> Any:
        # The drain's first look is answered (both tasks running) before the tasks stop, so
        # only a woken round can see them gone.
        answer = describe(cluster, refs)
        instances, _failures = answer
        if not started.is_set() and any(i.status == "DRAINING" for i in instances):
            started.set()
            stopper.start()
        return answer

    monkeypatch.setattr(backend, "describe_container_instances", first_look_then_stop)
    result = invoke(
        seeded,
        "drain",
        "--task-events",
        queue,
        "--poll-interval",
        "3600",
        "--timeout",
        "60",
        "-o",
        "json",
        seeded.busy,
    )
    stopper.join()
    assert result.exit_code == 0, result.output
    assert statuses(as_json(result)) == ["deregistered"]
    assert "sqs:DeleteMessageBatch" in local.service_call_log("sqs")


def test_drain_refuses_a_task_events_value_that_is_no_queue_url(seeded: Seeded) -> None:
    result = invoke(seeded, "drain", "--task-events", "my-queue", seeded.busy)
    assert result.exit_code == 2
    assert "task_events_queue" in result.stderr
    assert seeded.mutating_calls() == 0


def test_drain_timeout_exits_4_and_leaves_the_instance_draining(seeded: Seeded) -> None:
    result = invoke(
        seeded, "drain", "--timeout", "0.3", "--poll-interval", "0.1", "-o", "json", seeded.busy
    )
    assert result.exit_code == 4
    [outcome] = as_json(result)["outcomes"]
    assert outcome["status"] == "timed_out"
    assert outcome["error"]["type"] == "DrainTimeoutError"
    assert {t["task_arn"] for t in outcome["tasks"]} == set(seeded.busy_tasks)
    described = as_json(invoke(seeded, "describe", "-o", "json", seeded.busy))
    assert described["container_instances"][0]["status"] == "DRAINING"
    assert seeded.local.calls("DeregisterContainerInstance") == 0


def test_drain_timeout_can_reactivate(seeded: Seeded) -> None:
    result = invoke(
        seeded,
        "drain",
        "--timeout",
        "0.3",
        "--poll-interval",
        "0.1",
        "--on-timeout",
        "reactivate",
        seeded.busy,
    )
    assert result.exit_code == 4
    assert "drain timed out" in result.stdout
    described = as_json(invoke(seeded, "describe", "-o", "json", seeded.busy))
    assert described["container_instances"][0]["status"] == "ACTIVE"


def test_drain_refuses_standalone_tasks_up_front(seeded: Seeded) -> None:
    result = invoke(seeded, "drain", "-o", "json", seeded.mixed)
    assert result.exit_code == 3
    [outcome] = as_json(result)["outcomes"]
    assert [v["rule"] for v in outcome["violations"]] == ["standalone-tasks"]
    assert seeded.mutating_calls() == 0


def test_drain_can_stop_standalone_tasks(seeded: Seeded) -> None:
    timer = seeded.stop_later([seeded.mixed_service_task], delay=0.3)
    result = invoke(
        seeded,
        "drain",
        "--standalone-tasks",
        "stop",
        "--poll-interval",
        "0.1",
        "-o",
        "json",
        seeded.mixed,
    )
    timer.join()
    assert result.exit_code == 0, result.output
    assert statuses(as_json(result)) == ["deregistered"]
    assert seeded.local.calls("StopTask") == 1


def test_drain_of_a_mixed_batch_exits_5(seeded: Seeded) -> None:
    result = invoke(seeded, "drain", "--poll-interval", "0.1", "-o", "json", *seeded.idle)
    assert result.exit_code == 0
    result = invoke(seeded, "drain", "-o", "json", seeded.mixed, "0123456789abcdef0123456789abcdef")
    assert result.exit_code == 5
    assert statuses(as_json(result)) == ["refused", "failed"]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["deregister", "bad id!"], "not a container instance ID"),
        (["deregister", "i-0123456789abcdef"], "EC2 instance ID"),  # mistyped: 16 hex digits
        (["deregister", "abc", "abc"], "given twice"),
        (
            ["deregister", "arn:aws:ecs:us-east-1:123456789012:container-instance/other/abc"],
            "other",
        ),
        (["deregister", "-o", "yaml", "abc"], "'--output'"),
        (["deregister", "--concurrency", "0", "abc"], "'--concurrency'"),
        (["drain", "--timeout", "0", "abc"], "--timeout"),
        (["drain", "--on-timeout", "explode", "abc"], "'--on-timeout'"),
        (["describe", "--endpoint-url", "ftp://local", "abc"], "endpoint_url"),
        (["describe"], "Missing argument"),
        (["undeploy", "abc"], "No such command"),
    ],
)
def test_bad_input_exits_2_with_one_line(seeded: Seeded, args: list[str], needle: str) -> None:
    result = invoke(seeded, *args)
    assert result.exit_code == 2, result.output
    assert needle in assert_one_error_line(result.stderr)
    assert result.stdout == ""
    assert seeded.local.call_log == []


def test_bad_input_with_json_output_writes_an_error_document(seeded: Seeded) -> None:
    result = invoke(seeded, "deregister", "-o", "json", "bad id!")
    assert result.exit_code == 2
    document = as_json(result)
    assert set(document) == BATCH_KEYS
    assert document["error"]["type"] == "InvalidInputError"
    assert document["outcomes"] == []
    assert_one_error_line(result.stderr)


def test_no_region_is_bad_usage(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    result = invoke(seeded, "describe", "abc")
    assert result.exit_code == 2
    assert "Region" in assert_one_error_line(result.stderr)


def test_errors_name_the_cli_flags(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    other = "arn:aws:ecs:us-east-1:123456789012:container-instance/other/abc"
    line = assert_one_error_line(invoke(seeded, "deregister", other).stderr)
    assert "--cluster other" in line
    assert "cluster=" not in line

    monkeypatch.delenv("AWS_REGION")
    line = assert_one_error_line(invoke(seeded, "describe", "abc").stderr)
    assert "--region" in line
    assert "AWS_DEFAULT_REGION" in line
    assert "region_name" not in line


def test_a_bad_profile_is_bad_usage_and_sends_nothing(seeded: Seeded) -> None:
    result = invoke(seeded, "describe", "--profile", "no-such-profile", "abc")
    assert result.exit_code == 2
    line = assert_one_error_line(result.stderr)
    assert "'no-such-profile'" in line
    assert "--profile" in line
    assert seeded.local.call_log == []


def test_a_missing_cluster_is_named(seeded: Seeded) -> None:
    result = CliRunner().invoke(
        app, ["describe", "--endpoint-url", seeded.url, "--cluster", "nope", "abc123"]
    )
    assert result.exit_code == 1
    assert "'nope'" in assert_one_error_line(result.stderr)


# --------------------------------------------------------------------------- env and logs


def test_options_come_from_the_environment(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_SAFE_CLUSTER", CLUSTER)
    monkeypatch.setenv("ECS_SAFE_OUTPUT", "json")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", seeded.url)
    result = CliRunner().invoke(app, ["describe", seeded.idle[0]])
    assert result.exit_code == 0, result.output
    assert as_json(result)["cluster"] == CLUSTER


def test_json_logs_on_stderr(seeded: Seeded) -> None:
    result = invoke(seeded, "deregister", "-v", "--log-format", "json", seeded.idle[0])
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stderr.splitlines()]
    succeeded = [e for e in events if e["event"] == "ecs_safe.deregister.succeeded"]
    assert len(succeeded) == 1
    assert succeeded[0]["level"] == "info"
    assert "testing" not in result.stderr  # no credential ever


# --------------------------------------------------------------------------- subprocesses


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    return env


def run_entry_point(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ECS_SAFE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(),
        check=False,
    )


@pytest.fixture
def entry_point() -> Path:
    if not ECS_SAFE.exists():
        pytest.skip("the ecs-safe console script is not installed in this environment")
    return ECS_SAFE


@pytest.mark.usefixtures("entry_point")
def test_entry_point_help() -> None:
    result = run_entry_point("--help")
    assert result.returncode == 0
    assert "deregister" in result.stdout
    assert "drain" in result.stdout
    assert "Exit codes" in result.stdout


@pytest.mark.usefixtures("entry_point")
def test_entry_point_exit_codes_and_json(seeded: Seeded) -> None:
    common = ["--endpoint-url", seeded.url, "--cluster", CLUSTER]
    result = run_entry_point("deregister", *common, "-o", "json", seeded.idle[0], seeded.busy)
    assert result.returncode == 5, result.stderr
    assert statuses(json.loads(result.stdout)) == ["deregistered", "refused"]

    result = run_entry_point("deregister", *common, "--concurrency", "0", "abc")
    assert result.returncode == 2
    assert "'--concurrency'" in assert_one_error_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.usefixtures("entry_point")
def test_no_progress_bar_when_piped(seeded: Seeded) -> None:
    timer = seeded.stop_later(seeded.busy_tasks, delay=0.5)
    result = run_entry_point(
        "drain", "--endpoint-url", seeded.url, "--cluster", CLUSTER, "--poll-interval", "0.1",
        seeded.busy, seeded.idle[0],
    )  # fmt: skip
    timer.join()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no bar, no control characters, no log noise
    assert "\x1b" not in result.stdout
    assert "2 deregistered" in result.stdout


def _read_all(fd: int, sink: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            return
        if not chunk:
            return
        sink.append(chunk)


@pytest.mark.usefixtures("entry_point")
def test_progress_bar_on_a_terminal(seeded: Seeded) -> None:
    timer = seeded.stop_later(seeded.busy_tasks, delay=0.8)
    primary, secondary = pty.openpty()
    received: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(primary, received))
    reader.start()
    try:
        process = subprocess.run(
            [
                str(ECS_SAFE), "drain", "--endpoint-url", seeded.url, "--cluster", CLUSTER,
                "--poll-interval", "0.1", seeded.busy,
            ],
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            timeout=60,
            env={**subprocess_env(), "TERM": "xterm"},
            check=False,
        )  # fmt: skip
    finally:
        os.close(secondary)
        timer.join()
        reader.join(timeout=10)
        os.close(primary)
    terminal = b"".join(received).decode(errors="replace")
    assert process.returncode == 0, terminal
    assert f"draining {short(seeded.busy)}" in terminal
    # The bar is for the terminal only: stdout still gets the plain report.
    assert "1 deregistered" in process.stdout


@pytest.mark.usefixtures("entry_point")
def test_demo_runs_the_whole_story() -> None:
    result = run_entry_point("demo", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in (
        "ecs-safe demo",
        "no-running-tasks-unless-forced",
        "protect-standalone-tasks",
        "Mutating calls sent to ECS so far: 0",
        "DRY RUN",
        "2 would deregister, 2 refused (exit 5: mixed batch)",
        "LocalEcs's service scheduler does what ECS's does",
        "The service scheduler's moves meanwhile",
        "standalone-tasks",
        "Refused up front: the instance was never set DRAINING",
        "2 deregistered (exit 0: success)",
        "6. A wave that would break a budget",
        "Refused before anything changed: 0 task moves.",
        "7. A rolling drain waits for the service between hosts",
        "done in",
    ):
        assert line in out, line
    assert out.count("1 deregistered (exit 0: success)") == 2
    # The budget refusal shows the service's numbers (the table may wrap them).
    flat = " ".join(out.split())
    assert "service api: desired 3, running 3, after the wave 1 (2 on these instances)" in flat
    # The rolling drain: api host 2 lost its task only after api host 1's was replaced.
    moves = [line.strip() for line in out.split("7. A rolling drain")[1].splitlines()]
    moves = [m for m in moves if m.startswith(("started a 'api'", "stopped a 'api'"))]
    assert [m.split(" task on ")[0] for m in moves] == ["started a 'api'", "stopped a 'api'"] * 2
    assert "(api host 1)" in moves[1]
    assert "(api host 2)" in moves[3]
    # The scale-in: held in Terminating:Wait, drained, deregistered, continued, terminated.
    scale_in = " ".join(out.split("8. A scale-in, handled end to end")[1].split())
    for said in (
        ": Terminating:Wait",
        "deregistered (verified) in cluster demo; CompleteLifecycleAction CONTINUE",
        "stopped a 'shop' task on",
        "gone from the group, terminated only now.",
    ):
        assert said in scale_in, said
    assert "Traceback" not in result.stderr


def run_on_terminal(
    args: list[str], *, columns: int = 80, stdout_too: bool = False
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the console script with stderr (and optionally stdout) on a pseudo-terminal."""
    primary, secondary = pty.openpty()
    received: list[bytes] = []
    reader = threading.Thread(target=_read_all, args=(primary, received))
    reader.start()
    try:
        process = subprocess.run(
            [str(ECS_SAFE), *args],
            stdout=secondary if stdout_too else subprocess.PIPE,
            stderr=secondary,
            text=True,
            timeout=120,
            env={**subprocess_env(), "TERM": "xterm", "COLUMNS": str(columns), "LINES": "40"},
            check=False,
        )
    finally:
        os.close(secondary)
        reader.join(timeout=10)
        os.close(primary)
    return process, b"".join(received).decode(errors="replace")


@pytest.mark.usefixtures("entry_point")
def test_progress_survives_more_instances_than_concurrency(seeded: Seeded) -> None:
    # With --concurrency 1 every instance after the first gets a row once an earlier row has
    # been removed: the display used to index rich's task list by task ID and fail there.
    timer = seeded.stop_later(seeded.busy_tasks, delay=0.8)
    process, terminal = run_on_terminal(
        [
            "drain", "--endpoint-url", seeded.url, "--cluster", CLUSTER, "--poll-interval",
            "0.1", "--concurrency", "1", *seeded.idle, seeded.busy,
        ]
    )  # fmt: skip
    timer.join()
    assert process.returncode == 0, terminal
    assert "callback_failed" not in terminal
    assert "list index out of range" not in terminal
    assert f"draining {short(seeded.busy)}" in terminal
    assert "3 deregistered" in process.stdout


@pytest.mark.usefixtures("entry_point")
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_drain_reports_every_instance(
    seeded: Seeded, sig: signal.Signals, code: int
) -> None:
    first, later = seeded.idle
    process = subprocess.Popen(
        [
            str(ECS_SAFE), "drain", "--endpoint-url", seeded.url, "--cluster", CLUSTER,
            "--poll-interval", "0.1", "--concurrency", "1", "-o", "json", "-v",
            "--log-format", "json", first, seeded.busy, later,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )  # fmt: skip
    assert process.stderr is not None
    try:
        # Wait for the event that says the busy instance is DRAINING and being polled.
        for line in process.stderr:
            event = json.loads(line)
            if (
                event["event"] == "ecs_safe.drain.progress"
                and event.get("container_instance_arn") == seeded.busy
            ):
                break
        process.send_signal(sig)
        stdout, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == code
    document = json.loads(stdout)
    assert document["exit_code"] == code
    done, cut, never = document["outcomes"]
    assert done["status"] == "deregistered"
    assert cut["status"] == "failed"
    assert cut["instance"]["status"] == "DRAINING"
    assert "left DRAINING" in cut["error"]["message"]
    assert sig.name in cut["error"]["message"]
    assert never["error"]["message"].startswith("not started")
    assert seeded.local.calls("DeregisterContainerInstance") == 1


def ids_of(seeded: Seeded) -> list[str]:
    """Every ID a report on the seeded instances may show: instances, EC2 instances, tasks."""
    refs = [*seeded.idle, seeded.busy, seeded.mixed]
    described = as_json(invoke(seeded, "describe", "--tasks", "-o", "json", *refs))
    ids = []
    for instance in described["container_instances"]:
        ids += [short(instance["container_instance_arn"]), instance["ec2_instance_id"]]
        ids += [short(task["task_arn"]) for task in instance["tasks"]]
    return ids


def assert_fits_and_whole(output: str, width: int, ids: list[str]) -> None:
    lines = output.splitlines()
    assert all(len(line.rstrip()) <= width for line in lines), output
    assert "…" not in output
    for found in ids:
        assert any(found in line for line in lines), found


@pytest.mark.parametrize("width", [80, 60])
@pytest.mark.parametrize(
    "args",
    [
        ["deregister", "--dry-run"],
        ["deregister", "--dry-run", "--force"],
        ["drain", "--dry-run"],
        ["describe", "--tasks"],
    ],
)
def test_narrow_terminals_never_cut_an_id(seeded: Seeded, width: int, args: list[str]) -> None:
    ids = ids_of(seeded)
    refs = [*seeded.idle, seeded.busy, seeded.mixed]
    result = CliRunner().invoke(
        app,
        [*args, "--endpoint-url", seeded.url, "--cluster", CLUSTER, *refs],
        env={"COLUMNS": str(width)},
    )
    assert result.exit_code in (0, 5), result.output
    shown = [i for i in ids if i in result.stdout]
    # Instance and EC2 IDs are always shown; task IDs appear in refusal messages.
    assert len(shown) >= 2 * len(refs)
    assert_fits_and_whole(result.stdout, width, shown)
    if args[0] != "describe":
        assert result.stdout.count("(exit 5: mixed batch)") == 1


@pytest.mark.usefixtures("entry_point")
def test_an_80_column_terminal_gets_whole_ids(seeded: Seeded) -> None:
    ids = ids_of(seeded)
    refs = [*seeded.idle, seeded.busy, seeded.mixed]
    process, terminal = run_on_terminal(
        ["deregister", "--dry-run", "--endpoint-url", seeded.url, "--cluster", CLUSTER, *refs],
        columns=80,
        stdout_too=True,
    )
    assert process.returncode == 5, terminal
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal).replace("\r", "\n")
    shown = [i for i in ids if i in plain]
    assert len(shown) >= 2 * len(refs)
    assert_fits_and_whole(plain, 80, shown)


# --------------------------------------------------------------------------- targets (issue 10)


def _ec2_of(seeded: Seeded, arn: str) -> str:
    document = as_json(invoke(seeded, "describe", "-o", "json", arn))
    return str(document["container_instances"][0]["ec2_instance_id"])


def test_list_shows_the_cluster_as_json_and_as_a_table(seeded: Seeded) -> None:
    result = invoke(seeded, "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    assert document["command"] == "list"
    assert document["schema_version"] == JSON_SCHEMA_VERSION
    arns = {i["container_instance_arn"] for i in document["container_instances"]}
    assert arns == {*seeded.idle, seeded.busy, seeded.mixed}
    first = document["container_instances"][0]
    assert {"ec2_instance_id", "instance_type", "ami_id", "availability_zone"} <= set(first)
    assert first["registered_at"]
    wide = CliRunner().invoke(
        app,
        ["list", "--endpoint-url", seeded.url, "--cluster", CLUSTER],
        env={"COLUMNS": "160"},
        catch_exceptions=False,
    )
    assert wide.exit_code == 0
    for arn in document["container_instances"]:
        assert short(arn["container_instance_arn"]) in wide.stdout  # IDs never cut
        assert arn["ec2_instance_id"] in wide.stdout
    narrow = CliRunner().invoke(
        app,
        ["list", "--endpoint-url", seeded.url, "--cluster", CLUSTER],
        env={"COLUMNS": "80"},
        catch_exceptions=False,
    )
    assert narrow.exit_code == 0
    assert all(short(a) in narrow.stdout for a in arns)


def test_list_by_status_and_a_bad_status(seeded: Seeded) -> None:
    document = as_json(invoke(seeded, "list", "-o", "json", "--status", "ACTIVE"))
    listed = {i["container_instance_arn"] for i in document["container_instances"]}
    assert listed == {*seeded.idle, seeded.busy, seeded.mixed}
    none = as_json(invoke(seeded, "list", "-o", "json", "--status", "DRAINING"))
    assert none["container_instances"] == []
    result = invoke(seeded, "list", "--status", "draining")
    assert result.exit_code == 2
    assert "status" in assert_one_error_line(result.stderr)


def test_an_ec2_id_works_as_a_positional_target(seeded: Seeded) -> None:
    ec2 = _ec2_of(seeded, seeded.idle[1])
    described = as_json(invoke(seeded, "describe", "-o", "json", ec2))
    assert [i["container_instance_arn"] for i in described["container_instances"]] == [
        seeded.idle[1]
    ]
    planned = invoke(seeded, "deregister", "--dry-run", "-o", "json", ec2)
    assert planned.exit_code == 0, planned.stderr
    [outcome] = as_json(planned)["outcomes"]
    assert outcome["status"] == "would_deregister"
    assert seeded.mutating_calls() == 0
