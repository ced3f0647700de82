"""Time for the lifecycle-hook tests: a `Clock` that moves only when the test moves it.

`StepClock` is an `ecs_safe.autoscaling.Clock` whose ``sleep`` ends only when the test calls
`StepClock.advance` past its end. Built on LocalEcs's lifecycle clock (``now`` is
``local.lifecycle_actions.now()``, and `advance` moves that clock too), the handler's
heartbeats and LocalEcs's hook timeouts keep one time, and a test can play an hour of
``Terminating:Wait`` in a few steps, however loaded the machine is: after each step it waits
until the handler's loops are asleep again (`StepClock.asleep`), never for a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["StepClock"]


@dataclass
class StepClock:
    """A test-driven `Clock`.

    Args:
        now: The time source (LocalEcs's ``lifecycle_actions.now``).
        move: Moves that time source on by the seconds given (``lifecycle_actions.advance``).
    """

    now: Callable[[], datetime]
    move: Callable[[float], object]
    _sleepers: list[tuple[datetime, asyncio.Future[None]]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    slept: int = 0
    """How many sleeps ended (each loop's wake-ups, for assertions)."""

    async def sleep(self, seconds: float) -> None:
        """Wait until the test has advanced the clock ``seconds`` past now."""
        until = self.now() + timedelta(seconds=max(seconds, 0.0))
        if until <= self.now():
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (until, future)
        self._sleepers.append(entry)
        self._changed.set()
        try:
            await future
        finally:
            self._sleepers.remove(entry)
            self.slept += 1

    @property
    def sleeping(self) -> int:
        """How many sleeps are waiting for the clock."""
        return sum(1 for _, future in self._sleepers if not future.done())

    async def asleep(self, count: int, *, unless: Awaitable[object] | None = None) -> None:
        """Return once ``count`` sleeps are waiting (or ``unless``, a task, is done)."""
        while self.sleeping < count:
            if unless is not None and asyncio.isfuture(unless) and unless.done():
                return
            self._changed.clear()
            waiter = asyncio.ensure_future(self._changed.wait())
            watched = [waiter]
            if unless is not None and asyncio.isfuture(unless):
                watched.append(unless)  # type: ignore[arg-type]
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    async def advance(
        self, seconds: float, *, then_asleep: int, unless: Awaitable[object] | None = None
    ) -> None:
        """Move time on, wake every sleep that is due, wait until ``then_asleep`` sleep again."""
        self.move(seconds)
        now = self.now()
        for until, future in list(self._sleepers):
            if until <= now and not future.done():
                future.set_result(None)
        await asyncio.sleep(0)  # let the woken ones leave their sleep
        await self.asleep(then_asleep, unless=unless)
