"""The script of ``ecs-safe demo``: refusals, dry run, drains and deregistration, narrated.

It runs the commands' own async cores against an embedded `LocalEcs`, so what it shows is what
the commands do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from rich.text import Text

from ecs_safe._constants import ECS_MODIFY_OPERATIONS
from ecs_safe.budgets import DisruptionBudget
from ecs_safe.cli.commands.deregister import run_deregister
from ecs_safe.cli.commands.describe import run_describe
from ecs_safe.cli.commands.drain import run_drain
from ecs_safe.cli.execution import Connection, cli_policy
from ecs_safe.cli.options import OnTimeout, StandaloneTasks
from ecs_safe.cli.rendering import short, stdout_console
from ecs_safe.cli.tables import render
from ecs_safe.policy import DisruptionBudgets

if TYPE_CHECKING:
    from rich.console import Console

    from ecs_safe.cli.reports import BatchReport
    from ecs_safe.client import EcsSafeClient
    from ecs_safe.local import LocalEcs, TaskEvent

__all__ = ["DemoError", "run_demo"]


class DemoError(Exception):
    """A demo step did not end as the narrative expects."""


_DEMO_CLUSTER: Final = "demo"
# The service scheduler's pass interval: ECS reacts within seconds, the demo within a blink.
_SCHEDULER_INTERVAL: Final = 0.05
# web runs only on the instances of its pool (a memberOf placement constraint).
_WEB_POOL: Final = "attribute:pool == web"
# api, seeded for the last steps, on its own pool: one task per host (distinctInstance).
_API_POOL: Final = "attribute:pool == api"
_API_BUDGET: Final = "api=1"
# The last step's Auto Scaling group, its terminate hook and the service on it.
_DEMO_GROUP: Final = "demo-asg"
_DEMO_HOOK: Final = "drain-first"
_SHOP_POOL: Final = "attribute:pool == shop"
# Auto Scaling's smallest HeartbeatTimeout: a heartbeat would go every 10 s.
_HOOK_HEARTBEAT_TIMEOUT: Final = 30


async def run_demo() -> None:
    """Seed a cluster on a new `LocalEcs` and run the story on it, printing to stdout."""
    from ecs_safe.local import LocalEcs  # noqa: PLC0415 - moto is imported only for the demo

    out = stdout_console()
    started = time.monotonic()
    out.rule("[b]ecs-safe demo[/b]: an embedded ECS endpoint, no AWS account needed")
    async with LocalEcs(scheduler_interval=_SCHEDULER_INTERVAL) as local:
        fleet = _seed_demo(local)
        out.print(
            f"A local ECS endpoint (moto) runs at {local.endpoint_url}, with a service "
            f"scheduler that moves service tasks as ECS's does. Cluster [b]{_DEMO_CLUSTER}[/b] "
            f"holds {len(fleet.everything)} container instances:"
        )
        for role, ref in fleet.roles():
            out.print(Text(f"  {short(ref)}  {role}"))
        connection = Connection(client_kwargs=dict(local.client_kwargs()))
        async with connection.open(cli_policy()) as ecs:
            await _demo_steps(out, local, ecs, fleet)
        # The same as `ecs-safe drain --budget api=1`: the CLI's policy plus that budget.
        budget = DisruptionBudget("api", max_unavailable=1)
        async with connection.open(cli_policy().with_rules(DisruptionBudgets(budget))) as ecs:
            await _service_steps(out, local, ecs)
        async with connection.open(cli_policy()) as ecs:
            await _scale_in_step(out, local, ecs)
    out.print()
    out.rule(f"done in {time.monotonic() - started:.1f} s")
    out.print(
        "Next: [b]ecs-safe --help[/b]; against AWS, the same commands with --cluster "
        "(and --region/--profile as usual). Start with --dry-run."
    )


@dataclass(frozen=True)
class _Fleet:
    idle: tuple[str, str]
    web_host: str
    batch_host: str
    spare: str

    @property
    def all(self) -> list[str]:
        """The four instances the story acts on."""
        return [*self.idle, self.web_host, self.batch_host]

    @property
    def everything(self) -> list[str]:
        return [*self.all, self.spare]

    def roles(self) -> list[tuple[str, str]]:
        return [
            ("idle", self.idle[0]),
            ("idle", self.idle[1]),
            ("web host: 2 tasks of service 'web'", self.web_host),
            ("batch host: 1 'web' task and 1 standalone task 'nightly-report'", self.batch_host),
            ("spare: empty, room for 'web' (which runs on pool 'web' only)", self.spare),
        ]

    def role_of(self, ref: str) -> str:
        names = {self.web_host: "web host", self.batch_host: "batch host", self.spare: "spare"}
        return names.get(ref, "idle")


def _seed_demo(local: LocalEcs) -> _Fleet:
    local.create_cluster(_DEMO_CLUSTER)
    idle_a, idle_b, web_host, batch_host, spare = local.register_instances(_DEMO_CLUSTER, count=5)
    for host in (web_host, batch_host, spare):
        local.put_attribute(_DEMO_CLUSTER, host, "pool", "web")
    local.create_service(_DEMO_CLUSTER, "web", desired_count=3, member_of=_WEB_POOL)
    # Placed by hand for the story; from here on LocalEcs's service scheduler manages web.
    local.start_service_task(_DEMO_CLUSTER, web_host, "web", count=2)
    local.start_service_task(_DEMO_CLUSTER, batch_host, "web")
    local.start_standalone_task(_DEMO_CLUSTER, batch_host, family="nightly-report")
    local.scheduler.manage(_DEMO_CLUSTER, "web")
    local.scheduler.run_until_settled()
    local.scheduler.reset_record()
    return _Fleet((idle_a, idle_b), web_host, batch_host, spare)


def _mutating_calls(local: LocalEcs) -> int:
    # The ECS calls that change something (LocalEcs serves ECS only): the demo counts them to
    # show what a refusal did not send.
    return sum(local.calls(operation) for operation in sorted(ECS_MODIFY_OPERATIONS))


def _command_line(out: Console, step: str, command: str, refs: Sequence[str]) -> None:
    out.print()
    out.rule(Text(step, style="bold"), align="left")
    ids = " ".join(short(ref) for ref in refs)
    out.print(Text(f"$ ecs-safe {command} --cluster {_DEMO_CLUSTER} {ids}", style="bold cyan"))


def _expect(report: BatchReport, *statuses: str) -> None:
    got = tuple(o.status for o in report.outcomes)
    if got != statuses:
        raise DemoError(f"expected {', '.join(statuses)}; got {', '.join(got)}")


async def _demo_steps(out: Console, local: LocalEcs, ecs: EcsSafeClient, fleet: _Fleet) -> None:
    def deregister(refs: list[str], *, force: bool = False, dry_run: bool = False) -> Any:
        return run_deregister(
            ecs, refs, cluster=_DEMO_CLUSTER, force=force, dry_run=dry_run, concurrency=4
        )

    _command_line(out, "0. What is there", "describe --tasks", fleet.everything)
    render(await run_describe(ecs, fleet.everything, cluster=_DEMO_CLUSTER, with_tasks=True), out)

    _command_line(out, "1. A refusal names every blocker", "deregister", [fleet.web_host])
    report = await deregister([fleet.web_host])
    _expect(report, "refused")
    render(report, out)

    _command_line(
        out, "   --force would orphan a standalone task", "deregister --force", [fleet.batch_host]
    )
    report = await deregister([fleet.batch_host], force=True)
    _expect(report, "refused")
    render(report, out)
    out.print(f"Mutating calls sent to ECS so far: {_mutating_calls(local)} (refusals come first).")

    _command_line(out, "2. A dry-run fleet plan", "deregister --dry-run", fleet.all)
    report = await deregister(fleet.all, dry_run=True)
    _expect(report, "would_deregister", "would_deregister", "refused", "refused")
    render(report, out)
    out.print(f"Mutating calls sent to ECS so far: {_mutating_calls(local)}.")

    _command_line(out, "3. A drain", "drain", [fleet.web_host])
    out.print(
        Text(
            "LocalEcs's service scheduler does what ECS's does for a DRAINING instance: it "
            "starts replacements on other instances with room (within maximumPercent) and "
            "stops the old tasks once enough run (minimumHealthyPercent). The drain waits "
            "until the instance is empty.",
            style="italic",
        )
    )
    report = await _drain(local, ecs, fleet.web_host, StandaloneTasks.REFUSE)
    _expect(report, "deregistered")
    render(report, out)
    _show_moves(out, fleet.role_of, local.scheduler.record)

    _command_line(
        out, "4. A drain refused because of a standalone task", "drain", [fleet.batch_host]
    )
    report = await _drain(local, ecs, fleet.batch_host, StandaloneTasks.REFUSE)
    _expect(report, "refused")
    render(report, out)
    out.print("Refused up front: the instance was never set DRAINING.")

    _command_line(
        out,
        "   ... unless you say what to do with it",
        "drain --standalone-tasks stop",
        [fleet.batch_host],
    )
    report = await _drain(local, ecs, fleet.batch_host, StandaloneTasks.STOP)
    _expect(report, "deregistered")
    render(report, out)
    _show_moves(out, fleet.role_of, local.scheduler.record)

    # Operators name instances by a question or by EC2 ID, not by container instance ID.
    query = "runningTasksCount == 0"
    out.print()
    out.rule(Text("5. Choose by a cluster query, act by EC2 ID", style="bold"), align="left")
    out.print(
        Text(f'$ ecs-safe list --cluster {_DEMO_CLUSTER} --filter "{query}"', style="bold cyan")
    )
    idle = await ecs.list_container_instances(cluster=_DEMO_CLUSTER, filter=query)
    ec2_ids = [i.ec2_instance_id for i in idle if i.ec2_instance_id]
    if sorted(i.container_instance_arn or "" for i in idle) != sorted(fleet.idle):
        raise DemoError(f"the query {query!r} should select the two idle instances")
    for instance in idle:
        out.print(Text(f"  {instance.ec2_instance_id}  {short(instance.container_instance_arn)}"))
    _command_line(out, "   ... and deregister them by their EC2 IDs", "deregister", ec2_ids)
    report = await deregister(ec2_ids)
    _expect(report, "deregistered", "deregistered")
    render(report, out)


async def _service_steps(out: Console, local: LocalEcs, ecs: EcsSafeClient) -> None:
    """A budget refusal, then a rolling drain that waits for the service between its hosts."""
    hosts = local.register_instances(_DEMO_CLUSTER, count=5)
    for host in hosts:
        local.put_attribute(_DEMO_CLUSTER, host, "pool", "api")
    local.create_service(
        _DEMO_CLUSTER, "api", desired_count=3, member_of=_API_POOL, distinct_instance=True
    )
    local.scheduler.manage(_DEMO_CLUSTER, "api")
    await local.scheduler.settle()
    hosted = {e.container_instance_arn for e in local.scheduler.events_for("api")}
    old = [h for h in hosts if h in hosted][:2]
    names = {h: f"api host {n}" for n, h in enumerate(old, 1)}
    if len(old) != 2:  # the story drains two of api's three hosts
        raise DemoError("api should run one task on each of three hosts")
    out.print()
    out.print(
        Text(
            "Service 'api' now runs 3 tasks, one per host (distinctInstance), on 5 new hosts "
            f"of pool 'api'. Its disruption budget: {_API_BUDGET} (at most one task away).",
            style="italic",
        )
    )
    local.scheduler.reset_record()
    _command_line(
        out, "6. A wave that would break a budget", f"drain --dry-run --budget {_API_BUDGET}", old
    )
    report = await _drain_many(ecs, old, concurrency=2, dry_run=True)
    _expect(report, "refused", "refused")
    render(report, out)
    out.print(f"Refused before anything changed: {len(local.scheduler.record)} task moves.")

    _command_line(
        out,
        "7. A rolling drain waits for the service between hosts",
        f"drain --budget {_API_BUDGET} --concurrency 1",
        old,
    )
    out.print(
        Text(
            "One host at a time, each within the budget; the next one starts only once api is "
            "steady again (desired tasks RUNNING, none on a drained host).",
            style="italic",
        )
    )
    report = await _drain_many(ecs, old, concurrency=1, dry_run=False)
    _expect(report, "deregistered", "deregistered")
    render(report, out)
    _show_moves(out, lambda ref: names.get(ref, "spare"), local.scheduler.record)


async def _drain_many(
    ecs: EcsSafeClient, instances: list[str], *, concurrency: int, dry_run: bool
) -> BatchReport:
    return await run_drain(
        ecs,
        instances,
        cluster=_DEMO_CLUSTER,
        timeout=60.0,
        poll_interval=0.1,
        on_timeout=OnTimeout.RAISE,
        standalone_tasks=StandaloneTasks.REFUSE,
        dry_run=dry_run,
        concurrency=concurrency,
        steady_timeout=60.0,
    )


async def _drain(
    local: LocalEcs, ecs: EcsSafeClient, instance: str, standalone_tasks: StandaloneTasks
) -> BatchReport:
    local.scheduler.reset_record()
    return await run_drain(
        ecs,
        [instance],
        cluster=_DEMO_CLUSTER,
        timeout=60.0,
        # Quick polls: the local scheduler moves tasks within a few of its passes.
        poll_interval=0.1,
        on_timeout=OnTimeout.RAISE,
        standalone_tasks=standalone_tasks,
        dry_run=False,
        concurrency=1,
    )


def _show_moves(out: Console, role_of: Callable[[str], str], record: Sequence[TaskEvent]) -> None:
    """What the service scheduler did during the drain, from its record."""
    moves = [e for e in record if e.kind != "running"]
    if not moves:
        return
    out.print("The service scheduler's moves meanwhile:")
    for event in moves:
        verb = "started" if event.kind == "started" else "stopped"
        where = f"{event.ec2_instance_id} ({role_of(event.container_instance_arn)})"
        out.print(
            Text(
                f"  {verb} a '{event.service}' task on {where}: "
                f"{event.running} running, {event.pending} pending after"
            )
        )


async def _scale_in_step(out: Console, local: LocalEcs, ecs: EcsSafeClient) -> None:
    """A scale-in through a terminate lifecycle hook: drain, deregister, CONTINUE, terminated."""
    group = local.create_auto_scaling_group(_DEMO_GROUP, _DEMO_CLUSTER, 2)
    for host in group.container_instance_arns:
        local.put_attribute(_DEMO_CLUSTER, host, "pool", "shop")
    local.create_service(_DEMO_CLUSTER, "shop", desired_count=1, member_of=_SHOP_POOL)
    local.scheduler.manage(_DEMO_CLUSTER, "shop")
    await local.scheduler.settle()
    [placed] = [e for e in local.scheduler.events_for("shop") if e.kind == "started"]
    leaving, host = placed.ec2_instance_id, placed.container_instance_arn
    # The operator's side (the group's hook, the scale-in): a plain Auto Scaling client.
    async with local.session().create_client(
        "autoscaling", endpoint_url=local.endpoint_url, region_name=local.region_name
    ) as autoscaling:
        await autoscaling.put_lifecycle_hook(
            LifecycleHookName=_DEMO_HOOK,
            AutoScalingGroupName=_DEMO_GROUP,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            HeartbeatTimeout=_HOOK_HEARTBEAT_TIMEOUT,
            DefaultResult="ABANDON",
        )
        out.print()
        out.rule(Text("8. A scale-in, handled end to end", style="bold"), align="left")
        out.print(
            Text(
                f"Auto Scaling group {_DEMO_GROUP} has 2 instances in the cluster, one running "
                f"service 'shop', and a terminate lifecycle hook ({_DEMO_HOOK}, "
                f"HeartbeatTimeout {_HOOK_HEARTBEAT_TIMEOUT} s). The group lets go of the "
                "shop host:",
                style="italic",
            )
        )
        out.print(
            Text(
                f"$ aws autoscaling terminate-instance-in-auto-scaling-group --instance-id "
                f"{leaving} --should-decrement-desired-capacity",
                style="bold cyan",
            )
        )
        local.scheduler.reset_record()
        await autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=leaving, ShouldDecrementDesiredCapacity=True
        )
        out.print(f"  {leaving}: {await _lifecycle_state(autoscaling, leaving)}")
        [event] = [
            e for e in local.events.sent if e.get("detail", {}).get("EC2InstanceId") == leaving
        ]
        out.print(
            Text(
                f"The hook's event ({event['detail-type']}) names the instance, the group and "
                "the hook, but no cluster. The handler finds the container instance, drains "
                "it and deregisters it, heartbeating meanwhile, and only then lets it go:",
                style="italic",
            )
        )
        out.print(Text("$ python: await ecs.handle_lifecycle_action(event)", style="bold cyan"))
        result = await ecs.handle_lifecycle_action(event, poll_interval=0.1)
        if result.outcome != "deregistered" or result.completed != "CONTINUE":
            raise DemoError(f"the scale-in should end deregistered; got {result.outcome}")
        out.print(
            Text(
                f"  {short(host)} deregistered (verified) in cluster {result.cluster}; "
                f"CompleteLifecycleAction {result.completed}; {result.heartbeats} heartbeat(s) "
                f"(one every {result.heartbeat_interval:g} s)"
            )
        )
        _show_moves(
            out, lambda ref: "leaving" if ref == host else "the other", local.scheduler.record
        )
        out.print(
            f"  {leaving}: {await _lifecycle_state(autoscaling, leaving)}, terminated only now."
        )


async def _lifecycle_state(autoscaling: Any, instance_id: str) -> str:
    found = await autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
    states = [i["LifecycleState"] for i in found["AutoScalingInstances"]]
    return states[0] if states else "gone from the group"
