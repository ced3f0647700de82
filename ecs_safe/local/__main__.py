"""``python -m ecs_safe.local``: serve a seeded demo cluster until Ctrl-C or SIGTERM.

It prints the environment lines that point any AWS SDK or CLI at it (``eval`` them in a shell,
or copy them), then serves until interrupted.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Final

from ecs_safe.local.server import LocalEcs

if TYPE_CHECKING:
    from types import FrameType

#: The demo cluster's name.
DEMO_CLUSTER: Final = "demo"
#: The service scheduler's pass interval while serving, in seconds.
SCHEDULER_INTERVAL: Final = 0.5


def seed_demo(local: LocalEcs) -> None:
    """Cluster ``demo``: three instances, a service with two tasks on the first, a batch task.

    The service scheduler manages ``web``: drain the first instance and its tasks move.
    """
    local.create_cluster(DEMO_CLUSTER)
    first, _second, _third = local.register_instances(DEMO_CLUSTER, count=3)
    local.create_service(DEMO_CLUSTER, "web", desired_count=2)
    local.start_service_task(DEMO_CLUSTER, first, "web", count=2)
    local.scheduler.manage(DEMO_CLUSTER, "web")
    local.start_standalone_task(DEMO_CLUSTER, first, family="batch")


def environment_lines(local: LocalEcs) -> list[str]:
    """The ``export`` lines that point AWS SDKs and the AWS CLI at ``local``."""
    return [
        f"export AWS_ENDPOINT_URL_ECS={local.endpoint_url}",
        # Auto Scaling and EC2 are served by the same endpoint.
        f"export AWS_ENDPOINT_URL={local.endpoint_url}",
        f"export AWS_REGION={local.region_name}",
        f"export AWS_DEFAULT_REGION={local.region_name}",
        f"export AWS_ACCESS_KEY_ID={local.access_key_id}",
        f"export AWS_SECRET_ACCESS_KEY={local.secret_access_key}",
    ]


def main() -> None:
    """Start, seed, print the environment, and serve until SIGINT or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with LocalEcs(scheduler_interval=SCHEDULER_INTERVAL) as local:
        seed_demo(local)
        print("\n".join(environment_lines(local)), flush=True)
        print(f"# cluster {DEMO_CLUSTER!r} is seeded; Ctrl-C stops", file=sys.stderr, flush=True)
        # A timed wait, so that the signal handler runs promptly on every platform.
        while not stop.wait(0.5):
            pass


if __name__ == "__main__":
    main()
