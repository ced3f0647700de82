"""Usage errors as one ``error:`` line: the command group every command is registered on."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ecs_safe.cli.exit_codes import ExitCode
from ecs_safe.cli.rendering import error_line

__all__ = ["Command", "Group", "usage_error"]


class _NoTypeMetavars:
    """Help without typer's type labels (``<bool>``, ``<int>``, ``<list[str]>``).

    A flag takes no value, so a label only misleads; options that take one name it with their
    own metavar (``--timeout SECONDS``), and an argument's metavar already says what it is.
    """

    def get_params(self, ctx: Any) -> list[Any]:
        """The command's parameters, with the type labels of flags and arguments dropped."""
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                param.metavar = param.metavar or ""
            elif param.param_type_name == "argument":
                # typer shows an argument's type even when it has a metavar; hide it here.
                param.display_type_rich = _no_type
        return params


def _no_type(*_args: Any, **_kwargs: Any) -> None:
    return None


class Group(_NoTypeMetavars, TyperGroup):
    """The command group, with usage errors as one ``error:`` line instead of a panel.

    typer prints a multi-line rich panel for usage errors; scripts and humans both read a single
    line better, and the exit code (2) stays click's.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; exit (or, with ``standalone_mode=False``, return) with its code."""
        code: int
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = int(result) if isinstance(result, int) else 0
        except typer.Abort:
            error_line("aborted")
            code = ExitCode.INTERRUPTED
        except Exception as exc:  # click's usage errors come from typer's vendored click
            code = usage_error(exc)
        if not standalone_mode:
            return code
        sys.exit(code)


def usage_error(exc: Exception) -> int:
    """Report a click usage error in one line; anything else is an unexpected failure."""
    format_message = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if not callable(format_message) or not isinstance(exit_code, int):
        # Not click's: a bug of ours. One line still, but say how to see more.
        error_line(f"unexpected {type(exc).__name__}: {exc} (please report this)")
        return int(ExitCode.API_ERROR)
    message = str(format_message())
    if type(exc).__name__ == "NoArgsIsHelpError":
        # The help has been printed already (typer prints it while building the error).
        return exit_code
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    error_line(message.rstrip(".") + hint)
    return exit_code


class Command(_NoTypeMetavars, TyperCommand):
    """A command whose help shows no type labels."""
