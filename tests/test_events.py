"""The event helpers: a plan has its own event; nothing from the endpoint steers a terminal."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from structlog.testing import capture_logs

from ecs_safe import ContainerInstance
from ecs_safe._events import STDLIB_LOGGER, console_renderer, inert_values, log_planned
from ecs_safe._terminal import inert

ESC = "\x1b"
HOSTILE = [
    pytest.param(f"{ESC}[2K{ESC}[1Aderegistered", id="erase-line-and-move-up"),
    pytest.param(f"{ESC}]0;title{chr(7)}", id="osc-set-title"),
    pytest.param("\x9b31mred", id="c1-csi"),
    pytest.param("back\rover", id="carriage-return"),
    pytest.param("\x08\x08\x08ok", id="backspaces"),
    pytest.param("\u202edeliretsiger", id="bidi-override"),
]


@pytest.mark.parametrize("text", HOSTILE)
def test_inert_leaves_no_control_character(text: str) -> None:
    out = inert(text)
    assert not any(ord(c) < 0x20 and c not in "\n\t" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F for c in out)
    assert "\u202e" not in out
    assert "\\x" in out or "\\u" in out  # shown, not dropped: the operator sees it was there


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/0123456789abcdef",
        "i-0123456789abcdef0",
        "service:web",
        "línea\tcon\ttabs\ny nueva línea — ünïcödé",
    ],
)
def test_inert_keeps_printable_text_exactly(text: str) -> None:
    assert inert(text) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_the_console_renderer_prints_endpoint_text_inert(text: str) -> None:
    render = console_renderer(colors=False)
    line = render(None, "error", {"event": "ecs_safe.deregister.failed", "error": text})
    assert ESC not in line
    assert "\x9b" not in line
    assert "\r" not in line
    assert "\u202e" not in line


def test_inert_values_touches_strings_only() -> None:
    event: dict[str, Any] = {"event": "e", "error": f"{ESC}[31m", "count": 3, "ok": None}
    assert inert_values(None, "info", event) == {
        "event": "e",
        "error": "\\x1b[31m",
        "count": 3,
        "ok": None,
    }


def test_stdlib_messages_are_inert_and_fields_exact(caplog: pytest.LogCaptureFixture) -> None:
    import structlog  # noqa: PLC0415

    from ecs_safe._events import logger  # noqa: PLC0415

    saved = structlog.get_config()
    structlog.reset_defaults()  # unconfigured: events go to the standard library
    try:
        with caplog.at_level(logging.INFO, logger=STDLIB_LOGGER.name):
            logger.warning("ecs_safe.test.event", error=f"bad {ESC}[2K", items=["a"])
    finally:
        structlog.configure(**saved)
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "ecs_safe.test.event"]
    assert ESC not in record.getMessage()
    assert "error=bad \\x1b[2K" in record.getMessage()
    assert record.fields == {"error": f"bad {ESC}[2K", "items": ["a"]}  # type: ignore[attr-defined]


def test_a_plan_logs_planned_never_succeeded() -> None:
    instance = ContainerInstance.model_validate(
        {
            "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/c/abc",
            "ec2InstanceId": "i-0123456789abcdef0",
            "status": "ACTIVE",
            "runningTasksCount": 0,
            "pendingTasksCount": 0,
            "agentConnected": True,
        }
    )
    with capture_logs() as logs:
        log_planned(instance, cluster="c", forced=False)
    (event,) = logs
    assert event["event"] == "ecs_safe.deregister.planned"
    assert event["dry_run"] is True
    assert event["request_id"] is None
    assert event["ec2_instance_id"] == "i-0123456789abcdef0"
    assert event["log_level"] == "info"
