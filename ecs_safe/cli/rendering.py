"""Text output: the consoles, the ``error:`` line, and messages in the CLI's own terms.

The reports' tables are in `ecs_safe.cli.tables`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console

from ecs_safe._terminal import inert
from ecs_safe._validation import instance_id_of
from ecs_safe.cli.reports import one_line

if TYPE_CHECKING:
    from ecs_safe.models import Task

__all__ = [
    "describe_tasks",
    "error_line",
    "for_display",
    "short",
    "stderr_console",
    "stdout_console",
    "write_json",
]

# Width of text output written to a pipe or file, where there is no terminal to ask: wide
# enough that full IDs fit, which matters more than 80 columns when the output is grepped.
_PIPE_WIDTH: Final = 160


def error_line(message: str) -> None:
    """Write ``error: MESSAGE`` as a single line to stderr."""
    # What the endpoint said is in most messages: it must not steer the terminal.
    sys.stderr.write(f"error: {inert(one_line(message))}\n")
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
    """The ID at the end of an ARN (``-`` for none), inert (`ecs_safe._terminal.inert`)."""
    return inert(instance_id_of(ref)) if ref else "-"


def _task_name(task: Task) -> str:
    group = task.group or ""
    _, _, name = group.partition(":")
    return inert(name) if name else short(task.task_arn)


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
    (re.compile(r"\ballow_protected=True\b"), "--allow-protected"),
    (re.compile(r"\bterminate=True\b"), "--terminate"),
    (re.compile(r"\bdrain_and_deregister\b"), "ecs-safe drain"),
)


def for_display(message: str) -> str:
    """A library message in CLI terms: short IDs for ARNs, CLI flags for API arguments.

    Made inert too: a message carries what the endpoint said.
    """
    message = _ARN_RE.sub(
        lambda m: m["id"] if m["kind"] == "container-instance" else f"task/{m['id']}", message
    )
    for pattern, replacement in _API_TO_CLI:
        message = pattern.sub(replacement, message)
    return inert(one_line(message))
