"""The fault matrix: every ECS operation the SDK makes x every transport fault, with invariants.

Each cell seeds the local endpoint, puts a `FaultProxy` in front of it, gives one operation one
fault (once, or on every attempt), runs a deregistration whose path makes that operation
through an `EcsSafeClient` pointed at the proxy, and checks the invariants on what came back,
on what reached the upstream, and on what is true afterwards:

- typed: the outcome is a result or an ecs-safe error (never botocore/aiohttp/tenacity);
- decided: nothing is deregistered unless the policy allowed it, and at most once;
- bounded: a retryable fault is retried up to ``max_attempts`` and no further, a
  non-retryable one is not retried, and the call ends in bounded time;
- recovered: a retryable fault that happens once does not change the outcome;
- verified: a deregistration that happened is reported as such (a lost response is verified
  by a describe, never sent twice, never reported as a failure);
- honest: a reported success is true (the instance is really gone), never an empty 200;
- accounted: exactly one outcome log event, matching the outcome.

Set ``ECS_SAFE_MATRIX_OUT=path.json`` to dump every cell's outcome (for docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    MutableMapping,
    Sequence,
)
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import botocore.session
import pytest
from aiobotocore.session import AioSession
from fault_proxy import Fault, FaultProxy
from structlog.testing import capture_logs

from ecs_safe import (
    AccessDeniedException,
    DeregistrationResult,
    EcsApiError,
    EcsConnectionError,
    EcsSafeClient,
    EcsSafeError,
    Policy,
    PolicyContext,
    PolicyViolationError,
    ProtectStandaloneTasks,
    RateLimits,
    RetryConfig,
    ServerException,
    ThrottlingException,
    Violation,
    default_policy,
)
from ecs_safe.local import LocalEcs

MAX_ATTEMPTS = 3
READ_TIMEOUT = 0.25
CONNECT_TIMEOUT = 0.5
# Whatever a cell does, it must end within this (hangs cost READ_TIMEOUT per attempt).
TIME_BOUND_S = MAX_ATTEMPTS * (READ_TIMEOUT + 0.2) + 3.0
ALWAYS = 1000
CLUSTER = "matrix"
DAEMON_SERVICE = "agent"

DESCRIBE = "DescribeContainerInstances"
LIST_TASKS = "ListTasks"
DESCRIBE_TASKS = "DescribeTasks"
DESCRIBE_SERVICES = "DescribeServices"
DEREGISTER = "DeregisterContainerInstance"
UPDATE_STATE = "UpdateContainerInstancesState"
STOP_TASK = "StopTask"
OPERATIONS = (
    DESCRIBE,
    LIST_TASKS,
    DESCRIBE_TASKS,
    DESCRIBE_SERVICES,
    DEREGISTER,
    UPDATE_STATE,
    STOP_TASK,
)
#: Where a fault after the upstream acted differs from one before: the call changed something.
MUTATING = frozenset({DEREGISTER, UPDATE_STATE, STOP_TASK})
DRAIN_TIMEOUT = 0.8

#: The typed error each fault must surface as, once retries (if any) are exhausted.
EXPECTED_ERROR: dict[Fault, type[EcsApiError]] = {
    Fault.RESET: EcsConnectionError,
    Fault.HANG: EcsConnectionError,
    Fault.TRUNCATED: EcsConnectionError,
    Fault.HTML_5XX: ServerException,
    Fault.THROTTLE: ThrottlingException,
    Fault.THROTTLE_429: ThrottlingException,
    Fault.GARBAGE: ServerException,
    Fault.EMPTY: ServerException,
    Fault.DENIED: AccessDeniedException,
    # Bodies botocore (or ecs-safe's own checks) cannot read: typed, retried, verified.
    Fault.NOT_UTF8: ServerException,
    Fault.NOT_UTF8_4XX: ServerException,
    Fault.DEEP_JSON: ServerException,
    Fault.NULL_ITEMS: ServerException,
}
NOT_RETRYABLE = frozenset({Fault.DENIED})
#: Faults that can also strike on the way back, after the upstream acted (a lost response);
#: tried on the mutating operations (for a read the client cannot tell the difference).
AFTER_UPSTREAM = (
    Fault.RESET,
    Fault.HANG,
    Fault.HTML_5XX,
    Fault.GARBAGE,
    Fault.TRUNCATED,
    Fault.EMPTY,
    Fault.NOT_UTF8,
    Fault.DEEP_JSON,
    Fault.NULL_ITEMS,
)

Outcome = Literal["deregistered", "refused", "failed"]


# --------------------------------------------------------------------------- scenarios


class ProtectDaemonTasks:
    """A user's rule: refuse ``force`` while a daemon task runs (daemons are never moved)."""

    name = "protect-daemon-tasks"
    needs_tasks = True

    def check(self, context: PolicyContext) -> Violation | None:
        daemons = [t for t in context.tasks or () if t.kind == "daemon"]
        if context.force and (context.tasks is None or daemons):
            return Violation(self.name, f"{len(daemons)} daemon task(s) would be orphaned")
        return None


Action = Callable[[EcsSafeClient, str, str], Awaitable[DeregistrationResult]]


async def _deregister(ecs: EcsSafeClient, arn: str, cluster: str) -> DeregistrationResult:
    return await ecs.deregister_container_instance(arn, cluster=cluster)


async def _force(ecs: EcsSafeClient, arn: str, cluster: str) -> DeregistrationResult:
    return await ecs.deregister_container_instance(arn, cluster=cluster, force=True)


async def _drain(ecs: EcsSafeClient, arn: str, cluster: str) -> DeregistrationResult:
    return await ecs.drain_and_deregister(
        arn, cluster=cluster, timeout=DRAIN_TIMEOUT, poll_interval=0.02
    )


async def _drain_stopping(ecs: EcsSafeClient, arn: str, cluster: str) -> DeregistrationResult:
    return await ecs.drain_and_deregister(
        arn, cluster=cluster, timeout=DRAIN_TIMEOUT, poll_interval=0.02, standalone_tasks="stop"
    )


@dataclass(frozen=True)
class Scenario:
    """A deregistration whose path makes the faulted operation, and what it must come to."""

    name: str
    seed: Callable[[LocalEcs, str], None]
    action: Action
    policy: Policy
    expect: Outcome
    refusing_rule: str | None = None


def _idle(local: LocalEcs, arn: str) -> None:
    pass


def _standalone(local: LocalEcs, arn: str) -> None:
    local.start_standalone_task(CLUSTER, arn)


def _daemon(local: LocalEcs, arn: str) -> None:
    local.start_service_task(CLUSTER, arn, DAEMON_SERVICE)


IDLE = Scenario("deregister an idle instance", _idle, _deregister, default_policy(), "deregistered")
STANDALONE = Scenario(
    "force with a standalone task under ProtectStandaloneTasks",
    _standalone,
    _force,
    default_policy().with_rules(ProtectStandaloneTasks()),
    "refused",
    "protect-standalone-tasks",
)
DAEMON = Scenario(
    "force with a daemon task under a rule protecting daemons",
    _daemon,
    _force,
    default_policy().with_rules(ProtectDaemonTasks()),
    "refused",
    "protect-daemon-tasks",
)
DRAIN = Scenario(
    "drain_and_deregister an idle instance", _idle, _drain, default_policy(), "deregistered"
)
DRAIN_STOPPING = Scenario(
    "drain_and_deregister, stopping a standalone task",
    _standalone,
    _drain_stopping,
    default_policy(),
    "deregistered",
)
SCENARIOS: dict[str, Scenario] = {
    DESCRIBE: IDLE,
    DEREGISTER: IDLE,
    LIST_TASKS: STANDALONE,
    DESCRIBE_TASKS: STANDALONE,
    DESCRIBE_SERVICES: DAEMON,
    UPDATE_STATE: DRAIN,
    STOP_TASK: DRAIN_STOPPING,
}


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Cell:
    """One operation, one fault, where it strikes, how often."""

    operation: str
    fault: Fault
    after_upstream: bool = False
    times: int = 1

    @property
    def id(self) -> str:
        where = "-after" if self.after_upstream else ""
        often = "" if self.fault is Fault.PASS else ("-always" if self.times == ALWAYS else "-once")
        return f"{self.operation}-{self.fault}{where}{often}"


def cells() -> Iterator[Cell]:
    for operation in OPERATIONS:
        yield Cell(operation, Fault.PASS)
        for fault in EXPECTED_ERROR:
            lost = fault in AFTER_UPSTREAM and operation in MUTATING
            for after in (False, True) if lost else (False,):
                for times in (1, ALWAYS):
                    yield Cell(operation, fault, after, times)


# Known bugs, reported; each cell stays an xfail(strict) until its fix lands. None open: the
# empty-200 task lists (client.py), StopTask without `task` and UpdateContainerInstancesState
# failures (drain.py) were fixed in the issue-3 work.
KNOWN_BUGS: dict[str, str] = {}


def known_bug(cell: Cell) -> str | None:
    """The reported bug this cell exposes, if any."""
    return KNOWN_BUGS.get(cell.id)


def _marks(cell: Cell) -> list[pytest.MarkDecorator]:
    bug = known_bug(cell)
    return [pytest.mark.xfail(strict=True, reason=bug)] if bug else []


CELLS = [pytest.param(c, id=c.id, marks=_marks(c)) for c in cells()]


# --------------------------------------------------------------------------- running a cell


@dataclass
class Record:
    """What one cell did: the row of the reliability table."""

    operation: str
    scenario: str
    fault: str
    after_upstream: bool
    times: str
    outcome: Outcome
    detail: str
    attempts: int
    faulted: int
    upstream_deregisters: int
    status_after: str | None
    elapsed_s: float
    violations: list[str] = field(default_factory=list)
    known_bug: str | None = None


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture(scope="module")
def session(local_ecs: LocalEcs) -> AioSession:
    # One session for the module: each new one loads the service model again.
    return local_ecs.session()


@pytest.fixture(scope="module")
def ground_truth(local_ecs: LocalEcs) -> Iterator[Any]:
    """A plain botocore client straight to the endpoint: what is really registered."""
    raw = botocore.session.get_session()
    raw.set_credentials(local_ecs.access_key_id, local_ecs.secret_access_key)
    client = raw.create_client(
        "ecs", region_name=local_ecs.region_name, endpoint_url=local_ecs.endpoint_url
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def matrix_records() -> Iterator[list[Record]]:
    records: list[Record] = []
    yield records
    if out := os.environ.get("ECS_SAFE_MATRIX_OUT"):
        write_matrix(Path(out), records)


def write_matrix(path: Path, records: Sequence[Record]) -> None:
    """Dump the matrix (settings and one row per cell) as JSON for docs/reliability.md."""
    document = {
        "max_attempts": MAX_ATTEMPTS,
        "read_timeout_s": READ_TIMEOUT,
        "time_bound_s": TIME_BOUND_S,
        "cells": [asdict(r) for r in records],
        "passed": sum(1 for r in records if not r.violations),
        "failed": sum(1 for r in records if r.violations),
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def instance_pool(local_ecs: LocalEcs) -> deque[str]:
    """The session's endpoint, reset once, with one fresh container instance per cell.

    Resetting moto per cell costs 50-250 ms and registering one instance 20-90 ms; one
    RunInstances for them all costs a few ms each.
    """
    local_ecs.reset()
    local_ecs.create_cluster(CLUSTER)
    local_ecs.create_service(CLUSTER, DAEMON_SERVICE, scheduling_strategy="DAEMON")
    return deque(local_ecs.register_instances(CLUSTER, count=len(CELLS)))


@pytest.fixture
def instance(instance_pool: deque[str]) -> str:
    return instance_pool.popleft()


@pytest.fixture
async def proxy(local_ecs: LocalEcs) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(local_ecs.endpoint_url) as running:
        yield running


def _status(ground_truth: Any, arn: str) -> str | None:
    """The instance's real status (``None`` once it is gone), asked without the proxy."""
    response = ground_truth.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    found = response.get("containerInstances") or [{}]
    status = found[0].get("status")
    return None if status in (None, "INACTIVE") else str(status)


def _outcome_of(result: DeregistrationResult | None, error: BaseException | None) -> Outcome:
    if result is not None:
        return "deregistered"
    return "refused" if isinstance(error, PolicyViolationError) else "failed"


def _detail(result: DeregistrationResult | None, error: BaseException | None) -> str:
    if result is not None:
        return "verified after a lost response" if result.verified else "returned by ECS"
    if isinstance(error, PolicyViolationError):
        rules = ",".join(v.rule for v in error.decision.violations)
        cause = error.__cause__
        return f"{rules} ({type(cause).__name__})" if cause is not None else rules
    return f"{type(error).__name__}({getattr(error, 'code', '')})"


def _rules(error: BaseException | None) -> list[str]:
    if isinstance(error, PolicyViolationError):
        return [v.rule for v in error.decision.violations]
    return []


_OUTCOME_EVENTS = {
    "ecs_safe.deregister.succeeded": "deregistered",
    "ecs_safe.deregister.refused": "refused",
    "ecs_safe.deregister.failed": "failed",
    "ecs_safe.drain.failed": "failed",
    "ecs_safe.drain.timed_out": "failed",
}


def check_invariants(
    cell: Cell,
    scenario: Scenario,
    *,
    result: DeregistrationResult | None,
    error: BaseException | None,
    proxy: FaultProxy,
    upstream_deregisters: int,
    status: str | None,
    elapsed: float,
    logs: Sequence[MutableMapping[str, Any]],
) -> list[str]:
    """Every invariant this cell breaks, in words (empty when all hold)."""
    broken: list[str] = []
    outcome = _outcome_of(result, error)
    faulted = proxy.faulted(cell.operation)
    faulty = cell.fault is not Fault.PASS
    retryable = cell.fault not in NOT_RETRYABLE
    lost_deregistration = cell.operation == DEREGISTER and cell.after_upstream

    # typed
    if error is not None and not isinstance(error, EcsSafeError):
        broken.append(f"untyped error {type(error).__module__}.{type(error).__name__}")
    if faulty and cell.times == ALWAYS and outcome != "deregistered":
        typed = error.__cause__ if isinstance(error, PolicyViolationError) else error
        if not isinstance(typed, EXPECTED_ERROR[cell.fault]):
            broken.append(
                f"a persistent {cell.fault} surfaced as {type(typed).__name__}, "
                f"not {EXPECTED_ERROR[cell.fault].__name__}"
            )

    # decided
    if result is not None and not result.decision.allowed:
        broken.append("a result without an allowing decision")
    if scenario.expect == "refused" and (upstream_deregisters or status is None):
        broken.append(
            f"deregistered ({upstream_deregisters} upstream call(s)) although the policy "
            "must refuse"
        )
    if upstream_deregisters > 1:
        broken.append(f"DeregisterContainerInstance reached ECS {upstream_deregisters} times")

    # bounded
    if faulty and faulted == 0:
        broken.append("the fault was never exercised (the cell tests nothing)")
    if faulted > MAX_ATTEMPTS:
        broken.append(f"{faulted} faulted attempts, more than max_attempts={MAX_ATTEMPTS}")
    if faulty and cell.times == ALWAYS:
        expected = MAX_ATTEMPTS if retryable and not lost_deregistration else 1
        if faulted != expected:
            broken.append(f"{faulted} attempts under a persistent {cell.fault}, not {expected}")
    retries = [e for e in logs if e["event"] == "ecs_safe.retry.scheduled"]
    if any(e["attempt"] >= MAX_ATTEMPTS for e in retries):
        broken.append("a retry was scheduled after the last attempt")
    if elapsed > TIME_BOUND_S:
        broken.append(f"took {elapsed:.2f}s, more than {TIME_BOUND_S:.2f}s")

    # recovered
    if faulty and retryable and cell.times == 1:
        if outcome != scenario.expect:
            broken.append(f"one {cell.fault} turned {scenario.expect} into {outcome}")
        elif scenario.refusing_rule and scenario.refusing_rule not in _rules(error):
            broken.append(f"refused by {_rules(error)}, not by {scenario.refusing_rule}")

    # verified
    if upstream_deregisters and status is None and outcome != "deregistered":
        broken.append(f"the instance was deregistered but the call reported {outcome}")
    if lost_deregistration and result is not None and not result.verified:
        broken.append("a lost deregistration response was not verified")

    # honest
    if result is not None and status is not None:
        broken.append(f"reported deregistered, but the instance is still {status}")

    # accounted
    seen = [_OUTCOME_EVENTS[e["event"]] for e in logs if e["event"] in _OUTCOME_EVENTS]
    if seen != [outcome]:
        broken.append(f"outcome events {seen}, expected [{outcome!r}]")
    if error is not None and status == "DRAINING":
        said = " ".join([str(error), *getattr(error, "__notes__", ())])
        if "DRAINING" not in said:
            broken.append("the instance was left DRAINING and the error does not say so")
    return broken


@pytest.mark.parametrize("cell", CELLS)
async def test_fault_matrix(
    cell: Cell,
    local_ecs: LocalEcs,
    instance: str,
    proxy: FaultProxy,
    session: AioSession,
    ground_truth: Any,
    matrix_records: list[Record],
) -> None:
    scenario = SCENARIOS[cell.operation]
    scenario.seed(local_ecs, instance)
    local_ecs.reset_calls()
    if cell.fault is not Fault.PASS:
        proxy.inject(
            cell.operation, cell.fault, times=cell.times, after_upstream=cell.after_upstream
        )
    result: DeregistrationResult | None = None
    error: BaseException | None = None
    with capture_logs() as logs:
        async with EcsSafeClient(
            endpoint_url=proxy.endpoint_url,
            region_name=local_ecs.region_name,
            session=session,
            policy=scenario.policy,
            retry=RetryConfig(max_attempts=MAX_ATTEMPTS),
            rate_limits=RateLimits.unlimited(),
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        ) as ecs:
            started = time.monotonic()
            try:
                result = await scenario.action(ecs, instance, CLUSTER)
            except Exception as exc:  # judged by the invariants, typed or not
                error = exc
            elapsed = time.monotonic() - started
    upstream_deregisters = local_ecs.calls(DEREGISTER)
    status = _status(ground_truth, instance)
    broken = check_invariants(
        cell,
        scenario,
        result=result,
        error=error,
        proxy=proxy,
        upstream_deregisters=upstream_deregisters,
        status=status,
        elapsed=elapsed,
        logs=logs,
    )
    matrix_records.append(
        Record(
            operation=cell.operation,
            scenario=scenario.name,
            fault=str(cell.fault),
            after_upstream=cell.after_upstream,
            times="always" if cell.times == ALWAYS else str(cell.times),
            outcome=_outcome_of(result, error),
            detail=_detail(result, error),
            attempts=proxy.attempts(cell.operation),
            faulted=proxy.faulted(cell.operation),
            upstream_deregisters=upstream_deregisters,
            status_after=status,
            elapsed_s=round(elapsed, 3),
            violations=broken,
            known_bug=known_bug(cell),
        )
    )
    assert broken == [], f"{cell.id}: {_detail(result, error)}"
