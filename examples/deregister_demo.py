"""Deregister container instances safely against an embedded local ECS endpoint.

Run it with ``python examples/deregister_demo.py``: it starts `LocalEcs` (moto's server mode on
loopback), seeds a cluster with one busy and one idle instance, then shows the policy refusing
the busy one before any mutating call, a dry run, and a real deregistration of the idle one.
No AWS account is needed.
"""

from __future__ import annotations

import asyncio

from ecs_safe import EcsSafeClient, PolicyViolationError
from ecs_safe.local import LocalEcs


async def main() -> None:
    """Seed a local cluster and walk through a refusal, a dry run and a success."""
    async with LocalEcs() as local:
        local.create_cluster("demo")
        busy, idle = local.register_instances("demo", count=2)
        local.create_service("demo", "web")
        local.start_service_task("demo", busy, "web", count=2)

        async with EcsSafeClient(**local.client_kwargs()) as ecs:
            print("1. Deregister an instance that still runs 2 service tasks:")
            try:
                await ecs.deregister_container_instance(busy, cluster="demo")
            except PolicyViolationError as refusal:
                print(
                    f"   refused before any mutating call: {refusal.decision.violations[0].message}"
                )

            print("2. Dry run on the idle instance:")
            plan = await ecs.deregister_container_instance(idle, cluster="demo", dry_run=True)
            print(
                f"   would deregister {plan.container_instance.ec2_instance_id} (nothing changed)"
            )

            print("3. Deregister the idle instance:")
            done = await ecs.deregister_container_instance(idle, cluster="demo")
            print(
                f"   deregistered {done.container_instance.ec2_instance_id}, "
                f"request ID {done.request_id}"
            )
            left = await ecs.describe_container_instances([busy], cluster="demo")
            print(
                f"4. The busy instance is untouched: {left[0].status}, "
                f"{left[0].running_tasks_count} running tasks"
            )


if __name__ == "__main__":
    asyncio.run(main())
