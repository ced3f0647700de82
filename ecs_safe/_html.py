"""Compact HTML tables for Jupyter's rich display (the models' and results' ``_repr_html_``).

Every value is escaped: instance fields, task groups and error messages come from the network
(or from whoever named an instance), and a notebook renders whatever HTML it is given. The
tables are self-contained: inline styles, no scripts, no external assets.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ecs_safe.errors import DrainTimeoutError, PolicyViolationError

if TYPE_CHECKING:
    from ecs_safe.errors import EcsSafeError
    from ecs_safe.models import ContainerInstance, Task
    from ecs_safe.results import BatchResult, DeregistrationResult, InstanceOutcome

__all__ = [
    "batch_result",
    "container_instance",
    "deregistration_result",
    "instance_outcome",
    "instances_table",
    "policy_violation",
]

# Wide tables scroll sideways instead of wrapping: an ARN broken over four lines is unreadable.
_SCROLL = '<div style="overflow-x:auto;max-width:100%">'

_TABLE = '<table style="border-collapse:collapse;font-size:0.9em;margin:0.3em 0">'
_CAPTION = '<caption style="text-align:left;font-weight:bold;padding:2px 0">{}</caption>'
_CELL = '<{tag} style="padding:2px 8px;text-align:left;vertical-align:top{extra}">{text}</{tag}>'
_ABSENT = "&#8212;"  # an em dash: the field was not in the response
_OUTCOME_COLOURS = {
    "deregistered": "#1a7f37",
    "would_deregister": "#0969da",
    "refused": "#9a6700",
    "failed": "#cf222e",
}

Row = Sequence[object]


def _text(value: object) -> str:
    if value is None:
        return _ABSENT
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(str(value))


def _cell(value: object, *, tag: str = "td", colour: str | None = None) -> str:
    extra = f";color:{colour};font-weight:bold" if colour else ""
    return _CELL.format(tag=tag, extra=extra, text=_text(value))


def _short_id(value: str) -> str:
    """The exact short form of an ARN (its last path segment); anything else unchanged."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _id_cell(value: str | None, *, full: bool = False) -> str:
    """An ID or ARN on one line; the short form shows the full ARN on hover (``title``)."""
    if value is None:
        return _cell(None)
    text = value if full else _short_id(value)
    return (
        f'<td style="padding:2px 8px;text-align:left;vertical-align:top;white-space:nowrap"'
        f' title="{html.escape(value)}"><code>{html.escape(text)}</code></td>'
    )


def _table(title: str, rows: Iterable[str], header: Sequence[str] = ()) -> str:
    head = "<tr>" + "".join(_cell(h, tag="th") for h in header) + "</tr>" if header else ""
    return "".join(
        (_SCROLL, _TABLE, _CAPTION.format(html.escape(title)), head, *rows, "</table></div>"),
    )


def _key_values(pairs: Iterable[tuple[str, object]]) -> Iterable[str]:
    for key, value in pairs:
        # ARNs whole, on one line (the table scrolls): a key-value table is where one is copied.
        if isinstance(value, str) and value.startswith("arn:"):
            value_cell = _id_cell(value, full=True)
        else:
            value_cell = _cell(value)
        yield f"<tr>{_cell(key, tag='th')}{value_cell}</tr>"


def _instance_pairs(instance: ContainerInstance) -> list[tuple[str, object]]:
    status = instance.status
    if status is not None and instance.status_reason:
        status = f"{status} ({instance.status_reason})"
    pairs: list[tuple[str, object]] = [
        ("container instance", instance.container_instance_arn),
        ("EC2 instance", instance.ec2_instance_id),
        ("status", status),
        ("agent connected", instance.agent_connected),
        ("running tasks", instance.running_tasks_count),
        ("pending tasks", instance.pending_tasks_count),
    ]
    # Optional fields only when present, so that the common table stays short.
    optional: list[tuple[str, object]] = [
        ("capacity provider", instance.capacity_provider_name),
        ("agent version", instance.version_info and instance.version_info.agent_version),
        ("registered at", instance.registered_at),
    ]
    pairs.extend((key, value) for key, value in optional if value is not None)
    return pairs


def _tasks_summary(tasks: Sequence[Task]) -> str:
    kinds = Counter(task.kind for task in tasks)
    return f"{len(tasks)} (" + ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())) + ")"


def _error_detail(error: EcsSafeError | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, PolicyViolationError) and error.decision.violations:
        return "; ".join(f"{v.rule}: {v.message}" for v in error.decision.violations)
    return f"{type(error).__name__}: {error}"


def container_instance(instance: ContainerInstance) -> str:
    """The table of a `ContainerInstance`: the fields that matter when removing it."""
    return _table("ContainerInstance", _key_values(_instance_pairs(instance)))


def deregistration_result(result: DeregistrationResult) -> str:
    """The table of a `DeregistrationResult`: what happened, and the instance it happened to."""
    title = "Would deregister (dry run)" if result.dry_run else "Deregistered"
    if result.forced:
        title += ", forced"
    pairs = _instance_pairs(result.container_instance)
    pairs.append(("request ID", result.request_id))
    if result.tasks:
        pairs.append(("tasks seen", _tasks_summary(result.tasks)))
    if result.verified:
        pairs.append(("verified", "response lost; a describe proved the instance gone"))
    if result.termination is not None:
        done = "terminated" if result.terminated else "would terminate"
        if not result.dry_run and not result.terminated:
            done = "not terminated"
        group = f", group {result.auto_scaling_group}" if result.auto_scaling_group else ""
        pairs.append(("EC2 instance", f"{done} ({result.termination}{group})"))
    return _table(f"DeregistrationResult: {title}", _key_values(pairs))


def batch_result(batch: BatchResult) -> str:
    """The table of a `BatchResult`: one row per instance, in input order, under a summary."""
    counts = Counter(outcome.status for outcome in batch.outcomes)
    summary = ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in counts.items())
    rows: list[str] = []
    for outcome in batch.outcomes:
        result = outcome.result
        instance = result.container_instance if result is not None else None
        if isinstance(outcome.error, PolicyViolationError | DrainTimeoutError):
            # A refusal carries the snapshot it was decided on: show what blocked it.
            instance = outcome.error.container_instance
        detail = _error_detail(outcome.error)
        if detail is None and result is not None:
            detail = "forced" if result.forced else result.request_id
        cells = (
            _id_cell(outcome.container_instance),
            _cell(outcome.status, colour=_OUTCOME_COLOURS.get(outcome.status)),
            _cell(instance.ec2_instance_id if instance is not None else None),
            _cell(instance.running_tasks_count if instance is not None else None),
            _cell(detail),
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = ("container instance", "outcome", "EC2 instance", "running tasks", "detail")
    table = _table(f"BatchResult: {summary or 'empty'}", rows, header)
    # Below the table, each refusal with its blockers and the tasks it was decided on.
    refusals = (
        _refusal(outcome.error, f"Refused: {_short_id(outcome.container_instance)}")
        for outcome in batch.outcomes
        if isinstance(outcome.error, PolicyViolationError)
    )
    return table + "".join(refusals)


def _refusal(error: PolicyViolationError, title: str) -> str:
    blockers = (f"<tr>{_cell(v.rule)}{_cell(v.message)}</tr>" for v in error.decision.violations)
    parts = [_table(title, blockers, ("rule", "why"))]
    if error.container_instance is not None:
        parts.append(instances_table([error.container_instance], title="Instance as seen"))
    if error.tasks:
        tasks = (
            f"<tr>{_id_cell(t.task_arn)}{_cell(t.kind)}{_cell(t.last_status)}</tr>"
            for t in error.tasks
        )
        parts.append(_table(f"Tasks seen: {len(error.tasks)}", tasks, ("task", "kind", "status")))
    return "".join(parts)


def policy_violation(error: PolicyViolationError) -> str:
    """The view of a refusal: every blocker (rule and message), the instance and its tasks."""
    return _refusal(error, "PolicyViolationError: refused before any mutating call")


def instance_outcome(outcome: InstanceOutcome) -> str:
    """The view of one `InstanceOutcome`: a refusal in full, anything else as a one-row batch."""
    if isinstance(outcome.error, PolicyViolationError):
        return _refusal(outcome.error, f"Refused: {_short_id(outcome.container_instance)}")
    detail = _error_detail(outcome.error)
    if detail is None and outcome.result is not None:
        detail = "forced" if outcome.result.forced else outcome.result.request_id
    row = (
        f"<tr>{_id_cell(outcome.container_instance)}"
        f"{_cell(outcome.status, colour=_OUTCOME_COLOURS.get(outcome.status))}"
        f"{_cell(detail)}</tr>"
    )
    return _table("InstanceOutcome", [row], ("container instance", "outcome", "detail"))


def instances_table(instances: Iterable[ContainerInstance], *, title: str | None = None) -> str:
    """A table of container instances, one row each (for a ``list[ContainerInstance]``).

    In a notebook: ``IPython.display.HTML(instances_table(ecs.describe_container_instances(...)))``.
    The short instance ID is shown; the full ARN is its ``title`` (shown on hover).
    """
    items = list(instances)
    rows = (
        "<tr>"
        + _id_cell(i.container_instance_arn)
        + _id_cell(i.ec2_instance_id)
        + "".join(
            _cell(v)
            for v in (i.status, i.agent_connected, i.running_tasks_count, i.pending_tasks_count)
        )
        + "</tr>"
        for i in items
    )
    header = ("container instance", "EC2 instance", "status", "agent", "running", "pending")
    return _table(title or f"{len(items)} container instance(s)", rows, header)
