"""Task states as ECS has them: the statuses, which of them ECS counts, and moving a task."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from ecs_safe.local.names import last_segment

if TYPE_CHECKING:
    from moto.ecs.models import EC2ContainerServiceBackend, Task

    from ecs_safe.local.traffic import Amend, Handler

#: moto's name for the task model in its state manager.
TASK_MODEL: Final = "ecs::task"
#: moto advances a task one status per `times` DescribeTasks calls; this many never happens.
FROZEN_TRANSITION: Final = {"progression": "manual", "times": 10**12}
TASK_STATUSES: Final = (
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
    "DELETED",
)
# From DEACTIVATING on, ECS has decided to stop the task: its desiredStatus is STOPPED.
STOPPING_STATUSES: Final = frozenset(TASK_STATUSES[TASK_STATUSES.index("DEACTIVATING") :])


class _TaskCounters(Protocol):
    """What ECS counts per container instance (and per cluster)."""

    running_tasks_count: int
    pending_tasks_count: int


def shift_counter(counters: _TaskCounters, status: str, delta: int) -> None:
    """Add ``delta`` to the counter that ECS keeps for tasks in ``status``, if any."""
    # ECS counts RUNNING and PENDING tasks only; every other status is in no counter.
    if status == "RUNNING":
        counters.running_tasks_count += delta
    elif status == "PENDING":
        counters.pending_tasks_count += delta


def set_task_status(
    backend: EC2ContainerServiceBackend, cluster: str, task: str, last_status: str
) -> None:
    """Put a task into ``last_status`` in moto's backend, with ECS's counters and desiredStatus.

    Raises:
        ValueError: ``last_status`` is not an ECS task status.
        LookupError: there is no such task in that cluster.
    """
    if last_status not in TASK_STATUSES:
        msg = f"last_status must be one of {', '.join(TASK_STATUSES)}, not {last_status!r}"
        raise ValueError(msg)
    cluster_name, task_id = last_segment(cluster), last_segment(task)
    found: Task | None = next(
        (t for t in backend.tasks.get(cluster_name, {}).values() if t.id == task_id), None
    )
    if found is None:
        msg = f"no task {task!r} in cluster {cluster!r}"
        raise LookupError(msg)
    previous = found.last_status
    if found.container_instance_arn:
        instance = backend.container_instances.get(cluster_name, {}).get(
            last_segment(found.container_instance_arn)
        )
        if instance is not None:
            shift_counter(instance, previous, -1)
            shift_counter(instance, last_status, +1)
    found.last_status = last_status
    found.desired_status = "STOPPED" if last_status in STOPPING_STATUSES else "RUNNING"
    if last_status == "STOPPED" and not found.stopped_reason:
        found.stopped_reason = "Stopped by LocalEcs.set_task_status"


def stop_tasks_on(
    backend: EC2ContainerServiceBackend, cluster: str, container_instance_arn: str, reason: str
) -> list[str]:
    """Stop every task on a container instance, as ECS does when its host goes; their ARNs."""
    stopped = []
    for task in list(backend.tasks.get(cluster, {}).values()):
        if task.container_instance_arn != container_instance_arn:
            continue
        if task.last_status in {"STOPPED", "DELETED"}:
            continue
        task.stopped_reason = reason
        set_task_status(backend, cluster, task.task_arn, "STOPPED")
        stopped.append(str(task.task_arn))
    return stopped


def _find(backend: EC2ContainerServiceBackend, cluster: str, task: str) -> Task | None:
    task_id = last_segment(task)
    return next((t for t in backend.tasks.get(cluster, {}).values() if t.id == task_id), None)


def stop_task_handler(backend: Callable[[], EC2ContainerServiceBackend]) -> Handler:
    """StopTask: moto's, with the instance's counters and resources kept as ECS keeps them.

    moto releases the task's resources and lowers ``runningTasksCount`` whatever the task's
    status. ECS lowers the counter of the task's own status (PENDING's, or none for a task
    already stopping) and does nothing to a task already STOPPED. The request is prepared
    here so that moto's release lands right: the counter moto will lower is raised first (a
    stopped task's reservation is taken again, for moto to give back).
    """

    def prepare(request: dict[str, Any]) -> None:
        moto = backend()
        cluster = last_segment(str(request.get("cluster") or "default"))
        found = _find(moto, cluster, str(request.get("task") or ""))
        if found is None or not found.container_instance_arn or found.last_status == "RUNNING":
            return
        instance = moto.container_instances.get(cluster, {}).get(
            last_segment(found.container_instance_arn)
        )
        if instance is None:
            return
        if found.last_status in {"STOPPED", "DELETED"}:
            moto.update_container_instance_resources(instance, found.resource_requirements or {})
        else:
            instance.running_tasks_count += 1
            shift_counter(instance, found.last_status, -1)

    return prepare


def list_tasks_handler(backend: Callable[[], EC2ContainerServiceBackend]) -> Handler:
    """ListTasks: moto's, with ``serviceName`` honoured (moto ignores it).

    ECS lists the tasks the service started; LocalEcs goes by the task's group
    (``service:NAME``), which is how ECS's own service tasks are marked.
    """

    def amend_for(request: dict[str, Any]) -> Amend | None:
        service = request.get("serviceName")
        if not service:
            return None
        cluster = last_segment(str(request.get("cluster") or "default"))
        group = f"service:{last_segment(str(service))}"

        def amend(response: dict[str, Any]) -> dict[str, Any]:
            tasks = backend().tasks.get(cluster, {})
            ids = {t.id for t in tasks.values() if t.group == group}
            response["taskArns"] = [
                arn for arn in response.get("taskArns") or [] if last_segment(arn) in ids
            ]
            return response

        return amend

    return amend_for
