"""``ecs-safe describe``: status, agent and task counts of container instances."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

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
    from ecs_safe.models import Task

__all__ = ["describe", "run_describe"]


async def run_describe(
    ecs: EcsSafeClient, instances: Sequence[str], *, cluster: str | None, with_tasks: bool
) -> DescribeReport:
    """``ecs-safe describe``: `EcsSafeClient.describe_container_instances` (and `list_tasks`)."""
    described = await ecs.describe_container_instances(instances, cluster=cluster)
    tasks: dict[str, list[Task]] | None = None
    if with_tasks:
        lists = await asyncio.gather(*(ecs.list_tasks(ref, cluster=cluster) for ref in instances))
        tasks = {
            ci.container_instance_arn or "": found
            for ci, found in zip(described, lists, strict=True)
        }
    return DescribeReport(cluster, described, tasks)


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
    connection = Connection(region, endpoint_url, profile)

    async def work() -> DescribeReport:
        targets = validate_targets(instances, cluster)
        async with connection.open(cli_policy()) as ecs:
            return await run_describe(ecs, targets, cluster=cluster, with_tasks=tasks)

    with logging_configured(log_format, verbose):
        execute("describe", cluster, output, work)
