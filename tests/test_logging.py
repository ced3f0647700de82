"""A library that is quiet until asked: where ecs-safe's events go, in each set-up.

Each case runs in a fresh interpreter (structlog's "configured" state is process-wide, and
``capture_logs`` in other tests sets it), makes a dry run, a deregistration, a throttled retry
and a failure against LocalEcs, and reports what reached stdout, stderr and a logging handler:

- nothing configured: nothing at all on stdout, and no event on stderr;
- the standard library configured: every event on the ``ecs_safe`` logger, with its name as
  ``record.event`` and its fields as ``record.fields``;
- structlog configured: every event through structlog, none through the standard library.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, logging, sys

    mode, out = sys.argv[1], sys.argv[2]
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append({
                "event": getattr(record, "event", None),
                "fields": getattr(record, "fields", None),
                "level": record.levelname,
                "message": record.getMessage(),
            })

    if mode == "stdlib":
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        logging.getLogger("ecs_safe").addHandler(Keep())
    elif mode == "structlog":
        import structlog
        structlog.configure(
            processors=[structlog.processors.JSONRenderer()],
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        )
        logging.getLogger("ecs_safe").addHandler(Keep())

    from ecs_safe import EcsSafeClient, EcsSafeError, RetryConfig
    from ecs_safe.local import LocalEcs
    from ecs_safe.retry import set_testing

    set_testing(True)

    async def main():
        with LocalEcs() as local:
            local.create_cluster("quiet")
            (arn,) = local.register_instances("quiet")
            local.inject_fault("DescribeContainerInstances")  # one throttle: a retry event
            retry = RetryConfig(max_attempts=3)
            async with EcsSafeClient(**local.client_kwargs(), retry=retry) as ecs:
                await ecs.deregister_container_instance(arn, cluster="quiet", dry_run=True)
                await ecs.deregister_container_instance(arn, cluster="quiet")
                try:
                    await ecs.deregister_container_instance("0" * 32, cluster="quiet")
                except EcsSafeError:
                    pass

    asyncio.run(main())
    with open(out, "w") as f:
        json.dump(records, f)
    """
)

EVENTS = (
    "ecs_safe.retry.scheduled",
    "ecs_safe.deregister.planned",
    "ecs_safe.deregister.succeeded",
    "ecs_safe.deregister.failed",
)


def run(mode: str, tmp_path: Path) -> tuple[str, str, list[dict[str, Any]]]:
    out = tmp_path / "records.json"
    script = tmp_path / "script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), mode, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr, json.loads(out.read_text(encoding="utf-8"))


def test_unconfigured_the_library_prints_nothing(tmp_path: Path) -> None:
    stdout, stderr, records = run("none", tmp_path)
    assert stdout == ""
    assert not [name for name in EVENTS if name in stderr], stderr[-2000:]
    assert records == []


def test_with_stdlib_logging_every_event_arrives_with_its_fields(tmp_path: Path) -> None:
    stdout, stderr, records = run("stdlib", tmp_path)
    assert stdout == ""
    names = [r["event"] for r in records]
    for name in EVENTS:
        assert name in names, names
    planned = next(r for r in records if r["event"] == "ecs_safe.deregister.planned")
    assert planned["fields"]["cluster"] == "quiet"
    assert planned["fields"]["dry_run"] is True
    assert planned["fields"]["container_instance_arn"].startswith("arn:aws:ecs:")
    assert planned["message"].startswith("ecs_safe.deregister.planned cluster=quiet")
    retry = next(r for r in records if r["event"] == "ecs_safe.retry.scheduled")
    assert retry["level"] == "WARNING"
    assert retry["fields"]["operation"] == "DescribeContainerInstances"
    assert retry["fields"]["error_code"] == "ThrottlingException"
    failed = next(r for r in records if r["event"] == "ecs_safe.deregister.failed")
    assert failed["level"] == "ERROR"
    assert "ecs_safe.deregister.failed" in stderr  # basicConfig's handler printed it


def test_with_structlog_configured_events_go_through_structlog(tmp_path: Path) -> None:
    stdout, stderr, records = run("structlog", tmp_path)
    assert stdout == ""
    assert records == []  # nothing through the standard library
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    names = [line["event"] for line in lines]
    for name in EVENTS:
        assert name in names, names
    succeeded = next(line for line in lines if line["event"] == "ecs_safe.deregister.succeeded")
    assert succeeded["cluster"] == "quiet"
    assert succeeded["dry_run"] is False


@pytest.mark.parametrize("name", ["debug", "info", "warning", "error", "exception", "critical"])
def test_the_logger_offers_the_level_methods_only(name: str) -> None:
    from ecs_safe._events import logger  # noqa: PLC0415

    assert callable(getattr(logger, name))
    with pytest.raises(AttributeError):
        logger.bind  # noqa: B018 - nothing is bound: an event is a name and fields
