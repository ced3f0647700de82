"""Property: whatever body the wire brings, a public method answers typed and loses no outcome.

For every ECS operation the SDK makes, a `FaultProxy` answers that operation with a generated,
mangled body (bytes that are not UTF-8, JSON nested up to 100,000 deep, ECS-shaped documents
whose lists hold ``null``, numbers or half-valid items, any HTTP status), once or on every
attempt, before or after the upstream acted. The deregistration whose path makes the operation
(the fault matrix's scenario for it) must then:

- raise nothing but an `EcsSafeError` (no ``UnicodeDecodeError``, ``RecursionError``,
  ``AttributeError``, ...);
- lose no outcome: an instance that the upstream deregistered is reported deregistered (unless
  the mangled answer was a readable HTTP 4xx: a refusal is taken at its word);
- reach ECS's DeregisterContainerInstance at most once.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import test_fault_matrix
from aiobotocore.session import AioSession
from fault_proxy import FaultProxy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fault_matrix import (
    CLUSTER,
    DAEMON_SERVICE,
    DEREGISTER,
    OPERATIONS,
    SCENARIOS,
)

from ecs_safe import DeregistrationResult, EcsSafeClient, EcsSafeError, RateLimits, RetryConfig
from ecs_safe.local import LocalEcs
from ecs_safe.retry import set_testing

EXAMPLES = 20
ALWAYS = 1000
MAX_ATTEMPTS = 3

wire_settings = settings(
    deadline=None,
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --------------------------------------------------------------------------- the bodies

_ECS_KEYS = (
    "containerInstances",
    "containerInstance",
    "failures",
    "tasks",
    "task",
    "taskArns",
    "services",
    "nextToken",
    "__type",
    "message",
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


@st.composite
def half_valid_items(draw: st.DrawFn, arn: str) -> dict[str, Any]:
    """An item naming the real instance (so it is matched) with junk in its other fields."""
    fields = ("status", "ec2InstanceId", "runningTasksCount", "agentConnected", "reason")
    item: dict[str, Any] = {"containerInstanceArn": arn, "arn": arn}
    item.update(draw(st.fixed_dictionaries({}, optional=dict.fromkeys(fields, json_values))))
    return item


def ecs_shaped(arn: str) -> st.SearchStrategy[bytes]:
    """JSON documents with ECS's keys and values of any shape (``failures: [null]``, ...)."""
    values = json_values | st.lists(json_values | half_valid_items(arn), min_size=1, max_size=3)
    return st.fixed_dictionaries({}, optional=dict.fromkeys(_ECS_KEYS, values)).map(
        lambda doc: json.dumps(doc).encode()
    )


def deep_json() -> st.SearchStrategy[bytes]:
    """JSON nested far past any decoder's recursion limit."""
    return st.builds(
        lambda depth, opener: opener[0] * depth + opener[1] * depth,
        st.integers(1_000, 100_000),
        st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]),
    )


def bodies(arn: str) -> st.SearchStrategy[bytes]:
    """Every kind of body botocore may fail to read, or read into a wrong shape."""
    return st.one_of(
        ecs_shaped(arn),
        deep_json(),
        st.binary(max_size=64),
        ecs_shaped(arn).map(lambda b: b"\xff\xfe" + b),  # not UTF-8
        ecs_shaped(arn).map(lambda b: b[: len(b) // 2]),  # cut short
    )


# --------------------------------------------------------------------------- fixtures

#: What is really registered, asked without the proxy (the fault matrix's fixture).
ground_truth = test_fault_matrix.ground_truth


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


@pytest.fixture(scope="module")
def session(local_ecs: LocalEcs) -> AioSession:
    return local_ecs.session()


@pytest.fixture(scope="module")
def instance_pool(local_ecs: LocalEcs) -> deque[str]:
    """One fresh container instance per example, registered in one go."""
    local_ecs.reset()
    local_ecs.create_cluster(CLUSTER)
    local_ecs.create_service(CLUSTER, DAEMON_SERVICE, scheduling_strategy="DAEMON")
    return deque(local_ecs.register_instances(CLUSTER, count=EXAMPLES * len(OPERATIONS) + 10))


@pytest.fixture
async def proxy(local_ecs: LocalEcs) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(local_ecs.endpoint_url) as running:
        yield running


def _gone(ground_truth: Any, arn: str) -> bool:
    response = ground_truth.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])
    found = response.get("containerInstances") or [{}]
    return found[0].get("status") in (None, "INACTIVE")


def _readable_refusal(status: int, body: bytes) -> bool:
    """A 4xx botocore can read: an HTTP refusal, taken at its word (docs/reliability.md).

    Only a middlebox that let the request through and then replaced ECS's answer with a
    refusal makes one lie; ecs-safe does not second-guess every 400 with a describe.
    """
    if not 400 <= status < 500:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------- the property


@pytest.mark.parametrize("operation", OPERATIONS)
@wire_settings
@given(data=st.data())
async def test_no_raw_exception_and_no_lost_outcome(
    operation: str,
    data: st.DataObject,
    local_ecs: LocalEcs,
    instance_pool: deque[str],
    proxy: FaultProxy,
    session: AioSession,
    ground_truth: Any,
) -> None:
    if not instance_pool:  # shrinking a failure runs more examples than planned
        instance_pool.extend(local_ecs.register_instances(CLUSTER, count=EXAMPLES))
    arn = instance_pool.popleft()
    scenario = SCENARIOS[operation]
    scenario.seed(local_ecs, arn)
    body = data.draw(bodies(arn), label="body")
    status = data.draw(st.sampled_from([200, 200, 400, 403, 500]), label="status")
    after = data.draw(st.booleans(), label="after_upstream")
    times = data.draw(st.sampled_from([1, ALWAYS]), label="times")
    proxy.clear()
    local_ecs.reset_calls()
    proxy.inject_body(operation, status, body, times=times, after_upstream=after)

    result: DeregistrationResult | None = None
    async with EcsSafeClient(
        endpoint_url=proxy.endpoint_url,
        region_name=local_ecs.region_name,
        session=session,
        policy=scenario.policy,
        retry=RetryConfig(max_attempts=MAX_ATTEMPTS),
        rate_limits=RateLimits.unlimited(),
    ) as ecs:
        # Typed errors are fine; anything else fails the test with its own traceback.
        with contextlib.suppress(EcsSafeError):
            result = await scenario.action(ecs, arn, CLUSTER)

    assert local_ecs.calls(DEREGISTER) <= 1, "DeregisterContainerInstance reached ECS twice"
    if _gone(ground_truth, arn) and not _readable_refusal(status, body):
        assert result is not None, "the instance was deregistered but the call reported failure"
