"""Disruption budgets, and the service layer they read (DescribeServices, task definitions)."""

from __future__ import annotations

from service_support import CLUSTER, calls_on, service, task_definition

from ecs_safe.local import LocalEcs
from ecs_safe.models import Service


def _seed_services(local: LocalEcs, count: int) -> str:
    local.create_cluster(CLUSTER)
    definition = task_definition(local, "web", cpu=128, memory=256, host_port=8080)
    for number in range(count):
        service(local, f"web-{number:02d}", desired=2, definition=definition, minimum_healthy=50)
    local.reset_calls()
    return definition


async def test_describe_services_batches_ten_a_call_and_caches_until_refreshed(
    ecs_env: LocalEcs,
) -> None:
    _seed_services(ecs_env, 12)
    names = [f"web-{n:02d}" for n in range(12)]
    async with calls_on(ecs_env) as calls:
        found = await calls.describe_services(CLUSTER, [*names, "nope"])
        assert ecs_env.calls("DescribeServices") == 2
        assert sorted(found) == names
        web = found["web-00"]
        assert isinstance(web, Service)
        assert web.desired_count == 2
        assert web.scheduling_strategy == "REPLICA"
        # moto 5.2.5 drops deploymentConfiguration (AWS always returns it): the checks
        # fall back to ECS's defaults, 100 % minimum healthy.
        assert web.deployment_configuration is None
        assert web.deployments
        assert web.deployments[0].status == "PRIMARY"
        assert web.deployments[0].rollout_state == "IN_PROGRESS"
        # Cached: the same names (the missing one included) cost nothing more...
        await calls.describe_services(CLUSTER, [*names, "nope"])
        assert ecs_env.calls("DescribeServices") == 2
        # ...until a new round asks again.
        await calls.describe_services(CLUSTER, names[:3], refresh=True)
        assert ecs_env.calls("DescribeServices") == 3


async def test_task_definitions_are_described_once_per_revision(ecs_env: LocalEcs) -> None:
    definition = _seed_services(ecs_env, 1)
    async with calls_on(ecs_env) as calls:
        found = await calls.describe_task_definitions([definition, definition])
        await calls.describe_task_definitions([definition])
    assert ecs_env.calls("DescribeTaskDefinition") == 1
    containers = found[definition].container_definitions or []
    assert containers[0].cpu == 128
    assert containers[0].memory == 256
    assert containers[0].port_mappings
    assert containers[0].port_mappings[0].host_port == 8080
