"""``ecs-safe activate``: set container instances ACTIVE again (the ``kubectl uncordon`` of ECS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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

__all__ = ["ActivateReport", "activate", "run_activate"]


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
    ecs: EcsSafeClient, instances: Sequence[str], *, cluster: str | None
) -> ActivateReport:
    """``ecs-safe activate``: `EcsSafeClient.reactivate` over every instance given."""
    return ActivateReport(cluster, await ecs.reactivate(instances, cluster=cluster))


def activate(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: Instances,
    cluster: ClusterOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Set DRAINING container instances ACTIVE again, so ECS places tasks on them (uncordon).

    It reactivates whatever it is given.
    """
    connection = Connection(region, endpoint_url, profile)

    async def work() -> ActivateReport:
        targets = validate_targets(instances, cluster)
        async with connection.open(cli_policy()) as ecs:
            return await run_activate(ecs, targets, cluster=cluster)

    with logging_configured(log_format, verbose):
        execute("activate", cluster, output, work)
