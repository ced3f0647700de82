"""The call layer: every batched ECS call ecs-safe makes, over one transport.

`EcsCalls` turns what the layers above want (describe these instances, list the tasks on that
one, set these DRAINING) into ECS requests of the sizes ECS accepts, and their answers into
models. Batching and de-duplication happen here and only here: an instance given twice (say as
an ID and as an ARN) is sent once. Every request goes through `ecs_safe._transport.Transport`
(pacing, retries, error mapping, audit).

Nothing here decides anything: the policy, refusals and the audit of decisions live one layer
up, in `ecs_safe._gate`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from ecs_safe._checks import (
    accounted,
    expect_deregistered,
    expect_stopped_task,
    expect_task_list,
    incomplete,
)
from ecs_safe._constants import (
    ATTRIBUTES_BATCH,
    DESCRIBE_CAPACITY_PROVIDERS_BATCH,
    DESCRIBE_INSTANCES_BATCH,
    DESCRIBE_SERVICES_BATCH,
    DESCRIBE_TASKS_BATCH,
    LIST_PAGE_CAP,
    UPDATE_STATE_BATCH,
)
from ecs_safe._transport import Response, ResponseCheck, Transport, request_id_of
from ecs_safe._validation import arn_scope, cluster_name_of, instance_id_of, unique_refs
from ecs_safe.errors import (
    ContainerInstanceNotFoundError,
    DrainNotFoundError,
    DrainRejectedError,
    EcsApiError,
    EcsSafeError,
    InvalidInputError,
    PartialDrainError,
    ServerException,
)
from ecs_safe.models import (
    CapacityProvider,
    ContainerInstance,
    Service,
    Task,
    TaskDefinition,
    service_name,
)

__all__ = [
    "GONE_REASONS",
    "ClusterListing",
    "Deregistered",
    "EcsCalls",
    "InstanceAnswers",
    "PaginationError",
    "StateUpdate",
    "listed",
    "not_found_error",
    "pages",
    "state_failure",
]

_T = TypeVar("_T")

_DESCRIBE = "DescribeContainerInstances"
_UPDATE = "UpdateContainerInstancesState"
#: The ``failures[]`` reasons that prove an instance is not (or no longer) in the cluster;
#: any other reason leaves its state unknown.
GONE_REASONS: Final = frozenset({"MISSING", "INACTIVE"})
# What every DescribeContainerInstances asks for beyond the defaults: ECS leaves tags and
# health out unless asked, and a rule that reads them (a "protected" tag) would otherwise
# never see them. Asked always rather than per policy: it costs no extra call, only a few
# bytes a response, and a decision never depends on which rules happened to be loaded.
_DESCRIBE_INCLUDE: Final = ("TAGS", "CONTAINER_INSTANCE_HEALTH")
# The statuses of a service that still runs (and so replaces) its tasks.
_LIVE_SERVICE = frozenset({"ACTIVE", "DRAINING"})


def _chunks(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class InstanceAnswers:
    """What a batched container-instance call answered, both keyed by instance ID.

    Attributes:
        found: the instances ECS returned.
        missing: the instances ECS reported in ``failures[]``, with its reason (moto drops
            the cluster from failure ARNs, so IDs are the reliable key).
    """

    found: dict[str, ContainerInstance]
    missing: dict[str, str]


@dataclass(frozen=True, slots=True)
class ClusterListing:
    """A cluster-wide task listing (`EcsCalls.cluster_task_arns`), or why it gave up.

    Attributes:
        arns: every task ARN of the cluster, desired status RUNNING then STOPPED; ``None``
            when the listing would have cost more than its budget (it stopped there).
        pages: the ListTasks calls made (paid for even when it gave up).
    """

    arns: list[str] | None
    pages: int


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """What UpdateContainerInstancesState did, all keyed by instance ID.

    Attributes:
        updated: the instances now in the requested status, as ECS returned or described them.
        failures: the instances ECS reported in ``failures[]``, with its reason.
        errors: the instances whose call failed as a whole (only with ``keep_going``).
        unknown: those of ``errors`` whose status could not be checked afterwards.
    """

    updated: dict[str, ContainerInstance]
    failures: dict[str, str]
    errors: dict[str, EcsSafeError]
    unknown: set[str]


@dataclass(frozen=True, slots=True)
class Deregistered:
    """What DeregisterContainerInstance returned, or what a describe proved after a lost answer.

    Attributes:
        instance: the instance as returned (or as the pre-flight snapshot knew it, with the
            status the verifying describe found).
        request_id: the AWS request ID of the call (``None`` when verified).
        verified: the response was lost and a describe proved the instance gone.
    """

    instance: ContainerInstance
    request_id: str | None
    verified: bool


def not_found_error(
    absent: Sequence[str],
    reasons: Mapping[str, str],
    cluster: str | None,
    *,
    operation: str = _DESCRIBE,
) -> ContainerInstanceNotFoundError:
    """The error naming every instance (as given) the service reported missing.

    ``reasons`` maps instance IDs to the service's failure reason (``MISSING``, ...).
    """
    why = sorted({reasons.get(instance_id_of(ref), "MISSING") for ref in absent})
    return ContainerInstanceNotFoundError(
        f"{len(absent)} container instance(s) not found in cluster {cluster_name_of(cluster)} "
        f"({', '.join(why)}): {', '.join(absent[:10])}" + (" ..." if len(absent) > 10 else ""),
        container_instances=absent,
        operation=operation,
    )


def state_failure(
    refs: Sequence[str],
    updated: Mapping[str, ContainerInstance],
    failures: Mapping[str, str],
    cluster: str | None,
    status: str,
) -> PartialDrainError:
    """The error for instances ECS reported in ``failures[]`` (both mappings keyed by ID)."""
    unique = unique_refs(refs)
    failed = {
        ref: failures[instance_id_of(ref)] for ref in unique if instance_id_of(ref) in failures
    }
    changed = [updated[i] for ref in unique if (i := instance_id_of(ref)) in updated]
    listed = ", ".join(f"{ref} ({reason})" for ref, reason in list(failed.items())[:10])
    more = " ..." if len(failed) > 10 else ""
    message = (
        f"{len(failed)} of {len(unique)} container instance(s) in cluster "
        f"{cluster_name_of(cluster)} could not be set {status}: {listed}{more}"
    )
    if changed:
        message += f"; the other {len(changed)} were set {status} (see .drained)"
    gone = [ref for ref, reason in failed.items() if reason in GONE_REASONS]
    if gone:
        return DrainNotFoundError(
            message,
            container_instances=gone,
            operation=_UPDATE,
            drained=changed,
            failures=failed,
        )
    return DrainRejectedError(
        message,
        code=next(iter(failed.values())),
        operation=_UPDATE,
        drained=changed,
        failures=failed,
    )


def _unknown_tasks(requested: Sequence[str], response: Response) -> list[Mapping[str, Any]]:
    """The listed tasks DescribeTasks reported in ``failures[]`` for a reason other than MISSING.

    Only MISSING proves a task is gone. Any other reason leaves it unknown, and an unknown
    task must count as being there, managed by no service (fail closed): it is kept with its
    ARN and ``failureReason``, no status and no group, so the drain keeps waiting for it and
    forcing refuses over it.
    """
    by_id = {instance_id_of(arn): arn for arn in requested}
    unknown: list[Mapping[str, Any]] = []
    for failure in response.get("failures") or []:
        if not isinstance(failure, Mapping) or failure.get("reason") == "MISSING":
            continue
        arn = by_id.get(instance_id_of(str(failure.get("arn") or "")))
        if arn is not None:
            unknown.append({"taskArn": arn, "failureReason": str(failure.get("reason"))})
    return unknown


class PaginationError(ServerException):
    """A listing did not end: its ``nextToken`` repeated, or it ran past the page cap.

    Taking what was listed so far for the whole answer would act on part of a cluster (the
    failure that broke ecs-cid-sample and ecs-drain-lambda), so the listing fails instead.
    Retryable like any malformed answer: a server that loops its pages may recover later.
    ``code`` is ``PaginationLoop`` (a repeated token) or ``PaginationCap`` (too many pages).
    """


def _expect_task_definition(response: Response) -> None:
    """A DescribeTaskDefinition 200 must hold a ``taskDefinition`` object."""
    if not isinstance(response.get("taskDefinition"), Mapping):
        raise incomplete("DescribeTaskDefinition", response, "held no taskDefinition")


def listed(operation: str, key: str) -> ResponseCheck:
    """A response check: every page of ``operation`` must hold a ``key`` list (maybe empty)."""

    def check(response: Response) -> None:
        if not isinstance(response.get(key), list):
            raise incomplete(operation, response, f"held no {key} list")

    return check


async def pages(
    transport: Transport,
    operation: str,
    params: Mapping[str, Any],
    *,
    check: ResponseCheck,
    cursor: str = "nextToken",
    cap: int | None = None,
) -> AsyncGenerator[Response, None]:
    """Every page of a paginated listing, each checked by ``check``; the one pager of ecs-safe.

    Every listing (ListTasks, ListContainerInstances, ListClusters, DescribeAutoScalingGroups)
    pages through here, so none can loop forever or stop early on a token it did not read.

    Raises:
        PaginationError: a token came back twice, or the listing passed ``cap`` pages
            (`LIST_PAGE_CAP` unless the caller wants fewer).
    """
    # Read at call time, not bound as a default: tests lower the module's cap.
    cap = LIST_PAGE_CAP if cap is None else cap
    seen: set[str] = set()
    token: str | None = None
    for _page in range(cap):
        page = await transport.call(operation, {**params, cursor: token}, check=check)
        yield page
        raw = page.get(cursor)
        if not raw:
            return
        token = str(raw)
        if token in seen:
            raise PaginationError(
                f"{operation} returned the same {cursor} twice; the listing would never end",
                code="PaginationLoop",
                operation=operation,
            )
        seen.add(token)
    raise PaginationError(
        f"{operation} still had more after {cap} pages; refusing to page on",
        code="PaginationCap",
        operation=operation,
    )


class EcsCalls:
    """The batched ECS calls of one client, over its ECS transport.

    Args:
        transport: the transport every request goes through.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        #: The run ID this client marks the instances it drains with (`ecs_safe.ownership`);
        #: the client sets it to its audit run's ID, or to the one it was given.
        self.run_id: str = uuid.uuid4().hex
        #: Makes (or returns) the transport of another AWS service (``"autoscaling"``,
        #: ``"ec2"``) sharing this client's session, retries and buckets; ``None`` when the
        #: client has no session to make one with (`EcsSafeClient.from_client`).
        self.transport_for: Callable[[str], Awaitable[Transport]] | None = None
        #: The Region and the account this client acts in: the Region from the transport,
        #: the account from the first ARN ECS returns. An ARN of another is refused.
        self.region = transport.region
        self.account: str | None = None
        # What DescribeServices last answered of each (cluster, service); ``None``: missing.
        # Classification reads it for the client's lifetime (a scheduling strategy never
        # changes); the service-aware checks refresh it once a round (`describe_services`).
        self._services: dict[tuple[str | None, str], Service | None] = {}
        self._services_lock = asyncio.Lock()
        # Task definition revisions are immutable: one DescribeTaskDefinition each, ever.
        self._task_definitions: dict[str, TaskDefinition] = {}

    # ------------------------------------------------------------------ scope

    def check_scope(self, ref: str) -> None:
        """Refuse an ARN of another Region, or of another account once the account is known.

        ECS (and its local stand-in) match an instance by its ID, so an ARN of another
        Region or account would be acted on as the local instance that has the same ID.

        Raises:
            InvalidInputError: ``ref`` is an ARN of another Region or account.
        """
        scope = arn_scope(ref)
        if scope is None:
            return
        region, account = scope
        if self.region and region != self.region:
            raise InvalidInputError(
                f"container instance {ref!r} is an ARN of Region {region}, but this client "
                f"works in {self.region}; use a client of that Region"
            )
        if self.account and account != self.account:
            raise InvalidInputError(
                f"container instance {ref!r} is an ARN of account {account}, but this client "
                f"works in account {self.account}; use credentials of that account"
            )

    def foreign(self, ref: str, instance: ContainerInstance) -> InvalidInputError | None:
        """The error for an instance matched to ``ref`` by ID but living elsewhere, else ``None``.

        Elsewhere: ``ref`` is an ARN naming another Region or account than the instance's own.
        """
        wanted = arn_scope(ref)
        found = arn_scope(instance.container_instance_arn or "")
        if wanted is None or found is None or wanted == found:
            return None
        return InvalidInputError(
            f"container instance {ref!r} names Region {wanted[0]}, account {wanted[1]}, but "
            f"the instance with its ID is {instance.container_instance_arn} (Region "
            f"{found[0]}, account {found[1]}); refusing to act on another instance"
        )

    def _learn_account(self, instance: ContainerInstance) -> None:
        if self.account is None and (scope := arn_scope(instance.container_instance_arn or "")):
            self.account = scope[1]

    async def out_of_scope(
        self, refs: Sequence[str], cluster: str | None
    ) -> dict[str, InvalidInputError]:
        """The inputs of ``refs`` that are ARNs of another Region or account, keyed by ID.

        Called before every mutating call on instance inputs. ECS matches an instance by its
        ID, so an ARN of another account must be refused before the call, and that needs the
        account: while it is unknown and an input is an ARN, the ARN inputs are described
        (100 a call, until one is found; `_learn_account` keeps the account from the answer).
        One read, once per client: none when the account is known or no input is an ARN.
        An ARN whose ID is in no batch described is missing here, so no call acts on it.
        """
        arns = [ref for ref in unique_refs(refs) if arn_scope(ref) is not None]
        for batch in _chunks(arns, DESCRIBE_INSTANCES_BATCH):
            if self.account is not None:
                break
            await self.describe_instances(batch, cluster)
        refused: dict[str, InvalidInputError] = {}
        for ref in refs:
            try:
                self.check_scope(ref)
            except InvalidInputError as exc:
                refused.setdefault(instance_id_of(ref), exc)
        return refused

    # ------------------------------------------------------------------ instances

    @staticmethod
    def describe_batches(refs: Iterable[str]) -> list[Sequence[str]]:
        """``refs`` de-duplicated and cut into DescribeContainerInstances-sized batches."""
        return _chunks(unique_refs(refs), DESCRIBE_INSTANCES_BATCH)

    async def describe_instances(self, refs: Sequence[str], cluster: str | None) -> InstanceAnswers:
        """Describe instances, 100 a call, each once; what was found and what was missing.

        Tags and health are asked for too (``include``), so that rules can read them.
        """
        return await self._instances_call(
            _DESCRIBE,
            refs,
            cluster,
            DESCRIBE_INSTANCES_BATCH,
            {"include": list(_DESCRIBE_INCLUDE)},
        )

    async def describe(self, refs: Sequence[str], cluster: str | None) -> list[ContainerInstance]:
        """The instances of ``refs``, in input order (repeats included).

        Raises:
            ContainerInstanceNotFoundError: some instances are reported missing; its
                ``container_instances`` names every one of them.
        """
        answers = await self.describe_instances(refs, cluster)
        absent = [ref for ref in refs if instance_id_of(ref) in answers.missing]
        if absent:
            raise not_found_error(absent, answers.missing, cluster)
        return [answers.found[instance_id_of(ref)] for ref in refs]

    async def _instances_call(
        self,
        operation: str,
        refs: Sequence[str],
        cluster: str | None,
        batch_size: int,
        params: Mapping[str, Any] | None = None,
    ) -> InstanceAnswers:
        """Call a batched container-instance operation (Describe, UpdateState) for ``refs``.

        Both operations answer with ``containerInstances`` and ``failures[]``.
        """
        unique = unique_refs(refs)
        by_id = {instance_id_of(ref): ref for ref in unique}
        found: dict[str, ContainerInstance] = {}
        missing: dict[str, str] = {}
        for batch in _chunks(unique, batch_size):
            response = await self.transport.call(
                operation,
                {"cluster": cluster, "containerInstances": list(batch), **(params or {})},
                check=accounted(operation, batch, "containerInstances", "containerInstanceArn"),
            )
            for raw in response.get("containerInstances") or []:
                instance = ContainerInstance.model_validate(raw)
                found[instance_id_of(instance.container_instance_arn or "")] = instance
                self._learn_account(instance)
            for failure in response.get("failures") or []:
                key = instance_id_of(str(failure.get("arn") or ""))
                if key in by_id and key not in found:
                    missing[key] = str(failure.get("reason") or "MISSING")
        return InstanceAnswers(found, missing)

    async def set_state(
        self,
        refs: Sequence[str],
        cluster: str | None,
        status: Literal["DRAINING", "ACTIVE"],
        *,
        keep_going: bool,
    ) -> StateUpdate:
        """Set ``refs`` to ``status``, 10 instances a call (UpdateContainerInstancesState).

        A call that fails (after retries) is checked with a describe: the instances found in
        ``status`` count as updated (the request reached ECS, its response was lost). With
        ``keep_going`` the others fail on their own; without, the error is raised at once,
        with a note naming the instances already changed.
        """
        update = StateUpdate({}, {}, {}, set())
        refused = await self.out_of_scope(refs, cluster)
        if refused and not keep_going:
            raise next(iter(refused.values()))
        update.errors.update(refused)
        refs = [ref for ref in refs if instance_id_of(ref) not in refused]

        async def send(batch: Sequence[str]) -> None:
            try:
                answers = await self._instances_call(
                    _UPDATE, batch, cluster, UPDATE_STATE_BATCH, {"status": status}
                )
            except EcsSafeError as exc:
                verified = await self._verify_state(batch, cluster, status, exc)
                update.updated.update(verified or {})
                failed = [ref for ref in batch if instance_id_of(ref) not in (verified or {})]
                if not failed:
                    return
                if not keep_going:
                    if update.updated:
                        done = ", ".join(update.updated)
                        exc.add_note(f"these container instances were set {status} already: {done}")
                    raise
                update.errors.update(dict.fromkeys((instance_id_of(r) for r in failed), exc))
                if verified is None:
                    update.unknown.update(instance_id_of(r) for r in failed)
                return
            update.updated.update(answers.found)
            update.failures.update(answers.missing)

        batches = _chunks(unique_refs(refs), UPDATE_STATE_BATCH)
        if keep_going:
            # A fleet's batches go out together: the modify bucket paces them, and a thousand
            # instances set DRAINING one call after another would wait on 100 round trips.
            await asyncio.gather(*(send(batch) for batch in batches))
        else:
            # One after another: the first failure stops the rest, and its note names exactly
            # the instances changed before it.
            for batch in batches:
                await send(batch)
        return update

    async def _verify_state(
        self, batch: Sequence[str], cluster: str | None, status: str, exc: EcsSafeError
    ) -> dict[str, ContainerInstance] | None:
        """After a failed UpdateContainerInstancesState: the instances of ``batch`` in ``status``.

        The request may have reached ECS before its response was lost. A describe tells, so
        that a change that happened is reported as done (as a lost deregistration is) and one
        that may have happened is never kept quiet. ``None`` when the describe fails too; the
        error then says the instances may be in ``status``.
        """
        try:
            answers = await self.describe_instances(batch, cluster)
        except EcsSafeError:
            exc.add_note(
                f"the request may have reached ECS: these container instances may be {status} "
                f"now (their status could not be checked): {', '.join(batch)}"
            )
            return None
        return {key: i for key, i in answers.found.items() if i.status == status}

    # ------------------------------------------------------------------ tasks

    async def list_tasks(
        self, ref: str, cluster: str | None, *, told_to_stop: bool = True
    ) -> list[Task]:
        """Every task on the instance whose ``lastStatus`` is not STOPPED, classified.

        Lists tasks whose desired status is RUNNING and those already told to stop (STOPPED
        desired status, which includes tasks still STOPPING/DEACTIVATING), paginated, then
        describes them 100 a call. ``told_to_stop=False`` leaves the second listing out: only
        the tasks whose desired status is RUNNING (a drain's pre-flight, `ecs_safe.drain`).
        """
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED") if told_to_stop else ("RUNNING",):
            arns.extend(await self.task_arns(cluster, desired, container_instance=ref))
        live, _stopped = await self.describe_tasks(arns, cluster)
        return live

    async def describe_tasks(
        self, arns: Sequence[str], cluster: str | None
    ) -> tuple[list[Task], set[str]]:
        """Describe tasks 100 a call: those not STOPPED (classified), and the ARNs STOPPED.

        A task reported in ``failures[]`` for a reason other than MISSING is kept among the
        live ones, with no status and no group (`_unknown_tasks`: fail closed); one MISSING
        is in neither.
        """
        raw_tasks = await self._described_tasks(cluster, arns)
        live = [t for t in raw_tasks if t.get("lastStatus") != "STOPPED"]
        stopped = {str(t.get("taskArn")) for t in raw_tasks if t.get("lastStatus") == "STOPPED"}
        return await self._classified(cluster, live), stopped

    async def _classified(
        self, cluster: str | None, live: Sequence[Mapping[str, Any]]
    ) -> list[Task]:
        services, daemons = await self._services_of(cluster, live)
        return [Task.from_api(t, daemon_services=daemons, services=services) for t in live]

    async def cluster_tasks(
        self, cluster: str | None, refs: Iterable[str], *, budget: int
    ) -> dict[str, list[Task]] | None:
        """The tasks of many instances from one cluster-wide listing, keyed by instance ID.

        Lists every task of the cluster (ListTasks without ``containerInstance``, desired
        status RUNNING and STOPPED, paginated), describes them 100 a call, and keeps those on
        ``refs`` whose ``lastStatus`` is not STOPPED: the same answer as `list_tasks` for each
        instance, for a cost that grows with the cluster's tasks instead of with the
        instances. ``None`` (nothing decided; list instance by instance instead) when the
        listing would cost more than ``budget`` requests, or when DescribeTasks could not
        describe a listed task: an unknown task cannot be placed on an instance, and must
        count as being on it (fail closed), which only a per-instance listing can tell.
        """
        wanted: dict[str, list[Mapping[str, Any]]] = {instance_id_of(r): [] for r in refs}
        listing = await self.cluster_task_arns(cluster, budget=budget, describes=True)
        if listing.arns is None:
            return None
        arns = listing.arns
        raw_tasks = await self._described_tasks(cluster, arns)
        if any("failureReason" in t for t in raw_tasks):
            return None
        for task in raw_tasks:
            on = wanted.get(instance_id_of(str(task.get("containerInstanceArn") or "")))
            if on is not None and task.get("lastStatus") != "STOPPED":
                on.append(task)
        owners = [key for key, ts in wanted.items() for _ in ts]
        classified = await self._classified(cluster, [t for ts in wanted.values() for t in ts])
        found: dict[str, list[Task]] = {key: [] for key in wanted}
        for key, model in zip(owners, classified, strict=True):
            found[key].append(model)
        return found

    async def cluster_task_arns(
        self, cluster: str | None, *, budget: int, describes: bool
    ) -> ClusterListing:
        """Every task ARN of ``cluster`` (ListTasks, RUNNING and STOPPED, paginated), to a budget.

        The one place that decides whether a cluster-wide listing still pays, for plans
        (`cluster_tasks`) and for the drain poller's rounds alike: it stops, with ``arns=None``,
        as soon as its cost would pass ``budget`` requests, what the instances' own listings
        would cost. The cost is the pages read, plus, with ``describes``, the DescribeTasks
        that describing every listed task would take (a plan describes them all; the poller
        only those it has not seen, so it leaves them out).

        Raises:
            PaginationError: the listing repeated a token.
        """
        arns: dict[str, None] = {}
        spent = 0
        for desired in ("RUNNING", "STOPPED"):
            params = {"cluster": cluster, "desiredStatus": desired}
            listing = pages(self.transport, "ListTasks", params, check=expect_task_list)
            async with aclosing(listing) as listed_pages:
                async for page in listed_pages:
                    spent += 1
                    arns.update(dict.fromkeys(str(a) for a in page.get("taskArns") or []))
                    cost = spent + (-(-len(arns) // DESCRIBE_TASKS_BATCH) if describes else 0)
                    if cost > budget:
                        return ClusterListing(None, spent)
        return ClusterListing(list(arns), spent)

    async def _described_tasks(
        self, cluster: str | None, arns: Iterable[str]
    ) -> list[Mapping[str, Any]]:
        """DescribeTasks (100 a call) of ``arns``, as ECS answered, unknown ones included."""

        async def describe(batch: Sequence[str]) -> list[Mapping[str, Any]]:
            response = await self.transport.call(
                "DescribeTasks",
                {"cluster": cluster, "tasks": list(batch)},
                check=accounted("DescribeTasks", batch, "tasks", "taskArn"),
            )
            found = [t for t in response.get("tasks") or [] if isinstance(t, Mapping)]
            return found + _unknown_tasks(batch, response)

        # The batches go out together (the read bucket paces them): a cluster's thousands of
        # tasks must not wait on one round trip per 100.
        batches = _chunks(list(dict.fromkeys(arns)), DESCRIBE_TASKS_BATCH)
        answers = await asyncio.gather(*(describe(batch) for batch in batches))
        return [task for answer in answers for task in answer]

    async def task_arns(
        self,
        cluster: str | None,
        desired: str | None,
        *,
        container_instance: str | None = None,
        service: str | None = None,
        page_cap: int | None = None,
    ) -> list[str]:
        """Every page of ListTasks for one desired status (`pages`: never an endless loop).

        On one container instance when ``container_instance`` is given, of one service when
        ``service`` is, else in the cluster; ``desired=None`` is ECS's default (RUNNING).

        Raises:
            PaginationError: the listing repeated a token, or had more than ``page_cap`` pages
                (`LIST_PAGE_CAP` by default; code ``PaginationCap``).
        """
        arns: list[str] = []
        params: dict[str, Any] = {"cluster": cluster}
        if desired is not None:
            params["desiredStatus"] = desired
        if container_instance is not None:
            params["containerInstance"] = container_instance
        if service is not None:
            params["serviceName"] = service
        listing = pages(self.transport, "ListTasks", params, check=expect_task_list, cap=page_cap)
        async for page in listing:
            arns.extend(str(a) for a in page.get("taskArns") or [])
        return arns

    async def hosts_of_service(self, cluster: str | None, service: str) -> frozenset[str]:
        """The container instances (ARNs) that run a task of ``service`` now.

        ListTasks by ``serviceName`` (every page), then DescribeTasks 100 a call; the tasks
        are matched by their group too, since an endpoint may ignore the filter (moto does).
        """
        arns = await self.task_arns(cluster, None, service=service)
        group = f"service:{service}"
        return frozenset(
            str(t["containerInstanceArn"])
            for t in await self._described_tasks(cluster, arns)
            if t.get("lastStatus") != "STOPPED"
            and t.get("group") == group
            and t.get("containerInstanceArn")
        )

    async def _services_of(
        self, cluster: str | None, tasks: Iterable[Mapping[str, Any]]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """The services the tasks' groups name that exist, and those of them that are daemons.

        Looked up with `describe_services` (cached: whether a service exists and its
        scheduling strategy do not change within a run). A service ECS does not return, or
        returns INACTIVE, does not exist: its tasks are standalone, since nothing replaces them.
        """
        names = {n for t in tasks if (n := service_name(t.get("group")))}
        found = await self.describe_services(cluster, names)
        live = {n: s for n, s in found.items() if s.status in _LIVE_SERVICE}
        return (
            frozenset(live),
            frozenset(n for n, s in live.items() if s.is_daemon),
        )

    # ------------------------------------------------------------------ services

    async def describe_services(
        self, cluster: str | None, names: Iterable[str], *, refresh: bool = False
    ) -> dict[str, Service]:
        """The services of ``names`` that ECS returned, keyed by name (DescribeServices, 10 a call).

        The one DescribeServices path of ecs-safe: task classification and the service-aware
        checks both read through it. Answers are cached per client; ``refresh=True`` describes
        every name again (a new poll round: counts and deployments change), so a round's
        checks all see one consistent answer. A service ECS reports missing is absent from
        the result (and cached as missing).
        """
        wanted = sorted(dict.fromkeys(names))
        # One lookup at a time: a fleet's concurrent pre-flights asking for the same
        # services then wait for the first answer instead of each describing them again.
        async with self._services_lock:
            ask = [n for n in wanted if refresh or (cluster, n) not in self._services]
            for batch in _chunks(ask, DESCRIBE_SERVICES_BATCH):
                response = await self.transport.call(
                    "DescribeServices",
                    {"cluster": cluster, "services": list(batch)},
                    check=accounted("DescribeServices", batch, "services", "serviceArn"),
                )
                for name in batch:
                    self._services[(cluster, name)] = None
                for raw in response.get("services") or []:
                    service = Service.model_validate(raw)
                    if service.service_name:
                        self._services[(cluster, service.service_name)] = service
        return {n: s for n in wanted if (s := self._services.get((cluster, n))) is not None}

    def forget_services(self) -> None:
        """Drop every cached DescribeServices answer (the next lookups describe again)."""
        self._services.clear()

    async def describe_task_definitions(self, arns: Iterable[str]) -> dict[str, TaskDefinition]:
        """The task definitions of ``arns``, keyed as given (DescribeTaskDefinition, one a call).

        A revision never changes, so each is described once for the client's lifetime.
        """
        wanted = list(dict.fromkeys(arns))
        for arn in wanted:
            if arn in self._task_definitions:
                continue
            response = await self.transport.call(
                "DescribeTaskDefinition", {"taskDefinition": arn}, check=_expect_task_definition
            )
            self._task_definitions[arn] = TaskDefinition.model_validate(response["taskDefinition"])
        return {arn: self._task_definitions[arn] for arn in wanted}

    async def describe_capacity_providers(
        self, names: Iterable[str]
    ) -> dict[str, CapacityProvider]:
        """The capacity providers of ``names`` that ECS returned, keyed by name (100 a call).

        Not cached: managed scaling and managed draining can be switched at any time.
        """
        wanted = sorted(dict.fromkeys(names))
        found: dict[str, CapacityProvider] = {}
        for batch in _chunks(wanted, DESCRIBE_CAPACITY_PROVIDERS_BATCH):
            response = await self.transport.call(
                "DescribeCapacityProviders",
                {"capacityProviders": list(batch)},
                check=accounted(
                    "DescribeCapacityProviders", batch, "capacityProviders", "capacityProviderArn"
                ),
            )
            for raw in response.get("capacityProviders") or []:
                provider = CapacityProvider.model_validate(raw)
                if provider.name:
                    found[provider.name] = provider
        return found

    async def stop_task(self, cluster: str | None, task_arn: str, reason: str) -> None:
        """StopTask (safe to send again: stopping a stopping task changes nothing)."""
        await self.transport.call(
            "StopTask",
            {"cluster": cluster, "task": task_arn, "reason": reason},
            check=expect_stopped_task,
        )

    # ------------------------------------------------------------------ attributes

    async def put_attributes(
        self, cluster: str | None, name: str, values: Mapping[str, str]
    ) -> dict[str, EcsSafeError]:
        """PutAttributes: set the custom attribute ``name`` on each instance to its value.

        ``values`` maps an instance reference (ID or ARN) to the value it gets; 10 instances
        a call (one attribute each). Returns the error of each instance that could not be
        marked, keyed by instance ID (`_attribute_calls`).
        """
        return await self._attribute_calls("PutAttributes", cluster, name, values)

    async def delete_attributes(
        self, cluster: str | None, name: str, values: Mapping[str, str]
    ) -> dict[str, EcsSafeError]:
        """DeleteAttributes: remove the custom attribute ``name`` (with the value given) from each.

        The value is sent too: ECS ignores it, LocalEcs (moto) deletes only a matching one.
        Batched and reported as `put_attributes`.
        """
        return await self._attribute_calls("DeleteAttributes", cluster, name, values)

    async def _attribute_calls(
        self, operation: str, cluster: str | None, name: str, values: Mapping[str, str]
    ) -> dict[str, EcsSafeError]:
        """One attribute per instance, 10 a call; a failed call is retried one instance a call.

        ECS fails a whole PutAttributes call for one unknown target (TargetNotFoundException),
        so a failed batch is split: one bad instance must not leave nine good ones unmarked.
        The target is the instance ID, which both ECS and LocalEcs accept.
        """
        by_id = {instance_id_of(ref): value for ref, value in values.items()}
        errors: dict[str, EcsSafeError] = {}

        async def send(ids: Sequence[str]) -> None:
            attributes = [
                {
                    "name": name,
                    "value": by_id[key],
                    "targetType": "container-instance",
                    "targetId": key,
                }
                for key in ids
            ]
            await self.transport.call(
                operation,
                {"cluster": cluster, "attributes": attributes},
                check=listed(operation, "attributes"),
            )

        async def send_split(batch: Sequence[str]) -> None:
            try:
                await send(batch)
                return
            except EcsSafeError as exc:
                if len(batch) == 1:
                    errors[batch[0]] = exc
                    return
            for key in batch:
                try:
                    await send([key])
                except EcsSafeError as exc:
                    errors[key] = exc

        # The batches go out together (the modify bucket paces them): a fleet's marks must
        # not wait on one round trip per 10 instances.
        await asyncio.gather(*(send_split(b) for b in _chunks(list(by_id), ATTRIBUTES_BATCH)))
        return errors

    # ------------------------------------------------------------------ capacity providers

    async def cluster_capacity_providers(self, cluster: str | None) -> list[str]:
        """The capacity providers associated with ``cluster`` (DescribeClusters, one call)."""
        response = await self.transport.call(
            "DescribeClusters",
            {"clusters": [cluster or "default"]},
            check=listed("DescribeClusters", "clusters"),
        )
        names: list[str] = []
        for found in response.get("clusters") or []:
            if isinstance(found, Mapping):
                names.extend(str(n) for n in found.get("capacityProviders") or [])
        return names

    # ------------------------------------------------------------------ deregister

    async def deregister(
        self, ref: str, cluster: str | None, snapshot: ContainerInstance, *, force: bool
    ) -> Deregistered:
        """DeregisterContainerInstance, with lost responses verified instead of re-sent blind."""
        for refused in (await self.out_of_scope([ref], cluster)).values():
            raise refused
        verified: list[ContainerInstance] = []

        async def verify(_exc: EcsApiError) -> Response | None:
            # The response may be lost after ECS acted: a describe tells, and a call that
            # worked is never sent again (nor reported failed because its retry was refused).
            gone = await self._confirm_gone(ref, cluster)
            if gone is None:
                return None
            verified.append(gone)
            return {}

        response = await self.transport.call(
            "DeregisterContainerInstance",
            {"cluster": cluster, "containerInstance": ref, "force": force},
            check=expect_deregistered,
            verify=verify,
        )
        if verified:
            return Deregistered(_merge_verified(snapshot, verified[0]), None, verified=True)
        instance = ContainerInstance.model_validate(response["containerInstance"])
        return Deregistered(instance, request_id_of(response), verified=False)

    async def _confirm_gone(self, ref: str, cluster: str | None) -> ContainerInstance | None:
        """After a lost response: the instance as described if it is gone, else ``None``.

        Gone means reported missing (moto, and AWS after a while) or INACTIVE (AWS right after
        deregistration). A describe that itself fails proves nothing.
        """
        try:
            answers = await self.describe_instances([ref], cluster)
        except EcsApiError:
            return None
        key = instance_id_of(ref)
        # Only MISSING (or INACTIVE) proves the instance gone; another reason proves nothing.
        if answers.missing.get(key) in GONE_REASONS:
            return ContainerInstance.model_validate(
                {"containerInstanceArn": ref, "status": "INACTIVE"}
            )
        instance = answers.found.get(key)
        if instance is not None and instance.status == "INACTIVE":
            return instance
        return None


def _merge_verified(snapshot: ContainerInstance, gone: ContainerInstance) -> ContainerInstance:
    # The describe of a vanished instance says little; the pre-flight snapshot fills in what
    # it knew (ARN, EC2 ID), the describe decides the status.
    if gone.ec2_instance_id is not None:
        return gone
    return snapshot.model_copy(update={"status": gone.status})
