"""What the wire sees: the WSGI middleware in front of moto.

It counts ECS requests, answers injected faults, and hands the operations moto gets wrong to
LocalEcs's own models.
"""

from __future__ import annotations

import difflib
import functools
import io
import json
import threading
import urllib.parse
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ecs_safe.local.state_lock import StateLock

#: Requests the seeding helpers send carry this header, so that they are neither counted nor
#: failed by an injected fault: counters and faults are for the code under test.
INTERNAL_HEADER: Final = "x-ecs-safe-local-internal"
_INTERNAL_ENVIRON_KEY: Final = "HTTP_X_ECS_SAFE_LOCAL_INTERNAL"
# ECS speaks the awsJson1_1 protocol: the operation is named in the X-Amz-Target header.
_ECS_TARGET_PREFIX: Final = "AmazonEC2ContainerServiceV20141113."
# Auto Scaling and EC2 speak the query protocol: a form body naming the Action.
_FORM: Final = "application/x-www-form-urlencoded"

#: Rewrites moto's successful JSON response to an operation.
Amend = Callable[[dict[str, Any]], dict[str, Any]]
#: An operation LocalEcs answers itself: takes the request's JSON body, returns the JSON
#: response body, or raises `EcsError`; returning None passes the request on to moto, and
#: returning an `Amend` passes it on and rewrites moto's successful answer.
Handler = Callable[[dict[str, Any]], dict[str, Any] | Amend | None]


#: An Auto Scaling (query protocol) action LocalEcs answers itself: takes the form parameters,
#: returns the XML response body, or raises `EcsError` (sent as the query protocol's XML error).
QueryHandler = Callable[[dict[str, str]], str]


class EcsError(Exception):
    """An error LocalEcs's own models answer with, in ECS's JSON error shape."""

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        """Name the AWS error code, its message and the HTTP status (400 unless given)."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def error_body(code: str, message: str) -> dict[str, Any]:
    """The awsJson1_1 error shape ECS itself returns."""
    return {"__type": code, "message": message}


def _json_response(
    start_response: StartResponse, status: HTTPStatus, payload: dict[str, Any]
) -> list[bytes]:
    body = json.dumps(payload, default=str).encode()
    start_response(
        f"{status.value} {status.phrase}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected failure: what the next matching request receives."""

    code: str
    message: str
    http_status: int
    after_acting: bool
    html: bool

    def respond(self, start_response: StartResponse) -> list[bytes]:
        """Answer the request with this failure."""
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
            return _json_response(start_response, status, error_body(self.code, self.message))
        headers.append(("Content-Length", str(len(body))))
        start_response(status_line, headers)
        return [body]


@dataclass(slots=True)
class _PendingFault:
    fault: Fault
    remaining: int


class Traffic:
    """Requests seen and faults pending, shared by the caller's thread and the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[str] = []
        self._counts: Counter[str] = Counter()
        self._faults: dict[str, deque[_PendingFault]] = {}

    def record(self, operation: str) -> Fault | None:
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

    def add_fault(self, operation: str, fault: Fault, times: int) -> None:
        """Queue a fault for the next ``times`` requests of an operation."""
        with self._lock:
            self._faults.setdefault(operation, deque()).append(_PendingFault(fault, times))

    def pending_faults(self, operation: str | None) -> int:
        """How many faulty answers are still to be given (one operation, or all)."""
        with self._lock:
            queues = self._faults.values() if operation is None else [self._faults.get(operation)]
            return sum(p.remaining for queue in queues if queue for p in queue)

    def clear_faults(self) -> None:
        """Drop every fault not yet delivered."""
        with self._lock:
            self._faults.clear()

    def calls(self, operation: str) -> int:
        """How many requests for an operation arrived."""
        with self._lock:
            return self._counts[operation]

    def log(self) -> list[str]:
        """The operations requested, in order of arrival (a copy)."""
        with self._lock:
            return list(self._log)

    def reset_calls(self) -> None:
        """Forget the requests counted so far."""
        with self._lock:
            self._log.clear()
            self._counts.clear()


class TrafficMiddleware:
    """WSGI middleware in front of moto: counts ECS requests and answers injected faults.

    A middleware rather than a patched moto handler: it sees exactly the HTTP requests the
    server received, it belongs to one server (moto's classes are shared by the process), and
    it can answer what moto never would, such as a proxy's HTML page.
    """

    def __init__(
        self,
        app: WSGIApplication,
        traffic: Traffic,
        handlers: dict[str, Handler] | None = None,
        query_handlers: dict[str, QueryHandler] | None = None,
        state_lock: StateLock | None = None,
    ) -> None:
        """Wrap moto's app; the handlers answer the operations LocalEcs models itself.

        ``handlers`` are ECS operations (JSON); ``query_handlers`` are query-protocol actions
        (Auto Scaling's), by their ``Action`` name. Every request holds ``state_lock`` shared
        while it is served, so that the scheduler's passes never interleave with one.
        """
        self._state_lock = state_lock
        self._app = app
        self._traffic = traffic
        self._handlers = dict(handlers or {})
        self._query_handlers = dict(query_handlers or {})

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Count the request, answer an injected fault, or serve it (LocalEcs's model or moto)."""
        if self._state_lock is None:
            return self._route(environ, start_response)
        with self._state_lock.shared():
            return self._route(environ, start_response)

    def _route(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith(_ECS_TARGET_PREFIX):
            return self._serve_query(environ, start_response)
        operation = target.removeprefix(_ECS_TARGET_PREFIX)
        if environ.get(_INTERNAL_ENVIRON_KEY):
            return self._serve(operation, environ, start_response)
        fault = self._traffic.record(operation)
        if fault is None:
            return self._serve(operation, environ, start_response)
        if fault.after_acting:
            # The operation really happens and only its response is lost, as when a connection
            # drops after ECS acted.
            self._run_and_discard(operation, environ)
        # An unread request body needs no draining: werkzeug discards it and closes the
        # connection after every response.
        return fault.respond(start_response)

    def _serve(
        self, operation: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        handler = self._handlers.get(operation)
        if handler is None:
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            request = json.loads(raw or b"{}")
            response = handler(request if isinstance(request, dict) else {})
        except json.JSONDecodeError:
            error = EcsError("SerializationException", "the request body is not JSON")
            return self._error(start_response, error)
        except EcsError as error:
            return self._error(start_response, error)
        if response is None or callable(response):
            # The model leaves this request to moto: give moto the body it would have read.
            environ["wsgi.input"] = io.BytesIO(raw)
        if response is None:
            return self._app(environ, start_response)
        if callable(response):
            return self._amended(environ, start_response, response)
        return _json_response(start_response, HTTPStatus.OK, response)

    def _amended(
        self, environ: WSGIEnvironment, start_response: StartResponse, amend: Amend
    ) -> list[bytes]:
        captured: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured.append((status, headers))
            return lambda data: None

        result = self._app(environ, capture)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = captured[0]
        if not status.startswith("200"):
            start_response(status, headers)
            return [body]
        return _json_response(start_response, HTTPStatus.OK, amend(json.loads(body or b"{}")))

    def _serve_query(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        content_type = str(environ.get("CONTENT_TYPE", ""))
        if not self._query_handlers or not content_type.startswith(_FORM):
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        params = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        handler = self._query_handlers.get(params.get("Action", ""))
        if handler is None:
            # Not modelled here: moto reads the body it would have read.
            environ["wsgi.input"] = io.BytesIO(raw)
            return self._app(environ, start_response)
        try:
            body, status = handler(params).encode(), HTTPStatus.OK
        except EcsError as error:
            status = HTTPStatus(error.http_status)
            body = (
                "<ErrorResponse><Error><Type>Sender</Type>"
                f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            ).encode()
        start_response(
            f"{status.value} {status.phrase}",
            [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    @staticmethod
    def _error(start_response: StartResponse, error: EcsError) -> list[bytes]:
        body = error_body(error.code, error.message)
        return _json_response(start_response, HTTPStatus(error.http_status), body)

    def _run_and_discard(self, operation: str, environ: WSGIEnvironment) -> None:
        def ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return lambda data: None

        result = self._serve(operation, environ, ignore)
        try:
            for _chunk in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


@functools.cache
def _ecs_operation_names() -> frozenset[str]:
    import botocore.session  # noqa: PLC0415  (loading the service model is slow; only on demand)

    model = botocore.session.get_session().get_service_model("ecs")
    return frozenset(model.operation_names)


def check_operation(operation: str) -> str:
    """``operation`` if it is an ECS operation's AWS name; otherwise ValueError with a hint."""
    names = _ecs_operation_names()
    if operation in names:
        return operation
    camel = "".join(part.capitalize() for part in operation.split("_"))
    close = difflib.get_close_matches(operation, names, n=1)
    suggestion = camel if camel in names else next(iter(close), None)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    msg = f"{operation!r} is not an ECS operation: use the AWS name, e.g. 'DescribeTasks'{hint}"
    raise ValueError(msg)
