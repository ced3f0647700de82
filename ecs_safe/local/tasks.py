"""Task states as ECS has them: the statuses, which of them ECS counts, and moving a task."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from ecs_safe.local.names import last_segment
from ecs_safe.local.serializing import memo_picker

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


class TaskDescriber:
    """DescribeTasks answered here: tasks found by ID in their own cluster, MISSING for the rest.

    moto's DescribeTasks scans every task of every cluster for each requested one (by
    substring), ignores the cluster and reports nothing for an unknown task, and builds its
    serializer (the service model included) again on every request: ~60 ms for 100 tasks of a
    2,000-task cluster, ~100 ms of a 6,000-task one (``benchmarks/local_ops.py``). Here each
    cluster's tasks are indexed by ID (rebuilt only when moto adds a task), only the request's
    cluster is searched, an unknown task is a ``MISSING`` failure as ECS reports it, and
    moto's own serializer renders the tasks, built once and with its attribute look-ups
    memoised, so that the tasks' JSON is exactly moto's. Each described task is advanced as
    moto advances it (its transitions, `FROZEN_TRANSITION` or not).

    Requests moto would refuse (no such cluster, no tasks) are left to moto, for its errors.
    """

    def __init__(self, backend: Callable[[], EC2ContainerServiceBackend]) -> None:
        """Read moto's backend through ``backend`` (looked up per request)."""
        self._backend = backend
        self._lock = threading.Lock()
        # cluster name -> (moto's task dict it was built from, its size then, ID -> task).
        self._index: dict[str, tuple[dict[str, Task], int, dict[str, Task]]] = {}

    def __call__(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Answer DescribeTasks (``cluster``, ``tasks``, ``include``), or leave it to moto."""
        backend = self._backend()
        cluster = last_segment(str(request.get("cluster") or "default"))
        refs = request.get("tasks")
        if cluster not in backend.clusters or not refs or not isinstance(refs, list):
            return None
        include = request.get("include") or []
        return self.describe(backend, cluster, [str(r) for r in refs], "TAGS" in include)

    def describe(
        self, backend: EC2ContainerServiceBackend, cluster: str, refs: list[str], tags: bool
    ) -> dict[str, Any]:
        """The DescribeTasks response for ``refs`` (IDs or ARNs) in ``cluster``."""
        by_id = self._tasks_of(backend, cluster)
        found: dict[str, Task] = {}
        failures = []
        for ref in refs:
            task = by_id.get(last_segment(ref))
            if task is None:
                failures.append({"arn": _task_arn(backend, cluster, ref), "reason": "MISSING"})
            elif task.id not in found:
                found[task.id] = task
        for task in found.values():
            task.advance()
        return {**_serialized_tasks(list(found.values()), tags), "failures": failures}

    def _tasks_of(self, backend: EC2ContainerServiceBackend, cluster: str) -> dict[str, Task]:
        tasks = backend.tasks.get(cluster, {})
        with self._lock:
            kept = self._index.get(cluster)
            # moto only ever adds tasks to a cluster's dict (a reset makes new dicts).
            if kept is None or kept[0] is not tasks or kept[1] != len(tasks):
                kept = (tasks, len(tasks), {t.id: t for t in list(tasks.values())})
                self._index[cluster] = kept
            return kept[2]

    def reset(self) -> None:
        """Forget the index (moto's state is being cleared)."""
        with self._lock:
            self._index.clear()


def _task_arn(backend: EC2ContainerServiceBackend, cluster: str, ref: str) -> str:
    """The ARN ECS names an unknown task by in ``failures[]``: the request's, or one made."""
    if ref.startswith("arn:"):
        return ref
    region, account = backend.region_name, backend.account_id
    return f"arn:aws:ecs:{region}:{account}:task/{cluster}/{ref}"


def _serialized_tasks(found: list[Task], tags: bool) -> dict[str, Any]:
    """``{"tasks": [...]}`` as moto's own DescribeTasks serializer renders ``found``."""
    from moto.core.serialize import never_return  # noqa: PLC0415
    from moto.ecs.responses import (  # noqa: PLC0415
        DESCRIBE_TASKS_TAGS,
        EC2ContainerServiceResponse,
    )

    operation, serializer_class, picker_class = _serializer_parts()
    # moto's transformers, with TAGS in or out as moto's own handler would set them.
    transformers = dict(EC2ContainerServiceResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER)
    transformers[DESCRIBE_TASKS_TAGS] = (lambda x: x) if tags else never_return
    serializer = serializer_class(
        operation_model=operation,
        pretty_print=False,
        value_picker=picker_class(response_transformers=transformers),
    )
    body = serializer.serialize({"tasks": found, "failures": []})["body"]
    parsed: dict[str, Any] = json.loads(body)
    return {"tasks": parsed.get("tasks", [])}


@functools.cache
def _serializer_parts() -> tuple[Any, Any, Any]:
    """DescribeTasks's operation model, moto's JSON serializer and the memoising value picker.

    moto loads the service model for every response; its shapes are the same each time, so
    one load serves every request. The picker is the one every LocalEcs response uses
    (`ecs_safe.local.serializing`).
    """
    from moto.core.serialize import get_serializer_class  # noqa: PLC0415
    from moto.core.utils import get_service_model  # noqa: PLC0415

    service = get_service_model("ecs")
    operation = service.operation_model("DescribeTasks")
    return operation, get_serializer_class("ecs", "json"), memo_picker()
