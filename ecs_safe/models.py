"""Typed, forward-compatible models of the ECS shapes ecs-safe reads and returns.

Every AWS shape is modelled after botocore's current ECS service model, with snake_case
attributes and AWS's camelCase names as aliases::

    instance = ContainerInstance.model_validate(response["containerInstance"])
    instance.running_tasks_count               # typed access
    instance.model_dump(by_alias=True)         # the AWS shape that went in, exactly

Responses are parsed leniently, because a successful call must never be reported as a
failure only because its response had a surprising shape:

- every field is optional and defaults to ``None`` (lists too), and a field that was absent
  from the input is absent from every dump (``model_dump``, ``model_dump(by_alias=True)``,
  ``model_dump(mode="json")``), so a dump gives back what went in;
- unknown fields are kept (``model_extra``) and dumped back unchanged;
- enum-like fields are plain ``str``: a value AWS adds later is kept as it is;
- values are coerced where pydantic's lax mode does so safely (``"12"`` for an integer,
  an epoch number or an ISO string for a timestamp);
- a value that still does not fit its field (``"lots"`` for an integer, a string where a
  list belongs) is **kept, not rejected**: the typed attribute stays ``None`` (so its type
  never lies) and the raw value is moved to ``model_extra`` under the key it came with, from
  where dumps emit it unchanged. Code that needs the field sees ``None`` ("unknown") and must
  treat it as such; the policy rules do, and refuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ecs_safe import _html

__all__ = [
    "Attachment",
    "Attribute",
    "AutoScalingGroupProvider",
    "AutoScalingGroupState",
    "AutoScalingInstance",
    "CapacityProvider",
    "CapacityProviderStrategyItem",
    "ContainerDefinition",
    "ContainerInstance",
    "ContainerInstanceHealthStatus",
    "Deployment",
    "DeploymentCircuitBreaker",
    "DeploymentConfiguration",
    "Ec2Instance",
    "InstanceHealthCheckResult",
    "KeyValuePair",
    "LifecycleHook",
    "ManagedScaling",
    "PlacementConstraint",
    "PortMapping",
    "QueueMessage",
    "Resource",
    "Service",
    "Tag",
    "Task",
    "TaskDefinition",
    "TaskKind",
    "VersionInfo",
    "classify_task",
    "service_name",
]

TaskKind = Literal["service", "daemon", "standalone"]
"""How a task is managed: by a service, by a daemon service, or by no service at all."""

_SERVICE_GROUP_PREFIX = "service:"
_SERVICE_STARTED_BY_PREFIX = "ecs-svc/"


class _AwsModel(BaseModel):
    """Base of every model: camelCase aliases, lenient parsing, dumps that omit absent fields."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        alias_generator=to_camel,
        use_attribute_docstrings=True,
    )

    @model_validator(mode="wrap")
    @classmethod
    def _keep_values_that_do_not_fit(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        """Validate; on failure move each offending top-level value to ``model_extra``.

        Errors inside nested models are handled by the nested model itself, so what reaches
        this level is a value of the wrong shape altogether (a string where a list belongs).
        Errors that are not about a value present in the input (a missing required field of
        our own, such as ``Task.kind``) are raised.
        """
        try:
            return handler(data)
        except ValidationError as exc:
            if not isinstance(data, Mapping):
                raise
            offending = {err["loc"][0] for err in exc.errors() if err["loc"]}
            if not offending or not offending <= data.keys():
                raise
            kept = {key: value for key, value in data.items() if key not in offending}
            instance = handler(kept)
        moved = {str(key): data[key] for key in offending}
        if instance.__pydantic_extra__ is None:  # pragma: no cover - extra="allow" sets it
            instance.__pydantic_extra__ = {}
        instance.__pydantic_extra__.update(moved)
        instance.__pydantic_fields_set__.update(moved)
        return instance

    @model_serializer(mode="wrap")
    def _omit_absent_fields(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        """Dump only the fields that were set, so a dump reproduces the input's shape."""
        dumped = handler(self)
        if not isinstance(dumped, dict):  # pragma: no cover - a model always dumps to a dict
            return dumped
        extra = self.__pydantic_extra__ or {}
        for name in type(self).model_fields.keys() - self.model_fields_set:
            field = type(self).model_fields[name]
            for key in {name, field.alias or name}:
                # An extra under the same key is a kept value that did not fit: dump it.
                if key not in extra:
                    dumped.pop(key, None)
        return dumped


class VersionInfo(_AwsModel):
    """Versions of the ECS container agent and the Docker daemon on a container instance."""

    agent_version: str | None = None
    """The version number of the Amazon ECS container agent."""
    agent_hash: str | None = None
    """The Git commit hash of the Amazon ECS container agent build."""
    docker_version: str | None = None
    """The Docker version running on the container instance."""


class Resource(_AwsModel):
    """A resource of a container instance (CPU, memory, ports, or a user-defined one)."""

    name: str | None = None
    """The resource name, such as ``CPU``, ``MEMORY``, ``PORTS``, ``PORTS_UDP`` or a custom name."""
    type: str | None = None
    """The value type: ``INTEGER``, ``DOUBLE``, ``LONG`` or ``STRINGSET``."""
    double_value: float | None = None
    """The value, when ``type`` is ``DOUBLE``."""
    long_value: int | None = None
    """The value, when ``type`` is ``LONG``."""
    integer_value: int | None = None
    """The value, when ``type`` is ``INTEGER``."""
    string_set_value: list[str] | None = None
    """The value, when ``type`` is ``STRINGSET`` (for example the reserved ports)."""


class Attribute(_AwsModel):
    """A name-value pair attached to an ECS object (here: to the container instance)."""

    name: str | None = None
    """The attribute name."""
    value: str | None = None
    """The attribute value, if any."""
    target_type: str | None = None
    """The type of the target the attribute is attached to; known value: ``container-instance``."""
    target_id: str | None = None
    """The short ID or full ARN of the target."""


class KeyValuePair(_AwsModel):
    """A name-value pair, as used in an attachment's details."""

    name: str | None = None
    """The name of the pair."""
    value: str | None = None
    """The value of the pair."""


class Attachment(_AwsModel):
    """A resource attached to a container instance or task, such as an elastic network interface."""

    id: str | None = None
    """The unique identifier of the attachment."""
    type: str | None = None
    """The type of the attachment, such as ``ElasticNetworkInterface``."""
    status: str | None = None
    """The attachment status.

    Known values: ``PRECREATED``, ``CREATED``, ``ATTACHING``, ``ATTACHED``, ``DETACHING``,
    ``DETACHED``, ``DELETED``, ``FAILED``.
    """
    details: list[KeyValuePair] | None = None
    """Details of the attachment (for an ENI: ID, MAC address, subnet, private IPv4 address)."""


class Tag(_AwsModel):
    """A tag: a key and an optional value."""

    key: str | None = None
    """The tag key."""
    value: str | None = None
    """The tag value, if any."""


class InstanceHealthCheckResult(_AwsModel):
    """The result of one health check of a container instance."""

    type: str | None = None
    """The kind of check.

    Known values: ``CONTAINER_RUNTIME``, ``ACCELERATED_COMPUTE``, ``DAEMON``,
    ``AGENT_CONNECTIVITY``.
    """
    status: str | None = None
    """The check's result.

    Known values: ``OK``, ``IMPAIRED``, ``INSUFFICIENT_DATA``, ``INITIALIZING``.
    """
    status_reason: str | None = None
    """Why the check has its current status."""
    last_updated: datetime | None = None
    """When the check's status was last updated."""
    last_status_change: datetime | None = None
    """When the check's status last changed."""


class ContainerInstanceHealthStatus(_AwsModel):
    """The health of a container instance: an overall status and the individual checks."""

    overall_status: str | None = None
    """The aggregate of all checks.

    Known values: ``OK``, ``IMPAIRED``, ``INSUFFICIENT_DATA``, ``INITIALIZING``.
    """
    details: list[InstanceHealthCheckResult] | None = None
    """The individual health checks."""


class ContainerInstance(_AwsModel):
    """An ECS container instance, as the Describe and Deregister calls return it.

    Besides the AWS fields it offers two read-only conveniences, :attr:`instance_id` and
    :attr:`cluster_name`, derived from the ARN (they are properties, never dumped).
    """

    container_instance_arn: str | None = None
    """The ARN of the container instance."""
    ec2_instance_id: str | None = None
    """The EC2 instance ID (for external instances: the Systems Manager managed instance ID)."""
    capacity_provider_name: str | None = None
    """The capacity provider associated with the container instance."""
    version: int | None = None
    """The version counter, incremented on every change that triggers a CloudWatch event."""
    version_info: VersionInfo | None = None
    """Versions of the container agent and the Docker daemon on the instance."""
    remaining_resources: list[Resource] | None = None
    """Resources not yet allocated to tasks (CPU, memory) and ports already reserved."""
    registered_resources: list[Resource] | None = None
    """Resources the instance had when the container agent registered it."""
    status: str | None = None
    """The instance status.

    Known values: ``REGISTERING``, ``REGISTRATION_FAILED``, ``ACTIVE``, ``INACTIVE``,
    ``DEREGISTERING``, ``DRAINING``.
    """
    status_reason: str | None = None
    """Why the instance reached its current status."""
    agent_connected: bool | None = None
    """Whether the container agent is connected to ECS (only then can the instance take tasks)."""
    running_tasks_count: int | None = None
    """The number of tasks in the ``RUNNING`` status on the instance."""
    pending_tasks_count: int | None = None
    """The number of tasks in the ``PENDING`` status on the instance."""
    agent_update_status: str | None = None
    """The status of the latest agent update.

    Known values: ``PENDING``, ``STAGING``, ``STAGED``, ``UPDATING``, ``UPDATED``, ``FAILED``.
    """
    attributes: list[Attribute] | None = None
    """Attributes set by the container agent at registration or with PutAttributes."""
    registered_at: datetime | None = None
    """When the container instance was registered."""
    attachments: list[Attachment] | None = None
    """Resources attached to the instance, such as an elastic network interface."""
    tags: list[Tag] | None = None
    """The tags of the container instance."""
    health_status: ContainerInstanceHealthStatus | None = None
    """The health of the container instance."""

    @property
    def instance_id(self) -> str | None:
        """The container instance ID: the last path segment of the ARN (``None`` without an ARN)."""
        if not self.container_instance_arn:
            return None
        return self.container_instance_arn.rsplit("/", 1)[-1]

    @property
    def cluster_name(self) -> str | None:
        """The cluster name from a long ARN (``…:container-instance/CLUSTER/ID``), else ``None``."""
        arn = self.container_instance_arn
        if not arn:
            return None
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            return None
        path = parts[5].split("/")
        if len(path) == 3 and path[0] == "container-instance" and path[1]:
            return path[1]
        return None

    def _repr_html_(self) -> str:
        """Jupyter's rich display: a compact table of the fields that matter when removing it."""
        return _html.container_instance(self)


def service_name(group: str | None) -> str | None:
    """Return the service name in a ``group`` (``service:NAME`` gives ``NAME``), else ``None``."""
    if group is None or not group.startswith(_SERVICE_GROUP_PREFIX):
        return None
    return group.removeprefix(_SERVICE_GROUP_PREFIX) or None


def classify_task(
    group: str | None,
    started_by: str | None,
    daemon_services: Set[str] = frozenset(),
    services: Set[str] | None = None,
) -> TaskKind:
    """Tell how a task is managed, from its ``group`` and ``startedBy``.

    ``services``, when given, names the services known to exist in the cluster (ACTIVE or
    DRAINING). Then a task is a service task only when its group is ``service:NAME`` for one
    of them *and* its ``startedBy`` starts with ``ecs-svc/``: anyone can set both labels on
    RunTask or StartTask, and a task taken for a service task that no service will replace is
    lost when forced off its instance, so anything else is standalone (fail closed). Without
    ``services``, the labels alone decide: a group ``service:NAME`` or a ``startedBy``
    ``ecs-svc/...`` makes a service task.

    A service task whose service name is in ``daemon_services`` (services with the ``DAEMON``
    scheduling strategy) is a daemon task. Everything else (``family:NAME``, no group) is
    standalone: no scheduler will replace it elsewhere.
    """
    name = service_name(group)
    by_service = started_by is not None and started_by.startswith(_SERVICE_STARTED_BY_PREFIX)
    if services is not None:
        is_service = name is not None and name in services and by_service
    else:
        is_service = (group is not None and group.startswith(_SERVICE_GROUP_PREFIX)) or by_service
    if not is_service:
        return "standalone"
    if name is not None and name in daemon_services:
        return "daemon"
    return "service"


class Task(_AwsModel):
    """A task on a container instance, as DescribeTasks returns it, classified by ``kind``.

    Build it with :meth:`from_api`, which computes ``kind``. Every other DescribeTasks field
    is kept (``model_extra``) and dumped back.
    """

    task_arn: str | None = None
    """The ARN of the task."""
    last_status: str | None = None
    """The last known status.

    Known values include ``PROVISIONING``, ``PENDING``, ``ACTIVATING``, ``RUNNING``,
    ``DEACTIVATING``, ``STOPPING``, ``DEPROVISIONING``, ``STOPPED``.
    """
    desired_status: str | None = None
    """The status ECS wants the task in, such as ``RUNNING`` or ``STOPPED``."""
    group: str | None = None
    """The task group: ``service:NAME`` for service tasks, ``family:NAME`` by default otherwise."""
    started_by: str | None = None
    """Who started the task; ``ecs-svc/…`` for tasks a service started."""
    launch_type: str | None = None
    """The launch type; known values: ``EC2``, ``FARGATE``, ``EXTERNAL``, ``MANAGED_INSTANCES``."""
    container_instance_arn: str | None = None
    """The ARN of the container instance hosting the task."""
    task_definition_arn: str | None = None
    """The ARN of the task definition."""
    cluster_arn: str | None = None
    """The ARN of the cluster hosting the task."""
    stop_code: str | None = None
    """Why the task stopped.

    Known values: ``TaskFailedToStart``, ``EssentialContainerExited``, ``UserInitiated``,
    ``ServiceSchedulerInitiated``, ``SpotInterruption``, ``TerminationNotice``,
    ``InfrastructureHealth``.
    """
    stopped_reason: str | None = None
    """The reason the task stopped, in words."""
    created_at: datetime | None = None
    """When the task was created."""
    started_at: datetime | None = None
    """When the task started."""
    kind: TaskKind
    """Ours, not AWS's: ``service``, ``daemon`` or ``standalone`` (see :func:`classify_task`)."""

    @classmethod
    def from_api(
        cls,
        task: Mapping[str, Any],
        daemon_services: Set[str] = frozenset(),
        services: Set[str] | None = None,
    ) -> Task:
        """Build a task from a DescribeTasks ``tasks[]`` entry, classifying it.

        ``daemon_services`` names the services with the ``DAEMON`` scheduling strategy, and
        ``services`` (when known) the services that exist (see `classify_task`). A ``group``
        or ``startedBy`` that is not a string counts as absent.
        """
        group = task.get("group")
        started_by = task.get("startedBy")
        kind = classify_task(
            group if isinstance(group, str) else None,
            started_by if isinstance(started_by, str) else None,
            daemon_services,
            services,
        )
        return cls.model_validate({**task, "kind": kind})


# --- services, task definitions and capacity providers ---------------------------------------
# Read by the service-aware checks (room elsewhere, disruption budgets, the steady-state gate).
# Only the fields those checks read are typed; every other field AWS sends is kept
# (``model_extra``) and dumped back, as for every model here.


class DeploymentCircuitBreaker(_AwsModel):
    """A deployment circuit breaker: whether a failing deployment stops (and rolls back)."""

    enable: bool | None = None
    """Whether the circuit breaker is on."""
    rollback: bool | None = None
    """Whether a failed deployment rolls back to the last completed one."""


class DeploymentConfiguration(_AwsModel):
    """How many of a service's tasks may run, in percent of ``desiredCount``, during a deployment.

    The same limits bound what the service scheduler does when an instance is DRAINING.
    """

    maximum_percent: int | None = None
    """The upper limit of tasks RUNNING or PENDING (ECS's default: 200)."""
    minimum_healthy_percent: int | None = None
    """The lower limit of tasks that must stay RUNNING (ECS's default: 100 for REPLICA)."""
    deployment_circuit_breaker: DeploymentCircuitBreaker | None = None
    """The deployment circuit breaker, if configured."""


class CapacityProviderStrategyItem(_AwsModel):
    """One capacity provider of a strategy, with its weight and base."""

    capacity_provider: str | None = None
    """The short name of the capacity provider."""
    weight: int | None = None
    """The relative share of tasks placed with this capacity provider."""
    base: int | None = None
    """How many tasks at least run on this capacity provider."""


class PlacementConstraint(_AwsModel):
    """A task placement constraint: ``distinctInstance``, or ``memberOf`` with an expression."""

    type: str | None = None
    """Known values: ``distinctInstance``, ``memberOf``."""
    expression: str | None = None
    """The cluster query language expression of a ``memberOf`` constraint."""


class Deployment(_AwsModel):
    """One deployment of a service (the PRIMARY one, or an ACTIVE one being replaced)."""

    id: str | None = None
    """The ID of the deployment."""
    status: str | None = None
    """Known values: ``PRIMARY`` (the newest), ``ACTIVE`` (being replaced), ``INACTIVE``."""
    task_definition: str | None = None
    """The ARN of the task definition the deployment runs."""
    desired_count: int | None = None
    """The number of tasks the deployment wants running."""
    pending_count: int | None = None
    """The number of the deployment's tasks in PENDING."""
    running_count: int | None = None
    """The number of the deployment's tasks in RUNNING."""
    failed_tasks: int | None = None
    """The number of the deployment's tasks that failed to reach RUNNING."""
    rollout_state: str | None = None
    """Known values: ``COMPLETED``, ``FAILED``, ``IN_PROGRESS``."""
    rollout_state_reason: str | None = None
    """Why the rollout is in its state."""
    launch_type: str | None = None
    """The launch type of the deployment's tasks."""
    capacity_provider_strategy: list[CapacityProviderStrategyItem] | None = None
    """The capacity provider strategy of the deployment."""
    created_at: datetime | None = None
    """When the deployment was created."""
    updated_at: datetime | None = None
    """When the deployment was last updated."""


class Service(_AwsModel):
    """An ECS service, as DescribeServices returns it (the fields the safety checks read)."""

    service_name: str | None = None
    """The name of the service."""
    service_arn: str | None = None
    """The ARN of the service."""
    cluster_arn: str | None = None
    """The ARN of the cluster the service runs in."""
    status: str | None = None
    """Known values: ``ACTIVE``, ``DRAINING`` (being deleted), ``INACTIVE`` (deleted)."""
    desired_count: int | None = None
    """The number of tasks the service wants running."""
    running_count: int | None = None
    """The number of the service's tasks in RUNNING."""
    pending_count: int | None = None
    """The number of the service's tasks in PENDING."""
    scheduling_strategy: str | None = None
    """Known values: ``REPLICA``, ``DAEMON`` (one task on every instance that fits)."""
    launch_type: str | None = None
    """The launch type; known values: ``EC2``, ``FARGATE``, ``EXTERNAL``, ``MANAGED_INSTANCES``."""
    capacity_provider_strategy: list[CapacityProviderStrategyItem] | None = None
    """The capacity provider strategy of the service, if it uses one."""
    task_definition: str | None = None
    """The ARN of the task definition of the PRIMARY deployment."""
    deployment_configuration: DeploymentConfiguration | None = None
    """The limits the scheduler keeps to while replacing tasks (deployments and draining)."""
    deployments: list[Deployment] | None = None
    """The service's current deployments."""
    placement_constraints: list[PlacementConstraint] | None = None
    """The placement constraints of the service's tasks."""

    @property
    def is_daemon(self) -> bool:
        """Whether the service runs one task per instance (``schedulingStrategy == "DAEMON"``)."""
        return self.scheduling_strategy == "DAEMON"


class PortMapping(_AwsModel):
    """A container's port mapping; a ``hostPort`` other than 0 reserves that port on the host."""

    container_port: int | None = None
    """The port the container listens on."""
    host_port: int | None = None
    """The port reserved on the container instance (0 or absent: a dynamic port)."""
    protocol: str | None = None
    """Known values: ``tcp``, ``udp``."""


class ContainerDefinition(_AwsModel):
    """A container of a task definition (the fields that reserve room on an instance)."""

    name: str | None = None
    """The container's name."""
    cpu: int | None = None
    """CPU units reserved for the container."""
    memory: int | None = None
    """The hard memory limit in MiB (reserved when ``memoryReservation`` is absent)."""
    memory_reservation: int | None = None
    """The soft memory limit in MiB (what is reserved on the instance, when given)."""
    port_mappings: list[PortMapping] | None = None
    """The container's port mappings."""


class TaskDefinition(_AwsModel):
    """A task definition revision, as DescribeTaskDefinition returns it (what placement reads)."""

    task_definition_arn: str | None = None
    """The ARN of the revision."""
    family: str | None = None
    """The family of the task definition."""
    revision: int | None = None
    """The revision number within the family."""
    cpu: str | None = None
    """Task-level CPU units (a string in AWS's shape, e.g. ``"256"``), if set."""
    memory: str | None = None
    """Task-level memory in MiB (a string in AWS's shape, e.g. ``"512"``), if set."""
    network_mode: str | None = None
    """Known values: ``bridge``, ``host``, ``awsvpc``, ``none``."""
    container_definitions: list[ContainerDefinition] | None = None
    """The containers of the task."""
    placement_constraints: list[PlacementConstraint] | None = None
    """The placement constraints of the task definition (``memberOf`` only in AWS)."""
    status: str | None = None
    """Known values: ``ACTIVE``, ``INACTIVE``, ``DELETE_IN_PROGRESS``."""


class ManagedScaling(_AwsModel):
    """A capacity provider's managed scaling: whether ECS scales its Auto Scaling group."""

    status: str | None = None
    """Known values: ``ENABLED``, ``DISABLED``."""
    target_capacity: int | None = None
    """The target utilisation of the group, in percent."""
    minimum_scaling_step_size: int | None = None
    """The fewest instances added or removed at once."""
    maximum_scaling_step_size: int | None = None
    """The most instances added or removed at once."""


class AutoScalingGroupProvider(_AwsModel):
    """The Auto Scaling group behind a capacity provider and what ECS manages of it."""

    auto_scaling_group_arn: str | None = None
    """The ARN of the Auto Scaling group."""
    managed_scaling: ManagedScaling | None = None
    """Managed scaling of the group."""
    managed_termination_protection: str | None = None
    """Known values: ``ENABLED``, ``DISABLED``."""
    managed_draining: str | None = None
    """Whether ECS drains the instances the group terminates; ``ENABLED`` or ``DISABLED``."""


class CapacityProvider(_AwsModel):
    """An ECS capacity provider, as DescribeCapacityProviders returns it."""

    capacity_provider_arn: str | None = None
    """The ARN of the capacity provider."""
    name: str | None = None
    """The name of the capacity provider."""
    status: str | None = None
    """Known values: ``ACTIVE``, ``INACTIVE``."""
    auto_scaling_group_provider: AutoScalingGroupProvider | None = None
    """The Auto Scaling group behind it (absent for FARGATE and FARGATE_SPOT)."""

    @property
    def managed_scaling_enabled(self) -> bool:
        """Whether ECS adds instances to this provider's group when tasks do not fit."""
        provider = self.auto_scaling_group_provider
        scaling = provider.managed_scaling if provider else None
        return scaling is not None and scaling.status == "ENABLED"


# --------------------------------------------------------------------- Auto Scaling, EC2, SQS


class _Snapshot(BaseModel):
    """Base of the Auto Scaling, EC2 and SQS models: read-only values made by the call layer.

    Unlike the ECS shapes above, these are not AWS's shapes dumped back: `ecs_safe._aws_calls`
    reads the few fields ecs-safe decides on out of each response and names them plainly.
    """

    model_config = ConfigDict(frozen=True, extra="allow", use_attribute_docstrings=True)


class LifecycleHook(_Snapshot):
    """An Auto Scaling lifecycle hook, as DescribeLifecycleHooks returns it."""

    name: str
    """The hook's name (``LifecycleHookName``)."""
    group: str
    """The Auto Scaling group it belongs to."""
    transition: str
    """``autoscaling:EC2_INSTANCE_TERMINATING`` or ``autoscaling:EC2_INSTANCE_LAUNCHING``."""
    heartbeat_timeout: int
    """Seconds an instance waits in the hook before the default result applies, unless a
    heartbeat (RecordLifecycleActionHeartbeat) restarts the count."""
    global_timeout: int
    """The most seconds an instance can stay in the hook whatever the heartbeats (AWS: 48
    hours or 100 times the heartbeat timeout, whichever is smaller)."""
    default_result: str
    """``CONTINUE`` or ``ABANDON``: what happens when the heartbeat timeout passes."""


class AutoScalingInstance(_Snapshot):
    """A member of an Auto Scaling group, as DescribeAutoScalingInstances returns it."""

    instance_id: str
    """The EC2 instance ID."""
    group: str
    """The group the instance belongs to."""
    lifecycle_state: str
    """E.g. ``InService``, ``Terminating:Wait``, ``Terminating:Proceed``, ``Terminated``."""
    protected_from_scale_in: bool = False
    """Whether the group's scale-in protection covers the instance."""
    health_status: str | None = None
    """``HEALTHY`` or ``UNHEALTHY``, as Auto Scaling sees it."""


class AutoScalingGroupState(_Snapshot):
    """An Auto Scaling group's sizes and members, as DescribeAutoScalingGroups returns them."""

    name: str
    """The group's name."""
    min_size: int
    """The fewest instances the group keeps."""
    max_size: int
    """The most instances the group may have."""
    desired_capacity: int
    """How many instances the group is keeping now."""
    instances: list[AutoScalingInstance] = []
    """The group's members, in the order Auto Scaling lists them."""


class Ec2Instance(_Snapshot):
    """An EC2 instance, as DescribeInstances returns it."""

    instance_id: str
    """The EC2 instance ID."""
    state: str
    """``pending``, ``running``, ``stopping``, ``stopped``, ``shutting-down``, ``terminated``."""
    lifecycle: str = "on-demand"
    """``spot``, ``on-demand`` (AWS leaves the field out for those), ``scheduled``, ..."""
    group: str | None = None
    """The Auto Scaling group it belongs to (its ``aws:autoscaling:groupName`` tag), if any."""


class QueueMessage(_Snapshot):
    """A message received from an SQS queue."""

    message_id: str
    """SQS's ID of the message (the same on every delivery of it)."""
    receipt_handle: str
    """The handle of this delivery: what deleting it or extending its visibility needs."""
    body: str
    """The message body, as sent."""
    receive_count: int = 1
    """How many times SQS has delivered the message (``ApproximateReceiveCount``)."""
