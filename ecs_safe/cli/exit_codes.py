"""The exit codes of ``ecs-safe`` and what each means.

The one table the help's epilog and the reports' summary lines are built from.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from ecs_safe.errors import DrainTimeoutError, EcsSafeError, InvalidInputError, PolicyViolationError

__all__ = ["EPILOG", "ExitCode", "exit_code_of_error"]


class ExitCode(enum.IntEnum):
    """The exit codes of ``ecs-safe`` (`ExitCode.meaning` and `ExitCode.description` say what)."""

    OK = 0
    API_ERROR = 1
    USAGE = 2
    REFUSED = 3
    DRAIN_TIMEOUT = 4
    PARTIAL = 5
    INTERRUPTED = 130
    TERMINATED = 143

    @property
    def meaning(self) -> str:
        """A few words, as in a summary line's ``(exit 5: mixed batch)``."""
        return _TABLE[self][0]

    @property
    def description(self) -> str:
        """One line, as in the help's table of exit codes."""
        return _TABLE[self][1]


# (meaning, description) of each code: the only place they are written down.
_TABLE: Final[Mapping[ExitCode, tuple[str, str]]] = {
    ExitCode.OK: ("success", "success (a dry run: every instance would be deregistered)"),
    ExitCode.API_ERROR: (
        "AWS/API error",
        "AWS/API error (not found, access denied, unreachable, ...) or an unexpected failure",
    ),
    ExitCode.USAGE: ("bad input", "bad usage or input: nothing was sent to ECS"),
    ExitCode.REFUSED: ("refused by policy", "refused by the policy, before any mutating call"),
    ExitCode.DRAIN_TIMEOUT: ("drain timed out", "a drain timed out"),
    ExitCode.PARTIAL: ("mixed batch", "a batch ended mixed (e.g. some deregistered, some refused)"),
    ExitCode.INTERRUPTED: ("interrupted", "interrupted (Ctrl-C); the report says what was done"),
    ExitCode.TERMINATED: ("terminated", "terminated (SIGTERM); the report says what was done"),
}

#: The table of exit codes at the foot of every ``--help`` (rich markup).
EPILOG: Final = "\n".join(
    [
        "[b]Exit codes[/b] (a batch exits with the code all its instances share, else 5):",
        *(f"  [b]{int(code)}[/b]  {code.description}" for code in ExitCode),
    ]
)


def exit_code_of_error(exc: EcsSafeError) -> ExitCode:
    """The exit code of a command (or an instance) that ended with ``exc``."""
    if isinstance(exc, InvalidInputError):
        return ExitCode.USAGE
    if isinstance(exc, PolicyViolationError):
        return ExitCode.REFUSED
    if isinstance(exc, DrainTimeoutError):
        return ExitCode.DRAIN_TIMEOUT
    return ExitCode.API_ERROR
