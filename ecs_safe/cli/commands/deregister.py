"""``ecs-safe deregister``: deregister what the policy allows, refusing the rest up front."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from ecs_safe._constants import DEFAULT_CONCURRENCY
from ecs_safe._validation import instance_id_of
from ecs_safe.cli.attribution import with_selection
from ecs_safe.cli.commands.describe import describe_found
from ecs_safe.cli.execution import Connection, checked_inputs, cli_policy, execute
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import (
    AllowProtectedOpt,
    AuditLogOpt,
    AutoScalingGroupOpt,
    ClusterOpt,
    ConcurrencyOpt,
    DecrementDesiredCapacityOpt,
    DryRunOpt,
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
    TerminateOpt,
    TerminationArgs,
    VerboseOpt,
    termination_of,
)
from ecs_safe.cli.progress import ProgressDisplay
from ecs_safe.cli.reports import BatchReport, Outcome, outcomes_of_batch
from ecs_safe.cli.targets import Selectors, select
from ecs_safe.errors import EcsApiError

if TYPE_CHECKING:
    from ecs_safe.client import EcsSafeClient
    from ecs_safe.models import ContainerInstance

__all__ = ["deregister", "run_deregister"]


async def run_deregister(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    *,
    cluster: str | None,
    force: bool,
    dry_run: bool,
    concurrency: int,
    described: Mapping[str, ContainerInstance] | None = None,
    termination: TerminationArgs | None = None,
) -> BatchReport:
    """``ecs-safe deregister``: `EcsSafeClient.deregister_many` over the whole batch.

    An instance ECS already reports INACTIVE is deregistered already: it is reported so
    (exit 0, no request sent), so that a retried script converges. An ID that never existed
    stays a failure. ``described`` (by container instance ID: what a selector's listing
    described just now) saves describing those instances again for that check.
    ``termination`` (``--terminate``) terminates each EC2 instance once its own
    deregistration is verified.
    """
    if not instances:
        # Every input named no instance (each gets its failed outcome from the selection).
        return BatchReport("deregister", cluster, dry_run, [])
    known = described or {}
    ask = [ref for ref in instances if instance_id_of(ref) not in known]
    inactive = await _inactive(ecs, ask, cluster=cluster) if ask else {}
    inactive |= {key: ci for key, ci in known.items() if ci.status == "INACTIVE"}
    todo = [ref for ref in instances if instance_id_of(ref) not in inactive]
    outcomes: dict[str, Outcome] = {
        ref: Outcome.already_deregistered(ref, inactive[instance_id_of(ref)])
        for ref in instances
        if instance_id_of(ref) in inactive
    }
    if todo:
        with ProgressDisplay("planning" if dry_run else "deregistering", total=len(todo)) as shown:
            batch = await ecs.deregister_many(
                todo,
                cluster=cluster,
                force=force,
                drain=False,
                dry_run=dry_run,
                concurrency=concurrency,
                progress=shown.callback,
                **(termination or termination_of(False, False, False)),
            )
        outcomes.update(zip(todo, outcomes_of_batch(batch), strict=True))
    return BatchReport("deregister", cluster, dry_run, [outcomes[ref] for ref in instances])


async def _inactive(
    ecs: EcsSafeClient, instances: Sequence[str], *, cluster: str | None
) -> dict[str, ContainerInstance]:
    """The instances ECS reports INACTIVE (deregistered already), by ID."""
    try:
        found, _missing = await describe_found(ecs, instances, cluster=cluster)
    except EcsApiError:
        # The batch's own pre-flight meets the same error and reports it per instance.
        return {}
    return {key: ci for key, ci in found.items() if ci.status == "INACTIVE"}


def deregister(  # noqa: PLR0917 - typer maps each option to a parameter
    instances: SelectableInstances = None,
    cluster: ClusterOpt = None,
    filter: FilterOpt = None,
    auto_scaling_group: AutoScalingGroupOpt = None,
    status: StatusOpt = None,
    select_all: SelectAllOpt = False,
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
    terminate: TerminateOpt = False,
    decrement_desired_capacity: DecrementDesiredCapacityOpt = False,
    allow_protected: AllowProtectedOpt = False,
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    profile: ProfileOpt = None,
    output: OutputOpt = OutputFormat.TEXT,
    audit_log: AuditLogOpt = None,
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Deregister container instances, refusing (before any mutating call) what is unsafe."""
    connection = Connection(region, endpoint_url, profile)

    selectors = Selectors(filter, status, auto_scaling_group, select_all)

    async def work() -> BatchReport:
        targets = checked_inputs(instances, cluster, selectors)
        policy = cli_policy(allow_standalone_loss=allow_standalone_loss)
        async with connection.open(policy, audit_log=audit_log) as ecs:
            selection = await select(ecs, targets, selectors, cluster=cluster)
            report = await run_deregister(
                ecs,
                selection.targets,
                cluster=cluster,
                force=force,
                dry_run=dry_run,
                concurrency=concurrency,
                described=selection.listed,
                termination=termination_of(terminate, decrement_desired_capacity, allow_protected),
            )
            return with_selection(report, selection)

    with logging_configured(log_format, verbose):
        execute("deregister", cluster, output, work)
