"""``ecs-safe activate``: set container instances ACTIVE again (the ``kubectl uncordon`` of ECS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ecs_safe.cli.execution import Connection, cli_policy, execute, validate_targets
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import (
    ClusterOpt,
    EndpointOpt,
    Instances,
    LogFormat,
    LogFormatOpt,
    OutputFormat,
    OutputOpt,
    ProfileOpt,
    RegionOpt,
    VerboseOpt,
)
from ecs_safe.cli.reports import DescribeReport

if TYPE_CHECKING:
    from ecs_safe.client import EcsSafeClient

__all__ = ["ActivateReport", "TakeOverOpt", "activate", "run_activate"]

#: ``--take-over``: act on an instance another ecs-safe run (or someone else) is draining.
TakeOverOpt = Annotated[
    bool,
    typer.Option(
        "--take-over",
        help="Also set ACTIVE an instance DRAINING under another ecs-safe run's mark, or "
        "without a mark (someone else's drain); refused otherwise (exit 3).",
        envvar="ECS_SAFE_TAKE_OVER",
    ),
]


@dataclass
class ActivateReport(DescribeReport):
    """The outcome of ``activate``: the instances as ECS returned them, now ACTIVE.

    Shown as ``describe`` shows instances; its JSON document is describe's with
    ``"command": "activate"``.
    """

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document."""
        return {**super().to_json(), "command": "activate"}


async def run_activate(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    take_over: bool = False,
) -> ActivateReport:
    """``ecs-safe activate``: `EcsSafeClient.reactivate` over every instance given."""
    back = await ecs.reactivate(instances, cluster=cluster, take_over=take_over)
    return ActivateReport(cluster, back)


def activate(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: Instances,
    cluster: ClusterOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
    take_over: TakeOverOpt = False,
) -> None:
    """Set DRAINING container instances ACTIVE again, so ECS places tasks on them (uncordon).

    An instance DRAINING under another ecs-safe run's mark, or without any mark (drained by
    someone else: an operator, ECS managed draining, Spot draining), is refused (exit 3)
    unless --take-over.
    """
    connection = Connection(region, endpoint_url, profile)

    async def work() -> ActivateReport:
        targets = validate_targets(instances, cluster)
        async with connection.open(cli_policy()) as ecs:
            return await run_activate(ecs, targets, cluster=cluster, take_over=take_over)

    with logging_configured(log_format, verbose):
        execute("activate", cluster, output, work)
