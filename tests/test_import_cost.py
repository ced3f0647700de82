"""`import ecs_safe` stays light: the CLI's and LocalEcs's heavy dependencies load only when used.

Each check runs in a fresh interpreter, since this test process has long imported everything.
This is a correctness check, not a timing: benchmarks/startup.py measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# typer and rich are the CLI's, moto (with werkzeug and flask) LocalEcs's; pygments comes with
# rich (structlog imports rich when it is installed, which is why ecs_safe imports structlog
# lazily); tornado comes with Jupyter and is imported by tenacity.
HEAVY = ("typer", "rich", "pygments", "moto", "werkzeug", "flask", "tornado")


def loaded_after(statement: str) -> list[str]:
    probe = (
        f"{statement}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return [str(name) for name in json.loads(done.stdout)]


@pytest.mark.parametrize(
    "statement",
    [
        "import ecs_safe",
        "from ecs_safe import EcsSafeClient, SyncEcsSafeClient, RateLimits, default_policy",
        "import ecs_safe.local",
    ],
)
def test_no_heavy_module_is_imported(statement: str) -> None:
    assert loaded_after(statement) == []


def test_the_probe_sees_heavy_modules() -> None:
    # Guards the test above against passing vacuously.
    assert "rich" in loaded_after("import rich.console")
