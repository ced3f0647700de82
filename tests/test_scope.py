"""An ARN of another account is refused before any mutating call, first input or not (13.12).

ECS (and moto) match a container instance by its ID, so an ARN that names another account but
the ID of a local instance would be acted on as the local one. The account is learned from
what ECS returns; these tests give a fresh client (account unknown) a foreign-account ARN as
its first and only input, on every mutating path, and check that it is `InvalidInputError`
with nothing mutated, and what learning the account costs in reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiobotocore.config import AioConfig

from ecs_safe import EcsSafeClient, InvalidInputError, RateLimits, RetryConfig
from ecs_safe._calls import EcsCalls
from ecs_safe._transport import Transport
from ecs_safe.local import LocalEcs
from ecs_safe.ratelimit import RateLimiter

CLUSTER = "prod"
DESCRIBE = "DescribeContainerInstances"
MUTATING = ("UpdateContainerInstancesState", "DeregisterContainerInstance", "StopTask")
#: moto's account is 123456789012: this one is someone else's.
FOREIGN_ACCOUNT = "999999999999"
TIMEOUT = 5.0
POLL = 0.01

pytestmark = pytest.mark.usefixtures("instant_retries")


def _foreign(arn: str) -> str:
    parts = arn.split(":", 5)
    assert parts[4] != FOREIGN_ACCOUNT
    parts[4] = FOREIGN_ACCOUNT
    return ":".join(parts)


def _mutations(local: LocalEcs) -> int:
    return sum(local.calls(operation) for operation in MUTATING)


Path = Callable[[EcsSafeClient, str], Awaitable[object]]


async def _drain(ecs: EcsSafeClient, ref: str) -> object:
    return await ecs.drain([ref], cluster=CLUSTER)


async def _reactivate(ecs: EcsSafeClient, ref: str) -> object:
    return await ecs.reactivate([ref], cluster=CLUSTER)


async def _deregister(ecs: EcsSafeClient, ref: str) -> object:
    return await ecs.deregister_container_instance(ref, cluster=CLUSTER, force=True)


async def _drain_and_deregister(ecs: EcsSafeClient, ref: str) -> object:
    return await ecs.drain_and_deregister(ref, cluster=CLUSTER, timeout=TIMEOUT, poll_interval=POLL)


async def _drain_and_wait(ecs: EcsSafeClient, ref: str) -> object:
    return await ecs.drain_and_wait(ref, cluster=CLUSTER, timeout=TIMEOUT, poll_interval=POLL)


@pytest.mark.parametrize(
    "path",
    [_drain, _reactivate, _deregister, _drain_and_deregister, _drain_and_wait],
    ids=lambda p: p.__name__.lstrip("_"),
)
async def test_a_foreign_account_arn_first_and_only_is_bad_input(
    ecs_env: LocalEcs, path: Path
) -> None:
    ecs_env.create_cluster(CLUSTER)
    (arn,) = ecs_env.register_instances(CLUSTER)
    if path is _reactivate:  # reactivating needs a DRAINING instance to show it changed nothing
        async with EcsSafeClient(**ecs_env.client_kwargs()) as setup:
            await setup.drain([arn], cluster=CLUSTER)
    ecs_env.reset_calls()
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        with pytest.raises(InvalidInputError, match=f"account {FOREIGN_ACCOUNT}"):
            await path(ecs, _foreign(arn))
        assert _mutations(ecs_env) == 0
        # At most one read learned the account (none on the paths that describe anyway).
        assert ecs_env.calls(DESCRIBE) == 1
        (instance,) = await ecs.describe_container_instances([arn], cluster=CLUSTER)
    assert instance.status == ("DRAINING" if path is _reactivate else "ACTIVE")


async def test_deregister_many_fails_the_foreign_arn_and_mutates_nothing(
    ecs_env: LocalEcs,
) -> None:
    ecs_env.create_cluster(CLUSTER)
    (arn,) = ecs_env.register_instances(CLUSTER)
    ecs_env.reset_calls()
    for drain in (False, True):
        async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
            batch = await ecs.deregister_many(
                [_foreign(arn)],
                cluster=CLUSTER,
                force=True,
                drain=drain,
                timeout=TIMEOUT,
                poll_interval=POLL,
            )
        (outcome,) = batch.outcomes
        assert outcome.status == "failed"
        assert isinstance(outcome.error, InvalidInputError)
        assert FOREIGN_ACCOUNT in str(outcome.error)
    assert _mutations(ecs_env) == 0


async def test_learning_the_account_costs_one_read_once_and_none_for_ids(
    ecs_env: LocalEcs,
) -> None:
    ecs_env.create_cluster(CLUSTER)
    first, second = ecs_env.register_instances(CLUSTER, count=2)
    # A drain describes its instances once anyway (for the ownership marks, ecs_safe.ownership);
    # the account is learned from that answer, so scope costs no read of its own.
    drain_calls = [DESCRIBE, "PutAttributes", "UpdateContainerInstancesState"]
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        # A bare ID names an instance of the caller's own account: no extra read.
        ecs_env.reset_calls()
        await ecs.drain([first.rsplit("/", 1)[-1]], cluster=CLUSTER)
        assert ecs_env.call_log == drain_calls
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        # An ARN while the account is unknown: still the one describe, then the drain.
        ecs_env.reset_calls()
        await ecs.drain([second], cluster=CLUSTER)
        assert ecs_env.call_log == drain_calls
        # Known from then on: a foreign ARN is refused with no call at all.
        ecs_env.reset_calls()
        with pytest.raises(InvalidInputError, match="account"):
            await ecs.drain([_foreign(first)], cluster=CLUSTER)
        assert ecs_env.call_log == []


async def test_a_foreign_arn_among_local_ones_stops_the_whole_drain_before_any_change(
    ecs_env: LocalEcs,
) -> None:
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, count=12)
    ids = [arn.rsplit("/", 1)[-1] for arn in arns]
    ecs_env.reset_calls()
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        # Eleven bare IDs (one full UpdateContainerInstancesState batch and more), then the ARN.
        with pytest.raises(InvalidInputError, match="account"):
            await ecs.drain([*ids[:11], _foreign(arns[11])], cluster=CLUSTER)
        assert _mutations(ecs_env) == 0
        described = await ecs.describe_container_instances(arns, cluster=CLUSTER)
    assert {i.status for i in described} == {"ACTIVE"}


async def test_a_foreign_arn_fails_alone_in_a_fleet_run(ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster(CLUSTER)
    first, second = ecs_env.register_instances(CLUSTER, count=2)
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        batch = await ecs.deregister_many(
            [_foreign(first), second],
            cluster=CLUSTER,
            drain=True,
            timeout=TIMEOUT,
            poll_interval=POLL,
        )
        assert [o.status for o in batch.outcomes] == ["failed", "deregistered"]
        assert isinstance(batch.outcomes[0].error, InvalidInputError)
        (kept,) = await ecs.describe_container_instances([first], cluster=CLUSTER)
    assert kept.status == "ACTIVE"
    assert ecs_env.calls("DeregisterContainerInstance") == 1


async def test_the_call_layer_keeps_going_past_a_foreign_arn(ecs_env: LocalEcs) -> None:
    # What a fleet run's batched drain relies on: with keep_going, a foreign ARN is its own
    # error and the others are set DRAINING.
    ecs_env.create_cluster(CLUSTER)
    first, second = ecs_env.register_instances(CLUSTER, count=2)
    config = AioConfig(retries={"total_max_attempts": 1})
    async with ecs_env.session().create_client(
        "ecs", region_name=ecs_env.region_name, endpoint_url=ecs_env.endpoint_url, config=config
    ) as raw:
        calls = EcsCalls(Transport(raw, retry=RetryConfig(), limiter=RateLimiter(RateLimits())))
        ecs_env.reset_calls()
        update = await calls.set_state(
            [_foreign(first), second], CLUSTER, "DRAINING", keep_going=True
        )
    assert list(update.updated) == [second.rsplit("/", 1)[-1]]
    assert list(update.errors) == [first.rsplit("/", 1)[-1]]
    assert isinstance(update.errors[first.rsplit("/", 1)[-1]], InvalidInputError)
    assert ecs_env.call_log == [DESCRIBE, "UpdateContainerInstancesState"]
