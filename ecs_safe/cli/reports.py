"""What a command reports: one outcome per instance, and the ``--output json`` documents.

The JSON layout is schema version 1 (`JSON_SCHEMA_VERSION`), documented in `ecs_safe.cli`.
Rendering as text lives in `ecs_safe.cli.rendering`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ecs_safe._validation import instance_id_of
from ecs_safe.cli.exit_codes import ExitCode, exit_code_of_error
from ecs_safe.cli.targets import names_host
from ecs_safe.errors import (
    DrainTimeoutError,
    EcsSafeError,
    PolicyViolationError,
    TerminationError,
)

if TYPE_CHECKING:
    from ecs_safe.cli.listing import ListReport
    from ecs_safe.cli.replacing import ReplaceReport
    from ecs_safe.cli.targets import Selection
    from ecs_safe.models import ContainerInstance, Task
    from ecs_safe.policy import Decision, Violation
    from ecs_safe.results import BatchResult, DeregistrationResult

__all__ = [
    "JSON_SCHEMA_VERSION",
    "STATUSES",
    "BatchReport",
    "DescribeReport",
    "Interrupted",
    "Outcome",
    "Report",
    "batch_exit_code",
    "error_json",
    "failure_document",
    "instance_json",
    "notes_of",
    "one_line",
    "outcomes_of_batch",
    "termination_json",
]

#: The version of the ``--output json`` document layout; bumped on any incompatible change.
JSON_SCHEMA_VERSION: Final = 1

#: Every status an outcome can have, in the order summaries list them.
STATUSES: Final = (
    "deregistered",
    "would_deregister",
    "drained",
    "would_drain",
    "refused",
    "failed",
    "timed_out",
)

# Per-outcome exit codes; a batch's code is derived from these (see `batch_exit_code`).
_STATUS_EXIT: Final[Mapping[str, ExitCode]] = {
    "deregistered": ExitCode.OK,
    "would_deregister": ExitCode.OK,
    "drained": ExitCode.OK,
    "would_drain": ExitCode.OK,
    "refused": ExitCode.REFUSED,
    "timed_out": ExitCode.DRAIN_TIMEOUT,
    "failed": ExitCode.API_ERROR,
}


class Interrupted(EcsSafeError):
    """An instance's operation was cut short (or never started) by SIGINT or SIGTERM."""

    code = "Interrupted"


def one_line(message: str) -> str:
    """``message`` on one line: AWS messages and policy summaries may carry newlines."""
    return " ".join(message.split())


def error_json(exc: BaseException) -> dict[str, Any]:
    """An error as the JSON documents' ``ERROR``: ``{"type", "code", "message"}``."""
    code = getattr(exc, "code", None)
    return {"type": type(exc).__name__, "code": code, "message": one_line(str(exc))}


def instance_json(instance: ContainerInstance | None) -> dict[str, Any] | None:
    """The fields of an instance the JSON documents carry (``None`` stays ``None``)."""
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
class Outcome:
    """What happened to one container instance, in the terms the CLI reports."""

    container_instance: str
    """The input exactly as given on the command line (an ID, ARN, EC2 or managed instance
    ID), or the ARN of an instance a selector listed."""
    status: str
    """One of `STATUSES`."""
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
    already: bool = False
    """``deregistered`` before this run (ECS reports it INACTIVE); nothing was sent."""
    target: str | None = None
    """The container instance acted on (the ARN an EC2 ID resolved to), if not the input."""
    selected_by: str | None = None
    """The selectors that listed the instance (``--filter '...'``); ``None`` for an input."""
    ec2_hint: str | None = None
    """The EC2 instance ID the resolution learned, for when ``instance`` is unknown."""

    @classmethod
    def drained(cls, given: str, instance: ContainerInstance) -> Outcome:
        """The outcome of ``drain --no-deregister``: DRAINING, empty, still registered."""
        return cls(given, "drained", instance=instance)

    @property
    def container_instance_id(self) -> str | None:
        """The container instance acted on, as its ID: resolved, not as given."""
        ref = (self.instance.container_instance_arn if self.instance else None) or self.target
        if ref is None and not names_host(self.container_instance):
            ref = self.container_instance
        return instance_id_of(ref) if ref else None

    @property
    def ec2_instance_id(self) -> str | None:
        """The EC2 (or managed) instance ID, when known."""
        known = self.instance.ec2_instance_id if self.instance else None
        if known:
            return known
        if self.ec2_hint:
            return self.ec2_hint
        given = self.container_instance
        return given if names_host(given) else None

    notes: tuple[str, ...] = ()
    """The decision's warnings and the numbers of the services a drain's wave affects."""
    termination: Mapping[str, Any] | None = None
    """With ``--terminate``: how the EC2 instance was (would be) terminated (`termination_json`)."""

    @classmethod
    def already_deregistered(cls, given: str, instance: ContainerInstance) -> Outcome:
        """The outcome of an instance ECS reports INACTIVE: deregistered, and no request sent.

        In the JSON it is ``deregistered`` with ``instance.status`` ``INACTIVE`` and no
        ``request_id`` (schema version 1 has no status of its own for it).
        """
        return cls(given, "deregistered", instance=instance, forced=False, already=True)

    @classmethod
    def from_result(cls, given: str, result: DeregistrationResult) -> Outcome:
        """The outcome of a deregistration that happened (or would, in a dry run)."""
        return cls(
            container_instance=given,
            status="would_deregister" if result.dry_run else "deregistered",
            instance=result.container_instance,
            forced=result.forced,
            request_id=result.request_id,
            tasks=tuple(result.tasks),
            notes=notes_of(result.decision),
            termination=termination_json(result),
        )

    @classmethod
    def from_error(cls, given: str, exc: EcsSafeError) -> Outcome:
        """The outcome of an instance whose operation raised ``exc``."""
        if isinstance(exc, TerminationError):
            # Deregistered, not terminated: failed, with what the deregistration returned.
            done = cls.from_result(given, exc.result)
            return replace(done, status="failed", error=exc)
        if isinstance(exc, PolicyViolationError):
            return cls(
                container_instance=given,
                status="refused",
                instance=exc.container_instance,
                violations=exc.decision.violations,
                tasks=tuple(exc.tasks),
                error=exc,
                notes=notes_of(exc.decision),
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
        if self.error is not None and exit_code_of_error(self.error) is ExitCode.USAGE:
            return ExitCode.USAGE
        return _STATUS_EXIT[self.status]

    def to_json(self) -> dict[str, Any]:
        """The outcome as an element of the JSON document's ``outcomes``."""
        return {
            "container_instance": self.container_instance,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "instance": instance_json(self.instance),
            "forced": self.forced,
            "request_id": self.request_id,
            "violations": [{"rule": v.rule, "message": v.message} for v in self.violations],
            "tasks": [_task_json(t) for t in self.tasks],
            "error": error_json(self.error) if self.error is not None else None,
            "input": None if self.selected_by is not None else self.container_instance,
            "selected_by": self.selected_by,
            "container_instance_id": self.container_instance_id,
            "ec2_instance_id": self.ec2_instance_id,
            # Only when there are some, so that schema version 1's outcome keys stay as they
            # were for every outcome without a drain's service numbers or warnings.
            **({"notes": list(self.notes)} if self.notes else {}),
            **({"termination": dict(self.termination)} if self.termination else {}),
        }


def termination_json(result: DeregistrationResult) -> dict[str, Any] | None:
    """How a result's EC2 instance was (would be) terminated; ``None`` without ``--terminate``.

    The outcome's ``termination`` key in the JSON (schema version 1; only with ``--terminate``).
    """
    if result.termination is None:
        return None
    return {
        "method": result.termination,
        "auto_scaling_group": result.auto_scaling_group,
        "decrement_desired_capacity": result.decrement_desired_capacity,
        "terminated": result.terminated,
        "verified": result.termination_verified,
    }


def notes_of(decision: Decision) -> tuple[str, ...]:
    """The lines a plan shows beyond allowed/refused: each service's numbers, each warning."""
    return (
        *(impact.summary() for impact in decision.services),
        *(f"warning: {caution}" for caution in decision.warnings),
    )


def outcomes_of_batch(batch: BatchResult) -> list[Outcome]:
    """Turn a `BatchResult` into CLI outcomes, in input order."""
    outcomes: list[Outcome] = []
    for item in batch.outcomes:
        # The error first: a failed termination carries its deregistration's result too.
        if item.error is not None:
            outcomes.append(Outcome.from_error(item.container_instance, item.error))
        elif item.result is not None:
            outcomes.append(Outcome.from_result(item.container_instance, item.result))
        else:  # pragma: no cover - BatchResult always carries one of the two
            outcomes.append(Outcome(item.container_instance, "failed"))
    return outcomes


def batch_exit_code(outcomes: Sequence[Outcome]) -> ExitCode:
    """The exit code of a batch: the code every instance shares, else `ExitCode.PARTIAL`."""
    codes = {o.exit_code for o in outcomes}
    if len(codes) == 1:
        return codes.pop()
    return ExitCode.PARTIAL if codes else ExitCode.OK


def _summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts = Counter(o.status for o in outcomes)
    return {"total": len(outcomes), **{s: counts[s] for s in STATUSES}}


@dataclass
class BatchReport:
    """The outcome of ``deregister`` or ``drain``: one outcome per instance, in input order."""

    command: str
    """``deregister`` or ``drain``."""
    cluster: str | None
    """The cluster as given (``None``: the default cluster)."""
    dry_run: bool
    """Whether nothing was changed."""
    outcomes: list[Outcome] = field(default_factory=list)
    """One per instance, in input order."""
    interrupted_by: str | None = None
    """``SIGINT`` or ``SIGTERM`` when the run was cut short (the outcomes say how far each got)."""
    selection: Selection | None = None
    """How every input resolved (shown in a dry run's plan, and as ``resolution`` in JSON)."""
    deregister: bool = True
    """``False`` for ``drain --no-deregister``: instances are left registered, DRAINING."""

    @property
    def exit_code(self) -> ExitCode:
        """See `batch_exit_code`; 130 after SIGINT and 143 after SIGTERM."""
        if self.interrupted_by == "SIGTERM":
            return ExitCode.TERMINATED
        if self.interrupted_by is not None:
            return ExitCode.INTERRUPTED
        return batch_exit_code(self.outcomes)

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": self.command,
            "cluster": self.cluster,
            "dry_run": self.dry_run,
            "exit_code": int(self.exit_code),
            "error": None,
            "summary": _summary(self.outcomes),
            "outcomes": [o.to_json() for o in self.outcomes],
            "resolution": self.selection.to_json() if self.selection else [],
            "deregister": self.deregister,
        }


@dataclass
class DescribeReport:
    """The outcome of ``describe``: the instances, and their tasks when asked for."""

    cluster: str | None
    """The cluster as given (``None``: the default cluster)."""
    instances: list[ContainerInstance]
    """In input order."""
    tasks: dict[str, list[Task]] | None = None
    """Tasks by container instance ARN, when ``--tasks`` was given."""
    missing: list[str] = field(default_factory=list)
    """The instances (as given) ECS reported missing, while others were found."""
    selection: Selection | None = None
    """How every input resolved (``resolution`` in JSON)."""

    @property
    def exit_code(self) -> ExitCode:
        """Success, or `ExitCode.PARTIAL` when some were missing (all missing raises instead)."""
        return ExitCode.PARTIAL if self.missing else ExitCode.OK

    @property
    def missing_message(self) -> str | None:
        """The sentence naming the missing instances, if any."""
        if not self.missing:
            return None
        return f"not found in cluster {self.cluster or 'default'}: {', '.join(self.missing)}"

    def tasks_of(self, instance: ContainerInstance) -> list[Task] | None:
        """The tasks of ``instance``, or ``None`` when they were not asked for."""
        if self.tasks is None:
            return None
        return self.tasks.get(instance.container_instance_arn or "", [])

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        items = []
        for instance in self.instances:
            tasks = self.tasks_of(instance)
            registered = instance.registered_at
            items.append(
                {
                    **(instance_json(instance) or {}),
                    "registered_at": registered.isoformat() if registered else None,
                    "tasks": None if tasks is None else [_task_json(t) for t in tasks],
                }
            )
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": "describe",
            "cluster": self.cluster,
            "exit_code": int(self.exit_code),
            "error": self._missing_json(),
            "container_instances": items,
            "resolution": self.selection.to_json() if self.selection else [],
        }

    def _missing_json(self) -> dict[str, Any] | None:
        message = self.missing_message
        if message is None:
            return None
        return {"type": "ContainerInstanceNotFoundError", "code": None, "message": message}


#: What a command produces: `BatchReport`, `DescribeReport` or `ListReport`
#: (`ecs_safe.cli.listing`, which builds on this module).
Report: TypeAlias = "BatchReport | DescribeReport | ListReport | ReplaceReport"


def failure_document(command: str, cluster: str | None, exc: EcsSafeError) -> dict[str, Any]:
    """The JSON document of a command that failed as a whole: ``error`` set, lists empty."""
    document: dict[str, Any] = {
        "schema_version": JSON_SCHEMA_VERSION,
        "command": command,
        "cluster": cluster,
    }
    if command == "list":
        document.update(exit_code=0, error=None, container_instances=[])
    elif command == "describe":
        document.update(exit_code=0, error=None, container_instances=[], resolution=[])
    elif command == "replace":
        document.update(dry_run=False, exit_code=0, error=None, status=None, waves=[])
    else:
        document.update(
            dry_run=False,
            exit_code=0,
            error=None,
            summary=_summary([]),
            outcomes=[],
            resolution=[],
            deregister=True,
        )
    document["exit_code"] = int(exit_code_of_error(exc))
    document["error"] = error_json(exc)
    return document
