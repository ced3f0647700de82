"""The progress display of drains and fleet runs: a rich progress bar on stderr."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ecs_safe.cli.rendering import short, stderr_console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """A rich progress display on stderr for drains and fleet runs.

    It shows only when stderr is a terminal: piped or redirected output gets no bar (and no
    control characters). `callback` is what the client's ``progress=`` receives; `advance`
    counts finished instances.
    """

    def __init__(self, description: str, total: int, *, enabled: bool | None = None) -> None:
        console = stderr_console()
        self.enabled = console.is_terminal if enabled is None else enabled
        self._progress: Progress | None = None
        self._overall: TaskID | None = None
        self._rows: dict[str, TaskID] = {}
        # Each row's total, kept here: rich's ``Progress.tasks`` is a list that removed rows
        # shift, so it cannot be indexed by task ID once an instance has finished.
        self._totals: dict[str, int] = {}
        self._description = description
        self._total = total
        self._console = console

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            from rich.progress import (  # noqa: PLC0415 - only a terminal run needs them
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.start()
            self._overall = self._progress.add_task(self._description, total=self._total)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, container_instance: str | None = None) -> None:
        """Count one instance as finished (and drop its drain row)."""
        if self._progress is None or self._overall is None:
            return
        self._progress.advance(self._overall)
        key = short(container_instance) if container_instance else None
        row = self._rows.pop(key, None) if key else None
        self._totals.pop(key or "", None)
        if row is not None:
            self._progress.remove_task(row)

    def callback(self, event: Mapping[str, Any]) -> None:
        """Receive one progress event from the client (drain and batch events)."""
        if self._progress is None:
            return
        name = event.get("event")
        ref = event.get("container_instance_arn") or event.get("container_instance")
        old = event.get("old_instances")
        started = name == "ecs_safe.replace.started"
        if started and isinstance(old, int) and self._overall is not None:
            # A replacement learns its size once it has read the group.
            self._progress.update(self._overall, total=old)
            return
        if name == "ecs_safe.batch.progress":
            self.advance(str(ref) if ref else None)
            return
        remaining = event.get("remaining_tasks")
        if name == "ecs_safe.drain.progress" and ref and isinstance(remaining, int):
            key = short(str(ref))
            row = self._rows.get(key)
            if row is None:
                row = self._progress.add_task(f"  draining {key}", total=max(remaining, 1))
                self._rows[key] = row
            total = max(self._totals.get(key, 0), remaining, 1)
            self._totals[key] = total
            self._progress.update(
                row,
                total=total,
                completed=total - remaining,
                description=f"  draining {key}: {remaining} task(s) left",
            )
