"""``ecs-safe watch --queue URL``: the event worker, as a long-running command (a service).

`EcsSafeClient.watch` on the queue until SIGTERM or SIGINT: each event's outcome is written
to stdout as it ends, one line each (``--output json``: one JSON object per line, JSON Lines,
since the stream has no end to wait for), then a summary. The first signal stops receiving and
lets the events in flight finish within ``--grace-period``, handing back the rest; a second one
hands everything back at once. A clean stop exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import signal
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ecs_safe._constants import (
    WORKER_CONCURRENCY,
    WORKER_GRACE_PERIOD,
    WORKER_VISIBILITY_TIMEOUT,
    WORKER_WAIT_SECONDS,
)
from ecs_safe.cli.execution import Connection, cli_policy
from ecs_safe.cli.exit_codes import ExitCode, exit_code_of_error
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import (
    AuditLogOpt,
    EndpointOpt,
    LogFormat,
    LogFormatOpt,
    OutputFormat,
    OutputOpt,
    ProfileOpt,
    RegionOpt,
    TaskEventsOpt,
    VerboseOpt,
)
from ecs_safe.cli.rendering import error_line, for_display, stdout_console
from ecs_safe.cli.reports import JSON_SCHEMA_VERSION
from ecs_safe.cli.signals import stop_signals
from ecs_safe.errors import EcsSafeError

if TYPE_CHECKING:
    from ecs_safe.worker import WatchSummary

__all__ = ["OnFailure", "RebalanceChoice", "SpotStandalone", "watch"]


class SpotStandalone(enum.StrEnum):
    """What the Spot path does with tasks no service manages."""

    WAIT = "wait"
    """Wait for them, until the notice's two minutes are nearly over."""
    STOP = "stop"
    """Stop them (StopTask) at once."""


class RebalanceChoice(enum.StrEnum):
    """What a rebalance recommendation does."""

    LOG = "log"
    """Log it only."""
    DRAIN = "drain"
    """Set the instance DRAINING (left registered)."""


class OnFailure(enum.StrEnum):
    """What a lifecycle action whose drain cannot finish does."""

    HOLD = "hold"
    """Keep the instance in Terminating:Wait with heartbeats up to a deadline, and alert."""
    CONTINUE = "continue"
    """Complete the action with CONTINUE."""


WatchClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        "-c",
        metavar="NAME",
        help="The cluster the instances are registered in \\[default: each instance is found "
        "over every cluster of the account and Region].",
        envvar="ECS_SAFE_CLUSTER",
        show_default=False,
    ),
]
QueueOpt = Annotated[
    str,
    typer.Option(
        "--queue",
        metavar="URL",
        help="The SQS queue's URL (fed by an EventBridge rule or a lifecycle hook's SNS topic).",
        envvar="ECS_SAFE_QUEUE_URL",
        show_default=False,
    ),
]
WorkerConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        metavar="N",
        min=1,
        max=1000,
        help="Events in flight at once (ECS rate limits are respected on top of this).",
        envvar="ECS_SAFE_CONCURRENCY",
    ),
]
GracePeriodOpt = Annotated[
    float,
    typer.Option(
        "--grace-period",
        metavar="SECONDS",
        min=0,
        help="After SIGTERM/SIGINT, seconds the events in flight may take to finish before "
        "their messages are handed back to the queue.",
        envvar="ECS_SAFE_GRACE_PERIOD",
    ),
]
VisibilityOpt = Annotated[
    int,
    typer.Option(
        "--visibility-timeout",
        metavar="SECONDS",
        min=1,
        max=43_200,
        help="Seconds a received message stays hidden from other workers (extended while its "
        "event is in flight).",
    ),
]
WaitSecondsOpt = Annotated[
    int,
    typer.Option(
        "--wait-seconds", metavar="SECONDS", min=0, max=20, help="ReceiveMessage's long-poll wait."
    ),
]
SpotStandaloneOpt = Annotated[
    SpotStandalone,
    typer.Option(
        "--spot-standalone-tasks",
        help="Spot path: wait for tasks no service manages (until the notice ends) or stop them.",
        case_sensitive=False,
    ),
]
RebalanceOpt = Annotated[
    RebalanceChoice,
    typer.Option(
        "--rebalance",
        help="Rebalance recommendations: log only, or set the instance DRAINING.",
        case_sensitive=False,
    ),
]
OnFailureOpt = Annotated[
    OnFailure,
    typer.Option(
        "--on-failure",
        help="Lifecycle actions whose drain cannot finish: hold the instance in "
        "Terminating:Wait (heartbeats, an alert) or continue.",
        case_sensitive=False,
    ),
]
MaxEventsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-events",
        metavar="N",
        min=1,
        help="Stop after N events ended (for a one-off run).",
        show_default=False,
    ),
]


def _line(fields: Mapping[str, Any]) -> str:
    """One outcome as a text line: status, kind, instance, action, then the sentence."""
    parts = [
        str(fields.get("status", "?")),
        str(fields.get("kind", "?")),
        str(fields.get("instance_id") or "-"),
        str(fields.get("action", "?")),
    ]
    if fields.get("resumed"):
        parts.append("(resumed)")
    return "  ".join(parts) + "  " + for_display(str(fields.get("detail", "")))


class _Printer:
    """Writes each outcome to stdout as it ends: a text line, or a JSON line."""

    def __init__(self, output: OutputFormat) -> None:
        self._output = output
        self._console = stdout_console() if output is OutputFormat.TEXT else None

    def __call__(self, event: Mapping[str, Any]) -> None:
        fields = {key: value for key, value in event.items() if key != "event"}
        if self._console is None:
            sys.stdout.write(json.dumps({"type": "event", **fields}, default=str) + "\n")
            sys.stdout.flush()
            return
        style = {"failed": "red", "retry": "yellow", "handed_back": "yellow"}.get(
            str(fields.get("status")), ""
        )
        self._console.print(_line(fields), style=style or None, markup=False, soft_wrap=True)

    def summary(self, summary: WatchSummary) -> None:
        counts = summary.model_dump()
        if self._console is None:
            document = {"type": "summary", "schema_version": JSON_SCHEMA_VERSION, **counts}
            sys.stdout.write(json.dumps(document) + "\n")
            sys.stdout.flush()
            return
        self._console.print(
            "stopped ({stopped_by}): {received} received, {handled} handled, {duplicates} "
            "duplicates, {ignored} ignored, {failed} failed, {retried} to retry, "
            "{handed_back} handed back".format(**counts),
            markup=False,
        )


@contextlib.contextmanager
def _signals(stop: asyncio.Event) -> Iterator[list[str]]:
    """SIGTERM/SIGINT: the first sets ``stop`` (graceful), the second cancels (hand back now)."""
    task = asyncio.current_task()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        if len(received) == 1:
            stop.set()
        elif task is not None:
            task.cancel()

    with stop_signals(on_signal):
        yield received


def watch(  # noqa: PLR0917 - typer maps each option to a parameter
    queue: QueueOpt,
    cluster: WatchClusterOpt = None,
    concurrency: WorkerConcurrencyOpt = WORKER_CONCURRENCY,
    grace_period: GracePeriodOpt = WORKER_GRACE_PERIOD,
    spot_standalone_tasks: SpotStandaloneOpt = SpotStandalone.WAIT,
    rebalance: RebalanceOpt = RebalanceChoice.LOG,
    on_failure: OnFailureOpt = OnFailure.HOLD,
    visibility_timeout: VisibilityOpt = WORKER_VISIBILITY_TIMEOUT,
    wait_seconds: WaitSecondsOpt = WORKER_WAIT_SECONDS,
    max_events: MaxEventsOpt = None,
    audit_log: AuditLogOpt = None,
    task_events: TaskEventsOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Handle lifecycle actions, Spot interruptions and rebalance notices from an SQS queue.

    Runs until SIGTERM or SIGINT. Give --audit-log so that a restarted worker recognises the
    events it already handled.
    """
    connection = Connection(region, endpoint_url, profile)
    printer = _Printer(output)
    interrupted: list[str] = []

    async def work() -> WatchSummary:
        stop = asyncio.Event()
        with _signals(stop) as received:
            async with connection.open(
                cli_policy(), audit_log=audit_log, task_events=task_events
            ) as ecs:
                try:
                    summary = await ecs.watch(
                        queue,
                        cluster=cluster,
                        concurrency=concurrency,
                        stop=stop,
                        on_outcome=printer,
                        on_failure=on_failure.value,
                        spot_standalone_tasks=spot_standalone_tasks.value,
                        rebalance=rebalance.value,
                        grace_period=grace_period,
                        visibility_timeout=visibility_timeout,
                        wait_seconds=wait_seconds,
                        max_events=max_events,
                    )
                finally:
                    interrupted.extend(received)
            if received:
                summary = summary.model_copy(update={"stopped_by": received[0]})
            return summary

    with logging_configured(log_format, verbose):
        try:
            summary = asyncio.run(work())
        except EcsSafeError as exc:
            error_line(for_display(str(exc)))
            raise typer.Exit(exit_code_of_error(exc)) from None
        except (KeyboardInterrupt, asyncio.CancelledError):
            # A second signal: everything in flight was handed back at once.
            error_line(f"stopped by a second {interrupted[-1] if interrupted else 'signal'}")
            raise typer.Exit(ExitCode.OK) from None
    printer.summary(summary)
    raise typer.Exit(ExitCode.OK)
