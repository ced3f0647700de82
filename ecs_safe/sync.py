"""`SyncEcsSafeClient`: the blocking client, for scripts and Jupyter notebooks.

The sync client holds no logic of its own. It owns one event loop running on one background
daemon thread for its whole lifetime, creates one `EcsSafeClient` on that loop, and hands every
call to it with `asyncio.run_coroutine_threadsafe`, blocking until the answer arrives::

    with SyncEcsSafeClient(region_name="eu-west-1") as ecs:
        result = ecs.deregister_container_instance("0123abcd...", cluster="prod")

Because the calling thread only waits, this works the same in a plain script and inside a
running event loop (a Jupyter cell, a coroutine, an async framework's thread): no
``nest_asyncio``, no ``asyncio.run`` per call. Things worth knowing:

- The client is open as soon as it is constructed, so a notebook can keep one across cells
  (``ecs = SyncEcsSafeClient(...)`` … ``ecs.close()``); ``with`` closes it for you. A client
  that is never closed is closed when it is garbage-collected, or at interpreter exit.
- Errors are re-raised as they were raised on the loop: the same exception object, of its own
  type (`PolicyViolationError`, `InvalidInputError`, ...).
- Ctrl-C (`KeyboardInterrupt`) while a call is waiting cancels that call on the loop, waits
  for it to unwind (at most 30 s, for a wedged loop; a second Ctrl-C stops waiting), then
  re-raises `KeyboardInterrupt`. A deregistration interrupted this way **may or may not
  have reached ECS** (the request may already have been sent): describe the instance to find
  out.
- ``progress`` callbacks run on the client's loop thread, not on the caller's thread. Plain and
  async callables both work; a plain one should return quickly (it holds up the loop) and must
  not call this client's methods (they would wait for themselves; that raises
  `ClientStateError`).
- One client may be shared by several threads: their calls run concurrently on its loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, ParamSpec, Self, TypeVar

from aiobotocore.session import AioSession

from ecs_safe._constants import (
    DEFAULT_CAPACITY_TIMEOUT,
    DEFAULT_CONCURRENCY,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_STEADY_TIMEOUT,
    DEFAULT_TIMEOUT,
    DEFAULT_WAVE_SIZE,
    LifecycleOnFailure,
    OnTimeout,
    StandaloneTasks,
)
from ecs_safe._progress import ProgressCallback
from ecs_safe._targets import Resolved
from ecs_safe._validation import InstanceInput
from ecs_safe.audit import AuditLog
from ecs_safe.autoscaling import Clock, LifecycleActionResult
from ecs_safe.client import EcsSafeClient
from ecs_safe.errors import ClientStateError
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.notices import LifecycleActionNotice
from ecs_safe.policy import Policy
from ecs_safe.ratelimit import RateLimits
from ecs_safe.replace import ReplacementResult
from ecs_safe.results import BatchResult, DeregistrationResult
from ecs_safe.retry import RetryConfig
from ecs_safe.worker import EventOutcome, Rebalance, SpotStandaloneTasks

__all__ = ["SyncEcsSafeClient"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

# After Ctrl-C, the longest wait for the cancelled call to unwind (close its connection, log)
# before re-raising anyway. The wait ends as soon as the call has unwound (milliseconds, even
# on a loaded machine), so the bound only matters for a wedged loop (a progress callback that
# never returns); it is generous because a loaded machine can take seconds to run the
# cancellation, and re-raising before it did would let the call go on behind the caller's back.
# A second Ctrl-C ends the wait at once.
_CANCEL_GRACE_S = 30.0
# Bound on closing the aiobotocore client and on joining the thread, so that a wedged loop (a
# progress callback that never returns) cannot hang close() or the interpreter's exit. Like the
# grace above, it ends as soon as the work is done and is generous for a loaded machine.
_SHUTDOWN_TIMEOUT_S = 30.0
# Waiting polls at this interval: on Windows a blocking lock acquire cannot be interrupted, so
# without it Ctrl-C would only be seen once the call had finished.
_POLL_S = 0.25


class _Call(Generic[_T]):
    """A call running on the loop: its future, and an event set once its coroutine unwound."""

    def __init__(self, future: concurrent.futures.Future[_T], unwound: threading.Event) -> None:
        self.future = future
        self.unwound = unwound

    def wait(self) -> _T:
        """Block until the call is done; its result, or its exception re-raised as it is."""
        future = self.future
        try:
            while not future.done():
                concurrent.futures.wait((future,), timeout=_POLL_S)
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            # Polled like the wait above, so that a second Ctrl-C ends it on every platform.
            deadline = time.monotonic() + _CANCEL_GRACE_S
            while not self.unwound.wait(_POLL_S) and time.monotonic() < deadline:
                pass
            raise
        except concurrent.futures.CancelledError:
            # Not our Ctrl-C (handled above): the loop was stopped under the call.
            raise ClientStateError(
                "the SyncEcsSafeClient was closed while this call was in flight"
            ) from None


class _LoopThread:
    """One event loop, running forever on one daemon thread, until `stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # A daemon thread: a client nobody closed must never keep the interpreter alive.
        self.thread = threading.Thread(target=self._serve, name="ecs-safe-sync-loop", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # The same clean-up as asyncio.run(): nothing left pending, the executor's threads
            # joined (aiohttp resolves names on it), then the loop closed.
            try:
                _cancel_all_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(
        self, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _Call[_T]:
        """Start ``fn(*args, **kwargs)`` on the loop; `wait` for it."""
        if self.on_loop_thread():
            raise ClientStateError(
                "a SyncEcsSafeClient cannot be called from its own loop thread (for example "
                "from a progress callback): the call would wait for itself forever"
            )
        unwound = threading.Event()
        # The coroutine is created on the loop, inside _call, so a call that never starts
        # leaves no never-awaited coroutine behind.
        future = asyncio.run_coroutine_threadsafe(
            _call(lambda: fn(*args, **kwargs), unwound), self.loop
        )
        return _Call(future, unwound)

    def run(self, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``fn(*args, **kwargs)`` on the loop and block until it is done."""
        return self.submit(fn, *args, **kwargs).wait()

    def stop(self, client: EcsSafeClient | None) -> None:
        """Close ``client`` on the loop, stop the loop and join the thread (bounded waits)."""
        loop = self.loop
        if loop.is_closed():
            return
        if self.on_loop_thread():
            # Garbage collection or close() on the loop thread itself: blocking here would wait
            # for ourselves, so close asynchronously and let the loop stop itself afterwards.
            task = loop.create_task(_close_then_stop(client, loop))
            _PENDING_STOPS.add(task)
            task.add_done_callback(_PENDING_STOPS.discard)
            return
        try:
            if client is not None and self.thread.is_alive():
                closing = asyncio.run_coroutine_threadsafe(client.close(), loop)
                try:
                    closing.result(timeout=_SHUTDOWN_TIMEOUT_S)
                except TimeoutError:
                    closing.cancel()
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.stop)
            self.thread.join(_SHUTDOWN_TIMEOUT_S)


# Keeps the tasks of loop-thread shutdowns alive until they finish (the loop holds only weak
# references to its tasks).
_PENDING_STOPS: set[asyncio.Task[None]] = set()


async def _call(factory: Callable[[], Awaitable[_T]], unwound: threading.Event) -> _T:
    try:
        return await factory()
    finally:
        unwound.set()


async def _close_then_stop(client: EcsSafeClient | None, loop: asyncio.AbstractEventLoop) -> None:
    try:
        if client is not None:
            await client.close()
    finally:
        loop.stop()


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


class SyncEcsSafeClient:
    """The blocking ecs-safe client: `EcsSafeClient`'s methods, for code that is not async.

    It works in plain scripts and inside a running event loop (a Jupyter cell, a coroutine)::

        with SyncEcsSafeClient(region_name="eu-west-1") as ecs:
            result = ecs.deregister_container_instance("0123abcd...", cluster="prod")

    Every call is delegated to one `EcsSafeClient` that runs on an event loop owned by this
    client, on a background daemon thread, for its whole lifetime. The client is open once
    constructed; ``with`` (or `close`) shuts it down. See the module documentation for Ctrl-C,
    progress callbacks and threads.

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
        audit_log: a path or an `AuditLog`: see `EcsSafeClient`. Records are written on the
            client's loop thread, each before the call that made it returns.
        run_id: the run ID this client marks the instances it drains with: see `EcsSafeClient`.
        task_events_queue: an SQS queue of ECS Task State Change events that wakes the drain
            poller: see `EcsSafeClient`.

    Raises:
        InvalidInputError: a bad argument (the same checks as `EcsSafeClient`).
    """

    # The constructor and every method repeat `EcsSafeClient`'s signature on purpose (the
    # duplicates tool lists them): a blocking caller, mypy and the docs must see the real
    # parameters, and each body only hands its arguments to the async client.
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
        async def open_client() -> EcsSafeClient:
            # Created and entered on the loop: an aiobotocore client is bound to its loop.
            client = EcsSafeClient(
                region_name=region_name,
                endpoint_url=endpoint_url,
                profile_name=profile_name,
                session=session,
                policy=policy,
                retry=retry,
                rate_limits=rate_limits,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                audit_log=audit_log,
                run_id=run_id,
                task_events_queue=task_events_queue,
            )
            return await client.__aenter__()

        self._lock = threading.Lock()
        self._closed = False
        runner = _LoopThread()
        try:
            client = runner.run(open_client)
        except BaseException:
            runner.stop(None)
            raise
        self._runner = runner
        self._client = client
        # Closes a client that is garbage-collected or still open at interpreter exit. It must
        # not reference self; calling it (close()) runs it at most once.
        self._finalizer = weakref.finalize(self, runner.stop, client)

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the async client on its loop, stop the loop and join its thread. Idempotent.

        Calls still in flight from other threads are ended with `ClientStateError`.
        """
        with self._lock:
            self._closed = True
        self._finalizer()

    @property
    def closed(self) -> bool:
        """True once `close` has been called (or the ``with`` block has ended)."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientStateError(
                "this SyncEcsSafeClient is closed; create a new one (clients are not reusable)"
            )

    def _run(
        self, fn: Callable[_P, Coroutine[Any, Any, _T]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run the async client's ``fn(*args, **kwargs)`` on the loop; block for its result."""
        # Checked under the lock so that no call is submitted to a loop that close() is stopping
        # (it would never run, and its caller would wait forever).
        with self._lock:
            self._check_open()
            call = self._runner.submit(fn, *args, **kwargs)
        # Waited for outside the lock: calls from several threads run concurrently.
        return call.wait()

    def deregister_container_instance(
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

        See `EcsSafeClient.deregister_container_instance`. Interrupted with Ctrl-C, the call
        is cancelled; the deregistration may or may not have reached ECS.

        Args:
            container_instance: the container instance ID or full ARN.
            cluster: the cluster's short name or ARN; ``None`` is the default cluster.
            force: deregister even with tasks running (they are orphaned; the policy decides
                whether that is acceptable).
            dry_run: decide and log, but make no mutating call.
            terminate: terminate the EC2 instance once the deregistration is verified.
            decrement_desired_capacity: with ``terminate``, lower the group's desired capacity.
            allow_protected: with ``terminate``, terminate a protected instance too.

        Raises:
            InvalidInputError: bad arguments (before any network call).
            PolicyViolationError: the policy refused (before any mutating call).
            ContainerInstanceNotFoundError: the instance is not in the cluster.
            EcsApiError: the deregistration call failed (after retries).
            TerminationError: deregistered, but the EC2 instance was not terminated.
        """
        return self._run(
            self._client.deregister_container_instance,
            container_instance,
            cluster=cluster,
            force=force,
            dry_run=dry_run,
            terminate=terminate,
            decrement_desired_capacity=decrement_desired_capacity,
            allow_protected=allow_protected,
        )

    def list_container_instances(
        self,
        *,
        cluster: str | None = None,
        filter: str | None = None,
        status: str | None = None,
        auto_scaling_group: str | None = None,
        on_unregistered: Callable[[list[str]], object] | None = None,
    ) -> list[ContainerInstance]:
        """Every container instance of a cluster (every page), described 100 a call.

        See `EcsSafeClient.list_container_instances` (``filter`` is ECS's cluster query
        language; ``auto_scaling_group`` narrows to that group's registered members, and
        ``on_unregistered`` is called with the members not registered in the cluster).
        """
        return self._run(
            self._client.list_container_instances,
            cluster=cluster,
            filter=filter,
            status=status,
            auto_scaling_group=auto_scaling_group,
            on_unregistered=on_unregistered,
        )

    def resolve_container_instances(
        self, container_instances: Iterable[InstanceInput], *, cluster: str | None = None
    ) -> list[Resolved]:
        """How each input names a container instance of ``cluster``, in input order.

        See `EcsSafeClient.resolve_container_instances`: one `ecs_safe._targets.Resolved` per
        input; EC2 and managed instance IDs are looked up together, errors are values.
        """
        return self._run(
            self._client.resolve_container_instances, container_instances, cluster=cluster
        )

    def locate_container_instances(
        self, ec2_instance_ids: Iterable[str]
    ) -> dict[str, ContainerInstance]:
        """Which cluster each EC2 (or ``mi-``) instance is registered in, keyed by the ID given.

        See `EcsSafeClient.locate_container_instances`; IDs found nowhere are absent.
        """
        return self._run(self._client.locate_container_instances, ec2_instance_ids)

    def describe_container_instances(
        self, container_instances: Iterable[InstanceInput], *, cluster: str | None = None
    ) -> list[ContainerInstance]:
        """Describe container instances (batched 100 per call), in input order.

        See `EcsSafeClient.describe_container_instances`.

        Raises:
            ContainerInstanceNotFoundError: some instances are reported missing; its
                ``container_instances`` names every one of them.
        """
        return self._run(
            self._client.describe_container_instances, container_instances, cluster=cluster
        )

    def list_tasks(
        self, container_instance: InstanceInput, *, cluster: str | None = None
    ) -> list[Task]:
        """Every task on the instance whose ``lastStatus`` is not STOPPED, classified.

        See `EcsSafeClient.list_tasks`.
        """
        return self._run(self._client.list_tasks, container_instance, cluster=cluster)

    def drain(
        self,
        container_instances: Iterable[InstanceInput],
        *,
        cluster: str | None = None,
        take_over: bool = False,
    ) -> list[ContainerInstance]:
        """Set container instances to DRAINING (batched 10 per call).

        See `EcsSafeClient.drain`. Failures the service reports are raised as typed errors,
        never dropped.
        """
        return self._run(
            self._client.drain, container_instances, cluster=cluster, take_over=take_over
        )

    def drain_and_deregister(
        self,
        container_instance: InstanceInput,
        *,
        cluster: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_timeout: OnTimeout = "raise",
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        progress: ProgressCallback | None = None,
        take_over: bool = False,
        terminate: bool = False,
        decrement_desired_capacity: bool = False,
        allow_protected: bool = False,
    ) -> DeregistrationResult:
        """Drain an instance, wait until no task is left on it, then deregister it.

        See `EcsSafeClient.drain_and_deregister`. ``progress`` runs on the client's loop
        thread (plain and async callables both work). Interrupted with Ctrl-C, the wait is
        cancelled and the instance is left as it was at that moment (possibly DRAINING, and
        possibly already deregistered).

        Raises:
            PolicyViolationError: refused (for example standalone tasks with
                ``standalone_tasks="refuse"``), before DRAINING is set.
            DrainTimeoutError: tasks were left at the deadline (``on_timeout="raise"`` or
                ``"reactivate"``).
            TerminationError: (``terminate``) deregistered, but the EC2 instance was not
                terminated.
        """
        return self._run(
            self._client.drain_and_deregister,
            container_instance,
            cluster=cluster,
            timeout=timeout,
            poll_interval=poll_interval,
            on_timeout=on_timeout,
            standalone_tasks=standalone_tasks,
            require_room=require_room,
            progress=progress,
            take_over=take_over,
            terminate=terminate,
            decrement_desired_capacity=decrement_desired_capacity,
            allow_protected=allow_protected,
        )

    def deregister_many(
        self,
        container_instances: Iterable[InstanceInput],
        *,
        cluster: str | None = None,
        force: bool = False,
        drain: bool = False,
        dry_run: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        take_over: bool = False,
        steady_timeout: float = DEFAULT_STEADY_TIMEOUT,
        require_room: bool = True,
        terminate: bool = False,
        decrement_desired_capacity: bool = False,
        allow_protected: bool = False,
    ) -> BatchResult:
        """Deregister many instances concurrently, each under the same checks as one.

        See `EcsSafeClient.deregister_many`. One instance's failure never stops the others;
        the `BatchResult` holds one outcome per instance, in input order; with ``dry_run``
        it is the plan. ``progress`` runs on the client's loop thread (plain and async
        callables both work); ``timeout``, ``poll_interval`` and ``standalone_tasks`` apply
        per instance, with ``drain`` only; with ``terminate``, each EC2 instance is terminated
        once its own deregistration is verified.

        Raises:
            InvalidInputError: the call itself is malformed (not a list, empty, bad options).
        """
        return self._run(
            self._client.deregister_many,
            container_instances,
            cluster=cluster,
            force=force,
            drain=drain,
            dry_run=dry_run,
            concurrency=concurrency,
            progress=progress,
            timeout=timeout,
            poll_interval=poll_interval,
            standalone_tasks=standalone_tasks,
            take_over=take_over,
            steady_timeout=steady_timeout,
            require_room=require_room,
            terminate=terminate,
            decrement_desired_capacity=decrement_desired_capacity,
            allow_protected=allow_protected,
        )

    def reactivate(
        self,
        container_instances: Iterable[str],
        *,
        cluster: str | None = None,
        take_over: bool = False,
    ) -> list[ContainerInstance]:
        """Set container instances ACTIVE again (batched 10 per call): ``kubectl uncordon``.

        See `EcsSafeClient.reactivate`: someone else's DRAINING instance is refused unless
        ``take_over``; failures the service reports are raised as typed errors, never dropped.
        """
        return self._run(
            self._client.reactivate, container_instances, cluster=cluster, take_over=take_over
        )

    def drain_and_wait(
        self,
        container_instance: InstanceInput,
        *,
        cluster: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        progress: ProgressCallback | None = None,
        on_timeout: OnTimeout = "raise",
        take_over: bool = False,
    ) -> ContainerInstance:
        """Drain an instance and wait until no task is left on it, leaving it registered.

        See `EcsSafeClient.drain_and_wait`; set it ACTIVE again with `reactivate` when done.
        """
        return self._run(
            self._client.drain_and_wait,
            container_instance,
            cluster=cluster,
            timeout=timeout,
            poll_interval=poll_interval,
            standalone_tasks=standalone_tasks,
            require_room=require_room,
            progress=progress,
            on_timeout=on_timeout,
            take_over=take_over,
        )

    # ------------------------------------------------------------------ Auto Scaling lifecycle

    def handle_lifecycle_action(
        self,
        notice: LifecycleActionNotice | Mapping[str, Any] | str | bytes,
        *,
        cluster: str | None = None,
        on_failure: LifecycleOnFailure = "hold",
        hold_timeout: float | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        take_over: bool = False,
        progress: ProgressCallback | None = None,
        clock: Clock | None = None,
    ) -> LifecycleActionResult:
        """Handle an Auto Scaling terminate lifecycle action: drain, deregister, then CONTINUE.

        See `EcsSafeClient.handle_lifecycle_action`: heartbeats keep the instance in
        ``Terminating:Wait`` while it drains; a drain that cannot finish is held or continued
        per ``on_failure``, and the result says which. ``clock`` and ``progress`` run on the
        client's loop thread.
        """
        return self._run(
            self._client.handle_lifecycle_action,
            notice,
            cluster=cluster,
            on_failure=on_failure,
            hold_timeout=hold_timeout,
            timeout=timeout,
            poll_interval=poll_interval,
            standalone_tasks=standalone_tasks,
            require_room=require_room,
            take_over=take_over,
            progress=progress,
            clock=clock,
        )

    def replace_auto_scaling_group(
        self,
        name: str,
        *,
        cluster: str | None = None,
        wave_size: int = DEFAULT_WAVE_SIZE,
        surge: bool = False,
        dry_run: bool = False,
        resume: bool = False,
        capacity_timeout: float = DEFAULT_CAPACITY_TIMEOUT,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        standalone_tasks: StandaloneTasks = "refuse",
        require_room: bool = True,
        steady_timeout: float = DEFAULT_STEADY_TIMEOUT,
        allow_protected: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ReplacementResult:
        """Replace every instance of an Auto Scaling group, wave by wave, never unsafely.

        See `EcsSafeClient.replace_auto_scaling_group`: a stopped run is resumed by a client
        opened with its ``run_id`` on the same ``audit_log``, with ``resume=True``.
        """
        return self._run(
            self._client.replace_auto_scaling_group,
            name,
            cluster=cluster,
            wave_size=wave_size,
            surge=surge,
            dry_run=dry_run,
            resume=resume,
            capacity_timeout=capacity_timeout,
            timeout=timeout,
            poll_interval=poll_interval,
            standalone_tasks=standalone_tasks,
            require_room=require_room,
            steady_timeout=steady_timeout,
            allow_protected=allow_protected,
            progress=progress,
        )

    # ------------------------------------------------------------------ the event worker

    def handle_event(
        self,
        event: str | Mapping[str, Any],
        *,
        cluster: str | None = None,
        on_failure: LifecycleOnFailure = "hold",
        spot_standalone_tasks: SpotStandaloneTasks = "wait",
        rebalance: Rebalance = "log",
        message_id: str | None = None,
    ) -> EventOutcome:
        """Handle one lifecycle, Spot or rebalance event, as the event worker would.

        See `EcsSafeClient.handle_event`: recognised duplicates do nothing. The worker itself
        (`EcsSafeClient.watch`) runs until stopped and belongs in an async program or the CLI
        (``ecs-safe watch``), not behind a blocking call.
        """
        return self._run(
            self._client.handle_event,
            event,
            cluster=cluster,
            on_failure=on_failure,
            spot_standalone_tasks=spot_standalone_tasks,
            rebalance=rebalance,
            message_id=message_id,
        )
