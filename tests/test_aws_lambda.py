"""The Lambda entry point against LocalEcs: SQS batches, EventBridge events, the time limit.

The context is a fake whose remaining time is fixed: the limit the handler works to is then
the test's choice, never the machine's speed (a wait that must be cut waits on a task that
never stops).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ecs_safe import EcsSafeClient
from ecs_safe.aws_lambda import HandedBackError, process
from ecs_safe.local import LocalEcs

pytestmark = pytest.mark.usefixtures("instant_retries")

CLUSTER = "lambda"


@dataclass
class Context:
    """Lambda's context, as far as the handler reads it."""

    remaining_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def sqs_batch(*events: dict[str, Any]) -> dict[str, Any]:
    """What an SQS event source mapping invokes the function with."""
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"r-{n}",
                "body": json.dumps(event),
                "eventSource": "aws:sqs",
            }
            for n, event in enumerate(events)
        ]
    }


@pytest.fixture
async def one_instance(ecs_env: LocalEcs, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A cluster with one idle instance: (container instance ARN, EC2 instance ID)."""
    monkeypatch.setenv("ECS_SAFE_CLUSTER", CLUSTER)
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        [described] = await ecs.describe_container_instances([arn], cluster=CLUSTER)
    ecs_env.reset_calls()
    return arn, str(described.ec2_instance_id)


def factory(env: LocalEcs) -> Any:
    return lambda: EcsSafeClient(**env.client_kwargs())


async def test_an_sqs_batch_with_time_to_spare_has_no_failures(
    ecs_env: LocalEcs, one_instance: tuple[str, str]
) -> None:
    _, ec2_id = one_instance
    spot = ecs_env.interrupt_spot(ec2_id, drain=False)
    test = {"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "g"}
    result = await process(sqs_batch(spot, test, spot), Context(300_000), client=factory(ecs_env))
    assert result == {"batchItemFailures": []}
    assert ecs_env.calls("DeregisterContainerInstance") == 1  # the duplicate did nothing
    assert ecs_env.calls("UpdateContainerInstancesState") == 1


async def test_a_batch_with_no_time_left_hands_every_record_back(
    ecs_env: LocalEcs, one_instance: tuple[str, str]
) -> None:
    """Under the reserve: nothing is started, every record is a batch item failure."""
    _, ec2_id = one_instance
    spot = ecs_env.interrupt_spot(ec2_id, drain=False)
    ecs_env.reset_calls()
    result = await process(sqs_batch(spot), Context(5_000), client=factory(ecs_env), reserve=10)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert [op for op in ecs_env.call_log if not op.startswith("sqs:")] == []


async def test_the_time_limit_cuts_a_wait_and_hands_the_record_back(
    ecs_env: LocalEcs, one_instance: tuple[str, str]
) -> None:
    """A Spot drain waiting for a standalone task: the limit (3 s past the reserve) comes
    before the notice's end, so the record is handed back and the instance left DRAINING."""
    arn, ec2_id = one_instance
    ecs_env.start_standalone_task(CLUSTER, arn)
    spot = ecs_env.interrupt_spot(ec2_id, drain=False)
    result = await process(sqs_batch(spot), Context(13_000), client=factory(ecs_env), reserve=10)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        [described] = await ecs.describe_container_instances([arn], cluster=CLUSTER)
    assert described.status == "DRAINING"
    assert ecs_env.calls("DeregisterContainerInstance") == 0


async def test_an_eventbridge_event_not_finished_fails_the_invocation(
    ecs_env: LocalEcs, one_instance: tuple[str, str]
) -> None:
    _, ec2_id = one_instance
    spot = ecs_env.interrupt_spot(ec2_id, drain=False)
    with pytest.raises(HandedBackError):
        await process(spot, Context(1_000), client=factory(ecs_env), reserve=10)
    done = await process(spot, Context(300_000), client=factory(ecs_env))
    assert (done["status"], done["action"]) == ("handled", "deregistered")
