"""``ecs-safe replace``: replace every instance of an Auto Scaling group, wave by wave.

``--output json`` writes one document::

    {"schema_version": 1, "command": "replace", "cluster": str | null, "dry_run": bool,
     "exit_code": int, "error": null | ERROR, "group": str, "run_id": str,
     "status": "planned" | "replaced" | "stopped", "resumed": bool,
     "saved_sizes": SIZES, "surge_sizes": SIZES | null, "restored": bool,
     "already_replaced": [str], "unregistered": [str],
     "waves": [{"index": int, "instance_ids": [str], "container_instances": [str],
                "decrement_desired_capacity": bool, "statuses": [str],
                "errors": [ERROR | null], "terminated": [str], "status": str}]}

where ``SIZES`` is ``{"min_size", "max_size", "desired_capacity"}``. Exit codes: 0 replaced
(or a plan with no refusal), 2 bad usage (also: the audit log shows an unfinished replacement
of the group, which must be resumed), 3 refused by the policy (a wave of the plan, or the wave
that stopped the run), 4 a drain timed out, 1 anything else that stopped the run (the group
not back at capacity in time, an API error).
"""

from __future__ import annotations

from typing import Annotated

import typer

from ecs_safe._constants import (
    DEFAULT_CAPACITY_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_STEADY_TIMEOUT,
    DEFAULT_TIMEOUT,
    DEFAULT_WAVE_SIZE,
)
from ecs_safe._validation import check_positive_number
from ecs_safe.cli.commands.drain import BudgetOpt, NoRoomCheckOpt, parse_budget
from ecs_safe.cli.execution import Connection, cli_policy, execute
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import (
    AllowProtectedOpt,
    AuditLogOpt,
    ClusterOpt,
    DryRunOpt,
    EndpointOpt,
    LogFormat,
    LogFormatOpt,
    OutputFormat,
    OutputOpt,
    PollIntervalOpt,
    ProfileOpt,
    RegionOpt,
    StandaloneTasks,
    StandaloneTasksOpt,
    SteadyTimeoutOpt,
    TaskEventsOpt,
    TimeoutOpt,
    VerboseOpt,
)
from ecs_safe.cli.progress import ProgressDisplay
from ecs_safe.cli.replacing import ReplaceReport
from ecs_safe.errors import InvalidInputError
from ecs_safe.policy import DisruptionBudgets

__all__ = ["replace"]


def replace(  # noqa: PLR0917 - typer maps each option to a parameter
    auto_scaling_group: Annotated[
        str,
        typer.Option(
            "--auto-scaling-group",
            help="The Auto Scaling group whose instances are replaced.",
            metavar="NAME",
        ),
    ],
    cluster: ClusterOpt = None,
    wave_size: Annotated[
        int,
        typer.Option(
            "--wave-size",
            min=1,
            help="Old instances drained, deregistered and terminated at once.",
        ),
    ] = DEFAULT_WAVE_SIZE,
    surge: Annotated[
        bool,
        typer.Option(
            "--surge",
            help="First raise desired capacity by one wave (and max if needed) and wait for "
            "the new instances to be ACTIVE in the cluster; the last wave gives it back.",
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Carry on the replacement run RUN_ID left unfinished (killed, stopped), "
            "from --audit-log: what it did is never done again.",
            metavar="RUN_ID",
        ),
    ] = None,
    capacity_timeout: Annotated[
        float,
        typer.Option(
            "--capacity-timeout",
            help="Seconds to wait, each time, for the group to be back at capacity (new "
            "instances InService and ACTIVE in the cluster); then the run stops.",
        ),
    ] = DEFAULT_CAPACITY_TIMEOUT,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    poll_interval: PollIntervalOpt = DEFAULT_POLL_INTERVAL,
    standalone_tasks: StandaloneTasksOpt = StandaloneTasks.REFUSE,
    steady_timeout: SteadyTimeoutOpt = DEFAULT_STEADY_TIMEOUT,
    no_room_check: NoRoomCheckOpt = False,
    budget: BudgetOpt = None,
    allow_protected: AllowProtectedOpt = False,
    dry_run: DryRunOpt = False,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    audit_log: AuditLogOpt = None,
    task_events: TaskEventsOpt = None,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Replace a group's instances in waves (drain, deregister, terminate), then restore sizes."""
    connection = Connection(
        region, endpoint_url, profile, client_kwargs={"run_id": resume} if resume else {}
    )

    async def work() -> ReplaceReport:
        check_positive_number(capacity_timeout, "--capacity-timeout")
        check_positive_number(timeout, "--timeout")
        check_positive_number(poll_interval, "--poll-interval")
        check_positive_number(steady_timeout, "--steady-timeout")
        if audit_log is None and not dry_run:
            raise InvalidInputError(
                "replace needs --audit-log PATH (or ECS_SAFE_AUDIT_LOG): a replacement is "
                "resumed from its audit log, and one without could not be"
            )
        # The budgets rule always: with no --budget, each service's own ECS limits and
        # health still refuse a wave that would break them.
        policy = cli_policy().with_rules(
            DisruptionBudgets(*(parse_budget(text) for text in budget or ()))
        )
        async with connection.open(policy, audit_log=audit_log, task_events=task_events) as ecs:
            with ProgressDisplay("replacing", total=0) as shown:
                result = await ecs.replace_auto_scaling_group(
                    auto_scaling_group,
                    cluster=cluster,
                    wave_size=wave_size,
                    surge=surge,
                    dry_run=dry_run,
                    resume=resume is not None,
                    capacity_timeout=capacity_timeout,
                    timeout=timeout,
                    poll_interval=poll_interval,
                    standalone_tasks=standalone_tasks.value,
                    require_room=not no_room_check,
                    steady_timeout=steady_timeout,
                    allow_protected=allow_protected,
                    progress=shown.callback,
                )
        return ReplaceReport(result)

    with logging_configured(log_format, verbose):
        execute("replace", cluster, output, work)
