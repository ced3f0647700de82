"""The ``ecs-safe`` command line: take ECS container instances out of a cluster safely.

Commands (``ecs-safe COMMAND --help`` for every option)::

    ecs-safe deregister [--force] [--dry-run] [--concurrency N] [SELECTORS] [INSTANCE...]
    ecs-safe drain [--timeout S] [--on-timeout raise|reactivate|force] [--no-deregister]
                   [--standalone-tasks refuse|wait|stop] [--dry-run] [SELECTORS] [INSTANCE...]
    ecs-safe describe [--tasks] [SELECTORS] [INSTANCE...]
    ecs-safe list [--filter EXPR] [--status STATUS] [--auto-scaling-group NAME]
    ecs-safe activate CONTAINER_INSTANCE...
    ecs-safe replace --auto-scaling-group NAME [--wave-size N] [--surge] [--dry-run]
                     [--resume RUN_ID] --audit-log PATH
    ecs-safe watch --queue URL [--concurrency N] [--grace-period S] [--rebalance log|drain]
    ecs-safe demo
    ecs-safe local

An ``INSTANCE`` is a container instance ID or ARN, an EC2 instance ID or a managed instance
ID; ``SELECTORS`` are ``--filter EXPR``, ``--status STATUS``, ``--auto-scaling-group NAME`` and
``--all`` (`ecs_safe.cli.targets`). A selector that matches nothing is a usage error (exit 2).

Every command that talks to ECS also takes ``--cluster`` (``ECS_SAFE_CLUSTER``), ``--region``
(``AWS_REGION``/``AWS_DEFAULT_REGION``), ``--endpoint-url`` (``AWS_ENDPOINT_URL_ECS``),
``--profile`` (``AWS_PROFILE``), ``--output text|json``, ``--log-format console|json`` and
``-v``/``-vv``. Credentials come from the normal AWS chain. ``deregister`` and ``drain`` take
``--audit-log PATH`` (``ECS_SAFE_AUDIT_LOG``): a JSONL record of every decision and every
mutating call is appended to PATH, each written before the call returns (`ecs_safe.audit`).

Policy: the CLI uses the library's `default_policy` plus `ProtectStandaloneTasks`, so that
``--force`` never silently loses a task that no service would replace; ``--allow-standalone-loss``
drops that rule for one call.

Exit codes: one per instance; a batch exits with the code its instances share, else 5.
`ExitCode` holds the table (``ecs-safe --help`` prints it).

``--output json`` writes exactly one JSON document to stdout (schema_version 1).
``deregister`` and ``drain``::

    {"schema_version": 1, "command": "deregister" | "drain", "cluster": str | null,
     "dry_run": bool, "exit_code": int, "error": null | ERROR,
     "summary": {"total", "deregistered", "would_deregister", "drained", "would_drain",
                 "refused", "failed", "timed_out"},
     "outcomes": [{"container_instance": str (as given; a selected instance's ARN),
                   "status": "deregistered" | "would_deregister" | "drained" | "would_drain"
                             | "refused" | "failed" | "timed_out",
                   "exit_code": int, "instance": INSTANCE | null, "forced": bool | null,
                   "request_id": str | null, "violations": [{"rule", "message"}],
                   "tasks": [TASK], "error": null | ERROR, "input": str | null,
                   "selected_by": str | null, "container_instance_id": str | null,
                   "ec2_instance_id": str | null,
                   "termination": TERMINATION (only with --terminate)}],
     "resolution": [RESOLVED], "deregister": bool}

``describe``::

    {"schema_version": 1, "command": "describe", "cluster": str | null, "exit_code": int,
     "error": null | ERROR, "container_instances": [INSTANCE + {"registered_at",
     "tasks": [TASK] | null}], "resolution": [RESOLVED]}

where ``INSTANCE`` is ``{"container_instance_arn", "ec2_instance_id", "status",
"agent_connected", "running_tasks_count", "pending_tasks_count"}``, ``TASK`` is ``{"task_arn",
"kind", "last_status", "desired_status", "group", "started_by"}``, ``ERROR`` is ``{"type",
"code", "message"}``, ``TERMINATION`` is ``{"method", "auto_scaling_group",
"decrement_desired_capacity", "terminated", "verified"}`` and ``RESOLVED`` is ``{"input",
"source", "state", "container_instance_id", "container_instance_arn", "ec2_instance_id",
"duplicate_of"}``
(`ecs_safe.cli.targets.Entry`). A command that fails as a whole (bad input, an API error)
writes the same document with ``error`` set and empty lists. Usage errors found while
parsing the command line write nothing to stdout.

Errors are one line on stderr (``error: ...``), never a traceback. Log events go to stderr
(warnings by default; ``-v`` info, ``-vv`` debug), as console lines or, with
``--log-format json``, as JSON lines. `ecs_safe.cli.logs` is the only place ecs-safe configures
logging.

Layout (one file per concern): `ecs_safe.cli.options` (option types), `ecs_safe.cli.reports`
(outcomes and JSON), `ecs_safe.cli.targets` (selectors and how each input resolved),
`ecs_safe.cli.attribution` (outcomes named by the inputs), `ecs_safe.cli.rendering` (lines),
`ecs_safe.cli.tables` (tables), `ecs_safe.cli.logs`,
`ecs_safe.cli.progress`, `ecs_safe.cli.execution` (the edge to the async library),
`ecs_safe.cli.exit_codes`, `ecs_safe.cli.usage` (usage errors), one module per command in
`ecs_safe.cli.commands`, and the demo's script in `ecs_safe.cli.demo`. This module builds the app
and registers each command, and nothing else.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ecs_safe.cli.commands.activate import activate
from ecs_safe.cli.commands.demo import demo
from ecs_safe.cli.commands.deregister import deregister
from ecs_safe.cli.commands.describe import describe
from ecs_safe.cli.commands.drain import drain
from ecs_safe.cli.commands.list import list_instances
from ecs_safe.cli.commands.local import local
from ecs_safe.cli.commands.replace import replace
from ecs_safe.cli.commands.watch import watch
from ecs_safe.cli.exit_codes import EPILOG, ExitCode
from ecs_safe.cli.options import LogFormat, OnTimeout, OutputFormat, StandaloneTasks
from ecs_safe.cli.reports import JSON_SCHEMA_VERSION
from ecs_safe.cli.usage import Command, Group

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

app = typer.Typer(
    name="ecs-safe",
    cls=Group,
    help="Take container instances out of an Amazon ECS cluster safely: policy-checked, "
    "drained, rate-limited. Refusals happen before any mutating call.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from ecs_safe import __version__  # noqa: PLC0415 - only --version needs it

        typer.echo(f"ecs-safe {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    # Options of the command line as a whole; each command has its own.
    del version


app.command(cls=Command, epilog=EPILOG)(deregister)
app.command(cls=Command, epilog=EPILOG)(drain)
app.command(cls=Command, epilog=EPILOG)(describe)
app.command("list", cls=Command, epilog=EPILOG)(list_instances)
app.command(cls=Command, epilog=EPILOG)(activate)
app.command(cls=Command, epilog=EPILOG)(replace)
app.command(cls=Command, epilog=EPILOG)(watch)
app.command(cls=Command)(demo)
app.command(cls=Command)(local)


def main() -> None:
    """The ``ecs-safe`` console script."""
    app()
