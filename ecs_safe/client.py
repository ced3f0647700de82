"""`EcsSafeClient`: the async client: its life cycle, its argument checks, its public methods.

The client owns the aiobotocore client, the audit run and the layers below it (see the docs'
architecture page): a transport per AWS service (`ecs_safe._transport`: rate limits, retries,
error mapping, audit of mutating calls), the call layer (`ecs_safe._calls.EcsCalls`: every
batched ECS call), the decision gate (`ecs_safe._gate.Gate`: snapshot, policy, refusal,
deregistration) and the workflows (`ecs_safe.drain`, `ecs_safe.fleet`). Each public method
checks its arguments before any network call, then makes one call on the gate, the call layer
or a workflow.
"""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, Unpack

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

from ecs_safe import _constants, _events, _targets, fleet, termination
from ecs_safe import autoscaling as _autoscaling
from ecs_safe import drain as _drain
from ecs_safe import replace as _replace
from ecs_safe import worker as _worker
from ecs_safe._aws_calls import AutoScalingCalls, Ec2Calls, QueueCalls
from ecs_safe._calls import EcsCalls
from ecs_safe._constants import StandaloneTasks
from ecs_safe._error_mapping import map_errors
from ecs_safe._gate import Gate, Request
from ecs_safe._poller import Poller
from ecs_safe._progress import ProgressCallback, check_progress
from ecs_safe._task_events import TaskEvents
from ecs_safe._transport import Transport, open_http_session
from ecs_safe._validation import (
    InstanceInput,
    check_bool,
    check_choice,
    check_filter,
    check_instance_status,
    check_name,
    check_positive_number,
    check_queue_url,
    check_same_cluster,
    validate_cluster,
    validate_container_instance,
    validate_container_instances,
    validate_endpoint_url,
)
from ecs_safe.audit import RUN_FINISHED, RUN_STARTED, AuditLog, AuditRun
from ecs_safe.autoscaling import Clock, LifecycleActionResult
from ecs_safe.errors import ClientStateError, EcsSafeError, InvalidInputError
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.notices import LifecycleActionNotice, NoticeError, parse_notice
from ecs_safe.policy import Policy, default_policy
from ecs_safe.ratelimit import RateLimiter, RateLimits
from ecs_safe.results import BatchResult, DeregistrationResult, PollStats
from ecs_safe.retry import RetryConfig
from ecs_safe.steady import SteadyGate
from ecs_safe.termination import TerminationOptions, Terminator

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "DEFAULT_READ_TIMEOUT", "EcsSafeClient", "ProgressCallback"]

# The values live in `ecs_safe._constants`; these names are kept for existing callers.
#: Seconds to wait for a TCP/TLS connection to the endpoint.
DEFAULT_CONNECT_TIMEOUT: Final = _constants.DEFAULT_CONNECT_TIMEOUT
#: Seconds to wait for a response once the request is sent.
DEFAULT_READ_TIMEOUT: Final = _constants.DEFAULT_READ_TIMEOUT


_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class _DrainCall:
    """One validated single-instance drain, resolved, handed to its workflow (`_drain_call`)."""

    gate: Gate
    ref: str
    cluster: str | None
    options: _drain.DrainOptions
    progress: ProgressCallback | None
    poller: Poller


def _termination_options(
    terminate: object, decrement_desired_capacity: object, allow_protected: object
) -> TerminationOptions | None:
    """The checked ``terminate=`` arguments: the options, or ``None`` without ``terminate``.

    Raises:
        InvalidInputError: a value is not a bool, or a termination choice is given without
            ``terminate=True`` (it would be silently ignored).
    """
    options = TerminationOptions(
        decrement_desired_capacity=check_bool(
            decrement_desired_capacity, "decrement_desired_capacity"
        ),
        allow_protected=check_bool(allow_protected, "allow_protected"),
    )
    if check_bool(terminate, "terminate"):
        return options
    given = [
        name
        for name, value in (
            ("decrement_desired_capacity", options.decrement_desired_capacity),
            ("allow_protected", options.allow_protected),
        )
        if value
    ]
    if given:
        raise InvalidInputError(
            f"{' and '.join(given)} only mean something with terminate=True; pass "
            "terminate=True too, or leave them out"
        )
    return None


@dataclass(slots=True)
class _AwsCalls:
    """The call layers of the services around ECS, each made on first need."""

    autoscaling: AutoScalingCalls | None = None
    ec2: Ec2Calls | None = None
    sqs: QueueCalls | None = None


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


def _version() -> str:
    from ecs_safe import __version__  # noqa: PLC0415 - the package imports this module

    return __version__


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
            It stays live: assigning `EcsSafeClient.policy`, even while the client is open,
            applies to every later decision.
        retry: how retryable errors are retried; defaults to `RetryConfig()`. Fixed when the
            client opens: assigning ``retry`` afterwards changes nothing.
        rate_limits: client-side token buckets; defaults to ECS's documented buckets. Fixed
            when the client opens (the buckets are made then), like ``retry``.
        connect_timeout: seconds to establish each HTTP connection.
        read_timeout: seconds to wait for each HTTP response.
        audit_log: where to keep an audit trail (`ecs_safe.audit`): a path (opened for
            appending when the client opens, closed with it) or an `AuditLog` (left open).
            Every policy decision and every mutating call is recorded, and flushed, before the
            call that made it returns.
        run_id: the run ID this client marks the instances it drains with (the custom
            attribute ``ecs-safe.drain-run``, `ecs_safe.ownership`); by default its audit run's
            ID, else a new one. Another run refuses an instance marked by this one unless it
            takes over; give a crashed run's ID to carry on as that run.
        task_events_queue: the URL of an SQS queue that an EventBridge rule sends this
            cluster's ``ECS Task State Change`` events to, dedicated to this client (it deletes
            every message it reads). While anything drains, the client long-polls it, and an
            event about a draining instance wakes the drain poller at once: a drain is
            deregistered about a second after its last task stops, and the rounds between
            events are a safety net (every 6 ``poll_interval`` while quiet). Events are hints:
            the task list still judges. See the drain guide, "Waking on task events".
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
        run_id: str | None = None,
        task_events_queue: str | None = None,
    ) -> None:
        for name, value in (
            ("region_name", region_name),
            ("profile_name", profile_name),
            ("run_id", run_id),
        ):
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidInputError(f"{name} must be a non-empty str or None, got {value!r}")
        self._task_events_queue = check_queue_url(
            task_events_queue, "task_events_queue", optional=True
        )
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
        self._policy = self._check_policy(policy)
        self.retry = self._check_type(retry, RetryConfig, "retry") or RetryConfig()
        self.rate_limits = self._check_type(rate_limits, RateLimits, "rate_limits") or RateLimits()
        if audit_log is not None and not isinstance(audit_log, AuditLog | str | os.PathLike):
            raise InvalidInputError(
                "audit_log must be a path or an ecs_safe.AuditLog, got "
                f"{type(audit_log).__name__}; to log to a stream, wrap it: AuditLog(stream)"
            )
        self._audit_log = audit_log
        self._run_id = run_id
        self._audit: AuditRun | None = None
        self._state = _State.UNOPENED
        self._owns_client = True
        self._exit_stack: AsyncExitStack | None = None
        self._transport: Transport | None = None
        self._gate: Gate | None = None
        # The one drain poller of the client: every drain it runs is looked at in its rounds.
        self._poller: Poller | None = None
        # The task-events loop that wakes it (with ``task_events_queue``), made with it.
        self._task_events: TaskEvents | None = None
        # Auto Scaling is made on first need (most clients never ask for a group): the
        # session and config it is made with, its transport, and a lock so that two first
        # calls at once make one client.
        self._create: tuple[AioSession, AioConfig] | None = None
        self._others: dict[str, Transport] = {}
        self._autoscaling_lock: asyncio.Lock | None = None
        # The call layers over those transports, made with them (`_autoscaling_calls`, ...).
        self._aws: _AwsCalls = _AwsCalls()
        # The event worker's record (`ecs_safe.worker.Ledger`), made on first need from the
        # audit log, shared by every `watch` and `handle_event` of the client.
        self._ledger: _worker.Ledger | None = None

    @property
    def policy(self) -> Policy:
        """The rules every deregistration must pass.

        Assigning a new `Policy` (``None``: `default_policy()`) applies to every later decision,
        also while the client is open.
        """
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = self._check_policy(policy)
        if self._gate is not None:
            self._gate.policy = self._policy

    @property
    def run_id(self) -> str:
        """The run ID the instances this client drains are marked with (`ecs_safe.ownership`).

        Known once the client is open: the ``run_id`` given, else its audit run's, else new.
        """
        return self._opened().calls.run_id

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
        ecs-safe's retries. Such a wrapper has no session to make other clients with, so
        ``list_container_instances(auto_scaling_group=...)`` raises `InvalidInputError` on it:
        construct `EcsSafeClient` normally to select by Auto Scaling group.
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
        run = log.start_run(self._run_id)
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
        # `retry` and `rate_limits` are read here, once: they are fixed for the client's life.
        self._transport = Transport(
            ecs_client,
            retry=self.retry,
            limiter=RateLimiter(self.rate_limits),
            audit=self._audit,
            service="ecs",
        )
        self._autoscaling_lock = asyncio.Lock()
        calls = EcsCalls(self._transport)
        # The run ID the instances this client drains are marked with (`ecs_safe.ownership`):
        # the one given, else the audit run's (so that a mark names its audit trail).
        calls.run_id = self._run_id or (self._audit.run_id if self._audit else calls.run_id)
        calls.transport_for = self._detection_transport
        self._gate = Gate(calls, self._policy, self._audit)
        if self._task_events_queue is not None:
            self._task_events = TaskEvents(self._task_events_queue, self._queue_calls)
        self._poller = Poller(
            calls, read_per_s=self.rate_limits.read_per_s, events=self._task_events
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
            max_pool_connections=_constants.MAX_POOL_CONNECTIONS,
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
            # Its TLS context is built now rather than ahead of the first request.
            await open_http_session(ecs_client)
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, EcsSafeError) and exc.code == "NoRegionError":
                raise InvalidInputError(
                    "no AWS Region configured: pass region_name= or set AWS_REGION"
                ) from exc
            raise
        self._exit_stack = stack
        self._create = (session, config)
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
        self._gate = None
        self._others = {}
        self._aws = _AwsCalls()
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        events, self._task_events = self._task_events, None
        if events is not None:
            # Its long poll ends before the SQS client it reads through is closed.
            await events.aclose()
        self._create = None
        if stack is not None:
            await stack.aclose()
        else:  # from_client(): no exit stack, but maybe an audit run to finish
            self._finish_audit()

    def _opened(self) -> Gate:
        """The gate of an open client; a clear error before opening or after closing."""
        if self._state is _State.UNOPENED or self._gate is None:
            if self._state is _State.CLOSED:
                raise ClientStateError(
                    "this EcsSafeClient is closed; create a new one inside `async with`"
                )
            raise ClientStateError(
                "this EcsSafeClient is not open; use it as "
                "`async with EcsSafeClient(...) as ecs:` (or EcsSafeClient.from_client(...))"
            )
        return self._gate

    def _drain_poller(self) -> Poller:
        """The drain poller of an open client (made with its gate, see `_open`)."""
        self._opened()
        assert self._poller is not None, "made with the gate"
        return self._poller

    @property
    def poll_stats(self) -> PollStats:
        """What this client's drain poller has spent so far: rounds, reads, looks.

        All zero before the client is open (and again once it is closed).
        """
        if self._poller is None:
            return PollStats(rounds=0, reads=0, looks=0)
        return self._poller.stats()

    async def _autoscaling_transport(self) -> Transport:
        """The Auto Scaling transport, made on first need; closed with the client.

        Raises:
            InvalidInputError: the client wraps a caller's ECS client (`from_client`), so it
                has no session to make an Auto Scaling client with.
        """
        return await self._service_transport("autoscaling")

    async def _service_transport(self, service: str) -> Transport:
        """The transport of another AWS service (``autoscaling``, ``ec2``, ``sqs``), on first need.

        The same session, Region, endpoint and botocore settings as the ECS client (botocore's
        retries off), the client's `RetryConfig`, and the SAME `RateLimiter`, whose buckets for
        that service pace it (`ecs_safe.ratelimit`); closed with the client.

        Raises:
            InvalidInputError: the client wraps a caller's ECS client (`from_client`), so it
                has no session to make another client with.
        """
        ecs = self._opened().calls.transport
        made = self._others.get(service)
        if made is not None:
            return made
        if self._create is None or self._exit_stack is None or self._autoscaling_lock is None:
            raise InvalidInputError(
                f"this needs an {service} client, and a client made with "
                "EcsSafeClient.from_client() has no session to make one; construct "
                "EcsSafeClient(region_name=..., ...) normally (async with) to select by group"
            )
        async with self._autoscaling_lock:
            if service not in self._others:
                session, config = self._create
                with map_errors("CreateClient"):
                    client = await self._exit_stack.enter_async_context(
                        session.create_client(
                            service,  # type: ignore[call-overload]  # a literal per service
                            region_name=self._region_name,
                            endpoint_url=self._endpoint_url,
                            config=config,
                        )
                    )
                self._others[service] = Transport(
                    client,
                    retry=ecs.retry,
                    limiter=ecs.limiter,
                    audit=self._audit,
                    service=service,
                )
        return self._others[service]

    async def _autoscaling_calls(self) -> AutoScalingCalls:
        """The Auto Scaling call layer (`ecs_safe._aws_calls`), made once, on first need.

        Raises:
            InvalidInputError: the client has no session (`from_client`) to make it with.
        """
        if self._aws.autoscaling is None:
            self._aws.autoscaling = AutoScalingCalls(await self._service_transport("autoscaling"))
        return self._aws.autoscaling

    async def _ec2_calls(self) -> Ec2Calls:
        """The EC2 call layer (`ecs_safe._aws_calls`), made once, on first need.

        Raises:
            InvalidInputError: the client has no session (`from_client`) to make it with.
        """
        if self._aws.ec2 is None:
            self._aws.ec2 = Ec2Calls(await self._service_transport("ec2"))
        return self._aws.ec2

    async def _queue_calls(self) -> QueueCalls:
        """The SQS call layer (`ecs_safe._aws_calls`), made once, on first need.

        Raises:
            InvalidInputError: the client has no session (`from_client`) to make it with.
        """
        if self._aws.sqs is None:
            self._aws.sqs = QueueCalls(await self._service_transport("sqs"))
        return self._aws.sqs

    async def _detection_transport(self, service: str) -> Transport:
        # What the ownership survey uses: without a session it has no other service to ask.
        if self._create is None:
            raise InvalidInputError(f"no session to make an {service} client with")
        return await self._service_transport(service)

    async def _resolve(self, calls: EcsCalls, refs: list[str], cluster: str | None) -> list[str]:
        """Each input's container instance in ``cluster`` (one batched resolution), scoped.

        IDs and ARNs cost no call; EC2 and managed instance IDs are looked up together.
        """
        refs = _targets.refs_of(await _targets.resolve(calls, refs, cluster=cluster), cluster)
        for ref in refs:
            calls.check_scope(ref)
        return refs

    # ------------------------------------------------------------------ targets

    async def list_container_instances(
        self,
        *,
        cluster: str | None = None,
        filter: str | None = None,
        status: str | None = None,
        auto_scaling_group: str | None = None,
        on_unregistered: Callable[[list[str]], object] | None = None,
    ) -> list[ContainerInstance]:
        """Every container instance of a cluster that a ListContainerInstances listing returns.

        Every page (100 ARNs a page), then described 100 a call (with tags and health).

        Args:
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            filter: ECS's cluster query language, passed to ECS as it is (ECS judges it; a bad
                one raises `InvalidParameterException`), e.g.
                ``"attribute:ecs.instance-type == t3.large"``.
            status: one of ACTIVE, DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED,
                INACTIVE; without it ECS lists every status but INACTIVE.
            auto_scaling_group: only that group's members (DescribeAutoScalingGroups) that are
                registered in the cluster, combined with ``filter`` and ``status``; members
                not registered are logged (``ecs_safe.targets.unregistered``, a warning).
                Not available on a client made with `from_client` (it has no session to make
                an Auto Scaling client with): that raises `InvalidInputError`.
            on_unregistered: with ``auto_scaling_group``, called once (before this returns)
                with the EC2 instance IDs of the group's members that are not registered in
                the cluster, in the group's order (an empty list when every one is), so that
                a caller can show them; a plain callable, whose return value is ignored.

        Raises:
            InvalidInputError: bad arguments (before any request).
            AutoScalingGroupNotFoundError: no group of that name.
            EcsApiError: a call failed (after retries); `PaginationError` for a listing that
                does not end.
        """
        cluster = validate_cluster(cluster)
        filter = check_filter(filter)
        status = check_instance_status(status)
        group = check_name(auto_scaling_group, "auto_scaling_group")
        if on_unregistered is not None and not callable(on_unregistered):
            raise InvalidInputError(
                f"on_unregistered must be a callable or None, got {type(on_unregistered).__name__}"
            )
        calls = self._opened().calls
        if group is None:
            return await _targets.list_instances(
                calls, cluster=cluster, filter=filter, status=status
            )
        autoscaling = await self._autoscaling_transport()
        found = await _targets.list_group_instances(
            calls, autoscaling, cluster=cluster, group=group, filter=filter, status=status
        )
        if on_unregistered is not None:
            on_unregistered(list(found.missing))
        return found.instances

    async def resolve_container_instances(
        self, container_instances: Iterable[InstanceInput], *, cluster: str | None = None
    ) -> list[_targets.Resolved]:
        """How each input names a container instance of ``cluster``, without acting on any.

        The resolution every method that takes instances makes first, given back: one
        `ecs_safe._targets.Resolved` per input, in input order, with the input as given
        (``given``), the container instance to act on (``ref``: the ARN ECS returned for an EC2
        or managed instance ID, the input itself for a container instance ID or ARN, the ARN
        of a `ContainerInstance`), the EC2 instance ID where the lookup learned it, or the
        ``error`` that makes it name nothing. EC2 and managed instance IDs are looked up
        together (``ceil(n / 47)`` listings and ``ceil(n / 100)`` describes); container
        instance IDs and ARNs cost no call and are not checked here (the describe of the
        method that acts on them does that). Never raises for one input: a malformed one
        carries an `InvalidInputError`, an EC2 ID not registered in the cluster a
        `ContainerInstanceNotFoundError` naming it.

        Raises:
            InvalidInputError: ``container_instances`` is not a list, or ``cluster`` is bad.
            EcsApiError: a listing or describe failed (after retries).
        """
        cluster = validate_cluster(cluster)
        if isinstance(container_instances, str | bytes) or not isinstance(
            container_instances, Iterable
        ):
            raise InvalidInputError(
                "container_instances must be a list of instances, got "
                f"{type(container_instances).__name__}; for one pass [id]"
            )
        inputs = list(container_instances)
        calls = self._opened().calls
        resolution = await _targets.resolve(calls, inputs, cluster=cluster)
        return list(resolution.items)

    async def locate_container_instances(
        self, ec2_instance_ids: Iterable[str]
    ) -> dict[str, ContainerInstance]:
        """Find the cluster each EC2 (or ``mi-``) instance is registered in.

        Lists every cluster of the account and Region (every page), then looks the IDs up in
        each, batched (about 90 IDs a listing), until each is found live (ACTIVE or DRAINING).
        The cluster is in each instance's ``container_instance_arn``.

        Returns:
            The instance of each ID found, keyed by the ID as given; IDs found nowhere are
            absent.

        Raises:
            InvalidInputError: an input is not an EC2 or managed instance ID (before any request).
        """
        if isinstance(ec2_instance_ids, str | bytes) or not isinstance(ec2_instance_ids, Iterable):
            raise InvalidInputError(
                "ec2_instance_ids must be a list of EC2 instance IDs (i-...) or managed instance "
                f"IDs (mi-...), got {type(ec2_instance_ids).__name__}; for one pass [id]"
            )
        wanted = list(ec2_instance_ids)
        calls = self._opened().calls
        return await _targets.locate(calls, wanted)

    # ------------------------------------------------------------------ describe

    async def describe_container_instances(
        self, container_instances: Iterable[InstanceInput], *, cluster: str | None = None
    ) -> list[ContainerInstance]:
        """Describe container instances (batched 100 per call), in input order.

        Each input may be a container instance ID or ARN, an EC2 or managed instance ID, or a
        `ContainerInstance`; EC2 and managed IDs are resolved in the cluster first (batched).

        Raises:
            ContainerInstanceNotFoundError: some instances are reported missing; its
                ``container_instances`` names every one of them.
        """
        cluster = validate_cluster(cluster)
        refs = validate_container_instances(container_instances, cluster=cluster)
        calls = self._opened().calls
        refs = await self._resolve(calls, refs, cluster)
        return await calls.describe(refs, cluster)

    # ------------------------------------------------------------------ tasks

    async def list_tasks(
        self, container_instance: InstanceInput, *, cluster: str | None = None
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
        calls = self._opened().calls
        (ref,) = await self._resolve(calls, [ref], cluster)
        return await calls.list_tasks(ref, cluster)

    # ------------------------------------------------------------------ drain

    async def drain(
        self,
        container_instances: Iterable[InstanceInput],
        *,
        cluster: str | None = None,
        take_over: bool = False,
    ) -> list[ContainerInstance]:
        """Set container instances to DRAINING (UpdateContainerInstancesState, 10 per call).

        ECS then stops placing tasks on them and replaces their service tasks elsewhere;
        standalone tasks are left alone. Setting an instance that is already DRAINING again is
        harmless. Nothing is deregistered: see `drain_and_deregister` for the whole workflow.
        Each instance is first marked as this client's run's (the attribute
        ``ecs-safe.drain-run``, `ecs_safe.ownership`); one already DRAINING under another
        run's mark or none is left unmarked unless ``take_over``.

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
        cluster = validate_cluster(cluster)
        refs = validate_container_instances(container_instances, cluster=cluster)
        calls = self._opened().calls
        take_over = check_bool(take_over, "take_over")
        refs = await self._resolve(calls, refs, cluster)
        return await _drain.drain(calls, refs, cluster, take_over=take_over)

    async def drain_and_deregister(
        self,
        container_instance: InstanceInput,
        *,
        cluster: str | None = None,
        # Not asyncio.timeout: at the deadline the drain acts (on_timeout), it is not cancelled.
        timeout: float = _constants.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = _constants.DEFAULT_POLL_INTERVAL,
        on_timeout: _constants.OnTimeout = "raise",
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        progress: ProgressCallback | None = None,
        take_over: bool = False,
        steady: SteadyGate | None = None,
        terminate: bool = False,
        decrement_desired_capacity: bool = False,
        allow_protected: bool = False,
    ) -> DeregistrationResult:
        """Drain an instance, wait until no task is left on it, then deregister it without force.

        The steps (see `ecs_safe.drain` and the docs' drain page):

        1. Pre-flight: describe the instance and list its tasks. Refuse before any change
           when the policy would refuse the instance even once drained, or (with
           ``standalone_tasks="refuse"``) when tasks that no service manages are on it.
        2. Set DRAINING (an instance already DRAINING is carried on with).
        3. Wait until no task on it is anything but STOPPED, judged by the task list, not
           only the counters, looked at in the rounds of the client's one drain poller
           (`ecs_safe._poller`: every draining instance together, paced to half the read
           rate); give up at the deadline.
        4. Deregister without force, through the same policy check as
           `deregister_container_instance`.

        Args:
            container_instance: the container instance ID or full ARN, an EC2 or managed
                instance ID (resolved in the cluster first), or a `ContainerInstance`.
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            timeout: seconds the instance may take to empty, from the moment it is DRAINING.
            poll_interval: the longest wait, in seconds, between two looks at the instance
                (the lag budget: a task that stops unannounced is seen within it). While a
                task is seen stopping the poller looks every `MIN_POLL_INTERVAL` (2 s), or
                every ``poll_interval`` if that is shorter, as its read budget allows.
            on_timeout: at the deadline, ``"raise"`` `DrainTimeoutError` and leave the
                instance DRAINING; ``"reactivate"``: set it ACTIVE again, then raise;
                ``"force"``: deregister with force, if the policy allows it.
            standalone_tasks: tasks no service manages are never moved by draining:
                ``"refuse"`` up front, ``"wait"`` for them within the timeout, or ``"stop"``
                them (StopTask).
            require_room: refuse before DRAINING when the instance's service tasks would
                have nowhere to go on the cluster's other ACTIVE instances
                (`ecs_safe.policy.RoomElsewhere`; a warning instead where managed scaling
                will add capacity). ``False`` skips the check.
            progress: called with each ``ecs_safe.drain.progress`` event (a dict with
                ``event``, ``container_instance_arn``, ``remaining_tasks``, ``elapsed_s`` and
                more); a plain or an async callable. Its exceptions are logged, not raised.
            take_over: drain it even when another ecs-safe run's mark is on it, or ECS managed
                draining is draining it (refused otherwise: rules ``ownership`` and
                ``managed-draining``, `ecs_safe.ownership`).
            steady: a rolling run's steady-state gate (`steady_gate`): after the
                pre-flight, the instance is set DRAINING only once the services earlier
                drains of the run took tasks from are steady again; `NotStartedError`
                (nothing changed) once the gate's deadline has passed.
            terminate: once the deregistration is verified (a describe shows the instance
                INACTIVE or gone), terminate its EC2 instance: TerminateInstanceInAutoScalingGroup
                for an Auto Scaling group member, TerminateInstances otherwise
                (`ecs_safe.termination`). The pre-flight then also reads the group membership
                and protections, and the policy refuses a protected instance
                (`ecs_safe.policy.ProtectTermination`) before DRAINING is set.
            decrement_desired_capacity: with ``terminate``, lower the group's desired capacity
                by one, so that the group launches no replacement.
            allow_protected: with ``terminate``, terminate even an instance protected from
                scale-in or with EC2 termination protection (EC2 still refuses the latter: a
                `TerminationError`).

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PolicyViolationError: refused before DRAINING was set, naming every blocker; or
                the final check refused (the instance is then left DRAINING).
            DrainTimeoutError: tasks were left at the deadline (``"raise"``/``"reactivate"``).
            ContainerInstanceNotFoundError: the instance is missing or INACTIVE, or someone
                else deregistered it during the drain (the message says so).
            EcsApiError: a call failed after retries; once DRAINING is set, a note says the
                instance was left DRAINING. A second call carries on from there.
            TerminationError: (``terminate``) the instance was deregistered, but its EC2
                instance was not terminated; the error's ``result`` is the deregistration.
        """
        asked = _termination_options(terminate, decrement_desired_capacity, allow_protected)

        async def workflow(drain: _DrainCall) -> DeregistrationResult:
            return await _drain.drain_and_deregister(
                drain.gate,
                drain.ref,
                drain.cluster,
                drain.options,
                drain.progress,
                poller=drain.poller,
                steady=steady,
                terminator=await self._terminator(asked),
            )

        return await self._drain_call(
            workflow,
            container_instance,
            cluster=cluster,
            progress=progress,
            timeout=timeout,
            poll_interval=poll_interval,
            on_timeout=on_timeout,
            standalone_tasks=standalone_tasks,
            take_over=take_over,
            require_room=require_room,
        )

    async def _drain_call(
        self,
        workflow: Callable[[_DrainCall], Awaitable[_R]],
        container_instance: InstanceInput,
        *,
        cluster: str | None,
        progress: ProgressCallback | None,
        **knobs: Unpack[_drain.DrainKnobs],
    ) -> _R:
        """Validate one drain's arguments, resolve its instance, then run ``workflow`` on it.

        What `drain_and_deregister` and `drain_and_wait` share: every argument is checked
        before any network call (the instance, the cluster, the drain's knobs as
        `ecs_safe.drain.DrainOptions`, the progress callback), then the instance is resolved in
        the cluster (an EC2 or managed instance ID), then ``workflow`` runs.
        """
        cluster = validate_cluster(cluster)
        ref = validate_container_instance(container_instance)
        check_same_cluster(ref, cluster)
        options = _drain.DrainOptions(**knobs)
        callback = check_progress(progress)
        gate = self._opened()
        (ref,) = await self._resolve(gate.calls, [ref], cluster)
        return await workflow(
            _DrainCall(gate, ref, cluster, options, callback, self._drain_poller())
        )

    async def _terminator(self, options: TerminationOptions | None) -> Terminator | None:
        """The terminator of a call that asked ``terminate=True`` (``None`` otherwise).

        The Auto Scaling and EC2 call layers are made on first need: a call without
        ``terminate`` never makes them.
        """
        if options is None:
            return None
        return Terminator(await self._autoscaling_calls(), await self._ec2_calls(), options)

    async def deregister_many(
        self,
        container_instances: Iterable[InstanceInput],
        *,
        cluster: str | None = None,
        force: bool = False,
        drain: bool = False,
        dry_run: bool = False,
        concurrency: int = _constants.DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        # Not asyncio.timeout: at the deadline the drain acts (on_timeout), it is not cancelled.
        timeout: float = _constants.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = _constants.DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        take_over: bool = False,
        steady_timeout: float = _constants.DEFAULT_STEADY_TIMEOUT,
        require_room: bool = True,
        terminate: bool = False,
        decrement_desired_capacity: bool = False,
        allow_protected: bool = False,
    ) -> BatchResult:
        """Deregister many instances concurrently, each under the same checks as one.

        Never raises for one instance: each input gets exactly one `InstanceOutcome`, in
        input order (``"deregistered"``, ``"would_deregister"``, ``"refused"`` or
        ``"failed"``, with a typed ``error``). A bad ID fails its own outcome only. An
        instance named twice (as ID and ARN, say) is processed once and each position gets
        that outcome. The pre-flight describes are batched 100 per call across the whole
        fleet, and every call is paced by the client's `RateLimits`.

        Args:
            container_instances: container instance IDs or full ARNs, EC2 or managed instance
                IDs (resolved together first: an unregistered one is its own ``"failed"``
                outcome with `ContainerInstanceNotFoundError`), or `ContainerInstance` models.
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            force: deregister with force (the policy decides). With ``drain``: drain first
                and force only what is left at the deadline (``on_timeout="force"``).
            drain: drain each instance first, as `drain_and_deregister` does: every drain
                pre-flight comes first, then the run rolls, one instance per slot: each is set
                DRAINING, waited for and deregistered while it holds its slot, so at most
                ``concurrency`` instances are DRAINING at once. ``timeout``,
                ``poll_interval`` and ``standalone_tasks`` apply per instance.
            dry_run: make no mutating call; the outcomes are the plan: what would be
                deregistered, what would be refused and why, and the tasks each would affect
                (``outcome.result.tasks``, or the refusal's ``tasks``): listed where the
                counters show tasks, for a forced plan, or when a rule asks for the list; an
                unforced plan of an idle instance costs its describe only.
            concurrency: instances processed at once (an int >= 1); a draining instance
                holds its slot from DRAINING to deregistration, which bounds the capacity a
                rolling run takes away.
            progress: called once per finished instance with an ``ecs_safe.batch.progress``
                event (``container_instance``, ``index``, ``status``, ``done``, ``total``),
                and with each drain poll's event when draining.
            timeout: see `drain_and_deregister` (only with ``drain``).
            poll_interval: see `drain_and_deregister` (only with ``drain``).
            standalone_tasks: see `drain_and_deregister` (only with ``drain``).
            take_over: see `drain_and_deregister` (only with ``drain``).
            steady_timeout: with ``drain``, seconds the steady-state gate may wait before an
                instance is set DRAINING for the services that lost tasks in earlier drains
                of the run to be steady again (`ecs_safe.steady`); once it expires no new
                drain starts and the instances never started fail with `NotStartedError`.
            require_room: see `drain_and_deregister` (only with ``drain``); the whole run's
                tasks are packed onto the instances outside the run at once.
            terminate: terminate each instance's EC2 instance once its own deregistration is
                verified (see `deregister_container_instance`; with ``drain``, protected
                instances are refused before DRAINING).
            decrement_desired_capacity: with ``terminate``, lower the group's desired capacity
                by one, so that the group launches no replacement.
            allow_protected: with ``terminate``, terminate even an instance protected from
                scale-in or with EC2 termination protection (EC2 still refuses the latter: a
                `TerminationError`). The survey is batched across the fleet; a termination
                that fails after the deregistration is a ``"failed"`` outcome with a
                `TerminationError` and the deregistration's ``result``.

        Raises:
            InvalidInputError: the call itself is malformed (not a list, empty, bad options).
        """
        force = check_bool(force, "force")
        asked = _termination_options(terminate, decrement_desired_capacity, allow_protected)
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
                take_over=take_over,
                require_room=require_room,
            ),
            progress=check_progress(progress),
            steady_timeout=check_positive_number(steady_timeout, "steady_timeout"),
        )
        gate = self._opened()
        settings = replace(settings, terminator=await self._terminator(asked))
        return await fleet.deregister_many(
            gate, container_instances, settings, self._drain_poller()
        )

    # ------------------------------------------------------------------ deregister

    async def deregister_container_instance(
        self,
        container_instance: InstanceInput,
        *,
        cluster: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        terminate: bool = False,
        decrement_desired_capacity: bool = False,
        allow_protected: bool = False,
    ) -> DeregistrationResult:
        """Deregister one container instance, if the policy allows it.

        Args:
            container_instance: the container instance ID or full ARN, an EC2 or managed
                instance ID (resolved in the cluster first), or a `ContainerInstance`.
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            force: deregister even with tasks running (they are orphaned; the policy decides
                whether that is acceptable).
            dry_run: decide and log, but make no mutating call (the plan says how the EC2
                instance would be terminated, with ``terminate``).
            terminate: once the deregistration is verified (a describe shows the instance
                INACTIVE or gone), terminate its EC2 instance: TerminateInstanceInAutoScalingGroup
                for an Auto Scaling group member, TerminateInstances otherwise
                (`ecs_safe.termination`). The pre-flight then also reads the group membership
                and protections, and the policy refuses a protected instance
                (`ecs_safe.policy.ProtectTermination`) before any mutating call.
            decrement_desired_capacity: with ``terminate``, lower the group's desired capacity
                by one, so that the group launches no replacement.
            allow_protected: with ``terminate``, terminate even an instance protected from
                scale-in or with EC2 termination protection (EC2 still refuses the latter: a
                `TerminationError`).

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PolicyViolationError: the policy refused (before any mutating call).
            ContainerInstanceNotFoundError: the instance is not in the cluster.
            EcsApiError: a pre-flight call (describe, task listing) failed, with nothing
                mutated, or the deregistration call failed (after retries); ``retryable``
                tells whether trying again later may help.
            TerminationError: (``terminate``) the instance was deregistered, but its EC2
                instance was not terminated; the error's ``result`` is the deregistration.
        """
        cluster = validate_cluster(cluster)
        ref = validate_container_instance(container_instance)
        check_same_cluster(ref, cluster)
        force = check_bool(force, "force")
        dry_run = check_bool(dry_run, "dry_run")
        asked = _termination_options(terminate, decrement_desired_capacity, allow_protected)
        gate = self._opened()
        (ref,) = await self._resolve(gate.calls, [ref], cluster)
        request = Request(ref, cluster, force=force, dry_run=dry_run)
        return await termination.deregister(gate, request, await self._terminator(asked))

    # ------------------------------------------------------------------ reactivate

    async def reactivate(
        self,
        container_instances: Iterable[str],
        *,
        cluster: str | None = None,
        take_over: bool = False,
    ) -> list[ContainerInstance]:
        """Set container instances ACTIVE again: the ``kubectl uncordon`` of ECS.

        UpdateContainerInstancesState with status ACTIVE, 10 instances a call, through the
        same call as a drain's ``on_timeout="reactivate"``. ECS places tasks on them again.
        No policy is consulted, but ownership is (`ecs_safe.ownership`): an instance DRAINING
        under another ecs-safe run's mark, or without any mark (someone else's drain: an
        operator, ECS managed draining, the agent's Spot draining), is refused before any
        change (`PolicyViolationError`, rule ``ownership``) unless ``take_over``. The mark of
        each reactivated instance is removed. Setting an instance that is already ACTIVE
        again is harmless.

        Returns:
            The instances as ECS returned them, in input order.

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PolicyViolationError: an instance is someone else's (rule ``ownership``).
            PartialDrainError: ECS reported some instances in ``failures[]``; the others *are*
                ACTIVE (the error's ``drained`` holds them). It is a
                `ContainerInstanceNotFoundError` (`ecs_safe.errors.DrainNotFoundError`) when
                some are missing.
            EcsApiError: a call failed (after retries); a note names the instances that were
                set ACTIVE by earlier calls.
        """
        cluster = validate_cluster(cluster)
        refs = validate_container_instances(container_instances, cluster=cluster)
        calls = self._opened().calls
        take_over = check_bool(take_over, "take_over")
        for ref in refs:
            calls.check_scope(ref)
        return await _drain.reactivate(calls, refs, cluster, take_over=take_over)

    async def drain_and_wait(
        self,
        container_instance: InstanceInput,
        *,
        cluster: str | None = None,
        # Not asyncio.timeout: at the deadline the drain raises DrainTimeoutError itself.
        timeout: float = _constants.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = _constants.DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        progress: ProgressCallback | None = None,
        on_timeout: _constants.OnTimeout = "raise",
        take_over: bool = False,
        steady: SteadyGate | None = None,
    ) -> ContainerInstance:
        """Drain an instance and wait until no task is left on it, leaving it registered.

        For maintenance (what ``kubectl drain`` does to a node): the steps of
        `drain_and_deregister` without the deregistration. The instance stays DRAINING; set it
        ACTIVE again with `reactivate` when done. Arguments as for `drain_and_deregister`
        (the instance may be an EC2 or managed instance ID, resolved in the cluster first),
        except that ``on_timeout`` is ``"raise"`` or ``"reactivate"`` only: ``"force"``
        would deregister.

        Returns:
            The instance as last described: DRAINING, with no task left.

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PolicyViolationError: refused before DRAINING was set, naming every blocker.
            DrainTimeoutError: tasks were left at the deadline; the instance stays DRAINING.
            ContainerInstanceNotFoundError: the instance is missing or INACTIVE, or someone
                else deregistered it during the drain.
            EcsApiError: a call failed after retries.
        """
        if on_timeout == "force":
            raise InvalidInputError(
                "on_timeout='force' deregisters, and drain_and_wait leaves the instance "
                "registered: pass on_timeout='raise' or 'reactivate' (or use "
                "drain_and_deregister)"
            )

        async def workflow(drain: _DrainCall) -> ContainerInstance:
            return await _drain.drain_and_wait(
                drain.gate,
                drain.ref,
                drain.cluster,
                drain.options,
                drain.progress,
                poller=drain.poller,
                steady=steady,
            )

        return await self._drain_call(
            workflow,
            container_instance,
            cluster=cluster,
            progress=progress,
            timeout=timeout,
            poll_interval=poll_interval,
            on_timeout=on_timeout,
            standalone_tasks=standalone_tasks,
            take_over=take_over,
            require_room=require_room,
        )

    def steady_gate(
        self,
        *,
        cluster: str | None = None,
        steady_timeout: float = _constants.DEFAULT_STEADY_TIMEOUT,
        poll_interval: float = _constants.DEFAULT_POLL_INTERVAL,
        progress: ProgressCallback | None = None,
    ) -> SteadyGate:
        """A steady-state gate for a rolling run of single-instance drains.

        Pass it as ``steady=`` to each `drain_and_deregister` / `drain_and_wait` of the run
        (the CLI's ``ecs-safe drain`` does): each drain then starts only once the services
        the run's earlier drains took tasks from are steady again, the very gate
        `deregister_many` with ``drain`` uses between its waves (`ecs_safe.steady`). Every
        service is surveyed when a drain first touches it: only those steady then are waited
        for later.

        Args:
            cluster: the run's cluster; ``None`` is the default cluster.
            steady_timeout: seconds a drain may wait at the gate; then it closes and every
                drain not started raises `NotStartedError`.
            poll_interval: seconds between the gate's first rounds (they back off).
            progress: called with ``ecs_safe.steady.*`` events.
        """
        return SteadyGate(
            self._opened().calls,
            validate_cluster(cluster),
            timeout=check_positive_number(steady_timeout, "steady_timeout"),
            poll_interval=check_positive_number(poll_interval, "poll_interval"),
            progress=check_progress(progress),
            survey_each=True,
        )

    # ------------------------------------------------------------------ Auto Scaling lifecycle

    async def handle_lifecycle_action(
        self,
        notice: LifecycleActionNotice | Mapping[str, Any] | str | bytes,
        *,
        cluster: str | None = None,
        on_failure: _constants.LifecycleOnFailure = "hold",
        hold_timeout: float | None = None,
        # Not asyncio.timeout: it bounds the drain's wait, which then fails into on_failure.
        timeout: float = _constants.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = _constants.DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        take_over: bool = False,
        progress: ProgressCallback | None = None,
        clock: Clock | None = None,
    ) -> LifecycleActionResult:
        """Handle an Auto Scaling terminate lifecycle action: drain, deregister, then CONTINUE.

        The instance waits in ``Terminating:Wait`` meanwhile: heartbeats
        (RecordLifecycleActionHeartbeat) go every third of the hook's HeartbeatTimeout (read
        with DescribeLifecycleHooks), never past the hook's global limit. The container
        instance (in ``cluster``, or found in any cluster) is drained and deregistered through
        the same workflow and policy as `drain_and_deregister`; once a describe proves it
        INACTIVE or gone, CompleteLifecycleAction CONTINUE lets Auto Scaling terminate it. An
        instance registered nowhere is continued at once. See the docs' Auto Scaling page.

        When the drain cannot finish (refused by the policy, e.g. for a standalone task; timed
        out; a call failed after retries), the ``ecs_safe.lifecycle.alert`` event is logged
        and, per ``on_failure``: ``"hold"`` keeps the instance waiting (heartbeats go on) and
        tries again every minute at most, until it succeeds or the hold's deadline passes
        (then ABANDON, said in the result); ``"continue"`` sends CONTINUE at once.

        Args:
            notice: the lifecycle action: a `LifecycleActionNotice`, or anything
                `parse_notice` reads (EventBridge's event, the hook's SNS notification, an
                SQS body or message).
            cluster: the cluster the instance is in; ``None`` looks in every cluster.
            on_failure: ``"hold"`` or ``"continue"`` (above).
            hold_timeout: seconds ``"hold"`` keeps the instance after the drain failed;
                ``None``: until one heartbeat interval before the hook's global limit.
            timeout: seconds the drain may take once DRAINING (bounded by the global limit).
            poll_interval: as for `drain_and_deregister`.
            standalone_tasks: as for `drain_and_deregister` (``"refuse"`` leads to
                ``on_failure`` when standalone tasks are on the instance).
            require_room: as for `drain_and_deregister`.
            take_over: as for `drain_and_deregister`.
            progress: called with each ``ecs_safe.drain.progress`` event of the drain.
            clock: where the handler's time comes from (`ecs_safe.autoscaling.Clock`); the
                wall clock and the event loop's sleep by default. Tests pass their own.

        Returns:
            A `LifecycleActionResult`: the outcome, the completion sent (and whether a lost
            response was verified), the heartbeats sent, the hold and the alert.

        Raises:
            InvalidInputError: bad arguments, or a notice that is no terminate lifecycle
                action (`NoticeError`), before any network call.
            EcsSafeError: the hook could not be read (DescribeLifecycleHooks), or
                CompleteLifecycleAction failed after retries while the instance is still
                waiting. A failed drain does not raise: it is in the result.
        """
        if not isinstance(notice, LifecycleActionNotice):
            parsed = parse_notice(notice)
            if not isinstance(parsed, LifecycleActionNotice):
                raise NoticeError(
                    f"handle_lifecycle_action takes a terminate lifecycle action, got a "
                    f"{parsed.kind} notice for {parsed.instance_id}",
                    kind="unsupported",
                )
            notice = parsed
        cluster = validate_cluster(cluster)
        settings = _autoscaling.LifecycleSettings(
            cluster=cluster,
            on_failure=check_choice(
                on_failure, "on_failure", _constants.LIFECYCLE_ON_FAILURE_VALUES
            ),
            hold_timeout=(
                None
                if hold_timeout is None
                else check_positive_number(hold_timeout, "hold_timeout")
            ),
            drain=_drain.DrainOptions(
                timeout=timeout,
                poll_interval=poll_interval,
                standalone_tasks=standalone_tasks,
                take_over=take_over,
                require_room=check_bool(require_room, "require_room"),
            ),
            clock=clock if clock is not None else _autoscaling.LoopClock(),
        )
        callback = check_progress(progress)
        gate = self._opened()
        return await _autoscaling.handle_lifecycle_action(
            gate,
            await self._autoscaling_calls(),
            self._drain_poller(),
            notice,
            settings,
            progress=callback,
        )

    # ------------------------------------------------------------------ replace

    async def replace_auto_scaling_group(
        self,
        name: str,
        *,
        cluster: str | None = None,
        wave_size: int = _constants.DEFAULT_WAVE_SIZE,
        surge: bool = False,
        dry_run: bool = False,
        resume: bool = False,
        capacity_timeout: float = _constants.DEFAULT_CAPACITY_TIMEOUT,
        # Not asyncio.timeout: at the deadline the drain raises DrainTimeoutError itself.
        timeout: float = _constants.DEFAULT_TIMEOUT,  # noqa: ASYNC109
        poll_interval: float = _constants.DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        steady_timeout: float = _constants.DEFAULT_STEADY_TIMEOUT,
        allow_protected: bool = False,
        progress: ProgressCallback | None = None,
    ) -> _replace.ReplacementResult:
        """Replace every instance of an Auto Scaling group, wave by wave, never unsafely.

        The safe instance refresh (`ecs_safe.replace`; the docs' replace page): the group's
        registered members are drained, deregistered and terminated ``wave_size`` at a time
        through the same checks as ``deregister_many(drain=True)`` (policy, disruption budgets
        judged per wave, the steady-state gate between waves), each wave starting once the
        group is back at capacity (its new instances ACTIVE in the cluster); then the group's
        saved sizes are restored. Every step is in the audit log: a run killed midway is
        resumed by a client with its ``run_id`` on the same ``audit_log`` and
        ``resume=True``, never started over.

        Args:
            name: the Auto Scaling group's name.
            cluster: the cluster its instances are registered in; ``None`` is the default.
            wave_size: old instances drained at once (an int >= 1).
            surge: before the first wave, raise desired capacity by one wave (and the
                maximum with it when needed) and wait for the new instances; the last wave's
                terminations give it back.
            dry_run: plan only: the waves (each with its drain plan as things stand), the
                surge and the restore; nothing is changed and nothing is written.
            resume: carry on the replacement this client's run started (open the client with
                the crashed run's ``run_id`` and ``audit_log``).
            capacity_timeout: seconds to wait, each time, for the group to be back at
                capacity; then the run stops with `ecs_safe.replace.CapacityTimeoutError`.
            timeout: seconds each instance may take to drain (see `drain_and_deregister`).
            poll_interval: the longest wait between two looks at a drain or at the group.
            standalone_tasks: see `drain_and_deregister`.
            require_room: see `drain_and_deregister`.
            steady_timeout: seconds the steady-state gate waits before each drain.
            allow_protected: terminate even instances protected from scale-in or with EC2
                termination protection (the policy's ``termination-protection`` rule refuses
                them otherwise, and the wave stops before anything changes).
            progress: called with ``ecs_safe.replace.*`` events and each drain's events.

        Returns:
            The `ecs_safe.replace.ReplacementResult`: ``"planned"``, ``"replaced"`` or
            ``"stopped"`` (its ``error`` says why; a stopped run leaves the group's sizes as
            they are and can be resumed).

        Raises:
            InvalidInputError: bad arguments (before any network call); ``resume`` without a
                started run in the log; a new run over an unfinished one (the message names
                the run to resume).
            AutoScalingGroupNotFoundError: no group of that name.
            EcsApiError: a read of the group or the cluster failed before any change.
        """
        group = check_name(name, "name")
        if group is None:
            raise InvalidInputError("name must be an Auto Scaling group name, got None")
        settings = _replace.ReplaceSettings(
            group=group,
            cluster=validate_cluster(cluster),
            wave_size=fleet.check_concurrency(wave_size),
            surge=check_bool(surge, "surge"),
            capacity_timeout=check_positive_number(capacity_timeout, "capacity_timeout"),
            poll_interval=check_positive_number(poll_interval, "poll_interval"),
            dry_run=check_bool(dry_run, "dry_run"),
            resume=check_bool(resume, "resume"),
            steady_timeout=check_positive_number(steady_timeout, "steady_timeout"),
            progress=check_progress(progress),
            allow_protected=check_bool(allow_protected, "allow_protected"),
        )
        options = _drain.DrainOptions(
            timeout=timeout,
            poll_interval=poll_interval,
            standalone_tasks=standalone_tasks,
            require_room=check_bool(require_room, "require_room"),
        )
        gate = self._opened()
        return await _replace.replace_group(
            gate,
            self._drain_poller(),
            settings,
            options,
            autoscaling=await self._autoscaling_calls(),
            ec2=await self._ec2_calls(),
        )

    # ------------------------------------------------------------------ the event worker

    def _event_worker(
        self,
        settings: _worker.WorkerSettings,
        *,
        on_failure: _constants.LifecycleOnFailure,
        on_outcome: ProgressCallback | None,
        queue: QueueCalls | None = None,
    ) -> _worker.Worker:
        """A `Worker` over this client's gate, poller and record, with its lifecycle path."""
        gate = self._opened()
        if self._ledger is None:
            self._ledger = _worker.Ledger.from_audit_log(self._audit)

        async def lifecycle(notice: LifecycleActionNotice, resumed: bool) -> LifecycleActionResult:
            # A resumed event's drain is under the cut handling's mark (another run's, after a
            # restart): this handling carries it on.
            return await self.handle_lifecycle_action(
                notice, cluster=settings.cluster, on_failure=on_failure, take_over=resumed
            )

        return _worker.Worker(
            gate,
            self._drain_poller(),
            lifecycle,
            settings,
            self._ledger,
            queue=queue,
            on_outcome=on_outcome,
        )

    async def watch(
        self,
        queue_url: str,
        *,
        cluster: str | None = None,
        concurrency: int = _constants.WORKER_CONCURRENCY,
        stop: asyncio.Event | None = None,
        on_outcome: ProgressCallback | None = None,
        on_failure: _constants.LifecycleOnFailure = "hold",
        spot_standalone_tasks: _worker.SpotStandaloneTasks = "wait",
        rebalance: _worker.Rebalance = "log",
        grace_period: float = _constants.WORKER_GRACE_PERIOD,
        visibility_timeout: int = _constants.WORKER_VISIBILITY_TIMEOUT,
        wait_seconds: int = _constants.WORKER_WAIT_SECONDS,
        retry_delay: int = _constants.WORKER_RETRY_DELAY,
        max_events: int | None = None,
    ) -> _worker.WatchSummary:
        """Run the event worker on an SQS queue until ``stop`` is set (`ecs_safe.worker`).

        Long-polls ``queue_url`` (ReceiveMessage, ``wait_seconds``) for the events an
        EventBridge rule (or a lifecycle hook's SNS topic) sends it, and handles each once:
        terminate lifecycle actions through `handle_lifecycle_action`, Spot interruption
        warnings on the fast path (DRAINING at once, deregistered only if empty before the
        two minutes end), rebalance recommendations per ``rebalance``. A message is deleted
        only after its outcome is recorded (in the audit log, when the client has one: give
        it ``audit_log=`` so that a restarted worker recognises what it already did).

        Args:
            queue_url: the SQS queue's URL.
            cluster: the cluster the instances are in; ``None``: each is found over every
                cluster of the account and Region.
            concurrency: events in flight at once, all under this client's rate limits.
            stop: set it to stop: receiving stops at once, the events in flight get
                ``grace_period`` seconds to finish, then their messages are handed back.
                Without it the worker runs until cancelled (which hands back at once).
            on_outcome: called with each event's outcome (the fields of an `EventOutcome`),
                sync or async.
            on_failure: the lifecycle path's choice when a drain cannot finish
                (`handle_lifecycle_action`).
            spot_standalone_tasks: ``"wait"`` (until the notice's end) or ``"stop"``.
            rebalance: ``"log"`` (the default: ECS does nothing either) or ``"drain"``.
            grace_period: seconds the events in flight may take after ``stop``.
            visibility_timeout: seconds a received message stays hidden (extended while in
                flight).
            wait_seconds: ReceiveMessage's long-poll wait, 0-20.
            retry_delay: seconds a message whose event failed retryably stays hidden.
            max_events: stop by itself after this many events ended (tests, benchmarks).

        Returns:
            The counts of what was done.

        Raises:
            InvalidInputError: bad arguments (before any request).
            EcsApiError: the queue cannot be read (no such queue, access denied).
        """
        check_queue_url(queue_url, "queue_url")
        if stop is not None and not isinstance(stop, asyncio.Event):
            raise InvalidInputError(f"stop must be an asyncio.Event or None, got {stop!r}")
        settings = _worker.WorkerSettings(
            cluster=validate_cluster(cluster),
            concurrency=concurrency,
            wait_seconds=wait_seconds,
            visibility_timeout=visibility_timeout,
            grace_period=grace_period,
            retry_delay=retry_delay,
            spot_standalone_tasks=spot_standalone_tasks,
            rebalance=rebalance,
            max_events=max_events,
        )
        worker = self._event_worker(
            settings,
            on_failure=on_failure,
            on_outcome=check_progress(on_outcome),
            queue=await self._queue_calls(),
        )
        return await worker.run(queue_url, stop or asyncio.Event())

    async def handle_event(
        self,
        event: str | Mapping[str, Any],
        *,
        cluster: str | None = None,
        on_failure: _constants.LifecycleOnFailure = "hold",
        spot_standalone_tasks: _worker.SpotStandaloneTasks = "wait",
        rebalance: _worker.Rebalance = "log",
        message_id: str | None = None,
        deadline: float | None = None,
    ) -> _worker.EventOutcome:
        """Handle one event, as the worker handles a message (the Lambda entry point's way).

        ``event`` is an SQS message body or an EventBridge event (either shape, SNS-wrapped
        too). Recognised duplicates (the client's record, `ecs_safe.worker.Ledger`) do
        nothing; nothing is deleted (there is no message here). ``deadline`` (the event loop's
        clock, `asyncio.get_running_loop().time()`) also bounds the Spot path's wait. Options
        as for `watch`.

        Raises:
            InvalidInputError: bad arguments.
            EcsSafeError: the outcome could not be recorded (code ``AuditLog``).
        """
        settings = _worker.WorkerSettings(
            cluster=validate_cluster(cluster),
            spot_standalone_tasks=spot_standalone_tasks,
            rebalance=rebalance,
        )
        worker = self._event_worker(settings, on_failure=on_failure, on_outcome=None)
        outcome = await worker.handle(event, message_id=message_id, deadline=deadline)
        await worker.announce(outcome)
        return outcome
