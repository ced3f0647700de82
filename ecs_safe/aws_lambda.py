"""A Lambda entry point for the event worker, for those who want one (the worker is better).

Set the function's handler to ``ecs_safe.aws_lambda.handler`` and trigger it either way:

- **from SQS** (an event source mapping on the queue the EventBridge rule feeds, with
  ``ReportBatchItemFailures`` on): each record is one event; the handler returns
  ``{"batchItemFailures": [...]}`` naming every record it did not finish, so that SQS keeps
  those messages and delivers them again (the others Lambda deletes);
- **from EventBridge directly** (the rule's target is the function): the event is the
  invocation's payload; an event not finished makes the invocation fail (`HandedBackError`),
  so that Lambda's asynchronous retries deliver it again.

**Its limit.** A Lambda invocation lasts 15 minutes at most, and a drain can take longer (a
lifecycle hook's drain takes as long as the services take to move). The handler watches
``context.get_remaining_time_in_millis()``: each event must end `LAMBDA_TIME_RESERVE` seconds
before the limit; one that cannot is cut there and handed back (a batch item failure), never
left to be killed mid-call. The next invocation resumes it: the instance is already DRAINING,
the lifecycle action still in ``Terminating:Wait`` (the hook's heartbeat timeout must cover
the gap between invocations). The Spot path's wait ends at the earlier of the limit and the
notice's end. Duplicates are recognised within one invocation only (a Lambda keeps no record
between invocations unless ``ECS_SAFE_AUDIT_LOG`` names a file that outlives them, e.g. on
EFS); the steps' reads before each action keep a redelivered event from acting twice.

That is why the worker (``ecs-safe watch`` as a service, `EcsSafeClient.watch`) is the
recommended way: no time limit, heartbeats for as long as the drain takes, one client's rate
limits over every event, and a record that survives restarts.

Configuration, from the function's environment: ``ECS_SAFE_CLUSTER`` (else each instance is
found over every cluster), ``ECS_SAFE_ON_FAILURE`` (``hold`` or ``continue``),
``ECS_SAFE_SPOT_STANDALONE_TASKS`` (``wait`` or ``stop``), ``ECS_SAFE_REBALANCE`` (``log`` or
``drain``), ``ECS_SAFE_AUDIT_LOG`` (a path). The Region and credentials are the function's own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ecs_safe._constants import LAMBDA_TIME_RESERVE
from ecs_safe.client import EcsSafeClient
from ecs_safe.errors import EcsSafeError
from ecs_safe.worker import EventOutcome

__all__ = ["HandedBackError", "LambdaContext", "handler", "process"]


class LambdaContext(Protocol):
    """What the handler reads from Lambda's context object."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation is stopped."""
        ...


class HandedBackError(EcsSafeError):
    """An EventBridge-invoked event was not finished in time: Lambda retries the invocation."""

    code = "HandedBack"


def _client_from_env() -> EcsSafeClient:
    return EcsSafeClient(audit_log=os.environ.get("ECS_SAFE_AUDIT_LOG") or None)


def _options() -> dict[str, Any]:
    options: dict[str, Any] = {"cluster": os.environ.get("ECS_SAFE_CLUSTER") or None}
    for key, env in (
        ("on_failure", "ECS_SAFE_ON_FAILURE"),
        ("spot_standalone_tasks", "ECS_SAFE_SPOT_STANDALONE_TASKS"),
        ("rebalance", "ECS_SAFE_REBALANCE"),
    ):
        if os.environ.get(env):
            options[key] = os.environ[env]
    return options


def _records(event: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The SQS records of a batch, or ``None`` for an event invoked directly."""
    records = event.get("Records")
    if isinstance(records, Sequence) and all(
        isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records
    ):
        return list(records)
    return None


async def _one(
    ecs: EcsSafeClient,
    body: str | Mapping[str, Any],
    message_id: str | None,
    deadline: float,
    options: Mapping[str, Any],
) -> EventOutcome | None:
    """The event's outcome, or ``None`` when the deadline came first (handed back)."""
    if asyncio.get_running_loop().time() >= deadline:
        return None
    try:
        async with asyncio.timeout_at(deadline):
            return await ecs.handle_event(body, message_id=message_id, deadline=deadline, **options)
    except TimeoutError:
        return None


async def process(
    event: Mapping[str, Any],
    context: LambdaContext,
    *,
    client: Callable[[], EcsSafeClient] = _client_from_env,
    reserve: float = LAMBDA_TIME_RESERVE,
) -> dict[str, Any]:
    """`handler`'s work, in the caller's event loop (tests, your own wrapper).

    Args:
        event: the invocation's payload (an SQS batch, or an EventBridge event).
        context: Lambda's context (only ``get_remaining_time_in_millis`` is used).
        client: makes the (unopened) client to use; by default from the environment.
        reserve: seconds kept back before the limit.

    Returns:
        For an SQS batch, ``{"batchItemFailures": [{"itemIdentifier": ID}, ...]}``; for an
        event invoked directly, its outcome (`EventOutcome`'s fields).

    Raises:
        HandedBackError: an event invoked directly was not finished (Lambda retries it).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + context.get_remaining_time_in_millis() / 1000 - reserve
    options = _options()
    records = _records(event)
    async with client() as ecs:
        if records is None:
            outcome = await _one(ecs, event, None, deadline, options)
            if outcome is None or outcome.status in ("retry", "handed_back"):
                raise HandedBackError(
                    "the event was not finished before the Lambda's time limit (or failed "
                    "retryably): handed back for Lambda to retry"
                )
            return outcome.to_event()
        outcomes = await asyncio.gather(
            *(
                _one(ecs, record.get("body") or "", record.get("messageId"), deadline, options)
                for record in records
            )
        )
    failures = [
        {"itemIdentifier": record.get("messageId")}
        for record, outcome in zip(records, outcomes, strict=True)
        if outcome is None or outcome.status in ("retry", "handed_back")
    ]
    return {"batchItemFailures": failures}


def handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The Lambda function's handler (``ecs_safe.aws_lambda.handler``); see the module."""
    return asyncio.run(process(event, context))
