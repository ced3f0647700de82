"""The structured log events ecs-safe emits, built from the models ECS returned.

The library logs through ``structlog.get_logger("ecs_safe")`` and never configures logging: the
application (or the ``ecs-safe`` CLI) decides where events go. Event names are dotted and their
fields are data, so tests and log pipelines read them without parsing sentences.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecs_safe.errors import EcsSafeError
    from ecs_safe.models import ContainerInstance
    from ecs_safe.policy import Decision

__all__ = ["instance_fields", "log_failed", "log_refused", "log_succeeded", "logger"]


@functools.cache
def _structlog_logger() -> Any:
    import structlog  # noqa: PLC0415 - see _Logger

    return structlog.get_logger("ecs_safe")


class _Logger:
    """``structlog.get_logger("ecs_safe")``, looked up on first use.

    ``import structlog`` also imports rich and pygments whenever rich is installed (for its
    development tracebacks): about 100 ms that ``import ecs_safe`` should not cost before
    anything is logged. structlog's own logger is lazy in the same way (it reads the
    configuration when an event is logged), so this changes nothing else.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(_structlog_logger(), name)


#: The one logger of the library.
logger: Any = _Logger()


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
    """Emit ``ecs_safe.deregister.succeeded`` (also for a dry run, with ``dry_run=True``)."""
    logger.info(
        "ecs_safe.deregister.succeeded",
        cluster=cluster,
        **instance_fields(instance),
        forced=forced,
        dry_run=dry_run,
        request_id=request_id,
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
