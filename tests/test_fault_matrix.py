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

import asyncio
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
    AuditLog,
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
# A cell still running after this is reported as hung. Boundedness itself is judged by counts
# (faulted attempts, scheduled retries), never by wall time: on a shared machine a healthy cell
# can take several times its usual 1-3 s, so the guard is far above any honest duration and
# only catches a wait that never ends.
HANG_GUARD_S = 120.0
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
        "hang_guard_s": HANG_GUARD_S,
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
    if elapsed >= HANG_GUARD_S:
        broken.append(f"hung: still running after {HANG_GUARD_S:.0f}s")

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
                result = await asyncio.wait_for(
                    scenario.action(ecs, instance, CLUSTER), HANG_GUARD_S
                )
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


# =========================================================================== the other calls
#
# The mutating calls of the Auto Scaling / EC2 call layer (`ecs_safe._aws_calls`) and ECS's
# attribute calls (the ownership marks), each made on its own through the client's call layers
# and the proxy, under the same faults, with the same invariants in call form:
#
# - typed, bounded and recovered as above;
# - verified: a call whose response may be lost (CompleteLifecycleAction,
#   TerminateInstanceInAutoScalingGroup, UpdateAutoScalingGroup, TerminateInstances) reaches
#   the upstream at most once and, having acted, is never reported failed; the idempotent ones
#   (RecordLifecycleActionHeartbeat, PutAttributes, DeleteAttributes) may be sent again;
# - honest: a reported success is true (the effect is read back without the proxy);
# - audited: one intent and one outcome record, ``verified`` exactly for a lost response
#   proven by a read, ``error`` exactly when the call raised.

AWS_CLUSTER = "matrix-aws"
AWS_GROUP = "matrix-asg"
SIZES_GROUP = "matrix-sizes"
HOOK = "matrix-hook"
MARK = "matrix.mark"
AMI = "ami-1e749f67"

COMPLETE = "CompleteLifecycleAction"
HEARTBEAT = "RecordLifecycleActionHeartbeat"
TERMINATE_IN_GROUP = "TerminateInstanceInAutoScalingGroup"
UPDATE_GROUP = "UpdateAutoScalingGroup"
TERMINATE = "TerminateInstances"
PUT_ATTRIBUTES = "PutAttributes"
DELETE_ATTRIBUTES = "DeleteAttributes"
#: The calls verified by a read after a lost response (never sent again once they acted).
VERIFIED_CALLS = frozenset({COMPLETE, TERMINATE_IN_GROUP, UPDATE_GROUP, TERMINATE})

AWS_ONCE = (
    Fault.THROTTLE,
    Fault.THROTTLE_429,
    Fault.HTML_5XX,
    Fault.RESET,
    Fault.HANG,
    Fault.GARBAGE,
    Fault.TRUNCATED,
)
AWS_ALWAYS = (Fault.THROTTLE, Fault.HTML_5XX, Fault.RESET, Fault.DENIED)
AWS_LOST_ONCE = (Fault.RESET, Fault.HTML_5XX, Fault.HANG, Fault.GARBAGE, Fault.TRUNCATED)
AWS_LOST_ALWAYS = (Fault.RESET, Fault.HTML_5XX)


@dataclass
class Target:
    """What one call cell acts on (an instance, a value) and how to read its effect."""

    ref: str
    token: str | None = None
    value: int = 0


@dataclass
class AwsPool:
    """Fresh targets per cell, seeded once for the module."""

    group_instances: deque[str]
    ec2_instances: deque[str]
    container_instances: deque[str]
    sizes: Iterator[int]


def _raw(local: LocalEcs, service: str) -> Any:
    """A plain botocore client straight to the endpoint (made once: a client costs ~0.5 s)."""
    key = (local.endpoint_url, service)
    if key not in _RAW_CLIENTS:
        raw = botocore.session.get_session()
        raw.set_credentials(local.access_key_id, local.secret_access_key)
        _RAW_CLIENTS[key] = raw.create_client(
            service, region_name=local.region_name, endpoint_url=local.endpoint_url
        )
    return _RAW_CLIENTS[key]


_RAW_CLIENTS: dict[tuple[str, str], Any] = {}


def aws_cells() -> Iterator[Cell]:
    for operation in (
        COMPLETE,
        HEARTBEAT,
        TERMINATE_IN_GROUP,
        UPDATE_GROUP,
        TERMINATE,
        PUT_ATTRIBUTES,
        DELETE_ATTRIBUTES,
    ):
        yield Cell(operation, Fault.PASS)
        yield from (Cell(operation, fault) for fault in AWS_ONCE)
        yield from (Cell(operation, fault, times=ALWAYS) for fault in AWS_ALWAYS)
        yield from (Cell(operation, fault, True) for fault in AWS_LOST_ONCE)
        yield from (Cell(operation, fault, True, ALWAYS) for fault in AWS_LOST_ALWAYS)


AWS_CELLS = [pytest.param(c, id=c.id) for c in aws_cells()]


@pytest.fixture(scope="module")
def aws_pool(local_ecs: LocalEcs) -> AwsPool:
    """A group, plain EC2 instances and container instances, one of each kind per cell.

    No reset: the ECS matrix's pool shares the endpoint; these names are the section's own.
    """
    per_kind = len(AWS_CELLS) // 7 + 1
    autoscaling = _raw(local_ecs, "autoscaling")
    ec2 = _raw(local_ecs, "ec2")
    ec2.create_launch_template(
        LaunchTemplateName=f"{AWS_GROUP}-lt", LaunchTemplateData={"ImageId": AMI}
    )
    members = 3 * per_kind  # lifecycle actions, heartbeats, terminations in the group
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=AWS_GROUP,
        LaunchTemplate={"LaunchTemplateName": f"{AWS_GROUP}-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=members,
        DesiredCapacity=members,
        AvailabilityZones=[f"{local_ecs.region_name}a"],
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=SIZES_GROUP,
        LaunchTemplate={"LaunchTemplateName": f"{AWS_GROUP}-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=0,
        DesiredCapacity=0,
        AvailabilityZones=[f"{local_ecs.region_name}a"],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[AWS_GROUP])
    reservation = ec2.run_instances(ImageId=AMI, MinCount=per_kind, MaxCount=per_kind)
    local_ecs.create_cluster(AWS_CLUSTER)
    return AwsPool(
        group_instances=deque(i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]),
        ec2_instances=deque(i["InstanceId"] for i in reservation["Instances"]),
        container_instances=deque(local_ecs.register_instances(AWS_CLUSTER, count=2 * per_kind)),
        sizes=iter(range(1, 10_000)),
    )


def _seed(operation: str, local: LocalEcs, pool: AwsPool) -> Target:
    if operation in (COMPLETE, HEARTBEAT):
        instance_id = pool.group_instances.popleft()
        action = local.lifecycle_actions.begin_termination(AWS_GROUP, HOOK, instance_id)
        return Target(instance_id, token=action.token)
    if operation == TERMINATE_IN_GROUP:
        return Target(pool.group_instances.popleft())
    if operation == UPDATE_GROUP:
        return Target(SIZES_GROUP, value=next(pool.sizes))
    if operation == TERMINATE:
        return Target(pool.ec2_instances.popleft())
    arn = pool.container_instances.popleft()
    if operation == DELETE_ATTRIBUTES:
        _raw(local, "ecs").put_attributes(
            cluster=AWS_CLUSTER,
            attributes=[{"name": MARK, "value": "v1", "targetId": arn.rsplit("/", 1)[-1]}],
        )
    return Target(arn)


async def _act(operation: str, ecs: EcsSafeClient, target: Target) -> bool | None:
    """Make the one call; its own return value (``True``: verified after a lost response)."""
    if operation in (COMPLETE, HEARTBEAT, TERMINATE_IN_GROUP, UPDATE_GROUP):
        autoscaling = await ecs._autoscaling_calls()
        if operation == COMPLETE:
            return await autoscaling.complete_lifecycle_action(
                group=AWS_GROUP,
                hook=HOOK,
                instance_id=target.ref,
                result="CONTINUE",
                token=target.token,
            )
        if operation == HEARTBEAT:
            await autoscaling.record_heartbeat(
                group=AWS_GROUP, hook=HOOK, instance_id=target.ref, token=target.token
            )
            return None
        if operation == TERMINATE_IN_GROUP:
            return await autoscaling.terminate_instance(target.ref, decrement_desired_capacity=True)
        await autoscaling.set_sizes(target.ref, max_size=target.value)
        return None
    if operation == TERMINATE:
        return await (await ecs._ec2_calls()).terminate_instances([target.ref])
    calls = ecs._opened().calls
    send = calls.put_attributes if operation == PUT_ATTRIBUTES else calls.delete_attributes
    errors = await send(AWS_CLUSTER, MARK, {target.ref: "v1"})
    for error in errors.values():
        raise error
    return None


def _done(operation: str, local: LocalEcs, target: Target) -> bool:
    """Whether the call's effect is there, read straight from the endpoint."""
    if operation in (COMPLETE, HEARTBEAT):
        assert target.token is not None
        action = local.lifecycle_actions.action(target.token)
        return action.state == "Terminated" if operation == COMPLETE else action.heartbeats > 0
    if operation == TERMINATE_IN_GROUP:
        found = _raw(local, "autoscaling").describe_auto_scaling_instances(
            InstanceIds=[target.ref]
        )["AutoScalingInstances"]
        return all(str(i["LifecycleState"]).startswith("Terminat") for i in found)
    if operation == UPDATE_GROUP:
        groups = _raw(local, "autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[target.ref]
        )["AutoScalingGroups"]
        return int(groups[0]["MaxSize"]) == target.value
    if operation == TERMINATE:
        reservations = _raw(local, "ec2").describe_instances(InstanceIds=[target.ref])
        [instance] = reservations["Reservations"][0]["Instances"]
        return instance["State"]["Name"] in {"shutting-down", "terminated"}
    # Every attribute, filtered here: moto ignores ListAttributes' attributeName.
    listed = _raw(local, "ecs").list_attributes(
        cluster=AWS_CLUSTER, targetType="container-instance"
    )["attributes"]
    marked = any(
        a.get("name") == MARK and a.get("targetId", "").endswith(target.ref.rsplit("/", 1)[-1])
        for a in listed
    )
    return marked if operation == PUT_ATTRIBUTES else not marked


def check_call_invariants(
    cell: Cell,
    *,
    returned: bool | None,
    error: BaseException | None,
    done: bool,
    proxy: FaultProxy,
    elapsed: float,
    records: Sequence[MutableMapping[str, Any]],
) -> list[str]:
    """Every invariant this call cell breaks, in words (empty when all hold)."""
    broken: list[str] = []
    faulty = cell.fault is not Fault.PASS
    retryable = cell.fault not in NOT_RETRYABLE
    verified_call = cell.operation in VERIFIED_CALLS
    faulted = proxy.faulted(cell.operation)

    # typed
    if error is not None and not isinstance(error, EcsSafeError):
        broken.append(f"untyped error {type(error).__module__}.{type(error).__name__}")
    persistent = faulty and cell.times == ALWAYS and not cell.after_upstream
    if persistent and not isinstance(error, EXPECTED_ERROR[cell.fault]):
        broken.append(
            f"a persistent {cell.fault} surfaced as {type(error).__name__}, "
            f"not {EXPECTED_ERROR[cell.fault].__name__}"
        )

    # bounded
    if faulty and faulted == 0:
        broken.append("the fault was never exercised (the cell tests nothing)")
    if faulted > MAX_ATTEMPTS:
        broken.append(f"{faulted} faulted attempts, more than max_attempts={MAX_ATTEMPTS}")
    if faulty and cell.times == ALWAYS:
        # A lost response of a verified call is proven by a read after its first attempt.
        lost_verified = cell.after_upstream and verified_call
        expected = 1 if lost_verified or not retryable else MAX_ATTEMPTS
        if faulted != expected:
            broken.append(f"{faulted} attempts under a persistent {cell.fault}, not {expected}")
    if elapsed >= HANG_GUARD_S:
        broken.append(f"hung: still running after {HANG_GUARD_S:.0f}s")

    # recovered
    if (not faulty or (retryable and cell.times == 1)) and (error is not None or not done):
        broken.append(f"one {cell.fault} ended in {type(error).__name__} (done: {done})")

    # verified
    if verified_call:
        if proxy.forwarded(cell.operation) > 1:
            broken.append(
                f"{cell.operation} reached the upstream {proxy.forwarded(cell.operation)} times"
            )
        if done and error is not None:
            broken.append(f"the call took effect but raised {type(error).__name__}")
        lost = cell.after_upstream
        if returned is not None and returned is not lost:
            broken.append(
                f"returned verified={returned} for a {'lost' if lost else 'plain'} response"
            )

    # honest
    if error is None and not done:
        broken.append("reported a success whose effect is not there")

    # audited
    intents = [r for r in records if r["kind"] == "intent" and r["operation"] == cell.operation]
    outcomes = [r for r in records if r["kind"] == "outcome" and r["operation"] == cell.operation]
    if len(intents) != 1 or len(outcomes) != 1:
        broken.append(f"{len(intents)} intent(s) and {len(outcomes)} outcome(s), not one each")
    else:
        expected_result = (
            "error"
            if error is not None
            else "verified"
            if verified_call and cell.after_upstream
            else "ok"
        )
        if outcomes[0]["result"] != expected_result:
            broken.append(f"audit outcome {outcomes[0]['result']!r}, not {expected_result!r}")
        if outcomes[0]["intent_seq"] != intents[0]["seq"]:
            broken.append("the outcome does not point at its intent")
    return broken


@pytest.mark.parametrize("cell", AWS_CELLS)
async def test_call_fault_matrix(
    cell: Cell,
    local_ecs: LocalEcs,
    aws_pool: AwsPool,
    proxy: FaultProxy,
    session: AioSession,
    tmp_path: Path,
) -> None:
    target = _seed(cell.operation, local_ecs, aws_pool)
    if cell.fault is not Fault.PASS:
        proxy.inject(
            cell.operation, cell.fault, times=cell.times, after_upstream=cell.after_upstream
        )
    audit = tmp_path / "audit.jsonl"
    returned: bool | None = None
    error: BaseException | None = None
    async with EcsSafeClient(
        endpoint_url=proxy.endpoint_url,
        region_name=local_ecs.region_name,
        session=session,
        retry=RetryConfig(max_attempts=MAX_ATTEMPTS),
        rate_limits=RateLimits.unlimited(),
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        audit_log=audit,
    ) as ecs:
        started = time.monotonic()
        try:
            returned = await asyncio.wait_for(_act(cell.operation, ecs, target), HANG_GUARD_S)
        except Exception as exc:  # judged by the invariants, typed or not
            error = exc
        elapsed = time.monotonic() - started
    broken = check_call_invariants(
        cell,
        returned=returned,
        error=error,
        done=_done(cell.operation, local_ecs, target),
        proxy=proxy,
        elapsed=elapsed,
        records=AuditLog.read(audit),
    )
    assert broken == [], f"{cell.id}: {type(error).__name__ if error else 'ok'} {error or ''}"
