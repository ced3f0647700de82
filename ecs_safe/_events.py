"""The structured log events ecs-safe emits, built from the models ECS returned.

A library must not print on its own, so where events go is the application's choice:

- if the application configured structlog (``structlog.is_configured()``), events go to
  ``structlog.get_logger("ecs_safe")``, fields as key-value pairs (the ``ecs-safe`` CLI does this);
- otherwise they go to the standard library's ``logging.getLogger("ecs_safe")``: the message is
  ``"<event> key=value ..."`` and the record carries ``event`` (the name) and ``fields`` (a dict)
  as attributes, so a handler or formatter reads them as data. The logger has a
  ``NullHandler``, as the logging docs ask of libraries: with no logging set up, nothing is
  printed (not even warnings on stderr).

Event names are dotted and their fields are data, so tests and log pipelines read them without
parsing sentences.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final

from ecs_safe._terminal import inert

if TYPE_CHECKING:
    from ecs_safe.errors import EcsSafeError
    from ecs_safe.models import ContainerInstance
    from ecs_safe.policy import Decision

__all__ = [
    "STDLIB_LOGGER",
    "console_renderer",
    "inert_values",
    "instance_fields",
    "log_failed",
    "log_planned",
    "log_refused",
    "log_succeeded",
    "logger",
]

#: The standard-library logger events go to while structlog is not configured.
STDLIB_LOGGER: Final = logging.getLogger("ecs_safe")
STDLIB_LOGGER.addHandler(logging.NullHandler())

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
}


@functools.cache
def _structlog_logger() -> Any:
    import structlog  # noqa: PLC0415 - see _Logger

    return structlog.get_logger("ecs_safe")


def _structlog_configured() -> bool:
    # Not imported means not configured: ``import structlog`` also imports rich and pygments
    # whenever rich is installed (about 100 ms) that ``import ecs_safe`` should not cost.
    structlog = sys.modules.get("structlog")
    return structlog is not None and bool(structlog.is_configured())


class _Fields:
    """The fields of a stdlib record's message, rendered only if a handler formats it."""

    __slots__ = ("fields",)

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields

    def __str__(self) -> str:
        return " ".join(
            f"{key}={inert(value) if isinstance(value, str) else inert(repr(value))}"
            for key, value in self.fields.items()
        )


def _emit(method: str, event: str, **fields: Any) -> None:
    if _structlog_configured():
        getattr(_structlog_logger(), method)(event, **fields)
        return
    level = _LEVELS[method]
    if STDLIB_LOGGER.isEnabledFor(level):
        STDLIB_LOGGER.log(
            level,
            "%s %s",
            event,
            _Fields(fields),
            exc_info=method == "exception",
            extra={"event": event, "fields": dict(fields)},
            stacklevel=2,  # the line that logged the event
        )


class _Logger:
    """The library's logger: structlog's when the application configured structlog, else stdlib's.

    Only the level methods (``debug`` ... ``critical``, ``exception``) are offered: an event is
    a name and fields, nothing is bound.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name not in _LEVELS:
            raise AttributeError(name)
        return functools.partial(_emit, name)


#: The one logger of the library.
logger: Any = _Logger()


def inert_values(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: every string value made inert (`ecs_safe._terminal.inert`).

    Other values are shown by their ``repr``, which escapes control characters already.
    """
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = inert(value)
    return event_dict


def console_renderer(*, colors: bool) -> Callable[[Any, str, MutableMapping[str, Any]], str]:
    """The console renderer of structlog, after `inert_values`.

    What the endpoint said cannot steer the terminal it is printed on.
    """
    import structlog  # noqa: PLC0415 - only a console needs it

    render = structlog.dev.ConsoleRenderer(colors=colors)

    def renderer(logger_: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        return str(render(logger_, method, inert_values(logger_, method, event_dict)))

    return renderer


def instance_fields(instance: ContainerInstance) -> dict[str, Any]:
    """The fields every instance event carries, read from the returned model."""
    return {
        "container_instance_arn": instance.container_instance_arn,
        "ec2_instance_id": instance.ec2_instance_id,
        "status": instance.status,
        "running_tasks_count": instance.running_tasks_count,
        "pending_tasks_count": instance.pending_tasks_count,
        "agent_connected": instance.agent_connected,
    }


def log_succeeded(
    instance: ContainerInstance,
    *,
    cluster: str | None,
    forced: bool,
    dry_run: bool,
    request_id: str | None,
    **extra: Any,
) -> None:
    """Emit ``ecs_safe.deregister.succeeded``: an instance was deregistered (not a plan)."""
    logger.info(
        "ecs_safe.deregister.succeeded",
        cluster=cluster,
        **instance_fields(instance),
        forced=forced,
        dry_run=dry_run,
        request_id=request_id,
        **extra,
    )


def log_planned(
    instance: ContainerInstance,
    *,
    cluster: str | None,
    forced: bool,
    **extra: Any,
) -> None:
    """Emit ``ecs_safe.deregister.planned``: a dry run that would deregister ``instance``.

    Its own event, so that an alert on ``succeeded`` never fires on a plan. The fields are
    those of ``succeeded`` (``dry_run`` is always ``True``, ``request_id`` ``None``).
    """
    logger.info(
        "ecs_safe.deregister.planned",
        cluster=cluster,
        **instance_fields(instance),
        forced=forced,
        dry_run=True,
        request_id=None,
        **extra,
    )


def log_refused(
    instance: ContainerInstance | None,
    *,
    cluster: str | None,
    container_instance: str,
    decision: Decision,
    forced: bool,
    dry_run: bool,
) -> None:
    """Emit ``ecs_safe.deregister.refused`` with every violation."""
    fields = (
        instance_fields(instance)
        if instance is not None
        else {"container_instance_arn": container_instance}
    )
    logger.warning(
        "ecs_safe.deregister.refused",
        cluster=cluster,
        **fields,
        forced=forced,
        dry_run=dry_run,
        violations=[{"rule": v.rule, "message": v.message} for v in decision.violations],
    )


def log_failed(error: EcsSafeError, *, cluster: str | None, container_instance: str) -> None:
    """Emit ``ecs_safe.deregister.failed`` for an error that is not a policy refusal."""
    logger.error(
        "ecs_safe.deregister.failed",
        cluster=cluster,
        container_instance=container_instance,
        error_code=error.code,
        request_id=getattr(error, "request_id", None),
        error=str(error),
    )
