"""A rolling replacement with an audit log, run as a subprocess by test_replace's crash test.

Usage: ``python replace_crash_run.py ENDPOINT_URL REGION AUDIT_PATH RUN_ID CLUSTER GROUP WAVE``;
credentials come from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``). The
test kills it (SIGKILL) at an event it watches on the server side.
"""

from __future__ import annotations

import asyncio
import sys

from ecs_safe import DisruptionBudget, DisruptionBudgets, EcsSafeClient, RateLimits, default_policy


async def main(argv: list[str]) -> int:
    endpoint_url, region, audit_path, run_id, cluster, group, wave = argv
    policy = default_policy().with_rules(DisruptionBudgets(DisruptionBudget("*", "50%")))
    async with EcsSafeClient(
        endpoint_url=endpoint_url,
        region_name=region,
        audit_log=audit_path,
        run_id=run_id,
        policy=policy,
        rate_limits=RateLimits.unlimited(),
    ) as ecs:
        result = await ecs.replace_auto_scaling_group(
            group,
            cluster=cluster,
            wave_size=int(wave),
            surge=True,
            timeout=60,
            poll_interval=0.05,
            capacity_timeout=60,
            steady_timeout=60,
        )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
