"""The options and arguments the commands share, as ``Annotated`` types, and their value sets.

The commands take their defaults from `ecs_safe._constants` (a leaf module), so the help shows
the library's real defaults without importing the library's heavy parts.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, TypedDict

import typer

from ecs_safe.errors import InvalidInputError

__all__ = [
    "AllowProtectedOpt",
    "AuditLogOpt",
    "AutoScalingGroupOpt",
    "ClusterOpt",
    "ConcurrencyOpt",
    "DecrementDesiredCapacityOpt",
    "DryRunOpt",
    "EndpointOpt",
    "FilterOpt",
    "Instances",
    "LogFormat",
    "LogFormatOpt",
    "OnTimeout",
    "OnTimeoutOpt",
    "OutputFormat",
    "OutputOpt",
    "PollIntervalOpt",
    "ProfileOpt",
    "RegionOpt",
    "SelectAllOpt",
    "SelectableInstances",
    "StandaloneTasks",
    "StandaloneTasksOpt",
    "StatusOpt",
    "SteadyTimeoutOpt",
    "TaskEventsOpt",
    "TerminateOpt",
    "TerminationArgs",
    "TimeoutOpt",
    "VerboseOpt",
    "termination_of",
]


class OutputFormat(enum.StrEnum):
    """What ``--output`` writes to stdout."""

    TEXT = "text"
    """Readable tables."""
    JSON = "json"
    """One JSON document (see `ecs_safe.cli` for its schema)."""


class LogFormat(enum.StrEnum):
    """How log events are written to stderr."""

    CONSOLE = "console"
    """One readable line per event."""
    JSON = "json"
    """One JSON object per line, for log pipelines."""


class OnTimeout(enum.StrEnum):
    """What ``drain`` does when an instance is not empty by ``--timeout``.

    The values are the library's ``ON_TIMEOUT_VALUES``, in order (a test holds them equal).
    """

    RAISE = "raise"
    """Stop waiting; the instance stays DRAINING (exit 4)."""
    REACTIVATE = "reactivate"
    """Set the instance ACTIVE again (exit 4)."""
    FORCE = "force"
    """Deregister with force, if the policy allows it."""


class StandaloneTasks(enum.StrEnum):
    """What ``drain`` does about tasks no service manages (draining never moves them).

    The values are the library's ``STANDALONE_TASKS_VALUES``, in order (a test holds them equal).
    """

    REFUSE = "refuse"
    """Refuse up front, before DRAINING is set (exit 3)."""
    WAIT = "wait"
    """Wait for them to finish, within the timeout."""
    STOP = "stop"
    """Stop them (StopTask)."""


Instances = Annotated[
    list[str],
    typer.Argument(
        help="Container instance IDs or full ARNs (one or more).",
        metavar="CONTAINER_INSTANCE...",
        show_default=False,
    ),
]
#: The instances of a command that also takes selectors: optional, and in every form.
SelectableInstances = Annotated[
    list[str] | None,
    typer.Argument(
        help="Container instance IDs or full ARNs, EC2 instance IDs (i-...) or managed "
        "instance IDs (mi-...), resolved in the cluster; optional with a selector "
        "(--filter, --auto-scaling-group, --status, --all).",
        metavar="CONTAINER_INSTANCE...",
        show_default=False,
    ),
]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        "-c",
        metavar="NAME",
        help="Cluster short name or ARN \\[default: the 'default' cluster].",
        envvar="ECS_SAFE_CLUSTER",
        show_default=False,
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Decide and print the plan (would deregister / refused and why / tasks); "
        "make no mutating call.",
        envvar="ECS_SAFE_DRY_RUN",
    ),
]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        metavar="N",
        min=1,
        max=100,
        help="Instances handled at once (ECS rate limits are respected on top of this).",
        envvar="ECS_SAFE_CONCURRENCY",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Seconds each instance may take to empty.",
        envvar="ECS_SAFE_TIMEOUT",
    ),
]
SteadyTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--steady-timeout",
        metavar="SECONDS",
        help="Seconds a drain may wait, before DRAINING, for the services that earlier drains "
        "of the run took tasks from to be steady again; then no new drain starts (the rest "
        "are reported not started).",
        envvar="ECS_SAFE_STEADY_TIMEOUT",
    ),
]
PollIntervalOpt = Annotated[
    float,
    typer.Option(
        "--poll-interval",
        metavar="SECONDS",
        help="The longest wait, in seconds, between two looks at a draining instance.",
    ),
]
OnTimeoutOpt = Annotated[
    OnTimeout,
    typer.Option(
        "--on-timeout",
        help="At the timeout: raise (leave it DRAINING), reactivate (set it ACTIVE), or "
        "force (deregister with force, if the policy allows).",
        case_sensitive=False,
    ),
]
StandaloneTasksOpt = Annotated[
    StandaloneTasks,
    typer.Option(
        "--standalone-tasks",
        help="Tasks no service manages (draining never moves them): refuse up front, "
        "wait for them, or stop them.",
        case_sensitive=False,
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        metavar="REGION",
        help="AWS Region \\[default: from the AWS configuration chain].",
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
        show_default=False,
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        metavar="URL",
        help="An ECS-compatible endpoint, e.g. a local one \\[default: AWS's].",
        envvar="AWS_ENDPOINT_URL_ECS",
        show_default=False,
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        help="A profile of the shared AWS config files.",
        envvar="AWS_PROFILE",
        show_default=False,
    ),
]
OutputOpt = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        help="text: readable tables. json: one JSON document on stdout (stable keys).",
        envvar="ECS_SAFE_OUTPUT",
        case_sensitive=False,
    ),
]
AuditLogOpt = Annotated[
    Path | None,
    typer.Option(
        "--audit-log",
        metavar="PATH",
        help="Append a JSONL audit record of every decision and every mutating call to this "
        "file, each written before the call returns (see the docs' reliability page).",
        envvar="ECS_SAFE_AUDIT_LOG",
        dir_okay=False,
        show_default=False,
    ),
]
TaskEventsOpt = Annotated[
    str | None,
    typer.Option(
        "--task-events",
        metavar="QUEUE_URL",
        help="An SQS queue that an EventBridge rule sends the cluster's ECS Task State Change "
        "events to, for this run alone (its messages are deleted once read): a stop event "
        "wakes the drain at once, and the looks between events are a safety net (see the "
        "docs' drain page, Waking on task events).",
        envvar="ECS_SAFE_TASK_EVENTS",
        show_default=False,
    ),
]
LogFormatOpt = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        help="Log events on stderr as console lines or JSON lines.",
        envvar="ECS_SAFE_LOG_FORMAT",
        case_sensitive=False,
    ),
]
VerboseOpt = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="More log events on stderr: -v info, -vv debug \\[default: warnings].",
        show_default=False,
    ),
]

FilterOpt = Annotated[
    str | None,
    typer.Option(
        "--filter",
        metavar="EXPR",
        help="ECS cluster query language, passed to ECS as it is, e.g. "
        "'attribute:ecs.instance-type == t3.large'.",
        show_default=False,
    ),
]
AutoScalingGroupOpt = Annotated[
    str | None,
    typer.Option(
        "--auto-scaling-group",
        metavar="NAME",
        help="Only the members of this Auto Scaling group registered in the cluster.",
        show_default=False,
    ),
]
SelectAllOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Every ACTIVE instance of the cluster (not with named instances or --filter).",
    ),
]
StatusOpt = Annotated[
    str | None,
    typer.Option(
        "--status",
        metavar="STATUS",
        help="ACTIVE, DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED or INACTIVE "
        "\\[default: every status but INACTIVE].",
        show_default=False,
    ),
]
TerminateOpt = Annotated[
    bool,
    typer.Option(
        "--terminate",
        help="Once each deregistration is verified (a describe shows it INACTIVE or gone), "
        "terminate the EC2 instance: through its Auto Scaling group for a member "
        "(TerminateInstanceInAutoScalingGroup), TerminateInstances otherwise. A protected "
        "instance is refused up front.",
    ),
]
DecrementDesiredCapacityOpt = Annotated[
    bool,
    typer.Option(
        "--decrement-desired-capacity",
        help="With --terminate: lower the Auto Scaling group's desired capacity by one per "
        "terminated member, so that no replacement is launched.",
    ),
]
AllowProtectedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-protected",
        help="With --terminate: terminate even instances protected from scale-in or with EC2 "
        "termination protection (EC2 still refuses the latter; reported as not terminated).",
    ),
]


class TerminationArgs(TypedDict):
    """``--terminate`` and its choices, as the library's keyword arguments."""

    terminate: bool
    decrement_desired_capacity: bool
    allow_protected: bool


def termination_of(
    terminate: bool, decrement_desired_capacity: bool, allow_protected: bool
) -> TerminationArgs:
    """The ``terminate=`` keyword arguments of a command (all false without ``--terminate``).

    Raises:
        InvalidInputError: a choice given without ``--terminate`` (a usage error, exit 2).
    """
    if not terminate and (decrement_desired_capacity or allow_protected):
        raise InvalidInputError(
            "--decrement-desired-capacity and --allow-protected only mean something with "
            "--terminate: add --terminate, or leave them out"
        )
    return TerminationArgs(
        terminate=terminate,
        decrement_desired_capacity=decrement_desired_capacity,
        allow_protected=allow_protected,
    )
