"""What the wire sees: the WSGI middleware in front of moto.

It counts the requests for ECS, Auto Scaling, EC2 and SQS, answers injected faults in each
service's own error shape, and hands the operations moto gets wrong to LocalEcs's own models.

Operations are named as AWS names them; ECS's plainly (``"DescribeTasks"``), the others'
with their service (``"autoscaling:CompleteLifecycleAction"``, ``"ec2:TerminateInstances"``,
``"sqs:ReceiveMessage"``), since the services share some names (``DescribeTags``).
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import io
import json
import re
import socket
import threading
import urllib.parse
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, NoReturn
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
# SQS speaks awsJson1_0 with its own target prefix.
_SQS_TARGET_PREFIX: Final = "AmazonSQS."
# Auto Scaling and EC2 speak the query protocol: a form body naming the Action.
_FORM: Final = "application/x-www-form-urlencoded"
# The services whose operations can be counted and failed; ECS's names need no prefix.
SERVICES: Final = ("ecs", "autoscaling", "ec2", "sqs")
# SigV4's credential scope names the service: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
_SCOPE: Final = re.compile(r"Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request")
# Without a signature (never from botocore), the query protocol's Version tells them apart.
_QUERY_VERSIONS: Final = {"2011-01-01": "autoscaling", "2016-11-15": "ec2"}

#: Rewrites moto's successful JSON response to an operation.
Amend = Callable[[dict[str, Any]], dict[str, Any]]
#: An operation LocalEcs answers itself: takes the request's JSON body, returns the JSON
#: response body, or raises `EcsError`; returning None passes the request on to moto, and
#: returning an `Amend` passes it on and rewrites moto's successful answer.
Handler = Callable[[dict[str, Any]], dict[str, Any] | Amend | None]


#: Runs after moto answered a query-protocol request successfully.
After = Callable[[], None]
#: An Auto Scaling or EC2 (query protocol) action LocalEcs answers or amends: takes the form
#: parameters and returns the XML response body, or raises `EcsError` (sent as the service's
#: XML error); returning None passes the request on to moto, and returning an `After` passes
#: it on and calls it once moto has answered with success.
QueryHandler = Callable[[dict[str, str]], "str | After | None"]
#: How a service spells its errors: awsJson (ECS, SQS), the query protocol's XML
#: (Auto Scaling), or EC2's own XML.
Protocol = str


class EcsError(Exception):
    """An error LocalEcs's own models answer with, in the service's error shape."""

    def __init__(self, code: str, message: str, http_status: int = 400) -> None:
        """Name the AWS error code, its message and the HTTP status (400 unless given)."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def error_body(code: str, message: str) -> dict[str, Any]:
    """The awsJson1_1 error shape ECS itself returns."""
    return {"__type": code, "message": message}


_AUTOSCALING_NAMESPACE: Final = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


def query_response(action: str, result: str = "") -> str:
    """An Auto Scaling action's XML answer, with ``result`` (XML) inside its Result element."""
    return (
        f'<{action}Response xmlns="{_AUTOSCALING_NAMESPACE}"><{action}Result>{result}'
        f"</{action}Result><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
        f"</ResponseMetadata></{action}Response>"
    )


def _xml_error(protocol: Protocol, code: str, message: str, status: int) -> bytes:
    """The query protocol's error document (EC2 has its own)."""
    request_id = uuid.uuid4()
    if protocol == "ec2":
        return (
            f"<Response><Errors><Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        ).encode()
    kind = "Receiver" if status >= 500 else "Sender"
    return (
        f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def error_response(
    start_response: StartResponse, protocol: Protocol, code: str, message: str, status: int
) -> list[bytes]:
    """Answer with an AWS error in the shape ``protocol`` speaks (json, query or ec2)."""
    if protocol == "json":
        return _json_response(start_response, HTTPStatus(status), error_body(code, message))
    body = _xml_error(protocol, code, message, status)
    phrase = HTTPStatus(status).phrase
    start_response(
        f"{status} {phrase}", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]


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
    disconnect: bool = False
    """No answer at all: the connection is closed (code, status and html are not used)."""

    def respond(self, start_response: StartResponse, protocol: Protocol = "json") -> list[bytes]:
        """Answer the request with this failure, as the service (``protocol``) would."""
        status = HTTPStatus(self.http_status)
        status_line = f"{status.value} {status.phrase}"
        if not self.html:
            return error_response(
                start_response, protocol, self.code, self.message, self.http_status
            )
        # What a proxy or load balancer sends: a page, no AWS error code, no request ID.
        body = (
            f"<html>\r\n<head><title>{status_line}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status_line}</h1></center>\r\n</body>\r\n</html>\r\n"
        ).encode()
        start_response(
            status_line, [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
        )
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

    def log(self, service: str | None = "ecs") -> list[str]:
        """The operations requested of ``service`` (None: of every service), in order."""
        with self._lock:
            logged = list(self._log)
        if service is None:
            return logged
        return [key for key in logged if service_of(key) == service]

    def reset_calls(self) -> None:
        """Forget the requests counted so far."""
        with self._lock:
            self._log.clear()
            self._counts.clear()


@dataclass(frozen=True, slots=True)
class _Request:
    """What routing needs to know of a request: its operation and, for forms, the body."""

    key: str
    """The operation's name as `check_operation` gives it (``"autoscaling:..."``)."""
    protocol: Protocol
    params: dict[str, str] | None = None
    """The query protocol's form parameters (Auto Scaling, EC2)."""


def _read_body(environ: WSGIEnvironment) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    # Whoever serves the request next (moto) reads the same body again.
    environ["wsgi.input"] = io.BytesIO(raw)
    return bytes(raw)


def _is_sqs(environ: WSGIEnvironment) -> bool:
    """Whether a request is SQS's (JSON protocol: its target names the service)."""
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith(_SQS_TARGET_PREFIX)


def _classify(environ: WSGIEnvironment) -> _Request | None:
    """The operation a request asks for; None for what is not an AWS call (moto's own API)."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target.startswith(_ECS_TARGET_PREFIX):
        return _Request(target.removeprefix(_ECS_TARGET_PREFIX), "json")
    if target.startswith(_SQS_TARGET_PREFIX):
        return _Request(f"sqs:{target.removeprefix(_SQS_TARGET_PREFIX)}", "json")
    if not str(environ.get("CONTENT_TYPE", "")).startswith(_FORM):
        return None
    raw = _read_body(environ)
    params = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
    action = params.get("Action")
    if not action:
        return None
    scope = _SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    service = scope.group(1) if scope else _QUERY_VERSIONS.get(params.get("Version", ""), "")
    if not service:
        return None
    return _Request(f"{service}:{action}", "ec2" if service == "ec2" else "query", params)


class TrafficMiddleware:
    """WSGI middleware in front of moto: counts requests and answers injected faults.

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

        ``handlers`` are ECS operations (JSON), by name; ``query_handlers`` are
        query-protocol actions (Auto Scaling's, EC2's), by their qualified name
        (``"autoscaling:CompleteLifecycleAction"``). Every request holds ``state_lock`` shared
        while it is served, so that the scheduler's passes never interleave with one.
        """
        self._state_lock = state_lock
        self._app = app
        self._traffic = traffic
        self._handlers = dict(handlers or {})
        self._query_handlers = dict(query_handlers or {})

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Count the request, answer an injected fault, or serve it (LocalEcs's model or moto)."""
        if self._state_lock is None or _is_sqs(environ):
            # SQS's queues are no state the scheduler or the seeding touch, and a long poll
            # (ReceiveMessage waits up to 20 s) holding the lock would hold them all back.
            return self._route(environ, start_response)
        with self._state_lock.shared():
            return self._route(environ, start_response)

    def _route(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = _classify(environ)
        if request is None:
            return self._app(environ, start_response)
        if environ.get(_INTERNAL_ENVIRON_KEY):
            return self._serve(request, environ, start_response)
        fault = self._traffic.record(request.key)
        if fault is None:
            return self._serve(request, environ, start_response)
        if fault.after_acting:
            # The operation really happens and only its response is lost, as when a connection
            # drops after the service acted.
            self._run_and_discard(request, environ)
        if fault.disconnect:
            _drop_connection(environ)
        # An unread request body needs no draining: werkzeug discards it and closes the
        # connection after every response.
        return fault.respond(start_response, request.protocol)

    def _serve(
        self, request: _Request, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if request.params is not None:
            return self._serve_query(request, environ, start_response)
        handler = self._handlers.get(request.key)
        if handler is None:
            return self._app(environ, start_response)
        raw = _read_body(environ)
        try:
            body = json.loads(raw or b"{}")
            response = handler(body if isinstance(body, dict) else {})
        except json.JSONDecodeError:
            error = EcsError("SerializationException", "the request body is not JSON")
            return self._error(start_response, error)
        except EcsError as error:
            return self._error(start_response, error)
        if response is None:
            # The model leaves this request to moto: give moto the body it would have read.
            environ["wsgi.input"] = io.BytesIO(raw)
            return self._app(environ, start_response)
        if callable(response):
            environ["wsgi.input"] = io.BytesIO(raw)
            return self._amended(environ, start_response, response)
        return _json_response(start_response, HTTPStatus.OK, response)

    def _moto(self, environ: WSGIEnvironment) -> tuple[str, list[tuple[str, str]], bytes]:
        """The whole answer moto gives a request: status line, headers, body."""
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
        return status, headers, body

    def _amended(
        self, environ: WSGIEnvironment, start_response: StartResponse, amend: Amend
    ) -> list[bytes]:
        status, headers, body = self._moto(environ)
        if not status.startswith("200"):
            start_response(status, headers)
            return [body]
        return _json_response(start_response, HTTPStatus.OK, amend(json.loads(body or b"{}")))

    def _serve_query(
        self, request: _Request, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        handler = self._query_handlers.get(request.key)
        if handler is None:
            return self._app(environ, start_response)
        try:
            answer = handler(request.params or {})
        except EcsError as error:
            return error_response(
                start_response, request.protocol, error.code, error.message, error.http_status
            )
        if answer is None:
            return self._app(environ, start_response)
        if callable(answer):
            status, headers, body = self._moto(environ)
            if status.startswith("200"):
                answer()
            start_response(status, headers)
            return [body]
        encoded = answer.encode()
        start_response(
            "200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(encoded)))]
        )
        return [encoded]

    @staticmethod
    def _error(start_response: StartResponse, error: EcsError) -> list[bytes]:
        body = error_body(error.code, error.message)
        return _json_response(start_response, HTTPStatus(error.http_status), body)

    def _run_and_discard(self, request: _Request, environ: WSGIEnvironment) -> None:
        def ignore(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return lambda data: None

        result = self._serve(request, environ, ignore)
        try:
            for _chunk in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def _drop_connection(environ: WSGIEnvironment) -> NoReturn:
    """Close the client's connection with no answer, as a network failure would."""
    connection = environ.get("werkzeug.socket")
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
    # werkzeug takes a ConnectionError for a client gone away and writes nothing more.
    msg = "LocalEcs dropped the connection (an injected fault)"
    raise ConnectionResetError(msg)


@functools.cache
def _operation_names(service: str) -> frozenset[str]:
    import botocore.session  # noqa: PLC0415  (loading a service model is slow; only on demand)

    model = botocore.session.get_session().get_service_model(service)
    return frozenset(model.operation_names)


def service_of(key: str) -> str:
    """The service of an operation as `check_operation` names it (``"ecs"`` for a bare name)."""
    service, sep, _ = key.partition(":")
    return service if sep else "ecs"


def _qualified(service: str, operation: str) -> str:
    return operation if service == "ecs" else f"{service}:{operation}"


def check_operation(operation: str) -> str:
    """The name LocalEcs counts an operation by; ValueError with a hint for a wrong one.

    ECS's operations go by their AWS name (``"DescribeTasks"``); Auto Scaling's, EC2's and
    SQS's by ``"service:Name"`` (``"ec2:TerminateInstances"``), or by the bare name when only
    one of those services has it.
    """
    service, sep, name = operation.rpartition(":")
    if sep:
        if service not in SERVICES:
            msg = f"{service!r} is not a service LocalEcs serves: one of {', '.join(SERVICES)}"
            raise ValueError(msg)
        if name in _operation_names(service):
            return _qualified(service, name)
        _no_such_operation(operation, name, [service])
    if operation in _operation_names("ecs"):
        return operation
    owners = [s for s in SERVICES[1:] if operation in _operation_names(s)]
    if len(owners) == 1:
        return _qualified(owners[0], operation)
    if owners:
        choices = " or ".join(repr(_qualified(s, operation)) for s in owners)
        msg = f"{operation!r} is an operation of more than one service: say {choices}"
        raise ValueError(msg)
    _no_such_operation(operation, operation, list(SERVICES))


def _no_such_operation(operation: str, name: str, services: list[str]) -> NoReturn:
    names = {n: s for s in services for n in _operation_names(s)}
    camel = "".join(part.capitalize() for part in name.split("_"))
    close = difflib.get_close_matches(name, list(names), n=1)
    suggestion = camel if camel in names else next(iter(close), None)
    hint = f"; did you mean {_qualified(names[suggestion], suggestion)!r}?" if suggestion else ""
    msg = (
        f"{operation!r} is not an operation of {', '.join(services)}: use the AWS name, "
        f"e.g. 'DescribeTasks' or 'autoscaling:CompleteLifecycleAction'{hint}"
    )
    raise ValueError(msg)
