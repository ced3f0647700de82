"""Seeding: the clusters, instances, services and tasks a test or demo starts from.

`Seeding` is the part of `LocalEcs` that creates things; its calls are marked internal, so
they are neither counted nor failed by injected faults.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

from ecs_safe.local.names import last_segment

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from moto.ecs.models import EC2ContainerServiceBackend

    from ecs_safe.local.scheduler import ServiceScheduler

# An AMI that moto ships in every Region, so run_instances needs no setup.
AMI_ID: Final = "ami-1e749f67"
# StartTask takes at most 10 container instances per call.
_START_TASK_BATCH: Final = 10
#: The CPU units a seeded task definition reserves unless told otherwise.
DEFAULT_CPU: Final = 10
#: The memory (MiB) a seeded task definition reserves unless told otherwise.
DEFAULT_MEMORY: Final = 32


def _check_service_settings(
    strategy: str, desired: int | None, minimum: int | None, maximum: int | None
) -> None:
    """Refuse what ECS's CreateService would refuse, before anything is created."""
    if strategy not in ("REPLICA", "DAEMON"):
        msg = f"scheduling_strategy must be 'REPLICA' or 'DAEMON', not {strategy!r}"
        raise ValueError(msg)
    if strategy == "DAEMON" and desired is not None:
        msg = "a DAEMON service takes no desired_count: it runs one task per instance"
        raise ValueError(msg)
    if desired is not None and desired < 0:
        msg = f"desired_count must be 0 or more, not {desired}"
        raise ValueError(msg)
    if minimum is not None and not 0 <= minimum <= 100:
        msg = f"minimum_healthy_percent must be between 0 and 100, not {minimum}"
        raise ValueError(msg)
    if maximum is not None and maximum < (minimum or 0):
        msg = f"maximum_percent ({maximum}) must not be below minimum_healthy_percent"
        raise ValueError(msg)


class Seeding:
    """The seeding helpers of `LocalEcs` (create_cluster, register_instances, ...)."""

    def _client(self, service: str) -> Any:
        """The seeding helpers' botocore client for ``service`` (`LocalEcs` provides it)."""
        raise NotImplementedError

    def _ecs_backend(self) -> EC2ContainerServiceBackend:
        """The in-process moto ECS backend for this Region (`LocalEcs` provides it)."""
        raise NotImplementedError

    def _exclusive(self) -> AbstractContextManager[None]:
        """Hold moto's state alone, for a direct backend write (`LocalEcs` provides it)."""
        raise NotImplementedError

    @property
    def scheduler(self) -> ServiceScheduler:
        """The service scheduler (`LocalEcs` provides it)."""
        raise NotImplementedError

    def _registered(self, cluster_name: str, ec2_instance_ids: list[str]) -> list[str]:
        """Register EC2 instances in a cluster straight in moto's backend; their ARNs."""
        with self._exclusive():
            return self._register_now(cluster_name, ec2_instance_ids)

    def _register_now(self, cluster_name: str, ec2_instance_ids: list[str]) -> list[str]:
        backend = self._ecs_backend()
        from moto.ec2.models import ec2_backends  # noqa: PLC0415

        ec2 = ec2_backends[backend.account_id][backend.region_name]
        # moto's EC2 get_instance scans every instance of the Region (filters included), which
        # makes registering n instances O(n^2): 1,000 cost ~20 s. One scan serves the batch;
        # an ID not in it (there is none) still goes to moto's own lookup.
        known = {instance.id: instance for instance in ec2.all_instances()}
        original = ec2.get_instance

        def lookup(instance_id: str) -> Any:
            return known.get(instance_id) or original(instance_id)

        ec2.get_instance = lookup  # type: ignore[method-assign]
        try:
            return [
                backend.register_container_instance(
                    cluster_name, instance_id
                ).container_instance_arn
                for instance_id in ec2_instance_ids
            ]
        finally:
            del ec2.get_instance  # the instance attribute goes; the class's method is back

    def create_cluster(self, name: str = "default") -> str:
        """Create a cluster (no-op if it exists); returns its ARN."""
        response = self._client("ecs").create_cluster(clusterName=name)
        return str(response["cluster"]["clusterArn"])

    def register_instances(self, cluster: str = "default", count: int = 1) -> list[str]:
        """Launch ``count`` EC2 instances and register each in the cluster as a container instance.

        Returns the container instance ARNs in launch order. One RunInstances call serves them
        all; the registrations go straight to moto's in-process ECS backend (over HTTP they
        would cost ~5 ms each), doing what moto's RegisterContainerInstance handler does.
        moto itself spends ~4 ms per launched instance, so 1000 take about 4 s.

        Raises:
            ValueError: ``count`` is below 1.
            LookupError: the cluster does not exist.
        """
        if count < 1:
            msg = f"count must be at least 1, not {count}"
            raise ValueError(msg)
        backend = self._ecs_backend()
        cluster_name = last_segment(cluster)
        if cluster_name not in backend.clusters:
            msg = f"cluster {cluster!r} does not exist: call create_cluster({cluster_name!r}) first"
            raise LookupError(msg)
        reservation = self._client("ec2").run_instances(
            ImageId=AMI_ID, MinCount=count, MaxCount=count
        )
        return self._registered(cluster_name, [i["InstanceId"] for i in reservation["Instances"]])

    def register_task_definition(
        self,
        family: str = "app",
        *,
        cpu: int = DEFAULT_CPU,
        memory: int = DEFAULT_MEMORY,
        host_port: int | None = None,
    ) -> str:
        """Register a one-container task definition; returns its ARN (a new revision).

        Its container reserves ``cpu`` units and ``memory`` MiB; ``host_port`` maps container
        port 80 to that static host port (bridge networking), so two of its tasks never share
        an instance.
        """
        if cpu < 0 or memory < 1:
            msg = f"cpu must be 0 or more and memory at least 1 MiB, not {cpu} and {memory}"
            raise ValueError(msg)
        container: dict[str, Any] = {
            "name": family,
            "image": "public.ecr.aws/docker/library/busybox:latest",
            "cpu": cpu,
            "memory": memory,
            "essential": True,
        }
        if host_port is not None:
            if not 1 <= host_port <= 65535:
                msg = f"host_port must be between 1 and 65535, not {host_port}"
                raise ValueError(msg)
            container["portMappings"] = [
                {"containerPort": 80, "hostPort": host_port, "protocol": "tcp"}
            ]
        response = self._client("ecs").register_task_definition(
            family=family, containerDefinitions=[container]
        )
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def create_service(
        self,
        cluster: str,
        name: str,
        *,
        scheduling_strategy: str = "REPLICA",
        task_definition: str | None = None,
        desired_count: int | None = None,
        minimum_healthy_percent: int | None = None,
        maximum_percent: int | None = None,
        distinct_instance: bool = False,
        member_of: str | None = None,
        placement_strategy: list[dict[str, str]] | None = None,
        cpu: int = DEFAULT_CPU,
        memory: int = DEFAULT_MEMORY,
        host_port: int | None = None,
        scheduler: bool = False,
    ) -> str:
        """Create a service (REPLICA or DAEMON); returns its ARN.

        With ``scheduler=True`` the service scheduler (`LocalEcs.scheduler`) manages it: its
        tasks are started, placed and moved off DRAINING instances as ECS would, on each
        pass. Otherwise moto starts no task for it: start them with `start_service_task`.

        Args:
            cluster: The cluster's name or ARN.
            name: The service's name.
            scheduling_strategy: REPLICA or DAEMON.
            task_definition: The task definition to run; without it one is registered under
                the service's name with ``cpu``, ``memory`` and ``host_port``.
            desired_count: REPLICA only: how many tasks (1 unless given).
            minimum_healthy_percent: deploymentConfiguration's minimumHealthyPercent (ECS's
                default: 100 for REPLICA, 0 for DAEMON).
            maximum_percent: deploymentConfiguration's maximumPercent (ECS's default: 200
                for REPLICA, 100 for DAEMON).
            distinct_instance: The ``distinctInstance`` placement constraint.
            member_of: A ``memberOf`` placement constraint's expression (the cluster query
                language), e.g. ``"attribute:pool == web"``.
            placement_strategy: ECS's placementStrategy, e.g.
                ``[{"type": "binpack", "field": "memory"}]`` (spread is the default).
            cpu: The registered task definition's CPU units.
            memory: ... its memory, in MiB.
            host_port: ... its static host port, if any.
            scheduler: Let the service scheduler manage the service.

        Raises:
            ValueError: a setting ECS would refuse (a negative count, a DAEMON with a desired
                count, percentages out of range), or task definition settings given along with
                ``task_definition``.
        """
        _check_service_settings(
            scheduling_strategy, desired_count, minimum_healthy_percent, maximum_percent
        )
        if task_definition is not None and (
            (cpu, memory, host_port) != (DEFAULT_CPU, DEFAULT_MEMORY, None)
        ):
            msg = (
                "cpu, memory and host_port describe a new task definition: not with task_definition"
            )
            raise ValueError(msg)
        definition = task_definition or self.register_task_definition(
            family=name, cpu=cpu, memory=memory, host_port=host_port
        )
        params: dict[str, Any] = {
            "cluster": cluster,
            "serviceName": name,
            "taskDefinition": definition,
            "schedulingStrategy": scheduling_strategy,
        }
        if scheduling_strategy == "REPLICA":
            # DAEMON services take no desired count.
            params["desiredCount"] = 1 if desired_count is None else desired_count
        config = {
            key: value
            for key, value in (
                ("minimumHealthyPercent", minimum_healthy_percent),
                ("maximumPercent", maximum_percent),
            )
            if value is not None
        }
        if config:
            params["deploymentConfiguration"] = config
        constraints: list[dict[str, str]] = []
        if distinct_instance:
            constraints.append({"type": "distinctInstance"})
        if member_of:
            constraints.append({"type": "memberOf", "expression": member_of})
        if constraints:
            params["placementConstraints"] = constraints
        if placement_strategy:
            params["placementStrategy"] = placement_strategy
        response = self._client("ecs").create_service(**params)
        if scheduler:
            self.scheduler.manage(cluster, name)
        return str(response["service"]["serviceArn"])

    def put_attribute(
        self, cluster: str, container_instance: str, name: str, value: str | None = None
    ) -> None:
        """Put a custom attribute on a container instance (PutAttributes), e.g. ``pool=web``."""
        self._client("ecs").put_attributes(
            cluster=cluster,
            attributes=[
                {
                    "name": name,
                    # moto takes a full ARN only without targetType.
                    "targetId": container_instance,
                    **({"value": value} if value is not None else {}),
                }
            ],
        )

    def start_service_task(
        self, cluster: str, container_instance: str, service: str, *, count: int = 1
    ) -> list[str]:
        """Start ``count`` tasks of a service on a container instance; returns their ARNs.

        They look like ECS's own: group ``service:NAME`` and ``startedBy`` the service's
        deployment ID (``ecs-svc/...``).
        """
        described = self._client("ecs").describe_services(cluster=cluster, services=[service])
        if not described["services"]:
            msg = f"no service {service!r} in cluster {cluster!r}"
            raise LookupError(msg)
        found = described["services"][0]
        deployments = found.get("deployments") or [{}]
        started_by = deployments[0].get("id") or f"ecs-svc/{uuid.uuid4().int % 10**19}"
        return self._start_tasks(
            cluster,
            container_instance,
            found["taskDefinition"],
            count=count,
            group=f"service:{found['serviceName']}",
            started_by=started_by,
        )

    def start_standalone_task(
        self, cluster: str, container_instance: str, *, family: str = "batch", count: int = 1
    ) -> list[str]:
        """Start ``count`` tasks that no service manages (group ``family:NAME``); returns ARNs."""
        definition = self.register_task_definition(family=family)
        return self._start_tasks(
            cluster, container_instance, definition, count=count, group=f"family:{family}"
        )

    def stop_task(self, cluster: str, task: str) -> None:
        """Stop a task through the API (moto lowers the instance's running count every time)."""
        self._client("ecs").stop_task(cluster=cluster, task=task, reason="Stopped by LocalEcs")

    def _start_tasks(
        self,
        cluster: str,
        container_instance: str,
        task_definition: str,
        *,
        count: int,
        group: str,
        started_by: str | None = None,
    ) -> list[str]:
        if count < 1:
            msg = f"count must be at least 1, not {count}"
            raise ValueError(msg)
        extra = {"startedBy": started_by} if started_by else {}
        arns: list[str] = []
        # StartTask starts one task per listed instance, so listing it n times starts n.
        for first in range(0, count, _START_TASK_BATCH):
            batch = min(_START_TASK_BATCH, count - first)
            response = self._client("ecs").start_task(
                cluster=cluster,
                taskDefinition=task_definition,
                containerInstances=[container_instance] * batch,
                group=group,
                **extra,
            )
            arns.extend(str(t["taskArn"]) for t in response["tasks"])
        return arns
