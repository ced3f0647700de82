"""The ``ecs-safe`` command line: take ECS container instances out of a cluster safely.

Commands (``ecs-safe COMMAND --help`` for every option)::

    ecs-safe deregister [--force] [--dry-run] [--concurrency N] CONTAINER_INSTANCE...
    ecs-safe drain [--timeout S] [--on-timeout raise|reactivate|force]
                   [--standalone-tasks refuse|wait|stop] [--dry-run] CONTAINER_INSTANCE...
    ecs-safe describe [--tasks] CONTAINER_INSTANCE...
    ecs-safe demo

Every command that talks to ECS also takes ``--cluster`` (``ECS_SAFE_CLUSTER``), ``--region``
(``AWS_REGION``/``AWS_DEFAULT_REGION``), ``--endpoint-url`` (``AWS_ENDPOINT_URL_ECS``),
``--profile`` (``AWS_PROFILE``), ``--output text|json``, ``--log-format console|json`` and
``-v``/``-vv``. Credentials come from the normal AWS chain. ``deregister`` and ``drain`` take
``--audit-log PATH`` (``ECS_SAFE_AUDIT_LOG``): a JSONL record of every decision and every
mutating call is appended to PATH, each written before the call returns (`ecs_safe.audit`).

Policy: the CLI uses the library's `default_policy` plus `ProtectStandaloneTasks`, so that
``--force`` never silently loses a task that no service would replace; ``--allow-standalone-loss``
drops that rule for one call.

Exit codes (one per instance; a batch exits with the code its instances share, else 5)::

    0  success: every instance deregistered (in a dry run: would be)
    1  AWS/API error (or an unexpected failure): e.g. not found, access denied, unreachable
    2  bad usage or input: nothing was sent to ECS
    3  refused by the policy (before any mutating call)
    4  a drain timed out
    5  a batch ended mixed: its instances did not all end the same way

``--output json`` writes exactly one JSON document to stdout (schema_version 1).
``deregister`` and ``drain``::

    {"schema_version": 1, "command": "deregister" | "drain", "cluster": str | null,
     "dry_run": bool, "exit_code": int, "error": null | ERROR,
     "summary": {"total", "deregistered", "would_deregister", "refused", "failed",
                 "timed_out"},
     "outcomes": [{"container_instance": str (as given),
                   "status": "deregistered" | "would_deregister" | "refused" | "failed"
                             | "timed_out",
                   "exit_code": int, "instance": INSTANCE | null, "forced": bool | null,
                   "request_id": str | null, "violations": [{"rule", "message"}],
                   "tasks": [TASK], "error": null | ERROR}]}

``describe``::

    {"schema_version": 1, "command": "describe", "cluster": str | null, "exit_code": int,
     "error": null | ERROR, "container_instances": [INSTANCE + {"registered_at",
     "tasks": [TASK] | null}]}

where ``INSTANCE`` is ``{"container_instance_arn", "ec2_instance_id", "status",
"agent_connected", "running_tasks_count", "pending_tasks_count"}``, ``TASK`` is ``{"task_arn",
"kind", "last_status", "desired_status", "group", "started_by"}`` and ``ERROR`` is ``{"type",
"code", "message"}``. A command that fails as a whole (bad input, an API error) writes the same
document with ``error`` set and empty lists. Usage errors found while parsing the command line
write nothing to stdout.

Errors are one line on stderr (``error: ...``), never a traceback. Log events go to stderr
(warnings by default; ``-v`` info, ``-vv`` debug), as console lines or, with
``--log-format json``, as JSON lines. This module is the only place ecs-safe configures logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn, Protocol

import structlog
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from ecs_safe._validation import (
    check_positive_number,
    check_same_cluster,
    instance_id_of,
    validate_cluster,
    validate_container_instance,
)
from ecs_safe.errors import (
    DrainTimeoutError,
    EcsSafeError,
    InvalidInputError,
    PolicyViolationError,
)
from ecs_safe.policy import Policy, ProtectStandaloneTasks, Violation, default_policy

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ecs_safe.client import EcsSafeClient
    from ecs_safe.local import LocalEcs
    from ecs_safe.models import ContainerInstance, Task
    from ecs_safe.results import BatchResult, DeregistrationResult

__all__ = [
    "JSON_SCHEMA_VERSION",
    "ExitCode",
    "LogFormat",
    "OnTimeout",
    "OutputFormat",
    "StandaloneTasks",
    "app",
    "main",
]

#: The version of the ``--output json`` document layout; bumped on any incompatible change.
JSON_SCHEMA_VERSION: Final = 1


class ExitCode(enum.IntEnum):
    """The exit codes of ``ecs-safe``; the same table is in ``ecs-safe --help``."""

    OK = 0
    """Success: every instance deregistered (in a dry run: would be)."""
    API_ERROR = 1
    """An AWS/API error, or an unexpected failure."""
    USAGE = 2
    """Bad usage or input; nothing was sent to ECS."""
    REFUSED = 3
    """Refused by the policy, before any mutating call."""
    DRAIN_TIMEOUT = 4
    """A drain did not finish before its timeout."""
    PARTIAL = 5
    """A batch whose instances did not all end the same way."""


class OutputFormat(enum.StrEnum):
    """What ``--output`` writes to stdout."""

    TEXT = "text"
    """Readable tables."""
    JSON = "json"
    """One JSON document (see the module docs for its schema)."""


class LogFormat(enum.StrEnum):
    """How log events are written to stderr."""

    CONSOLE = "console"
    """One readable line per event."""
    JSON = "json"
    """One JSON object per line, for log pipelines."""


class OnTimeout(enum.StrEnum):
    """What ``drain`` does when an instance is not empty by ``--timeout``."""

    RAISE = "raise"
    """Stop waiting; the instance stays DRAINING (exit 4)."""
    REACTIVATE = "reactivate"
    """Set the instance ACTIVE again (exit 4)."""
    FORCE = "force"
    """Deregister with force, if the policy allows it."""


class StandaloneTasks(enum.StrEnum):
    """What ``drain`` does about tasks no service manages (draining never moves them)."""

    REFUSE = "refuse"
    """Refuse up front, before DRAINING is set (exit 3)."""
    WAIT = "wait"
    """Wait for them to finish, within the timeout."""
    STOP = "stop"
    """Stop them (StopTask)."""


# Per-outcome exit codes; a batch's code is derived from these (see `_batch_exit_code`).
_STATUS_EXIT: Final[Mapping[str, ExitCode]] = {
    "deregistered": ExitCode.OK,
    "would_deregister": ExitCode.OK,
    "refused": ExitCode.REFUSED,
    "timed_out": ExitCode.DRAIN_TIMEOUT,
    "failed": ExitCode.API_ERROR,
}
_STATUSES: Final = ("deregistered", "would_deregister", "refused", "failed", "timed_out")
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

_EPILOG: Final = "\n".join(
    [
        "[b]Exit codes[/b] (a batch exits with the code all its instances share, else 5):",
        "  [b]0[/b]  success (a dry run: every instance would be deregistered)",
        "  [b]1[/b]  AWS/API error (not found, access denied, unreachable, ...)",
        "  [b]2[/b]  bad usage or input: nothing was sent to ECS",
        "  [b]3[/b]  refused by the policy, before any mutating call",
        "  [b]4[/b]  a drain timed out",
        "  [b]5[/b]  a batch ended mixed (e.g. some deregistered, some refused)",
    ]
)

# --------------------------------------------------------------------------- output helpers


def _one_line(message: str) -> str:
    # "One line on stderr": AWS messages and policy summaries may carry newlines.
    return " ".join(message.split())


def _error_line(message: str) -> None:
    """Write ``error: MESSAGE`` as a single line to stderr."""
    sys.stderr.write(f"error: {_one_line(message)}\n")
    sys.stderr.flush()


# Width of text output written to a pipe or file, where there is no terminal to ask: wide
# enough that full IDs fit, which matters more than 80 columns when the output is grepped.
_PIPE_WIDTH: Final = 160


def _stdout() -> Console:
    # Created per call (not at import) so that the current sys.stdout is used: CliRunner
    # swaps it per invocation. No highlighting: IDs and counts must not change colour at random.
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH
    return console


def _stderr() -> Console:
    return Console(file=sys.stderr, highlight=False)


def _write_json(document: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- logging


# Outcome events the command's own report (table or JSON) already shows, instance by instance.
# Logged again on stderr they would only repeat it; -v brings them back for log pipelines.
_REPORTED_EVENTS: Final = frozenset(
    {
        "ecs_safe.deregister.refused",
        "ecs_safe.deregister.failed",
        "ecs_safe.drain.failed",
        "ecs_safe.drain.timed_out",
    }
)


def _drop_reported_events(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    if event.get("event") in _REPORTED_EVENTS:
        raise structlog.DropEvent
    return event


@contextlib.contextmanager
def _logging_configured(log_format: LogFormat, verbosity: int) -> Iterator[None]:
    """Send structlog events (and stdlib warnings) to stderr while the block runs.

    The library only ever calls ``structlog.get_logger("ecs_safe")``; this is where events get a
    destination. The previous configuration is restored afterwards, so that an in-process caller
    (a test, an embedding application) is left as it was.
    """
    # -1 is the demo's default: it narrates itself, so only errors are logged.
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if verbosity <= 0:
        shared.append(_drop_reported_events)
    renderer: Any
    if log_format is LogFormat.JSON:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    saved_structlog = structlog.get_config()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # botocore and aiohttp log through the standard library. They get the same renderer, so
    # that stderr stays one format, but only from WARNING up at any verbosity: their debug
    # output includes signed request headers, which have no place in our logs.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers, root.level = saved_handlers, saved_level
        structlog.configure(**saved_structlog)


# --------------------------------------------------------------------------- outcomes


def _error_json(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "code", None)
    return {"type": type(exc).__name__, "code": code, "message": _one_line(str(exc))}


def _instance_json(instance: ContainerInstance | None) -> dict[str, Any] | None:
    if instance is None:
        return None
    return {
        "container_instance_arn": instance.container_instance_arn,
        "ec2_instance_id": instance.ec2_instance_id,
        "status": instance.status,
        "agent_connected": instance.agent_connected,
        "running_tasks_count": instance.running_tasks_count,
        "pending_tasks_count": instance.pending_tasks_count,
    }


def _task_json(task: Task) -> dict[str, Any]:
    return {
        "task_arn": task.task_arn,
        "kind": task.kind,
        "last_status": task.last_status,
        "desired_status": task.desired_status,
        "group": task.group,
        "started_by": task.started_by,
    }


@dataclass(frozen=True)
class _Outcome:
    """What happened to one container instance, in the terms the CLI reports."""

    container_instance: str
    """The ID or ARN exactly as given on the command line."""
    status: str
    """One of ``deregistered``, ``would_deregister``, ``refused``, ``failed``, ``timed_out``."""
    instance: ContainerInstance | None = None
    """The instance as last seen (returned model, snapshot, or state at the deadline)."""
    forced: bool | None = None
    """Whether the deregistration used force (``None`` when none happened)."""
    request_id: str | None = None
    """The AWS request ID of the deregistration."""
    violations: tuple[Violation, ...] = ()
    """Why the policy refused."""
    tasks: tuple[Task, ...] = ()
    """Tasks seen at decision time, or the ones left at a drain's deadline."""
    error: EcsSafeError | None = None
    """The error, for ``refused``, ``failed`` and ``timed_out``."""

    @classmethod
    def from_result(cls, given: str, result: DeregistrationResult) -> _Outcome:
        """The outcome of a deregistration that happened (or would, in a dry run)."""
        return cls(
            container_instance=given,
            status="would_deregister" if result.dry_run else "deregistered",
            instance=result.container_instance,
            forced=result.forced,
            request_id=result.request_id,
            tasks=tuple(result.tasks),
        )

    @classmethod
    def from_error(cls, given: str, exc: EcsSafeError) -> _Outcome:
        """The outcome of an instance whose operation raised ``exc``."""
        if isinstance(exc, PolicyViolationError):
            return cls(
                container_instance=given,
                status="refused",
                instance=exc.container_instance,
                violations=exc.decision.violations,
                tasks=tuple(exc.tasks),
                error=exc,
            )
        if isinstance(exc, DrainTimeoutError):
            return cls(
                container_instance=given,
                status="timed_out",
                instance=exc.container_instance,
                tasks=tuple(exc.remaining_tasks),
                error=exc,
            )
        return cls(container_instance=given, status="failed", error=exc)

    @property
    def exit_code(self) -> ExitCode:
        """The instance's exit code (bad input is 2 even inside a batch)."""
        if isinstance(self.error, InvalidInputError):
            return ExitCode.USAGE
        return _STATUS_EXIT[self.status]

    def to_json(self) -> dict[str, Any]:
        """The outcome as an element of the JSON document's ``outcomes``."""
        return {
            "container_instance": self.container_instance,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "instance": _instance_json(self.instance),
            "forced": self.forced,
            "request_id": self.request_id,
            "violations": [{"rule": v.rule, "message": v.message} for v in self.violations],
            "tasks": [_task_json(t) for t in self.tasks],
            "error": _error_json(self.error) if self.error is not None else None,
        }


def _outcomes_of_batch(batch: BatchResult) -> list[_Outcome]:
    """Turn a `BatchResult` into CLI outcomes, in input order."""
    outcomes: list[_Outcome] = []
    for item in batch.outcomes:
        if item.result is not None:
            outcomes.append(_Outcome.from_result(item.container_instance, item.result))
        elif item.error is not None:
            outcomes.append(_Outcome.from_error(item.container_instance, item.error))
        else:  # pragma: no cover - BatchResult always carries one of the two
            outcomes.append(_Outcome(item.container_instance, "failed"))
    return outcomes


def _batch_exit_code(outcomes: Sequence[_Outcome]) -> ExitCode:
    """The exit code of a batch: the code every instance shares, else `ExitCode.PARTIAL`."""
    codes = {o.exit_code for o in outcomes}
    if len(codes) == 1:
        return codes.pop()
    return ExitCode.PARTIAL if codes else ExitCode.OK


def _short(ref: str | None) -> str:
    return instance_id_of(ref) if ref else "-"


def _task_name(task: Task) -> str:
    group = task.group or ""
    _, _, name = group.partition(":")
    return name or _short(task.task_arn)


def _describe_tasks(tasks: Sequence[Task]) -> str:
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


def _tasks_cell(outcome: _Outcome) -> str:
    if outcome.tasks:
        return _describe_tasks(outcome.tasks)
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
    (re.compile(r"standalone_tasks='(\w+)'"), r"--standalone-tasks \1"),
    (re.compile(r"on_timeout='(\w+)'"), r"--on-timeout \1"),
    (re.compile(r"\bforce=True\b"), "--force"),
    (re.compile(r"\bdrain_and_deregister\b"), "ecs-safe drain"),
)


def _for_display(message: str) -> str:
    """A library message in CLI terms: short IDs for ARNs, CLI flags for API arguments."""
    message = _ARN_RE.sub(
        lambda m: m["id"] if m["kind"] == "container-instance" else f"task/{m['id']}", message
    )
    for pattern, replacement in _API_TO_CLI:
        message = pattern.sub(replacement, message)
    return _one_line(message)


def _plan_details(command: str, outcome: _Outcome) -> str:
    count = len(outcome.tasks)
    if command == "drain":
        if not count:
            return "would set DRAINING (nothing to move), then deregister"
        return f"would set DRAINING, wait for {count} task(s) to leave, then deregister"
    if outcome.forced and count:
        return f"would deregister with force, orphaning {count} task(s)"
    return "would deregister"


def _details(command: str, outcome: _Outcome) -> Text:
    text = Text()
    if outcome.status == "refused":
        for i, violation in enumerate(outcome.violations):
            text.append("\n" if i else "")
            text.append(f"{violation.rule}: ", style="bold")
            text.append(_for_display(violation.message))
    elif outcome.status in ("failed", "timed_out") and outcome.error is not None:
        text.append(_for_display(str(outcome.error)))
    elif outcome.status == "would_deregister":
        text.append(_plan_details(command, outcome))
    elif outcome.status == "deregistered":
        text.append("forced; " if outcome.forced else "")
        text.append(f"request {outcome.request_id}" if outcome.request_id else "verified gone")
    return text


@dataclass
class _BatchReport:
    """The outcome of ``deregister`` or ``drain``: one outcome per instance, in input order."""

    command: str
    """``deregister`` or ``drain``."""
    cluster: str | None
    """The cluster as given (``None``: the default cluster)."""
    dry_run: bool
    """Whether nothing was changed."""
    outcomes: list[_Outcome] = field(default_factory=list)
    """One per instance, in input order."""

    @property
    def exit_code(self) -> ExitCode:
        """See `_batch_exit_code`."""
        return _batch_exit_code(self.outcomes)

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        counts = Counter(o.status for o in self.outcomes)
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": self.command,
            "cluster": self.cluster,
            "dry_run": self.dry_run,
            "exit_code": int(self.exit_code),
            "error": None,
            "summary": {"total": len(self.outcomes), **{s: counts[s] for s in _STATUSES}},
            "outcomes": [o.to_json() for o in self.outcomes],
        }

    def render(self, console: Console) -> None:
        """Print the report as a table and a one-line summary."""
        title = f"{self.command} · cluster {self.cluster or 'default'}"
        if self.dry_run:
            title += " · DRY RUN: the plan, nothing was changed"
        # IDs never wrap (they are copied from here); the prose columns share what is left,
        # most of it for the details, which hold the policy's reasons.
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAVY, expand=True)
        table.add_column("Container instance", no_wrap=True, overflow="fold")
        table.add_column("EC2 instance", no_wrap=True, overflow="fold")
        table.add_column("Result", no_wrap=True)
        table.add_column("Tasks", ratio=1)
        table.add_column("Details", ratio=3)
        for outcome in self.outcomes:
            instance = outcome.instance
            table.add_row(
                Text(_short(outcome.container_instance)),
                Text((instance.ec2_instance_id if instance else None) or "-"),
                Text(_STATUS_LABEL[outcome.status], style=_STATUS_STYLE[outcome.status]),
                Text(_tasks_cell(outcome)),
                _details(self.command, outcome),
            )
        console.print(table)
        counts = Counter(o.status for o in self.outcomes)
        summary = ", ".join(f"{counts[s]} {_STATUS_LABEL[s]}" for s in _STATUSES if counts[s])
        code = self.exit_code
        console.print(Text(f"{summary} (exit {int(code)}: {_exit_meaning(code)})"))


def _exit_meaning(code: ExitCode) -> str:
    return {
        ExitCode.OK: "success",
        ExitCode.API_ERROR: "AWS/API error",
        ExitCode.USAGE: "bad input",
        ExitCode.REFUSED: "refused by policy",
        ExitCode.DRAIN_TIMEOUT: "drain timed out",
        ExitCode.PARTIAL: "mixed batch",
    }[code]


@dataclass
class _DescribeReport:
    """The outcome of ``describe``: the instances, and their tasks when asked for."""

    cluster: str | None
    """The cluster as given (``None``: the default cluster)."""
    instances: list[ContainerInstance]
    """In input order."""
    tasks: dict[str, list[Task]] | None = None
    """Tasks by container instance ARN, when ``--tasks`` was given."""

    exit_code: ExitCode = ExitCode.OK
    """Always success: a failed describe raises instead."""

    def _tasks_of(self, instance: ContainerInstance) -> list[Task] | None:
        if self.tasks is None:
            return None
        return self.tasks.get(instance.container_instance_arn or "", [])

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        items = []
        for instance in self.instances:
            tasks = self._tasks_of(instance)
            registered = instance.registered_at
            items.append(
                {
                    **(_instance_json(instance) or {}),
                    "registered_at": registered.isoformat() if registered else None,
                    "tasks": None if tasks is None else [_task_json(t) for t in tasks],
                }
            )
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": "describe",
            "cluster": self.cluster,
            "exit_code": int(self.exit_code),
            "error": None,
            "container_instances": items,
        }

    def render(self, console: Console) -> None:
        """Print the instances (and tasks) as tables."""
        table = Table(
            title=f"cluster {self.cluster or 'default'}",
            title_justify="left",
            box=box.SIMPLE_HEAVY,
        )
        for column in ("Container instance", "EC2 instance", "Status", "Agent"):
            # Fold rather than cut: a truncated ID cannot be copied into the next command.
            table.add_column(column, no_wrap=True, overflow="fold")
        table.add_column("Running", justify="right")
        table.add_column("Pending", justify="right")
        if self.tasks is not None:
            table.add_column("Tasks")
        for instance in self.instances:
            connected = instance.agent_connected
            agent = "?" if connected is None else ("connected" if connected else "disconnected")
            row = [
                Text(_short(instance.container_instance_arn)),
                Text(instance.ec2_instance_id or "-"),
                Text(instance.status or "?", style=_instance_status_style(instance.status)),
                Text(agent),
                Text(_count(instance.running_tasks_count)),
                Text(_count(instance.pending_tasks_count)),
            ]
            tasks = self._tasks_of(instance)
            if tasks is not None:
                row.append(Text(_describe_tasks(tasks) or "none"))
            table.add_row(*row)
        console.print(table)


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _instance_status_style(status: str | None) -> str:
    return {"ACTIVE": "green", "DRAINING": "yellow"}.get(status or "", "red")


class _Report(Protocol):
    @property
    def exit_code(self) -> ExitCode: ...

    def to_json(self) -> dict[str, Any]: ...

    def render(self, console: Console) -> None: ...


# --------------------------------------------------------------------------- progress


class _ProgressDisplay:
    """A rich progress display on stderr for drains and fleet runs.

    It shows only when stderr is a terminal: piped or redirected output gets no bar (and no
    control characters). `callback` is what the client's ``progress=`` receives; `advance`
    counts finished instances.
    """

    def __init__(self, description: str, total: int, *, enabled: bool | None = None) -> None:
        console = _stderr()
        self.enabled = console.is_terminal if enabled is None else enabled
        self._progress: Progress | None = None
        self._overall: TaskID | None = None
        self._rows: dict[str, TaskID] = {}
        self._description = description
        self._total = total
        self._console = console

    def __enter__(self) -> _ProgressDisplay:
        if self.enabled:
            from rich.progress import (  # noqa: PLC0415 - only a terminal run needs them
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.start()
            self._overall = self._progress.add_task(self._description, total=self._total)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, container_instance: str | None = None) -> None:
        """Count one instance as finished (and drop its drain row)."""
        if self._progress is None or self._overall is None:
            return
        self._progress.advance(self._overall)
        row = self._rows.pop(_short(container_instance), None) if container_instance else None
        if row is not None:
            self._progress.remove_task(row)

    def callback(self, event: Mapping[str, Any]) -> None:
        """Receive one progress event from the client (drain and batch events)."""
        if self._progress is None:
            return
        name = event.get("event")
        ref = event.get("container_instance_arn") or event.get("container_instance")
        if name == "ecs_safe.batch.progress":
            self.advance(str(ref) if ref else None)
            return
        remaining = event.get("remaining_tasks")
        if name == "ecs_safe.drain.progress" and ref and isinstance(remaining, int):
            key = _short(str(ref))
            row = self._rows.get(key)
            if row is None:
                row = self._progress.add_task(f"  draining {key}", total=max(remaining, 1))
                self._rows[key] = row
            total = max(self._progress.tasks[row].total or 0, remaining, 1)
            self._progress.update(
                row,
                total=total,
                completed=total - remaining,
                description=f"  draining {key}: {remaining} task(s) left",
            )


# --------------------------------------------------------------------------- the async cores


@dataclass(frozen=True)
class _Connection:
    """Where and how to reach ECS (``--region``, ``--endpoint-url``, ``--profile``)."""

    region: str | None = None
    """The AWS Region (None: the AWS configuration chain)."""
    endpoint_url: str | None = None
    """An ECS-compatible endpoint (None: AWS's)."""
    profile: str | None = None
    """A named profile of the shared AWS config files."""
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra `EcsSafeClient` keywords (the demo passes a LocalEcs session)."""

    def open(self, policy: Policy, *, audit_log: Path | None = None) -> EcsSafeClient:
        """A new (unopened) `EcsSafeClient` for this connection (appending to ``audit_log``)."""
        from ecs_safe.client import EcsSafeClient  # noqa: PLC0415

        kwargs: dict[str, Any] = {
            "region_name": self.region,
            "endpoint_url": self.endpoint_url,
            "profile_name": self.profile,
            **self.client_kwargs,
        }
        return EcsSafeClient(policy=policy, audit_log=audit_log, **kwargs)


def _cli_policy(*, allow_standalone_loss: bool = False) -> Policy:
    """The CLI's policy: the default rules, plus `ProtectStandaloneTasks` unless waived."""
    policy = default_policy()
    return policy if allow_standalone_loss else policy.with_rules(ProtectStandaloneTasks())


def _validate_targets(instances: Sequence[str], cluster: str | None) -> list[str]:
    """Check every instance (and the cluster) before anything is sent; reject duplicates.

    Raises:
        InvalidInputError: the first problem found, naming the offending argument.
    """
    validate_cluster(cluster)
    seen: dict[str, str] = {}
    for ref in instances:
        validate_container_instance(ref, argument="container instance")
        check_same_cluster(ref, cluster)
        key = instance_id_of(ref)
        if key in seen:
            raise InvalidInputError(
                f"container instance {key} is given twice ({seen[key]!r} and {ref!r})"
            )
        seen[key] = ref
    return list(instances)


async def _run_deregister(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    force: bool,
    dry_run: bool,
    concurrency: int,
) -> _BatchReport:
    """``ecs-safe deregister``: `EcsSafeClient.deregister_many` over the whole batch."""
    with _ProgressDisplay(
        "planning" if dry_run else "deregistering", total=len(instances)
    ) as display:
        batch = await ecs.deregister_many(
            instances,
            cluster=cluster,
            force=force,
            drain=False,
            dry_run=dry_run,
            concurrency=concurrency,
            progress=display.callback,
        )
    return _BatchReport("deregister", cluster, dry_run, _outcomes_of_batch(batch))


async def _run_drain(
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
) -> _BatchReport:
    """``ecs-safe drain``: `EcsSafeClient.drain_and_deregister` per instance, a few at once.

    One call per instance rather than one fleet call (``deregister_many(drain=True)`` sets the
    whole batch DRAINING up front): this way at most ``concurrency`` instances are out of
    service at any moment, a rolling drain that never takes a fleet's capacity away at once,
    and every ``--on-timeout`` choice (``reactivate`` included) is available. Each instance
    gets its own deadline, its own verdict (exit 4 on timeout) and its own progress row.
    """
    if dry_run:
        return await _plan_drain(
            ecs,
            instances,
            cluster=cluster,
            standalone_tasks=standalone_tasks,
            concurrency=concurrency,
        )
    limit = asyncio.Semaphore(concurrency)

    with _ProgressDisplay("draining", total=len(instances)) as display:

        async def one(ref: str) -> _Outcome:
            async with limit:
                try:
                    result = await ecs.drain_and_deregister(
                        ref,
                        cluster=cluster,
                        timeout=timeout,
                        poll_interval=poll_interval,
                        on_timeout=on_timeout.value,
                        standalone_tasks=standalone_tasks.value,
                        progress=display.callback,
                    )
                except EcsSafeError as exc:
                    outcome = _Outcome.from_error(ref, exc)
                else:
                    outcome = _Outcome.from_result(ref, result)
                display.advance(ref)
                return outcome

        outcomes = await asyncio.gather(*(one(ref) for ref in instances))
    return _BatchReport("drain", cluster, False, list(outcomes))


async def _plan_drain(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    standalone_tasks: StandaloneTasks,
    concurrency: int,
) -> _BatchReport:
    """The plan of a drain, from reads only.

    `EcsSafeClient.deregister_many` with ``drain`` and ``dry_run`` runs the very pre-flight
    `EcsSafeClient.drain_and_deregister` runs before it sets DRAINING, with the describes
    batched across the fleet: the plan honours ``--standalone-tasks`` and the policy exactly as
    the drain would, and makes no mutating call.
    """
    with _ProgressDisplay("planning", total=len(instances)) as display:
        batch = await ecs.deregister_many(
            instances,
            cluster=cluster,
            drain=True,
            dry_run=True,
            concurrency=concurrency,
            standalone_tasks=standalone_tasks.value,
            progress=display.callback,
        )
    return _BatchReport("drain", cluster, True, _outcomes_of_batch(batch))


async def _run_describe(
    ecs: EcsSafeClient, instances: Sequence[str], *, cluster: str | None, with_tasks: bool
) -> _DescribeReport:
    """``ecs-safe describe``: `EcsSafeClient.describe_container_instances` (and `list_tasks`)."""
    described = await ecs.describe_container_instances(instances, cluster=cluster)
    tasks: dict[str, list[Task]] | None = None
    if with_tasks:
        lists = await asyncio.gather(*(ecs.list_tasks(ref, cluster=cluster) for ref in instances))
        tasks = {
            ci.container_instance_arn or "": found
            for ci, found in zip(described, lists, strict=True)
        }
    return _DescribeReport(cluster, described, tasks)


# --------------------------------------------------------------------------- command plumbing


def _exit_code_of_error(exc: EcsSafeError) -> ExitCode:
    if isinstance(exc, InvalidInputError):
        return ExitCode.USAGE
    if isinstance(exc, PolicyViolationError):
        return ExitCode.REFUSED
    if isinstance(exc, DrainTimeoutError):
        return ExitCode.DRAIN_TIMEOUT
    return ExitCode.API_ERROR


def _failure_document(command: str, cluster: str | None, exc: EcsSafeError) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema_version": JSON_SCHEMA_VERSION,
        "command": command,
        "cluster": cluster,
    }
    if command == "describe":
        document.update(exit_code=0, error=None, container_instances=[])
    else:
        summary = {"total": 0, **dict.fromkeys(_STATUSES, 0)}
        document.update(dry_run=False, exit_code=0, error=None, summary=summary, outcomes=[])
    document["exit_code"] = int(_exit_code_of_error(exc))
    document["error"] = _error_json(exc)
    return document


def _execute(
    command: str,
    cluster: str | None,
    output: OutputFormat,
    work: Callable[[], Coroutine[Any, Any, _Report]],
) -> NoReturn:
    """Run one command's async core once, report it, and exit with its code.

    This is the edge between the CLI and the async library: the one ``asyncio.run`` of the
    command, and the one place its errors become an ``error:`` line and an exit code.
    """
    try:
        report = asyncio.run(work())
    except EcsSafeError as exc:
        code = _exit_code_of_error(exc)
        if output is OutputFormat.JSON:
            _write_json(_failure_document(command, cluster, exc))
        _error_line(str(exc))
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        hint = " (instances being drained stay DRAINING)" if command == "drain" else ""
        _error_line(f"interrupted{hint}")
        raise typer.Exit(130) from None
    if output is OutputFormat.JSON:
        _write_json(report.to_json())
    else:
        report.render(_stdout())
    raise typer.Exit(report.exit_code)


# --------------------------------------------------------------------------- the app


class _Group(TyperGroup):
    """The command group, with usage errors as one ``error:`` line instead of a panel.

    typer prints a multi-line rich panel for usage errors; scripts and humans both read a single
    line better, and the exit code (2) stays click's.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; exit (or, with ``standalone_mode=False``, return) with its code."""
        code: int
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = int(result) if isinstance(result, int) else 0
        except typer.Abort:
            _error_line("aborted")
            code = 130
        except Exception as exc:  # click's usage errors come from typer's vendored click
            code = _usage_error(exc)
        if not standalone_mode:
            return code
        sys.exit(code)


def _usage_error(exc: Exception) -> int:
    """Report a click usage error in one line; anything else is an unexpected failure."""
    format_message = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if not callable(format_message) or not isinstance(exit_code, int):
        # Not click's: a bug of ours. One line still, but say how to see more.
        _error_line(f"unexpected {type(exc).__name__}: {exc} (please report this)")
        return int(ExitCode.API_ERROR)
    message = str(format_message())
    if type(exc).__name__ == "NoArgsIsHelpError":
        # The help has been printed already (typer prints it while building the error).
        return exit_code
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    _error_line(message.rstrip(".") + hint)
    return exit_code


app = typer.Typer(
    name="ecs-safe",
    cls=_Group,
    help="Take container instances out of an Amazon ECS cluster safely: policy-checked, "
    "drained, rate-limited. Refusals happen before any mutating call.",
    epilog=_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

Instances = Annotated[
    list[str],
    typer.Argument(
        help="Container instance IDs or full ARNs (one or more).",
        metavar="CONTAINER_INSTANCE...",
        show_default=False,
    ),
]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        "-c",
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
        min=1,
        max=100,
        help="Instances handled at once (ECS rate limits are respected on top of this).",
        envvar="ECS_SAFE_CONCURRENCY",
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="AWS Region \\[default: from the AWS configuration chain].",
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
        show_default=False,
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="An ECS-compatible endpoint, e.g. a local one \\[default: AWS's].",
        envvar="AWS_ENDPOINT_URL_ECS",
        show_default=False,
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
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
        help="Append a JSONL audit record of every decision and every mutating call to this "
        "file, each written before the call returns (see the docs' reliability page).",
        envvar="ECS_SAFE_AUDIT_LOG",
        dir_okay=False,
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


@app.command(epilog=_EPILOG)
def deregister(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: Instances,
    cluster: ClusterOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Deregister even with tasks running: they are orphaned (services replace "
            "theirs elsewhere). The policy still decides.",
        ),
    ] = False,
    allow_standalone_loss: Annotated[
        bool,
        typer.Option(
            "--allow-standalone-loss",
            help="With --force, also orphan standalone tasks, which nothing replaces.",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    concurrency: ConcurrencyOpt = 10,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    audit_log: AuditLogOpt = None,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Deregister container instances, refusing (before any mutating call) what is unsafe."""
    connection = _Connection(region, endpoint_url, profile)

    async def work() -> _BatchReport:
        targets = _validate_targets(instances, cluster)
        policy = _cli_policy(allow_standalone_loss=allow_standalone_loss)
        async with connection.open(policy, audit_log=audit_log) as ecs:
            return await _run_deregister(
                ecs,
                targets,
                cluster=cluster,
                force=force,
                dry_run=dry_run,
                concurrency=concurrency,
            )

    with _logging_configured(log_format, verbose):
        _execute("deregister", cluster, output, work)


@app.command(epilog=_EPILOG)
def drain(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: Instances,
    cluster: ClusterOpt = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="Seconds each instance may take to empty.",
            envvar="ECS_SAFE_TIMEOUT",
        ),
    ] = 600.0,
    poll_interval: Annotated[
        float,
        typer.Option("--poll-interval", help="Seconds between checks of the task list."),
    ] = 5.0,
    on_timeout: Annotated[
        OnTimeout,
        typer.Option(
            "--on-timeout",
            help="At the timeout: raise (leave it DRAINING), reactivate (set it ACTIVE), or "
            "force (deregister with force, if the policy allows).",
            case_sensitive=False,
        ),
    ] = OnTimeout.RAISE,
    standalone_tasks: Annotated[
        StandaloneTasks,
        typer.Option(
            "--standalone-tasks",
            help="Tasks no service manages (draining never moves them): refuse up front, "
            "wait for them, or stop them.",
            case_sensitive=False,
        ),
    ] = StandaloneTasks.REFUSE,
    dry_run: DryRunOpt = False,
    concurrency: ConcurrencyOpt = 10,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    audit_log: AuditLogOpt = None,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Drain container instances (DRAINING, wait until no task is left), then deregister them."""
    connection = _Connection(region, endpoint_url, profile)

    async def work() -> _BatchReport:
        targets = _validate_targets(instances, cluster)
        # Checked here, not per instance, so that a bad value is one usage error (exit 2).
        check_positive_number(timeout, "--timeout")
        check_positive_number(poll_interval, "--poll-interval")
        async with connection.open(_cli_policy(), audit_log=audit_log) as ecs:
            return await _run_drain(
                ecs,
                targets,
                cluster=cluster,
                timeout=timeout,
                poll_interval=poll_interval,
                on_timeout=on_timeout,
                standalone_tasks=standalone_tasks,
                dry_run=dry_run,
                concurrency=concurrency,
            )

    with _logging_configured(log_format, verbose):
        _execute("drain", cluster, output, work)


@app.command(epilog=_EPILOG)
def describe(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: Instances,
    cluster: ClusterOpt = None,
    tasks: Annotated[
        bool,
        typer.Option("--tasks", help="Also list each instance's tasks (not STOPPED)."),
    ] = False,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Show container instances: status, agent, task counts (and tasks with --tasks)."""
    connection = _Connection(region, endpoint_url, profile)

    async def work() -> _DescribeReport:
        targets = _validate_targets(instances, cluster)
        async with connection.open(_cli_policy()) as ecs:
            return await _run_describe(ecs, targets, cluster=cluster, with_tasks=tasks)

    with _logging_configured(log_format, verbose):
        _execute("describe", cluster, output, work)


@app.command()
def demo(
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Walk through refusal, dry run, drain and deregistration on an embedded local ECS.

    Needs no AWS account: it starts moto's ECS on loopback (the ``local`` extra), seeds a small
    cluster and runs the other commands against it. Takes a few seconds.
    """
    # The demo narrates everything itself; log events only when asked for (-v).
    with _logging_configured(log_format, verbose if verbose else -1):
        try:
            asyncio.run(_demo())
        except ImportError as exc:
            _error_line(f"{exc}; the demo needs it: pip install 'ecs-safe[local]'")
            raise typer.Exit(ExitCode.API_ERROR) from None
        except (EcsSafeError, _DemoError) as exc:
            _error_line(f"the demo did not go as planned: {exc}")
            raise typer.Exit(ExitCode.API_ERROR) from None
        except KeyboardInterrupt:
            _error_line("interrupted")
            raise typer.Exit(130) from None


# --------------------------------------------------------------------------- the demo


class _DemoError(Exception):
    """A demo step did not end as the narrative expects."""


_DEMO_CLUSTER: Final = "demo"


async def _demo() -> None:
    from ecs_safe.local import LocalEcs  # noqa: PLC0415 - moto is imported only for the demo

    out = _stdout()
    started = time.monotonic()
    out.rule("[b]ecs-safe demo[/b]: an embedded ECS endpoint, no AWS account needed")
    async with LocalEcs() as local:
        fleet = _seed_demo(local)
        out.print(
            f"A local ECS endpoint (moto) runs at {local.endpoint_url}. Cluster "
            f"[b]{_DEMO_CLUSTER}[/b] holds 4 container instances:"
        )
        for role, ref in fleet.roles():
            out.print(Text(f"  {_short(ref)}  {role}"))
        connection = _Connection(client_kwargs=dict(local.client_kwargs()))
        async with connection.open(_cli_policy()) as ecs:
            await _demo_steps(out, local, ecs, fleet)
    out.print()
    out.rule(f"done in {time.monotonic() - started:.1f} s")
    out.print(
        "Next: [b]ecs-safe --help[/b]; against AWS, the same commands with --cluster "
        "(and --region/--profile as usual). Start with --dry-run."
    )


@dataclass(frozen=True)
class _Fleet:
    idle: tuple[str, str]
    web_host: str
    batch_host: str

    @property
    def all(self) -> list[str]:
        return [*self.idle, self.web_host, self.batch_host]

    def roles(self) -> list[tuple[str, str]]:
        return [
            ("idle", self.idle[0]),
            ("idle", self.idle[1]),
            ("web host: 2 tasks of service 'web'", self.web_host),
            ("batch host: 1 'web' task and 1 standalone task 'nightly-report'", self.batch_host),
        ]


def _seed_demo(local: LocalEcs) -> _Fleet:
    local.create_cluster(_DEMO_CLUSTER)
    local.create_service(_DEMO_CLUSTER, "web")
    idle_a, idle_b, web_host, batch_host = local.register_instances(_DEMO_CLUSTER, count=4)
    local.start_service_task(_DEMO_CLUSTER, web_host, "web", count=2)
    local.start_service_task(_DEMO_CLUSTER, batch_host, "web")
    local.start_standalone_task(_DEMO_CLUSTER, batch_host, family="nightly-report")
    return _Fleet((idle_a, idle_b), web_host, batch_host)


# The ECS calls that change something; the demo counts them to show what a refusal did not send.
_MUTATING_CALLS: Final = (
    "DeregisterContainerInstance",
    "UpdateContainerInstancesState",
    "StopTask",
)


def _mutating_calls(local: LocalEcs) -> int:
    return sum(local.calls(operation) for operation in _MUTATING_CALLS)


def _command_line(out: Console, step: str, command: str, refs: Sequence[str]) -> None:
    out.print()
    out.rule(Text(step, style="bold"), align="left")
    ids = " ".join(_short(ref) for ref in refs)
    out.print(Text(f"$ ecs-safe {command} --cluster {_DEMO_CLUSTER} {ids}", style="bold cyan"))


def _expect(report: _BatchReport, *statuses: str) -> None:
    got = tuple(o.status for o in report.outcomes)
    if got != statuses:
        raise _DemoError(f"expected {', '.join(statuses)}; got {', '.join(got)}")


async def _demo_steps(out: Console, local: LocalEcs, ecs: EcsSafeClient, fleet: _Fleet) -> None:
    def deregister(refs: list[str], *, force: bool = False, dry_run: bool = False) -> Any:
        return _run_deregister(
            ecs, refs, cluster=_DEMO_CLUSTER, force=force, dry_run=dry_run, concurrency=4
        )

    _command_line(out, "0. What is there", "describe --tasks", fleet.all)
    (await _run_describe(ecs, fleet.all, cluster=_DEMO_CLUSTER, with_tasks=True)).render(out)

    _command_line(out, "1. A refusal names every blocker", "deregister", [fleet.web_host])
    report = await deregister([fleet.web_host])
    _expect(report, "refused")
    report.render(out)

    _command_line(
        out, "   --force would orphan a standalone task", "deregister --force", [fleet.batch_host]
    )
    report = await deregister([fleet.batch_host], force=True)
    _expect(report, "refused")
    report.render(out)
    out.print(f"Mutating calls sent to ECS so far: {_mutating_calls(local)} (refusals come first).")

    _command_line(out, "2. A dry-run fleet plan", "deregister --dry-run", fleet.all)
    report = await deregister(fleet.all, dry_run=True)
    _expect(report, "would_deregister", "would_deregister", "refused", "refused")
    report.render(out)
    out.print(f"Mutating calls sent to ECS so far: {_mutating_calls(local)}.")

    _command_line(out, "3. A drain", "drain", [fleet.web_host])
    out.print(
        Text(
            "LocalEcs has no service scheduler (moto never moves tasks off a DRAINING "
            "instance), so the demo plays the scheduler's part: a moment after draining "
            "starts, it stops the service tasks, as ECS would once their replacements run "
            "elsewhere.",
            style="italic",
        )
    )
    report = await _drain_with_scheduler(local, ecs, fleet.web_host, StandaloneTasks.REFUSE)
    _expect(report, "deregistered")
    report.render(out)

    _command_line(
        out, "4. A drain refused because of a standalone task", "drain", [fleet.batch_host]
    )
    report = await _drain_with_scheduler(local, ecs, fleet.batch_host, StandaloneTasks.REFUSE)
    _expect(report, "refused")
    report.render(out)
    out.print("Refused up front: the instance was never set DRAINING.")

    _command_line(
        out,
        "   ... unless you say what to do with it",
        "drain --standalone-tasks stop",
        [fleet.batch_host],
    )
    report = await _drain_with_scheduler(local, ecs, fleet.batch_host, StandaloneTasks.STOP)
    _expect(report, "deregistered")
    report.render(out)

    _command_line(out, "5. Deregister the idle instances", "deregister", list(fleet.idle))
    report = await deregister(list(fleet.idle))
    _expect(report, "deregistered", "deregistered")
    report.render(out)


async def _drain_with_scheduler(
    local: LocalEcs, ecs: EcsSafeClient, instance: str, standalone_tasks: StandaloneTasks
) -> _BatchReport:
    scheduler = asyncio.create_task(_play_scheduler(local, ecs, instance))
    try:
        return await _run_drain(
            ecs,
            [instance],
            cluster=_DEMO_CLUSTER,
            timeout=20.0,
            # Quick polls: the demo's "scheduler" moves tasks in a fraction of a second.
            poll_interval=0.1,
            on_timeout=OnTimeout.RAISE,
            standalone_tasks=standalone_tasks,
            dry_run=False,
            concurrency=1,
        )
    finally:
        scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduler


async def _play_scheduler(local: LocalEcs, ecs: EcsSafeClient, instance: str) -> None:
    """Stop the service tasks of ``instance`` shortly after it turns DRAINING.

    That is what ECS's service scheduler does (after starting replacements elsewhere); moto
    has no scheduler, so without this a drain in the demo would never finish.
    """
    while True:
        await asyncio.sleep(0.05)
        [described] = await ecs.describe_container_instances([instance], cluster=_DEMO_CLUSTER)
        if described.status == "DRAINING":
            break
    await asyncio.sleep(0.2)
    for task in await ecs.list_tasks(instance, cluster=_DEMO_CLUSTER):
        if task.kind != "standalone" and task.task_arn:
            await asyncio.to_thread(local.stop_task, _DEMO_CLUSTER, task.task_arn)


def main() -> None:
    """The ``ecs-safe`` console script."""
    app()
