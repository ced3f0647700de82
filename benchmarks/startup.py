"""Start-up: ``import ecs_safe`` and ``ecs-safe --help`` vs ``import aiobotocore.session``.

Each command runs in a fresh interpreter (a subprocess), the commands take turns, and the
median wall time of each is compared with the baseline's. ``python -c pass`` is timed too, to
show what the interpreter alone costs. A separate interpreter also reports which heavy modules
``import ecs_safe`` loads: none of typer, rich, pygments or moto should be among them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._harness import Check, Result, median

__all__ = ["HEAVY_MODULES", "TARGET_MS", "heavy_modules_loaded", "run"]

#: Milliseconds ``import ecs_safe`` may add to ``import aiobotocore.session``.
TARGET_MS = 50.0
#: Modules that only the CLI or LocalEcs need.
HEAVY_MODULES = ("typer", "rich", "pygments", "moto", "werkzeug", "flask")


def _cli() -> str | None:
    # The console script installed beside this interpreter (the venv's bin/).
    beside = Path(sys.executable).with_name("ecs-safe")
    return str(beside) if beside.exists() else shutil.which("ecs-safe")


def _time_command(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heavy_modules_loaded(statement: str = "import ecs_safe") -> list[str]:
    """Which of `HEAVY_MODULES` a fresh interpreter holds after ``statement``."""
    probe = (
        f"{statement}\nimport json, sys\n"
        f"print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return [str(name) for name in json.loads(out)]


def run(*, rounds: int) -> Result:
    """Time each command ``rounds`` times, in rotating order."""
    commands: dict[str, list[str]] = {
        "python": [sys.executable, "-c", "pass"],
        "baseline": [sys.executable, "-c", "import aiobotocore.session"],
        "import_ecs_safe": [sys.executable, "-c", "import ecs_safe"],
        # What using the client costs: the package loads names lazily, so this is the
        # honest figure for a script or notebook that goes on to make a call.
        "import_client": [sys.executable, "-c", "from ecs_safe import EcsSafeClient"],
    }
    cli = _cli()
    if cli is not None:
        commands["cli_help"] = [cli, "--help"]
    names = list(commands)
    times: dict[str, list[float]] = {name: [] for name in names}
    if rounds > 1:
        # One untimed run each fills the OS's file cache (and writes any stale .pyc).
        for command in commands.values():
            _time_command(command)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_time_command(commands[name]))

    result = Result(
        name="startup",
        title="Start-up: fresh interpreters, import ecs_safe / ecs-safe --help vs aiobotocore",
        params={"rounds": rounds},
    )
    ms = {name: median(values) * 1e3 for name, values in times.items()}
    for name, value in ms.items():
        result.metrics[f"{name}_median_ms"] = value
    added = ms["import_ecs_safe"] - ms["baseline"]
    result.metrics["import_added_ms"] = added
    result.metrics["import_ratio"] = ms["import_ecs_safe"] / ms["baseline"]
    result.checks.append(Check("import ecs_safe, added over aiobotocore", added, TARGET_MS, "ms"))
    result.metrics["import_client_added_ms"] = ms["import_client"] - ms["baseline"]
    if "cli_help" in ms:
        result.metrics["cli_help_added_ms"] = ms["cli_help"] - ms["baseline"]
        result.metrics["cli_help_ratio"] = ms["cli_help"] / ms["baseline"]
    else:
        result.notes.append("no `ecs-safe` console script found: --help not timed")
    heavy = heavy_modules_loaded()
    result.metrics["heavy_modules_after_import"] = ",".join(heavy) or "none"
    return result
