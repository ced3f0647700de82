"""One AWS request, done right: rate limit, request, error mapping and response check, retried.

`Transport.call` is the only way ecs-safe talks to AWS, so pacing (`ecs_safe.ratelimit`),
retries (`ecs_safe.retry`), error mapping (`ecs_safe._error_mapping`) and the audit records of
mutating calls (`ecs_safe.audit`) each apply to every request, and each lives in exactly one
place.

There is one transport per service client (ECS, EC2, EC2 Auto Scaling and SQS, all through
the same class): each knows its ``service``, which picks its rate-limit buckets, and all of a
client's transports share one `RateLimiter`, one `RetryConfig` and one audit run.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ecs_safe import _constants, _events
from ecs_safe._error_mapping import map_errors, redact
from ecs_safe.audit import INTENT, OUTCOME
from ecs_safe.errors import EcsApiError, EcsSafeError, InvalidInputError, ThrottlingException
from ecs_safe.ratelimit import RateLimiter
from ecs_safe.retry import RetryConfig, retrying

if TYPE_CHECKING:
    from ecs_safe.audit import AuditRun

__all__ = [
    "MUTATING_OPERATIONS",
    "EcsTransport",
    "Response",
    "ResponseCheck",
    "Transport",
    "Verify",
    "open_http_session",
    "request_id_of",
]

Response = dict[str, Any]
ResponseCheck = Callable[[Response], None]
#: Proves, after a failed attempt, that the call took effect anyway: returns the result to
#: report instead of the error, or ``None`` when it cannot tell.
Verify = Callable[[EcsApiError], Awaitable[Response | None]]

#: The operations that change something: each gets an ``intent`` record before its request is
#: sent and an ``outcome`` record when it ends, in the client's audit log (`ecs_safe._constants`).
MUTATING_OPERATIONS: Final = _constants.MUTATING_OPERATIONS
# Errors raised before a request left the client (no connection, no credentials to sign it
# with, no TLS session): ECS never saw it.
_NOT_SENT_CODES: Final = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "NoCredentialsError",
        "PartialCredentialsError",
        "SSLError",
    }
)


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _may_have_acted(exc: Exception) -> bool:
    """Whether a failed attempt may have reached ECS and changed something.

    An AWS error answer (HTTP 4xx: throttled, denied, invalid) means ECS refused the request;
    a malformed 200, a 5xx or a connection lost after sending leaves it open.
    """
    if isinstance(exc, InvalidInputError):
        return False  # botocore refused the parameters; nothing was sent
    if isinstance(exc, ThrottlingException):
        # A throttle is refused before acting, whatever its status: EC2 sends its
        # RequestLimitExceeded as a 503, SQS its RequestThrottled as a 403.
        return False
    if isinstance(exc, EcsApiError):
        if exc.code in _NOT_SENT_CODES:
            return False
        return exc.http_status is None or not 400 <= exc.http_status < 500
    return True


@dataclass(slots=True)
class _Trail:
    """What happened to one logical call across its attempts (for verification and audit)."""

    attempts: int = 0
    retryable_failure: bool = False
    may_have_acted: bool = False
    verified: bool = False


class Transport:
    """Sends one service's requests through its aiobotocore client: paced, retried, typed.

    Args:
        client: the aiobotocore client of the service.
        retry: how retryable errors are retried.
        limiter: the client's token buckets (shared by all its transports).
        audit: where mutating calls are recorded (intent, then outcome), if anywhere.
        service: the service's name as botocore spells it (``"ecs"``, ``"ec2"``,
            ``"autoscaling"``): it picks the rate-limit buckets.
    """

    def __init__(
        self,
        client: Any,
        *,
        retry: RetryConfig,
        limiter: RateLimiter,
        audit: AuditRun | None = None,
        service: str = "ecs",
    ) -> None:
        self._client = client
        self.service = service
        #: The Region the client talks to, when it says (an aiobotocore client does).
        self.region: str | None = getattr(getattr(client, "meta", None), "region_name", None)
        self.retry = retry
        self.limiter = limiter
        self.audit = audit
        self._methods: dict[str, Callable[..., Awaitable[Response]]] = {}

    def _method(self, operation: str) -> Callable[..., Awaitable[Response]]:
        method = self._methods.get(operation)
        if method is None:
            method = self._methods[operation] = getattr(self._client, _snake(operation))
        return method

    async def call(
        self,
        operation: str,
        params: Mapping[str, Any],
        *,
        check: ResponseCheck | None = None,
        verify: Verify | None = None,
    ) -> Response:
        """Call ``operation`` with ``params`` and return the response dictionary.

        A mutating call is recorded in the audit log (if the client has one): an ``intent``
        record just before its first request is sent, an ``outcome`` record before this
        returns or raises. A cancelled call gets no outcome: its result is unknown.

        Args:
            operation: the operation name, e.g. ``"DescribeContainerInstances"``.
            params: its request parameters (``None`` values are dropped).
            check: validates a 200 response inside the attempt; raising a retryable error
                from it retries the call like any other fault.
            verify: for a call whose response may be lost after it acted: called after each
                retryable failure before retrying (see `ecs_safe.retry.retrying`'s
                ``before_retry``), and once more if the call then fails for good, since a retry
                may be refused precisely because the first attempt worked. A non-``None``
                result ends the call as verified.
        """
        method = self._method(operation)
        kwargs = {key: value for key, value in params.items() if value is not None}
        audit = self.audit if operation in MUTATING_OPERATIONS else None
        trail = _Trail()
        intent_seq: int | None = None

        async def attempt(number: int) -> Response:
            nonlocal intent_seq
            # The one hook into pacing: the slot takes a token, and a throttle that ends it
            # slows that bucket down (`ecs_safe.ratelimit`, AIMD).
            async with self.limiter.slot(operation, self.service):
                if audit is not None and intent_seq is None:
                    # Before the first request leaves: a crash from here on leaves an intent
                    # without an outcome, which is exactly "result unknown". A failed write
                    # raises, and the request is never sent.
                    intent_seq = audit.write(INTENT, operation=operation, params=kwargs)["seq"]
                trail.attempts = number
                try:
                    with map_errors(operation, self.service):
                        response = await method(**kwargs)
                    if check is not None:
                        check(response)
                except Exception as exc:
                    trail.may_have_acted = trail.may_have_acted or _may_have_acted(exc)
                    raise
                return response

        async def before_retry(exc: EcsApiError) -> Response | None:
            trail.retryable_failure = True
            # Only a failure after which ECS may have acted is worth a describe: a throttle
            # or a refused connection is ECS (or the network) saying no before acting, and
            # verifying it would spend a read from the scarcer bucket for nothing.
            if verify is None or not trail.may_have_acted:
                return None
            return await self._verified(verify, exc, trail)

        try:
            response = await retrying(
                attempt,
                operation=operation,
                config=self.retry,
                before_retry=before_retry if verify is not None else None,
            )
        except EcsApiError as exc:
            if verify is not None and trail.retryable_failure and trail.may_have_acted:
                verified = await self._verified(verify, exc, trail)
                if verified is not None:
                    self._outcome(audit, intent_seq, operation, trail, response=verified)
                    return verified
            self._outcome(audit, intent_seq, operation, trail, error=exc)
            raise
        except Exception as exc:
            self._outcome(audit, intent_seq, operation, trail, error=exc)
            raise
        self._outcome(audit, intent_seq, operation, trail, response=response)
        return response

    @staticmethod
    async def _verified(verify: Verify, exc: EcsApiError, trail: _Trail) -> Response | None:
        result = await verify(exc)
        trail.verified = result is not None
        return result

    @staticmethod
    def _outcome(
        audit: AuditRun | None,
        intent_seq: int | None,
        operation: str,
        trail: _Trail,
        *,
        response: Response | None = None,
        error: Exception | None = None,
    ) -> None:
        """Write the ``outcome`` record of a call whose ``intent`` was written."""
        if audit is None or intent_seq is None:
            return
        fields: dict[str, Any] = {
            "intent_seq": intent_seq,
            "operation": operation,
            "attempts": trail.attempts,
        }
        if error is None:
            fields["result"] = "verified" if trail.verified else "ok"
            fields["request_id"] = request_id_of(response or {})
        else:
            fields["result"] = "error"
            fields["error_code"] = getattr(error, "code", None) or type(error).__name__
            fields["error"] = redact(str(error))
            fields["http_status"] = getattr(error, "http_status", None)
            fields["request_id"] = getattr(error, "request_id", None)
            fields["may_have_acted"] = trail.may_have_acted
        try:
            audit.write(OUTCOME, **fields)
        except EcsSafeError as exc:
            # The call has happened: its real result must not be replaced by a logging error.
            # The log keeps an intent without an outcome, which is what it knows: unknown.
            _events.logger.error(
                "ecs_safe.audit.failed",
                operation=operation,
                intent_seq=intent_seq,
                error=str(exc),
            )


#: The transport of the ECS client (the name from before there were other services).
EcsTransport = Transport


async def open_http_session(client: Any) -> bool:
    """Have an aiobotocore client open its HTTP session now, not on its first request.

    aiobotocore makes the session lazily, building its TLS context (reading the CA bundle, in
    a thread) before the first request goes out: 40-60 ms on the benchmark machine, every
    new client. A fleet run's first describe waited for it, and every deregistration waited
    for that describe. Opened with the client, the first request goes straight out.

    Only aiobotocore's internals are touched here, each looked up with ``getattr``: a version
    that moved them keeps the lazy session, nothing worse. A session that cannot be made now
    (a CA bundle that cannot be read) is left for the first request, whose error is mapped
    and retried like any other. Returns whether the session was opened.
    """
    endpoint = getattr(client, "_endpoint", None)
    http = getattr(endpoint, "http_session", None)
    get_session = getattr(http, "_get_session", None)
    proxies = getattr(http, "_proxy_config", None)
    host = getattr(endpoint, "host", None)
    proxy_url_for = getattr(proxies, "proxy_url_for", None)
    if get_session is None or proxy_url_for is None or not isinstance(host, str):
        return False
    try:
        await get_session(proxy_url_for(host))
    except Exception as exc:  # the first request reports it, mapped, as it always did
        _events.logger.debug(
            "ecs_safe.transport.session_deferred", error_type=type(exc).__name__, error=str(exc)
        )
        return False
    return True


def request_id_of(response: Mapping[str, Any]) -> str | None:
    """The AWS request ID of a response, if it carried one."""
    meta = response.get("ResponseMetadata")
    if isinstance(meta, Mapping):
        rid = meta.get("RequestId")
        return str(rid) if rid else None
    return None
