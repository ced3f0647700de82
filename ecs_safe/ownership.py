"""Who is draining an instance: ecs-safe's ownership marks, and the other drainers.

Several drainers may act on one instance: another ecs-safe run, an operator, ECS managed
draining (a capacity provider with ``managedDraining`` ENABLED whose group scales in), an Auto
Scaling termination lifecycle hook (``Terminating:Wait``), and the ECS agent's Spot draining.
One of them must never reactivate or deregister what another owns.

**The mark.** When ecs-safe sets an instance DRAINING it first marks it as its own: the custom
attribute `OWNER_ATTRIBUTE` (``ecs-safe.drain-run``) holding the run ID (PutAttributes, 10
instances a call). The mark goes on *before* DRAINING, never after: a run that dies between the
two calls leaves an ACTIVE instance with a mark, which means nothing (a mark counts only on a
DRAINING instance, and the next drain overwrites it), while the other order would leave a
DRAINING instance without a mark, which every later run, the crashed one's successor included,
would take for someone else's drain and never roll back. For the same reason reactivation sets
ACTIVE first and removes the mark after (DeleteAttributes).

A mark's states (`claim_of`), on a DRAINING instance:

- ``ours``: this run's: it may roll it back (``on_timeout="reactivate"``) and deregister it;
- ``run``: another run's, live or crashed (nothing tells them apart): refused (rule
  `OWNERSHIP_RULE`) unless ``take_over=True``;
- ``released``: a run let go of it and left it DRAINING (a drain that timed out with
  ``on_timeout="raise"``): any ecs-safe run may carry on with it (and marks it its own);
- ``none``: DRAINING without a mark: drained by someone else. A drain carries on with it (the
  instance is already cordoned) but never reactivates it; `EcsSafeClient.reactivate` needs
  ``take_over=True`` for it.

**The other drainers** (`survey`, batched across the instances of a wave): managed draining
refuses (rule `MANAGED_DRAINING_RULE`: ECS deregisters and terminates the instance itself),
``Terminating:Wait`` and Spot draining are named in the plan and the outcome but do not refuse
(the instance is leaving anyway; draining it is what its owner wants).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from ecs_safe import _events
from ecs_safe._calls import listed, pages
from ecs_safe._constants import (
    AUTOSCALING_INSTANCES_BATCH,
    DESCRIBE_EC2_INSTANCES_BATCH,
    OWNER_ATTRIBUTE,
    OWNER_RELEASED_PREFIX,
)
from ecs_safe.errors import EcsSafeError
from ecs_safe.policy import Violation

if TYPE_CHECKING:
    from ecs_safe._calls import EcsCalls
    from ecs_safe._transport import Transport
    from ecs_safe.models import ContainerInstance

__all__ = [
    "MANAGED_DRAINING_RULE",
    "OWNERSHIP_RULE",
    "Claim",
    "DrainerKind",
    "OtherDrainer",
    "claim",
    "claim_of",
    "may_claim",
    "reactivation_blocker",
    "release",
    "survey",
    "unclaim",
]

#: The `Violation.rule` of a refusal over another run's mark (or, for `reactivate`, an
#: instance drained by someone else).
OWNERSHIP_RULE: Final = "ownership"
#: The `Violation.rule` of a refusal over an instance ECS managed draining is draining.
MANAGED_DRAINING_RULE: Final = "managed-draining"

_TERMINATING: Final = "Terminating"
_GROUP_MARKER: Final = "autoScalingGroupName/"

Holder = Literal["none", "ours", "run", "released"]
#: Who else is draining an instance.
DrainerKind = Literal[
    "ecs-safe-run", "managed-draining", "terminating-wait", "spot", "someone-else"
]


@dataclass(frozen=True, slots=True)
class Claim:
    """What an instance's ownership mark says.

    Attributes:
        holder: ``"none"`` (no mark), ``"ours"``, ``"run"`` (another run's) or ``"released"``.
        run_id: the run the mark names, if any.
        value: the attribute's value as found (needed to delete it).
    """

    holder: Holder
    run_id: str | None = None
    value: str | None = None


def claim_of(instance: ContainerInstance, run_id: str) -> Claim:
    """The ownership mark on ``instance``, as seen by run ``run_id``."""
    value = next(
        (a.value for a in instance.attributes or () if a.name == OWNER_ATTRIBUTE and a.value),
        None,
    )
    if value is None:
        return Claim("none")
    if value.startswith(OWNER_RELEASED_PREFIX):
        return Claim("released", value.removeprefix(OWNER_RELEASED_PREFIX), value)
    return Claim("ours" if value == run_id else "run", value, value)


def may_claim(instance: ContainerInstance, run_id: str, *, take_over: bool) -> bool:
    """Whether this run marks ``instance`` as its own before (re)setting it DRAINING.

    Always an ACTIVE one (a leftover mark on it means nothing); a DRAINING one when the mark
    is ours or released, or when the caller takes over. Never, silently, someone else's drain.
    """
    if instance.status != "DRAINING" or take_over:
        return True
    return claim_of(instance, run_id).holder in ("ours", "released")


@dataclass(frozen=True, slots=True)
class OtherDrainer:
    """Someone other than this run draining (or about to remove) an instance.

    Attributes:
        kind: who: ``"ecs-safe-run"``, ``"managed-draining"``, ``"terminating-wait"``,
            ``"spot"`` or ``"someone-else"``.
        message: what the plan and the outcome say about it.
    """

    kind: DrainerKind
    message: str

    @property
    def blocks(self) -> bool:
        """Whether it refuses the drain unless taken over (another run, managed draining)."""
        return self.kind in ("ecs-safe-run", "managed-draining")

    def violation(self) -> Violation:
        """The refusal, for a drain that is not told to take over."""
        rule = OWNERSHIP_RULE if self.kind == "ecs-safe-run" else MANAGED_DRAINING_RULE
        return Violation(rule, f"{self.message}. Pass take_over=True (--take-over) to act anyway")


def _someone_else(ref: str) -> OtherDrainer:
    return OtherDrainer(
        "someone-else",
        f"container instance {ref} is already DRAINING without an ecs-safe mark: drained by "
        "someone else (an operator or another tool); ecs-safe carries on with it but will not "
        "set it ACTIVE again",
    )


def reactivation_blocker(ref: str, instance: ContainerInstance, run_id: str) -> Violation | None:
    """Why run ``run_id`` may not set ``instance`` ACTIVE again without taking over, or ``None``.

    Only a DRAINING instance can be someone's: ours and released marks may be reactivated,
    another run's mark and an unmarked drain may not.
    """
    if instance.status != "DRAINING":
        return None
    found = claim_of(instance, run_id)
    if found.holder == "run":
        message = (
            f"container instance {ref} is DRAINING under ecs-safe run {found.run_id} (another "
            "run, live or crashed); pass take_over=True (--take-over) to set it ACTIVE anyway"
        )
    elif found.holder == "none":
        message = (
            f"container instance {ref} is DRAINING without an ecs-safe mark: someone else "
            "drained it (an operator, ECS managed draining, Spot draining); pass "
            "take_over=True (--take-over) to set it ACTIVE anyway"
        )
    else:
        return None
    return Violation(OWNERSHIP_RULE, message)


# ----------------------------------------------------------------------------- marks


async def claim(
    calls: EcsCalls, refs: Sequence[str], cluster: str | None
) -> dict[str, EcsSafeError]:
    """Mark ``refs`` as this run's (PutAttributes, 10 a call), before they are set DRAINING.

    Returns the error of each instance that could not be marked, keyed by instance ID: it
    must not be set DRAINING (a drain ecs-safe could not claim would look like someone else's).
    """
    if not refs:
        return {}
    errors = await calls.put_attributes(cluster, OWNER_ATTRIBUTE, dict.fromkeys(refs, calls.run_id))
    for key, exc in errors.items():
        exc.add_note(f"container instance {key} was not marked as this run's, so not drained")
    return errors


async def release(calls: EcsCalls, refs: Sequence[str], cluster: str | None) -> None:
    """Let go of ``refs``, left DRAINING: their mark says released (any run may carry on).

    Best effort: a mark that could not be rewritten stays this run's, which a later run can
    take over; the failure is logged as ``ecs_safe.ownership.release_failed``.
    """
    value = OWNER_RELEASED_PREFIX + calls.run_id
    errors = await calls.put_attributes(cluster, OWNER_ATTRIBUTE, dict.fromkeys(refs, value))
    for key, exc in errors.items():
        _events.logger.warning(
            "ecs_safe.ownership.release_failed",
            cluster=cluster,
            container_instance=key,
            error_code=exc.code,
        )


async def unclaim(calls: EcsCalls, marks: Mapping[str, str], cluster: str | None) -> None:
    """Remove the marks (instance reference -> the value found) of reactivated instances.

    Best effort, after ACTIVE is set: a mark left on an ACTIVE instance means nothing. A
    failure is logged as ``ecs_safe.ownership.unclaim_failed``.
    """
    if not marks:
        return
    errors = await calls.delete_attributes(cluster, OWNER_ATTRIBUTE, marks)
    for key, exc in errors.items():
        _events.logger.warning(
            "ecs_safe.ownership.unclaim_failed",
            cluster=cluster,
            container_instance=key,
            error_code=exc.code,
        )


# ----------------------------------------------------------------------------- other drainers


@dataclass(slots=True)
class _Group:
    name: str
    desired: int | None = None
    members: int = 0
    terminating: int = 0
    managed_draining: str | None = None  # the capacity provider, when ENABLED

    @property
    def scaling_in(self) -> bool:
        return self.terminating > 0 or (self.desired is not None and self.desired < self.members)


async def _other(calls: EcsCalls, service: str) -> Transport | None:
    if calls.transport_for is None:
        return None
    return await calls.transport_for(service)


async def _asg_states(autoscaling: Transport, ec2_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """EC2 ID -> (group, lifecycle state), DescribeAutoScalingInstances 50 a call."""
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ec2_ids), AUTOSCALING_INSTANCES_BATCH):
        batch = list(ec2_ids[start : start + AUTOSCALING_INSTANCES_BATCH])
        check = listed("DescribeAutoScalingInstances", "AutoScalingInstances")
        params = {"InstanceIds": batch}
        async for page in pages(
            autoscaling, "DescribeAutoScalingInstances", params, check=check, cursor="NextToken"
        ):
            for item in page["AutoScalingInstances"]:
                if isinstance(item, Mapping) and item.get("InstanceId"):
                    found[str(item["InstanceId"])] = (
                        str(item.get("AutoScalingGroupName") or ""),
                        str(item.get("LifecycleState") or ""),
                    )
    return found


async def _groups(
    calls: EcsCalls,
    autoscaling: Transport,
    cluster: str | None,
    names: set[str],
    providers: set[str],
) -> dict[str, _Group]:
    """The groups ``names``: sizes, and the managed-draining capacity provider of each."""
    groups = {name: _Group(name) for name in names}
    if not providers:
        providers = set(await calls.cluster_capacity_providers(cluster))
    for name, provider in (await calls.describe_capacity_providers(providers)).items():
        details = provider.auto_scaling_group_provider
        arn = (details.auto_scaling_group_arn if details else None) or ""
        named = arn.split(_GROUP_MARKER, 1)[1] if _GROUP_MARKER in arn else ""
        if named in groups and details is not None and details.managed_draining == "ENABLED":
            groups[named].managed_draining = name
    wanted = sorted(n for n, g in groups.items() if g.managed_draining)
    if wanted:
        check = listed("DescribeAutoScalingGroups", "AutoScalingGroups")
        params = {"AutoScalingGroupNames": wanted}
        async for page in pages(
            autoscaling, "DescribeAutoScalingGroups", params, check=check, cursor="NextToken"
        ):
            for raw in page["AutoScalingGroups"]:
                sized = groups.get(str(raw.get("AutoScalingGroupName")))
                if sized is None:
                    continue
                group = sized
                group.desired = int(raw.get("DesiredCapacity") or 0)
                members = raw.get("Instances") or []
                group.members = len(members)
                group.terminating = sum(
                    str(m.get("LifecycleState") or "").startswith(_TERMINATING) for m in members
                )
    return groups


async def _spot(calls: EcsCalls, ec2_ids: Sequence[str]) -> set[str]:
    """The EC2 instances of ``ec2_ids`` that are Spot instances (DescribeInstances)."""
    ec2 = await _other(calls, "ec2")
    spot: set[str] = set()
    if ec2 is None or not ec2_ids:
        return spot
    for start in range(0, len(ec2_ids), DESCRIBE_EC2_INSTANCES_BATCH):
        batch = list(ec2_ids[start : start + DESCRIBE_EC2_INSTANCES_BATCH])
        check = listed("DescribeInstances", "Reservations")
        async for page in pages(
            ec2, "DescribeInstances", {"InstanceIds": batch}, check=check, cursor="NextToken"
        ):
            for reservation in page["Reservations"]:
                for item in reservation.get("Instances") or []:
                    if item.get("InstanceLifecycle") == "spot":
                        spot.add(str(item.get("InstanceId")))
    return spot


async def survey(
    calls: EcsCalls,
    instances: Mapping[str, ContainerInstance],
    cluster: str | None,
    *,
    plan: bool = False,
) -> dict[str, OtherDrainer]:
    """Who else is draining each instance (keyed by the reference given), before acting.

    From the marks (no call), then, for the whole batch at once: DescribeAutoScalingInstances
    (50 a call) for the groups and lifecycle states; for instances in a group, the capacity
    providers (DescribeClusters when the instance does not name its own, then
    DescribeCapacityProviders) and the managed-draining groups' sizes; for instances DRAINING
    without a mark, DescribeInstances (Spot).

    The other services are asked about the instances DRAINING without a mark (who drained
    them decides what ecs-safe may do) and, for a ``plan`` (a dry run), about every instance,
    so that the plan names one in ``Terminating:Wait`` too; a real run spends no call on an
    ACTIVE instance, where the answer changes nothing it does. These lookups are best
    effort: one that fails (no permission, no session) is logged as
    ``ecs_safe.ownership.unchecked`` and the marks alone decide.
    """
    found: dict[str, OtherDrainer] = {}
    unmarked: dict[str, str] = {}  # ref -> EC2 ID, DRAINING without any mark
    for ref, instance in instances.items():
        if instance.status != "DRAINING":
            continue
        mark = claim_of(instance, calls.run_id)
        if mark.holder == "run":
            found[ref] = OtherDrainer(
                "ecs-safe-run",
                f"container instance {ref} is being drained by ecs-safe run {mark.run_id} "
                "(another run, live or crashed: its mark is on the instance)",
            )
        elif mark.holder == "none":
            found[ref] = _someone_else(ref)
            unmarked[ref] = instance.ec2_instance_id or ""
    asked = instances if plan else {ref: instances[ref] for ref in unmarked}
    if not asked:
        return found
    try:
        await _other_drainers(calls, asked, cluster, found, unmarked)
    except EcsSafeError as exc:
        _events.logger.warning(
            "ecs_safe.ownership.unchecked",
            cluster=cluster,
            error_code=exc.code,
            error=str(exc),
        )
    return found


async def _other_drainers(
    calls: EcsCalls,
    instances: Mapping[str, ContainerInstance],
    cluster: str | None,
    found: dict[str, OtherDrainer],
    unmarked: dict[str, str],
) -> None:
    ec2_ids = {
        ref: i.ec2_instance_id
        for ref, i in instances.items()
        if i.ec2_instance_id and i.ec2_instance_id.startswith("i-")
    }
    autoscaling = await _other(calls, "autoscaling") if ec2_ids else None
    states = await _asg_states(autoscaling, list(ec2_ids.values())) if autoscaling else {}
    grouped = {ref: states[e] for ref, e in ec2_ids.items() if e in states}
    groups: dict[str, _Group] = {}
    if grouped and autoscaling is not None:
        providers = {
            i.capacity_provider_name
            for ref, i in instances.items()
            if ref in grouped and i.capacity_provider_name
        }
        groups = await _groups(
            calls, autoscaling, cluster, {g for g, _ in grouped.values()}, providers
        )
    for ref, (group_name, state) in grouped.items():
        group = groups.get(group_name)
        leaving = state.startswith(_TERMINATING)
        taken = ref in found and found[ref].kind == "ecs-safe-run"
        if (
            group is not None
            and group.managed_draining
            and group.scaling_in
            and (leaving or ref in unmarked)
        ):
            found[ref] = OtherDrainer(
                "managed-draining",
                f"container instance {ref} is being drained by ECS managed draining (capacity "
                f"provider {group.managed_draining}, Auto Scaling group {group_name} scaling "
                "in): ECS deregisters it and Auto Scaling terminates it on its own",
            )
            unmarked.pop(ref, None)
        elif state == "Terminating:Wait" and not taken:
            found[ref] = OtherDrainer(
                "terminating-wait",
                f"container instance {ref} is in Terminating:Wait in Auto Scaling group "
                f"{group_name}: a termination lifecycle hook holds it, and it is terminated "
                "when the hook completes or times out",
            )
            unmarked.pop(ref, None)
    spot = await _spot(calls, [e for e in unmarked.values() if e.startswith("i-")])
    for ref, ec2_id in unmarked.items():
        if ec2_id in spot:
            found[ref] = OtherDrainer(
                "spot",
                f"container instance {ref} was drained by the ECS agent on a Spot "
                "interruption notice: EC2 reclaims it shortly; ecs-safe carries on with it and "
                "will not set it ACTIVE again",
            )
