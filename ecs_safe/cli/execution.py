"""The edge between the commands and the async library.

Where a command's connection options become an `EcsSafeClient`, its instances are checked
before anything is sent, and its async core runs once (the one ``asyncio.run``), is reported
and becomes an exit code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from ecs_safe._constants import DEFAULT_CLUSTER
from ecs_safe._validation import (
    check_same_cluster,
    instance_id_of,
    validate_cluster,
    validate_container_instance,
)
from ecs_safe.cli.exit_codes import ExitCode, exit_code_of_error
from ecs_safe.cli.options import OutputFormat
from ecs_safe.cli.rendering import error_line, for_display, stdout_console, write_json
from ecs_safe.cli.reports import Report, failure_document
from ecs_safe.cli.tables import render
from ecs_safe.cli.targets import Selectors, check_selectors
from ecs_safe.errors import ClusterNotFoundException, EcsSafeError, InvalidInputError
from ecs_safe.policy import Policy, ProtectStandaloneTasks, default_policy

if TYPE_CHECKING:
    from ecs_safe.client import EcsSafeClient

__all__ = [
    "Connection",
    "check_profile",
    "checked_inputs",
    "cli_policy",
    "execute",
    "validate_targets",
]


@dataclass(frozen=True)
class Connection:
    """Where and how to reach ECS (``--region``, ``--endpoint-url``, ``--profile``)."""

    region: str | None = None
    """The AWS Region (None: the AWS configuration chain)."""
    endpoint_url: str | None = None
    """An ECS-compatible endpoint (None: AWS's)."""
    profile: str | None = None
    """A named profile of the shared AWS config files."""
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra `EcsSafeClient` keywords (the demo passes a LocalEcs session)."""

    def open(
        self,
        policy: Policy,
        *,
        audit_log: Path | None = None,
        task_events: str | None = None,
    ) -> EcsSafeClient:
        """A new (unopened) `EcsSafeClient` for this connection (appending to ``audit_log``).

        ``task_events``: the ``--task-events`` queue that wakes its drains.
        """
        # Imported here: the client pulls in aiobotocore, which --help must not pay for.
        from ecs_safe.client import EcsSafeClient  # noqa: PLC0415

        check_profile(self.profile)
        kwargs: dict[str, Any] = {
            "region_name": self.region,
            "endpoint_url": self.endpoint_url,
            "profile_name": self.profile,
            **self.client_kwargs,
        }
        if task_events is not None:
            kwargs["task_events_queue"] = task_events
        return EcsSafeClient(policy=policy, audit_log=audit_log, **kwargs)


def cli_policy(*, allow_standalone_loss: bool = False) -> Policy:
    """The CLI's policy: the default rules, plus `ProtectStandaloneTasks` unless waived."""
    policy = default_policy()
    return policy if allow_standalone_loss else policy.with_rules(ProtectStandaloneTasks())


def validate_targets(instances: Sequence[str], cluster: str | None) -> list[str]:
    """Check every instance (and the cluster) before anything is sent; reject repeats.

    The same text given twice is a slip (a paste done twice) and a usage error; the same
    instance named in two forms (its ID and its EC2 ID, say) is acted on once, and the plan
    says which input was the duplicate (`ecs_safe.cli.targets`).

    Raises:
        InvalidInputError: the first problem found, naming the offending argument.
    """
    validate_cluster(cluster)
    seen: set[str] = set()
    for ref in instances:
        validate_container_instance(ref, argument="container instance")
        check_same_cluster(ref, cluster)
        if ref in seen:
            raise InvalidInputError(f"container instance {instance_id_of(ref)} is given twice")
        seen.add(ref)
    return list(instances)


def checked_inputs(
    instances: Sequence[str] | None, cluster: str | None, selectors: Selectors
) -> list[str]:
    """`validate_targets` and `check_selectors`: every usage error before anything is sent."""
    targets = validate_targets(instances or [], cluster)
    check_selectors(targets, selectors)
    return targets


def _in_cli_terms(exc: EcsSafeError, cluster: str | None) -> str:
    """The ``error:`` line of ``exc``: CLI flags for API arguments, the cluster ECS did not find."""
    message = for_display(str(exc))
    if isinstance(exc, ClusterNotFoundException):
        # ECS says only "Cluster not found."; say which, and that none given means 'default'.
        named = (
            f"cluster {cluster!r}"
            if cluster
            else f"cluster {DEFAULT_CLUSTER!r} (no --cluster given)"
        )
        message = f"{message.rstrip('.')}: {named}"
    return message


def check_profile(profile: str | None) -> None:
    """Refuse a ``--profile`` the AWS config files do not hold, before any client is made.

    Raises:
        InvalidInputError: naming the profile and the profiles there are.
    """
    if profile is None:
        return
    # botocore comes with aiobotocore; imported here so that --help does not load it.
    import botocore.session  # noqa: PLC0415

    known = botocore.session.Session().available_profiles
    if profile not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidInputError(
            f"--profile {profile!r} (or AWS_PROFILE) is not a profile of the AWS config files "
            f"(profiles there: {listed})"
        )


def execute(
    command: str,
    cluster: str | None,
    output: OutputFormat,
    work: Callable[[], Coroutine[Any, Any, Report]],
) -> NoReturn:
    """Run one command's async core once, report it, and exit with its code.

    This is the edge between the CLI and the async library: the one ``asyncio.run`` of the
    command, and the one place its errors become an ``error:`` line and an exit code.
    """
    try:
        report = asyncio.run(work())
    except EcsSafeError as exc:
        if output is OutputFormat.JSON:
            write_json(failure_document(command, cluster, exc))
        error_line(_in_cli_terms(exc, cluster))
        raise typer.Exit(exit_code_of_error(exc)) from None
    except KeyboardInterrupt:
        hint = " (instances being drained stay DRAINING)" if command == "drain" else ""
        error_line(f"interrupted{hint}")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    if output is OutputFormat.JSON:
        write_json(report.to_json())
    else:
        render(report, stdout_console())
    raise typer.Exit(report.exit_code)
