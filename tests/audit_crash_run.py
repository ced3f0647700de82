"""A fleet run with an audit log, run as a subprocess by test_audit's crash test and killed.

Usage: ``python audit_crash_run.py ENDPOINT_URL REGION AUDIT_PATH CLUSTER CONCURRENCY ARN...``;
credentials come from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``).
"""

from __future__ import annotations

import asyncio
import sys

from ecs_safe import EcsSafeClient, RateLimits


async def main(argv: list[str]) -> int:
    endpoint_url, region, audit_path, cluster, concurrency, *arns = argv
    async with EcsSafeClient(
        endpoint_url=endpoint_url,
        region_name=region,
        audit_log=audit_path,
        rate_limits=RateLimits.unlimited(),
    ) as ecs:
        batch = await ecs.deregister_many(arns, cluster=cluster, concurrency=int(concurrency))
    return 0 if batch.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
