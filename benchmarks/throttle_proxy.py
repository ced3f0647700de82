"""A loopback HTTP proxy that throttles ECS requests as ECS does: two token buckets.

ECS throttles per account and Region with token buckets: cluster-resource *read* calls
(Describe*, List*) burst 100 and refill 20/s, *modify* calls burst 100 and refill 40/s. A
request that finds its bucket empty gets what ECS answers, an HTTP 400 ``ThrottlingException``
("Rate exceeded"); the others are forwarded to the real endpoint (LocalEcs). The proxy counts
both, per operation kind.

The proxy classifies operations by name on its own (``Describe``/``List`` = read), not with
ecs-safe's table, so that it judges the client from the outside.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp import web

__all__ = [
    "ECS_BUCKETS",
    "Arrival",
    "BucketSpec",
    "Kind",
    "ThrottlingProxy",
    "TokenBucket",
    "kind_of",
    "minimum_seconds",
]

Kind = Literal["read", "modify"]

# Request headers a proxy must not pass on (hop-by-hop), or that aiohttp sets itself.
_DROP_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade"}
)
_KEEP_RESPONSE_HEADERS = frozenset({"content-type", "x-amzn-requestid"})
_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
# Seconds after which the other tool (`ThrottlingProxy.share`) tries a throttled request again.
_OTHER_RETRY_S = 0.01


@dataclass(frozen=True)
class BucketSpec:
    """A token bucket's shape: ``burst`` tokens at most, refilled at ``per_s``."""

    burst: int
    per_s: float


#: ECS's documented buckets for cluster-resource calls.
ECS_BUCKETS: dict[Kind, BucketSpec] = {
    "read": BucketSpec(burst=100, per_s=20.0),
    "modify": BucketSpec(burst=100, per_s=40.0),
}


def kind_of(operation: str) -> Kind:
    """How ECS counts an operation: Describe* and List* read, everything else modifies."""
    return "read" if operation.startswith(("Describe", "List")) else "modify"


def minimum_seconds(calls: dict[Kind, int], buckets: dict[Kind, BucketSpec] = ECS_BUCKETS) -> float:
    """The least time in which ``calls`` can pass the buckets, starting full.

    A full bucket lets ``burst`` calls through at once, and then one every ``1/per_s``
    seconds, so ``n`` calls of one kind need ``max(0, n - burst) / per_s`` seconds. The two
    buckets are independent; the slower one sets the pace. (Round trips are not counted: this
    is the floor that the buckets alone impose.)
    """
    return max(
        (max(0, n - buckets[kind].burst) / buckets[kind].per_s for kind, n in calls.items()),
        default=0.0,
    )


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request as the proxy saw it: seconds after `ThrottlingProxy.reset`, and its fate."""

    at: float
    operation: str
    kind: Kind
    forwarded: bool


@dataclass
class TokenBucket:
    """A token bucket: starts full, refills continuously, one token per request."""

    spec: BucketSpec
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.refill_completely()

    def refill_completely(self) -> None:
        self.tokens = float(self.spec.burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        """Take a token if there is one."""
        now = time.monotonic()
        self.tokens = min(self.spec.burst, self.tokens + (now - self.updated) * self.spec.per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class ThrottlingProxy:
    """An aiohttp server on 127.0.0.1 that throttles, then forwards to ``upstream``.

    Use as ``async with ThrottlingProxy(local.endpoint_url) as proxy:`` and point clients at
    ``proxy.url``. `reset` refills the buckets and zeroes the counters between runs.

    The proxy runs its own event loop on its own thread, as a server elsewhere would: sharing
    the client's loop, a moment in which the client parses a large response would hold back
    the proxy's clock too, and make the requests behind it look early.
    """

    def __init__(self, upstream: str, buckets: dict[Kind, BucketSpec] = ECS_BUCKETS) -> None:
        self._upstream = upstream.rstrip("/")
        self._buckets = {kind: TokenBucket(spec) for kind, spec in buckets.items()}
        self._lock = threading.Lock()
        self._forwarded: Counter[Kind] = Counter()
        self._throttled: Counter[Kind] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url: str | None = None
        # Another tool of the account, spending a share of each bucket (see `share`).
        self._other: asyncio.Task[None] | None = None
        self._other_taken: Counter[Kind] = Counter()
        self._other_refused: Counter[Kind] = Counter()
        # Every proxied request since the last reset: (arrival, operation, forwarded).
        self._timeline: list[Arrival] = []
        self._reset_at = time.monotonic()

    @property
    def url(self) -> str:
        """The proxy's endpoint, e.g. ``http://127.0.0.1:54321``."""
        if self._url is None:
            msg = "the proxy is not running"
            raise RuntimeError(msg)
        return self._url

    def reset(self) -> None:
        """Refill both buckets and zero the counters (a fresh account budget)."""
        with self._lock:
            for bucket in self._buckets.values():
                bucket.refill_completely()
            self._forwarded.clear()
            self._throttled.clear()
            self._other_taken.clear()
            self._other_refused.clear()
            self._timeline = []
            self._reset_at = time.monotonic()

    def counts(self) -> tuple[int, int]:
        """Requests forwarded and requests throttled since the last `reset`."""
        with self._lock:
            return sum(self._forwarded.values()), sum(self._throttled.values())

    def timeline(self) -> list[Arrival]:
        """Every proxied request since the last `reset`, in order of arrival."""
        with self._lock:
            return list(self._timeline)

    def other_counts(self) -> tuple[int, int]:
        """Tokens the other tool took and the times it found its bucket empty (`share`)."""
        with self._lock:
            return sum(self._other_taken.values()), sum(self._other_refused.values())

    async def share(self, fraction: float) -> None:
        """Let another tool of the account spend ``fraction`` of each bucket's refill rate.

        It takes one token at a time, evenly spaced (``fraction * per_s`` a second per kind),
        from the same buckets as the proxied requests, as a second client of the account
        would; a token it does not get it tries for again 10 ms later (and again), so it
        always gets its share. ``0`` stops it. Its counts are zeroed by `reset`.
        """
        loop = self._loop
        assert loop is not None, "the proxy is not running"
        if self._other is not None:
            other = self._other
            loop.call_soon_threadsafe(other.cancel)
            self._other = None
        if fraction > 0:
            future = asyncio.run_coroutine_threadsafe(self._start_other(fraction), loop)
            self._other = await asyncio.wrap_future(future)

    async def _start_other(self, fraction: float) -> asyncio.Task[None]:
        return asyncio.create_task(self._spend(fraction))

    async def _spend(self, fraction: float) -> None:
        start = time.monotonic()
        due = dict.fromkeys(self._buckets, start)
        while True:
            kind = min(due, key=due.__getitem__)
            await asyncio.sleep(max(0.0, due[kind] - time.monotonic()))
            with self._lock:
                taken = self._buckets[kind].take()
                (self._other_taken if taken else self._other_refused)[kind] += 1
            if not taken:
                # Throttled: it tries again shortly, as a retrying tool would, so that it
                # gets its share and the client cannot take more by hammering.
                due[kind] = time.monotonic() + _OTHER_RETRY_S
                continue
            due[kind] += 1.0 / (fraction * self._buckets[kind].spec.per_s)

    async def __aenter__(self) -> ThrottlingProxy:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="throttling-proxy", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._start(), loop))
        return self

    async def __aexit__(self, *_exc: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._stop(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
        self._loop = self._thread = None

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def _stop(self) -> None:
        if self._other is not None:
            self._other.cancel()
            self._other = None
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._runner = self._session = self._url = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        operation = request.headers.get("X-Amz-Target", "").removeprefix(_TARGET_PREFIX)
        kind = kind_of(operation)
        body = await request.read()
        with self._lock:
            allowed = self._buckets[kind].take()
            (self._forwarded if allowed else self._throttled)[kind] += 1
            at = time.monotonic() - self._reset_at
            self._timeline.append(Arrival(at, operation, kind, forwarded=allowed))
        if not allowed:
            return web.Response(
                status=400,
                body=json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}),
                headers={
                    "Content-Type": "application/x-amz-json-1.1",
                    "x-amzn-RequestId": str(uuid.uuid4()),
                },
            )
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_HEADERS}
        async with self._session.post(
            self._upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            kept = {
                k: v for k, v in upstream.headers.items() if k.lower() in _KEEP_RESPONSE_HEADERS
            }
            return web.Response(status=upstream.status, body=payload, headers=kept)
