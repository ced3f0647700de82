"""``ecs-safe demo``: the story of `ecs_safe.cli.demo`, run on an embedded local ECS."""

from __future__ import annotations

import asyncio

import typer

from ecs_safe.cli.exit_codes import ExitCode
from ecs_safe.cli.logs import logging_configured
from ecs_safe.cli.options import LogFormat, LogFormatOpt, VerboseOpt
from ecs_safe.cli.rendering import error_line
from ecs_safe.errors import EcsSafeError

__all__ = ["demo"]


def demo(
    log_format: LogFormatOpt = LogFormat.CONSOLE,
    verbose: VerboseOpt = 0,
) -> None:
    """Walk through refusal, dry run, drain and deregistration on an embedded local ECS.

    Needs no AWS account: it starts moto's ECS on loopback (the 'local' extra), seeds a small
    cluster and runs the other commands against it. Takes a few seconds.
    """
    from ecs_safe.cli.demo import DemoError, run_demo  # noqa: PLC0415 - the demo is rarely run

    # The demo narrates everything itself; log events only when asked for (-v).
    with logging_configured(log_format, verbose if verbose else -1):
        try:
            asyncio.run(run_demo())
        except ImportError as exc:
            error_line(f"{exc}; the demo needs it: pip install 'ecs-safe[local]'")
            raise typer.Exit(ExitCode.API_ERROR) from None
        except (EcsSafeError, DemoError) as exc:
            error_line(f"the demo did not go as planned: {exc}")
            raise typer.Exit(ExitCode.API_ERROR) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
