"""Tests for ecs_safe.retry: the config, and the one retry loop every ECS call goes through."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import pytest
import tenacity
from clock_support import run_virtual
from structlog.testing import capture_logs

from ecs_safe import retry as retry_module
from ecs_safe.errors import (
    AccessDeniedException,
    EcsApiError,
    EcsConnectionError,
    InvalidInputError,
    InvalidParameterException,
    ServerException,
    ThrottlingException,
)
from ecs_safe.retry import RetryConfig, is_retryable, retrying, set_testing

OPERATION = "DescribeContainerInstances"


@pytest.fixture
def instant() -> Iterator[None]:
    """Make retries instant for one test, and restore real waits after it."""
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)


class Script:
    """An attempt function that raises the scripted errors in turn, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: str = "ok") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls: list[int] = []

    async def __call__(self, number: int) -> str:
        self.calls.append(number)
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def _server(n: int = 0) -> ServerException:
    return ServerException(f"fault {n}", operation=OPERATION, request_id=f"req-{n}")


def _retry_events(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "ecs_safe.retry.scheduled"]


# ------------------------------------------------------------------ RetryConfig


def test_defaults_match_the_contract() -> None:
    config = RetryConfig()
    assert (config.max_attempts, config.initial_delay, config.max_delay, config.jitter) == (
        5,
        0.2,
        20.0,
        True,
    )
    assert RetryConfig.disabled().max_attempts == 1


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        pytest.param({"max_attempts": 0}, "max_attempts=1", id="zero-attempts"),
        pytest.param({"max_attempts": -3}, "max_attempts=1", id="negative-attempts"),
        pytest.param({"max_attempts": True}, "max_attempts", id="bool-attempts"),
        pytest.param({"max_attempts": 2.0}, "max_attempts", id="float-attempts"),
        pytest.param({"max_attempts": "5"}, "max_attempts", id="str-attempts"),
        pytest.param({"max_attempts": None}, "max_attempts", id="None-attempts"),
        pytest.param({"initial_delay": -0.1}, "initial_delay", id="negative-initial"),
        pytest.param({"max_delay": -1.0, "initial_delay": 0}, "max_delay", id="negative-max"),
        pytest.param({"initial_delay": math.nan}, "initial_delay", id="nan-initial"),
        pytest.param({"max_delay": math.nan}, "max_delay", id="nan-max"),
        pytest.param({"max_delay": math.inf}, "max_delay", id="inf-max"),
        pytest.param({"initial_delay": True}, "initial_delay", id="bool-initial"),
        pytest.param({"initial_delay": "0.2"}, "initial_delay", id="str-initial"),
        pytest.param({"initial_delay": 5.0, "max_delay": 1.0}, "max_delay", id="max<initial"),
    ],
)
def test_bad_config_is_refused_with_a_helpful_message(kwargs: dict[str, Any], hint: str) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        RetryConfig(**kwargs)
    assert isinstance(exc_info.value, ValueError)
    assert hint in str(exc_info.value)


def test_max_smaller_than_initial_names_both() -> None:
    with pytest.raises(InvalidInputError, match="initial_delay"):
        RetryConfig(initial_delay=5.0, max_delay=1.0)


def test_zero_delays_and_one_attempt_are_allowed() -> None:
    config = RetryConfig(max_attempts=1, initial_delay=0, max_delay=0)
    assert config.max_attempts == 1


def test_config_is_frozen() -> None:
    config = RetryConfig()
    with pytest.raises(AttributeError):
        config.max_attempts = 10  # type: ignore[misc]


def test_is_retryable() -> None:
    assert is_retryable(_server())
    assert is_retryable(ThrottlingException("x"))
    assert is_retryable(EcsConnectionError("x"))
    assert not is_retryable(InvalidParameterException("x"))
    assert not is_retryable(EcsApiError("x"))
    assert is_retryable(EcsApiError("x", retryable=True))
    assert not is_retryable(ServerException("x", retryable=False))
    assert not is_retryable(ConnectionError("not ours"))


# ------------------------------------------------------------------ the loop


@pytest.mark.usefixtures("instant")
async def test_success_on_first_attempt_does_not_log() -> None:
    script = Script()
    with capture_logs() as logs:
        assert await retrying(script, operation=OPERATION, config=RetryConfig()) == "ok"
    assert script.calls == [1]
    assert _retry_events(logs) == []


@pytest.mark.usefixtures("instant")
async def test_retryable_errors_are_retried_until_success() -> None:
    script = Script(_server(1), ThrottlingException("slow"), EcsConnectionError("reset"))
    with capture_logs() as logs:
        result = await retrying(script, operation=OPERATION, config=RetryConfig(max_attempts=5))
    assert result == "ok"
    assert script.calls == [1, 2, 3, 4]
    events = _retry_events(logs)
    assert [e["attempt"] for e in events] == [1, 2, 3]
    assert [e["error_code"] for e in events] == [
        "ServerException",
        "ThrottlingException",
        "EcsConnectionError",
    ]
    assert all(e["operation"] == OPERATION for e in events)


@pytest.mark.usefixtures("instant")
@pytest.mark.parametrize(
    "error",
    [
        InvalidParameterException("bad"),
        AccessDeniedException("no"),
        EcsApiError("unknown", code="BrandNew"),
        ServerException("not this time", retryable=False),
        KeyError("bug"),
        InvalidInputError("bad input"),
    ],
)
async def test_non_retryable_errors_are_raised_at_once(error: Exception) -> None:
    script = Script(error)
    with capture_logs() as logs, pytest.raises(type(error)) as exc_info:
        await retrying(script, operation=OPERATION, config=RetryConfig())
    assert exc_info.value is error
    assert script.calls == [1]
    assert _retry_events(logs) == []


@pytest.mark.usefixtures("instant")
async def test_gives_up_after_max_attempts_with_the_last_typed_error() -> None:
    errors = [_server(n) for n in range(1, 10)]
    script = Script(*errors)
    with capture_logs() as logs, pytest.raises(ServerException) as exc_info:
        await retrying(script, operation=OPERATION, config=RetryConfig(max_attempts=4))
    assert not isinstance(exc_info.value, tenacity.RetryError)
    assert exc_info.value is errors[3]  # the last one, not the first
    assert exc_info.value.request_id == "req-4"
    assert script.calls == [1, 2, 3, 4]
    # One event per retry: none after the last attempt.
    assert [e["attempt"] for e in _retry_events(logs)] == [1, 2, 3]


@pytest.mark.usefixtures("instant")
async def test_one_attempt_means_no_retry() -> None:
    script = Script(_server())
    with capture_logs() as logs, pytest.raises(ServerException):
        await retrying(script, operation=OPERATION, config=RetryConfig.disabled())
    assert script.calls == [1]
    assert _retry_events(logs) == []


@pytest.mark.usefixtures("instant")
async def test_a_non_retryable_error_after_retries_stops_the_loop() -> None:
    denied = AccessDeniedException("no")
    script = Script(_server(1), denied, _server(3))
    with pytest.raises(AccessDeniedException) as exc_info:
        await retrying(script, operation=OPERATION, config=RetryConfig())
    assert exc_info.value is denied
    assert script.calls == [1, 2]


@pytest.mark.usefixtures("instant")
async def test_waits_grow_exponentially_and_stay_below_max_delay() -> None:
    config = RetryConfig(max_attempts=8, initial_delay=0.5, max_delay=6.0, jitter=False)
    script = Script(*[_server(n) for n in range(8)])
    with capture_logs() as logs, pytest.raises(ServerException):
        await retrying(script, operation=OPERATION, config=config)
    waits = [e["wait_s"] for e in _retry_events(logs)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0, 6.0]


@pytest.mark.usefixtures("instant")
async def test_jittered_waits_stay_within_bounds() -> None:
    config = RetryConfig(max_attempts=10, initial_delay=0.5, max_delay=3.0, jitter=True)
    script = Script(*[_server(n) for n in range(10)])
    with capture_logs() as logs, pytest.raises(ServerException):
        await retrying(script, operation=OPERATION, config=config)
    waits = [e["wait_s"] for e in _retry_events(logs)]
    assert len(waits) == 9
    for n, wait in enumerate(waits):
        assert 0 <= wait <= 3.0
        assert wait >= min(0.5 * 2**n, 3.0) - 1e-9


@pytest.mark.usefixtures("instant")
def test_testing_mode_makes_retries_instant() -> None:
    # On a virtual clock (`clock_support`), a sleep moves ``loop.time()`` by exactly its length.
    config = RetryConfig(max_attempts=3, initial_delay=10.0, max_delay=10.0, jitter=False)
    script = Script(_server(1), _server(2))

    async def scenario() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await retrying(script, operation=OPERATION, config=config)
        return result, loop.time() - start

    with capture_logs() as logs:
        result, slept = run_virtual(scenario())
    assert result == "ok"
    assert slept == 0
    # The waits are still computed and logged; only the sleeping goes away.
    assert [e["wait_s"] for e in _retry_events(logs)] == [10.0, 10.0]


def test_real_mode_actually_sleeps() -> None:
    assert not retry_module._testing, "a test left set_testing(True) behind"
    config = RetryConfig(max_attempts=3, initial_delay=0.05, max_delay=0.05, jitter=False)
    script = Script(_server(1), _server(2))

    async def scenario() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await retrying(script, operation=OPERATION, config=config)
        return result, loop.time() - start

    result, slept = run_virtual(scenario())
    assert result == "ok"
    # Two waits of 0.05 s, slept for exactly that long.
    assert slept == pytest.approx(0.1, abs=1e-6)


def test_set_testing_is_a_switch() -> None:
    set_testing(True)
    try:
        assert retry_module._testing is True
    finally:
        set_testing(False)
    assert retry_module._testing is False


# ------------------------------------------------------------------ before_retry


@pytest.mark.usefixtures("instant")
async def test_before_retry_returning_a_value_ends_the_loop_with_it() -> None:
    seen: list[EcsApiError] = []

    async def verify(exc: EcsApiError) -> str | None:
        seen.append(exc)
        return "verified-gone"

    first = EcsConnectionError("response lost")
    script = Script(first, _server(2))
    with capture_logs() as logs:
        result = await retrying(
            script, operation=OPERATION, config=RetryConfig(), before_retry=verify
        )
    assert result == "verified-gone"
    assert script.calls == [1]  # never sent again
    assert seen == [first]
    assert _retry_events(logs) == []


@pytest.mark.usefixtures("instant")
async def test_before_retry_returning_none_lets_the_loop_retry() -> None:
    calls: list[str] = []

    async def verify(exc: EcsApiError) -> str | None:
        calls.append(exc.code)
        return None

    script = Script(_server(1), ThrottlingException("slow"))
    result = await retrying(script, operation=OPERATION, config=RetryConfig(), before_retry=verify)
    assert result == "ok"
    assert script.calls == [1, 2, 3]
    assert calls == ["ServerException", "ThrottlingException"]


@pytest.mark.usefixtures("instant")
async def test_before_retry_is_not_called_for_non_retryable_errors() -> None:
    called = False

    async def verify(exc: EcsApiError) -> str | None:
        nonlocal called
        called = True
        return "should not be used"

    script = Script(InvalidParameterException("Found running tasks on the instance."))
    with pytest.raises(InvalidParameterException):
        await retrying(script, operation=OPERATION, config=RetryConfig(), before_retry=verify)
    assert not called


@pytest.mark.usefixtures("instant")
async def test_before_retry_on_the_last_attempt_can_still_verify() -> None:
    async def verify(exc: EcsApiError) -> str | None:
        return "verified" if exc.request_id == "req-3" else None

    script = Script(_server(1), _server(2), _server(3))
    result = await retrying(
        script, operation=OPERATION, config=RetryConfig(max_attempts=3), before_retry=verify
    )
    assert result == "verified"
    assert script.calls == [1, 2, 3]


def test_set_testing_returns_a_restorer_that_is_also_a_context_manager() -> None:
    restore = set_testing(True)
    try:
        assert retry_module._testing is True
        with set_testing(False):
            assert retry_module._testing is False
        assert retry_module._testing is True, "the context manager restores the value before"
    finally:
        restore()
    assert retry_module._testing is False
