"""`EcsSafeClient`: the async client, and the policy-checked deregistration at its core.

Every method validates its input before any network call, and every request goes through
`ecs_safe._transport.EcsTransport` (rate limits, retries, error mapping). A deregistration is:
validate → describe the instance (and list its tasks when a rule needs them) → evaluate the
policy → refuse with `PolicyViolationError` *before any mutating call*, or deregister → log the
returned model → return a `DeregistrationResult`. With an audit log (`ecs_safe.audit`), every
decision is recorded by `EcsSafeClient._decided` and every mutating call by the transport.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

from ecs_safe import _events, fleet
from ecs_safe import drain as _drain
from ecs_safe._checks import accounted, check_deregistered, check_task_list
from ecs_safe._error_mapping import map_errors, redact
from ecs_safe._progress import ProgressCallback, check_progress
from ecs_safe._transport import EcsTransport, Response, request_id_of
from ecs_safe._validation import (
    check_bool,
    check_positive_number,
    check_same_cluster,
    cluster_name_of,
    instance_id_of,
    unique_refs,
    validate_cluster,
    validate_container_instance,
    validate_container_instances,
    validate_endpoint_url,
)
from ecs_safe.audit import DECISION, RUN_FINISHED, RUN_STARTED, AuditLog, AuditRun
from ecs_safe.errors import (
    ClientException,
    ClientStateError,
    ClusterNotFoundException,
    ContainerInstanceNotFoundError,
    EcsApiError,
    EcsSafeError,
    InvalidInputError,
    InvalidParameterException,
    PolicyViolationError,
)
from ecs_safe.models import ContainerInstance, Task, service_name
from ecs_safe.policy import Decision, Policy, PolicyContext, Violation, default_policy
from ecs_safe.ratelimit import RateLimiter, RateLimits
from ecs_safe.results import BatchResult, DeregistrationResult
from ecs_safe.retry import RetryConfig

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_READ_TIMEOUT", "EcsSafeClient", "ProgressCallback"]

#: Seconds to wait for a TCP/TLS connection to the endpoint.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Seconds to wait for a response once the request is sent.
DEFAULT_READ_TIMEOUT = 30.0

# ECS's documented batch sizes.
DESCRIBE_INSTANCES_BATCH = 100
DESCRIBE_TASKS_BATCH = 100
DESCRIBE_SERVICES_BATCH = 10

# Where a decision was made (the audit log's ``step``): before a deregistration, before a drain
# sets DRAINING, or a refusal because the pre-flight could not be done.
_Step = Literal["deregister", "drain", "preflight"]

# The message ECS (and moto) answer with when an unforced deregistration meets running tasks.
_SERVER_REFUSAL_HINTS = ("running task", "tasks running", "has tasks")


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


def _version() -> str:
    from ecs_safe import __version__  # noqa: PLC0415 - the package imports this module

    return __version__


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _refusal_message(instance: str, decision: Decision) -> str:
    reasons = "; ".join(f"{v.rule}: {v.message}" for v in decision.violations)
    return f"refused to deregister container instance {instance}: {reasons}"


class EcsSafeClient:
    """The async ecs-safe client: policy-checked, rate-limited, retried ECS operations.

    Use it as an async context manager; it creates one aiobotocore ECS client for its whole
    lifetime (client creation is expensive and bound to the event loop)::

        async with EcsSafeClient(region_name="eu-west-1") as ecs:
            result = await ecs.deregister_container_instance("0123abcd...", cluster="prod")

    Args:
        region_name: the AWS Region; ``None`` uses the standard configuration chain.
        endpoint_url: any ECS-compatible endpoint (e.g. `ecs_safe.local.LocalEcs`).
        profile_name: a profile of the shared AWS config files.
        session: an existing `aiobotocore.session.AioSession` (not with ``profile_name``).
        policy: the rules every deregistration must pass; defaults to `default_policy()`.
        retry: how retryable errors are retried; defaults to `RetryConfig()`.
        rate_limits: client-side token buckets; defaults to ECS's documented buckets.
        connect_timeout: seconds to establish each HTTP connection.
        read_timeout: seconds to wait for each HTTP response.
        audit_log: where to keep an audit trail (`ecs_safe.audit`): a path (opened for
            appending when the client opens, closed with it) or an `AuditLog` (left open).
            Every policy decision and every mutating call is recorded, and flushed, before the
            call that made it returns.
    """

    def __init__(
        self,
        *,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        profile_name: str | None = None,
        session: AioSession | None = None,
        policy: Policy | None = None,
        retry: RetryConfig | None = None,
        rate_limits: RateLimits | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        audit_log: AuditLog | str | os.PathLike[str] | None = None,
    ) -> None:
        for name, value in (("region_name", region_name), ("profile_name", profile_name)):
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidInputError(f"{name} must be a non-empty str or None, got {value!r}")
        endpoint_url = validate_endpoint_url(endpoint_url)
        if session is not None and not isinstance(session, AioSession):
            raise InvalidInputError(
                f"session must be an aiobotocore.session.AioSession, got {type(session).__name__}"
            )
        if session is not None and profile_name is not None:
            raise InvalidInputError(
                "pass either session= or profile_name=, not both: a session already "
                "carries its profile"
            )
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._profile_name = profile_name
        self._session = session
        self._connect_timeout = check_positive_number(connect_timeout, "connect_timeout")
        self._read_timeout = check_positive_number(read_timeout, "read_timeout")
        self.policy = self._check_policy(policy)
        self.retry = self._check_type(retry, RetryConfig, "retry") or RetryConfig()
        self.rate_limits = self._check_type(rate_limits, RateLimits, "rate_limits") or RateLimits()
        if audit_log is not None and not isinstance(audit_log, AuditLog | str | os.PathLike):
            raise InvalidInputError(
                "audit_log must be a path or an ecs_safe.AuditLog, got "
                f"{type(audit_log).__name__}; to log to a stream, wrap it: AuditLog(stream)"
            )
        self._audit_log = audit_log
        self._audit: AuditRun | None = None
        self._state = _State.UNOPENED
        self._owns_client = True
        self._exit_stack: AsyncExitStack | None = None
        self._transport: EcsTransport | None = None
        # A service's scheduling strategy never changes after creation, so one lookup per
        # (cluster, service) serves the client's whole lifetime.
        self._daemon_cache: dict[tuple[str | None, str], bool] = {}

    @staticmethod
    def _check_policy(policy: Any) -> Policy:
        if policy is None:
            return default_policy()
        if not isinstance(policy, Policy):
            raise InvalidInputError(
                f"policy must be an ecs_safe.Policy, got {type(policy).__name__}; "
                "wrap your rules: Policy([rule, ...])"
            )
        return policy

    @staticmethod
    def _check_type(value: Any, cls: type[Any], name: str) -> Any:
        if value is not None and not isinstance(value, cls):
            raise InvalidInputError(
                f"{name} must be an ecs_safe.{cls.__name__}, got {type(value).__name__}"
            )
        return value

    @classmethod
    def from_client(
        cls,
        ecs_client: ECSClient | Any,
        *,
        policy: Policy | None = None,
        retry: RetryConfig | None = None,
        rate_limits: RateLimits | None = None,
        audit_log: AuditLog | str | os.PathLike[str] | None = None,
    ) -> Self:
        """Wrap an aiobotocore ECS client that the caller already owns.

        The wrapper is usable at once (no ``async with`` needed) and never closes
        ``ecs_client``; close the wrapper (``async with`` or `close`) to finish its audit run.
        Note that the caller's client keeps its own botocore retry settings: create it with
        ``AioConfig(retries={"total_max_attempts": 1})`` so that attempts do not multiply with
        ecs-safe's retries.
        """
        if not callable(getattr(ecs_client, "deregister_container_instance", None)):
            raise InvalidInputError(
                "from_client() needs an aiobotocore ECS client "
                "(session.create_client('ecs', ...)), got " + type(ecs_client).__name__
            )
        self = cls(policy=policy, retry=retry, rate_limits=rate_limits, audit_log=audit_log)
        self._owns_client = False
        self._audit = self._start_audit()
        self._open(ecs_client)
        return self

    def _start_audit(self) -> AuditRun | None:
        """Open the audit log (if a path was given) and start this client's run in it."""
        target = self._audit_log
        if target is None:
            return None
        log = target if isinstance(target, AuditLog) else AuditLog(target)
        run = log.start_run()
        try:
            run.write(
                RUN_STARTED,
                ecs_safe_version=_version(),
                pid=os.getpid(),
                policy=[rule.name for rule in self.policy.rules],
            )
        except EcsSafeError:
            if log is not target:
                log.close()
            raise
        return run

    def _finish_audit(self) -> None:
        run, self._audit = self._audit, None
        if run is None:
            return
        try:
            run.write(RUN_FINISHED)
        except EcsSafeError as exc:
            _events.logger.error("ecs_safe.audit.failed", record=RUN_FINISHED, error=str(exc))
        finally:
            if run.log is not self._audit_log:  # opened from a path: ours to close
                run.log.close()

    def _open(self, ecs_client: Any) -> None:
        self._transport = EcsTransport(
            ecs_client, retry=self.retry, limiter=RateLimiter(self.rate_limits), audit=self._audit
        )
        self._state = _State.OPENED

    async def __aenter__(self) -> Self:
        if self._state is _State.CLOSED:
            raise ClientStateError(
                "this EcsSafeClient is closed; create a new one (clients are not reusable)"
            )
        if self._state is _State.OPENED:
            if self._owns_client:
                raise ClientStateError("this EcsSafeClient is already open")
            return self
        session = self._session or (
            AioSession(profile=self._profile_name) if self._profile_name else get_session()
        )
        config = AioConfig(
            # tenacity owns retries: botocore's would multiply every attempt (5 x 5).
            retries={"total_max_attempts": 1},
            connect_timeout=self._connect_timeout,
            read_timeout=self._read_timeout,
            max_pool_connections=64,
        )
        # Before the connection, so that an audit log that cannot be opened fails first.
        self._audit = self._start_audit()
        stack = AsyncExitStack()
        stack.callback(self._finish_audit)
        try:
            with map_errors("CreateClient"):
                ecs_client = await stack.enter_async_context(
                    session.create_client(
                        "ecs",
                        region_name=self._region_name,
                        endpoint_url=self._endpoint_url,
                        config=config,
                    )
                )
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, EcsSafeError) and exc.code == "NoRegionError":
                raise InvalidInputError(
                    "no AWS Region configured: pass region_name= or set AWS_REGION"
                ) from exc
            raise
        self._exit_stack = stack
        self._open(ecs_client)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the underlying aiobotocore client (if this client created it). Idempotent."""
        stack, self._exit_stack = self._exit_stack, None
        self._state = _State.CLOSED
        self._transport = None
        if stack is not None:
            await stack.aclose()
        else:  # from_client(): no exit stack, but maybe an audit run to finish
            self._finish_audit()

    @property
    def _api(self) -> EcsTransport:
        if self._state is _State.UNOPENED or self._transport is None:
            if self._state is _State.CLOSED:
                raise ClientStateError(
                    "this EcsSafeClient is closed; create a new one inside `async with`"
                )
            raise ClientStateError(
                "this EcsSafeClient is not open; use it as "
                "`async with EcsSafeClient(...) as ecs:` (or EcsSafeClient.from_client(...))"
            )
        return self._transport

    # ------------------------------------------------------------------ describe

    async def _describe_raw(
        self, refs: Sequence[str], cluster: str | None
    ) -> tuple[dict[str, ContainerInstance], dict[str, str]]:
        """Describe instances in batches of 100; see `_instances_call`."""
        return await self._instances_call(
            "DescribeContainerInstances", refs, cluster, batch_size=DESCRIBE_INSTANCES_BATCH
        )

    async def _instances_call(
        self,
        operation: str,
        refs: Sequence[str],
        cluster: str | None,
        *,
        batch_size: int,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, ContainerInstance], dict[str, str]]:
        """Call a batched container-instance operation (Describe, UpdateState) for ``refs``.

        Both operations answer with ``containerInstances`` and ``failures[]``. Returns the
        instances returned and the failure reasons of the others, both keyed by instance ID
        (moto drops the cluster from failure ARNs, so IDs are the reliable key).
        """
        api = self._api
        unique = unique_refs(refs)
        by_id = {instance_id_of(ref): ref for ref in unique}
        found: dict[str, ContainerInstance] = {}
        missing: dict[str, str] = {}
        for batch in _chunks(unique, batch_size):
            response = await api.call(
                operation,
                {"cluster": cluster, "containerInstances": list(batch), **(params or {})},
                check=accounted(operation, batch, "containerInstances", "containerInstanceArn"),
            )
            for raw in response.get("containerInstances") or []:
                instance = ContainerInstance.model_validate(raw)
                found[instance_id_of(instance.container_instance_arn or "")] = instance
            for failure in response.get("failures") or []:
                key = instance_id_of(str(failure.get("arn") or ""))
                if key in by_id and key not in found:
                    missing[key] = str(failure.get("reason") or "MISSING")
        return found, missing

    async def describe_container_instances(
        self, container_instances: Iterable[str], *, cluster: str | None = None
    ) -> list[ContainerInstance]:
        """Describe container instances (batched 100 per call), in input order.

        Raises:
            ContainerInstanceNotFoundError: some instances are reported missing; its
                ``container_instances`` names every one of them.
        """
        cluster = validate_cluster(cluster)
        refs = validate_container_instances(container_instances, cluster=cluster)
        found, missing = await self._describe_raw(refs, cluster)
        absent = [ref for ref in refs if instance_id_of(ref) in missing]
        if absent:
            raise self._not_found_error(
                absent, missing, cluster, operation="DescribeContainerInstances"
            )
        return [found[instance_id_of(ref)] for ref in refs]

    @staticmethod
    def _not_found_error(
        absent: Sequence[str],
        reasons: Mapping[str, str],
        cluster: str | None,
        *,
        operation: str,
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

    async def _describe_one(self, ref: str, cluster: str | None) -> ContainerInstance:
        return (await self.describe_container_instances([ref], cluster=cluster))[0]

    # ------------------------------------------------------------------ tasks

    async def list_tasks(
        self, container_instance: str, *, cluster: str | None = None
    ) -> list[Task]:
        """Every task on the instance whose ``lastStatus`` is not STOPPED, classified.

        Lists tasks whose desired status is RUNNING and those already told to stop (STOPPED
        desired status, which includes tasks still STOPPING/DEACTIVATING), paginated, then
        describes them in batches of 100. Each task's ``kind`` is ``"service"``,
        ``"daemon"`` (a service with the DAEMON strategy) or ``"standalone"``.
        """
        cluster = validate_cluster(cluster)
        ref = validate_container_instance(container_instance)
        check_same_cluster(ref, cluster)
        return await self._list_tasks(ref, cluster)

    async def _list_tasks(self, ref: str, cluster: str | None) -> list[Task]:
        api = self._api
        arns: list[str] = []
        for desired in ("RUNNING", "STOPPED"):
            token: str | None = None
            while True:
                page = await api.call(
                    "ListTasks",
                    {
                        "cluster": cluster,
                        "containerInstance": ref,
                        "desiredStatus": desired,
                        "nextToken": token,
                    },
                    check=check_task_list,
                )
                arns.extend(str(a) for a in page.get("taskArns") or [])
                token = page.get("nextToken") or None
                if token is None:
                    break
        arns = list(dict.fromkeys(arns))
        raw_tasks: list[Mapping[str, Any]] = []
        for batch in _chunks(arns, DESCRIBE_TASKS_BATCH):
            response = await api.call(
                "DescribeTasks",
                {"cluster": cluster, "tasks": list(batch)},
                check=accounted("DescribeTasks", batch, "tasks", "taskArn"),
            )
            raw_tasks.extend(t for t in response.get("tasks") or [] if isinstance(t, Mapping))
        live = [t for t in raw_tasks if t.get("lastStatus") != "STOPPED"]
        daemons = await self._daemon_services(cluster, live)
        return [Task.from_api(t, daemon_services=daemons) for t in live]

    async def _daemon_services(
        self, cluster: str | None, tasks: Iterable[Mapping[str, Any]]
    ) -> frozenset[str]:
        names = {n for t in tasks if (n := service_name(t.get("group")))}
        unknown = sorted(n for n in names if (cluster, n) not in self._daemon_cache)
        for batch in _chunks(unknown, DESCRIBE_SERVICES_BATCH):
            response = await self._api.call(
                "DescribeServices",
                {"cluster": cluster, "services": list(batch)},
                check=accounted("DescribeServices", batch, "services", "serviceArn"),
            )
            for service in response.get("services") or []:
                name = service.get("serviceName")
                if name:
                    strategy = service.get("schedulingStrategy")
                    self._daemon_cache[(cluster, name)] = strategy == "DAEMON"
            # A service that no longer exists cannot be a daemon that replaces anything.
            for name in batch:
                self._daemon_cache.setdefault((cluster, name), False)
        return frozenset(n for n in names if self._daemon_cache.get((cluster, n)))

    # ------------------------------------------------------------------ drain

    async def drain(
        self, container_instances: Iterable[str], *, cluster: str | None = None
    ) -> list[ContainerInstance]:
        """Set container instances to DRAINING (UpdateContainerInstancesState, 10 per call).

        ECS then stops placing tasks on them and replaces their service tasks elsewhere;
        standalone tasks are left alone. Setting an instance that is already DRAINING again is
        harmless. Nothing is deregistered: see `drain_and_deregister` for the whole workflow.

        Returns:
            The instances as ECS returned them, in input order.

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PartialDrainError: ECS reported some instances in ``failures[]``; the others *are*
                DRAINING and stay so (the error's ``drained``). It is a
                `ContainerInstanceNotFoundError` naming the missing instances
                (`ecs_safe.errors.DrainNotFoundError`) when some are missing.
            EcsApiError: a call failed (after retries); a note names the instances that were
                set DRAINING by earlier calls.
        """
        return await _drain.drain(self, container_instances, cluster=cluster)

    async def drain_and_deregister(
        self,
        container_instance: str,
        *,
        cluster: str | None = None,
        # Not asyncio.timeout: at the deadline the drain acts (on_timeout), it is not cancelled.
        timeout: float = _drain.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = _drain.DEFAULT_POLL_INTERVAL,
        on_timeout: _drain.OnTimeout = "raise",
        standalone_tasks: _drain.StandaloneTasks = "refuse",
        progress: ProgressCallback | None = None,
    ) -> DeregistrationResult:
        """Drain an instance, wait until no task is left on it, then deregister it without force.

        The steps (see `ecs_safe.drain` and the docs' drain page):

        1. Pre-flight: describe the instance and list its tasks. Refuse before any change
           when the policy would refuse the instance even once drained, or (with
           ``standalone_tasks="refuse"``) when tasks that no service manages are on it.
        2. Set DRAINING (an instance already DRAINING is carried on with).
        3. Poll until no task on it is anything but STOPPED, judged by the task list, not
           only the counters; back off between polls; give up at the deadline.
        4. Deregister without force, through the same policy check as
           `deregister_container_instance`.

        Args:
            container_instance: the container instance ID or full ARN.
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            timeout: seconds the instance may take to empty, from the moment it is DRAINING.
            poll_interval: seconds before the second poll; later waits grow 1.5 times up to
                30 s (or ``poll_interval``, if longer).
            on_timeout: at the deadline, ``"raise"`` `DrainTimeoutError` and leave the
                instance DRAINING; ``"reactivate"``: set it ACTIVE again, then raise;
                ``"force"``: deregister with force, if the policy allows it.
            standalone_tasks: tasks no service manages are never moved by draining:
                ``"refuse"`` up front, ``"wait"`` for them within the timeout, or ``"stop"``
                them (StopTask).
            progress: called with each ``ecs_safe.drain.progress`` event (a dict with
                ``event``, ``container_instance_arn``, ``remaining_tasks``, ``elapsed_s`` and
                more); a plain or an async callable. Its exceptions are logged, not raised.

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PolicyViolationError: refused before DRAINING was set, naming every blocker; or
                the final check refused (the instance is then left DRAINING).
            DrainTimeoutError: tasks were left at the deadline (``"raise"``/``"reactivate"``).
            ContainerInstanceNotFoundError: the instance is missing or INACTIVE, or someone
                else deregistered it during the drain (the message says so).
            EcsApiError: a call failed after retries; once DRAINING is set, a note says the
                instance was left DRAINING. A second call carries on from there.
        """
        cluster = validate_cluster(cluster)
        ref = validate_container_instance(container_instance)
        check_same_cluster(ref, cluster)
        options = _drain.DrainOptions(
            timeout=timeout,
            poll_interval=poll_interval,
            on_timeout=on_timeout,
            standalone_tasks=standalone_tasks,
        )
        callback = check_progress(progress)
        self._api  # noqa: B018 - fail on a closed client before anything else
        return await _drain.drain_and_deregister(self, ref, cluster, options, callback)

    async def deregister_many(
        self,
        container_instances: Iterable[str],
        *,
        cluster: str | None = None,
        force: bool = False,
        drain: bool = False,
        dry_run: bool = False,
        concurrency: int = fleet.DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        # Not asyncio.timeout: at the deadline the drain acts (on_timeout), it is not cancelled.
        timeout: float = _drain.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = _drain.DEFAULT_POLL_INTERVAL,
        standalone_tasks: _drain.StandaloneTasks = "refuse",
    ) -> BatchResult:
        """Deregister many instances concurrently, each under the same checks as one.

        Never raises for one instance: each input gets exactly one `InstanceOutcome`, in
        input order (``"deregistered"``, ``"would_deregister"``, ``"refused"`` or
        ``"failed"``, with a typed ``error``). A bad ID fails its own outcome only. An
        instance named twice (as ID and ARN, say) is processed once and each position gets
        that outcome. The pre-flight describes are batched 100 per call across the whole
        fleet, and every call is paced by the client's `RateLimits`.

        Args:
            container_instances: container instance IDs or full ARNs.
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            force: deregister with force (the policy decides). With ``drain``: drain first
                and force only what is left at the deadline (``on_timeout="force"``).
            drain: drain each instance first (DRAINING set 10 instances per call), as
                `drain_and_deregister` does; ``timeout``, ``poll_interval`` and
                ``standalone_tasks`` apply per instance.
            dry_run: make no mutating call; the outcomes are the plan: what would be
                deregistered, what would be refused and why, and each instance's tasks
                (``outcome.result.tasks``).
            concurrency: instances processed at once (an int >= 1); a draining instance
                holds its slot while it waits.
            progress: called once per finished instance with an ``ecs_safe.batch.progress``
                event (``container_instance``, ``index``, ``status``, ``done``, ``total``),
                and with each drain poll's event when draining.
            timeout: see `drain_and_deregister` (only with ``drain``).
            poll_interval: see `drain_and_deregister` (only with ``drain``).
            standalone_tasks: see `drain_and_deregister` (only with ``drain``).

        Raises:
            InvalidInputError: the call itself is malformed (not a list, empty, bad options).
        """
        force = check_bool(force, "force")
        settings = fleet.FleetSettings(
            cluster=validate_cluster(cluster),
            force=force,
            drain=check_bool(drain, "drain"),
            dry_run=check_bool(dry_run, "dry_run"),
            concurrency=fleet.check_concurrency(concurrency),
            drain_options=_drain.DrainOptions(
                timeout=timeout,
                poll_interval=poll_interval,
                on_timeout="force" if force else "raise",
                standalone_tasks=standalone_tasks,
            ),
            progress=check_progress(progress),
        )
        self._api  # noqa: B018 - fail on a closed client before anything else
        return await fleet.deregister_many(self, container_instances, settings)

    # ------------------------------------------------------------------ deregister

    async def deregister_container_instance(
        self,
        container_instance: str,
        *,
        cluster: str | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> DeregistrationResult:
        """Deregister one container instance, if the policy allows it.

        Args:
            container_instance: the container instance ID or full ARN.
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            force: deregister even with tasks running (they are orphaned; the policy decides
                whether that is acceptable).
            dry_run: decide and log, but make no mutating call.

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PolicyViolationError: the policy refused (before any mutating call), or the
                pre-flight describe failed (the policy fails closed).
            ContainerInstanceNotFoundError: the instance is not in the cluster.
            EcsApiError: the deregistration call failed (after retries).
        """
        cluster = validate_cluster(cluster)
        ref = validate_container_instance(container_instance)
        check_same_cluster(ref, cluster)
        force = check_bool(force, "force")
        dry_run = check_bool(dry_run, "dry_run")
        self._api  # noqa: B018 - fail on a closed client before anything else
        snapshot = await self._preflight_snapshot(ref, cluster, force=force, dry_run=dry_run)
        return await self._decide_and_deregister(
            ref, cluster, snapshot, force=force, dry_run=dry_run
        )

    async def _preflight_snapshot(
        self, ref: str, cluster: str | None, *, force: bool, dry_run: bool
    ) -> ContainerInstance:
        """Describe the instance before deciding; a describe that fails refuses (fail closed)."""
        try:
            return await self._describe_one(ref, cluster)
        except EcsApiError as exc:
            error = self._preflight_error(ref, cluster, exc, force=force, dry_run=dry_run)
            if error is exc:
                raise
            raise error from exc

    def _preflight_error(
        self, ref: str, cluster: str | None, exc: EcsApiError, *, force: bool, dry_run: bool
    ) -> EcsSafeError:
        """What a failed pre-flight describe means, logged.

        An instance or cluster that does not exist is a plain failure (there is nothing to
        judge); any other failure refuses, because nothing is deregistered blind.
        """
        if isinstance(exc, ContainerInstanceNotFoundError | ClusterNotFoundException):
            _events.log_failed(exc, cluster=cluster, container_instance=ref)
            return exc
        return self._preflight_refusal(ref, cluster, exc, force=force, dry_run=dry_run)

    def _preflight_refusal(
        self, ref: str, cluster: str | None, exc: EcsApiError, *, force: bool, dry_run: bool
    ) -> PolicyViolationError:
        """A failed pre-flight describe refuses: nothing is deregistered blind."""
        decision = Decision(
            allowed=False,
            violations=(
                Violation(
                    rule="preflight",
                    message=f"could not describe the instance, so it cannot be judged safe: {exc}",
                ),
            ),
        )
        self._decided(ref, cluster, None, decision, force=force, dry_run=dry_run, step="preflight")
        return self._refusal(ref, cluster, None, decision, (), force=force, dry_run=dry_run)

    async def _judge(
        self,
        ref: str,
        cluster: str | None,
        snapshot: ContainerInstance,
        *,
        force: bool,
        dry_run: bool,
        tasks: Sequence[Task] | None = None,
        extra: Sequence[Violation] = (),
        step: _Step = "deregister",
    ) -> tuple[Decision, list[Task]]:
        """Fetch what the rules need and evaluate the policy, without raising on a refusal.

        ``tasks``, when the caller already holds the task list, saves fetching it again. Rules
        see the task list exactly when the policy asks for it (`Policy.needs_tasks`), so a
        decision does not depend on whether the caller happened to hold the list. ``extra``
        violations, found by the caller, join the policy's. The decision is recorded (see
        `_decided`) before it is returned.
        """
        if self.policy.needs_tasks and tasks is None:
            try:
                tasks = await self._list_tasks(ref, cluster)
            except EcsApiError as exc:
                raise self._preflight_refusal(
                    ref, cluster, exc, force=force, dry_run=dry_run
                ) from exc
        context = PolicyContext(
            cluster=cluster,
            container_instance=snapshot,
            force=force,
            dry_run=dry_run,
            tasks=tuple(tasks or ()) if self.policy.needs_tasks else None,
        )
        decision = self.policy.evaluate(context)
        if extra:
            decision = Decision.refuse(*decision.violations, *extra)
        self._decided(ref, cluster, snapshot, decision, force=force, dry_run=dry_run, step=step)
        return decision, list(tasks or ())

    def _decided(
        self,
        ref: str,
        cluster: str | None,
        snapshot: ContainerInstance | None,
        decision: Decision,
        *,
        force: bool,
        dry_run: bool,
        step: _Step,
    ) -> None:
        """Record a decision in the audit log: the one place decisions are written.

        Every decision passes here, before anything acts on it: the policy's (`_judge`) and
        the fail-closed refusals of a pre-flight that could not be done (`_preflight_refusal`).
        ``step`` is ``"deregister"``, ``"drain"`` (before DRAINING is set, judged on the
        drained instance) or ``"preflight"``.
        """
        if self._audit is None:
            return
        self._audit.write(
            DECISION,
            step=step,
            allowed=decision.allowed,
            violations=[
                {"rule": v.rule, "message": redact(v.message)} for v in decision.violations
            ],
            container_instance=ref,
            container_instance_arn=snapshot.container_instance_arn if snapshot else None,
            cluster=cluster,
            force=force,
            dry_run=dry_run,
        )

    def _refusal(
        self,
        ref: str,
        cluster: str | None,
        snapshot: ContainerInstance | None,
        decision: Decision,
        tasks: Sequence[Task],
        *,
        force: bool,
        dry_run: bool,
    ) -> PolicyViolationError:
        """Log a refusal and build the error that carries it."""
        _events.log_refused(
            snapshot,
            cluster=cluster,
            container_instance=ref,
            decision=decision,
            forced=force,
            dry_run=dry_run,
        )
        return PolicyViolationError(
            _refusal_message(ref, decision),
            decision=decision,
            container_instance=snapshot,
            tasks=tasks,
        )

    async def _decide_and_deregister(
        self,
        ref: str,
        cluster: str | None,
        snapshot: ContainerInstance,
        *,
        force: bool,
        dry_run: bool,
        tasks: Sequence[Task] | None = None,
    ) -> DeregistrationResult:
        """Evaluate the policy on ``snapshot`` and deregister (or, in a dry run, only log)."""
        decision, tasks_seen = await self._judge(
            ref, cluster, snapshot, force=force, dry_run=dry_run, tasks=tasks
        )
        if not decision.allowed:
            raise self._refusal(
                ref, cluster, snapshot, decision, tasks_seen, force=force, dry_run=dry_run
            )
        if dry_run:
            _events.log_planned(snapshot, cluster=cluster, forced=force)
            return DeregistrationResult(
                container_instance=snapshot,
                decision=decision,
                forced=force,
                dry_run=True,
                request_id=None,
                tasks=tasks_seen,
            )
        try:
            instance, request_id, verified = await self._deregister_call(
                ref, cluster, snapshot, force=force
            )
        except EcsApiError as exc:
            refused = self._server_refusal(exc, force=force)
            if refused is not None:
                raise self._refusal(
                    ref, cluster, snapshot, refused, tasks_seen, force=force, dry_run=False
                ) from exc
            _events.log_failed(exc, cluster=cluster, container_instance=ref)
            raise
        _events.log_succeeded(
            instance,
            cluster=cluster,
            forced=force,
            dry_run=False,
            request_id=request_id,
            **({"verified_after_lost_response": True} if verified else {}),
        )
        return DeregistrationResult(
            container_instance=instance,
            decision=decision,
            forced=force,
            dry_run=False,
            request_id=request_id,
            tasks=tasks_seen,
            verified=verified,
        )

    @staticmethod
    def _server_refusal(exc: EcsApiError, *, force: bool) -> Decision | None:
        """ECS's own refusal of an unforced deregistration (a task arrived after our check)."""
        if force or not isinstance(exc, InvalidParameterException | ClientException):
            return None
        if not any(hint in exc.message.lower() for hint in _SERVER_REFUSAL_HINTS):
            return None
        return Decision(
            allowed=False,
            violations=(Violation(rule="ecs-service", message=f"ECS refused: {exc.message}"),),
        )

    async def _confirm_gone(self, ref: str, cluster: str | None) -> ContainerInstance | None:
        """After a lost response: the instance as described if it is gone, else ``None``.

        Gone means reported missing (moto, and AWS after a while) or INACTIVE (AWS right after
        deregistration). A describe that itself fails proves nothing.
        """
        try:
            found, missing = await self._describe_raw([ref], cluster)
        except EcsApiError:
            return None
        key = instance_id_of(ref)
        if key in missing:
            return ContainerInstance.model_validate(
                {"containerInstanceArn": ref, "status": "INACTIVE"}
            )
        instance = found.get(key)
        if instance is not None and instance.status == "INACTIVE":
            return instance
        return None

    async def _deregister_call(
        self, ref: str, cluster: str | None, snapshot: ContainerInstance, *, force: bool
    ) -> tuple[ContainerInstance, str | None, bool]:
        """DeregisterContainerInstance, with lost responses verified instead of re-sent blind.

        Returns the returned (or verified) instance, the request ID and whether it was verified.
        """
        verified: list[ContainerInstance] = []

        async def verify(_exc: EcsApiError) -> Response | None:
            # The response may be lost after ECS acted: a describe tells, and a call that
            # worked is never sent again (nor reported failed because its retry was refused).
            gone = await self._confirm_gone(ref, cluster)
            if gone is None:
                return None
            verified.append(gone)
            return {}

        response = await self._api.call(
            "DeregisterContainerInstance",
            {"cluster": cluster, "containerInstance": ref, "force": force},
            check=check_deregistered,
            verify=verify,
        )
        if verified:
            return self._merge_verified(snapshot, verified[0]), None, True
        instance = ContainerInstance.model_validate(response["containerInstance"])
        return instance, request_id_of(response), False

    @staticmethod
    def _merge_verified(snapshot: ContainerInstance, gone: ContainerInstance) -> ContainerInstance:
        # The describe of a vanished instance says little; the pre-flight snapshot fills in
        # what it knew (ARN, EC2 ID), the describe decides the status.
        if gone.ec2_instance_id is not None:
            return gone
        return snapshot.model_copy(update={"status": gone.status})
