"""``python -m ecs_safe.local``: a seeded endpoint that an AWS SDK reaches from the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import boto3  # type: ignore[import-untyped,unused-ignore]
from botocore.config import Config

# How many export lines the server prints before it serves.
EXPORT_LINES = 6


def test_module_serves_a_seeded_cluster_until_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with subprocess.Popen(
        [sys.executable, "-m", "ecs_safe.local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as server:
        assert server.stdout is not None
        # Waits on the server's own output: it prints only once it serves.
        lines = [server.stdout.readline().strip() for _ in range(EXPORT_LINES)]
        exported = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert exported["AWS_ENDPOINT_URL_ECS"].startswith("http://127.0.0.1:")
        assert exported["AWS_ENDPOINT_URL"] == exported["AWS_ENDPOINT_URL_ECS"]
        assert exported["AWS_REGION"] == "us-east-1"
        assert exported["AWS_ACCESS_KEY_ID"]
        assert exported["AWS_SECRET_ACCESS_KEY"]
        ecs: Any = boto3.session.Session(
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            region_name=exported["AWS_REGION"],
        ).client(
            "ecs",
            endpoint_url=exported["AWS_ENDPOINT_URL_ECS"],
            config=Config(retries={"total_max_attempts": 1}),
        )
        arns = ecs.list_container_instances(cluster="demo")["containerInstanceArns"]
        assert len(arns) == 3
        assert len(ecs.list_tasks(cluster="demo")["taskArns"]) == 3
        ecs.close()
        server.send_signal(signal.SIGTERM)
        assert server.wait() == 0
