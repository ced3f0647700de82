"""Outcomes in the command line's terms: named by the inputs that named their instances.

A command acts on a `Selection`'s targets (each instance once, by the ref it resolved to);
`attribute` turns the outcomes of those targets back into outcomes of the command line: each
named by the input that named its instance first, with a failed outcome for each input that
named no instance, and the selection's entries told what the run found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ecs_safe._validation import instance_id_of
from ecs_safe.cli.reports import BatchReport, Outcome
from ecs_safe.cli.targets import Selection, not_found

__all__ = ["attribute", "with_selection"]


def attribute(selection: Selection, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Outcomes of ``selection.targets`` (in that order) in the command line's terms.

    Each outcome is named by the input that named its instance first (or by the ARN a
    selector listed), the inputs that name no instance get their failed outcome (no request
    was sent for them), and the selection's entries learn what the run found: the ARN and EC2
    ID of each instance, or that it is not registered in the cluster.
    """
    by_target = dict(zip(selection.targets, outcomes, strict=True))
    target_of = {instance_id_of(t): t for t in selection.targets}
    failed = {id(entry) for entry in selection.failed}
    ordered: list[Outcome] = []
    for entry in selection.entries:
        if id(entry) in failed:
            error = entry.error
            ordered.append(
                Outcome.from_error(entry.input, error)
                if error is not None
                else Outcome(entry.input, "failed")
            )
            continue
        if entry.state != "resolved":
            continue
        target = target_of[entry.container_instance_id or ""]
        outcome = by_target[target]
        ordered.append(
            replace(
                outcome,
                container_instance=selection.given[target],
                target=target,
                selected_by=selection.selected_by.get(target),
                ec2_hint=entry.ec2_instance_id,
            )
        )
    selection.learn(
        {instance_id_of(t): o.instance for t, o in by_target.items() if o.instance is not None},
        {
            instance_id_of(t): o.error
            for t, o in by_target.items()
            if o.instance is None and o.error is not None and not_found(o.error)
        },
    )
    return ordered


def with_selection(report: BatchReport, selection: Selection) -> BatchReport:
    """``report`` (of ``selection.targets``) in the command line's terms (see `attribute`)."""
    report.outcomes = attribute(selection, report.outcomes)
    report.selection = selection
    return report
