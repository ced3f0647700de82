"""Retry settings and the one retry loop every ECS call goes through.

tenacity owns retries; botocore's own retries are switched off when ecs-safe creates its client
(see `ecs_safe.client`), so one logical call is at most ``max_attempts`` HTTP requests.
Only errors whose ``retryable`` flag is set are retried; after the last attempt the last typed
error is raised (never tenacity's ``RetryError``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ecs_safe._events import logger as _logger
from ecs_safe.errors import EcsApiError, InvalidInputError

if TYPE_CHECKING:
    from tenacity import RetryCallState
    from tenacity.wait import wait_base

# tenacity is imported where it is used, not at import time: with tornado installed (Jupyter
# brings it) `import tenacity` also imports tornado, 15-30 ms of `import ecs_safe` otherwise.

__all__ = [
    "DEFAULT_INITIAL_DELAY",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELAY",
    "RetryConfig",
    "TestingRestorer",
    "is_retryable",
    "retrying",
    "set_testing",
]

#: Attempts per logical call, the first one included.
DEFAULT_MAX_ATTEMPTS = 5
#: Seconds before the first retry; doubles each time.
DEFAULT_INITIAL_DELAY = 0.2
#: Upper bound, in seconds, of one wait between attempts.
DEFAULT_MAX_DELAY = 20.0
#: Whether waits are randomised, so that many clients do not retry in lock step.
DEFAULT_JITTER = True

_T = TypeVar("_T")
_testing = False


class TestingRestorer:
    """Puts the testing switch back as it was before `set_testing` changed it.

    Call it, or use the `set_testing` call as a context manager::

        restore = set_testing(True)
        ...
        restore()

        with set_testing(True):
            ...
    """

    __slots__ = ("_previous",)

    def __init__(self, previous: bool) -> None:
        self._previous = previous

    def __call__(self) -> None:
        """Restore the switch."""
        global _testing  # noqa: PLW0603 - the process-wide switch of set_testing
        _testing = self._previous

    def __enter__(self) -> None:
        """Nothing to do: `set_testing` has already switched."""

    def __exit__(self, *_exc: object) -> None:
        """Restore the switch."""
        self()


def set_testing(testing: bool) -> TestingRestorer:
    """Make every retry wait zero seconds (for test suites), or restore real waits.

    Attempts are still counted and logged; only the sleeping goes away. Returns a restorer
    (as stamina's ``set_testing`` does): call it, or use the call as a context manager, to put
    the switch back as it was.
    """
    global _testing  # a process-wide switch is the point, as in stamina
    previous, _testing = _testing, bool(testing)
    return TestingRestorer(previous)


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How often and how patiently ecs-safe retries a retryable error.

    Args:
        max_attempts: attempts per call, the first included; 1 disables retries.
        initial_delay: seconds before the first retry (exponential backoff doubles it).
        max_delay: the longest single wait in seconds.
        jitter: randomise waits (recommended: fleet runs share one account's rate limits).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_delay: float = DEFAULT_INITIAL_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: bool = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidInputError(
                f"max_attempts must be an int, got {type(self.max_attempts).__name__}. "
                "To disable retries, pass max_attempts=1"
            )
        if self.max_attempts < 1:
            raise InvalidInputError(
                f"max_attempts must be at least 1, got {self.max_attempts}. "
                "To disable retries, pass max_attempts=1"
            )
        for name in ("initial_delay", "max_delay"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise InvalidInputError(
                    f"{name} must be a finite number of seconds >= 0, got {value!r}"
                )
        if not isinstance(self.jitter, bool):
            raise InvalidInputError(f"jitter must be True or False, got {self.jitter!r}")
        if self.max_delay < self.initial_delay:
            raise InvalidInputError(
                f"max_delay ({self.max_delay}) must not be smaller than "
                f"initial_delay ({self.initial_delay})"
            )

    @classmethod
    def disabled(cls) -> RetryConfig:
        """A config that makes exactly one attempt per call."""
        return cls(max_attempts=1)

    def _wait(self) -> wait_base:
        from tenacity import wait_exponential, wait_exponential_jitter  # noqa: PLC0415

        if self.jitter:
            return wait_exponential_jitter(
                multiplier=self.initial_delay, max=self.max_delay, jitter=self.initial_delay
            )
        return wait_exponential(multiplier=self.initial_delay, max=self.max_delay)


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is an ecs-safe API error marked retryable."""
    return isinstance(exc, EcsApiError) and exc.retryable


async def _no_sleep(_seconds: float) -> None:
    return None


async def retrying(
    attempt: Callable[[int], Awaitable[_T]],
    *,
    operation: str,
    config: RetryConfig,
    before_retry: Callable[[EcsApiError], Awaitable[_T | None]] | None = None,
) -> _T:
    """Run ``attempt(n)`` (n = 1, 2, ...) until it succeeds or a non-retryable error occurs.

    Args:
        attempt: makes one attempt; receives its 1-based number.
        operation: the ECS operation, for the ``ecs_safe.retry.scheduled`` event.
        config: how many attempts and how long to wait.
        before_retry: called after a retryable failure, before sleeping; a non-``None`` return
            value ends the loop as the result. This is how a lost deregistration response is
            verified (the instance turns out to be gone) instead of being sent again.
    """

    async def one(number: int) -> _T:
        try:
            return await attempt(number)
        except EcsApiError as exc:
            if before_retry is None or not exc.retryable:
                raise
            verified = await before_retry(exc)
            if verified is not None:
                return verified
            raise

    # Most calls succeed at once: the first attempt runs without tenacity, whose set-up per
    # call (AsyncRetrying, its state, its action chain) cost more than the rest of ecs-safe's
    # per-request overhead together. tenacity takes over at the first retryable failure.
    try:
        return await one(1)
    except EcsApiError as exc:
        if not exc.retryable or config.max_attempts <= 1:
            raise
        first_failure = exc

    from tenacity import (  # noqa: PLC0415
        AsyncRetrying,
        retry_if_exception,
        stop_after_attempt,
    )

    def _log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        _logger.warning(
            "ecs_safe.retry.scheduled",
            operation=operation,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error_code=getattr(error, "code", type(error).__name__),
        )

    retryer = AsyncRetrying(
        stop=stop_after_attempt(config.max_attempts),
        wait=config._wait(),
        retry=retry_if_exception(is_retryable),
        before_sleep=_log_retry,
        reraise=True,
        sleep=_no_sleep if _testing else asyncio.sleep,
    )
    async for try_ in retryer:
        with try_:
            number = try_.retry_state.attempt_number
            if number == 1:
                # Hand tenacity the first attempt's outcome: it logs, waits and goes on.
                raise first_failure
            return await one(number)
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
