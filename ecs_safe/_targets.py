"""Targets: turn what an operator names into the container instances registered in a cluster.

Nobody who runs a cluster has container instance IDs in hand: they have an EC2 instance ID (an
Auto Scaling event, a Spot notice, the console), an ECS Anywhere managed instance ID (``mi-…``),
an Auto Scaling group, or a question for ECS's cluster query language. This module answers all of
them with as few read calls as ECS allows:

- `classify` sorts one input into its form (pure, no network);
- `resolve` maps a list of inputs to the instances registered in one cluster, batched: EC2 and
  managed instance IDs by ``ec2InstanceId in [...]`` filters, 47 IDs a listing, then one
  describe per 100 instances; container instance IDs and ARNs cost nothing here (the describe
  that follows in the caller resolves them);
- `list_instances` lists a cluster (every page) and describes what it found, 100 a call;
- `group_instance_ids` and `list_group_instances` do the same for an Auto Scaling group's
  members, reporting the members that are not registered in the cluster;
- `locate` finds the cluster of each EC2 instance over every cluster of the account and Region.

Every request goes through `ecs_safe._transport.EcsTransport`, so pacing, retries, error mapping
and redaction apply here as everywhere. Every paginated listing stops with `PaginationError` on a
repeated ``nextToken`` or past `ecs_safe._constants.LIST_PAGE_CAP` pages, never looping forever.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

from ecs_safe import _events
from ecs_safe._checks import accounted, incomplete
from ecs_safe._constants import DESCRIBE_INSTANCES_BATCH, LIST_PAGE_CAP
from ecs_safe._transport import EcsTransport, Response
from ecs_safe.errors import (
    ContainerInstanceNotFoundError,
    EcsApiError,
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
    "resolve",
]

#: The longest cluster query expression ecs-safe sends. ECS documents no limit for
#: ListContainerInstances' ``filter`` (and 2,000 characters for the same language in placement
#: constraints); LocalEcs refuses filters past 1,024 characters. The lower bound costs a few
#: more listings (47 long EC2 IDs a filter instead of 94) and keeps every filter acceptable
#: wherever the limit really lies.
FILTER_MAX_CHARS: Final = 1024
#: The most EC2 IDs one ``ec2InstanceId in [...]`` filter names. The character budget binds
#: first for real IDs (47 of 17 hex digits fit in `FILTER_MAX_CHARS`); this bound keeps a
#: listing within one 100-item page whatever the IDs' length.
EC2_IDS_PER_FILTER: Final = 100
#: ListContainerInstances returns at most this many ARNs a page (ECS's maximum).
_LIST_PAGE_SIZE: Final = 100

TargetKind = Literal[
    "container_instance_id", "container_instance_arn", "ec2_instance_id", "managed_instance_id"
]

# Container instance IDs are 32 hex digits today and were UUIDs before; today's validation also
# accepts any letters, digits and hyphens (up to 64), which this keeps, so that no ID that
# worked before is refused now. `\Z`, not `$` (which matches before a trailing newline), and
# `[0-9]`, not `\d` (any Unicode digit).
_ID: Final = r"[A-Za-z0-9][A-Za-z0-9-]{0,63}"
_ID_RE: Final = re.compile(rf"^{_ID}\Z")
_CLUSTER_NAME: Final = r"[A-Za-z0-9_-]{1,255}"
_INSTANCE_ARN_RE: Final = re.compile(
    rf"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{{12}}:container-instance/"
    rf"(?:(?P<cluster>{_CLUSTER_NAME})/)?(?P<id>{_ID})\Z"
)
_EC2_ID_RE: Final = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")
_MANAGED_ID_RE: Final = re.compile(r"^mi-[0-9a-f]{17}\Z")
_MAX_INPUT: Final = 2048
_FORMS: Final = (
    "a container instance ID or ARN, an EC2 instance ID (i- and 8 or 17 hex digits), "
    "a managed instance ID (mi- and 17 hex digits) or a ContainerInstance"
)
# A registration that is ACTIVE or DRAINING is the live one; an INACTIVE one is history (ECS
# keeps it listed for a while after deregistration); anything else is in between.
_LIVE: Final = frozenset({"ACTIVE", "DRAINING"})
_OLDEST: Final = datetime.min.replace(tzinfo=UTC)


class PaginationError(EcsApiError):
    """A listing did not end: its ``nextToken`` repeated, or it ran past the page cap.

    Taking what was listed so far for the whole answer would act on part of a cluster (the
    failure that broke ecs-cid-sample and ecs-drain-lambda), so the listing fails instead.
    """


class AutoScalingGroupNotFoundError(EcsApiError):
    """DescribeAutoScalingGroups knows no group of that name in this account and Region.

    Attributes:
        group: the group name as given.
    """

    def __init__(self, group: str, *, request_id: str | None = None) -> None:
        super().__init__(
            f"no Auto Scaling group named {group!r} in this account and Region",
            code="AutoScalingGroupNotFound",
            operation="DescribeAutoScalingGroups",
            request_id=request_id,
        )
        self.group = group


# ----------------------------------------------------------------------------- classification


@dataclass(frozen=True, slots=True)
class Target:
    """One input, classified.

    Attributes:
        given: the input as given (for a `ContainerInstance`: its ARN).
        kind: which form it has.
        key: what identifies the instance in that form: the container instance ID (also of an
            ARN) or the EC2/managed instance ID.
        cluster_in_arn: the cluster a long-form container instance ARN names, if any.
    """

    given: str
    kind: TargetKind
    key: str
    cluster_in_arn: str | None = None

    @property
    def needs_lookup(self) -> bool:
        """Whether the container instance must be found by listing (EC2 and managed IDs)."""
        return self.kind in ("ec2_instance_id", "managed_instance_id")


def classify(value: object, *, argument: str = "container_instance") -> Target:
    """Sort one input into its form; nothing here talks to the network.

    Raises:
        InvalidInputError: anything that is not one of the accepted forms (the message names
            them), including a `ContainerInstance` without an ARN.
    """
    if isinstance(value, ContainerInstance):
        if not value.container_instance_arn:
            raise InvalidInputError(
                f"{argument} is a ContainerInstance without a container_instance_arn; pass {_FORMS}"
            )
        value = value.container_instance_arn
    if not isinstance(value, str):
        raise InvalidInputError(f"{argument} must be {_FORMS}, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{argument} must not be empty: pass {_FORMS}")
    if len(value) > _MAX_INPUT:
        raise InvalidInputError(
            f"{argument} is {len(value)} characters long; ECS IDs and ARNs are at most {_MAX_INPUT}"
        )
    if value != value.strip():
        raise InvalidInputError(f"{argument} {value.strip()!r} has surrounding whitespace")
    if value.startswith("arn:"):
        match = _INSTANCE_ARN_RE.match(value)
        if match is None:
            raise InvalidInputError(
                f"{argument} {value!r} is not a container instance ARN "
                "(arn:aws:ecs:REGION:ACCOUNT:container-instance/[CLUSTER/]ID); "
                f"pass {_FORMS}"
            )
        return Target(value, "container_instance_arn", match.group("id"), match.group("cluster"))
    if _EC2_ID_RE.match(value):
        return Target(value, "ec2_instance_id", value)
    if _MANAGED_ID_RE.match(value):
        return Target(value, "managed_instance_id", value)
    if value.startswith(("i-", "mi-")):
        # A container instance ID never starts so: this is a mistyped EC2 or managed ID.
        raise InvalidInputError(
            f"{argument} {value!r} is neither an EC2 instance ID (i- and 8 or 17 lowercase hex "
            "digits) nor a managed instance ID (mi- and 17 lowercase hex digits)"
        )
    if not _ID_RE.match(value):
        raise InvalidInputError(f"{argument} {value!r} is not {_FORMS}")
    return Target(value, "container_instance_id", value)


# ----------------------------------------------------------------------------- paging


async def _pages(
    api: EcsTransport,
    operation: str,
    params: Mapping[str, Any],
    *,
    listed: str,
    cursor: str = "nextToken",
) -> AsyncIterator[Response]:
    """Every page of a listing, each checked to hold its ``listed`` list.

    Raises:
        PaginationError: a token came back twice, or the listing passed `LIST_PAGE_CAP` pages.
    """

    def check(response: Response) -> None:
        if not isinstance(response.get(listed), list):
            raise incomplete(operation, response, f"held no {listed} list")

    seen: set[str] = set()
    next_token: str | None = None
    for _page in range(LIST_PAGE_CAP):
        page = await api.call(operation, {**params, cursor: next_token}, check=check)
        yield page
        raw = page.get(cursor)
        if not raw:
            return
        next_token = str(raw)
        if next_token in seen:
            raise PaginationError(
                f"{operation} returned the same {cursor} twice; the listing would never end",
                code="PaginationLoop",
                operation=operation,
            )
        seen.add(next_token)
    raise PaginationError(
        f"{operation} still had more after {LIST_PAGE_CAP} pages; refusing to page on",
        code="PaginationCap",
        operation=operation,
    )


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
    api: EcsTransport, *, cluster: str | None, filter: str | None, status: str | None
) -> list[str]:
    """Every container instance ARN one ListContainerInstances listing returns (every page)."""
    arns: list[str] = []
    params = {"cluster": cluster, "filter": filter, "status": status, "maxResults": _LIST_PAGE_SIZE}
    async for page in _pages(api, "ListContainerInstances", params, listed="containerInstanceArns"):
        arns.extend(str(arn) for arn in page["containerInstanceArns"])
    return arns


async def _describe(
    api: EcsTransport, cluster: str | None, refs: Iterable[str]
) -> list[ContainerInstance]:
    """Describe ``refs`` (IDs or ARNs), 100 a call; those ECS reports missing are left out."""
    unique = list(dict.fromkeys(refs))
    found: list[ContainerInstance] = []
    for first in range(0, len(unique), DESCRIBE_INSTANCES_BATCH):
        batch = unique[first : first + DESCRIBE_INSTANCES_BATCH]
        response = await api.call(
            "DescribeContainerInstances",
            {"cluster": cluster, "containerInstances": batch},
            check=accounted(
                "DescribeContainerInstances", batch, "containerInstances", "containerInstanceArn"
            ),
        )
        found.extend(
            ContainerInstance.model_validate(raw)
            for raw in response.get("containerInstances") or []
            if isinstance(raw, Mapping)
        )
    return found


# ----------------------------------------------------------------------------- listing


async def list_instances(
    ecs: EcsTransport,
    *,
    cluster: str | None,
    filter: str | None = None,
    status: str | None = None,
    ec2_instance_ids: Sequence[str] | None = None,
) -> list[ContainerInstance]:
    """Every container instance a ListContainerInstances listing returns, described.

    Args:
        ecs: the ECS transport.
        cluster: the cluster's name or ARN (``None``: ECS's default cluster).
        filter: a cluster query language expression, passed to ECS as it is; ECS judges it
            (a bad one comes back as `InvalidParameterException`).
        status: one of ECS's instance statuses; without it ECS lists every status but INACTIVE.
        ec2_instance_ids: only these EC2 or managed instances (several listings of 47 IDs
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
    instances = await _describe(ecs, cluster, arns)
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


async def resolve(
    ecs: EcsTransport, inputs: Iterable[object], *, cluster: str | None
) -> Resolution:
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


async def group_instance_ids(autoscaling: EcsTransport, name: str) -> list[str]:
    """The EC2 instance IDs of an Auto Scaling group's members (every page), in its order.

    Args:
        autoscaling: a transport over an aiobotocore ``autoscaling`` client (the same retries
            and rate limiter as the ECS one).
        name: the group's name.

    Raises:
        AutoScalingGroupNotFoundError: no group has that name.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"auto_scaling_group must be a group name, got {name!r}")
    ids: list[str] = []
    found = False
    request_id: str | None = None
    async for page in _pages(
        autoscaling,
        "DescribeAutoScalingGroups",
        {"AutoScalingGroupNames": [name]},
        listed="AutoScalingGroups",
        cursor="NextToken",
    ):
        request_id = request_id or (page.get("ResponseMetadata") or {}).get("RequestId")
        for group in page["AutoScalingGroups"]:
            found = True
            ids.extend(
                str(m["InstanceId"]) for m in group.get("Instances") or [] if m.get("InstanceId")
            )
    if not found:
        raise AutoScalingGroupNotFoundError(name, request_id=request_id)
    return list(dict.fromkeys(ids))


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
    ecs: EcsTransport,
    autoscaling: EcsTransport,
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


async def _cluster_arns(ecs: EcsTransport) -> list[str]:
    arns: list[str] = []
    async for page in _pages(ecs, "ListClusters", {"maxResults": 100}, listed="clusterArns"):
        arns.extend(str(arn) for arn in page["clusterArns"])
    return arns


async def locate(
    ecs: EcsTransport, ec2_instance_ids: Iterable[object]
) -> dict[str, ContainerInstance]:
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
