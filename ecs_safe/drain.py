"""Drain, then deregister: the ECS counterpart of ``kubectl drain``.

`EcsSafeClient.drain_and_deregister` runs these steps, and `EcsSafeClient.deregister_many` runs
them for a fleet (`ecs_safe.fleet`):

1. **Pre-flight** (`prepare`): describe the instance and list its tasks. Refuse *before*
   anything changes when the policy would refuse the instance even once drained (it is judged
   on a projection: DRAINING, no task left), and, with ``standalone_tasks="refuse"``, when a
   task no service manages is on it: draining never moves such a task. One
   `PolicyViolationError` names every blocker.
2. **Cordon** (`start_draining`): UpdateContainerInstancesState to DRAINING, 10 instances a
   call. ECS moves service tasks elsewhere (within each service's deployment limits) and
   places nothing new there. An instance that is already DRAINING (another tool, an earlier
   run) is carried on with.
3. **Wait** (`wait_and_deregister`): until no task on the instance is anything but STOPPED,
   judged by the task list (ListTasks + DescribeTasks), and the counters agree; the counters
   alone miss tasks that are DEACTIVATING or STOPPING (aws-cdk #13506). The client's one
   `ecs_safe._poller.Poller` looks at every draining instance in shared rounds paced to a read
   budget (``poll_interval`` is the longest wait between two); the wait ends at a hard
   deadline, and each look is reported as an ``ecs_safe.drain.progress`` event and to the
   ``progress`` callback.
4. **Deregister** without force, through the decision gate (`ecs_safe._gate.Gate`), on a
   fresh snapshot. At the deadline, ``on_timeout`` decides: raise (leave it DRAINING), reactivate
   (set it ACTIVE again, then raise) or force (deregister with force, if the policy allows).

When something fails after step 2, the instance stays DRAINING (safe: nothing new lands on it)
and the error says so in a note; calling `drain_and_deregister` again carries on from there.

The steps take the client's `Gate` (and, to cordon only, its `EcsCalls`; to wait, its
`Poller`), never the client.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict

from ecs_safe import _constants, _events, ownership
from ecs_safe._batching import TurnBatcher
from ecs_safe._calls import state_failure
from ecs_safe._constants import OnTimeout, StandaloneTasks
from ecs_safe._gate import Request, WaveMember
from ecs_safe._poller import INTERRUPTED, Look
from ecs_safe._progress import ProgressCallback, report
from ecs_safe._validation import (
    check_bool,
    check_choice,
    check_positive_number,
    cluster_name_of,
    instance_id_of,
)
from ecs_safe.errors import (
    ClientException,
    ContainerInstanceNotFoundError,
    DrainTimeoutError,
    EcsApiError,
    EcsSafeError,
    PolicyViolationError,
)
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.ownership import OtherDrainer
from ecs_safe.policy import Decision, Termination, Violation

if TYPE_CHECKING:
    from ecs_safe._calls import EcsCalls
    from ecs_safe._gate import Gate
    from ecs_safe._poller import Poller
    from ecs_safe.results import DeregistrationResult
    from ecs_safe.steady import SteadyGate
    from ecs_safe.termination import Terminator

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_TIMEOUT",
    "FINAL_LOOK_BUDGET",
    "MAX_POLL_INTERVAL",
    "POLL_BACKOFF",
    "STANDALONE_TASKS_RULE",
    "UPDATE_STATE_BATCH",
    "DrainKnobs",
    "DrainOptions",
    "DrainPlan",
    "DrainRun",
    "OnTimeout",
    "StandaloneTasks",
]

# The values below live in `ecs_safe._constants`; these names are kept for existing callers.
#: Seconds a drain may take, counted from the moment the instance is DRAINING.
DEFAULT_TIMEOUT: Final = _constants.DEFAULT_TIMEOUT
#: The longest wait, in seconds, between two looks at a draining instance (``poll_interval``).
DEFAULT_POLL_INTERVAL: Final = _constants.DEFAULT_POLL_INTERVAL
#: Unused since the drain poller (kept for existing callers): waits no longer back off.
POLL_BACKOFF: Final = _constants.POLL_BACKOFF
#: Unused since the drain poller (kept for existing callers).
MAX_POLL_INTERVAL: Final = _constants.MAX_POLL_INTERVAL
#: Unused since the deadline bounds the last look too (kept for existing callers).
FINAL_LOOK_BUDGET: Final = _constants.FINAL_LOOK_BUDGET
#: UpdateContainerInstancesState takes at most 10 instances a call.
UPDATE_STATE_BATCH: Final = _constants.UPDATE_STATE_BATCH
#: The `Violation.rule` of the refusal for standalone tasks (``standalone_tasks="refuse"``).
STANDALONE_TASKS_RULE = "standalone-tasks"


# ----------------------------------------------------------------------------- options


class DrainKnobs(TypedDict):
    """`DrainOptions`'s fields as keyword arguments, for the calls that pass them on as such.

    `EcsSafeClient.drain_and_deregister` and `EcsSafeClient.drain_and_wait` take them one by
    one, and hand them on as ``**knobs`` to the one helper both share (typed with ``Unpack``).
    """

    timeout: float
    poll_interval: float
    on_timeout: OnTimeout
    standalone_tasks: StandaloneTasks
    take_over: bool
    require_room: bool


@dataclass(frozen=True, slots=True)
class DrainOptions:
    """The knobs of one drain, validated once (`drain_and_deregister`'s keyword arguments).

    Args:
        timeout: seconds the instance may take to empty, counted from the moment it is
            DRAINING.
        poll_interval: the longest wait, in seconds, between two looks at the instance (the
            poller looks more often while a task is seen stopping, see `ecs_safe._poller`).
        on_timeout: ``"raise"``, ``"reactivate"`` or ``"force"``.
        standalone_tasks: ``"refuse"``, ``"wait"`` or ``"stop"``.
        take_over: act on an instance another ecs-safe run's mark holds, or that ECS managed
            draining is draining (refused otherwise, `ecs_safe.ownership`).
        require_room: judge, before DRAINING, whether the service tasks have room on the
            cluster's other ACTIVE instances (`ecs_safe.policy.RoomElsewhere`).

    Raises:
        InvalidInputError: a value is out of range or not one of the choices.
    """

    timeout: float = DEFAULT_TIMEOUT
    poll_interval: float = DEFAULT_POLL_INTERVAL
    on_timeout: OnTimeout = "raise"
    standalone_tasks: StandaloneTasks = "refuse"
    take_over: bool = False
    require_room: bool = True

    def __post_init__(self) -> None:
        checked = {
            "timeout": check_positive_number(self.timeout, "timeout"),
            "poll_interval": check_positive_number(self.poll_interval, "poll_interval"),
            "on_timeout": check_choice(self.on_timeout, "on_timeout", _constants.ON_TIMEOUT_VALUES),
            "standalone_tasks": check_choice(
                self.standalone_tasks, "standalone_tasks", _constants.STANDALONE_TASKS_VALUES
            ),
            "take_over": check_bool(self.take_over, "take_over"),
            "require_room": check_bool(self.require_room, "require_room"),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


# ----------------------------------------------------------------------------- cordon


def _log_draining(cluster: str | None, instance: ContainerInstance, *, already: bool) -> None:
    _events.logger.info(
        "ecs_safe.drain.started",
        cluster=cluster,
        **_events.instance_fields(instance),
        already_draining=already,
    )


async def _set_status(
    calls: EcsCalls,
    refs: Sequence[str],
    cluster: str | None,
    status: Literal["DRAINING", "ACTIVE"],
) -> list[ContainerInstance]:
    """Set ``refs`` to ``status`` (10 a call); each changed instance logged; failures raised."""
    update = await calls.set_state(refs, cluster, status, keep_going=False)
    for instance in update.updated.values():
        if status == "DRAINING":
            _log_draining(cluster, instance, already=False)
        else:
            _events.logger.info(
                "ecs_safe.drain.reactivated", cluster=cluster, **_events.instance_fields(instance)
            )
    if update.failures:
        raise state_failure(refs, update.updated, update.failures, cluster, status)
    return [update.updated[instance_id_of(ref)] for ref in refs]


async def _found(
    calls: EcsCalls, refs: Sequence[str], cluster: str | None
) -> dict[str, ContainerInstance]:
    # The instances ECS knows, by reference; the missing ones are left to the state update,
    # whose failures[] reports them as it always has (`state_failure`).
    answers = await calls.describe_instances(refs, cluster)
    # Bad input comes before any judgement: the describe taught the account, and an ARN of
    # another one is refused as such (InvalidInputError), not judged as someone else's drain.
    for ref in refs:
        calls.check_scope(ref)
    found = answers.found
    return {ref: found[key] for ref in refs if (key := instance_id_of(ref)) in found}


async def drain(
    calls: EcsCalls, refs: Sequence[str], cluster: str | None, *, take_over: bool = False
) -> list[ContainerInstance]:
    """`EcsSafeClient.drain` on validated arguments: mark the instances, set them DRAINING.

    Each instance ACTIVE (or DRAINING under this run's or a released mark, or with
    ``take_over``) is marked as this run's first (`ownership.claim`); one already DRAINING
    under someone else is set DRAINING again (harmless) but not marked.

    Raises:
        EcsApiError: an instance could not be marked (nothing was set DRAINING).
        PartialDrainError: ECS reported some instances in ``failures[]``.
    """
    found = await _found(calls, refs, cluster)
    run_id = calls.run_id
    mine = [r for r, i in found.items() if ownership.may_claim(i, run_id, take_over=take_over)]
    errors = await ownership.claim(calls, mine, cluster)
    if errors:
        raise next(iter(errors.values()))
    return await _set_status(calls, refs, cluster, "DRAINING")


async def reactivate(
    calls: EcsCalls, refs: Sequence[str], cluster: str | None, *, take_over: bool = False
) -> list[ContainerInstance]:
    """`EcsSafeClient.reactivate` on validated arguments: set instances ACTIVE again.

    The same call as the drain's ``on_timeout="reactivate"`` (UpdateContainerInstancesState,
    10 a call), each instance logged as ``ecs_safe.drain.reactivated``, then its ownership
    mark removed. Refused before any change when an instance is DRAINING under another run's
    mark or without a mark (someone else's drain), unless ``take_over``.

    Raises:
        PolicyViolationError: an instance is someone else's (rule ``ownership``), naming each.
        PartialDrainError: ECS reported some instances in ``failures[]``; the others were
            set ACTIVE (the error's ``drained`` holds them, as ECS returned them).
    """
    found = await _found(calls, refs, cluster)
    if not take_over:
        blocked = {
            ref: v
            for ref, instance in found.items()
            if (v := ownership.reactivation_blocker(ref, instance, calls.run_id)) is not None
        }
        if blocked:
            decision = Decision.refuse(*blocked.values())
            first = found[next(iter(blocked))]
            _events.log_refused(
                first,
                cluster=cluster,
                container_instance=next(iter(blocked)),
                decision=decision,
                forced=False,
                dry_run=False,
            )
            raise PolicyViolationError(
                f"refused to set {len(blocked)} container instance(s) ACTIVE again: "
                + "; ".join(v.message for v in blocked.values()),
                decision=decision,
                container_instance=first,
            )
    return await _reactivate_found(calls, refs, cluster, found)


async def _reactivate_found(
    calls: EcsCalls,
    refs: Sequence[str],
    cluster: str | None,
    found: dict[str, ContainerInstance],
) -> list[ContainerInstance]:
    # ACTIVE first, then the marks go: a mark left on an ACTIVE instance means nothing.
    instances = await _set_status(calls, refs, cluster, "ACTIVE")
    marks = {
        ref: value
        for ref, instance in found.items()
        if (value := ownership.claim_of(instance, calls.run_id).value) is not None
    }
    await ownership.unclaim(calls, marks, cluster)
    return instances


# ----------------------------------------------------------------------------- pre-flight


@dataclass(frozen=True, slots=True)
class DrainPlan:
    """What the pre-flight of one drain found, and the decision the instance passed.

    Attributes:
        ref: the container instance ID or ARN, as given.
        cluster: the cluster, as given.
        snapshot: the instance as described before anything changed.
        tasks: the tasks (not STOPPED) on it then: what the drain will move, stop or wait for.
        decision: the policy's decision on the drained projection of the instance.
        drainer: who else is draining it, if anyone (`ecs_safe.ownership.survey`): named in
            the plan, the logs and the outcome.
        take_over: act even over another run's mark or managed draining.
        termination: with ``terminate=True``, how the EC2 instance is terminated once
            deregistered, as the pre-flight found it (`ecs_safe.termination`).
    """

    ref: str
    cluster: str | None
    snapshot: ContainerInstance
    tasks: list[Task]
    decision: Decision
    drainer: OtherDrainer | None = None
    take_over: bool = False
    termination: Termination | None = None

    @property
    def notes(self) -> list[str]:
        """What the plan and the outcome say beside the decision (who else drains it)."""
        return [self.drainer.message] if self.drainer is not None else []

    def noted(self, result: DeregistrationResult) -> DeregistrationResult:
        """``result`` with this plan's `notes` (unchanged when there are none)."""
        if not self.notes:
            return result
        return result.model_copy(update={"notes": [*result.notes, *self.notes]})

    @property
    def label(self) -> str:
        """The instance's ARN when known (for events), else the reference as given."""
        return self.snapshot.container_instance_arn or self.ref

    def request(self, *, force: bool = False) -> Request:
        """What the gate is asked for this instance: a real deregistration, forced or not."""
        return Request(
            self.ref, self.cluster, force=force, dry_run=False, termination=self.termination
        )


def require_drainable(ref: str, cluster: str | None, snapshot: ContainerInstance) -> None:
    """Refuse an instance ECS cannot drain: only ACTIVE (or already DRAINING) ones qualify."""
    status = snapshot.status
    if status in ("ACTIVE", "DRAINING"):
        return
    if status == "INACTIVE":
        raise ContainerInstanceNotFoundError(
            f"container instance {ref} is INACTIVE in cluster {cluster_name_of(cluster)}: "
            "it has already been deregistered",
            container_instances=[ref],
            operation="DescribeContainerInstances",
        )
    raise ClientException(
        f"container instance {ref} is {status or 'of unknown status'}; ECS sets DRAINING "
        "only from ACTIVE. Wait until it is ACTIVE, or deregister it directly",
        code="InvalidInstanceState",
        operation="DescribeContainerInstances",
    )


def drained_projection(snapshot: ContainerInstance) -> ContainerInstance:
    """The instance as it will look once drained: DRAINING, nothing running or pending."""
    return snapshot.model_copy(
        update={"status": "DRAINING", "running_tasks_count": 0, "pending_tasks_count": 0}
    )


def standalone_violation(ref: str, standalone: Sequence[Task]) -> Violation:
    """The refusal naming every standalone task (``standalone_tasks="refuse"``)."""
    arns = ", ".join(task.task_arn or "(task without ARN)" for task in standalone)
    return Violation(
        STANDALONE_TASKS_RULE,
        f"{len(standalone)} task(s) on container instance {ref} belong to no service, and "
        f"draining never moves or stops them: {arns}. Pass standalone_tasks='wait' to wait "
        "for them to finish or standalone_tasks='stop' to stop them",
    )


async def prepare(
    gate: Gate,
    ref: str,
    cluster: str | None,
    *,
    standalone_tasks: StandaloneTasks,
    dry_run: bool = False,
    snapshot: ContainerInstance | None = None,
    take_over: bool = False,
    drainers: Mapping[str, OtherDrainer] | None = None,
    terminator: Terminator | None = None,
    terminations: Mapping[str, Termination] | None = None,
    tasks: Sequence[Task] | None = None,
) -> DrainPlan:
    """Pre-flight one drain; refuse (raise) before any mutating call.

    ``snapshot``, when the caller already described the instance (a fleet run describes
    100 per call), saves describing it again; ``drainers``, when the caller already surveyed
    the other drainers of a whole wave (`ecs_safe.ownership.survey`), saves surveying again;
    ``tasks``, when the caller already listed the instance's tasks (a fleet run lists the
    cluster's once, `Gate.tasks_of_many`), saves listing them again.
    Another run's mark and ECS managed draining refuse unless ``take_over``. With
    ``terminator`` (``terminate=True``), the termination is surveyed too (``terminations``,
    when the caller surveyed a whole wave, saves that) and judged with the rest: a protected
    instance is refused now, before DRAINING.

    Raises:
        PolicyViolationError: the policy would refuse the drained instance, or standalone
            tasks are on it (with ``"refuse"``).
        EcsApiError: a pre-flight call failed (its own typed error; nothing was changed).
        ContainerInstanceNotFoundError: the instance is missing or INACTIVE.
        ClientException: the instance is in a state ECS cannot drain from.
    """
    request = Request(ref, cluster, force=False, dry_run=dry_run)
    if snapshot is None:
        snapshot = await gate.snapshot(request)
    try:
        require_drainable(ref, cluster, snapshot)
    except EcsSafeError as exc:
        _events.log_failed(exc, cluster=cluster, container_instance=ref)
        raise
    if terminator is not None:
        if terminations is None:
            request = await terminator.request(gate, request, snapshot)
        else:
            request = replace(request, termination=terminations[ref])
    if drainers is None:
        drainers = await ownership.survey(gate.calls, {ref: snapshot}, cluster, plan=dry_run)
    drainer = drainers.get(ref)
    if tasks is None:
        # A real drain lists only the tasks it will move, stop or wait for (desired RUNNING):
        # one already told to stop (STOPPING, DEACTIVATING) leaves by itself, is refused by
        # nothing here, and is seen by the wait's own listings, which take both desired
        # statuses. A plan lists both, to name them.
        tasks = await gate.tasks(request, told_to_stop=dry_run)
    tasks = list(tasks)
    # Only tasks that draining would leave running: a standalone task already told to stop
    # ends by itself (the wait sees it go), whichever listing the plan came from.
    standalone = [t for t in tasks if t.kind == "standalone" and t.desired_status != "STOPPED"]
    blockers: list[Violation] = []
    if standalone and standalone_tasks == "refuse":
        blockers.append(standalone_violation(ref, standalone))
    if drainer is not None:
        _events.logger.warning(
            "ecs_safe.drain.other_drainer",
            cluster=cluster,
            container_instance=ref,
            drainer=drainer.kind,
            message=drainer.message,
            take_over=take_over,
        )
        if drainer.blocks and not take_over:
            blockers.append(drainer.violation())
    decision = gate.judge_drain(request, drained_projection(snapshot), blockers=blockers)
    if not decision.allowed:
        raise gate.refuse(request, snapshot, decision, tasks)
    return DrainPlan(
        ref, cluster, snapshot, tasks, decision, drainer, take_over, request.termination
    )


async def judge_wave(
    gate: Gate,
    plans: Sequence[DrainPlan],
    options: DrainOptions,
    *,
    dry_run: bool = False,
    in_run: Sequence[str] = (),
) -> list[DrainPlan | EcsSafeError]:
    """`Gate.judge_wave` on prepared drains: each plan with its wave decision, or its error.

    A refusal is a `PolicyViolationError` (logged); a failed read fails every plan with its
    typed error. Nothing is set DRAINING here.
    """
    if not plans:
        return []
    members = [
        WaveMember(replace(p.request(), dry_run=dry_run), p.snapshot, p.tasks) for p in plans
    ]
    try:
        decisions = await gate.judge_wave(
            members, plans[0].cluster, require_room=options.require_room, in_run=in_run
        )
    except EcsApiError as exc:
        for member in members:
            gate.preflight_failed(member.request, exc)
        return [exc] * len(plans)
    judged: list[DrainPlan | EcsSafeError] = []
    for plan, member in zip(plans, members, strict=True):
        wave = decisions.get(instance_id_of(plan.ref))
        decision = plan.decision if wave is None else plan.decision.merged(wave)
        if decision.allowed:
            judged.append(replace(plan, decision=decision))
        else:
            judged.append(gate.refuse(member.request, plan.snapshot, decision, plan.tasks))
    return judged


async def _judged(gate: Gate, plan: DrainPlan, options: DrainOptions) -> DrainPlan:
    (judged,) = await judge_wave(gate, [plan], options)
    if isinstance(judged, EcsSafeError):
        raise judged
    return judged


async def start_draining(
    gate: Gate, plans: Sequence[DrainPlan], cluster: str | None
) -> dict[str, EcsSafeError]:
    """Set the ACTIVE instances of ``plans`` DRAINING (10 a call); carry on with DRAINING ones.

    Returns the error of every instance that could not be set DRAINING, keyed by instance ID,
    each logged as ``ecs_safe.drain.failed``; one failed call fails only its own batch.
    """
    run_id = gate.calls.run_id
    # Marked first, DRAINING after (`ecs_safe.ownership`: the order that survives a crash).
    # An instance that could not be marked is not set DRAINING.
    claimed = [p for p in plans if ownership.may_claim(p.snapshot, run_id, take_over=p.take_over)]
    errors: dict[str, EcsSafeError] = await ownership.claim(
        gate.calls, [p.ref for p in claimed], cluster
    )
    active = [
        plan
        for plan in plans
        if plan.snapshot.status == "ACTIVE" and instance_id_of(plan.ref) not in errors
    ]
    for plan in plans:
        if plan.snapshot.status == "DRAINING":
            _log_draining(cluster, plan.snapshot, already=True)
    update = await gate.calls.set_state(
        [plan.ref for plan in active], cluster, "DRAINING", keep_going=True
    )
    errors.update(update.errors)
    for plan in plans:
        key = instance_id_of(plan.ref)
        if key in update.failures:
            errors[key] = state_failure([plan.ref], {}, update.failures, cluster, "DRAINING")
        elif key in update.updated:
            _log_draining(cluster, update.updated[key], already=False)
        if key in errors:
            # None: it may be DRAINING (the error says so); False: checked, it is not.
            left = None if key in update.unknown else False
            _log_drain_failed(plan, errors[key], left_draining=left)
    return errors


# ----------------------------------------------------------------------------- wait


async def _stop_standalone(
    calls: EcsCalls, plan: DrainPlan, tasks: Sequence[Task], stopped: set[str]
) -> None:
    for task in tasks:
        arn = task.task_arn
        if task.kind != "standalone" or not arn or arn in stopped:
            continue
        await calls.stop_task(
            plan.cluster, arn, f"ecs-safe: draining container instance {plan.label}"
        )
        # Stopped once only: StopTask on a stopping task is noise (and moto counts it twice).
        stopped.add(arn)
        _events.logger.info(
            "ecs_safe.drain.task_stopped", container_instance_arn=plan.label, task_arn=arn
        )


async def wait_and_deregister(
    gate: Gate,
    poller: Poller,
    plan: DrainPlan,
    options: DrainOptions,
    progress: ProgressCallback | None,
) -> DeregistrationResult:
    """Wait for the DRAINING instance of ``plan`` to empty, then deregister it.

    Every failure is logged as exactly one outcome event: ``ecs_safe.drain.failed`` or
    ``ecs_safe.drain.timed_out`` while draining, the deregistration's own event after.

    Raises:
        DrainTimeoutError: tasks were left at the deadline (``on_timeout`` raise/reactivate).
        PolicyViolationError: the final check refused (for example a forced deregistration
            the policy forbids); the instance is left DRAINING.
        ContainerInstanceNotFoundError: someone else deregistered it during the drain.
        ClientException: someone set it ACTIVE again during the drain (``DrainInterrupted``).
        EcsApiError: a call failed after retries; the instance is left DRAINING.
    """
    poll, elapsed, cut = await _wait_until_empty(gate.calls, poller, plan, options, progress)
    try:
        if poll.empty and not cut:
            _require_not_taken(gate, plan, poll.instance)
            return await gate.deregister(plan.request(), poll.instance, tasks=poll.tasks)
        return await _on_timeout(gate, plan, poll, options, elapsed)
    except DrainTimeoutError:
        raise  # logged as ecs_safe.drain.timed_out; its message says where the instance is
    except EcsSafeError as exc:  # logged by the deregistration itself
        exc.add_note(_left_draining(plan))
        raise


async def wait_drained(
    gate: Gate,
    poller: Poller,
    plan: DrainPlan,
    options: DrainOptions,
    progress: ProgressCallback | None,
) -> ContainerInstance:
    """Wait for the DRAINING instance of ``plan`` to empty, and leave it registered.

    The same wait as `wait_and_deregister`, without the deregistration: for maintenance, the
    instance stays DRAINING (set it ACTIVE again with `reactivate` when done). Logged as
    ``ecs_safe.drain.drained`` when empty.

    Raises:
        DrainTimeoutError: tasks were left at the deadline (``on_timeout`` raise/reactivate).
        ContainerInstanceNotFoundError: someone else deregistered it during the drain.
        ClientException: someone set it ACTIVE again during the drain (``DrainInterrupted``).
        EcsApiError: a call failed after retries; the instance is left DRAINING.
    """
    poll, elapsed, cut = await _wait_until_empty(gate.calls, poller, plan, options, progress)
    if poll.empty and not cut:
        if ownership.claim_of(poll.instance, gate.calls.run_id).holder == "ours":
            # The drain is done and the instance stays DRAINING for the operator: released,
            # so that `ecs-safe activate` or a second drain from another run carries on
            # without --take-over (a maintenance drain is not a run in flight).
            await ownership.release(gate.calls, [plan.ref], plan.cluster)
        _events.logger.info(
            "ecs_safe.drain.drained",
            cluster=plan.cluster,
            **_events.instance_fields(poll.instance),
            elapsed_s=round(elapsed, 3),
        )
        return poll.instance
    # Only "raise" and "reactivate" are offered here; both raise DrainTimeoutError.
    await _on_timeout(gate, plan, poll, options, elapsed)
    raise AssertionError("unreachable: _on_timeout raises unless on_timeout='force'")


async def _wait_until_empty(
    calls: EcsCalls,
    poller: Poller,
    plan: DrainPlan,
    options: DrainOptions,
    progress: ProgressCallback | None,
) -> tuple[Look, float, bool]:
    """Await the poller's looks at the instance until it is empty or the deadline passes.

    Returns the last look, the seconds since the wait began, and whether the deadline ended
    the wait. The deadline is hard: it bounds everything inside the wait, the reads of a round
    in flight included (the poller cuts a round that no drain waits for any more), so the
    error comes at ``timeout``. Only a StopTask (``standalone_tasks="stop"``) is not cut: it
    is a mutating call, and one abandoned mid-flight would leave its outcome unknown; its own
    timeouts bound it.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + options.timeout
    stopped: set[str] = set()
    # Until a round looks, what the pre-flight saw (the instance is DRAINING by now).
    poll = Look(plan.snapshot.model_copy(update={"status": "DRAINING"}), plan.tasks, listed=False)
    watch = poller.watch(plan.ref, plan.cluster, plan.tasks, max_interval=options.poll_interval)
    try:
        while True:
            bound = asyncio.timeout_at(deadline)
            try:
                async with bound:
                    fresh = await watch.next()
            except TimeoutError:
                if not bound.expired():
                    raise
                return poll, loop.time() - started, True
            poll = fresh
            if options.standalone_tasks == "stop":
                await _stop_standalone(calls, plan, poll.tasks, stopped)
            elapsed = loop.time() - started
            await report(
                progress, "ecs_safe.drain.progress", **_progress_fields(plan, poll, elapsed)
            )
            if poll.empty:
                return poll, loop.time() - started, False
    except asyncio.CancelledError:
        _events.logger.warning(
            "ecs_safe.drain.cancelled",
            container_instance_arn=plan.label,
            elapsed_s=round(loop.time() - started, 3),
            left_draining=True,
        )
        raise
    except EcsSafeError as exc:
        # Deregistered or reactivated by someone else: no longer DRAINING, the error says why.
        taken = isinstance(exc, ContainerInstanceNotFoundError) or exc.code == INTERRUPTED
        if not taken:
            exc.add_note(_left_draining(plan))
        _log_drain_failed(plan, exc, left_draining=not taken)
        raise
    finally:
        watch.close()


def _require_not_taken(gate: Gate, plan: DrainPlan, instance: ContainerInstance) -> None:
    """Refuse to deregister an instance another run has marked since this one began.

    Another run takes over only when told to (``take_over=True``); from then on the instance
    is that run's, and this one must neither deregister nor reactivate it.
    """
    mark = ownership.claim_of(instance, gate.calls.run_id)
    if mark.holder != "run":
        return
    raise ClientException(
        f"container instance {plan.ref} was taken over by ecs-safe run {mark.run_id} during "
        "the drain; this run leaves it to that one",
        code="DrainTakenOver",
        operation="DescribeContainerInstances",
    )


def _left_draining(plan: DrainPlan) -> str:
    return (
        f"container instance {plan.label} was left DRAINING; set it ACTIVE again, or call "
        "drain_and_deregister again (it carries on with a DRAINING instance)"
    )


def _log_drain_failed(plan: DrainPlan, exc: EcsSafeError, *, left_draining: bool | None) -> None:
    _events.logger.error(
        "ecs_safe.drain.failed",
        cluster=plan.cluster,
        container_instance_arn=plan.label,
        error_code=exc.code,
        request_id=getattr(exc, "request_id", None),
        left_draining=left_draining,
        error=str(exc),
    )


def _progress_fields(plan: DrainPlan, poll: Look, elapsed: float) -> dict[str, Any]:
    return {
        "container_instance_arn": plan.label,
        "remaining_tasks": len(poll.tasks),
        "elapsed_s": round(elapsed, 3),
        "status": poll.instance.status,
        "running_tasks_count": poll.instance.running_tasks_count,
        "pending_tasks_count": poll.instance.pending_tasks_count,
        "remaining_task_arns": [task.task_arn for task in poll.tasks],
    }


async def _on_timeout(
    gate: Gate, plan: DrainPlan, poll: Look, options: DrainOptions, elapsed: float
) -> DeregistrationResult:
    fields = {
        "container_instance_arn": plan.label,
        "remaining_tasks": len(poll.tasks),
        "remaining_task_arns": [task.task_arn for task in poll.tasks],
        "elapsed_s": round(elapsed, 3),
        "on_timeout": options.on_timeout,
    }
    mark = ownership.claim_of(poll.instance, gate.calls.run_id)
    if options.on_timeout == "force":
        # Not a timed_out outcome: the forced deregistration logs the outcome.
        _events.logger.warning("ecs_safe.drain.forcing", **fields)
        _require_not_taken(gate, plan, poll.instance)
        # Orphans what is left; the policy (e.g. ProtectStandaloneTasks) has the last word.
        return await gate.deregister(plan.request(force=True), poll.instance, tasks=poll.tasks)
    _events.logger.warning("ecs_safe.drain.timed_out", **fields)
    left = len(poll.tasks) or max(poll.instance.running_tasks_count or 0, 0)
    message = (
        f"container instance {plan.ref} still had {left} task(s) after {elapsed:.1f}s "
        f"of draining (timeout {options.timeout:g}s): "
        f"{', '.join(t.task_arn or '?' for t in poll.tasks[:10])}"
    )
    if options.on_timeout == "raise":
        if mark.holder == "ours":
            # Left DRAINING for whoever comes next: released, so a later run carries on.
            await ownership.release(gate.calls, [plan.ref], plan.cluster)
        raise DrainTimeoutError(
            message + "; it is left DRAINING (set it ACTIVE again, or call "
            "drain_and_deregister again, which carries on)",
            container_instance=poll.instance,
            remaining_tasks=poll.tasks,
        )
    if mark.holder != "ours":
        # Only what this run marked is rolled back: someone else's drain stays theirs.
        whose = f"ecs-safe run {mark.run_id}'s" if mark.holder == "run" else "someone else's drain"
        raise DrainTimeoutError(
            message + f"; it was not set ACTIVE again: it is {whose}, not this run's "
            f"({plan.drainer.message if plan.drainer else 'it carries no mark of this run'})",
            container_instance=poll.instance,
            remaining_tasks=poll.tasks,
        )
    try:
        await _reactivate_found(gate.calls, [plan.ref], plan.cluster, {plan.ref: poll.instance})
    except EcsSafeError as exc:
        raise DrainTimeoutError(
            message + f"; setting it ACTIVE again failed ({exc}), so it is still DRAINING",
            container_instance=poll.instance,
            remaining_tasks=poll.tasks,
        ) from exc
    raise DrainTimeoutError(
        message + "; it was set ACTIVE again",
        container_instance=poll.instance,
        remaining_tasks=poll.tasks,
    )


@dataclass
class DrainRun:
    """Where each drain of a run stands, for the event logged when the run is cancelled.

    A cancelled drain (Ctrl-C, an ``asyncio.timeout`` around it) must say what it left:
    `interrupted` logs one ``ecs_safe.drain.interrupted`` event naming every instance left
    DRAINING, those whose DRAINING call was in flight (``maybe_draining``), what had been
    deregistered, what had failed, and what was never started. Keys are instance labels
    (ARNs when known).
    """

    cluster: str | None
    pending: list[str] = field(default_factory=list)
    maybe_draining: list[str] = field(default_factory=list)
    draining: list[str] = field(default_factory=list)
    deregistered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # The drains waiting to be set DRAINING together (`_cordon`), made with the first.
    _cordons: TurnBatcher[DrainPlan, EcsSafeError | None] | None = field(default=None, repr=False)

    def _move(self, label: str, to: list[str]) -> None:
        for where in (self.pending, self.maybe_draining, self.draining):
            if label in where:
                where.remove(label)
        to.append(label)

    def interrupted(self) -> None:
        """Log ``ecs_safe.drain.interrupted``: the state of every instance of the run."""
        _events.logger.warning(
            "ecs_safe.drain.interrupted",
            cluster=self.cluster,
            left_draining=list(self.draining),
            maybe_draining=list(self.maybe_draining),
            deregistered=list(self.deregistered),
            failed=list(self.failed),
            not_started=list(self.pending),
        )

    async def _cordon(self, gate: Gate, plan: DrainPlan) -> None:
        """Set ``plan``'s instance DRAINING, in one call with the drains starting with it.

        A fleet starting a thousand drains at once sends 100 UpdateContainerInstancesState
        calls of 10 (`start_draining`), not a thousand of one: the drains that reach this point
        in the same turn of the event loop are collected, and one task sends them. That task
        is not cancelled with a waiter: a mutating call is never abandoned mid-flight.

        Raises:
            EcsSafeError: the instance could not be set DRAINING.
        """
        if self._cordons is None:
            self._cordons = TurnBatcher(functools.partial(self._send_cordons, gate))
        failure = await self._cordons.submit(plan)
        if failure is not None:
            raise failure

    async def _send_cordons(self, gate: Gate, plans: list[DrainPlan]) -> list[EcsSafeError | None]:
        errors = await start_draining(gate, plans, self.cluster)
        return [errors.get(instance_id_of(plan.ref)) for plan in plans]

    async def drain(
        self,
        gate: Gate,
        poller: Poller,
        plan: DrainPlan,
        options: DrainOptions,
        progress: ProgressCallback | None,
        *,
        terminator: Terminator | None = None,
    ) -> DeregistrationResult:
        """Cordon ``plan``'s instance, wait, deregister (`wait_and_deregister`), tracked.

        With ``terminator`` and a plan that terminates, the EC2 instance is terminated once
        the deregistration is verified (`Terminator.finish`).

        Raises:
            EcsSafeError: the instance could not be set DRAINING, or the wait or the
                deregistration failed (as `wait_and_deregister`).
            TerminationError: deregistered, but not terminated.
        """
        label = plan.label
        self._move(label, self.maybe_draining)
        try:
            await self._cordon(gate, plan)
            self._move(label, self.draining)
            result = plan.noted(await wait_and_deregister(gate, poller, plan, options, progress))
        except EcsSafeError:
            self._move(label, self.failed)
            raise
        self._move(label, self.deregistered)
        if terminator is None:
            return result
        return await terminator.finish(gate.calls, plan.request(), result)


async def drain_and_deregister(
    gate: Gate,
    ref: str,
    cluster: str | None,
    options: DrainOptions,
    progress: ProgressCallback | None,
    *,
    poller: Poller,
    steady: SteadyGate | None = None,
    terminator: Terminator | None = None,
) -> DeregistrationResult:
    """`EcsSafeClient.drain_and_deregister` on validated arguments: pre-flight, cordon, wait.

    With ``terminator``, the EC2 instance's termination is judged in the pre-flight and done
    once the deregistration is verified (`ecs_safe.termination`).

    With ``steady`` (a run's `SteadyGate`), nothing starts until the gate admits the instance;
    the pre-flight comes after, on the services as the gate let them be (`NotStartedError`
    when the gate has closed).

    Cancelled, it logs ``ecs_safe.drain.interrupted`` (`DrainRun.interrupted`), then the
    cancellation goes on.
    """
    run = DrainRun(cluster, pending=[ref])
    try:
        if steady is not None:
            # Before the pre-flight: it then judges the services as the gate let them be.
            await steady.admit(ref, ())
        plan = await prepare(
            gate,
            ref,
            cluster,
            standalone_tasks=options.standalone_tasks,
            take_over=options.take_over,
            terminator=terminator,
        )
        plan = await _judged(gate, plan, options)
        run.pending = [plan.label]
        return await run.drain(gate, poller, plan, options, progress, terminator=terminator)
    except asyncio.CancelledError:
        run.interrupted()
        raise


async def drain_and_wait(
    gate: Gate,
    ref: str,
    cluster: str | None,
    options: DrainOptions,
    progress: ProgressCallback | None,
    *,
    poller: Poller,
    steady: SteadyGate | None = None,
) -> ContainerInstance:
    """`EcsSafeClient.drain_and_wait` on validated arguments: pre-flight, cordon, wait.

    The steps of `drain_and_deregister` but the last: the instance is left registered (and
    DRAINING). ``steady`` as there.
    """
    if steady is not None:
        await steady.admit(ref, ())
    plan = await prepare(
        gate, ref, cluster, standalone_tasks=options.standalone_tasks, take_over=options.take_over
    )
    plan = await _judged(gate, plan, options)
    errors = await start_draining(gate, [plan], cluster)
    if errors:
        raise next(iter(errors.values()))
    return await wait_drained(gate, poller, plan, options, progress)
