"""``ecs-safe local``: what ``python -m ecs_safe.local`` does, as a command of the CLI."""

from __future__ import annotations

import typer

from ecs_safe.cli.exit_codes import ExitCode
from ecs_safe.cli.rendering import error_line

__all__ = ["local"]


def local() -> None:
    """Serve a seeded demo cluster on loopback (LocalEcs) until Ctrl-C.

    Prints the environment lines (``export AWS_ENDPOINT_URL_ECS=...`` and friends) that point
    this CLI or any AWS SDK at it; needs the 'local' extra.
    """
    try:
        # Imported here: moto is an optional extra, and --help must not pay for it.
        from ecs_safe.local.__main__ import main  # noqa: PLC0415
    except ImportError as exc:
        error_line(f"{exc}; ecs-safe local needs it: pip install 'ecs-safe[local]'")
        raise typer.Exit(ExitCode.API_ERROR) from None
    main()
