"""Task state change events that wake the drain poller: opt-in, and hints only.

Polling alone pays for its lag in reads: a drain sees a task that stopped unannounced only at
the next round, so a lag of a second costs a round a second. ECS announces every task state
change on EventBridge (``ECS Task State Change``, source ``aws.ecs``), and a rule can send them
to an SQS queue. Given that queue (``EcsSafeClient(task_events_queue=...)``), `TaskEvents` runs
beside the client's `ecs_safe._poller.Poller` while it watches anything:

1. It long-polls the queue (ReceiveMessage, up to 10 messages, `TASK_EVENTS_WAIT_SECONDS`),
   through the client's SQS transport: the same rate limiter, retries and error mapping as
   every other call (`ecs_safe._aws_calls.QueueCalls`).
2. It parses each message (`ecs_safe.notices.parse_task_state_change`: EventBridge's envelope,
   raw or through SNS), and for each event whose ``containerInstanceArn`` is a watched
   instance calls `Poller.wake`. The wakes of one receive are one round: the round starts once
   the receive's messages are all read.
3. It deletes every message it received (DeleteMessageBatch), whether it woke the poller or
   not: the queue is dedicated to this client's task events, and a hint is worth nothing once
   read (a message about an instance nobody watches now, malformed or foreign, is logged at
   debug as ``ecs_safe.task_events.ignored`` and deleted too, or it would come back after its
   visibility timeout for ever). A queue shared by two clients works, each eating some of the
   other's hints: that costs only lag.

What an event does not do: judge. A woken round describes the instance, lists its tasks and
describes those not yet seen STOPPED, exactly as a timed one; an event saying STOPPED while
the list still shows the task STOPPING deregisters nothing. A lost or late event (a rule that
matches nothing, an SQS outage, EventBridge's delivery lag) costs lag only: the rounds still
come on time, as a safety net (`Poller.interval`: `TASK_EVENTS_POLL_FACTOR` x ``poll_interval``
while quiet). While receives fail, `live` is False and the rounds come as without events; a
receive that cannot work (no such queue, access denied) ends the loop until the poller's
next run (the next drain), logged as ``ecs_safe.task_events.stopped``.

It sits beside the poller, in the call layer, over `QueueCalls`; the client makes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ecs_safe import _events
from ecs_safe._constants import RECEIVE_BATCH, TASK_EVENTS_BACKOFF, TASK_EVENTS_WAIT_SECONDS
from ecs_safe.errors import EcsSafeError
from ecs_safe.notices import NoticeError, parse_task_state_change

if TYPE_CHECKING:
    from ecs_safe._aws_calls import QueueCalls
    from ecs_safe._poller import Poller
    from ecs_safe.models import QueueMessage

__all__ = ["TaskEvents"]


class TaskEvents:
    """The loop that reads a task-events queue and wakes the poller (see the module).

    Args:
        queue_url: the SQS queue the EventBridge rule sends ECS Task State Change events to.
        queue: makes (or returns) the client's SQS call layer, on the loop's first need.
        wait_seconds: ReceiveMessage's long-poll wait, 0-20.
        backoff: seconds to wait after a failed receive before the next.
        sleep: waits that many seconds (injectable for tests).
    """

    def __init__(
        self,
        queue_url: str,
        queue: Callable[[], Awaitable[QueueCalls]],
        *,
        wait_seconds: int = TASK_EVENTS_WAIT_SECONDS,
        backoff: float = TASK_EVENTS_BACKOFF,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.queue_url = queue_url
        self._queue = queue
        self.wait_seconds = wait_seconds
        self.backoff = backoff
        self._sleep = sleep
        #: False while receives fail (the poller then paces its rounds as without events).
        self.live = True
        #: Set while no loop runs (nothing watched, or the client closed); cleared while one does.
        self.idle = asyncio.Event()
        self.idle.set()
        self._running: set[asyncio.Task[Any]] = set()
        #: Receives that answered, messages read, events that woke the poller, messages ignored.
        self.receives = 0
        self.messages = 0
        self.wakes = 0
        self.ignored = 0

    async def listen(self, poller: Poller) -> None:
        """Receive, wake, delete, until cancelled (the poller's run ends) or the queue fails.

        Never raises but for its cancellation: whatever goes wrong here, the drains go on by
        polling.
        """
        task = asyncio.current_task()
        assert task is not None, "run as a task"
        self._running.add(task)
        self.idle.clear()
        self.live = True
        try:
            await self._listen(poller)
        except Exception as exc:  # a bug here must not end any drain: the rounds go on
            _events.logger.error(
                "ecs_safe.task_events.stopped",
                queue_url=self.queue_url,
                error_code=getattr(exc, "code", None),
                error=str(exc),
            )
        finally:
            self._running.discard(task)
            if not self._running:  # another may have begun (the poller's next run)
                self.live = False
                self.idle.set()

    async def aclose(self) -> None:
        """Cancel the loops still running and wait until they have ended (the client closes)."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _listen(self, poller: Poller) -> None:
        queue = await self._queue()
        while True:
            try:
                messages = await queue.receive(
                    self.queue_url, max_messages=RECEIVE_BATCH, wait_seconds=self.wait_seconds
                )
            except EcsSafeError as exc:
                self.live = False
                if not getattr(exc, "retryable", False):
                    # No such queue, access denied: receiving again cannot mend it. The drains
                    # go on by polling; the poller's next run tries again.
                    _events.logger.warning(
                        "ecs_safe.task_events.stopped",
                        queue_url=self.queue_url,
                        error_code=exc.code,
                        error=str(exc),
                    )
                    return
                _events.logger.warning(
                    "ecs_safe.task_events.receive_failed",
                    queue_url=self.queue_url,
                    error_code=exc.code,
                )
                await self._sleep(self.backoff)
                continue
            self.live = True
            self.receives += 1
            if not messages:
                continue
            self.messages += len(messages)
            self._wake(poller, messages)
            await self._delete(queue, messages)

    def _wake(self, poller: Poller, messages: Sequence[QueueMessage]) -> None:
        """Wake the poller for every event about a watched instance (one round for them all)."""
        for message in messages:
            try:
                event = parse_task_state_change(message.body)
            except NoticeError as exc:
                self._ignore(message, exc.kind, error=str(exc))
                continue
            where = event.container_instance_arn
            if where is None or not poller.wake(where):
                self._ignore(
                    message, "not watched", task_arn=event.task_arn, container_instance_arn=where
                )
                continue
            self.wakes += 1
            _events.logger.debug(
                "ecs_safe.task_events.woke",
                task_arn=event.task_arn,
                container_instance_arn=where,
                last_status=event.last_status,
            )

    def _ignore(self, message: QueueMessage, reason: str, **fields: object) -> None:
        """Count a message that woke nothing, and say why (at debug: it is not a fault)."""
        self.ignored += 1
        _events.logger.debug(
            "ecs_safe.task_events.ignored",
            message_id=message.message_id,
            reason=reason,
            **fields,
        )

    async def _delete(self, queue: QueueCalls, messages: Sequence[QueueMessage]) -> None:
        try:
            failed = await queue.delete_many(self.queue_url, [m.receipt_handle for m in messages])
        except EcsSafeError as exc:
            # The messages come back after their visibility timeout: read twice, a hint only
            # costs a round.
            _events.logger.warning(
                "ecs_safe.task_events.delete_failed", queue_url=self.queue_url, error_code=exc.code
            )
            return
        if failed:
            _events.logger.debug(
                "ecs_safe.task_events.delete_failed", queue_url=self.queue_url, failed=failed
            )
