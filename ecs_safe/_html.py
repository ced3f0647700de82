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
    from ecs_safe.results import BatchResult, DeregistrationResult

__all__ = ["batch_result", "container_instance", "deregistration_result"]

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


def _table(title: str, rows: Iterable[str], header: Sequence[str] = ()) -> str:
    head = "<tr>" + "".join(_cell(h, tag="th") for h in header) + "</tr>" if header else ""
    return "".join(
        (_TABLE, _CAPTION.format(html.escape(title)), head, *rows, "</table>"),
    )


def _key_values(pairs: Iterable[tuple[str, object]]) -> Iterable[str]:
    for key, value in pairs:
        yield f"<tr>{_cell(key, tag='th')}{_cell(value)}</tr>"


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
            _cell(outcome.container_instance),
            _cell(outcome.status, colour=_OUTCOME_COLOURS.get(outcome.status)),
            _cell(instance.ec2_instance_id if instance is not None else None),
            _cell(instance.running_tasks_count if instance is not None else None),
            _cell(detail),
        )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = ("container instance", "outcome", "EC2 instance", "running tasks", "detail")
    return _table(f"BatchResult: {summary or 'empty'}", rows, header)
