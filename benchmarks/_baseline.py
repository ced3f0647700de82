"""The baseline: what a careful script does with plain aiobotocore, no ecs-safe.

It makes the same ECS calls ecs-safe makes for an idle instance: a describe (batched 100 per
call for a fleet), a check that nothing runs on it, and the unforced deregistration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

__all__ = ["DESCRIBE_BATCH", "deregister_fleet", "deregister_one", "describe_fleet"]

#: DescribeContainerInstances takes at most 100 instances per call.
DESCRIBE_BATCH = 100


def _check_idle(instance: Any) -> None:
    # The baseline's version of the default policy: refuse running or pending tasks.
    if instance.get("runningTasksCount") or instance.get("pendingTasksCount"):
        msg = f"{instance.get('containerInstanceArn')} has tasks"
        raise RuntimeError(msg)


async def deregister_one(client: ECSClient, cluster: str, arn: str) -> None:
    """Describe one instance, check it is idle, deregister it (unforced)."""
    described = await client.describe_container_instances(cluster=cluster, containerInstances=[arn])
    _check_idle(described["containerInstances"][0])
    await client.deregister_container_instance(cluster=cluster, containerInstance=arn, force=False)


async def describe_fleet(
    client: ECSClient, cluster: str, arns: Sequence[str], *, concurrency: int
) -> list[Any]:
    """Describe every instance, 100 per call, at most ``concurrency`` calls at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def describe(batch: Sequence[str]) -> list[Any]:
        async with gate:
            response = await client.describe_container_instances(
                cluster=cluster, containerInstances=list(batch)
            )
        return list(response["containerInstances"])

    batches = [arns[i : i + DESCRIBE_BATCH] for i in range(0, len(arns), DESCRIBE_BATCH)]
    described = await asyncio.gather(*(describe(batch) for batch in batches))
    return [instance for batch in described for instance in batch]


async def deregister_fleet(
    client: ECSClient, cluster: str, arns: Sequence[str], *, concurrency: int
) -> int:
    """Describe all (batched), then deregister the idle ones with a bounded gather.

    Returns how many deregistrations failed (a failure does not stop the others, as in
    ``deregister_many``).
    """
    instances = await describe_fleet(client, cluster, arns, concurrency=concurrency)
    gate = asyncio.Semaphore(concurrency)

    async def deregister(instance: Any) -> bool:
        _check_idle(instance)
        async with gate:
            await client.deregister_container_instance(
                cluster=cluster, containerInstance=instance["containerInstanceArn"], force=False
            )
        return True

    outcomes = await asyncio.gather(
        *(deregister(instance) for instance in instances), return_exceptions=True
    )
    return sum(1 for outcome in outcomes if outcome is not True)
