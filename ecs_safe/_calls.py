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

from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
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
from ecs_safe.models import ContainerInstance, Task, service_name

__all__ = [
    "GONE_REASONS",
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
class _ServiceFacts:
    live: bool
    daemon: bool


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
) -> AsyncGenerator[Response, None]:
    """Every page of a paginated listing, each checked by ``check``; the one pager of ecs-safe.

    Every listing (ListTasks, ListContainerInstances, ListClusters, DescribeAutoScalingGroups)
    pages through here, so none can loop forever or stop early on a token it did not read.

    Raises:
        PaginationError: a token came back twice, or the listing passed `LIST_PAGE_CAP` pages.
    """
    seen: set[str] = set()
    token: str | None = None
    for _page in range(LIST_PAGE_CAP):
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
        f"{operation} still had more after {LIST_PAGE_CAP} pages; refusing to page on",
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
        #: The Region and the account this client acts in: the Region from the transport,
        #: the account from the first ARN ECS returns. An ARN of another is refused.
        self.region = transport.region
        self.account: str | None = None
        # What a lookup found of each (cluster, service): whether it exists (ACTIVE or
        # DRAINING) and whether it is a daemon. A scheduling strategy never changes after
        # creation, so one lookup serves the client's whole lifetime.
        self._services: dict[tuple[str | None, str], _ServiceFacts] = {}

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
        for batch in _chunks(unique_refs(refs), UPDATE_STATE_BATCH):
            try:
                answers = await self._instances_call(
                    _UPDATE, batch, cluster, UPDATE_STATE_BATCH, {"status": status}
                )
            except EcsSafeError as exc:
                verified = await self._verify_state(batch, cluster, status, exc)
                update.updated.update(verified or {})
                failed = [ref for ref in batch if instance_id_of(ref) not in (verified or {})]
                if not failed:
                    continue
                if not keep_going:
                    if update.updated:
                        done = ", ".join(update.updated)
                        exc.add_note(f"these container instances were set {status} already: {done}")
                    raise
                update.errors.update(dict.fromkeys((instance_id_of(r) for r in failed), exc))
                if verified is None:
                    update.unknown.update(instance_id_of(r) for r in failed)
                continue
            update.updated.update(answers.found)
            update.failures.update(answers.missing)
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

    async def list_tasks(self, ref: str, cluster: str | None) -> list[Task]:
        """Every task on the instance whose ``lastStatus`` is not STOPPED, classified.

        Lists tasks whose desired status is RUNNING and those already told to stop (STOPPED
        desired status, which includes tasks still STOPPING/DEACTIVATING), paginated, then
        describes them 100 a call.
        """
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            arns.extend(await self._task_arns(ref, cluster, desired))
        raw_tasks = await self._described_tasks(list(dict.fromkeys(arns)), cluster)
        live = [t for t in raw_tasks if t.get("lastStatus") != "STOPPED"]
        return await self._classified(cluster, live)

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
        arns: dict[str, None] = {}
        spent = 0
        for desired in ("RUNNING", "STOPPED"):
            params = {"cluster": cluster, "desiredStatus": desired}
            listing = pages(self.transport, "ListTasks", params, check=expect_task_list)
            async with aclosing(listing) as listed_pages:
                async for page in listed_pages:
                    spent += 1
                    arns.update(dict.fromkeys(str(a) for a in page.get("taskArns") or []))
                    if spent + -(-len(arns) // DESCRIBE_TASKS_BATCH) > budget:
                        return None
        raw_tasks = await self._described_tasks(list(arns), cluster)
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

    async def _described_tasks(
        self, arns: Sequence[str], cluster: str | None
    ) -> list[Mapping[str, Any]]:
        """DescribeTasks, 100 a call; a task it could not describe is kept as unknown."""
        raw_tasks: list[Mapping[str, Any]] = []
        for batch in _chunks(arns, DESCRIBE_TASKS_BATCH):
            response = await self.transport.call(
                "DescribeTasks",
                {"cluster": cluster, "tasks": list(batch)},
                check=accounted("DescribeTasks", batch, "tasks", "taskArn"),
            )
            raw_tasks.extend(t for t in response.get("tasks") or [] if isinstance(t, Mapping))
            raw_tasks.extend(_unknown_tasks(batch, response))
        return raw_tasks

    async def _classified(
        self, cluster: str | None, live: Sequence[Mapping[str, Any]]
    ) -> list[Task]:
        services, daemons = await self._services_of(cluster, live)
        return [Task.from_api(t, daemon_services=daemons, services=services) for t in live]

    async def _task_arns(self, ref: str, cluster: str | None, desired: str) -> list[str]:
        """Every page of ListTasks for one desired status (`pages`: never an endless loop)."""
        arns: list[str] = []
        params = {"cluster": cluster, "containerInstance": ref, "desiredStatus": desired}
        async for page in pages(self.transport, "ListTasks", params, check=expect_task_list):
            arns.extend(str(a) for a in page.get("taskArns") or [])
        return arns

    async def _services_of(
        self, cluster: str | None, tasks: Iterable[Mapping[str, Any]]
    ) -> tuple[frozenset[str], frozenset[str]]:
        """The services the tasks' groups name that exist, and those of them that are daemons.

        Looked up with DescribeServices (10 a call, cached). A service ECS does not return, or
        returns INACTIVE, does not exist: its tasks are standalone, since nothing replaces them.
        """
        names = {n for t in tasks if (n := service_name(t.get("group")))}
        unknown = sorted(n for n in names if (cluster, n) not in self._services)
        for batch in _chunks(unknown, DESCRIBE_SERVICES_BATCH):
            response = await self.transport.call(
                "DescribeServices",
                {"cluster": cluster, "services": list(batch)},
                check=accounted("DescribeServices", batch, "services", "serviceArn"),
            )
            for service in response.get("services") or []:
                name = service.get("serviceName") if isinstance(service, Mapping) else None
                if name:
                    self._services[(cluster, name)] = _ServiceFacts(
                        live=service.get("status") in _LIVE_SERVICE,
                        daemon=service.get("schedulingStrategy") == "DAEMON",
                    )
            for name in batch:
                self._services.setdefault((cluster, name), _ServiceFacts(live=False, daemon=False))
        facts = {n: self._services[(cluster, n)] for n in names}
        return (
            frozenset(n for n, f in facts.items() if f.live),
            frozenset(n for n, f in facts.items() if f.live and f.daemon),
        )

    async def stop_task(self, cluster: str | None, task_arn: str, reason: str) -> None:
        """StopTask (safe to send again: stopping a stopping task changes nothing)."""
        await self.transport.call(
            "StopTask",
            {"cluster": cluster, "task": task_arn, "reason": reason},
            check=expect_stopped_task,
        )

    # ------------------------------------------------------------------ deregister

    async def deregister(
        self, ref: str, cluster: str | None, snapshot: ContainerInstance, *, force: bool
    ) -> Deregistered:
        """DeregisterContainerInstance, with lost responses verified instead of re-sent blind."""
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
