"""`LocalEcs`: an ECS-compatible endpoint inside your process, for demos, notebooks and tests.

It serves moto's ECS (and the EC2 that ECS needs) on loopback, with seeding helpers, fault
injection (ECS, Auto Scaling, EC2 and SQS operations) and a per-operation request counter::

    from ecs_safe import EcsSafeClient
    from ecs_safe.local import LocalEcs

    async with LocalEcs() as local:
        local.create_cluster("prod")
        [arn] = local.register_instances("prod")
        async with EcsSafeClient(**local.client_kwargs()) as ecs:
            await ecs.deregister_container_instance(arn, cluster="prod")

moto is the optional extra ``local`` (``pip install 'ecs-safe[local]'``). It is imported only when
a `LocalEcs` starts, so importing this module is cheap; without it, `LocalEcs.start` raises
`LocalEcsUnavailableError`.

The package's files each model one part:

- `server`: the lifecycle (moto's app on loopback in a thread) and the `LocalEcs` facade;
- `traffic`: the WSGI middleware that counts requests, injects faults, and routes the
  operations LocalEcs answers itself;
- `seeding`: the helpers that create clusters, instances, services and tasks;
- `tasks`: ECS's task statuses and counters;
- `scheduler`: ECS's service scheduler (desired counts, placement, draining) for the services
  that opt in (``create_service(..., scheduler=True)``); see its docstring for the API;
- `state_lock`: requests shared, scheduler passes exclusive, over moto's state;
- `instances`, `query`: container instance listing, filters and tags; `autoscaling`,
  `lifecycle`: Auto Scaling groups and terminate lifecycle hooks; `scaling`: groups losing
  instances through the terminate hook (``Terminating:Wait``), termination leaving the
  cluster, new instances joining it; `events`: lifecycle, Spot and task events on SQS
  queues, in EventBridge's shape.

Things to know:

- moto keeps its state per *process*, not per server: two `LocalEcs` in one process share
  clusters and instances, and `LocalEcs.reset` clears moto for the whole process. The request
  counters and injected faults, on the other hand, belong to one `LocalEcs`.
- Task status is frozen by default (`LocalEcs.set_task_transitions`): left to itself, moto moves
  every described task one step towards STOPPED on each DescribeTasks call.
- Calls made by the seeding helpers are neither counted nor subject to injected faults, so the
  counters and faults concern the code under test only.
- moto is not ECS, and LocalEcs corrects only some of it: it describes a deregistered instance
  as INACTIVE (``LocalEcs(report_inactive=False)`` gives moto's MISSING), and StopTask lowers
  the counter of the task's own status (moto lowers ``runningTasksCount`` whatever the status,
  twice for a task stopped twice). Cluster-level task counters stay unreliable, tasks started
  by hand are RUNNING at once (``pendingTasksCount`` 0 unless `LocalEcs.set_task_status` or the
  scheduler made one PENDING), and malformed IDs give an HTTP 500 HTML page, not an AWS error.
"""

from __future__ import annotations

from ecs_safe.local.scheduler import SchedulerError, ServiceScheduler, TaskEvent
from ecs_safe.local.server import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    ClientKwargs,
    LocalEcs,
    LocalEcsUnavailableError,
)

__all__ = [
    "DUMMY_ACCESS_KEY_ID",
    "DUMMY_SECRET_ACCESS_KEY",
    "ClientKwargs",
    "LocalEcs",
    "LocalEcsUnavailableError",
    "SchedulerError",
    "ServiceScheduler",
    "TaskEvent",
]
