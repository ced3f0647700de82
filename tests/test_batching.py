"""`TurnBatcher`: what is submitted in one turn of the event loop goes out in one call."""

from __future__ import annotations

import asyncio

import pytest

from ecs_safe._batching import TurnBatcher


async def test_one_turn_is_one_call_and_each_gets_its_own_result() -> None:
    calls: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        calls.append(items)
        return [item * 10 for item in items]

    batcher: TurnBatcher[int, int] = TurnBatcher(send)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert calls == [[0, 1, 2, 3, 4]]
    # A later turn is a new batch.
    assert await batcher.submit(7) == 70
    assert calls[-1] == [7]


async def test_a_failed_send_fails_every_item_of_its_batch() -> None:
    async def send(items: list[str]) -> list[str]:
        raise RuntimeError(f"refused {len(items)}")

    batcher: TurnBatcher[str, str] = TurnBatcher(send)
    results = await asyncio.gather(batcher.submit("a"), batcher.submit("b"), return_exceptions=True)
    assert [str(r) for r in results] == ["refused 2", "refused 2"]
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_cancelled_submitter_does_not_abandon_the_call() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    sent: list[list[str]] = []

    async def send(items: list[str]) -> list[str]:
        started.set()
        await release.wait()
        sent.append(items)
        return items

    batcher: TurnBatcher[str, str] = TurnBatcher(send)
    first = asyncio.create_task(batcher.submit("x"))
    second = asyncio.create_task(batcher.submit("y"))
    await started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await second == "y"
    assert sent == [["x", "y"]]
