"""What ``ecs-safe replace`` reports: a replacement's waves, sizes and end, as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecs_safe.cli.exit_codes import ExitCode, exit_code_of_error
from ecs_safe.cli.reports import JSON_SCHEMA_VERSION, error_json

if TYPE_CHECKING:
    from rich.console import Console

    from ecs_safe.replace import ReplacementResult, ReplacementWave

__all__ = ["ReplaceReport"]


def _wave_status(wave: ReplacementWave, dry_run: bool) -> str:
    if not wave.outcomes and not wave.terminated:
        return "not run" if not dry_run else "nothing to drain"
    statuses = sorted({o.status for o in wave.outcomes})
    if not dry_run and wave.ok and len(wave.terminated) == len(wave.instance_ids):
        return "replaced"
    return ", ".join(statuses) or "terminated"


@dataclass
class ReplaceReport:
    """The outcome of ``replace``: the library's `ecs_safe.replace.ReplacementResult`."""

    result: ReplacementResult

    @property
    def exit_code(self) -> ExitCode:
        """0 replaced (or a clean plan); a stopped run's error's code; 3 a refused plan."""
        result = self.result
        if result.error is not None:
            return exit_code_of_error(result.error)
        if result.status == "planned" and any(
            o.status == "refused" for w in result.waves for o in w.outcomes
        ):
            return ExitCode.REFUSED
        if result.status == "planned" and any(
            o.status == "failed" for w in result.waves for o in w.outcomes
        ):
            return ExitCode.API_ERROR
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document (schema in `ecs_safe.cli.commands.replace`)."""
        result = self.result
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": "replace",
            "cluster": result.cluster,
            "dry_run": result.dry_run,
            "exit_code": int(self.exit_code),
            "error": error_json(result.error) if result.error else None,
            "group": result.group,
            "run_id": result.run_id,
            "status": result.status,
            "resumed": result.resumed,
            "saved_sizes": result.saved_sizes.model_dump(),
            "surge_sizes": result.surge_sizes.model_dump() if result.surge_sizes else None,
            "restored": result.restored,
            "already_replaced": result.already_replaced,
            "unregistered": result.unregistered,
            "waves": [
                {
                    "index": w.index,
                    "instance_ids": w.instance_ids,
                    "container_instances": w.container_instances,
                    "decrement_desired_capacity": w.decrement_desired_capacity,
                    "statuses": [o.status for o in w.outcomes],
                    "errors": [error_json(o.error) if o.error else None for o in w.outcomes],
                    "terminated": w.terminated,
                    "status": _wave_status(w, result.dry_run),
                }
                for w in result.waves
            ],
        }

    def render(self, console: Console) -> None:
        """The waves as a table, the sizes and the end on lines under it."""
        from rich import box  # noqa: PLC0415 - only a text report needs rich's tables
        from rich.table import Table  # noqa: PLC0415

        result = self.result
        verb = "plan" if result.dry_run else result.status
        title = f"group {result.group} (run {result.run_id}): {verb}"
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAVY)
        table.add_column("Wave", justify="right")
        table.add_column("EC2 instances", no_wrap=True)
        table.add_column("Decrement", no_wrap=True)
        table.add_column("Status")
        for wave in result.waves:
            table.add_row(
                str(wave.index),
                "\n".join(wave.instance_ids),
                "yes" if wave.decrement_desired_capacity else "no",
                _wave_status(wave, result.dry_run),
            )
        console.print(table)
        console.print(f"saved sizes: {result.saved_sizes}")
        if result.surge_sizes is not None:
            console.print(f"surge: {result.surge} instance(s), sizes {result.surge_sizes}")
        if result.already_replaced:
            console.print(f"already replaced before: {', '.join(result.already_replaced)}")
        if result.unregistered:
            console.print(f"not in the cluster, left alone: {', '.join(result.unregistered)}")
        for wave in result.waves:
            for outcome in wave.outcomes:
                if outcome.error is not None:
                    console.print(
                        f"wave {wave.index}: {outcome.container_instance}: {outcome.error}"
                    )
        if result.dry_run:
            console.print(f"then restore: {result.saved_sizes}")
        elif result.restored:
            console.print(f"restored: {result.saved_sizes}")
        if result.error is not None:
            console.print(
                f"stopped: {result.error}; resume with ecs-safe replace --auto-scaling-group "
                f"{result.group} --resume {result.run_id} --audit-log PATH"
            )
        code = self.exit_code
        console.print(f"(exit {int(code)}: {code.meaning})")
