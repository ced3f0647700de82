"""Property-based tests of every public input: a typed result or `InvalidInputError`, nothing else.

- References (instance IDs/ARNs, cluster names/ARNs) and flags, through every client method
  against the local endpoint: valid ones (drawn from the ID/ARN grammar) reach the network and
  come back as a typed result or a typed ecs-safe error; invalid ones, and arbitrary values,
  raise `InvalidInputError` without a single request.
- Settings (`RetryConfig`, `RateLimits`, the client's constructor, drain options): built, or
  `InvalidInputError`.
- Models: any subset of botocore's ContainerInstance and Task shapes, with unknown fields and
  wrong-typed values, validates; a well-typed payload dumps back exactly.
- Rules: every built-in rule and `Policy.evaluate` on contexts built from those payloads give a
  `Violation`/``None`` and a `Decision`, and the counter rules fail closed.
"""

from __future__ import annotations

import contextlib
import math
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC
from typing import Any

import botocore.session
import pytest
from aiobotocore.session import AioSession
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecs_safe import (
    BatchResult,
    ClusterAllowlist,
    ContainerInstance,
    Decision,
    EcsSafeClient,
    EcsSafeError,
    InvalidInputError,
    NoPendingTasksUnlessForced,
    NoRunningTasksUnlessForced,
    Policy,
    PolicyContext,
    ProtectStandaloneTasks,
    RateLimits,
    RequireDraining,
    RetryConfig,
    Task,
    Violation,
    default_policy,
)
from ecs_safe.local import LocalEcs

settings.register_profile(
    "ecs-safe-properties",
    deadline=None,
    max_examples=40,
    # The client fixture is shared by the examples of a test on purpose (one client per test).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROPERTIES = settings.get_profile("ecs-safe-properties")
#: For properties that make no request: cheap, so more examples.
PURE = settings(PROPERTIES, max_examples=150)

# --------------------------------------------------------------------------- the grammar

# `i-` and `mi-` belong to EC2 and managed instance IDs (accepted since issue 10): a
# container instance ID never starts so, and a mistyped one is refused.
instance_ids = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),  # today's IDs
    st.uuids().map(str),  # older IDs
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", fullmatch=True),  # the grammar
).filter(lambda s: not s.startswith(("i-", "mi-")))
cluster_names = st.one_of(
    st.sampled_from(["default", "prod"]),  # clusters that exist on the endpoint
    st.from_regex(r"[A-Za-z0-9_-]{1,255}", fullmatch=True),
)
arn_prefixes = st.builds(
    "arn:{}:ecs:{}:{}:".format,
    st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-iso-b"]),
    st.one_of(
        st.sampled_from(["us-east-1", "eu-west-1"]),
        st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
    ),
    st.from_regex(r"[0-9]{12}", fullmatch=True),
)


@st.composite
def valid_refs(draw: st.DrawFn) -> tuple[str, str | None]:
    """A container instance reference and a cluster that agree with each other."""
    name = draw(cluster_names)
    prefix = draw(arn_prefixes)
    clusters: list[str | None] = [name, f"{prefix}cluster/{name}"]
    if name == "default":
        clusters.append(None)
    ident = draw(instance_ids)
    instance = draw(
        st.sampled_from(
            [
                ident,
                f"{prefix}container-instance/{ident}",
                f"{prefix}container-instance/{name}/{ident}",
            ]
        )
    )
    return instance, draw(st.sampled_from(clusters))


_ALLOWED_IN_ID = set(string.ascii_letters + string.digits + "-")
not_strings = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=40),
    st.lists(st.text(max_size=8), max_size=3),
    st.tuples(st.text(max_size=8)),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.builds(object),
)


@st.composite
def with_forbidden_char(draw: st.DrawFn) -> str:
    ident = draw(instance_ids)
    char = draw(st.characters().filter(lambda c: c not in _ALLOWED_IN_ID))
    at = draw(st.integers(0, len(ident)))
    return ident[:at] + char + ident[at:]


bad_instance_strings = st.one_of(
    st.just(""),
    st.text(alphabet=" \t\n\r", min_size=1, max_size=4),
    instance_ids.map(lambda s: s + "\n"),
    instance_ids.map(lambda s: " " + s),
    with_forbidden_char(),
    st.text(alphabet="ab", min_size=65, max_size=80),  # an ID is at most 64 characters
    st.text(alphabet="a", min_size=2049, max_size=2100),  # longer than any ARN
    st.from_regex(r"i-[0-9a-f]{9,16}", fullmatch=True),  # a mistyped EC2 instance ID
    st.text(alphabet="٠١٢٣٤٥٦٧٨٩", min_size=1, max_size=32),  # digits, but not [0-9]
    instance_ids.map("arn:aws:ec2:us-east-1:123456789012:instance/{}".format),
    instance_ids.map("arn:aws:ecs:us-east-1:123456789012:task/prod/{}".format),
    st.text(max_size=30).map("arn:aws:ecs:{}".format),
)
bad_cluster_values = st.one_of(
    not_strings.filter(lambda v: v is not None),
    st.just(""),
    st.from_regex(r"[A-Za-z0-9_-]{0,10}[^A-Za-z0-9_-][A-Za-z0-9_-]{0,10}", fullmatch=True),
    st.text(alphabet="c", min_size=256, max_size=260),
    st.just("arn:aws:ecs:us-east-1:123456789012:service/prod/web"),
    st.text(max_size=30).map("arn:aws:ecs:us-east-1:123456789012:cluster/{}/x".format),
)
anything = st.one_of(not_strings, st.text(max_size=40), bad_instance_strings, instance_ids)
not_bools = st.one_of(
    st.none(), st.integers(), st.floats(), st.text(max_size=6), st.sampled_from(["false", "0"])
)

# --------------------------------------------------------------------------- the client

Call = Callable[[EcsSafeClient, Any, Any, Any, Any], Awaitable[object]]


async def _deregister(ecs: EcsSafeClient, ref: Any, cluster: Any, force: Any, dry: Any) -> object:
    return await ecs.deregister_container_instance(ref, cluster=cluster, force=force, dry_run=dry)


async def _describe(ecs: EcsSafeClient, ref: Any, cluster: Any, force: Any, dry: Any) -> object:
    return await ecs.describe_container_instances([ref], cluster=cluster)


async def _list_tasks(ecs: EcsSafeClient, ref: Any, cluster: Any, force: Any, dry: Any) -> object:
    return await ecs.list_tasks(ref, cluster=cluster)


async def _drain(ecs: EcsSafeClient, ref: Any, cluster: Any, force: Any, dry: Any) -> object:
    return await ecs.drain([ref], cluster=cluster)


async def _drain_and_deregister(
    ecs: EcsSafeClient, ref: Any, cluster: Any, force: Any, dry: Any
) -> object:
    return await ecs.drain_and_deregister(ref, cluster=cluster, timeout=1.0, poll_interval=0.05)


async def _deregister_many(
    ecs: EcsSafeClient, ref: Any, cluster: Any, force: Any, dry: Any
) -> object:
    return await ecs.deregister_many([ref], cluster=cluster, force=force, dry_run=dry)


METHODS: dict[str, Call] = {
    "deregister_container_instance": _deregister,
    "describe_container_instances": _describe,
    "list_tasks": _list_tasks,
    "drain": _drain,
    "drain_and_deregister": _drain_and_deregister,
    "deregister_many": _deregister_many,
}
# deregister_many never raises for one bad instance: it reports it in the batch result.
RAISING = [name for name in METHODS if name != "deregister_many"]


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture(scope="module")
def ecs_env(local_ecs: LocalEcs) -> LocalEcs:
    """The session's endpoint, reset and seeded once for the module (nothing here changes it).

    moto answers a describe in a cluster that never had an instance with an HTTP 500, so both
    clusters get one.
    """
    local_ecs.reset()
    for cluster in ("default", "prod"):
        local_ecs.create_cluster(cluster)
        local_ecs.register_instances(cluster)
    return local_ecs


@pytest.fixture(scope="module")
def session(ecs_env: LocalEcs) -> AioSession:
    # One for the module: each new session loads botocore's ECS model again (~0.25 s).
    return ecs_env.session()


@pytest.fixture
async def ecs(ecs_env: LocalEcs, session: AioSession) -> AsyncIterator[EcsSafeClient]:
    async with EcsSafeClient(
        endpoint_url=ecs_env.endpoint_url,
        region_name=ecs_env.region_name,
        session=session,
        retry=RetryConfig(max_attempts=1),
        rate_limits=RateLimits.unlimited(),
    ) as client:
        yield client


async def _outcome(call: Call, ecs: EcsSafeClient, *args: Any) -> object:
    """The result, or the exception (which must be an ecs-safe error)."""
    try:
        return await call(ecs, *args)
    except EcsSafeError as exc:
        return exc


@pytest.mark.parametrize("method", METHODS)
@PROPERTIES
@given(refs=valid_refs(), force=st.booleans(), dry_run=st.booleans())
async def test_valid_references_get_a_typed_answer(
    method: str,
    ecs: EcsSafeClient,
    ecs_env: LocalEcs,
    refs: tuple[str, str | None],
    force: bool,
    dry_run: bool,
) -> None:
    instance, cluster = refs
    if instance.startswith("arn:"):
        # An ARN of another Region is bad input (issue 13.12, tested in test_client.py): the
        # generated ARN is given the client's Region, so that it stays a valid reference.
        parts = instance.split(":", 5)
        parts[3] = ecs_env.region_name
        instance = ":".join(parts)
    ecs_env.reset_calls()
    outcome = await _outcome(METHODS[method], ecs, instance, cluster, force, dry_run)
    assert not isinstance(outcome, InvalidInputError), outcome
    assert ecs_env.call_log, "a valid reference must reach the service"
    if method == "deregister_many":
        assert isinstance(outcome, BatchResult)
        (only,) = outcome.outcomes
        assert only.status == "failed"
        assert not isinstance(only.error, InvalidInputError)
    # Nothing exists under a random ID: never a deregistration.
    assert ecs_env.calls("DeregisterContainerInstance") == 0


@pytest.mark.parametrize("method", RAISING)
@PROPERTIES
@given(
    data=st.one_of(
        st.tuples(st.one_of(not_strings, bad_instance_strings), valid_refs().map(lambda r: r[1])),
        st.tuples(valid_refs().map(lambda r: r[0]), bad_cluster_values),
    )
)
async def test_invalid_references_are_refused_before_any_request(
    method: str, ecs: EcsSafeClient, ecs_env: LocalEcs, data: tuple[Any, Any]
) -> None:
    instance, cluster = data
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError):
        await METHODS[method](ecs, instance, cluster, False, False)
    assert ecs_env.call_log == []


@pytest.mark.parametrize("method", ["deregister_container_instance", "deregister_many"])
@PROPERTIES
@given(
    refs=valid_refs(),
    flags=st.one_of(st.tuples(not_bools, st.booleans()), st.tuples(st.booleans(), not_bools)),
)
async def test_force_and_dry_run_must_be_real_bools(
    method: str,
    ecs: EcsSafeClient,
    ecs_env: LocalEcs,
    refs: tuple[str, str | None],
    flags: tuple[Any, Any],
) -> None:
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError):
        await METHODS[method](ecs, refs[0], refs[1], *flags)
    assert ecs_env.call_log == []


@pytest.mark.parametrize("method", METHODS)
@PROPERTIES
@given(instance=anything, cluster=st.one_of(st.none(), anything), force=anything, dry=anything)
async def test_arbitrary_values_give_a_typed_answer(
    method: str,
    ecs: EcsSafeClient,
    ecs_env: LocalEcs,
    instance: Any,
    cluster: Any,
    force: Any,
    dry: Any,
) -> None:
    ecs_env.reset_calls()
    outcome = await _outcome(METHODS[method], ecs, instance, cluster, force, dry)
    if isinstance(outcome, InvalidInputError):
        assert ecs_env.call_log == []


@PROPERTIES
@given(items=st.lists(st.one_of(not_strings, bad_instance_strings), min_size=1, max_size=8))
async def test_deregister_many_reports_each_bad_item_without_a_request(
    ecs: EcsSafeClient, ecs_env: LocalEcs, items: list[Any]
) -> None:
    ecs_env.reset_calls()
    result = await ecs.deregister_many(items, cluster="prod")
    assert len(result.outcomes) == len(items)
    assert all(o.status == "failed" for o in result.outcomes)
    assert all(isinstance(o.error, InvalidInputError) for o in result.outcomes)
    assert ecs_env.call_log == []


drain_options = st.fixed_dictionaries(
    {},
    optional={
        "timeout": st.one_of(st.floats(), st.integers(), not_bools),
        "poll_interval": st.one_of(st.floats(), st.integers(), not_bools),
        "on_timeout": st.one_of(st.sampled_from(["raise", "reactivate", "force"]), anything),
        "standalone_tasks": st.one_of(st.sampled_from(["refuse", "wait", "stop"]), anything),
    },
)


@PROPERTIES
@given(options=drain_options)
async def test_drain_options_are_checked_before_any_request(
    ecs: EcsSafeClient, ecs_env: LocalEcs, options: dict[str, Any]
) -> None:
    ecs_env.reset_calls()
    try:
        # "0" * 32 exists nowhere: a valid call ends at the pre-flight describe.
        await ecs.drain_and_deregister("0" * 32, cluster="prod", **options)
    except InvalidInputError:
        assert ecs_env.call_log == []
    except EcsSafeError:
        assert ecs_env.call_log == ["DescribeContainerInstances"]


# --------------------------------------------------------------------------- settings


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
)


@PURE
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "max_attempts": numbers,
            "initial_delay": numbers,
            "max_delay": numbers,
            "jitter": st.one_of(st.booleans(), numbers),
        },
    )
)
def test_retry_config_is_built_or_refused(kwargs: dict[str, Any]) -> None:
    try:
        config = RetryConfig(**kwargs)
    except InvalidInputError:
        return
    assert isinstance(config.max_attempts, int)
    assert config.max_attempts >= 1
    assert math.isfinite(config.initial_delay)
    assert config.initial_delay >= 0
    assert math.isfinite(config.max_delay)
    assert config.max_delay >= config.initial_delay
    assert isinstance(config.jitter, bool)


@PURE
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "read_per_s": numbers,
            "read_burst": numbers,
            "modify_per_s": numbers,
            "modify_burst": numbers,
        },
    )
)
def test_rate_limits_are_built_or_refused(kwargs: dict[str, Any]) -> None:
    try:
        limits = RateLimits(**kwargs)
    except InvalidInputError:
        return
    for per_s in (limits.read_per_s, limits.modify_per_s):
        assert per_s > 0
        assert not math.isnan(per_s)
    for burst in (limits.read_burst, limits.modify_burst):
        assert isinstance(burst, int)
        assert not isinstance(burst, bool)
        assert burst >= 1


@PURE
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "region_name": st.one_of(st.sampled_from(["us-east-1"]), anything),
            "endpoint_url": st.one_of(st.just("http://127.0.0.1:1"), anything),
            "profile_name": st.one_of(st.none(), anything),
            "connect_timeout": numbers,
            "read_timeout": numbers,
            "policy": st.one_of(st.just(default_policy()), anything),
            "retry": st.one_of(st.just(RetryConfig()), anything),
            "rate_limits": st.one_of(st.just(RateLimits()), anything),
        },
    )
)
def test_client_constructor_is_built_or_refused(kwargs: dict[str, Any]) -> None:
    with contextlib.suppress(InvalidInputError):
        EcsSafeClient(**kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "http://host:port",
        "http://[::1",
        "http://",
        "https://:80",
        "http://127.0.0.1:99999",
        "http://exa mple.com",
        "ftp://example.com",
        "http://127.0.0.1:0",
    ],
)
async def test_malformed_endpoint_urls_are_invalid_input(url: str, session: AioSession) -> None:
    with pytest.raises(InvalidInputError):
        async with EcsSafeClient(endpoint_url=url, region_name="us-east-1", session=session) as ecs:
            await ecs.describe_container_instances(["0" * 32])


@PURE
@given(rules=st.one_of(anything, st.lists(st.one_of(anything, st.just(RequireDraining())))))
def test_policy_is_built_or_refused(rules: Any) -> None:
    try:
        policy = Policy(rules)
    except InvalidInputError:
        return
    assert all(isinstance(rule.name, str) and rule.name for rule in policy.rules)


@PURE
@given(
    clusters=st.one_of(
        anything, st.lists(st.one_of(cluster_names, arn_prefixes.map(lambda p: p + "cluster/x")))
    )
)
def test_cluster_allowlist_is_built_or_refused(clusters: Any) -> None:
    with contextlib.suppress(InvalidInputError):
        ClusterAllowlist(clusters)


# --------------------------------------------------------------------------- models

_MODEL = botocore.session.get_session().get_service_model("ecs")
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def shape_values(shape: Shape, *, wrong_types: bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of a botocore shape: any subset of a structure's members, lists of 0-2 items.

    With ``wrong_types`` every value may instead be any JSON value, as a broken endpoint
    (or a future AWS) might send.
    """
    strategy: st.SearchStrategy[Any]
    kind = shape.type_name
    if kind == "structure" and depth < 4:
        members = {
            name: shape_values(member, wrong_types=wrong_types, depth=depth + 1)
            for name, member in shape.members.items()  # type: ignore[attr-defined]
        }
        strategy = st.fixed_dictionaries({}, optional=members)
    elif kind == "structure":
        strategy = st.just({})
    elif kind == "list":
        member = shape_values(shape.member, wrong_types=wrong_types, depth=depth + 1)  # type: ignore[attr-defined]
        strategy = st.lists(member, max_size=2)
    elif kind == "map":
        value = shape_values(shape.value, wrong_types=wrong_types, depth=depth + 1)  # type: ignore[attr-defined]
        strategy = st.dictionaries(st.text(max_size=6), value, max_size=2)
    elif kind == "string":
        text = st.text(max_size=12)
        # An enum value AWS adds later is just another string.
        enum: list[str] = getattr(shape, "enum", [])
        strategy = st.one_of(st.sampled_from(enum), text) if enum else text
    elif kind in ("integer", "long"):
        strategy = st.integers(min_value=-(2**63), max_value=2**63 - 1)
    elif kind == "boolean":
        strategy = st.booleans()
    elif kind in ("double", "float"):
        strategy = st.floats(allow_nan=False)
    elif kind == "timestamp":
        strategy = st.datetimes(timezones=st.just(UTC))
    else:  # blob
        strategy = st.binary(max_size=8)
    # The payload itself is always a dict (the models are validated from dicts).
    return st.one_of(strategy, json_values) if wrong_types and depth else strategy


unknown_fields = st.dictionaries(
    st.text(min_size=1, max_size=12).map(lambda k: "zz" + k), json_values, max_size=3
)
instance_payloads = st.builds(
    lambda known, extra: {**known, **extra},
    shape_values(_MODEL.shape_for("ContainerInstance"), wrong_types=False),
    unknown_fields,
)
messy_instance_payloads = st.builds(
    lambda known, extra: {**known, **extra},
    shape_values(_MODEL.shape_for("ContainerInstance"), wrong_types=True),
    unknown_fields,
)
task_payloads = shape_values(_MODEL.shape_for("Task"), wrong_types=True)
# What the rules read of a task, plus noise: much cheaper to draw than the whole Task shape.
task_statuses = st.sampled_from(["PENDING", "RUNNING", "DEACTIVATING", "STOPPING", "STOPPED"])
rule_task_payloads = st.builds(
    lambda known, extra: {**known, **extra},
    st.fixed_dictionaries(
        {},
        optional={
            "taskArn": st.text(max_size=20),
            "lastStatus": st.one_of(task_statuses, json_values),
            "desiredStatus": st.one_of(st.sampled_from(["RUNNING", "STOPPED"]), json_values),
            "group": st.one_of(st.sampled_from(["service:web", "family:batch"]), json_values),
            "startedBy": st.one_of(st.sampled_from(["ecs-svc/1234", "me"]), json_values),
        },
    ),
    unknown_fields,
)


@PURE
@given(payload=instance_payloads)
def test_well_typed_container_instances_dump_back_exactly(payload: dict[str, Any]) -> None:
    instance = ContainerInstance.model_validate(payload)
    assert instance.model_dump(by_alias=True) == payload


@PURE
@given(payload=messy_instance_payloads)
def test_any_container_instance_payload_validates_and_keeps_its_keys(
    payload: dict[str, Any],
) -> None:
    instance = ContainerInstance.model_validate(payload)
    dumped = instance.model_dump(by_alias=True)
    assert dumped.keys() == payload.keys()
    # The typed attributes never lie about their type (the rules read them).
    for count in (instance.running_tasks_count, instance.pending_tasks_count):
        assert count is None or (isinstance(count, int) and not isinstance(count, bool))
    assert instance.status is None or isinstance(instance.status, str)
    assert instance.agent_connected is None or isinstance(instance.agent_connected, bool)
    # Validating a dump again changes nothing.
    assert ContainerInstance.model_validate(dumped).model_dump(by_alias=True) == dumped


@PROPERTIES
@given(payload=task_payloads, daemons=st.frozensets(st.text(max_size=6), max_size=2))
def test_any_task_payload_is_classified(payload: dict[str, Any], daemons: frozenset[str]) -> None:
    task = Task.from_api(payload, daemon_services=daemons)
    assert task.kind in ("service", "daemon", "standalone")
    assert task.model_dump(by_alias=True).keys() == payload.keys() | {"kind"}


# --------------------------------------------------------------------------- rules

BUILT_IN_RULES = (
    NoRunningTasksUnlessForced(),
    NoPendingTasksUnlessForced(),
    RequireDraining(),
    ProtectStandaloneTasks(),
    ClusterAllowlist(["prod", "arn:aws:ecs:us-east-1:123456789012:cluster/blue"]),
)


@st.composite
def contexts(draw: st.DrawFn) -> PolicyContext:
    payload = draw(messy_instance_payloads)
    tasks = draw(
        st.one_of(
            st.none(),
            st.lists(
                st.builds(Task.from_api, rule_task_payloads, st.just(frozenset({"web"}))),
                max_size=3,
            ),
        )
    )
    return PolicyContext(
        cluster=draw(
            st.one_of(st.none(), cluster_names, arn_prefixes.map(lambda p: p + "cluster/prod"))
        ),
        container_instance=ContainerInstance.model_validate(payload),
        force=draw(st.booleans()),
        dry_run=draw(st.booleans()),
        tasks=None if tasks is None else tuple(tasks),
    )


@PURE
@given(context=contexts())
def test_rules_and_policies_always_decide(context: PolicyContext) -> None:
    for rule in BUILT_IN_RULES:
        verdict = rule.check(context)
        assert verdict is None or (isinstance(verdict, Violation) and verdict.rule == rule.name)
    decision = Policy(BUILT_IN_RULES).evaluate(context)
    assert isinstance(decision, Decision)
    assert decision.allowed == (not decision.violations)


def _live(tasks: tuple[Task, ...] | None) -> int:
    return sum(1 for t in tasks or () if t.last_status != "STOPPED")


@PURE
@given(context=contexts())
def test_the_default_policy_fails_closed(context: PolicyContext) -> None:
    decision = default_policy().evaluate(context)
    if context.force or not decision.allowed:
        return
    instance = context.container_instance
    # Allowed unforced: there is evidence, and it says the instance is empty.
    assert context.tasks is not None or (
        instance.running_tasks_count is not None and instance.pending_tasks_count is not None
    )
    assert (instance.running_tasks_count or 0) <= 0
    assert (instance.pending_tasks_count or 0) <= 0
    assert _live(context.tasks) == 0
