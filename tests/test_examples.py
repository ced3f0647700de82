"""Every script in ``examples/`` runs, as a user would run it, against its default LocalEcs.

Each runs in its own interpreter (``sys.executable``), so an example cannot lean on anything the
test process set up, and must finish with exit status 0 and print its key lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT_S = 120

# What each example must print: the lines that show it did its job.
EXPECTED: dict[str, list[str]] = {
    "deregister_demo.py": [
        "refused before any mutating call",
        "would deregister",
        "deregistered",
        "The busy instance is untouched: ACTIVE",
    ],
    "async_service.py": [
        "service: refused ",
        "no-running-tasks-unless-forced",
        "service: retired ",
    ],
    "orchestration_sync.py": [
        "plan:",
        "would_deregister",
        "(standalone)",
        "deregistered (EC2 i-",
        "done: 3 of 3 retired",
    ],
    "fleet_roll.py": [
        "plan: 5 succeeded, 1 refused, 0 failed",
        "left alone: ",
        "(standalone-tasks)",
        "wave 1/3",
        "wave 3/3",
        "task(s) left",
        "[2/2] deregistered",
        "roll: 5 succeeded, 0 refused, 0 failed",
    ],
}


def example_scripts() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_every_example_is_checked() -> None:
    assert example_scripts() == sorted(EXPECTED)


def _env() -> dict[str, str]:
    # The local mode needs no AWS configuration; none from this machine may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECS_SAFE_"))}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


@pytest.mark.parametrize("script", example_scripts())
def test_example_runs(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=_env(),
        cwd=EXAMPLES.parent,
        check=False,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    for line in EXPECTED[script]:
        assert line in result.stdout, f"{script} did not print {line!r}:\n{result.stdout}"


@pytest.mark.parametrize("script", [s for s in example_scripts() if s != "deregister_demo.py"])
def test_example_documents_how_to_run_it_against_aws(script: str) -> None:
    head = (EXAMPLES / script).read_text().split('"""')[1]
    assert "LocalEcs" in head
    assert "--aws" in head
