"""The server: moto's ECS and EC2 on loopback in a thread, behind LocalEcs's middleware."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Self, TypedDict

from ecs_safe.local import serializing, tasks
from ecs_safe.local.autoscaling import AutoScalingSeeding
from ecs_safe.local.events import EventQueues
from ecs_safe.local.instances import ContainerInstanceModel
from ecs_safe.local.lifecycle import LifecycleAction, LifecycleModel
from ecs_safe.local.names import last_segment
from ecs_safe.local.scaling import GroupModel
from ecs_safe.local.scheduler import SchedulerError, ServiceScheduler
from ecs_safe.local.state_lock import StateLock
from ecs_safe.local.traffic import (
    INTERNAL_HEADER,
    SERVICES,
    Fault,
    Handler,
    Traffic,
    TrafficMiddleware,
    check_operation,
)

if TYPE_CHECKING:
    from types import TracebackType

    from aiobotocore.session import AioSession
    from moto.autoscaling.models import AutoScalingBackend
    from moto.ecs.models import EC2ContainerServiceBackend
    from werkzeug.serving import BaseWSGIServer

__all__ = ["ClientKwargs", "LocalEcs", "LocalEcsUnavailableError"]

#: The access key ID every `LocalEcs` session uses; moto accepts any credentials.
DUMMY_ACCESS_KEY_ID: Final = "testing"
#: The secret access key every `LocalEcs` session uses.
DUMMY_SECRET_ACCESS_KEY: Final = "testing"  # noqa: S105  (a placeholder moto accepts)

# moto maps any credentials to its default account; the events name it (no moto import here).
_MOTO_ACCOUNT_ID: Final = "123456789012"
_INSTALL_HINT: Final = "LocalEcs needs moto's server mode: pip install 'ecs-safe[local]'"
_HOST: Final = "127.0.0.1"


class LocalEcsUnavailableError(ImportError):
    """moto's server mode is not installed: ``pip install 'ecs-safe[local]'``."""


class ClientKwargs(TypedDict):
    """Keyword arguments that point an ecs-safe client at a `LocalEcs`."""

    endpoint_url: str
    """The local endpoint, e.g. ``http://127.0.0.1:54321``."""
    region_name: str
    """The Region the `LocalEcs` serves."""
    session: AioSession
    """A fresh aiobotocore session holding the dummy credentials."""


class LocalEcs(AutoScalingSeeding):
    """An ECS-compatible endpoint on loopback, served in-process by moto.

    Use it as ``with LocalEcs() as local:`` or ``async with LocalEcs() as local:`` (or call
    `start` and `stop`). While it runs it offers the endpoint (`endpoint_url`, `region_name`,
    `session`, `client_kwargs`), seeding helpers (`create_cluster`, `register_instances`,
    `create_service`, `start_service_task`, `start_standalone_task`, ...), simulation of task
    states (`set_task_transitions`, `set_task_status`), ECS's service scheduler for the
    services that opt in (`scheduler`), fault injection (`inject_fault`) and a count of the
    requests (ECS, Auto Scaling, EC2, SQS) the server received (`calls`, `call_log`,
    `service_call_log`).

    Args:
        region_name: The Region the seeding helpers use and `client_kwargs` names.
        port: The loopback port to listen on; 0 picks a free one.
        freeze_tasks: Keep each task's ``lastStatus`` where it is (the default), instead of
            moto's habit of moving it one step towards STOPPED on every DescribeTasks call.
            `reset` returns to this setting.
        report_inactive: Describe a deregistered container instance as INACTIVE (as ECS does
            for a while after deregistration) until `reset` (the default); False gives moto's
            MISSING failure instead.
        scheduler_interval: Run the service scheduler's pass every this many seconds in the
            background while serving (`ServiceScheduler.start`); None (the default) leaves it
            to `ServiceScheduler.step`/`settle`, or a later `scheduler.start()`. Either way the
            scheduler acts only on the services it manages (``create_service(...,
            scheduler=True)``, `ServiceScheduler.manage`, `ServiceScheduler.manage_cluster`).
    """

    def __init__(
        self,
        *,
        region_name: str = "us-east-1",
        port: int = 0,
        freeze_tasks: bool = True,
        report_inactive: bool = True,
        scheduler_interval: float | None = None,
    ) -> None:
        if not region_name:
            msg = "region_name must be a Region name such as 'us-east-1'"
            raise ValueError(msg)
        if not 0 <= port <= 65535:
            msg = f"port must be between 0 (any free port) and 65535, not {port}"
            raise ValueError(msg)
        if scheduler_interval is not None and scheduler_interval <= 0:
            msg = (
                f"scheduler_interval must be a positive number of seconds, not {scheduler_interval}"
            )
            raise ValueError(msg)
        self._region_name = region_name
        self._port = port
        self._scheduler_interval = scheduler_interval
        # Requests hold it shared; the scheduler's passes and direct backend writes, exclusive.
        self._state = StateLock()
        self._events = EventQueues(
            lambda: self._client("sqs"), account=_MOTO_ACCOUNT_ID, region=region_name
        )
        self._scheduler = ServiceScheduler(
            self._ecs_backend, self._state, on_events=self._events.tasks_stopped
        )
        self._freeze_tasks = freeze_tasks
        self._tasks_frozen = False
        self._lifecycle = threading.Lock()
        self._clients_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._endpoint_url: str | None = None
        # botocore clients are generated at runtime, so they are typed as Any.
        self._clients: dict[str, Any] = {}
        self._traffic = Traffic()
        self._lifecycle_actions = LifecycleModel(
            # The end of a wait terminates the instance as Auto Scaling does.
            self.terminate_instance,
            on_begin=self._lifecycle_action_began,
        )
        self._groups = GroupModel(
            self._autoscaling_backend,
            self._lifecycle_actions,
            exclusive=self._state.exclusive,
            leave=self._leave_clusters,
            register=self._registered,
            clusters=lambda: set(self._ecs_backend().clusters),
        )
        self._instances = ContainerInstanceModel(self._ecs_backend, report_inactive=report_inactive)
        self._describe_tasks = tasks.TaskDescriber(self._ecs_backend)

    def __repr__(self) -> str:
        where = self._endpoint_url or "stopped"
        return f"LocalEcs(region_name={self._region_name!r}, endpoint_url={where!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving, and pay moto's lazy start-up cost (about a second) here, once.

        Raises:
            LocalEcsUnavailableError: moto's server mode is not installed.
            OSError: the port could not be bound.
            RuntimeError: it is already running.
        """
        with self._lifecycle:
            if self._server is not None:
                msg = f"LocalEcs is already running at {self._endpoint_url}"
                raise RuntimeError(msg)
            server = self._make_server()
            thread = threading.Thread(
                # A short poll interval keeps stop() quick; the cost is a wake-up per 50 ms.
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"ecs-safe-local-{server.port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            self._endpoint_url = f"http://{_HOST}:{server.port}"
            try:
                # moto builds each service's backend on its first request (~1 s for ECS and
                # EC2 together); doing it now keeps that out of the first timed call.
                self._client("ecs").list_clusters()
                self._client("ec2").describe_instances(MaxResults=5)
                self.set_task_transitions(frozen=self._freeze_tasks)
                self._start_ticking()
            except BaseException:
                self._shutdown()
                raise

    def stop(self) -> None:
        """Stop serving. Calling it again, or before `start`, does nothing.

        Pending faults are dropped and moto's task transitions are handed back to moto's
        default. moto's data stays in the process until `reset` or the process ends.
        """
        with self._lifecycle:
            if self._server is not None:
                self._shutdown()

    def _start_ticking(self) -> None:
        if self._scheduler_interval is not None and not self._scheduler.is_ticking:
            self._scheduler.start(self._scheduler_interval)

    def _shutdown(self) -> None:
        # The tick first: it must not act on a backend being torn down.
        try:
            self._scheduler.stop()
        finally:
            self._stop_serving()

    def _stop_serving(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._endpoint_url = None
        self._traffic.clear_faults()
        if self._tasks_frozen:
            # The transition setting is moto's, for the whole process: give it back.
            from moto.moto_api import state_manager  # noqa: PLC0415

            state_manager.unset_transition(tasks.TASK_MODEL)
            self._tasks_frozen = False
        with self._clients_lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()
        if server is not None:
            server.shutdown()
        if thread is not None:
            thread.join()

    def _make_server(self) -> BaseWSGIServer:
        try:
            from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server  # noqa: PLC0415
        except ImportError as exc:
            raise LocalEcsUnavailableError(_INSTALL_HINT) from exc

        class _Dispatcher(DomainDispatcherApplication):
            """moto's dispatcher, remembering which backend serves which host.

            moto works the backend out afresh for every request, listing its service
            modules on disk twice over (some 180 `os.path.isdir` calls): about 2.5 ms of each
            request, a third of a deregistration. The answer depends on the host alone.
            """

            _backends: dict[str | None, Any]

            def get_backend_for_host(self, host: str | None) -> Any:
                """The backend moto picks for ``host``, worked out once per host."""
                backends = self.__dict__.setdefault("_backends", {})
                if host not in backends:
                    backends[host] = super().get_backend_for_host(host)
                return backends[host]

        class _QuietRequestHandler(MotoRequestHandler):
            """moto's handler without werkzeug's line on stderr for every request."""

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                """Log nothing: a demo or a test run would drown in request lines."""

        serializing.install()
        # The same parts moto's ThreadedMotoServer assembles, so that the app can be wrapped
        # in this server's own middleware, requests are not logged without touching global
        # logging, nothing is printed, and a busy port raises instead of hanging start().
        app = TrafficMiddleware(
            _Dispatcher(create_backend_app),
            self._traffic,
            self._handlers(),
            {**self._lifecycle_actions.query_handlers(), **self._groups.query_handlers()},
            state_lock=self._state,
        )
        try:
            return make_server(
                _HOST, self._port, app, threaded=True, request_handler=_QuietRequestHandler
            )
        except SystemExit as exc:
            # werkzeug reports bind errors on stderr and calls sys.exit(1).
            msg = f"LocalEcs could not listen on {_HOST}:{self._port}; is the port in use?"
            raise OSError(msg) from exc

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Starting takes about a second the first time (moto's imports and backends).
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shutting down waits for the server thread's poll loop.
        await asyncio.to_thread(self.stop)

    # -- the endpoint ---------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """Whether the endpoint is serving."""
        return self._endpoint_url is not None

    @property
    def endpoint_url(self) -> str:
        """The endpoint, e.g. ``http://127.0.0.1:54321``; only while running."""
        if self._endpoint_url is None:
            msg = "LocalEcs is not running: call start() or use it as a context manager"
            raise RuntimeError(msg)
        return self._endpoint_url

    @property
    def region_name(self) -> str:
        """The Region the endpoint is used with."""
        return self._region_name

    @property
    def access_key_id(self) -> str:
        """The dummy access key ID of `session` (moto accepts any)."""
        return DUMMY_ACCESS_KEY_ID

    @property
    def secret_access_key(self) -> str:
        """The dummy secret access key of `session`."""
        return DUMMY_SECRET_ACCESS_KEY

    def session(self) -> AioSession:
        """A new aiobotocore session holding the dummy credentials, so no AWS setup is needed."""
        from aiobotocore.session import AioSession  # noqa: PLC0415

        session = AioSession()
        session.set_credentials(DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)
        return session

    def client_kwargs(self) -> ClientKwargs:
        """``endpoint_url``, ``region_name`` and ``session`` for ``EcsSafeClient(**kwargs)``."""
        return ClientKwargs(
            endpoint_url=self.endpoint_url, region_name=self._region_name, session=self.session()
        )

    def reset(self) -> None:
        """Clear moto's state (for the whole process), pending faults and the request counts.

        Task transitions return to the ``freeze_tasks`` setting given to the constructor. The
        scheduler forgets what it managed and recorded; its background tick stops, and
        starts again if the constructor asked for one (``scheduler_interval``).
        """
        try:
            self._scheduler.reset()
        except SchedulerError as failed:
            # A failed background tick is reported, after the reset it must not prevent.
            self._reset_state()
            raise failed from failed.__cause__
        self._reset_state()

    def _reset_state(self) -> None:
        self._post_moto_api("/moto-api/reset")
        self._traffic.clear_faults()
        self._traffic.reset_calls()
        self._instances.reset()
        self._describe_tasks.reset()
        self._lifecycle_actions.reset()
        self._groups.reset()
        self._events.reset()
        self.set_task_transitions(frozen=self._freeze_tasks)
        self._start_ticking()

    # -- request counts -------------------------------------------------------------------

    def calls(self, operation: str) -> int:
        """How many requests for an operation (AWS name, e.g. ``"DescribeTasks"``) arrived.

        ECS's, Auto Scaling's, EC2's and SQS's operations are counted; name the latter with
        their service where two share a name (``"ec2:DescribeTags"``; see `inject_fault`).
        Counts real HTTP requests, retries included, since the last `reset_calls` or `reset`;
        the seeding helpers' own requests are not counted.
        """
        return self._traffic.calls(check_operation(operation))

    @property
    def call_log(self) -> list[str]:
        """The ECS operations requested, in order of arrival (a copy).

        Only ECS's, so that ``call_log == []`` still means "not one ECS call" whatever else
        the code under test asked; `service_call_log` gives the other services'.
        """
        return self._traffic.log("ecs")

    def service_call_log(self, service: str | None = None) -> list[str]:
        """The operations requested of one service, or of every service (None), in order.

        ``service`` is ``"ecs"``, ``"autoscaling"``, ``"ec2"`` or ``"sqs"``. ECS's operations
        are listed by their name (``"DescribeTasks"``), the others' with their service
        (``"autoscaling:CompleteLifecycleAction"``), as `inject_fault` names them.
        """
        if service is not None and service not in SERVICES:
            msg = f"service must be one of {', '.join(SERVICES)}, not {service!r}"
            raise ValueError(msg)
        return self._traffic.log(service)

    def reset_calls(self) -> None:
        """Forget the requests counted so far."""
        self._traffic.reset_calls()

    # -- fault injection ------------------------------------------------------------------

    def inject_fault(
        self,
        operation: str,
        *,
        code: str = "ThrottlingException",
        http_status: int | None = None,
        message: str = "Rate exceeded",
        times: int = 1,
        after_acting: bool = False,
        html: bool = False,
        disconnect: bool = False,
    ) -> None:
        """Make the next ``times`` requests for an operation fail.

        ``operation`` is an ECS operation's AWS name (``"DeregisterContainerInstance"``), or
        an Auto Scaling, EC2 or SQS one, named with its service where two services share it
        (``"autoscaling:CompleteLifecycleAction"``, ``"ec2:TerminateInstances"``,
        ``"sqs:ReceiveMessage"``; ``"CompleteLifecycleAction"`` alone works too).

        By default the request gets the AWS error ``code``/``message`` with ``http_status``
        (400 unless given), in the service's own shape (ECS's and SQS's JSON, Auto Scaling's
        and EC2's XML). With ``html=True`` it gets an HTML error page with no AWS error code,
        as a proxy or load balancer sends (``http_status`` 503 unless given; ``code`` and
        ``message`` are not used). With ``disconnect=True`` the connection is closed with no
        answer at all, as when the network fails. With ``after_acting=True`` the operation is
        performed first and only then is the error returned (or the connection dropped): a
        lost response.

        Faults for the same operation are used in the order they were injected. botocore's
        own retries (if the client has them on) each use one. The seeding helpers, and the
        requests LocalEcs makes itself (its events on SQS), never receive a fault.

        Args:
            operation: The operation's name, e.g. ``"DeregisterContainerInstance"``.
            code: The AWS error code, e.g. ``"ServerException"``, ``"Throttling"``,
                ``"RequestLimitExceeded"``.
            http_status: The HTTP status, 400-599.
            message: The error message.
            times: How many consecutive requests fail.
            after_acting: Perform the operation, then fail.
            html: Answer with an HTML page instead of an AWS error.
            disconnect: Close the connection instead of answering.
        """
        operation = check_operation(operation)
        status = http_status if http_status is not None else (503 if html else 400)
        if status not in {s.value for s in HTTPStatus} or not 400 <= status <= 599:
            msg = f"http_status must be an HTTP error status between 400 and 599, not {status}"
            raise ValueError(msg)
        if times < 1:
            msg = f"times must be at least 1, not {times}"
            raise ValueError(msg)
        if not html and not code:
            msg = "code must name the AWS error, e.g. 'ThrottlingException'"
            raise ValueError(msg)
        if html and disconnect:
            msg = "html and disconnect exclude each other: a dropped connection has no page"
            raise ValueError(msg)
        fault = Fault(
            code, message, status, after_acting=after_acting, html=html, disconnect=disconnect
        )
        self._traffic.add_fault(operation, fault, times)

    def pending_faults(self, operation: str | None = None) -> int:
        """How many injected failures are still to be delivered (for one operation, or all)."""
        return self._traffic.pending_faults(
            None if operation is None else check_operation(operation)
        )

    def clear_faults(self) -> None:
        """Drop every fault not yet delivered."""
        self._traffic.clear_faults()

    # -- the service scheduler ------------------------------------------------------------

    @property
    def scheduler(self) -> ServiceScheduler:
        """ECS's service scheduler, for the services it manages (see `ecs_safe.local.scheduler`)."""
        return self._scheduler

    def _exclusive(self) -> AbstractContextManager[None]:
        return self._state.exclusive()

    # -- task states ----------------------------------------------------------------------

    @property
    def tasks_frozen(self) -> bool:
        """Whether task statuses stay put on DescribeTasks (see `set_task_transitions`)."""
        return self._tasks_frozen

    def set_task_transitions(self, *, frozen: bool) -> None:
        """Freeze task statuses, or let moto advance them again.

        Unfrozen (moto's default) every DescribeTasks call moves each described task one step
        along RUNNING → DEACTIVATING → STOPPING → DEPROVISIONING → STOPPED. The setting is
        moto's and holds for the whole process; `stop` gives it back.
        """
        self._require_running()
        from moto.moto_api import state_manager  # noqa: PLC0415

        if frozen:
            state_manager.set_transition(tasks.TASK_MODEL, dict(tasks.FROZEN_TRANSITION))
        else:
            state_manager.unset_transition(tasks.TASK_MODEL)
        self._tasks_frozen = frozen

    def set_task_status(self, cluster: str, task: str, last_status: str) -> None:
        """Put a task into any ECS status, e.g. STOPPING, as if ECS had moved it there.

        ``desiredStatus`` follows (STOPPED from DEACTIVATING on) and the container instance's
        ``runningTasksCount``/``pendingTasksCount`` are adjusted as ECS counts: only RUNNING and
        PENDING tasks are counted. So a task in DEACTIVATING or STOPPING is on the instance yet
        in no counter, the case that fools drains judging by the counters. Use frozen
        transitions (the default), or moto moves the task on at the next DescribeTasks.
        ``remainingResources`` are not recomputed. Works on moto's in-process state directly.

        Args:
            cluster: The cluster's name or ARN.
            task: The task's ID or ARN.
            last_status: One of PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING,
                STOPPING, DEPROVISIONING, STOPPED, DELETED.

        Raises:
            ValueError: ``last_status`` is not an ECS task status.
            LookupError: there is no such task in that cluster.
        """
        with self._state.exclusive():
            tasks.set_task_status(self._ecs_backend(), cluster, task, last_status)

    # -- Auto Scaling lifecycle ---------------------------------------------------------------

    @property
    def lifecycle_actions(self) -> LifecycleModel:
        """Terminate lifecycle actions (``Terminating:Wait``) and their clock.

        A group's scale-in over HTTP starts them (`ecs_safe.local.scaling`); a test may also
        begin one by hand, which moto's group then reports too.
        """
        return self._lifecycle_actions

    def _lifecycle_action_began(self, action: LifecycleAction) -> None:
        if self.is_running:
            self._groups.entered_wait(action.group, action.instance_id)
        self._events.lifecycle_action_began(action)

    # -- events (EventBridge's shape, on SQS) ---------------------------------------------------

    @property
    def events(self) -> EventQueues:
        """The SQS queues that get lifecycle and Spot events (`ecs_safe.local.events`)."""
        return self._events

    def interrupt_spot(self, ec2_instance_id: str, *, drain: bool = True) -> dict[str, Any]:
        """Announce a Spot interruption of an EC2 instance; returns the event sent.

        "EC2 Spot Instance Interruption Warning" goes to every queue of `events`. With
        ``drain`` (the default) the instance is then set DRAINING in every cluster where it
        is ACTIVE, as the ECS agent does with ``ECS_ENABLE_SPOT_INSTANCE_DRAINING=true``. The
        instance is not terminated: call `terminate_instance` when the two minutes are up.
        """
        event = self._events.spot_interruption(ec2_instance_id, at=self._now())
        if drain:
            for cluster, arn in self._registrations(ec2_instance_id, status="ACTIVE"):
                self._client("ecs").update_container_instances_state(
                    cluster=cluster, containerInstances=[arn], status="DRAINING"
                )
        return event

    def recommend_rebalance(self, ec2_instance_id: str) -> dict[str, Any]:
        """Send "EC2 Instance Rebalance Recommendation" for an instance (ECS does nothing)."""
        return self._events.rebalance_recommendation(ec2_instance_id, at=self._now())

    def _registrations(self, ec2_instance_id: str, *, status: str) -> list[tuple[str, str]]:
        """(cluster, container instance ARN) wherever the EC2 instance is registered."""
        with self._state.shared():
            backend = self._ecs_backend()
            return [
                (cluster, str(instance.container_instance_arn))
                for cluster, by_id in backend.container_instances.items()
                if cluster in backend.clusters
                for instance in by_id.values()
                if instance.ec2_instance_id == ec2_instance_id and instance.status == status
            ]

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    def terminate_instance(self, ec2_instance_id: str) -> None:
        """Terminate an EC2 instance, as when Spot takes it back; it leaves its clusters.

        Every container instance it is registered as is deregistered and its tasks stop
        (stoppedReason ``Host EC2 (instance ID) terminated.``), as in ECS when the agent goes
        with its host; the scheduler replaces the service tasks of the services it manages.
        A member of an Auto Scaling group leaves the group, which launches a replacement
        unless the instance was already leaving (``Terminating:Wait``). DisableApiTermination
        is not consulted (it guards EC2's TerminateInstances requests only).
        """
        self._groups.terminated(ec2_instance_id)

    def join_cluster(self, group: str, cluster: str) -> None:
        """Register every instance an Auto Scaling group launches from now on in ``cluster``.

        As the ECS agent does when a new instance boots: surges (a raised desired capacity)
        and replacements become ACTIVE container instances, and the scheduler may place
        tasks on them. ``create_auto_scaling_group(..., join=True)`` (the default) binds its
        group this way. The group's current instances are left as they are.

        Raises:
            LookupError: the group or the cluster does not exist.
        """
        if last_segment(cluster) not in self._ecs_backend().clusters:
            msg = f"cluster {cluster!r} does not exist: call create_cluster first"
            raise LookupError(msg)
        if group not in self._autoscaling_backend().autoscaling_groups:
            msg = f"Auto Scaling group {group!r} does not exist"
            raise LookupError(msg)
        self._groups.join_cluster(group, last_segment(cluster))

    def _leave_clusters(self, ec2_instance_id: str) -> None:
        backend = self._ecs_backend()
        reason = f"Host EC2 (instance {ec2_instance_id}) terminated."
        for cluster, by_id in list(backend.container_instances.items()):
            for instance in list(by_id.values()):
                if instance.ec2_instance_id == ec2_instance_id and cluster in backend.clusters:
                    arn = str(instance.container_instance_arn)
                    tasks.stop_tasks_on(backend, cluster, arn, reason)
                    self._instances.remember_deregistered(cluster, instance)
                    # Force: nothing is left running on a terminated host.
                    backend.deregister_container_instance(cluster, last_segment(arn), force=True)

    # -- plumbing -------------------------------------------------------------------------

    def _handlers(self) -> dict[str, Handler]:
        """The ECS operations LocalEcs answers (or amends) itself instead of moto."""
        return {
            **self._instances.handlers(),
            **self._scheduler.handlers(),
            "StopTask": tasks.stop_task_handler(self._ecs_backend),
            "ListTasks": tasks.list_tasks_handler(self._ecs_backend),
            "DescribeTasks": self._describe_tasks,
        }

    def _require_running(self) -> None:
        _ = self.endpoint_url

    def _client(self, service: str) -> Any:
        """The seeding helpers' botocore client for ``service``, created once per start."""
        endpoint_url = self.endpoint_url
        with self._clients_lock:
            client = self._clients.get(service)
            if client is None:
                import botocore.session  # noqa: PLC0415
                from botocore.config import Config  # noqa: PLC0415

                session = botocore.session.get_session()
                session.set_credentials(DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)
                client = session.create_client(
                    service,
                    region_name=self._region_name,
                    endpoint_url=endpoint_url,
                    # A seeding call that fails should say so at once, not be repeated.
                    config=Config(retries={"total_max_attempts": 1}),
                )
                client.meta.events.register("before-send", _mark_internal)
                self._clients[service] = client
            return client

    def _ecs_backend(self) -> EC2ContainerServiceBackend:
        self._require_running()
        from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: PLC0415
        from moto.ecs.models import ecs_backends  # noqa: PLC0415

        # moto maps the dummy access key to its default account.
        return ecs_backends[DEFAULT_ACCOUNT_ID][self._region_name]

    def _autoscaling_backend(self) -> AutoScalingBackend:
        self._require_running()
        from moto.autoscaling.models import autoscaling_backends  # noqa: PLC0415
        from moto.core.models import DEFAULT_ACCOUNT_ID  # noqa: PLC0415

        return autoscaling_backends[DEFAULT_ACCOUNT_ID][self._region_name]

    def _post_moto_api(self, path: str) -> None:
        # The URL is this server's own http://127.0.0.1 endpoint, never a user-given scheme.
        request = urllib.request.Request(self.endpoint_url + path, data=b"", method="POST")  # noqa: S310
        # The endpoint is loopback: a proxy from the environment must not get in between.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            response.read()


def _mark_internal(request: Any, **_: Any) -> None:
    request.headers[INTERNAL_HEADER] = "1"
