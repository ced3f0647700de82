"""The reports as text: a table on a wide terminal, one block per instance on a narrow one.

IDs are never cut: a truncated ID copied into the next command names another instance, or
none. ARNs are shown as their IDs (exact within the cluster, which the title names once), and
a terminal too narrow for the table gets the stacked layout, whose prose wraps and whose ID
lines fit in 60 columns.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ecs_safe._terminal import inert
from ecs_safe.cli.listing import LIST_ATTRIBUTES, ListReport, attribute_of
from ecs_safe.cli.rendering import describe_tasks, error_line, for_display, short
from ecs_safe.cli.replacing import ReplaceReport
from ecs_safe.cli.reports import (
    STATUSES,
    BatchReport,
    DescribeReport,
    Outcome,
    Report,
)
from ecs_safe.cli.targets import ARGUMENT, Entry, Selection, not_found, where
from ecs_safe.steady import NotStartedError

__all__ = ["WIDE", "render"]

#: Columns from which the reports are tables; narrower terminals get one block per instance.
if TYPE_CHECKING:
    from ecs_safe.models import ContainerInstance

WIDE: Final = 120

_STATUS_STYLE: Final[Mapping[str, str]] = {
    "deregistered": "bold green",
    "would_deregister": "green",
    "drained": "bold green",
    "would_drain": "green",
    "refused": "bold yellow",
    "failed": "bold red",
    "timed_out": "bold magenta",
}
_STATUS_LABEL: Final[Mapping[str, str]] = {
    "deregistered": "deregistered",
    "would_deregister": "would deregister",
    "drained": "drained (still registered)",
    "would_drain": "would drain",
    "refused": "refused",
    "failed": "failed",
    "timed_out": "drain timed out",
}


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


def _drain_only_plan(outcome: Outcome) -> str:
    """The plan of ``drain --no-deregister`` for one instance."""
    count = len(outcome.tasks)
    if outcome.instance and outcome.instance.status == "DRAINING":
        start = "already DRAINING; would wait"
    else:
        start = "would drain and wait"
    moving = f" for {count} task(s) to leave" if count else " (nothing to move)"
    return f"{start}{moving}; would not deregister"


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


def _termination_note(outcome: Outcome) -> str:
    """``; would terminate (auto-scaling, decrement: no)`` after a plan, ``; terminated (ec2)``."""
    found = outcome.termination
    if found is None:
        return ""
    how = str(found["method"])
    if how == "auto-scaling":
        how += f", decrement: {'yes' if found['decrement_desired_capacity'] else 'no'}"
    if outcome.status == "would_deregister":
        return f"; would terminate ({how})"
    return f"; terminated ({how})" if found["terminated"] else ""


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
        if isinstance(outcome.error, NotStartedError):
            text.append("not started: ", style="bold")
        text.append(for_display(str(outcome.error)))
    elif outcome.status in ("would_deregister", "would_drain"):
        if outcome.status == "would_deregister":
            text.append(_plan_details(command, outcome) + _termination_note(outcome))
        else:
            text.append(_drain_only_plan(outcome))
        for note in outcome.notes:
            text.append(f"\n{for_display(note)}")
    elif outcome.status == "drained":
        text.append("DRAINING with no task left; still registered (ecs-safe activate puts it back)")
    elif outcome.already:
        text.append("ECS reports it INACTIVE; nothing was sent")
    elif outcome.status == "deregistered":
        text.append("forced; " if outcome.forced else "")
        text.append(
            f"request {inert(outcome.request_id)}" if outcome.request_id else "verified gone"
        )
        text.append(_termination_note(outcome))
    return text


def _result(outcome: Outcome) -> Text:
    label = "already deregistered" if outcome.already else _STATUS_LABEL[outcome.status]
    return Text(label, style=_STATUS_STYLE[outcome.status])


def _ec2_id(outcome: Outcome) -> str:
    return inert(outcome.ec2_instance_id or "-")


def _instance_id(outcome: Outcome) -> str:
    """The container instance acted on, resolved (an EC2 ID as given is in the EC2 column)."""
    resolved = outcome.container_instance_id
    # None: an EC2 ID that names no container instance (the EC2 column shows it).
    return inert(resolved) if resolved else "-"


def _id_width(ids: list[str]) -> int:
    return max((len(i) for i in ids), default=1)


def _render_batch(report: BatchReport, console: Console) -> None:
    title = f"{report.command} · cluster {report.cluster or 'default'}"
    if report.dry_run:
        title += " · DRY RUN: the plan, nothing was changed"
    if report.dry_run and report.selection is not None:
        _resolution(report.selection, console)
    if console.width < WIDE:
        _stacked_batch(report, title, console)
    else:
        _table_batch(report, title, console)
    counts = Counter(o.status for o in report.outcomes)
    summary = ", ".join(f"{counts[s]} {_STATUS_LABEL[s]}" for s in STATUSES if counts[s])
    code = report.exit_code
    console.print(Text(f"{summary} (exit {int(code)}: {code.meaning})"))


def _table_batch(report: BatchReport, title: str, console: Console) -> None:
    # IDs never wrap and never shrink below their length (they are copied from here); the
    # prose columns share what is left, most of it for the details (the policy's reasons).
    ids = [_instance_id(o) for o in report.outcomes]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAVY, expand=True)
    table.add_column("Container instance", no_wrap=True, min_width=_id_width(ids))
    table.add_column(
        "EC2 instance",
        no_wrap=True,
        min_width=_id_width([_ec2_id(o) for o in report.outcomes]),
    )
    table.add_column("Result", no_wrap=True)
    table.add_column("Tasks", ratio=1)
    table.add_column("Details", ratio=3)
    for ref, outcome in zip(ids, report.outcomes, strict=True):
        table.add_row(
            Text(ref),
            Text(_ec2_id(outcome)),
            _result(outcome),
            Text(_tasks_cell(outcome)),
            _details(report.command, outcome),
        )
    console.print(table)


def _stacked_batch(report: BatchReport, title: str, console: Console) -> None:
    # One block per instance: the ID and the result on a line of their own, then the rest
    # indented, wrapping at words; nothing is cut at any width.
    console.print(Text(title, style="bold"))
    for outcome in report.outcomes:
        # An input that named no instance heads its block as given (there is no ID to show).
        head = Text(short(outcome.container_instance_id or outcome.container_instance))
        head.append("  ")
        head.append_text(_result(outcome))
        console.print()
        console.print(head)
        body = Text(f"EC2 instance {_ec2_id(outcome)}\ntasks: {_tasks_cell(outcome)}\n")
        body.append_text(_details(report.command, outcome))
        console.print(Padding(body, (0, 0, 0, 2)))
    console.print()


def _resolution_line(entry: Entry, cluster: str | None) -> Text:
    """``i-0abc → 3f2e… (i-0abc)``: one input of the plan and what it named."""
    line = Text("  ")
    if entry.state == "unregistered_member":
        line.append(f"{inert(entry.source)}: member {inert(entry.input)}")
    elif entry.source != ARGUMENT:
        line.append(inert(entry.source))  # the selectors listed it: no input to repeat
    else:
        line.append(inert(entry.input))
    line.append(" → ")
    if entry.state == "duplicate":
        line.append(f"duplicate of {inert(entry.duplicate_of or '?')}", style="yellow")
    elif entry.state in ("not_registered", "unregistered_member"):
        error = entry.error
        if error is not None and not not_found(error):
            line.append(for_display(str(error)), style="red")
        else:
            line.append(f"not registered in cluster {where(cluster)}", style="red")
    else:
        line.append(inert(entry.container_instance_id or "?"))
        line.append(f" ({inert(entry.ec2_instance_id or '?')})")
    return line


def _resolution(selection: Selection, console: Console) -> None:
    """The plan's first part: how every input (and every group member) resolved."""
    console.print(Text(f"inputs · cluster {selection.cluster or 'default'}", style="bold"))
    for entry in selection.entries:
        console.print(_resolution_line(entry, selection.cluster))
    console.print()


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _instance_status_style(status: str | None) -> str:
    return {"ACTIVE": "green", "DRAINING": "yellow"}.get(status or "", "red")


def _agent(connected: bool | None) -> str:
    return "?" if connected is None else ("connected" if connected else "disconnected")


def _render_describe(report: DescribeReport, console: Console) -> None:
    if console.width < WIDE:
        _stacked_describe(report, console)
    else:
        _table_describe(report, console)


def _stacked_describe(report: DescribeReport, console: Console) -> None:
    console.print(Text(f"cluster {report.cluster or 'default'}", style="bold"))
    for instance in report.instances:
        head = Text(short(instance.container_instance_arn))
        head.append("  ")
        head.append(inert(instance.status or "?"), style=_instance_status_style(instance.status))
        console.print()
        console.print(head)
        body = Text(
            f"EC2 instance {inert(instance.ec2_instance_id or '-')}\n"
            f"agent {_agent(instance.agent_connected)}, "
            f"{_count(instance.running_tasks_count)} running, "
            f"{_count(instance.pending_tasks_count)} pending"
        )
        tasks = report.tasks_of(instance)
        if tasks is not None:
            body.append(f"\ntasks: {describe_tasks(tasks) or 'none'}")
        console.print(Padding(body, (0, 0, 0, 2)))
    console.print()


def _table_describe(report: DescribeReport, console: Console) -> None:
    table = Table(
        title=f"cluster {report.cluster or 'default'}",
        title_justify="left",
        box=box.SIMPLE_HEAVY,
    )
    # IDs never shrink below their length: a truncated ID cannot be copied into a command.
    arns = [short(i.container_instance_arn) for i in report.instances]
    ec2 = [inert(i.ec2_instance_id or "-") for i in report.instances]
    table.add_column("Container instance", no_wrap=True, min_width=_id_width(arns))
    table.add_column("EC2 instance", no_wrap=True, min_width=_id_width(ec2))
    for column in ("Status", "Agent"):
        table.add_column(column, no_wrap=True)
    table.add_column("Running", justify="right")
    table.add_column("Pending", justify="right")
    if report.tasks is not None:
        table.add_column("Tasks")
    for instance in report.instances:
        agent = _agent(instance.agent_connected)
        row = [
            Text(short(instance.container_instance_arn)),
            Text(inert(instance.ec2_instance_id or "-")),
            Text(inert(instance.status or "?"), style=_instance_status_style(instance.status)),
            Text(agent),
            Text(_count(instance.running_tasks_count)),
            Text(_count(instance.pending_tasks_count)),
        ]
        tasks = report.tasks_of(instance)
        if tasks is not None:
            row.append(Text(describe_tasks(tasks) or "none"))
        table.add_row(*row)
    console.print(table)


def _list_facts(instance: ContainerInstance) -> list[str]:
    """Type, AMI, AZ (from the ECS attributes) and when it registered, as shown in ``list``."""
    registered = instance.registered_at
    return [
        *(attribute_of(instance, name) or "-" for name in LIST_ATTRIBUTES.values()),
        registered.strftime("%Y-%m-%d %H:%M") if registered else "-",
    ]


def _render_list(report: ListReport, console: Console) -> None:
    title = f"cluster {report.cluster or 'default'}: {len(report.instances)} instance(s)"
    if console.width < WIDE:
        console.print(Text(title, style="bold"))
        for instance in report.instances:
            head = Text(short(instance.container_instance_arn))
            head.append("  ")
            head.append(instance.status or "?", style=_instance_status_style(instance.status))
            kind, ami, zone, registered = _list_facts(instance)
            console.print()
            console.print(head)
            body = Text(
                f"EC2 instance {instance.ec2_instance_id or '-'}, {kind}, {ami}, {zone}\n"
                f"agent {_agent(instance.agent_connected)}, "
                f"{_count(instance.running_tasks_count)} running, "
                f"{_count(instance.pending_tasks_count)} pending, registered {registered}"
            )
            console.print(Padding(body, (0, 0, 0, 2)))
        console.print()
        return
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAVY)
    # IDs never shrink below their length: a truncated ID cannot be copied into a command.
    arns = [short(i.container_instance_arn) for i in report.instances]
    ec2 = [i.ec2_instance_id or "-" for i in report.instances]
    table.add_column("Container instance", no_wrap=True, min_width=_id_width(arns))
    table.add_column("Status", no_wrap=True)
    table.add_column("Agent", no_wrap=True)
    table.add_column("EC2 instance", no_wrap=True, min_width=_id_width(ec2))
    for column in ("Type", "AMI", "AZ"):
        table.add_column(column, no_wrap=True)
    table.add_column("Running", justify="right")
    table.add_column("Pending", justify="right")
    table.add_column("Registered", no_wrap=True)
    for instance, arn, ec2_id in zip(report.instances, arns, ec2, strict=True):
        kind, ami, zone, registered = _list_facts(instance)
        table.add_row(
            Text(arn),
            Text(instance.status or "?", style=_instance_status_style(instance.status)),
            Text(_agent(instance.agent_connected)),
            Text(ec2_id),
            Text(kind),
            Text(ami),
            Text(zone),
            Text(_count(instance.running_tasks_count)),
            Text(_count(instance.pending_tasks_count)),
            Text(registered),
        )
    console.print(table)


def render(report: Report, console: Console) -> None:
    """Print ``report`` as a table (and, for a batch, a one-line summary with its exit code).

    Instances a describe did not find are named on stderr, as an ``error:`` line.
    """
    if isinstance(report, BatchReport):
        _render_batch(report, console)
        return
    if isinstance(report, ListReport):
        _render_list(report, console)
        return
    if isinstance(report, ReplaceReport):
        report.render(console)
        return
    _render_describe(report, console)
    if report.missing_message:
        error_line(report.missing_message)
