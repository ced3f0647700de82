"""SIGINT and SIGTERM while a command runs: one place installs (and removes) the handlers.

Each command decides what a signal means (``drain`` cancels and reports how far each instance
got; ``watch`` stops receiving, then hands back); `stop_signals` only wires the decision to the
event loop for the length of a block.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

__all__ = ["stop_signals"]


@contextlib.contextmanager
def stop_signals(handler: Callable[[signal.Signals], None]) -> Iterator[None]:
    """Call ``handler`` with each SIGINT or SIGTERM the running loop receives inside the block.

    Not on Windows, nor off the main thread: there the default handling stays.
    """
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
