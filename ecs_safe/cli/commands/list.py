"""``ecs-safe list``: a cluster's container instances, as a table or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecs_safe.cli.execution import Connection, cli_policy, execute
from ecs_safe.cli.listing import ListReport
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import (
    AutoScalingGroupOpt,
    ClusterOpt,
    EndpointOpt,
    FilterOpt,
    LogFormat,
    LogFormatOpt,
    OutputFormat,
    OutputOpt,
    ProfileOpt,
    RegionOpt,
    StatusOpt,
    VerboseOpt,
)

if TYPE_CHECKING:
    from ecs_safe.client import EcsSafeClient

__all__ = ["list_instances", "run_list"]


async def run_list(
    ecs: EcsSafeClient,
    *,
    cluster: str | None,
    filter: str | None,
    status: str | None,
    auto_scaling_group: str | None,
) -> ListReport:
    """``ecs-safe list``: `EcsSafeClient.list_container_instances` (every page, described)."""
    instances = await ecs.list_container_instances(
        cluster=cluster, filter=filter, status=status, auto_scaling_group=auto_scaling_group
    )
    return ListReport(cluster, instances)


def list_instances(  # noqa: PLR0917 - typer maps each option to a parameter
    cluster: ClusterOpt = None,
    filter: FilterOpt = None,
    status: StatusOpt = None,
    auto_scaling_group: AutoScalingGroupOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """List a cluster's container instances: status, agent, EC2 ID, type, AMI, AZ, tasks."""
    connection = Connection(region, endpoint_url, profile)

    async def work() -> ListReport:
        async with connection.open(cli_policy()) as ecs:
            return await run_list(
                ecs,
                cluster=cluster,
                filter=filter,
                status=status,
                auto_scaling_group=auto_scaling_group,
            )

    with logging_configured(log_format, verbose):
        execute("list", cluster, output, work)
