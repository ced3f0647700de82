"""One call for what arrives together: the items submitted in one turn of the event loop.

A fleet starting a thousand drains at once, or a worker receiving ten Spot warnings, should
send one UpdateContainerInstancesState per 10 instances, not one per instance. `TurnBatcher`
collects what is submitted before the event loop's next turn and hands it, in order, to one
``send`` call; each submitter gets its own item's result (or the batch's exception).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["TurnBatcher"]

_T = TypeVar("_T")
_R = TypeVar("_R")


class TurnBatcher(Generic[_T, _R]):
    """Batches the items submitted in one turn of the event loop into one ``send`` call.

    Args:
        send: called with the batch's items in submission order; returns one result per
            item, in the same order.

    Example::

        batcher = TurnBatcher(set_draining)  # async (list[str]) -> list[Error | None]
        results = await asyncio.gather(*(batcher.submit(arn) for arn in arns))  # one call
    """

    def __init__(self, send: Callable[[list[_T]], Awaitable[Sequence[_R]]]) -> None:
        """A batcher with nothing waiting."""
        self._send = send
        self._waiting: list[tuple[_T, asyncio.Future[_R]]] = []
        self._senders: set[asyncio.Task[None]] = set()

    async def submit(self, item: _T) -> _R:
        """Send ``item`` with the others of this turn; its result.

        The sending task is not cancelled with a submitter (the result is shielded): a
        mutating call is never abandoned mid-flight because one of its callers went away.

        Raises:
            BaseException: whatever ``send`` raised, for every item of its batch.
        """
        future: asyncio.Future[_R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._waiting) == 1:
            self._senders.add(sender := asyncio.create_task(self._flush()))
            sender.add_done_callback(self._senders.discard)
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the submissions of this turn join the batch
        batch, self._waiting = self._waiting, []
        try:
            results = await self._send([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
