"""Text output: the consoles, the ``error:`` line, and the reports as rich tables.

IDs and ARNs are never cut: a truncated ID copied into the next command names another
instance, or none. Tables fold long cells instead of truncating them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ecs_safe._validation import instance_id_of
from ecs_safe.cli.reports import STATUSES, BatchReport, DescribeReport, Outcome, Report, one_line

if TYPE_CHECKING:
    from ecs_safe.models import Task

__all__ = [
    "describe_tasks",
    "error_line",
    "for_display",
    "render",
    "short",
    "stderr_console",
    "stdout_console",
    "write_json",
]

_STATUS_STYLE: Final[Mapping[str, str]] = {
    "deregistered": "bold green",
    "would_deregister": "green",
    "refused": "bold yellow",
    "failed": "bold red",
    "timed_out": "bold magenta",
}
_STATUS_LABEL: Final[Mapping[str, str]] = {
    "deregistered": "deregistered",
    "would_deregister": "would deregister",
    "refused": "refused",
    "failed": "failed",
    "timed_out": "drain timed out",
}

# Width of text output written to a pipe or file, where there is no terminal to ask: wide
# enough that full IDs fit, which matters more than 80 columns when the output is grepped.
_PIPE_WIDTH: Final = 160


def error_line(message: str) -> None:
    """Write ``error: MESSAGE`` as a single line to stderr."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()


def stdout_console() -> Console:
    """A console on the current ``sys.stdout`` (160 columns when it is not a terminal)."""
    # Created per call (not at import) so that the current sys.stdout is used: CliRunner
    # swaps it per invocation. No highlighting: IDs and counts must not change colour at random.
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH
    return console


def stderr_console() -> Console:
    """A console on the current ``sys.stderr``."""
    return Console(file=sys.stderr, highlight=False)


def write_json(document: Mapping[str, Any]) -> None:
    """Write ``document`` to stdout as one indented JSON document."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def short(ref: str | None) -> str:
    """The ID at the end of an ARN (``-`` for none)."""
    return instance_id_of(ref) if ref else "-"


def _task_name(task: Task) -> str:
    group = task.group or ""
    _, _, name = group.partition(":")
    return name or short(task.task_arn)


def describe_tasks(tasks: Sequence[Task]) -> str:
    """``3 service (2 web, api), 1 standalone (nightly-report)``: what the tasks are, briefly."""
    by_kind: dict[str, Counter[str]] = {}
    for task in tasks:
        by_kind.setdefault(task.kind, Counter())[_task_name(task)] += 1
    parts = []
    for kind in ("service", "daemon", "standalone"):
        names = by_kind.get(kind)
        if names:
            listed = ", ".join(f"{n} {name}" if n > 1 else name for name, n in names.items())
            parts.append(f"{sum(names.values())} {kind} ({listed})")
    return ", ".join(parts)


def _tasks_cell(outcome: Outcome) -> str:
    if outcome.tasks:
        return describe_tasks(outcome.tasks)
    instance = outcome.instance
    if instance is None or instance.running_tasks_count is None:
        return "-"
    running = instance.running_tasks_count
    pending = instance.pending_tasks_count or 0
    if running == pending == 0:
        return "none"
    return f"{running} running" + (f", {pending} pending" if pending else "")


# The library's messages name its Python API and full ARNs; a table row reads better with the
# CLI's own flags and short IDs. Display only: the JSON output keeps every message verbatim.
_ARN_RE: Final = re.compile(
    r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:(?P<kind>container-instance|task)/"
    r"(?:[A-Za-z0-9_-]+/)?(?P<id>[A-Za-z0-9-]+)"
)
_API_TO_CLI: Final = (
    (
        re.compile(r"\bpass region_name= or set AWS_REGION\b"),
        "pass --region or set AWS_REGION / AWS_DEFAULT_REGION",
    ),
    (re.compile(r"\bcluster='([^']*)'"), r"--cluster \1"),
    (re.compile(r"\bprofile_name=/session="), "--profile (or set AWS_PROFILE)"),
    (re.compile(r"standalone_tasks='(\w+)'"), r"--standalone-tasks \1"),
    (re.compile(r"on_timeout='(\w+)'"), r"--on-timeout \1"),
    (re.compile(r"\bforce=True\b"), "--force"),
    (re.compile(r"\bdrain_and_deregister\b"), "ecs-safe drain"),
)


def for_display(message: str) -> str:
    """A library message in CLI terms: short IDs for ARNs, CLI flags for API arguments."""
    message = _ARN_RE.sub(
        lambda m: m["id"] if m["kind"] == "container-instance" else f"task/{m['id']}", message
    )
    for pattern, replacement in _API_TO_CLI:
        message = pattern.sub(replacement, message)
    return one_line(message)


def _plan_details(command: str, outcome: Outcome) -> str:
    count = len(outcome.tasks)
    if command == "drain" and outcome.instance and outcome.instance.status == "DRAINING":
        # Nothing to set: a drain started earlier (by us or anyone) is already under way.
        if not count:
            return "already DRAINING (nothing to move); would deregister"
        return f"already DRAINING; would wait for {count} task(s) to leave, then deregister"
    if command == "drain":
        if not count:
            return "would set DRAINING (nothing to move), then deregister"
        return f"would set DRAINING, wait for {count} task(s) to leave, then deregister"
    if outcome.forced and count:
        return f"would deregister with force, orphaning {count} task(s)"
    return "would deregister"


# The running-tasks rule's way out ("drain it first or pass --force"), which leads nowhere when a
# standalone task is on the instance: a plain drain refuses it and so does --force.
_DRAIN_OR_FORCE: Final = re.compile(
    r"; drain it first \(ecs-safe drain\) or pass --force to orphan them"
)


def _standalone_hint(command: str, outcome: Outcome) -> str | None:
    """The way forward for a refusal a standalone task causes, naming every blocker."""
    standalone = [t for t in outcome.tasks if t.kind == "standalone"]
    if command != "deregister" or not standalone:
        return None
    listed = describe_tasks(standalone)
    return (
        f"{listed} would be lost: a plain drain refuses it and so does --force; use "
        "ecs-safe drain --standalone-tasks stop (or wait), or --force --allow-standalone-loss "
        "to orphan it"
    )


def _details(command: str, outcome: Outcome) -> Text:
    text = Text()
    if outcome.status == "refused":
        hint = _standalone_hint(command, outcome)
        for i, violation in enumerate(outcome.violations):
            text.append("\n" if i else "")
            text.append(f"{violation.rule}: ", style="bold")
            message = for_display(violation.message)
            text.append(_DRAIN_OR_FORCE.sub("", message) if hint else message)
        if hint:
            text.append("\nnext: ", style="bold")
            text.append(hint)
    elif outcome.status in ("failed", "timed_out") and outcome.error is not None:
        text.append(for_display(str(outcome.error)))
    elif outcome.status == "would_deregister":
        text.append(_plan_details(command, outcome))
    elif outcome.already:
        text.append("ECS reports it INACTIVE; nothing was sent")
    elif outcome.status == "deregistered":
        text.append("forced; " if outcome.forced else "")
        text.append(f"request {outcome.request_id}" if outcome.request_id else "verified gone")
    return text


def _render_batch(report: BatchReport, console: Console) -> None:
    title = f"{report.command} · cluster {report.cluster or 'default'}"
    if report.dry_run:
        title += " · DRY RUN: the plan, nothing was changed"
    # IDs never wrap (they are copied from here); the prose columns share what is left,
    # most of it for the details, which hold the policy's reasons.
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAVY, expand=True)
    table.add_column("Container instance", no_wrap=True, overflow="fold")
    table.add_column("EC2 instance", no_wrap=True, overflow="fold")
    table.add_column("Result", no_wrap=True)
    table.add_column("Tasks", ratio=1)
    table.add_column("Details", ratio=3)
    for outcome in report.outcomes:
        instance = outcome.instance
        table.add_row(
            Text(short(outcome.container_instance)),
            Text((instance.ec2_instance_id if instance else None) or "-"),
            Text(
                "already deregistered" if outcome.already else _STATUS_LABEL[outcome.status],
                style=_STATUS_STYLE[outcome.status],
            ),
            Text(_tasks_cell(outcome)),
            _details(report.command, outcome),
        )
    console.print(table)
    counts = Counter(o.status for o in report.outcomes)
    summary = ", ".join(f"{counts[s]} {_STATUS_LABEL[s]}" for s in STATUSES if counts[s])
    code = report.exit_code
    console.print(Text(f"{summary} (exit {int(code)}: {code.meaning})"))


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _instance_status_style(status: str | None) -> str:
    return {"ACTIVE": "green", "DRAINING": "yellow"}.get(status or "", "red")


def _render_describe(report: DescribeReport, console: Console) -> None:
    table = Table(
        title=f"cluster {report.cluster or 'default'}",
        title_justify="left",
        box=box.SIMPLE_HEAVY,
    )
    for column in ("Container instance", "EC2 instance", "Status", "Agent"):
        # Fold rather than cut: a truncated ID cannot be copied into the next command.
        table.add_column(column, no_wrap=True, overflow="fold")
    table.add_column("Running", justify="right")
    table.add_column("Pending", justify="right")
    if report.tasks is not None:
        table.add_column("Tasks")
    for instance in report.instances:
        connected = instance.agent_connected
        agent = "?" if connected is None else ("connected" if connected else "disconnected")
        row = [
            Text(short(instance.container_instance_arn)),
            Text(instance.ec2_instance_id or "-"),
            Text(instance.status or "?", style=_instance_status_style(instance.status)),
            Text(agent),
            Text(_count(instance.running_tasks_count)),
            Text(_count(instance.pending_tasks_count)),
        ]
        tasks = report.tasks_of(instance)
        if tasks is not None:
            row.append(Text(describe_tasks(tasks) or "none"))
        table.add_row(*row)
    console.print(table)


def render(report: Report, console: Console) -> None:
    """Print ``report`` as a table (and, for a batch, a one-line summary with its exit code).

    Instances a describe did not find are named on stderr, as an ``error:`` line.
    """
    if isinstance(report, BatchReport):
        _render_batch(report, console)
        return
    _render_describe(report, console)
    if report.missing_message:
        error_line(report.missing_message)
