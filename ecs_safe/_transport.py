"""One ECS request, done right: rate limit, request, error mapping and response check, retried.

`EcsTransport.call` is the only way ecs-safe talks to ECS, so pacing (`ecs_safe.ratelimit`),
retries (`ecs_safe.retry`) and error mapping (`ecs_safe._error_mapping`) each apply to every
request, and each lives in exactly one place.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ecs_safe._error_mapping import map_errors
from ecs_safe.errors import EcsApiError
from ecs_safe.ratelimit import RateLimiter
from ecs_safe.retry import RetryConfig, retrying

__all__ = ["EcsTransport", "Response"]

Response = dict[str, Any]
ResponseCheck = Callable[[Response], None]


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


class EcsTransport:
    """Sends ECS requests through an aiobotocore client with pacing, retries and typed errors."""

    def __init__(self, client: Any, *, retry: RetryConfig, limiter: RateLimiter) -> None:
        self._client = client
        self.retry = retry
        self.limiter = limiter
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
        before_retry: Callable[[EcsApiError], Awaitable[Response | None]] | None = None,
    ) -> Response:
        """Call ``operation`` with ``params`` and return the response dictionary.

        Args:
            operation: the ECS operation name, e.g. ``"DescribeContainerInstances"``.
            params: its request parameters (``None`` values are dropped).
            check: validates a 200 response inside the attempt; raising a retryable error
                from it retries the call like any other fault.
            before_retry: see `ecs_safe.retry.retrying`.
        """
        method = self._method(operation)
        kwargs = {key: value for key, value in params.items() if value is not None}

        async def attempt(_number: int) -> Response:
            await self.limiter.acquire(operation)
            with map_errors(operation):
                response = await method(**kwargs)
            if check is not None:
                check(response)
            return response

        return await retrying(
            attempt, operation=operation, config=self.retry, before_retry=before_retry
        )


def request_id_of(response: Mapping[str, Any]) -> str | None:
    """The AWS request ID of a response, if it carried one."""
    meta = response.get("ResponseMetadata")
    if isinstance(meta, Mapping):
        rid = meta.get("RequestId")
        return str(rid) if rid else None
    return None
