"""`LocalEcs`: an ECS-compatible endpoint inside your process, for demos, notebooks and tests.

It serves moto's ECS (and the EC2 that ECS needs) on loopback, with seeding helpers, fault
injection and a per-operation request counter::

    from ecs_safe import EcsSafeClient
    from ecs_safe.local import LocalEcs

    async with LocalEcs() as local:
        local.create_cluster("prod")
        [arn] = local.register_instances("prod")
        async with EcsSafeClient(**local.client_kwargs()) as ecs:
            await ecs.deregister_container_instance(arn, cluster="prod")

moto is the optional extra ``local`` (``pip install 'ecs-safe[local]'``). It is imported only when
a `LocalEcs` starts, so importing this module is cheap; without it, `LocalEcs.start` raises
`LocalEcsUnavailableError`.

Things to know:

- moto keeps its state per *process*, not per server: two `LocalEcs` in one process share
  clusters and instances, and `LocalEcs.reset` clears moto for the whole process. The request
  counters and injected faults, on the other hand, belong to one `LocalEcs`.
- Task status is frozen by default (`LocalEcs.set_task_transitions`): left to itself, moto moves
  every described task one step towards STOPPED on each DescribeTasks call.
- Calls made by the seeding helpers are neither counted nor subject to injected faults, so the
  counters and faults concern the code under test only.
- moto is not ECS: ``pendingTasksCount`` is always 0, cluster-level task counters are unreliable,
  StopTask lowers the instance's ``runningTasksCount`` whatever the task's status (twice for a
  task stopped twice), and malformed IDs give an HTTP 500 HTML page instead of an AWS error.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import json
import threading
import urllib.request
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Protocol, Self, TypedDict

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from aiobotocore.session import AioSession
    from moto.ecs.models import EC2ContainerServiceBackend, Task
    from werkzeug.serving import BaseWSGIServer

__all__ = ["ClientKwargs", "LocalEcs", "LocalEcsUnavailableError"]

#: The access key ID every `LocalEcs` session uses; moto accepts any credentials.
DUMMY_ACCESS_KEY_ID: Final = "testing"
#: The secret access key every `LocalEcs` session uses.
DUMMY_SECRET_ACCESS_KEY: Final = "testing"  # noqa: S105  (a placeholder moto accepts)

_INSTALL_HINT: Final = "LocalEcs needs moto's server mode: pip install 'ecs-safe[local]'"
_HOST: Final = "127.0.0.1"
# An AMI that moto ships in every Region, so run_instances needs no setup.
_AMI_ID: Final = "ami-1e749f67"
# Requests the seeding helpers send carry this header, so that they are neither counted nor
# failed by an injected fault: counters and faults are for the code under test.
_INTERNAL_HEADER: Final = "x-ecs-safe-local-internal"
_INTERNAL_ENVIRON_KEY: Final = "HTTP_X_ECS_SAFE_LOCAL_INTERNAL"
# ECS speaks the awsJson1_1 protocol: the operation is named in the X-Amz-Target header.
_ECS_TARGET_PREFIX: Final = "AmazonEC2ContainerServiceV20141113."
_TASK_MODEL: Final = "ecs::task"
# moto advances a task one status per `times` DescribeTasks calls; this many never happens.
_FROZEN_TRANSITION: Final = {"progression": "manual", "times": 10**12}
_TASK_STATUSES: Final = (
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
    "DELETED",
)
# From DEACTIVATING on, ECS has decided to stop the task: its desiredStatus is STOPPED.
_STOPPING_STATUSES: Final = frozenset(_TASK_STATUSES[_TASK_STATUSES.index("DEACTIVATING") :])
# StartTask takes at most 10 container instances per call.
_START_TASK_BATCH: Final = 10


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


@dataclass(frozen=True, slots=True)
class _Fault:
    """One injected failure: what the next matching request receives."""

    code: str
    message: str
    http_status: int
    after_acting: bool
    html: bool

    def respond(self, start_response: StartResponse) -> list[bytes]:
        status = HTTPStatus(self.http_status)
        status_line = f"{status.value} {status.phrase}"
        if self.html:
            # What a proxy or load balancer sends: a page, no AWS error code, no request ID.
            body = (
                f"<html>\r\n<head><title>{status_line}</title></head>\r\n<body>\r\n"
                f"<center><h1>{status_line}</h1></center>\r\n</body>\r\n</html>\r\n"
            ).encode()
            headers = [("Content-Type", "text/html")]
        else:
            # The awsJson1_1 error shape ECS itself returns.
            body = json.dumps({"__type": self.code, "message": self.message}).encode()
            headers = [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ]
        headers.append(("Content-Length", str(len(body))))
        start_response(status_line, headers)
        return [body]


@dataclass(slots=True)
class _PendingFault:
    fault: _Fault
    remaining: int


class _Traffic:
    """Requests seen and faults pending, shared by the caller's thread and the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[str] = []
        self._counts: Counter[str] = Counter()
        self._faults: dict[str, deque[_PendingFault]] = {}

    def record(self, operation: str) -> _Fault | None:
        """Count one request and return the fault it must receive, if any."""
        with self._lock:
            self._log.append(operation)
            self._counts[operation] += 1
            queue = self._faults.get(operation)
            if not queue:
                return None
            pending = queue[0]
            pending.remaining -= 1
            if pending.remaining == 0:
                queue.popleft()
                if not queue:
                    del self._faults[operation]
            return pending.fault

    def add_fault(self, operation: str, fault: _Fault, times: int) -> None:
        with self._lock:
            self._faults.setdefault(operation, deque()).append(_PendingFault(fault, times))

    def pending_faults(self, operation: str | None) -> int:
        with self._lock:
            queues = self._faults.values() if operation is None else [self._faults.get(operation)]
            return sum(p.remaining for queue in queues if queue for p in queue)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self, operation: str) -> int:
        with self._lock:
            return self._counts[operation]

    def log(self) -> list[str]:
        with self._lock:
            return list(self._log)

    def reset_calls(self) -> None:
        with self._lock:
            self._log.clear()
            self._counts.clear()


class _TrafficMiddleware:
    """WSGI middleware in front of moto: counts ECS requests and answers injected faults.

    A middleware rather than a patched moto handler: it sees exactly the HTTP requests the
    server received, it belongs to one server (moto's classes are shared by the process), and
    it can answer what moto never would, such as a proxy's HTML page.
    """

    def __init__(self, app: WSGIApplication, traffic: _Traffic) -> None:
        self._app = app
        self._traffic = traffic

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith(_ECS_TARGET_PREFIX) or environ.get(_INTERNAL_ENVIRON_KEY):
            return self._app(environ, start_response)
        fault = self._traffic.record(target.removeprefix(_ECS_TARGET_PREFIX))
        if fault is None:
            return self._app(environ, start_response)
        if fault.after_acting:
            # The operation really happens and only its response is lost, as when a connection
            # drops after ECS acted.
            self._run_and_discard(environ)
        # An unread request body needs no draining: werkzeug discards it and closes the
        # connection after every response.
        return fault.respond(start_response)

    def _run_and_discard(self, environ: WSGIEnvironment) -> None:
        def ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return lambda data: None

        result = self._app(environ, ignore)
        try:
            for _chunk in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class _TaskCounters(Protocol):
    running_tasks_count: int
    pending_tasks_count: int


def _shift_counter(counters: _TaskCounters, status: str, delta: int) -> None:
    # ECS counts RUNNING and PENDING tasks only; every other status is in no counter.
    if status == "RUNNING":
        counters.running_tasks_count += delta
    elif status == "PENDING":
        counters.pending_tasks_count += delta


@functools.cache
def _ecs_operation_names() -> frozenset[str]:
    import botocore.session  # noqa: PLC0415  (loading the service model is slow; only on demand)

    model = botocore.session.get_session().get_service_model("ecs")
    return frozenset(model.operation_names)


def _check_operation(operation: str) -> str:
    names = _ecs_operation_names()
    if operation in names:
        return operation
    camel = "".join(part.capitalize() for part in operation.split("_"))
    close = difflib.get_close_matches(operation, names, n=1)
    suggestion = camel if camel in names else next(iter(close), None)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    msg = f"{operation!r} is not an ECS operation: use the AWS name, e.g. 'DescribeTasks'{hint}"
    raise ValueError(msg)


def _last_segment(name_or_arn: str) -> str:
    # Names and IDs are the last path segment of their ARNs.
    return name_or_arn.rsplit("/", 1)[-1]


class LocalEcs:
    """An ECS-compatible endpoint on loopback, served in-process by moto.

    Use it as ``with LocalEcs() as local:`` or ``async with LocalEcs() as local:`` (or call
    `start` and `stop`). While it runs it offers the endpoint (`endpoint_url`, `region_name`,
    `session`, `client_kwargs`), seeding helpers (`create_cluster`, `register_instances`,
    `create_service`, `start_service_task`, `start_standalone_task`, ...), simulation of task
    states (`set_task_transitions`, `set_task_status`), fault injection (`inject_fault`) and a
    count of the ECS requests the server received (`calls`, `call_log`).

    Args:
        region_name: The Region the seeding helpers use and `client_kwargs` names.
        port: The loopback port to listen on; 0 picks a free one.
        freeze_tasks: Keep each task's ``lastStatus`` where it is (the default), instead of
            moto's habit of moving it one step towards STOPPED on every DescribeTasks call.
            `reset` returns to this setting.
    """

    def __init__(
        self, *, region_name: str = "us-east-1", port: int = 0, freeze_tasks: bool = True
    ) -> None:
        if not region_name:
            msg = "region_name must be a Region name such as 'us-east-1'"
            raise ValueError(msg)
        if not 0 <= port <= 65535:
            msg = f"port must be between 0 (any free port) and 65535, not {port}"
            raise ValueError(msg)
        self._region_name = region_name
        self._port = port
        self._freeze_tasks = freeze_tasks
        self._tasks_frozen = False
        self._lifecycle = threading.Lock()
        self._clients_lock = threading.Lock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._endpoint_url: str | None = None
        # botocore clients are generated at runtime, so they are typed as Any.
        self._clients: dict[str, Any] = {}
        self._traffic = _Traffic()

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

    def _shutdown(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        self._endpoint_url = None
        self._traffic.clear_faults()
        if self._tasks_frozen:
            # The transition setting is moto's, for the whole process: give it back.
            from moto.moto_api import state_manager  # noqa: PLC0415

            state_manager.unset_transition(_TASK_MODEL)
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

        class _QuietRequestHandler(MotoRequestHandler):
            """moto's handler without werkzeug's line on stderr for every request."""

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                """Log nothing: a demo or a test run would drown in request lines."""

        # The same parts moto's ThreadedMotoServer assembles, so that the app can be wrapped
        # in this server's own middleware, requests are not logged without touching global
        # logging, nothing is printed, and a busy port raises instead of hanging start().
        app = _TrafficMiddleware(DomainDispatcherApplication(create_backend_app), self._traffic)
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

        Task transitions return to the ``freeze_tasks`` setting given to the constructor.
        """
        self._post_moto_api("/moto-api/reset")
        self._traffic.clear_faults()
        self._traffic.reset_calls()
        self.set_task_transitions(frozen=self._freeze_tasks)

    # -- request counts -------------------------------------------------------------------

    def calls(self, operation: str) -> int:
        """How many requests for an ECS operation (AWS name, e.g. ``"DescribeTasks"``) arrived.

        Counts real HTTP requests, retries included, since the last `reset_calls` or `reset`;
        the seeding helpers' own requests are not counted.
        """
        return self._traffic.calls(_check_operation(operation))

    @property
    def call_log(self) -> list[str]:
        """The ECS operations requested, in order of arrival (a copy)."""
        return self._traffic.log()

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
    ) -> None:
        """Make the next ``times`` requests for an ECS operation fail.

        By default the request gets the AWS JSON error ``code``/``message`` with ``http_status``
        (400 unless given). With ``html=True`` it gets an HTML error page with no AWS error
        code, as a proxy or load balancer sends (``http_status`` 503 unless given;
        ``code`` and ``message`` are not used). With ``after_acting=True`` moto performs the
        operation first and only then is the error returned: a lost response.

        Faults for the same operation are used in the order they were injected. botocore's
        own retries (if the client has them on) each use one. The seeding helpers never
        receive a fault.

        Args:
            operation: The AWS operation name, e.g. ``"DeregisterContainerInstance"``.
            code: The AWS error code, e.g. ``"ServerException"``.
            http_status: The HTTP status, 400-599.
            message: The error message.
            times: How many consecutive requests fail.
            after_acting: Perform the operation, then fail.
            html: Answer with an HTML page instead of an AWS error.
        """
        operation = _check_operation(operation)
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
        fault = _Fault(code, message, status, after_acting=after_acting, html=html)
        self._traffic.add_fault(operation, fault, times)

    def pending_faults(self, operation: str | None = None) -> int:
        """How many injected failures are still to be delivered (for one operation, or all)."""
        return self._traffic.pending_faults(
            None if operation is None else _check_operation(operation)
        )

    def clear_faults(self) -> None:
        """Drop every fault not yet delivered."""
        self._traffic.clear_faults()

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
            state_manager.set_transition(_TASK_MODEL, dict(_FROZEN_TRANSITION))
        else:
            state_manager.unset_transition(_TASK_MODEL)
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
        if last_status not in _TASK_STATUSES:
            msg = f"last_status must be one of {', '.join(_TASK_STATUSES)}, not {last_status!r}"
            raise ValueError(msg)
        backend = self._ecs_backend()
        cluster_name, task_id = _last_segment(cluster), _last_segment(task)
        found: Task | None = next(
            (t for t in backend.tasks.get(cluster_name, {}).values() if t.id == task_id), None
        )
        if found is None:
            msg = f"no task {task!r} in cluster {cluster!r}"
            raise LookupError(msg)
        previous = found.last_status
        if found.container_instance_arn:
            instance = backend.container_instances.get(cluster_name, {}).get(
                _last_segment(found.container_instance_arn)
            )
            if instance is not None:
                _shift_counter(instance, previous, -1)
                _shift_counter(instance, last_status, +1)
        found.last_status = last_status
        found.desired_status = "STOPPED" if last_status in _STOPPING_STATUSES else "RUNNING"
        if last_status == "STOPPED" and not found.stopped_reason:
            found.stopped_reason = "Stopped by LocalEcs.set_task_status"

    # -- seeding --------------------------------------------------------------------------

    def create_cluster(self, name: str = "default") -> str:
        """Create a cluster (no-op if it exists); returns its ARN."""
        response = self._client("ecs").create_cluster(clusterName=name)
        return str(response["cluster"]["clusterArn"])

    def register_instances(self, cluster: str = "default", count: int = 1) -> list[str]:
        """Launch ``count`` EC2 instances and register each in the cluster as a container instance.

        Returns the container instance ARNs in launch order. One RunInstances call serves them
        all; the registrations go straight to moto's in-process ECS backend (over HTTP they
        would cost ~5 ms each), doing what moto's RegisterContainerInstance handler does.
        moto itself spends ~4 ms per launched instance, so 1000 take about 4 s.

        Raises:
            ValueError: ``count`` is below 1.
            LookupError: the cluster does not exist.
        """
        if count < 1:
            msg = f"count must be at least 1, not {count}"
            raise ValueError(msg)
        backend = self._ecs_backend()
        cluster_name = _last_segment(cluster)
        if cluster_name not in backend.clusters:
            msg = f"cluster {cluster!r} does not exist: call create_cluster({cluster_name!r}) first"
            raise LookupError(msg)
        reservation = self._client("ec2").run_instances(
            ImageId=_AMI_ID, MinCount=count, MaxCount=count
        )
        return [
            backend.register_container_instance(
                cluster_name, instance["InstanceId"]
            ).container_instance_arn
            for instance in reservation["Instances"]
        ]

    def register_task_definition(self, family: str = "app") -> str:
        """Register a small one-container task definition; returns its ARN (a new revision)."""
        response = self._client("ecs").register_task_definition(
            family=family,
            containerDefinitions=[
                {
                    "name": family,
                    "image": "public.ecr.aws/docker/library/busybox:latest",
                    "cpu": 10,
                    "memory": 32,
                    "essential": True,
                }
            ],
        )
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def create_service(
        self,
        cluster: str,
        name: str,
        *,
        scheduling_strategy: str = "REPLICA",
        task_definition: str | None = None,
    ) -> str:
        """Create a service (REPLICA or DAEMON); returns its ARN.

        moto starts no task for it: start them with `start_service_task`. Without
        ``task_definition`` one is registered under the service's name.
        """
        definition = task_definition or self.register_task_definition(family=name)
        params: dict[str, Any] = {
            "cluster": cluster,
            "serviceName": name,
            "taskDefinition": definition,
            "schedulingStrategy": scheduling_strategy,
        }
        if scheduling_strategy == "REPLICA":
            # DAEMON services take no desired count.
            params["desiredCount"] = 1
        response = self._client("ecs").create_service(**params)
        return str(response["service"]["serviceArn"])

    def start_service_task(
        self, cluster: str, container_instance: str, service: str, *, count: int = 1
    ) -> list[str]:
        """Start ``count`` tasks of a service on a container instance; returns their ARNs.

        They look like ECS's own: group ``service:NAME`` and ``startedBy`` the service's
        deployment ID (``ecs-svc/...``).
        """
        described = self._client("ecs").describe_services(cluster=cluster, services=[service])
        if not described["services"]:
            msg = f"no service {service!r} in cluster {cluster!r}"
            raise LookupError(msg)
        found = described["services"][0]
        deployments = found.get("deployments") or [{}]
        started_by = deployments[0].get("id") or f"ecs-svc/{uuid.uuid4().int % 10**19}"
        return self._start_tasks(
            cluster,
            container_instance,
            found["taskDefinition"],
            count=count,
            group=f"service:{found['serviceName']}",
            started_by=started_by,
        )

    def start_standalone_task(
        self, cluster: str, container_instance: str, *, family: str = "batch", count: int = 1
    ) -> list[str]:
        """Start ``count`` tasks that no service manages (group ``family:NAME``); returns ARNs."""
        definition = self.register_task_definition(family=family)
        return self._start_tasks(
            cluster, container_instance, definition, count=count, group=f"family:{family}"
        )

    def stop_task(self, cluster: str, task: str) -> None:
        """Stop a task through the API (moto lowers the instance's running count every time)."""
        self._client("ecs").stop_task(cluster=cluster, task=task, reason="Stopped by LocalEcs")

    def _start_tasks(
        self,
        cluster: str,
        container_instance: str,
        task_definition: str,
        *,
        count: int,
        group: str,
        started_by: str | None = None,
    ) -> list[str]:
        if count < 1:
            msg = f"count must be at least 1, not {count}"
            raise ValueError(msg)
        extra = {"startedBy": started_by} if started_by else {}
        arns: list[str] = []
        # StartTask starts one task per listed instance, so listing it n times starts n.
        for first in range(0, count, _START_TASK_BATCH):
            batch = min(_START_TASK_BATCH, count - first)
            response = self._client("ecs").start_task(
                cluster=cluster,
                taskDefinition=task_definition,
                containerInstances=[container_instance] * batch,
                group=group,
                **extra,
            )
            arns.extend(str(t["taskArn"]) for t in response["tasks"])
        return arns

    # -- plumbing -------------------------------------------------------------------------

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

    def _post_moto_api(self, path: str) -> None:
        # The URL is this server's own http://127.0.0.1 endpoint, never a user-given scheme.
        request = urllib.request.Request(self.endpoint_url + path, data=b"", method="POST")  # noqa: S310
        # The endpoint is loopback: a proxy from the environment must not get in between.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            response.read()


def _mark_internal(request: Any, **_: Any) -> None:
    request.headers[_INTERNAL_HEADER] = "1"
