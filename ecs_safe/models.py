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
    "ContainerInstance",
    "ContainerInstanceHealthStatus",
    "InstanceHealthCheckResult",
    "KeyValuePair",
    "Resource",
    "Tag",
    "Task",
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
