"""``ecs-safe describe``: status, agent and task counts of container instances."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from ecs_safe._validation import instance_id_of
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
from ecs_safe.errors import ContainerInstanceNotFoundError

if TYPE_CHECKING:
    from ecs_safe.client import EcsSafeClient
    from ecs_safe.models import ContainerInstance, Task

__all__ = ["describe", "describe_found", "run_describe"]


async def describe_found(
    ecs: EcsSafeClient, instances: Sequence[str], *, cluster: str | None
) -> tuple[dict[str, ContainerInstance], list[str]]:
    """The instances ECS knows, by ID, and the ones (as given) it reported missing.

    `EcsSafeClient.describe_container_instances` raises when any is missing; the found ones
    are then described again without the missing, so one missing ID never hides the others.
    """
    try:
        described = await ecs.describe_container_instances(instances, cluster=cluster)
        missing: list[str] = []
    except ContainerInstanceNotFoundError as exc:
        gone = {instance_id_of(ref) for ref in exc.container_instances}
        missing = [ref for ref in instances if instance_id_of(ref) in gone]
        rest = [ref for ref in instances if instance_id_of(ref) not in gone]
        described = await ecs.describe_container_instances(rest, cluster=cluster) if rest else []
    found = {instance_id_of(ci.container_instance_arn or ""): ci for ci in described}
    return found, missing


def _found_for(ref: str, found: dict[str, ContainerInstance]) -> ContainerInstance | None:
    """The instance an input names: by container instance ID, or by EC2/managed instance ID."""
    instance = found.get(instance_id_of(ref))
    if instance is None:
        instance = next((ci for ci in found.values() if ci.ec2_instance_id == ref), None)
    return instance


async def run_describe(
    ecs: EcsSafeClient, instances: Sequence[str], *, cluster: str | None, with_tasks: bool
) -> DescribeReport:
    """``ecs-safe describe``: `EcsSafeClient.describe_container_instances` (and `list_tasks`).

    Instances ECS reports missing are named in the report (`DescribeReport.missing`); when
    every one is missing, the command fails as a whole (exit 1).
    """
    found, missing = await describe_found(ecs, instances, cluster=cluster)
    if not found:
        # Nothing to show: the one error names them all.
        await ecs.describe_container_instances(instances, cluster=cluster)
    matched = [(ref, _found_for(ref, found)) for ref in instances]
    present = [ref for ref, ci in matched if ci is not None]
    described = [ci for _ref, ci in matched if ci is not None]
    tasks: dict[str, list[Task]] | None = None
    if with_tasks:
        lists = await asyncio.gather(*(ecs.list_tasks(ref, cluster=cluster) for ref in present))
        tasks = {
            ci.container_instance_arn or "": listed
            for ci, listed in zip(described, lists, strict=True)
        }
    return DescribeReport(cluster, described, tasks, missing=missing)


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
