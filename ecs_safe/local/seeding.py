"""Seeding: the clusters, instances, services and tasks a test or demo starts from.

`Seeding` is the part of `LocalEcs` that creates things; its calls are marked internal, so
they are neither counted nor failed by injected faults.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Final

from ecs_safe.local.names import last_segment

if TYPE_CHECKING:
    from moto.ecs.models import EC2ContainerServiceBackend

# An AMI that moto ships in every Region, so run_instances needs no setup.
AMI_ID: Final = "ami-1e749f67"
# StartTask takes at most 10 container instances per call.
_START_TASK_BATCH: Final = 10


class Seeding:
    """The seeding helpers of `LocalEcs` (create_cluster, register_instances, ...)."""

    def _client(self, service: str) -> Any:
        """The seeding helpers' botocore client for ``service`` (`LocalEcs` provides it)."""
        raise NotImplementedError

    def _ecs_backend(self) -> EC2ContainerServiceBackend:
        """The in-process moto ECS backend for this Region (`LocalEcs` provides it)."""
        raise NotImplementedError

    def _registered(self, cluster_name: str, ec2_instance_ids: list[str]) -> list[str]:
        """Register EC2 instances in a cluster straight in moto's backend; their ARNs."""
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

    def register_task_definition(self, family: str = "app") -> str:
        """Register a small one-container task definition; returns its ARN (a new revision)."""
        response = self._client("ecs").register_task_definition(
            family=family,
            containerDefinitions=[
                {
                    "name": family,
                    "image": "public.ecr.aws/docker/library/busybox:latest",
                    "cpu": 10,
                    "memory": 32,
                    "essential": True,
                }
            ],
        )
        return str(response["taskDefinition"]["taskDefinitionArn"])

    def create_service(
        self,
        cluster: str,
        name: str,
        *,
        scheduling_strategy: str = "REPLICA",
        task_definition: str | None = None,
    ) -> str:
        """Create a service (REPLICA or DAEMON); returns its ARN.

        moto starts no task for it: start them with `start_service_task`. Without
        ``task_definition`` one is registered under the service's name.
        """
        definition = task_definition or self.register_task_definition(family=name)
        params: dict[str, Any] = {
            "cluster": cluster,
            "serviceName": name,
            "taskDefinition": definition,
            "schedulingStrategy": scheduling_strategy,
        }
        if scheduling_strategy == "REPLICA":
            # DAEMON services take no desired count.
            params["desiredCount"] = 1
        response = self._client("ecs").create_service(**params)
        return str(response["service"]["serviceArn"])

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
