"""``ecs-safe describe``: status, agent and task counts of container instances."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from ecs_safe._validation import instance_id_of
from ecs_safe.cli.execution import Connection, checked_inputs, cli_policy, execute
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
    SelectableInstances,
    SelectAllOpt,
    StatusOpt,
    VerboseOpt,
)
from ecs_safe.cli.reports import DescribeReport
from ecs_safe.cli.targets import Selection, Selectors, select, where
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
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    with_tasks: bool,
    selection: Selection | None = None,
) -> DescribeReport:
    """``ecs-safe describe``: `EcsSafeClient.describe_container_instances` (and `list_tasks`).

    Instances ECS reports missing are named in the report (`DescribeReport.missing`); when
    every one is missing, the command fails as a whole (exit 1). With a ``selection``,
    ``instances`` are its targets: the inputs that named no instance are missing too, the
    instances its listing described are not described again, and the selection learns what
    each input named.
    """
    unknown = [entry.input for entry in selection.failed] if selection else []
    listed = selection.listed if selection else {}
    ask = [ref for ref in instances if instance_id_of(ref) not in listed]
    found, missing = await describe_found(ecs, ask, cluster=cluster) if ask else ({}, [])
    found = {**found, **listed}
    if not found:
        if ask:
            # Nothing to show: the one error names them all.
            await ecs.describe_container_instances(ask, cluster=cluster)
        raise ContainerInstanceNotFoundError(
            f"{', '.join(unknown)}: not registered in cluster {where(cluster)}",
            container_instances=unknown,
        )
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
    if selection is not None:
        selection.learn(
            {instance_id_of(ref): ci for ref, ci in matched if ci is not None},
            {
                instance_id_of(ref): ContainerInstanceNotFoundError(
                    f"{ref}: not registered in cluster {where(cluster)}",
                    container_instances=[ref],
                )
                for ref, ci in matched
                if ci is None
            },
        )
    return DescribeReport(
        cluster, described, tasks, missing=[*unknown, *missing], selection=selection
    )


def describe(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: SelectableInstances = None,
    cluster: ClusterOpt = None,
    filter: FilterOpt = None,
    auto_scaling_group: AutoScalingGroupOpt = None,
    status: StatusOpt = None,
    select_all: SelectAllOpt = False,
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
    selectors = Selectors(filter, status, auto_scaling_group, select_all)

    async def work() -> DescribeReport:
        targets = checked_inputs(instances, cluster, selectors)
        async with connection.open(cli_policy()) as ecs:
            selection = await select(ecs, targets, selectors, cluster=cluster)
            return await run_describe(
                ecs, selection.targets, cluster=cluster, with_tasks=tasks, selection=selection
            )

    with logging_configured(log_format, verbose):
        execute("describe", cluster, output, work)
