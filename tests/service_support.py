"""Helpers for the service-aware tests: seed services with real task definitions on LocalEcs.

LocalEcs's own seeding registers a tiny task definition and a service of one task; these
tests need CPU, memory, host ports, placement constraints and deployment limits, so they seed
through a plain boto3 client (its calls go to the same moto backend and are counted as
another tool's would be: call `LocalEcs.reset_calls` after seeding).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
from drain_support import ecs_backend

from ecs_safe._calls import EcsCalls
from ecs_safe._transport import Transport
from ecs_safe.local import LocalEcs
from ecs_safe.ratelimit import RateLimiter, RateLimits
from ecs_safe.retry import RetryConfig

CLUSTER = "svc"


def boto3_ecs(local: LocalEcs) -> Any:
    """A boto3 ECS client on ``local`` (seeding only)."""
    return boto3.session.Session(
        aws_access_key_id=local.access_key_id,
        aws_secret_access_key=local.secret_access_key,
        region_name=local.region_name,
    ).client("ecs", endpoint_url=local.endpoint_url)


def task_definition(
    local: LocalEcs,
    family: str,
    *,
    cpu: int = 256,
    memory: int = 512,
    host_port: int | None = None,
) -> str:
    """Register a one-container task definition reserving ``cpu``/``memory`` (and a port)."""
    container: dict[str, Any] = {
        "name": family,
        "image": "public.ecr.aws/docker/library/busybox:latest",
        "cpu": cpu,
        "memory": memory,
        "essential": True,
    }
    if host_port is not None:
        container["portMappings"] = [{"containerPort": 80, "hostPort": host_port}]
    response = boto3_ecs(local).register_task_definition(
        family=family, containerDefinitions=[container]
    )
    return str(response["taskDefinition"]["taskDefinitionArn"])


def service(
    local: LocalEcs,
    name: str,
    *,
    desired: int,
    definition: str,
    minimum_healthy: int = 100,
    maximum: int = 200,
    distinct_instance: bool = False,
    scheduling_strategy: str = "REPLICA",
    capacity_provider: str | None = None,
    running: int | None = None,
) -> str:
    """Create a service; returns its ARN (moto starts none of its tasks).

    moto keeps neither ``deploymentConfiguration``, ``placementConstraints`` nor
    ``capacityProviderStrategy``, and reports ``runningCount`` 0 with its deployment
    IN_PROGRESS; the service object in its backend is given them, so DescribeServices
    answers as ECS would for a service whose ``running`` tasks (default: ``desired``) run
    and whose deployment is COMPLETED.
    """
    params: dict[str, Any] = {
        "cluster": CLUSTER,
        "serviceName": name,
        "taskDefinition": definition,
        "schedulingStrategy": scheduling_strategy,
        "deploymentConfiguration": {
            "minimumHealthyPercent": minimum_healthy,
            "maximumPercent": maximum,
        },
    }
    if scheduling_strategy == "REPLICA":
        params["desiredCount"] = desired
    if distinct_instance:
        params["placementConstraints"] = [{"type": "distinctInstance"}]
    if capacity_provider is not None:
        params["capacityProviderStrategy"] = [{"capacityProvider": capacity_provider, "weight": 1}]
    arn = str(boto3_ecs(local).create_service(**params)["service"]["serviceArn"])
    found = ecs_backend(local).services[f"{CLUSTER}:{name}"]
    found.deployment_configuration = params["deploymentConfiguration"]
    if distinct_instance:
        found.placement_constraints = [{"type": "distinctInstance"}]
    if capacity_provider is not None:
        found.capacity_provider_strategy = params["capacityProviderStrategy"]
    if scheduling_strategy == "REPLICA":
        set_running(local, name, desired if running is None else running)
    return arn


def set_running(local: LocalEcs, name: str, running: int) -> None:
    """Make DescribeServices report ``running`` tasks of the service RUNNING (moto's counts)."""
    found = ecs_backend(local).services[f"{CLUSTER}:{name}"]
    found.running_count = running
    found.pending_count = 0
    for deployment in found.deployments:
        deployment["runningCount"] = running
        deployment["pendingCount"] = 0
        deployment["rolloutState"] = (
            "COMPLETED" if running >= found.desired_count else "IN_PROGRESS"
        )


def start(local: LocalEcs, instance: str, name: str, count: int = 1) -> list[str]:
    """Start ``count`` tasks of the service on ``instance`` (labelled as ECS labels them)."""
    return local.start_service_task(CLUSTER, instance, name, count=count)


def scaling_provider(local: LocalEcs, name: str = "asg") -> str:
    """Create a capacity provider with managed scaling ENABLED; returns its name."""
    boto3_ecs(local).create_capacity_provider(
        name=name,
        autoScalingGroupProvider={
            "autoScalingGroupArn": (
                "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:"
                f"autoScalingGroupName/{name}"
            ),
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
        },
    )
    return name


@asynccontextmanager
async def calls_on(local: LocalEcs) -> AsyncIterator[EcsCalls]:
    """An `EcsCalls` on ``local`` (unpaced, default retries), for tests of the call layer."""
    async with local.session().create_client(
        "ecs", region_name=local.region_name, endpoint_url=local.endpoint_url
    ) as client:
        yield EcsCalls(
            Transport(client, retry=RetryConfig(), limiter=RateLimiter(RateLimits.unlimited()))
        )
