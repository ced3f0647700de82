"""Which instances a command acts on: the IDs given, the selectors, and how each resolved.

The commands that take instances (``deregister``, ``drain``, ``describe``) take them as
positional inputs (container instance IDs or ARNs, EC2 instance IDs, managed instance IDs) and
through selectors: ``--filter EXPR`` (ECS's cluster query language, passed through),
``--status STATUS``, ``--auto-scaling-group NAME`` and ``--all`` (every ACTIVE instance). The
selectors combine into one listing (`EcsSafeClient.list_container_instances`, which narrows a
group by the filter and the status); the positional inputs are resolved together
(`EcsSafeClient.resolve_container_instances`). The union is de-duplicated by container
instance, so each instance is acted on once, and every input keeps a line in the plan saying
what it resolved to (`Entry`). The CLI never talks to ECS itself: both calls are the library's.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from ecs_safe._constants import CONTAINER_INSTANCE_STATUSES, DEFAULT_CLUSTER
from ecs_safe._validation import classify, instance_id_of
from ecs_safe.errors import ContainerInstanceNotFoundError, EcsSafeError, InvalidInputError

if TYPE_CHECKING:
    from ecs_safe.client import EcsSafeClient
    from ecs_safe.models import ContainerInstance

__all__ = [
    "ARGUMENT",
    "Entry",
    "EntryState",
    "Selection",
    "Selectors",
    "check_selectors",
    "names_host",
    "not_found",
    "select",
    "where",
]

#: The ``source`` of an entry that came from the command line's positional arguments.
ARGUMENT: Final = "argument"

#: What an input turned out to be: an instance to act on, one already listed, none at all,
#: or a group member that is not in the cluster.
EntryState = Literal["resolved", "duplicate", "not_registered", "unregistered_member"]


@dataclass(frozen=True)
class Selectors:
    """The selector options of one command line (all optional)."""

    filter: str | None = None
    """``--filter``: a cluster query language expression, passed to ECS as it is."""
    status: str | None = None
    """``--status``: one of ECS's container instance statuses."""
    auto_scaling_group: str | None = None
    """``--auto-scaling-group``: only this group's members registered in the cluster."""
    all: bool = False
    """``--all``: every ACTIVE instance of the cluster (``--status`` overrides ACTIVE)."""

    @property
    def given(self) -> bool:
        """Whether any selector was given."""
        return self.all or any(
            v is not None for v in (self.filter, self.status, self.auto_scaling_group)
        )

    @property
    def listing_status(self) -> str | None:
        """The status the listing asks for: ``--status``, else ACTIVE under ``--all``."""
        return self.status if self.status is not None or not self.all else "ACTIVE"

    def describe(self) -> str:
        """The selectors as typed on a command line: ``--filter 'x == y' --status ACTIVE``."""
        parts = ["--all"] if self.all else []
        for flag, value in (
            ("--filter", self.filter),
            ("--auto-scaling-group", self.auto_scaling_group),
            ("--status", self.status),
        ):
            if value is not None:
                parts.append(f"{flag} {shlex.quote(value)}")
        return " ".join(parts)


def check_selectors(instances: Sequence[str], selectors: Selectors) -> None:
    """The usage errors of a selection, found before anything is sent.

    Raises:
        InvalidInputError: nothing named at all; ``--all`` with positional instances or with
            ``--filter``; a ``--status`` that is not one of ECS's (the message lists them).
    """
    if not instances and not selectors.given:
        raise InvalidInputError(
            "Missing argument 'CONTAINER_INSTANCE...': name the instances, or select them "
            "with --filter, --auto-scaling-group, --status or --all"
        )
    if selectors.all and instances:
        raise InvalidInputError(
            "--all selects every ACTIVE instance of the cluster and cannot be combined with "
            f"instances named on the command line ({', '.join(instances)}): pass one or the other"
        )
    if selectors.all and selectors.filter is not None:
        raise InvalidInputError(
            "--all selects every ACTIVE instance of the cluster and cannot be combined with "
            f"--filter {shlex.quote(selectors.filter)}: drop --all to select by the filter"
        )
    if selectors.status is not None and selectors.status not in CONTAINER_INSTANCE_STATUSES:
        raise InvalidInputError(
            f"--status {selectors.status!r} is not a container instance status; valid values: "
            f"{', '.join(CONTAINER_INSTANCE_STATUSES)}"
        )
    if selectors.filter is not None and not selectors.filter.strip():
        raise InvalidInputError(
            "--filter needs an expression, e.g. 'attribute:ecs.ami-id == ami-1'"
        )
    group = selectors.auto_scaling_group
    if group is not None and (not group.strip() or group != group.strip()):
        raise InvalidInputError(f"--auto-scaling-group needs a group name, got {group!r}")


@dataclass(frozen=True)
class Entry:
    """One line of the plan's resolution: an input and what it named."""

    input: str
    """The input as given (a positional argument), or the container instance ID a selector
    listed, or the EC2 instance ID of an unregistered group member."""
    source: str
    """`ARGUMENT`, or the selectors that listed it (``--filter '...'``), or
    ``--auto-scaling-group NAME`` for an unregistered member."""
    state: EntryState
    """What it turned out to be."""
    container_instance_arn: str | None = None
    """The container instance (ARN, or the ID as given when it was not described)."""
    ec2_instance_id: str | None = None
    """The EC2 or managed instance ID, when known."""
    duplicate_of: str | None = None
    """For a duplicate: the input (as given) that named the instance first."""
    error: EcsSafeError | None = None
    """For ``not_registered``: the error that says so."""

    @property
    def container_instance_id(self) -> str | None:
        """The container instance ID (the last segment of the ARN)."""
        arn = self.container_instance_arn
        return instance_id_of(arn) if arn else None

    def to_json(self) -> dict[str, Any]:
        """The entry as an element of the JSON documents' ``resolution``."""
        return {
            "input": self.input,
            "source": self.source,
            "state": self.state,
            "container_instance_id": self.container_instance_id,
            "container_instance_arn": self.container_instance_arn,
            "ec2_instance_id": self.ec2_instance_id,
            "duplicate_of": self.duplicate_of,
        }


@dataclass
class Selection:
    """What a command acts on, and how every input resolved.

    ``targets`` are the instances to act on, each once, in order (positional inputs first,
    then the listed ones); ``given`` names each target as the command line gave it (the first
    input that named it, or the ARN a selector listed); ``selected_by`` holds the selectors'
    description for listed targets; ``listed`` holds the instances a listing described.
    ``failed`` are the positional inputs that name no instance (an EC2 ID not registered):
    each becomes a failed outcome without a request.
    """

    entries: list[Entry] = field(default_factory=list)
    """Every input's line, in order (the unregistered group members last)."""
    targets: list[str] = field(default_factory=list)
    """The refs to act on, each once."""
    given: dict[str, str] = field(default_factory=dict)
    """By target: the input as given that named it first."""
    selected_by: dict[str, str] = field(default_factory=dict)
    """By target: the selectors that listed it (absent for positional inputs)."""
    listed: dict[str, ContainerInstance] = field(default_factory=dict)
    """By container instance ID: the instances the listing described."""
    failed: list[Entry] = field(default_factory=list)
    """The positional inputs that name no instance, in order."""
    cluster: str | None = None
    """The cluster as given."""

    def learn(
        self,
        found: Mapping[str, ContainerInstance],
        missing: Mapping[str, EcsSafeError] | None = None,
    ) -> None:
        """Record what acting on the targets learned, by container instance ID, in one pass.

        A container instance ID given as such resolves without a call; the describe of the
        command that acts on it fills in its ARN and EC2 ID (``found``) or says it is not
        registered (``missing``: the error that said so).
        """
        missing = missing or {}
        for n, entry in enumerate(self.entries):
            key = entry.container_instance_id
            if entry.state == "unregistered_member" or key is None:
                continue
            instance = found.get(key)
            if instance is not None and instance.container_instance_arn:
                self.entries[n] = replace(
                    entry,
                    container_instance_arn=instance.container_instance_arn,
                    ec2_instance_id=instance.ec2_instance_id or entry.ec2_instance_id,
                )
            elif entry.state == "resolved" and key in missing:
                self.entries[n] = replace(entry, state="not_registered", error=missing[key])

    def to_json(self) -> list[dict[str, Any]]:
        """The ``resolution`` list of the JSON documents."""
        return [entry.to_json() for entry in self.entries]


def names_host(value: str) -> bool:
    """Whether ``value`` is an EC2 or managed instance ID (not a container instance's)."""
    try:
        return classify(value).needs_lookup
    except InvalidInputError:
        return False


def where(cluster: str | None) -> str:
    """The cluster named as the plan names it: ``'prod'``, or ``'default'``."""
    return repr(cluster or DEFAULT_CLUSTER)


async def select(
    ecs: EcsSafeClient,
    instances: Sequence[str],
    selectors: Selectors,
    *,
    cluster: str | None,
) -> Selection:
    """Resolve the positional inputs and run the selectors' listing; de-duplicate the union.

    Raises:
        InvalidInputError: a selector matched no instance (naming the selector and its value;
            nothing is acted on).
        EcsApiError: a listing or describe failed (after retries).
    """
    selection = Selection(cluster=cluster)
    first: dict[str, str] = {}  # container instance ID -> the input that named it first

    def claim(key: str, given: str, ref: str) -> str | None:
        """Register ``ref`` under ``key``; the earlier input's name when it is a duplicate."""
        if key in first:
            return first[key]
        first[key] = given
        selection.targets.append(ref)
        selection.given[ref] = given
        return None

    if instances:
        for item in await ecs.resolve_container_instances(instances, cluster=cluster):
            if item.ref is None:
                host = item.given if names_host(item.given) else None
                entry = Entry(
                    item.given, ARGUMENT, "not_registered", ec2_instance_id=host, error=item.error
                )
                selection.entries.append(entry)
                selection.failed.append(entry)
                continue
            earlier = claim(instance_id_of(item.ref), item.given, item.ref)
            selection.entries.append(
                Entry(
                    item.given,
                    ARGUMENT,
                    "duplicate" if earlier is not None else "resolved",
                    container_instance_arn=item.ref,
                    ec2_instance_id=item.ec2_instance_id,
                    duplicate_of=earlier,
                )
            )
    if selectors.given:
        await _list(ecs, selectors, selection, claim, cluster=cluster)
    return selection


async def _list(
    ecs: EcsSafeClient,
    selectors: Selectors,
    selection: Selection,
    claim: Any,
    *,
    cluster: str | None,
) -> None:
    """The selectors' one listing, added to ``selection``; an empty answer is a usage error."""
    # Imported here: it lives with the listing code, which --help must not load.
    from ecs_safe import AutoScalingGroupNotFoundError  # noqa: PLC0415

    unregistered: list[str] = []
    source = selectors.describe()
    try:
        listed = await ecs.list_container_instances(
            cluster=cluster,
            filter=selectors.filter,
            status=selectors.listing_status,
            auto_scaling_group=selectors.auto_scaling_group,
            on_unregistered=unregistered.extend,
        )
    except AutoScalingGroupNotFoundError as exc:
        # A group name that names no group is a typo, like a filter that matches nothing.
        raise InvalidInputError(
            f"{source} matched no instance in cluster {where(cluster)}: {exc}"
        ) from exc
    if not listed:
        what = "--all" if selectors.all and selectors.status is None else source
        if selectors.all and selectors.status is None and not selectors.auto_scaling_group:
            detail = " (no ACTIVE instance)"
        elif unregistered:
            detail = f" ({len(unregistered)} group member(s) not registered there)"
        else:
            detail = ""
        raise InvalidInputError(f"{what} matched no instance in cluster {where(cluster)}{detail}")
    for instance in listed:
        arn = instance.container_instance_arn or ""
        key = instance_id_of(arn)
        selection.listed[key] = instance
        earlier = claim(key, arn, arn)
        if earlier is None:
            selection.selected_by[arn] = source
        selection.entries.append(
            Entry(
                key,
                source,
                "duplicate" if earlier is not None else "resolved",
                container_instance_arn=arn,
                ec2_instance_id=instance.ec2_instance_id,
                duplicate_of=earlier,
            )
        )
    group = f"--auto-scaling-group {shlex.quote(selectors.auto_scaling_group or '')}"
    selection.entries.extend(
        Entry(ec2_id, group, "unregistered_member", ec2_instance_id=ec2_id)
        for ec2_id in unregistered
    )


def not_found(error: EcsSafeError | None) -> bool:
    """Whether ``error`` says an instance is not registered in the cluster."""
    return isinstance(error, ContainerInstanceNotFoundError)
