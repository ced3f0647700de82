"""``ecs-safe drain``: DRAINING, wait until no task is left, then deregister; a few at once.

With ``--no-deregister`` the instances are left registered and DRAINING once empty (the
``kubectl drain`` of ECS, for maintenance; ``ecs-safe activate`` puts them back).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, TypedDict

import typer

from ecs_safe._constants import (
    DEFAULT_CONCURRENCY,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STEADY_TIMEOUT,
    DEFAULT_TIMEOUT,
)
from ecs_safe._validation import check_positive_number, instance_id_of
from ecs_safe.budgets import DisruptionBudget
from ecs_safe.cli.attribution import with_selection
from ecs_safe.cli.commands.describe import describe_found
from ecs_safe.cli.execution import Connection, checked_inputs, cli_policy, execute
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import (
    AllowProtectedOpt,
    AuditLogOpt,
    AutoScalingGroupOpt,
    ClusterOpt,
    ConcurrencyOpt,
    DecrementDesiredCapacityOpt,
    DryRunOpt,
    EndpointOpt,
    FilterOpt,
    LogFormat,
    LogFormatOpt,
    OnTimeout,
    OnTimeoutOpt,
    OutputFormat,
    OutputOpt,
    PollIntervalOpt,
    ProfileOpt,
    RegionOpt,
    SelectableInstances,
    SelectAllOpt,
    StandaloneTasks,
    StandaloneTasksOpt,
    StatusOpt,
    SteadyTimeoutOpt,
    TaskEventsOpt,
    TerminateOpt,
    TerminationArgs,
    TimeoutOpt,
    VerboseOpt,
    termination_of,
)
from ecs_safe.cli.progress import ProgressDisplay
from ecs_safe.cli.reports import (
    BatchReport,
    Interrupted,
    Outcome,
    outcomes_of_batch,
)
from ecs_safe.cli.signals import stop_signals
from ecs_safe.cli.targets import Selectors, select
from ecs_safe.errors import EcsSafeError, InvalidInputError
from ecs_safe.policy import DisruptionBudgets

if TYPE_CHECKING:
    from ecs_safe._constants import OnTimeout as OnTimeoutValue
    from ecs_safe._constants import StandaloneTasks as StandaloneTasksValue
    from ecs_safe._progress import ProgressCallback
    from ecs_safe.client import EcsSafeClient
    from ecs_safe.steady import SteadyGate

__all__ = ["drain", "parse_budget", "run_drain"]

NoRoomCheckOpt = Annotated[
    bool,
    typer.Option(
        "--no-room-check",
        help="Drain even when the instances' service tasks have no room on the cluster's "
        "other ACTIVE instances (by default such a drain is refused before DRAINING).",
        envvar="ECS_SAFE_NO_ROOM_CHECK",
    ),
]
BudgetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--budget",
        help="A disruption budget, SERVICE=COUNT or SERVICE=PERCENT%% (SERVICE may be a glob: "
        "'web*=1', 'api=10%%'); refuse a drain that would take more of a service's tasks "
        "away at once, or drain a service that is degraded or mid-deployment. Repeatable.",
        metavar="SERVICE=N",
    ),
]


class _DrainArgs(TypedDict):
    """What `EcsSafeClient.drain_and_deregister` and `EcsSafeClient.drain_and_wait` share."""

    cluster: str | None
    timeout: float
    poll_interval: float
    on_timeout: OnTimeoutValue
    standalone_tasks: StandaloneTasksValue
    require_room: bool
    progress: ProgressCallback | None
    steady: SteadyGate


def parse_budget(text: str) -> DisruptionBudget:
    """``SERVICE=N`` or ``SERVICE=N%`` as a `DisruptionBudget`.

    Raises:
        InvalidInputError: not of that form (a usage error, exit 2).
    """
    pattern, sep, amount = text.rpartition("=")
    amount = amount.strip()
    if not sep or not pattern.strip() or not amount:
        raise InvalidInputError(
            f"--budget {text!r} is not SERVICE=N or SERVICE=N%; write e.g. --budget 'web*=1'"
        )
    value: int | str = int(amount) if amount.isdigit() else amount
    try:
        return DisruptionBudget(pattern.strip(), max_unavailable=value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"--budget {text!r}: {exc}") from exc


async def run_drain(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    timeout: float,  # noqa: ASYNC109 - handed to drain_and_deregister, which owns the deadline
    poll_interval: float,
    on_timeout: OnTimeout,
    standalone_tasks: StandaloneTasks,
    dry_run: bool,
    concurrency: int,
    deregister: bool = True,
    require_room: bool = True,
    steady_timeout: float = DEFAULT_STEADY_TIMEOUT,
    termination: TerminationArgs | None = None,
) -> BatchReport:
    """``ecs-safe drain``: `EcsSafeClient.drain_and_deregister` per instance, a few at once.

    With ``deregister=False`` (``--no-deregister``) it is `EcsSafeClient.drain_and_wait`
    instead: each instance is left registered and DRAINING once empty (``drained``).

    One call per instance rather than one fleet call: this way at most ``concurrency``
    instances are out of service at any moment, a rolling drain that never takes a fleet's
    capacity away at once, and every ``--on-timeout`` choice (``reactivate`` included) is
    available. Each instance gets its own deadline, its own verdict (exit 4 on timeout) and its
    own progress row.

    Every drain of the run passes one steady-state gate (`EcsSafeClient.steady_gate`, the
    gate `deregister_many` uses between its waves): an instance is set DRAINING only once
    the services earlier drains took tasks from are steady again. When ``steady_timeout``
    passes first, no new drain starts and the rest fail with `NotStartedError`
    ("not started", with the services' numbers).

    ``termination`` (``--terminate``) terminates each EC2 instance once its own deregistration
    is verified; protected instances are refused before DRAINING.
    """
    terminating = termination or termination_of(False, False, False)
    if not instances:
        # Every input named no instance (each gets its failed outcome from the selection).
        return BatchReport("drain", cluster, dry_run, [], deregister=deregister)
    if dry_run:
        return await _plan_drain(
            ecs,
            instances,
            cluster=cluster,
            standalone_tasks=standalone_tasks,
            concurrency=concurrency,
            deregister=deregister,
            require_room=require_room,
            termination=terminating,
        )
    limit = asyncio.Semaphore(concurrency)
    finished: dict[str, Outcome] = {}
    started: list[str] = []

    with ProgressDisplay("draining", total=len(instances)) as display, _signals() as received:
        steady = ecs.steady_gate(
            cluster=cluster,
            steady_timeout=steady_timeout,
            poll_interval=poll_interval,
            progress=display.callback,
        )

        # What both calls take, written once (`drain_and_deregister` takes --terminate too).
        shared = _DrainArgs(
            cluster=cluster,
            timeout=timeout,
            poll_interval=poll_interval,
            on_timeout=on_timeout.value,
            standalone_tasks=standalone_tasks.value,
            require_room=require_room,
            progress=display.callback,
            steady=steady,
        )

        async def one(ref: str) -> Outcome:
            async with limit:
                started.append(ref)
                try:
                    if deregister:
                        result = await ecs.drain_and_deregister(ref, **shared, **terminating)
                        outcome = Outcome.from_result(ref, result)
                    else:
                        outcome = Outcome.drained(ref, await ecs.drain_and_wait(ref, **shared))
                except EcsSafeError as exc:
                    outcome = Outcome.from_error(ref, exc)
                display.advance(ref)
                finished[ref] = outcome
                return outcome

        try:
            outcomes = await asyncio.gather(*(one(ref) for ref in instances))
        except asyncio.CancelledError:
            if not received:
                raise
            _uncancel()
        else:
            return BatchReport("drain", cluster, False, list(outcomes), deregister=deregister)
    name = received[0]
    return BatchReport(
        "drain",
        cluster,
        False,
        await _interrupted_outcomes(
            ecs, instances, cluster=cluster, finished=finished, started=started, name=name
        ),
        interrupted_by=name,
        deregister=deregister,
    )


@contextlib.contextmanager
def _signals() -> Iterator[list[str]]:
    """Turn the first SIGINT or SIGTERM into a cancellation of the current task.

    The drain then reports how far each instance got instead of dying mid-sentence; the list
    yielded receives the signal's name.
    """
    task = asyncio.current_task()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not received and task is not None:
            received.append(sig.name)
            task.cancel()

    with stop_signals(on_signal):
        yield received


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def _interrupted_outcomes(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    finished: dict[str, Outcome],
    started: list[str],
    name: str,
) -> list[Outcome]:
    """Each instance's state after a signal: its outcome, left DRAINING (or ACTIVE), not started."""
    cut = [ref for ref in started if ref not in finished]
    try:
        found, _missing = await describe_found(ecs, cut, cluster=cluster) if cut else ({}, [])
    except EcsSafeError:
        found = {}
    outcomes = []
    for ref in instances:
        if ref in finished:
            outcomes.append(finished[ref])
            continue
        if ref in cut:
            instance = found.get(instance_id_of(ref))
            state = instance.status if instance and instance.status else "in an unknown state"
            message = f"interrupted by {name} during its drain; left {state}"
            if state == "DRAINING":
                message += " (run ecs-safe drain again to carry on)"
        else:
            instance, message = None, f"not started: interrupted by {name} before its turn"
        outcomes.append(Outcome(ref, "failed", instance=instance, error=Interrupted(message)))
    return outcomes


async def _plan_drain(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    standalone_tasks: StandaloneTasks,
    concurrency: int,
    deregister: bool,
    require_room: bool,
    termination: TerminationArgs,
) -> BatchReport:
    """The plan of a drain, from reads only.

    Without the deregistration (``--no-deregister``) the pre-flight is the same one
    (`EcsSafeClient.drain_and_wait` runs it too); what would be deregistered is reported as
    ``would_drain``.

    `EcsSafeClient.deregister_many` with ``drain`` and ``dry_run`` runs the very pre-flight
    `EcsSafeClient.drain_and_deregister` runs before it sets DRAINING, with the describes
    batched across the fleet: the plan honours ``--standalone-tasks`` and the policy exactly as
    the drain would, and makes no mutating call.
    """
    with ProgressDisplay("planning", total=len(instances)) as display:
        batch = await ecs.deregister_many(
            instances,
            cluster=cluster,
            drain=True,
            dry_run=True,
            concurrency=concurrency,
            standalone_tasks=standalone_tasks.value,
            require_room=require_room,
            progress=display.callback,
            **termination,
        )
    outcomes = outcomes_of_batch(batch)
    if not deregister:
        outcomes = [
            replace(o, status="would_drain") if o.status == "would_deregister" else o
            for o in outcomes
        ]
    return BatchReport("drain", cluster, True, outcomes, deregister=deregister)


def drain(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: SelectableInstances = None,
    cluster: ClusterOpt = None,
    filter: FilterOpt = None,
    auto_scaling_group: AutoScalingGroupOpt = None,
    status: StatusOpt = None,
    select_all: SelectAllOpt = False,
    no_deregister: Annotated[
        bool,
        typer.Option(
            "--no-deregister",
            help="Drain and wait until empty, then leave the instances registered and "
            "DRAINING (maintenance; ecs-safe activate puts them back).",
        ),
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    poll_interval: PollIntervalOpt = DEFAULT_POLL_INTERVAL,
    on_timeout: OnTimeoutOpt = OnTimeout.RAISE,
    standalone_tasks: StandaloneTasksOpt = StandaloneTasks.REFUSE,
    dry_run: DryRunOpt = False,
    terminate: TerminateOpt = False,
    decrement_desired_capacity: DecrementDesiredCapacityOpt = False,
    allow_protected: AllowProtectedOpt = False,
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    steady_timeout: SteadyTimeoutOpt = DEFAULT_STEADY_TIMEOUT,
    no_room_check: NoRoomCheckOpt = False,
    budget: BudgetOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    audit_log: AuditLogOpt = None,
    task_events: TaskEventsOpt = None,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Drain container instances (DRAINING, wait until no task is left), then deregister them."""
    connection = Connection(region, endpoint_url, profile)
    selectors = Selectors(filter, status, auto_scaling_group, select_all)

    async def work() -> BatchReport:
        targets = checked_inputs(instances, cluster, selectors)
        # Checked here, not per instance, so that a bad value is one usage error (exit 2).
        check_positive_number(timeout, "--timeout")
        check_positive_number(poll_interval, "--poll-interval")
        check_positive_number(steady_timeout, "--steady-timeout")
        if no_deregister and on_timeout is OnTimeout.FORCE:
            raise InvalidInputError(
                "--on-timeout force deregisters with force, and --no-deregister leaves the "
                "instances registered: use --on-timeout raise or reactivate"
            )
        if no_deregister and terminate:
            raise InvalidInputError(
                "--terminate terminates after the deregistration, and --no-deregister leaves "
                "the instances registered: leave one of them out"
            )
        termination = termination_of(terminate, decrement_desired_capacity, allow_protected)
        budgets = [parse_budget(text) for text in budget or ()]
        policy = cli_policy()
        if budgets:
            policy = policy.with_rules(DisruptionBudgets(*budgets))
        async with connection.open(policy, audit_log=audit_log, task_events=task_events) as ecs:
            selection = await select(ecs, targets, selectors, cluster=cluster)
            report = await run_drain(
                ecs,
                selection.targets,
                cluster=cluster,
                timeout=timeout,
                poll_interval=poll_interval,
                on_timeout=on_timeout,
                standalone_tasks=standalone_tasks,
                dry_run=dry_run,
                concurrency=concurrency,
                deregister=not no_deregister,
                require_room=not no_room_check,
                steady_timeout=steady_timeout,
                termination=termination,
            )
            return with_selection(report, selection)

    with logging_configured(log_format, verbose):
        execute("drain", cluster, output, work)
