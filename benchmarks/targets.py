"""Resolving targets: N EC2 instance IDs in a cluster of M instances (`ecs_safe._targets`).

What an Auto Scaling event handler or a rolling script does first: turn EC2 instance IDs into
the container instances registered in the cluster. ecs-safe's `resolve` lists them by
``ec2InstanceId in [...]`` filters (about 47 IDs a filter, within the 1,024-character
expression limit) and describes what it found, 100 a call, paced by the default read bucket.

Reported: the API calls (counted by LocalEcs), the wall time (median over rounds, a fresh
client with full buckets each round), and the floor that ECS's read bucket (burst 100, 20/s)
sets for that many reads, beside the floor of the per-instance lookup the tools in use today
make (one filtered ListContainerInstances and one describe per ID).

moto ignores ``filter``: where LocalEcs does not evaluate it, every listing returns the whole
cluster and the describes cover it all; the report says which endpoint it measured
(``filtered``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.config import Config

from benchmarks._harness import BENCH_CLUSTER, Check, Result, baseline_config, median, timed
from benchmarks.throttle_proxy import minimum_seconds
from ecs_safe._calls import EcsCalls
from ecs_safe._targets import ec2_id_filters, resolve
from ecs_safe._transport import EcsTransport
from ecs_safe.ratelimit import RateLimiter, RateLimits
from ecs_safe.retry import RetryConfig

if TYPE_CHECKING:
    from ecs_safe.local import LocalEcs

__all__ = ["TARGET_CALLS", "run"]

#: Calls per 1,000 IDs resolved that count as "a handful": ceil(1000/47) listings and
#: ceil(1000/100) describes make 32.
TARGET_CALLS = 35
_READS = ("ListContainerInstances", "DescribeContainerInstances")


@asynccontextmanager
async def _transport(local: LocalEcs) -> AsyncIterator[EcsTransport]:
    """A transport as `EcsSafeClient` builds it, with full default read/modify buckets."""
    session: Any = local.session()
    async with session.create_client(
        "ecs",
        region_name=local.region_name,
        endpoint_url=local.endpoint_url,
        config=baseline_config(),
    ) as client:
        yield EcsTransport(client, retry=RetryConfig(), limiter=RateLimiter(RateLimits()))


def _seed(local: LocalEcs, cluster_size: int) -> tuple[list[str], bool]:
    """A cluster of ``cluster_size`` instances: their EC2 IDs, and whether filters work."""
    local.create_cluster(BENCH_CLUSTER)
    arns = local.register_instances(BENCH_CLUSTER, count=cluster_size)
    session = botocore.session.get_session()
    session.set_credentials(local.access_key_id, local.secret_access_key)
    ecs: Any = session.create_client(
        "ecs",
        region_name=local.region_name,
        endpoint_url=local.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    ec2_ids: list[str] = []
    for first in range(0, len(arns), 100):
        described = ecs.describe_container_instances(
            cluster=BENCH_CLUSTER, containerInstances=arns[first : first + 100]
        )
        ec2_ids.extend(str(raw["ec2InstanceId"]) for raw in described["containerInstances"])
    probe = ecs.list_container_instances(
        cluster=BENCH_CLUSTER, filter=f"ec2InstanceId == {ec2_ids[0]}"
    )
    local.reset_calls()
    # The probe tells whether this endpoint evaluates filters (moto alone does not).
    return ec2_ids, len(probe["containerInstanceArns"]) == 1


async def run(local: LocalEcs, *, ids: int, cluster_size: int, rounds: int) -> Result:
    """Resolve ``ids`` EC2 IDs (every ``cluster_size // ids``-th instance), ``rounds`` times."""
    local.reset()
    seeded, filtered = _seed(local, cluster_size)
    ec2_ids = seeded[:: max(1, cluster_size // ids)][:ids]
    seconds: list[float] = []
    calls: dict[str, int] = {}
    for _round in range(rounds):
        local.reset_calls()
        async with _transport(local) as api:
            resolution = None

            async def once() -> None:
                nonlocal resolution
                resolution = await resolve(EcsCalls(api), ec2_ids, cluster=BENCH_CLUSTER)

            seconds.append(await timed(once()))
        assert resolution is not None
        if resolution.errors or len(resolution.targets) != len(ec2_ids):
            msg = f"resolution lost instances: {len(resolution.errors)} errors"
            raise AssertionError(msg)
        calls = {op: local.calls(op) for op in _READS}
    reads = sum(calls.values())
    naive_reads = 2 * len(ec2_ids)
    result = Result(
        name="targets",
        title=f"Resolving targets: {len(ec2_ids)} EC2 IDs in a {cluster_size}-instance cluster",
        params={"ids": len(ec2_ids), "cluster_size": cluster_size, "rounds": rounds},
    )
    result.metrics.update(
        {
            "filtered": filtered,
            "list_calls": calls["ListContainerInstances"],
            "describe_calls": calls["DescribeContainerInstances"],
            "api_calls": reads,
            "expected_list_calls": len(ec2_id_filters(ec2_ids)),
            "resolve_median_s": median(seconds),
            "read_floor_s": minimum_seconds({"read": reads}),
            "per_instance_lookup_calls": naive_reads,
            "per_instance_lookup_floor_s": minimum_seconds({"read": naive_reads}),
        }
    )
    if filtered:
        # Without filtering the describes cover the whole cluster: not what ECS would cost.
        per_thousand = reads * 1000 / max(1, len(ec2_ids))
        result.checks.append(Check("API calls per 1,000 IDs", per_thousand, TARGET_CALLS, ""))
    else:
        result.notes.append(
            "this LocalEcs ignores filter: each listing returned the whole cluster, so the "
            f"describes covered all {cluster_size} instances; against ECS the describes are "
            f"ceil({len(ec2_ids)}/100) = {math.ceil(len(ec2_ids) / 100)}"
        )
    return result
