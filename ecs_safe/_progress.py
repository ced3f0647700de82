"""Progress reporting: one structured log event and the caller's callback, from one call.

Long operations (a drain, a fleet run) report progress twice over: as a structlog event for log
pipelines and as a call of the optional ``progress`` callback for interactive callers (a
progress bar, a notebook). Both get the same data, built once here, so they never disagree.

The callback is the caller's code running inside ours: a plain or an async function, and
whatever it raises is logged and swallowed, because a broken progress bar must never abort a
drain half-way and leave an instance DRAINING.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ecs_safe._events import logger
from ecs_safe.errors import InvalidInputError

__all__ = ["ProgressCallback", "check_progress", "report"]

#: A progress callback: receives one event dictionary; may be a plain or an async function.
ProgressCallback = Callable[[Mapping[str, Any]], Awaitable[None] | None]


def check_progress(progress: Any) -> ProgressCallback | None:
    """Require ``progress`` to be ``None`` or a callable taking one event mapping."""
    if progress is not None and not callable(progress):
        raise InvalidInputError(
            f"progress must be a callable receiving one event dict (or None), got "
            f"{type(progress).__name__}"
        )
    callback: ProgressCallback | None = progress
    return callback


async def report(
    callback: ProgressCallback | None, event: str, *, level: str = "info", **fields: Any
) -> None:
    """Log ``event`` with ``fields``, then call ``callback({"event": event, **fields})``.

    ``level`` is the log level of the event (a fleet run's per-instance progress is ``debug``:
    each instance already logs its own outcome). The callback is awaited when it returns an
    awaitable. An exception it raises is logged as
    ``ecs_safe.progress.callback_failed`` and goes no further (cancellation still does).
    """
    getattr(logger, level)(event, **fields)
    if callback is None:
        return
    try:
        result = callback({"event": event, **fields})
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # the caller's code must not break the operation it watches
        logger.warning(
            "ecs_safe.progress.callback_failed",
            progress_event=event,
            error_type=type(exc).__name__,
            error=str(exc),
        )
