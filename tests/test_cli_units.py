"""Unit checks of the CLI package's pieces (no ECS needed)."""

from __future__ import annotations

from pathlib import Path

from ecs_safe._constants import ON_TIMEOUT_VALUES, STANDALONE_TASKS_VALUES
from ecs_safe.cli import ExitCode, OnTimeout, StandaloneTasks
from ecs_safe.cli.exit_codes import EPILOG


def test_the_cli_choices_are_the_library_values() -> None:
    assert tuple(OnTimeout) == ON_TIMEOUT_VALUES
    assert tuple(StandaloneTasks) == STANDALONE_TASKS_VALUES


def test_every_exit_code_has_a_meaning_in_the_epilog() -> None:
    for code in ExitCode:
        assert code.meaning
        assert f"[b]{int(code)}[/b]  {code.description}" in EPILOG


def test_no_cli_file_is_over_450_lines() -> None:
    package = Path(__file__).parent.parent / "ecs_safe" / "cli"
    sizes = {p.name: len(p.read_text().splitlines()) for p in package.rglob("*.py")}
    assert sizes
    assert max(sizes.values()) <= 450, sizes
