"""Logging set-up for the CLI: the only place ecs-safe configures logging.

The library only ever calls ``structlog.get_logger("ecs_safe")``; this is where its events get a
destination (stderr, as console lines or JSON lines).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, Final

import structlog

from ecs_safe._events import console_renderer
from ecs_safe.cli.options import LogFormat

__all__ = ["logging_configured"]

# Outcome events the command's own report (table or JSON) already shows, instance by instance.
# Logged again on stderr they would only repeat it; -v brings them back for log pipelines.
_REPORTED_EVENTS: Final = frozenset(
    {
        "ecs_safe.deregister.refused",
        "ecs_safe.deregister.failed",
        "ecs_safe.drain.failed",
        "ecs_safe.drain.timed_out",
        # `ecs-safe watch` writes each event's outcome to stdout.
        "ecs_safe.worker.event",
    }
)


def _drop_reported_events(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    if event.get("event") in _REPORTED_EVENTS:
        raise structlog.DropEvent
    return event


@contextlib.contextmanager
def logging_configured(log_format: LogFormat, verbosity: int) -> Iterator[None]:
    """Send structlog events (and stdlib warnings) to stderr while the block runs.

    ``verbosity`` is -1 (errors only: the demo narrates itself), 0 (warnings), 1 (info) or 2
    and more (debug). The previous configuration is restored afterwards, so that an in-process
    caller (a test, an embedding application) is left as it was.
    """
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if verbosity <= 0:
        shared.append(_drop_reported_events)
    renderer: Any
    if log_format is LogFormat.JSON:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        # Inert values: a log line quotes what the endpoint said (error messages, IDs).
        renderer = console_renderer(colors=sys.stderr.isatty())
    saved_structlog = structlog.get_config()
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # botocore and aiohttp log through the standard library. They get the same renderer, so
    # that stderr stays one format, but only from WARNING up at any verbosity: their debug
    # output includes signed request headers, which have no place in our logs.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.handlers, root.level = saved_handlers, saved_level
        structlog.configure(**saved_structlog)
