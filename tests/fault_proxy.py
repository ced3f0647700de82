"""A fault-injecting HTTP proxy on loopback, in front of an ECS endpoint (usually `LocalEcs`).

Tests point an `EcsSafeClient` at `FaultProxy.endpoint_url` and tell the proxy, per
operation (the ``X-Amz-Target`` header of ECS and SQS, the ``Action`` of an EC2 or Auto
Scaling query-protocol form), what the next requests receive::

    async with FaultProxy(local.endpoint_url) as proxy:
        proxy.inject("DeregisterContainerInstance", Fault.RESET, after_upstream=True)
        async with EcsSafeClient(endpoint_url=proxy.endpoint_url, ...) as ecs:
            ...
        assert proxy.forwarded("DeregisterContainerInstance") == 1

A fault applies ``times`` times, then requests pass through again. With ``after_upstream``
the request is forwarded first, so the upstream acts, and only its response is replaced: a
lost response. Every request is recorded (`Seen`). An AWS error for a query-protocol request
is the XML that service sends (EC2's ``<Response><Errors>``, Auto Scaling's
``<ErrorResponse>``) with its own code: a throttle is EC2's ``RequestLimitExceeded`` (503) or
Auto Scaling's ``Throttling``; a garbled 200 is a body no XML parser reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import re
import urllib.parse
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

__all__ = ["Fault", "FaultProxy", "Seen"]

_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
# Not forwarded upstream and not copied back: they describe one hop, or the body we re-encode.
_HOP_HEADERS = frozenset(
    {"connection", "content-length", "content-encoding", "host", "keep-alive", "transfer-encoding"}
)
_AMZ_JSON = "application/x-amz-json-1.1"
_FORM = "application/x-www-form-urlencoded"
# The service a request is signed for: ``Credential=AKID/DATE/REGION/SERVICE/aws4_request``.
_SIGNED_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
#: The query-protocol services' own errors, by fault: (code, HTTP status).
_QUERY_ERRORS = {
    ("ec2", "throttle"): ("RequestLimitExceeded", 503),
    ("ec2", "denied"): ("UnauthorizedOperation", 403),
    ("autoscaling", "throttle"): ("Throttling", 400),
    ("autoscaling", "denied"): ("AccessDenied", 403),
}


class Fault(enum.StrEnum):
    """What a request receives instead of (or after) the upstream's answer."""

    PASS = "pass"
    """Forward and return the upstream's response unchanged."""
    RESET = "reset"
    """Abort the TCP connection without any response."""
    HANG = "hang"
    """Send nothing until the client gives up (past its read timeout)."""
    HTML_5XX = "html_5xx"
    """A load balancer's 502 HTML page: no AWS error code, no request ID."""
    THROTTLE = "throttle"
    """HTTP 400 with the AWS JSON error ``ThrottlingException``."""
    THROTTLE_429 = "throttle_429"
    """HTTP 429 with no AWS error code."""
    GARBAGE = "garbage"
    """HTTP 200 whose body is not JSON."""
    TRUNCATED = "truncated"
    """HTTP 200 that announces a body, sends half of it and closes the connection."""
    EMPTY = "empty"
    """HTTP 200 with the body ``{}``."""
    DENIED = "denied"
    """HTTP 400 with the AWS JSON error ``AccessDeniedException`` (not retryable)."""
    NOT_UTF8 = "not_utf8"
    """HTTP 200 whose body is not UTF-8 (a middlebox that gzips without saying so)."""
    NOT_UTF8_4XX = "not_utf8_4xx"
    """HTTP 400 whose body is not UTF-8."""
    DEEP_JSON = "deep_json"
    """HTTP 200 whose body is JSON nested 100,000 levels deep."""
    NULL_ITEMS = "null_items"
    """HTTP 200 whose lists hold ``null`` and non-object items (``failures: [null]``, ...)."""
    BODY = "body"
    """A status and body given to `FaultProxy.inject_body` (for generated bodies)."""
    ECHO = "echo"
    """HTTP 400 ``UnrecognizedClientException`` whose message echoes the request's session
    token and headers, as a debugging gateway might (for the secrets tests)."""


_AWS_ERRORS = {
    Fault.THROTTLE: ("ThrottlingException", "Rate exceeded"),
    Fault.DENIED: ("AccessDeniedException", "User is not authorized to perform this action"),
}


# A gzip header and deflate bytes: no UTF-8 decoder accepts 0x8b after 0x1f.
_NOT_UTF8 = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\xae\xe5\x02\x00\xff\xfe"
_DEEP = 100_000
#: Every list an ECS answer holds, with items no ECS answer has.
_NULL_ITEMS = {
    "failures": [None],
    "containerInstances": [1, None, "x"],
    "tasks": [None],
    "services": [None, []],
    "taskArns": [None],
    "containerInstance": None,
    "task": None,
}
#: Bodies botocore cannot make sense of, by fault: (status, body).
_MANGLED = {
    Fault.NOT_UTF8: (200, _NOT_UTF8),
    Fault.NOT_UTF8_4XX: (400, _NOT_UTF8),
    Fault.DEEP_JSON: (200, b"[" * _DEEP + b"]" * _DEEP),
    Fault.NULL_ITEMS: (200, json.dumps(_NULL_ITEMS).encode()),
}


@dataclass(slots=True)
class _Pending:
    fault: Fault
    remaining: int
    after_upstream: bool
    body: tuple[int, bytes] | None = None


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the proxy received."""

    operation: str
    """The operation (``X-Amz-Target`` without its prefix, or the form's ``Action``), or ``""``."""
    fault: Fault
    """What the request received."""
    forwarded: bool
    """Whether it reached the upstream (so the upstream may have acted)."""


class FaultProxy:
    """An aiohttp server on 127.0.0.1 (an ephemeral port) that forwards to ``upstream``.

    Args:
        upstream: the real endpoint, e.g. ``LocalEcs.endpoint_url``.
        hang_s: the longest a `Fault.HANG` waits; leaving the ``async with`` ends it sooner.
    """

    def __init__(self, upstream: str, *, hang_s: float = 30.0) -> None:
        self._upstream = upstream.rstrip("/")
        self._hang_s = hang_s
        self._faults: dict[str, deque[_Pending]] = {}
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._endpoint_url: str | None = None
        self.seen: list[Seen] = []
        """Every request received, in order of arrival."""

    @property
    def endpoint_url(self) -> str:
        """The proxy's own URL, ``http://127.0.0.1:PORT``, while it runs."""
        if self._endpoint_url is None:
            msg = "FaultProxy is not running: use it as `async with FaultProxy(...)`"
            raise RuntimeError(msg)
        return self._endpoint_url

    def inject(
        self, operation: str, fault: Fault, *, times: int = 1, after_upstream: bool = False
    ) -> None:
        """Give the next ``times`` requests for ``operation`` the ``fault``, then pass through.

        Faults queued for one operation are used in order. ``after_upstream`` forwards the
        request first (the upstream acts) and then applies the fault to the way back.
        """
        if times < 1:
            msg = f"times must be at least 1, not {times}"
            raise ValueError(msg)
        self._faults.setdefault(operation, deque()).append(_Pending(fault, times, after_upstream))

    def inject_body(
        self,
        operation: str,
        status: int,
        body: bytes,
        *,
        times: int = 1,
        after_upstream: bool = False,
    ) -> None:
        """Like `inject`, with the fault an answer of ``status`` and exactly ``body``."""
        self.inject(operation, Fault.BODY, times=times, after_upstream=after_upstream)
        self._faults[operation][-1].body = (status, body)

    def clear(self) -> None:
        """Drop the faults not yet applied and forget the requests seen."""
        self._faults.clear()
        self.seen.clear()

    def attempts(self, operation: str) -> int:
        """How many requests for ``operation`` the proxy received."""
        return sum(1 for s in self.seen if s.operation == operation)

    def forwarded(self, operation: str) -> int:
        """How many requests for ``operation`` reached the upstream."""
        return sum(1 for s in self.seen if s.operation == operation and s.forwarded)

    def faulted(self, operation: str) -> int:
        """How many requests for ``operation`` received a fault."""
        return sum(1 for s in self.seen if s.operation == operation and s.fault is not Fault.PASS)

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown: a hanging handler is released on exit anyway.
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        self._runner = runner
        # The upstream is loopback: no proxy from the environment may get in between.
        self._session = aiohttp.ClientSession(trust_env=False, auto_decompress=False)
        self._endpoint_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._released.set()
        self._endpoint_url = None
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- the handler ----------------------------------------------------------------------

    def _take(self, operation: str) -> _Pending | None:
        queue = self._faults.get(operation)
        if not queue:
            return None
        pending = queue[0]
        pending.remaining -= 1
        if pending.remaining == 0:
            queue.popleft()
        return pending

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        operation = _operation_of(request, body)
        pending = self._take(operation)
        fault = pending.fault if pending is not None else Fault.PASS
        forward = fault is Fault.PASS or (pending is not None and pending.after_upstream)
        self.seen.append(Seen(operation, fault, forward))
        upstream: web.Response | None = None
        if forward:
            upstream = await self._forward(request, body)
        if fault is Fault.PASS:
            assert upstream is not None
            return upstream
        if fault is Fault.BODY and pending is not None and pending.body is not None:
            return _json(*pending.body, request_id=True)
        return await self._apply(fault, request, upstream)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method, self._upstream + request.path_qs, headers=headers, data=body
        ) as response:
            payload = await response.read()
            back = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
            return web.Response(status=response.status, body=payload, headers=back)

    async def _apply(
        self, fault: Fault, request: web.Request, upstream: web.Response | None
    ) -> web.StreamResponse:
        if fault is Fault.HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), self._hang_s)
            return _abort(request)
        if fault is Fault.RESET:
            return _abort(request)
        if fault is Fault.HTML_5XX:
            page = (
                "<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>"
            )
            return web.Response(status=502, text=page, content_type="text/html")
        if fault is Fault.ECHO:
            token = request.headers.get("X-Amz-Security-Token")
            message = f"The security token {token} is invalid; request: {dict(request.headers)}"
            error = {"__type": "UnrecognizedClientException", "message": message}
            return _json(400, json.dumps(error).encode(), request_id=True)
        service = _service_of(request)
        if request.content_type == _FORM and service is not None:
            query = _query_fault(fault, service)
            if query is not None:
                return query
        if fault in _AWS_ERRORS:
            code, message = _AWS_ERRORS[fault]
            error = {"__type": code, "message": message}
            return _json(400, json.dumps(error).encode(), request_id=True)
        if fault is Fault.THROTTLE_429:
            return web.Response(status=429, text="Too Many Requests", content_type="text/plain")
        if fault is Fault.GARBAGE:
            return _json(200, b"<html>not json at all</html>", request_id=True)
        if fault is Fault.EMPTY:
            return _json(200, b"{}", request_id=True)
        if fault in _MANGLED:
            status, body = _MANGLED[fault]
            return _json(status, body, request_id=True)
        # TRUNCATED: announce the whole body, send half of it, then drop the connection.
        full = upstream.body if upstream is not None and isinstance(upstream.body, bytes) else b""
        full = full or json.dumps({"containerInstances": [], "failures": []}).encode()
        response = web.StreamResponse(status=200, headers={"Content-Type": _AMZ_JSON})
        response.content_length = len(full)
        await response.prepare(request)
        await response.write(full[: len(full) // 2])
        return _abort(request, response)


def _operation_of(request: web.Request, body: bytes) -> str:
    """The operation: ``X-Amz-Target`` names it (JSON protocols), or the ``Action`` (query)."""
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.removeprefix(_TARGET_PREFIX).rsplit(".", 1)[-1]
    if request.content_type == _FORM:
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        return (form.get("Action") or [""])[0]
    return ""


def _service_of(request: web.Request) -> str | None:
    found = _SIGNED_SERVICE.search(request.headers.get("Authorization", ""))
    return found.group(1) if found else None


def _query_fault(fault: Fault, service: str) -> web.Response | None:
    """What an EC2 or Auto Scaling endpoint sends for ``fault``, where it differs from ECS."""
    if fault is Fault.GARBAGE:
        return web.Response(status=200, body=b"not xml at all <<<", content_type="text/xml")
    error = _QUERY_ERRORS.get((service, str(fault)))
    if error is None:
        return None
    code, status = error
    message = "Rate exceeded" if fault is Fault.THROTTLE else "You are not authorized"
    if service == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            "</Errors><RequestID>proxy-00000000</RequestID></Response>"
        )
    else:
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>proxy-00000000</RequestId>"
            "</ErrorResponse>"
        )
    return web.Response(status=status, body=xml.encode(), content_type="text/xml")


def _json(status: int, body: bytes, *, request_id: bool) -> web.Response:
    headers = {"x-amzn-RequestId": "proxy-00000000"} if request_id else {}
    return web.Response(status=status, body=body, headers=headers, content_type=_AMZ_JSON)


def _abort(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
    """Close the connection under the client's feet (a reset, as far as it can tell)."""
    if request.transport is not None:
        request.transport.abort()
    return response if response is not None else web.Response(status=500)
