"""The audit log: its format, what each path records, its order, and a run killed midway.

The promise: every policy decision and every mutating call is in the log before the call that
made it returns, an ``intent`` is on disk before its request reaches ECS, and a run killed at
any moment leaves a log from which what it did can be reconstructed.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.ecs.models import EC2ContainerServiceBackend
from typer.testing import CliRunner

from ecs_safe import (
    AccessDeniedException,
    AuditLog,
    EcsSafeClient,
    EcsSafeError,
    InvalidInputError,
    PolicyViolationError,
    SyncEcsSafeClient,
)
from ecs_safe.audit import unfinished
from ecs_safe.cli import app
from ecs_safe.local import LocalEcs

CLUSTER = "audited"
DEREGISTER = "DeregisterContainerInstance"
UPDATE_STATE = "UpdateContainerInstancesState"
STOP_TASK = "StopTask"
MUTATING = (DEREGISTER, UPDATE_STATE, STOP_TASK, "PutAttributes", "DeleteAttributes")
CRASH_RUNNER = Path(__file__).with_name("audit_crash_run.py")

Record = dict[str, Any]


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
def env(ecs_env: LocalEcs) -> LocalEcs:
    ecs_env.create_cluster(CLUSTER)
    return ecs_env


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


def client(env: LocalEcs, audit_log: AuditLog | Path, **kwargs: Any) -> EcsSafeClient:
    return EcsSafeClient(**env.client_kwargs(), audit_log=audit_log, **kwargs)


def kinds(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(r["kind"]) for r in records]


def of(records: Sequence[Record], kind: str, **match: Any) -> list[Record]:
    return [
        r for r in records if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())
    ]


def short(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def intent_target(intent: Mapping[str, Any]) -> str:
    return short(str(intent["params"]["containerInstance"]))


def assert_well_formed(records: Sequence[Record]) -> None:
    """One run per run_id, seq 1..n in file order, ts in UTC, every intent paired once."""
    by_run: dict[str, list[int]] = {}
    for record in records:
        assert {"run_id", "seq", "ts", "kind"} <= record.keys(), record
        by_run.setdefault(record["run_id"], []).append(record["seq"])
        stamp = datetime.fromisoformat(record["ts"])
        assert stamp.utcoffset() == timedelta(0)
    for seqs in by_run.values():
        assert seqs == list(range(1, len(seqs) + 1))
    outcomes = {(r["run_id"], r["intent_seq"]): r for r in of(records, "outcome")}
    assert len(outcomes) == len(of(records, "outcome")), "one outcome per intent"
    intents = {(r["run_id"], r["seq"]): r for r in of(records, "intent")}
    for key, outcome in outcomes.items():
        assert key in intents, f"an outcome without its intent: {key}"
        assert intents[key]["seq"] < outcome["seq"]
        assert intents[key]["operation"] == outcome["operation"]


# --------------------------------------------------------------------------- AuditLog itself


def test_a_path_is_appended_one_json_object_per_line(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        run = log.start_run()
        first = run.write("note", text="hello")
        run.write("note", text="again")
    with AuditLog(log_path, run_id="fixed") as log:
        log.start_run().write("note", text="second run")
    lines = log_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    assert records == AuditLog.read(log_path)
    assert records[0] == first
    assert [r["seq"] for r in records] == [1, 2, 1]
    assert records[0]["run_id"] == records[1]["run_id"] != "fixed"
    assert records[2]["run_id"] == "fixed"
    assert_well_formed(records)


def test_a_stream_is_flushed_and_left_open() -> None:
    flushed: list[str] = []

    class Stream(io.StringIO):
        def flush(self) -> None:
            flushed.append(self.getvalue())
            super().flush()

    stream = Stream()
    log = AuditLog(stream, run_id="r")
    assert not log.fsync
    log.start_run().write("note", n=1)
    assert flushed
    assert json.loads(flushed[-1])["n"] == 1
    log.close()
    assert not stream.closed
    assert log.closed


def test_files_are_fsynced_by_default_streams_not(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        assert log.fsync
    with AuditLog(log_path, fsync=False) as log:
        assert not log.fsync
    with pytest.raises(InvalidInputError, match="fileno"):
        AuditLog(io.StringIO(), fsync=True)


@pytest.mark.parametrize(
    ("target", "kwargs", "named"),
    [
        (42, {}, "path"),
        (None, {}, "path"),
        ("audit.jsonl", {"run_id": ""}, "run_id"),
        ("audit.jsonl", {"fsync": "yes"}, "fsync"),
    ],
)
def test_bad_arguments_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Any, kwargs: Any, named: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match=named):
        AuditLog(target, **kwargs)


def test_a_path_that_cannot_be_opened_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot open the audit log"):
        AuditLog(tmp_path / "no" / "such" / "dir" / "audit.jsonl")


def test_writing_to_a_closed_log_is_a_typed_error(log_path: Path) -> None:
    log = AuditLog(log_path)
    run = log.start_run()
    log.close()
    log.close()  # idempotent
    with pytest.raises(EcsSafeError, match="could not write the audit log") as info:
        run.write("note")
    assert info.value.code == "AuditLog"


def test_a_torn_last_line_is_tolerated_and_a_new_run_starts_on_a_fresh_line(
    log_path: Path,
) -> None:
    with AuditLog(log_path, run_id="crashed") as log:
        log.start_run().write("intent", operation=DEREGISTER)
    with log_path.open("a", encoding="utf-8") as raw:
        raw.write('{"run_id": "crashed", "seq": 2, "kind": "outc')  # killed mid-write
    records = AuditLog.read(log_path)
    assert kinds(records) == ["intent", "torn"]
    assert records[-1]["line"] == 2
    with AuditLog(log_path, run_id="next") as log:
        log.start_run().write("note")
    records = AuditLog.read(log_path)
    assert kinds(records) == ["intent", "torn", "note"]
    assert records[-1]["run_id"] == "next"
    assert [r["run_id"] for r in unfinished(records)] == ["crashed"]


class _DiskFillsUp:
    """``os.write`` that accepts part of the next ``fail`` writes, then raises ENOSPC."""

    def __init__(self, fail: int = 1) -> None:
        self.fail = fail
        self.real = os.write

    def __call__(self, fd: int, data: Any) -> int:
        if self.fail and len(data) > 1:
            self.fail -= 1
            self.real(fd, bytes(data[: len(data) // 2]))  # part of the line reaches the disk
            raise OSError(28, "No space left on device")
        return self.real(fd, data)


def test_a_write_that_fails_part_way_leaves_the_file_as_it_was(
    log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog(log_path, run_id="full") as log:
        run = log.start_run()
        run.write("intent", operation=DEREGISTER, params={"containerInstance": "a"})
        before = log_path.read_bytes()
        monkeypatch.setattr(os, "write", _DiskFillsUp())
        with pytest.raises(EcsSafeError, match="No space left") as info:
            run.write("outcome", intent_seq=1, result="ok")
        assert info.value.code == "AuditLog"
        assert log_path.read_bytes() == before  # truncated back: no partial line
        run.write("intent", operation=DEREGISTER, params={"containerInstance": "b"})
    records = AuditLog.read(log_path)
    assert kinds(records) == ["intent", "intent"]
    assert [r["params"]["containerInstance"] for r in unfinished(records)] == ["a", "b"]


def test_a_stream_that_fails_part_way_gets_the_next_record_on_its_own_line() -> None:
    class Filling(io.StringIO):
        fail = True

        def write(self, text: str) -> int:
            if self.fail:
                self.fail = False
                super().write(text[: len(text) // 2])
                raise OSError(28, "No space left on device")
            return super().write(text)

    stream = Filling()
    run = AuditLog(stream, run_id="s").start_run()
    with pytest.raises(EcsSafeError):
        run.write("intent", operation=DEREGISTER)
    run.write("intent", operation=STOP_TASK)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[1])["operation"] == STOP_TASK


def test_a_record_glued_onto_a_torn_line_is_read_and_the_torn_part_reported(
    log_path: Path,
) -> None:
    # What an older writer left after a failed write: half a record, the next one on its end.
    whole = json.dumps({"run_id": "r", "seq": 2, "kind": "intent", "operation": DEREGISTER})
    log_path.write_text(
        '{"run_id": "r", "seq": 1, "kind": "decision"}\n'
        '{"run_id": "r", "seq": 2, "kind": "inte' + whole + "\n"
        '{"run_id": "r", "seq": 3, "kind": "note"}\n',
        encoding="utf-8",
    )
    records = AuditLog.read(log_path)
    assert kinds(records) == ["decision", "torn", "intent", "note"]
    assert records[1]["line"] == 2
    assert records[1]["text"] == '{"run_id": "r", "seq": 2, "kind": "inte'
    assert [r["seq"] for r in unfinished(records)] == [2]


def test_unfinished_pairs_outcomes_by_run_and_seq() -> None:
    records: list[Record] = [
        {"run_id": "a", "seq": 1, "kind": "intent"},
        {"run_id": "b", "seq": 1, "kind": "intent"},
        {"run_id": "a", "seq": 2, "kind": "intent"},
        {"run_id": "b", "seq": 2, "kind": "outcome", "intent_seq": 1},
        {"run_id": "a", "seq": 3, "kind": "outcome", "intent_seq": 2},
    ]
    assert unfinished(records) == [{"run_id": "a", "seq": 1, "kind": "intent"}]


def test_threads_sharing_a_log_never_interleave_or_repeat_a_seq(log_path: Path) -> None:
    threads, per_thread = 8, 200
    with AuditLog(log_path, fsync=False) as log:
        runs = [log.start_run() for _ in range(threads // 2)] * 2  # two threads per run

        def work(index: int) -> None:
            for n in range(per_thread):
                runs[index].write("note", thread=index, n=n, pad="x" * (index * 300))

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    records = AuditLog.read(log_path)
    assert len(records) == threads * per_thread
    assert_well_formed(records)


# --------------------------------------------------------------------------- client records


async def test_a_deregistration_records_decision_intent_and_outcome(
    env: LocalEcs, log_path: Path
) -> None:
    (arn,) = env.register_instances(CLUSTER)
    async with client(env, log_path) as ecs:
        result = await ecs.deregister_container_instance(arn, cluster=CLUSTER)
        # On disk before the call returned, not only once the client is closed.
        records = AuditLog.read(log_path)
    assert kinds(records) == ["run_started", "decision", "intent", "outcome"]
    started, decision, intent, outcome = records
    assert started["pid"] == os.getpid()
    assert started["policy"] == [r.name for r in ecs.policy.rules]
    assert decision | {"ts": None} == {
        "run_id": started["run_id"],
        "seq": 2,
        "ts": None,
        "kind": "decision",
        "step": "deregister",
        "allowed": True,
        "violations": [],
        "container_instance": arn,
        "container_instance_arn": arn,
        "cluster": CLUSTER,
        "force": False,
        "dry_run": False,
    }
    assert intent["operation"] == DEREGISTER
    assert intent["params"] == {"cluster": CLUSTER, "containerInstance": arn, "force": False}
    assert outcome["intent_seq"] == intent["seq"]
    assert outcome["result"] == "ok"
    assert outcome["attempts"] == 1
    assert outcome["request_id"] == result.request_id
    assert kinds(AuditLog.read(log_path))[-1] == "run_finished"
    assert_well_formed(AuditLog.read(log_path))


async def test_a_refusal_is_recorded_and_nothing_is_intended(env: LocalEcs, log_path: Path) -> None:
    (arn,) = env.register_instances(CLUSTER)
    env.start_standalone_task(CLUSTER, arn)
    async with client(env, log_path) as ecs:
        with pytest.raises(PolicyViolationError):
            await ecs.deregister_container_instance(arn, cluster=CLUSTER)
    records = AuditLog.read(log_path)
    assert kinds(records) == ["run_started", "decision", "run_finished"]
    decision = records[1]
    assert decision["allowed"] is False
    assert [v["rule"] for v in decision["violations"]] == ["no-running-tasks-unless-forced"]
    assert "running" in decision["violations"][0]["message"]


async def test_a_failed_preflight_records_no_decision(env: LocalEcs, log_path: Path) -> None:
    # A pre-flight that could not be done is a failure, not a refusal (API.md): no decision
    # was made, so none is recorded, and nothing was mutated.
    (arn,) = env.register_instances(CLUSTER)
    env.inject_fault("DescribeContainerInstances", code="AccessDeniedException")
    async with client(env, log_path) as ecs:
        with pytest.raises(AccessDeniedException):
            await ecs.deregister_container_instance(arn, cluster=CLUSTER)
    records = AuditLog.read(log_path)
    assert of(records, "decision") == []
    assert of(records, "intent") == []


async def test_a_dry_run_records_the_decision_only(env: LocalEcs, log_path: Path) -> None:
    idle, busy = env.register_instances(CLUSTER, count=2)
    env.start_standalone_task(CLUSTER, busy)
    async with client(env, log_path) as ecs:
        await ecs.deregister_container_instance(idle, cluster=CLUSTER, dry_run=True)
        await ecs.deregister_many([idle, busy], cluster=CLUSTER, drain=True, dry_run=True)
    records = AuditLog.read(log_path)
    assert of(records, "intent") == []
    decisions = [
        (short(d["container_instance"]), d["allowed"], d["step"], d["dry_run"])
        for d in of(records, "decision")
    ]
    assert decisions[0] == (short(idle), True, "deregister", True)
    # The fleet plan judges its instances concurrently: in any order.
    assert sorted(decisions[1:]) == sorted(
        [(short(idle), True, "drain", True), (short(busy), False, "drain", True)]
    )


async def test_a_drain_records_every_mutating_call(env: LocalEcs, log_path: Path) -> None:
    (arn,) = env.register_instances(CLUSTER)
    [task] = env.start_standalone_task(CLUSTER, arn)
    async with client(env, log_path) as ecs:
        await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, standalone_tasks="stop", timeout=5, poll_interval=0.05
        )
    records = AuditLog.read(log_path)
    steps = [
        (r["kind"], r.get("step") or r.get("operation"))
        for r in records
        if r["kind"] in ("decision", "intent")
    ]
    assert steps == [
        ("decision", "drain"),
        # The ownership mark (`ecs_safe.ownership`) goes on before DRAINING is set.
        ("intent", "PutAttributes"),
        ("intent", UPDATE_STATE),
        ("intent", STOP_TASK),
        ("decision", "deregister"),
        ("intent", DEREGISTER),
    ]
    [drain_intent] = of(records, "intent", operation=UPDATE_STATE)
    assert drain_intent["params"]["status"] == "DRAINING"
    assert of(records, "intent", operation=STOP_TASK)[0]["params"]["task"] == task
    assert {r["result"] for r in of(records, "outcome")} == {"ok"}
    assert unfinished(records) == []
    for operation in MUTATING:
        assert len(of(records, "intent", operation=operation)) == env.calls(operation)
    assert_well_formed(records)


async def test_a_fleet_run_records_each_instance_once(env: LocalEcs, log_path: Path) -> None:
    idle = env.register_instances(CLUSTER, count=6)
    (busy,) = env.register_instances(CLUSTER)
    env.start_standalone_task(CLUSTER, busy)
    async with client(env, log_path) as ecs:
        batch = await ecs.deregister_many([*idle, busy, "0" * 32], cluster=CLUSTER, concurrency=3)
    assert len(batch.succeeded) == 6
    records = AuditLog.read(log_path)
    decisions = of(records, "decision")
    assert sorted(short(d["container_instance"]) for d in decisions) == sorted(
        short(a) for a in [*idle, busy]
    )  # the unknown instance is a failure, not a decision
    assert [short(d["container_instance"]) for d in decisions if not d["allowed"]] == [short(busy)]
    intents = of(records, "intent", operation=DEREGISTER)
    assert sorted(intent_target(i) for i in intents) == sorted(short(a) for a in idle)
    assert len(of(records, "outcome", result="ok")) == 6
    assert unfinished(records) == []
    # Each intent follows its instance's allowing decision.
    for intent in intents:
        decided = [d for d in decisions if short(d["container_instance"]) == intent_target(intent)]
        assert decided[0]["allowed"]
        assert decided[0]["seq"] < intent["seq"]
    assert_well_formed(records)


async def test_a_lost_response_is_recorded_as_verified(env: LocalEcs, log_path: Path) -> None:
    (arn,) = env.register_instances(CLUSTER)
    env.inject_fault(DEREGISTER, html=True, http_status=502, after_acting=True)
    async with client(env, log_path) as ecs:
        result = await ecs.deregister_container_instance(arn, cluster=CLUSTER)
    assert result.verified
    records = AuditLog.read(log_path)
    [intent] = of(records, "intent")
    [outcome] = of(records, "outcome")
    assert outcome["intent_seq"] == intent["seq"]
    assert outcome["result"] == "verified"
    assert outcome["attempts"] == 1
    assert env.calls(DEREGISTER) == 1


async def test_a_retried_call_is_one_intent_and_one_outcome(env: LocalEcs, log_path: Path) -> None:
    (arn,) = env.register_instances(CLUSTER)
    env.inject_fault(DEREGISTER, code="ServerException", http_status=500)
    async with client(env, log_path) as ecs:
        await ecs.deregister_container_instance(arn, cluster=CLUSTER)
    records = AuditLog.read(log_path)
    assert len(of(records, "intent")) == 1
    [outcome] = of(records, "outcome")
    assert (outcome["result"], outcome["attempts"]) == ("ok", 2)


async def test_a_failed_call_records_its_typed_error(env: LocalEcs, log_path: Path) -> None:
    (arn,) = env.register_instances(CLUSTER)
    env.inject_fault(DEREGISTER, code="AccessDeniedException", message="not for you")
    async with client(env, log_path) as ecs:
        with pytest.raises(AccessDeniedException):
            await ecs.deregister_container_instance(arn, cluster=CLUSTER)
    [outcome] = of(AuditLog.read(log_path), "outcome")
    assert outcome["result"] == "error"
    assert outcome["error_code"] == "AccessDeniedException"
    assert outcome["http_status"] == 400
    assert outcome["may_have_acted"] is False  # ECS answered with a refusal
    assert "not for you" in outcome["error"]


async def test_a_shared_log_keeps_each_client_in_its_own_run(env: LocalEcs, log_path: Path) -> None:
    a, b = env.register_instances(CLUSTER, count=2)
    with AuditLog(log_path) as log:
        for arn in (a, b):
            async with client(env, log) as ecs:
                await ecs.deregister_container_instance(arn, cluster=CLUSTER)
        assert not log.closed  # the caller's log stays open
    records = AuditLog.read(log_path)
    runs = list(dict.fromkeys(r["run_id"] for r in records))
    assert len(runs) == 2
    assert kinds(records).count("run_finished") == 2
    assert_well_formed(records)


async def test_a_log_that_cannot_be_opened_fails_before_any_request(
    env: LocalEcs, tmp_path: Path
) -> None:
    ecs = client(env, tmp_path / "missing-dir" / "audit.jsonl")
    with pytest.raises(InvalidInputError, match="audit log"):
        await ecs.__aenter__()
    assert env.call_log == []


def test_the_client_refuses_a_bad_audit_log() -> None:
    with pytest.raises(InvalidInputError, match="audit_log"):
        EcsSafeClient(region_name="us-east-1", audit_log=io.StringIO())  # type: ignore[arg-type]


def test_the_sync_client_passes_it_through(env: LocalEcs, log_path: Path) -> None:
    (arn,) = env.register_instances(CLUSTER)
    with SyncEcsSafeClient(**env.client_kwargs(), audit_log=log_path) as ecs:
        ecs.deregister_container_instance(arn, cluster=CLUSTER)
        assert kinds(AuditLog.read(log_path)) == ["run_started", "decision", "intent", "outcome"]
    assert kinds(AuditLog.read(log_path))[-1] == "run_finished"


def test_the_cli_takes_audit_log(
    env: LocalEcs, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith(("AWS_", "ECS_SAFE_"))]:
        monkeypatch.delenv(name)
    for name, value in crash_env().items():
        monkeypatch.setenv(name, value)
    idle, busy = env.register_instances(CLUSTER, count=2)
    env.start_standalone_task(CLUSTER, busy)
    args = ["--cluster", CLUSTER, "--endpoint-url", env.endpoint_url, "--region", "us-east-1"]
    for command in ("deregister", "drain"):
        result = CliRunner().invoke(app, [command, idle, busy, *args, "--audit-log", str(log_path)])
        assert result.exit_code in (3, 5), result.output
    records = AuditLog.read(log_path)
    assert kinds(records).count("run_started") == 2
    assert len(of(records, "intent", operation=DEREGISTER)) == 1
    assert unfinished(records) == []
    assert_well_formed(records)


# --------------------------------------------------------------------------- order


def spy_on_backend(
    monkeypatch: pytest.MonkeyPatch, method: str, log_path: Path
) -> list[list[Record]]:
    """Patch a moto backend method to read the audit log at the moment ECS acts."""
    seen: list[list[Record]] = []
    original: Callable[..., Any] = getattr(EC2ContainerServiceBackend, method)

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(AuditLog.read(log_path))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EC2ContainerServiceBackend, method, spy)
    return seen


async def test_every_intent_is_on_disk_before_ecs_sees_the_request(
    env: LocalEcs, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (arn,) = env.register_instances(CLUSTER)
    env.start_standalone_task(CLUSTER, arn)
    spies = {
        DEREGISTER: spy_on_backend(monkeypatch, "deregister_container_instance", log_path),
        UPDATE_STATE: spy_on_backend(monkeypatch, "update_container_instances_state", log_path),
        STOP_TASK: spy_on_backend(monkeypatch, "stop_task", log_path),
    }
    async with client(env, log_path) as ecs:
        await ecs.drain_and_deregister(
            arn, cluster=CLUSTER, standalone_tasks="stop", timeout=5, poll_interval=0.05
        )
    for operation, seen in spies.items():
        assert len(seen) == 1, operation
        [snapshot] = seen
        last = snapshot[-1]
        # The last record ECS could see is this call's intent, with no outcome yet.
        assert (last["kind"], last["operation"]) == ("intent", operation)
        assert unfinished(snapshot) == [last]


# --------------------------------------------------------------------------- a run killed midway


class HeldDeregistrations:
    """Lets the first ``passing`` deregistrations through, then holds the rest until released.

    Patched into moto's backend (it runs on the LocalEcs server's threads in this process), so
    the test knows exactly which requests ECS received and when it acted on each.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, passing: int) -> None:
        self.passing = passing
        self.lock = threading.Lock()
        self.arrived: list[str] = []
        self.held: list[str] = []
        self.acted: list[str] = []
        self.release = threading.Event()
        original = EC2ContainerServiceBackend.deregister_container_instance

        def hold(
            backend: EC2ContainerServiceBackend, cluster: str, instance: str, force: bool
        ) -> Any:
            with self.lock:
                self.arrived.append(short(instance))
                held = len(self.arrived) > self.passing
                if held:
                    self.held.append(short(instance))
            if held:
                self.release.wait(30)
            result = original(backend, cluster, instance, force)
            with self.lock:
                self.acted.append(short(instance))
            return result

        monkeypatch.setattr(EC2ContainerServiceBackend, "deregister_container_instance", hold)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)


def crash_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECS_SAFE_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def test_a_run_killed_midway_can_be_reconstructed(
    env: LocalEcs, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    total, passing, concurrency = 40, 12, 10
    arns = env.register_instances(CLUSTER, count=total)
    server = HeldDeregistrations(monkeypatch, passing)
    command = [
        sys.executable,
        str(CRASH_RUNNER),
        env.endpoint_url,
        env.region_name,
        str(log_path),
        CLUSTER,
        str(concurrency),
        *arns,
    ]
    process = subprocess.Popen(
        command, env=crash_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        # Every slot is taken by a request ECS has received and not answered: mid-flight.
        server.wait_for(lambda: len(server.held) == concurrency, "the in-flight requests")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
        server.release.set()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL, stderr.decode(errors="replace")
    # ECS acts on the held requests although their client is gone: the unknown results.
    server.wait_for(lambda: len(server.acted) == passing + concurrency, "ECS to act")

    records = AuditLog.read(log_path)
    torn = [i for i, r in enumerate(records) if r["kind"] == "torn"]
    assert torn in ([], [len(records) - 1]), "only the last line may be torn"
    whole = [r for r in records if r["kind"] != "torn"]
    assert_well_formed(whole)
    assert "run_finished" not in kinds(whole)
    assert len({r["run_id"] for r in whole}) == 1

    deregistered = set(server.acted)
    intended = {intent_target(i) for i in of(whole, "intent", operation=DEREGISTER)}
    in_flight = unfinished(whole)
    unknown = {intent_target(i) for i in in_flight}
    intents_by_seq = {i["seq"]: i for i in of(whole, "intent")}
    succeeded = {intent_target(intents_by_seq[o["intent_seq"]]) for o in of(whole, "outcome")}

    # Nothing ECS deregistered is missing from the log.
    assert deregistered <= intended
    # What the log says succeeded did; what it calls unknown is exactly what was in flight.
    assert {o["result"] for o in of(whole, "outcome")} == {"ok"}
    assert succeeded == set(server.acted[:passing])
    assert unknown == set(server.held)
    assert unknown | succeeded == intended
    assert len(in_flight) == concurrency
    # Each deregistration was allowed, by a decision written before its intent.
    allowed = {
        short(d["container_instance"]): d["seq"] for d in of(whole, "decision", allowed=True)
    }
    assert all(allowed[intent_target(i)] < i["seq"] for i in of(whole, "intent"))
    # Instances the run never reached are untouched and absent from the intents.
    untouched = {short(a) for a in arns} - deregistered
    assert len(untouched) == total - passing - concurrency
    assert not untouched & intended
    assert not untouched & {short(d["container_instance"]) for d in of(whole, "decision")}
