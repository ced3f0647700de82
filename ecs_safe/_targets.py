"""Targets: turn what an operator names into the container instances registered in a cluster.

Nobody who runs a cluster has container instance IDs in hand: they have an EC2 instance ID (an
Auto Scaling event, a Spot notice, the console), an ECS Anywhere managed instance ID (``mi-…``),
an Auto Scaling group, or a question for ECS's cluster query language. This module answers all of
them with as few read calls as ECS allows:

- `classify` sorts one input into its form (pure, no network);
- `resolve` maps a list of inputs to the instances registered in one cluster, batched: EC2 and
  managed instance IDs by ``ec2InstanceId in [...]`` filters, about 47 IDs a listing, then one
  describe per 100 instances; container instance IDs and ARNs cost nothing here (the describe
  that follows in the caller resolves them);
- `list_instances` lists a cluster (every page) and describes what it found, 100 a call;
- `group_instance_ids` and `list_group_instances` do the same for an Auto Scaling group's
  members, reporting the members that are not registered in the cluster;
- `locate` finds the cluster of each EC2 instance over every cluster of the account and Region.

Every request goes through `ecs_safe._transport.Transport`, so pacing, retries, error mapping
and redaction apply here as everywhere; describes go through the call layer
(`ecs_safe._calls.EcsCalls.describe_instances`), listings through its one pager
(`ecs_safe._calls.pages`), which stops with `PaginationError` on a repeated ``nextToken`` or past
`ecs_safe._constants.LIST_PAGE_CAP` pages, never looping forever. The input patterns
(`classify`) are `ecs_safe._validation`'s, so validation and resolution never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from ecs_safe import _events
from ecs_safe._aws_calls import AutoScalingCalls, AutoScalingGroupNotFoundError
from ecs_safe._calls import EcsCalls, PaginationError, listed, pages
from ecs_safe._transport import Transport
from ecs_safe._validation import Target, TargetKind, classify, instance_id_of
from ecs_safe.errors import (
    ContainerInstanceNotFoundError,
    EcsSafeError,
    InvalidInputError,
)
from ecs_safe.models import ContainerInstance

__all__ = [
    "EC2_IDS_PER_FILTER",
    "FILTER_MAX_CHARS",
    "AutoScalingGroupNotFoundError",
    "GroupInstances",
    "PaginationError",
    "Resolution",
    "Resolved",
    "Target",
    "TargetKind",
    "classify",
    "ec2_id_filters",
    "group_instance_ids",
    "list_group_instances",
    "list_instances",
    "live_first",
    "locate",
    "refs_of",
    "resolve",
]
# `PaginationError` lives with the one pager (`ecs_safe._calls.pages`), `Target`/`classify`
# with the input patterns (`ecs_safe._validation`) and `AutoScalingGroupNotFoundError` with the
# Auto Scaling calls (`ecs_safe._aws_calls`); they are re-exported here, where the resolution
# that uses them lives.

#: The longest cluster query expression ecs-safe sends. ECS documents 2,000 characters for the
#: same language in placement constraints, and LocalEcs (`ecs_safe.local.query`) refuses a
#: ListContainerInstances ``filter`` past 1,024 as ECS does; staying within the smaller keeps
#: every filter acceptable wherever it is checked (at the price of about twice the listings).
FILTER_MAX_CHARS: Final = 1024
#: The most EC2 IDs one ``ec2InstanceId in [...]`` filter names. The character budget binds
#: first for real IDs (about 47 of 17 hex digits fit in `FILTER_MAX_CHARS`); this bound keeps a
#: listing within one 100-item page whatever the IDs' length.
EC2_IDS_PER_FILTER: Final = 100
#: ListContainerInstances returns at most this many ARNs a page (ECS's maximum).
_LIST_PAGE_SIZE: Final = 100

# A registration that is ACTIVE or DRAINING is the live one; an INACTIVE one is history (ECS
# keeps it listed for a while after deregistration); anything else is in between.
_LIVE: Final = frozenset({"ACTIVE", "DRAINING"})
_OLDEST: Final = datetime.min.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------- listing


def ec2_id_filters(ec2_instance_ids: Sequence[str], *, within: str | None = None) -> list[str]:
    """``ec2InstanceId in [...]`` filters naming every ID once, each within `FILTER_MAX_CHARS`.

    Args:
        ec2_instance_ids: EC2 or managed instance IDs (already validated: no quoting needed).
        within: a filter each one is combined with (``(within) and ec2InstanceId in [...]``).

    Raises:
        InvalidInputError: ``within`` is so long that not even one ID fits beside it.
    """
    head = f"({within}) and ec2InstanceId in [" if within else "ec2InstanceId in ["
    filters: list[str] = []
    chunk: list[str] = []
    length = len(head) + 1  # the closing bracket
    for ec2_id in dict.fromkeys(ec2_instance_ids):
        cost = len(ec2_id) + (2 if chunk else 0)  # ", " between IDs
        if chunk and (length + cost > FILTER_MAX_CHARS or len(chunk) >= EC2_IDS_PER_FILTER):
            filters.append(head + ", ".join(chunk) + "]")
            chunk, length, cost = [], len(head) + 1, len(ec2_id)
        if length + cost > FILTER_MAX_CHARS:
            raise InvalidInputError(
                f"filter is {len(within or '')} characters long: with the instance IDs it "
                f"must stay within {FILTER_MAX_CHARS}"
            )
        chunk.append(ec2_id)
        length += cost
    if chunk:
        filters.append(head + ", ".join(chunk) + "]")
    return filters


async def _list_arns(
    calls: EcsCalls, *, cluster: str | None, filter: str | None, status: str | None
) -> list[str]:
    """Every container instance ARN one ListContainerInstances listing returns (every page)."""
    arns: list[str] = []
    params = {"cluster": cluster, "filter": filter, "status": status, "maxResults": _LIST_PAGE_SIZE}
    operation = "ListContainerInstances"
    check = listed(operation, "containerInstanceArns")
    async for page in pages(calls.transport, operation, params, check=check):
        arns.extend(str(arn) for arn in page["containerInstanceArns"])
    return arns


async def _described(
    calls: EcsCalls, cluster: str | None, arns: Sequence[str]
) -> list[ContainerInstance]:
    """Describe ``arns`` through the call layer (100 a call, each once), in listing order.

    Those ECS reports missing (deregistered between the listing and the describe) are left
    out: a listing answers what is there, and they are no longer.
    """
    if not arns:
        return []
    answers = await calls.describe_instances(arns, cluster)
    keys = dict.fromkeys(instance_id_of(arn) for arn in arns)
    return [answers.found[key] for key in keys if key in answers.found]


# ----------------------------------------------------------------------------- listing


async def list_instances(
    ecs: EcsCalls,
    *,
    cluster: str | None,
    filter: str | None = None,
    status: str | None = None,
    ec2_instance_ids: Sequence[str] | None = None,
) -> list[ContainerInstance]:
    """Every container instance a ListContainerInstances listing returns, described.

    Args:
        ecs: the call layer over the ECS transport (its describe serves the listing).
        cluster: the cluster's name or ARN (``None``: ECS's default cluster).
        filter: a cluster query language expression, passed to ECS as it is; ECS judges it
            (a bad one comes back as `InvalidParameterException`).
        status: one of ECS's instance statuses; without it ECS lists every status but INACTIVE.
        ec2_instance_ids: only these EC2 or managed instances (several listings of about 47 IDs
            each, combined with ``filter``). An ID not registered is simply not returned.

    Returns:
        The instances in listing order, each once.
    """
    if ec2_instance_ids is None:
        arns = await _list_arns(ecs, cluster=cluster, filter=filter, status=status)
    else:
        arns = []
        for expression in ec2_id_filters(ec2_instance_ids, within=filter):
            arns += await _list_arns(ecs, cluster=cluster, filter=expression, status=status)
    instances = await _described(ecs, cluster, arns)
    if ec2_instance_ids is not None:
        # ECS returns only the IDs asked for; an endpoint that ignored the filter (moto does)
        # must not turn a lookup of a few instances into the whole cluster.
        wanted = set(ec2_instance_ids)
        instances = [i for i in instances if i.ec2_instance_id in wanted]
    return instances


def live_first(instance: ContainerInstance) -> tuple[int, datetime]:
    """Sort key: which of several registrations of one EC2 instance is the one to act on.

    ACTIVE and DRAINING registrations before any other, INACTIVE ones last; then the newest
    ``registeredAt``. ``max(registrations, key=live_first)`` is the live one.
    """
    status = instance.status or ""
    rank = 2 if status in _LIVE else 0 if status == "INACTIVE" else 1
    return rank, instance.registered_at or _OLDEST


def _by_ec2_id(instances: Iterable[ContainerInstance]) -> dict[str, ContainerInstance]:
    """The live registration of each EC2 instance among ``instances`` (see `live_first`)."""
    best: dict[str, ContainerInstance] = {}
    for instance in instances:
        ec2_id = instance.ec2_instance_id
        if ec2_id and (ec2_id not in best or live_first(instance) > live_first(best[ec2_id])):
            best[ec2_id] = instance
    return best


# ----------------------------------------------------------------------------- resolution


@dataclass(frozen=True, slots=True)
class Resolved:
    """What one input resolved to: a container instance (as ``ref``) or an error.

    Attributes:
        given: the input as given (a `ContainerInstance` as its ARN).
        ref: the container instance ID or ARN to act on: the ARN ECS returned for an EC2 or
            managed instance ID, the input itself for an ID or ARN (``None`` on error).
        ec2_instance_id: the EC2 or managed instance ID, when the resolution learned it.
        error: why the input names no instance: `InvalidInputError` for a malformed one,
            `ContainerInstanceNotFoundError` for an EC2 ID not registered in the cluster.
    """

    given: str
    ref: str | None = None
    ec2_instance_id: str | None = None
    error: EcsSafeError | None = None

    @property
    def instance_id(self) -> str | None:
        """The container instance ID (the last path segment of ``ref``)."""
        return self.ref.rsplit("/", 1)[-1] if self.ref else None


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of `resolve`: one `Resolved` per input and the unique targets.

    Attributes:
        items: one per input, in input order.
        targets: the container instances to act on, each once, in first-seen order (an ARN
            where the resolution has one, else the ID or ARN as first given).
        described: the instances described while resolving, by container instance ID, so a
            caller need not describe them again.
    """

    items: tuple[Resolved, ...]
    targets: tuple[str, ...]
    described: Mapping[str, ContainerInstance] = field(default_factory=dict)

    @property
    def errors(self) -> list[Resolved]:
        """The inputs that name no instance, in input order."""
        return [item for item in self.items if item.error is not None]

    def inputs_of(self, target: str) -> list[Resolved]:
        """Every input that resolved to ``target`` (an ID or ARN of ``targets``)."""
        key = target.rsplit("/", 1)[-1]
        return [item for item in self.items if item.instance_id == key]


def _not_registered(ec2_ids: Sequence[str], cluster: str | None) -> ContainerInstanceNotFoundError:
    where = cluster or "default"
    return ContainerInstanceNotFoundError(
        f"{', '.join(ec2_ids)}: not registered in cluster {where} as a container instance",
        container_instances=list(ec2_ids),
        code="ContainerInstanceNotFound",
        operation="ListContainerInstances",
    )


async def resolve(ecs: EcsCalls, inputs: Iterable[object], *, cluster: str | None) -> Resolution:
    """Resolve every input to the container instance registered in ``cluster``.

    Container instance IDs and ARNs (and `ContainerInstance` models, by their ARN) are taken as
    they are: the describe a caller makes next resolves them, so they cost no call here. EC2
    and managed instance IDs are looked up together: ``ceil(n / 47)`` listings and
    ``ceil(n / 100)`` describes for ``n`` IDs, never a call per instance. An EC2 instance
    registered more than once resolves to its live registration (see `live_first`).

    Every input gets an outcome, in order: a malformed one an `InvalidInputError`, an EC2 ID
    not registered in the cluster a `ContainerInstanceNotFoundError` naming it. The same
    instance named several times, in any forms, is one target.

    Raises:
        EcsApiError: a listing or describe failed (after retries); nothing is half-resolved.
    """
    values = list(inputs)
    classified: list[Target | InvalidInputError] = []
    for value in values:
        try:
            classified.append(classify(value, argument="container_instances[]"))
        except InvalidInputError as exc:
            classified.append(exc)
    lookups = [t.key for t in classified if isinstance(t, Target) and t.needs_lookup]
    described: dict[str, ContainerInstance] = {}
    live: dict[str, ContainerInstance] = {}
    if lookups:
        live = _by_ec2_id(await list_instances(ecs, cluster=cluster, ec2_instance_ids=lookups))
        described = {i.instance_id: i for i in live.values() if i.instance_id}

    items: list[Resolved] = []
    for value, target in zip(values, classified, strict=True):
        given = _given(value, target)
        if isinstance(target, InvalidInputError):
            items.append(Resolved(given, error=target))
        elif not target.needs_lookup:
            items.append(Resolved(given, ref=target.given))
        elif (instance := live.get(target.key)) is not None:
            items.append(Resolved(given, instance.container_instance_arn, target.key))
        else:
            items.append(Resolved(given, error=_not_registered([target.key], cluster)))
    return Resolution(tuple(items), _unique_targets(items), described)


def refs_of(resolution: Resolution, cluster: str | None) -> list[str]:
    """The ref of each input, in input order, for a call that acts on all of them or none.

    Raises:
        InvalidInputError: an input is malformed (the first such).
        ContainerInstanceNotFoundError: inputs name no instance in the cluster; it names every
            one of them.
    """
    errors = resolution.errors
    for item in errors:
        if not isinstance(item.error, ContainerInstanceNotFoundError):
            raise item.error or InvalidInputError(f"{item.given!r} names no container instance")
    if errors:
        raise _not_registered([item.given for item in errors], cluster)
    return [item.ref for item in resolution.items if item.ref is not None]


def _given(value: object, target: Target | InvalidInputError) -> str:
    """The input as a string: its classified form, else the string given, else its repr."""
    if isinstance(target, Target):
        return target.given
    return value if isinstance(value, str) else repr(value)


def _unique_targets(items: Iterable[Resolved]) -> tuple[str, ...]:
    """One ref per container instance in first-seen order, an ARN where any input gave one."""
    first: dict[str, str] = {}
    for item in items:
        key = item.instance_id
        if key is None or item.ref is None:
            continue
        if key not in first or (item.ref.startswith("arn:") and not first[key].startswith("arn:")):
            first[key] = item.ref
    return tuple(first.values())


# ----------------------------------------------------------------------------- Auto Scaling


async def group_instance_ids(autoscaling: Transport, name: str) -> list[str]:
    """The EC2 instance IDs of an Auto Scaling group's members (every page), in its order.

    The one Auto Scaling read of the call layer (`ecs_safe._aws_calls.AutoScalingCalls`),
    over the transport given.

    Args:
        autoscaling: a transport over an aiobotocore ``autoscaling`` client (the same retries
            and rate limiter as the ECS one).
        name: the group's name.

    Raises:
        AutoScalingGroupNotFoundError: no group has that name.
    """
    return await AutoScalingCalls(autoscaling).group_instance_ids(name)


@dataclass(frozen=True, slots=True)
class GroupInstances:
    """An Auto Scaling group's members as found in one cluster.

    Attributes:
        instances: the members registered in the cluster that match the filter and status.
        missing: the members (EC2 instance IDs) not registered in the cluster at all.
    """

    instances: list[ContainerInstance]
    missing: list[str]


async def list_group_instances(
    ecs: EcsCalls,
    autoscaling: Transport,
    *,
    cluster: str | None,
    group: str,
    filter: str | None = None,
    status: str | None = None,
) -> GroupInstances:
    """An Auto Scaling group's members registered in ``cluster``, optionally narrowed.

    A member not registered in the cluster is never dropped silently: it is in ``missing`` and
    in a warning event ``ecs_safe.targets.unregistered``. With ``filter`` or ``status``, a
    registered member they exclude is not missing, just not selected; telling the two apart
    costs one more listing per 47 members.
    """
    members = await group_instance_ids(autoscaling, group)
    registered = _by_ec2_id(await list_instances(ecs, cluster=cluster, ec2_instance_ids=members))
    selected = list(registered.values())
    if filter is not None or status is not None:
        narrowed = await list_instances(
            ecs, cluster=cluster, filter=filter, status=status, ec2_instance_ids=members
        )
        keep = {i.container_instance_arn for i in narrowed}
        selected = [i for i in selected if i.container_instance_arn in keep]
        # status=INACTIVE selects registrations the unfiltered listing does not show.
        selected += [
            i for i in _by_ec2_id(narrowed).values() if i.ec2_instance_id not in registered
        ]
    seen = set(registered) | {i.ec2_instance_id for i in selected}
    missing = [m for m in members if m not in seen]
    if missing:
        _events.logger.warning(
            "ecs_safe.targets.unregistered",
            cluster=cluster,
            auto_scaling_group=group,
            ec2_instance_ids=missing,
            count=len(missing),
        )
    order = {m: n for n, m in enumerate(members)}
    selected.sort(key=lambda i: order.get(i.ec2_instance_id or "", len(order)))
    return GroupInstances(selected, missing)


# ----------------------------------------------------------------------------- locate


async def _cluster_arns(ecs: EcsCalls) -> list[str]:
    arns: list[str] = []
    check = listed("ListClusters", "clusterArns")
    async for page in pages(ecs.transport, "ListClusters", {"maxResults": 100}, check=check):
        arns.extend(str(arn) for arn in page["clusterArns"])
    return arns


async def locate(ecs: EcsCalls, ec2_instance_ids: Iterable[object]) -> dict[str, ContainerInstance]:
    """Find the cluster each EC2 (or managed) instance is registered in, over every cluster.

    Lists the account's clusters in the Region (every page), then resolves the IDs still
    unplaced in each, batched as in `resolve`. A live registration (ACTIVE or DRAINING) found
    in one cluster wins over an INACTIVE one in another, and ends the search for that ID.

    Returns:
        The instance of each ID found, keyed by the ID as given; IDs found nowhere are absent.

    Raises:
        InvalidInputError: an input is not an EC2 or managed instance ID.
    """
    wanted: list[str] = []
    for value in ec2_instance_ids:
        target = classify(value, argument="ec2_instance_ids[]")
        if not target.needs_lookup:
            raise InvalidInputError(
                f"ec2_instance_ids[] {target.given!r} is a container instance ID or ARN; "
                "locate takes EC2 instance IDs (i-...) or managed instance IDs (mi-...)"
            )
        wanted.append(target.key)
    wanted = list(dict.fromkeys(wanted))
    found: dict[str, ContainerInstance] = {}
    if not wanted:
        return found
    for cluster_arn in await _cluster_arns(ecs):
        todo = [w for w in wanted if w not in found or (found[w].status or "") not in _LIVE]
        if not todo:
            break
        here = _by_ec2_id(await list_instances(ecs, cluster=cluster_arn, ec2_instance_ids=todo))
        for ec2_id, instance in here.items():
            if ec2_id not in found or live_first(instance)[0] > live_first(found[ec2_id])[0]:
                found[ec2_id] = instance
    return {w: found[w] for w in wanted if w in found}
