"""Resolving targets (`ecs_safe._targets`): every input form, against LocalEcs over HTTP.

LocalEcs counts ECS requests per operation, so the batching is asserted, not assumed. Where a
test needs ECS's cluster query language (or ListContainerInstances paging) and this LocalEcs
does not provide it (moto ignores ``filter`` and returns one page), the assertion that depends
on it is skipped by a probe, never weakened; the answers themselves are checked either way,
since `list_instances` keeps only the instances asked for.

Unit tests with a fake aiobotocore client (the real `EcsTransport` on top) cover what no
endpoint here can produce: an INACTIVE registration beside an ACTIVE one, a repeated
``nextToken``, a listing that never ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
import structlog
from aiobotocore.config import AioConfig
from botocore.config import Config

from ecs_safe import EcsSafeClient, SyncEcsSafeClient, _calls
from ecs_safe._calls import EcsCalls
from ecs_safe._targets import (
    EC2_IDS_PER_FILTER,
    FILTER_MAX_CHARS,
    AutoScalingGroupNotFoundError,
    PaginationError,
    classify,
    ec2_id_filters,
    group_instance_ids,
    list_group_instances,
    list_instances,
    live_first,
    locate,
    resolve,
)
from ecs_safe._transport import EcsTransport
from ecs_safe.errors import (
    ContainerInstanceNotFoundError,
    InvalidInputError,
    InvalidParameterException,
)
from ecs_safe.local import LocalEcs
from ecs_safe.models import ContainerInstance
from ecs_safe.ratelimit import RateLimiter, RateLimits
from ecs_safe.retry import RetryConfig

HEX_ID = "0123456789abcdef0123456789abcdef"
UUID_ID = "3f1c2a4b-5d6e-4f70-8192-a3b4c5d6e7f8"
ARN = f"arn:aws:ecs:us-east-1:123456789012:container-instance/prod/{HEX_ID}"
EC2_LONG = "i-0123456789abcdef0"
EC2_SHORT = "i-0123abcd"
MANAGED = "mi-0123456789abcdef0"
_AMI = "ami-1e749f67"

# ----------------------------------------------------------------------------- fixtures


def _boto(env: LocalEcs, service: str) -> Any:
    """A plain botocore client for seeding (its ECS requests are counted: reset afterwards)."""
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client(
        service,
        region_name=env.region_name,
        endpoint_url=env.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )


async def _transport(env: LocalEcs, service: str) -> AsyncIterator[EcsTransport]:
    config = AioConfig(retries={"total_max_attempts": 1})
    session: Any = env.session()  # typed per service name; this helper serves two
    async with session.create_client(
        service, region_name=env.region_name, endpoint_url=env.endpoint_url, config=config
    ) as client:
        yield EcsTransport(client, retry=RetryConfig(), limiter=RateLimiter(RateLimits()))


@pytest.fixture
async def ecs(ecs_env: LocalEcs) -> AsyncIterator[EcsCalls]:
    """The call layer over an aiobotocore ECS client, built as EcsSafeClient builds its own."""
    async for transport in _transport(ecs_env, "ecs"):
        yield EcsCalls(transport)


@pytest.fixture
async def autoscaling(ecs_env: LocalEcs) -> AsyncIterator[EcsTransport]:
    """A transport over an aiobotocore Auto Scaling client (same retries and limits)."""
    async for transport in _transport(ecs_env, "autoscaling"):
        yield transport


def _ec2_ids(env: LocalEcs, cluster: str, arns: list[str]) -> list[str]:
    """The EC2 instance ID of each container instance ARN, in order."""
    client = _boto(env, "ecs")
    by_arn: dict[str, str] = {}
    for first in range(0, len(arns), 100):
        response = client.describe_container_instances(
            cluster=cluster, containerInstances=arns[first : first + 100]
        )
        for raw in response["containerInstances"]:
            by_arn[raw["containerInstanceArn"]] = raw["ec2InstanceId"]
    return [by_arn[arn] for arn in arns]


def _register(env: LocalEcs, cluster: str, ec2_id: str) -> str:
    """Register an existing EC2 instance in a cluster over HTTP; returns the new ARN."""
    response = _boto(env, "ecs").register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps({"instanceId": ec2_id})
    )
    return str(response["containerInstance"]["containerInstanceArn"])


def _unregistered_ec2(env: LocalEcs, count: int) -> list[str]:
    """Launch EC2 instances registered in no cluster."""
    reservation = _boto(env, "ec2").run_instances(ImageId=_AMI, MinCount=count, MaxCount=count)
    return [i["InstanceId"] for i in reservation["Instances"]]


_probe_cache: dict[str, bool] = {}


def _filters(env: LocalEcs) -> bool:
    """Whether this LocalEcs evaluates ``filter`` (a probe that must exclude an instance)."""
    if "filter" not in _probe_cache:
        env.create_cluster("probe-filter")
        arns = env.register_instances("probe-filter", count=2)
        first = _ec2_ids(env, "probe-filter", arns)[0]
        listed = _boto(env, "ecs").list_container_instances(
            cluster="probe-filter", filter=f"ec2InstanceId == {first}"
        )["containerInstanceArns"]
        _probe_cache["filter"] = len(listed) == 1
        env.reset_calls()
    return _probe_cache["filter"]


def _pages(env: LocalEcs) -> bool:
    """Whether this LocalEcs pages ListContainerInstances (a probe with maxResults=1)."""
    if "pages" not in _probe_cache:
        env.create_cluster("probe-pages")
        env.register_instances("probe-pages", count=2)
        page = _boto(env, "ecs").list_container_instances(cluster="probe-pages", maxResults=1)
        _probe_cache["pages"] = bool(page.get("nextToken"))
        env.reset_calls()
    return _probe_cache["pages"]


def _need(supported: bool, what: str) -> None:
    if not supported:
        pytest.skip(f"this LocalEcs does not {what} (moto alone does not)")


# ----------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("value", "kind", "key"),
    [
        (HEX_ID, "container_instance_id", HEX_ID),
        (UUID_ID, "container_instance_id", UUID_ID),
        (ARN, "container_instance_arn", HEX_ID),
        (EC2_LONG, "ec2_instance_id", EC2_LONG),
        (EC2_SHORT, "ec2_instance_id", EC2_SHORT),
        (MANAGED, "managed_instance_id", MANAGED),
    ],
)
def test_classify_every_form(value: str, kind: str, key: str) -> None:
    target = classify(value)
    assert (target.given, target.kind, target.key) == (value, kind, key)
    assert target.needs_lookup is (kind in ("ec2_instance_id", "managed_instance_id"))


def test_classify_a_model_by_its_arn() -> None:
    target = classify(ContainerInstance(container_instance_arn=ARN))
    assert (target.given, target.kind, target.cluster_in_arn) == (
        ARN,
        "container_instance_arn",
        "prod",
    )
    with pytest.raises(InvalidInputError, match="without a container_instance_arn"):
        classify(ContainerInstance())


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        b"i-0123abcd",
        "",
        " ",
        f"{EC2_LONG} ",
        "i-0123456789ABCDEF0",  # EC2 IDs are lowercase
        "i-0123abc",  # 7 hex digits
        "i-0123456789abcdef",  # 16
        "mi-0123abcd",  # managed IDs have 17
        "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0",
        f"{HEX_ID};x",
        "a" * 5000,
    ],
)
def test_classify_refuses_everything_else_naming_the_forms(value: object) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        classify(value, argument="container_instances[]")
    message = str(exc_info.value)
    assert "container_instances[]" in message
    if value in (None, 42) or (isinstance(value, str) and ";" in value):
        assert "EC2 instance ID" in message
        assert "managed instance ID" in message


def test_ec2_filters_stay_within_the_expression_limit() -> None:
    ids = [f"i-{n:017x}" for n in range(1000)] + ["i-00000000"]
    filters = ec2_id_filters(ids + ids[:10])  # repeats are named once
    assert all(len(f) <= FILTER_MAX_CHARS for f in filters)
    named = [i for f in filters for i in f.removeprefix("ec2InstanceId in [")[:-1].split(", ")]
    assert named == ids
    assert len(filters) == 22  # ~47 long IDs a filter (1,024 characters)
    short = ec2_id_filters([f"i-{n:08x}" for n in range(250)])
    # 83 short IDs fill the character budget before the count bound binds.
    assert [f.count(", ") + 1 for f in short] == [83, 83, 83, 1]
    assert all(f.count(", ") + 1 <= EC2_IDS_PER_FILTER for f in short)
    combined = ec2_id_filters([EC2_LONG], within="attribute:ecs.os-type == linux")
    assert combined == [f"(attribute:ecs.os-type == linux) and ec2InstanceId in [{EC2_LONG}]"]
    with pytest.raises(InvalidInputError, match="1024"):
        ec2_id_filters([EC2_LONG], within="x" * FILTER_MAX_CHARS)


def test_live_registration_sorts_last() -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    new = datetime(2025, 1, 1, tzinfo=UTC)
    inactive_new = ContainerInstance(status="INACTIVE", registered_at=new)
    active_old = ContainerInstance(status="ACTIVE", registered_at=old)
    draining_new = ContainerInstance(status="DRAINING", registered_at=new)
    registering = ContainerInstance(status="REGISTERING", registered_at=new)
    assert max([inactive_new, active_old], key=live_first) is active_old
    assert max([active_old, draining_new, inactive_new], key=live_first) is draining_new
    assert max([inactive_new, registering], key=live_first) is registering
    assert max([ContainerInstance(status="ACTIVE"), active_old], key=live_first) is active_old


# ----------------------------------------------------------------------------- resolve


async def test_every_input_form_resolves_to_its_instance(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    ecs_env.create_cluster("prod")
    arns = ecs_env.register_instances("prod", count=3)
    ec2 = _ec2_ids(ecs_env, "prod", arns)
    ecs_env.reset_calls()
    model = ContainerInstance(container_instance_arn=arns[2])
    resolution = await resolve(
        ecs, [ec2[0], arns[1].rsplit("/", 1)[-1], model, arns[1]], cluster="prod"
    )
    first, by_id, by_model, by_arn = resolution.items
    assert (first.ref, first.ec2_instance_id, first.error) == (arns[0], ec2[0], None)
    assert by_id.ref == arns[1].rsplit("/", 1)[-1]
    assert by_id.error is None
    assert by_model.ref == arns[2]
    assert by_model.given == arns[2]
    assert by_arn.ref == arns[1]
    # The ID and the ARN of one instance are one target; the ARN is kept.
    assert resolution.targets == (arns[0], arns[1], arns[2])
    assert resolution.errors == []
    assert resolution.described[arns[0].rsplit("/", 1)[-1]].ec2_instance_id == ec2[0]
    # IDs and ARNs cost nothing here; the one EC2 ID one listing and one describe.
    assert ecs_env.calls("ListContainerInstances") == 1
    assert ecs_env.calls("DescribeContainerInstances") == 1


async def test_ids_and_arns_alone_cost_no_call(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    resolution = await resolve(ecs, [HEX_ID, ARN], cluster="prod")
    assert resolution.targets == (ARN,)
    assert [item.ref for item in resolution.items] == [HEX_ID, ARN]
    assert ecs_env.call_log == []


async def test_managed_instance_id_is_looked_up_like_an_ec2_id(
    ecs_env: LocalEcs, ecs: EcsCalls
) -> None:
    ecs_env.create_cluster("edge")
    resolution = await resolve(ecs, [MANAGED], cluster="edge")
    [item] = resolution.items
    assert isinstance(item.error, ContainerInstanceNotFoundError)
    assert item.error.container_instances == [MANAGED]
    assert ecs_env.calls("ListContainerInstances") == 1


async def test_unknown_and_malformed_inputs_are_outcomes_not_drops(
    ecs_env: LocalEcs, ecs: EcsCalls
) -> None:
    ecs_env.create_cluster("prod")
    ecs_env.create_cluster("other")
    [arn] = ecs_env.register_instances("prod")
    [elsewhere] = _ec2_ids(ecs_env, "other", ecs_env.register_instances("other"))
    [nowhere] = _unregistered_ec2(ecs_env, 1)
    [known] = _ec2_ids(ecs_env, "prod", [arn])
    ecs_env.reset_calls()
    resolution = await resolve(ecs, [nowhere, known, "not an id", elsewhere], cluster="prod")
    missing, found, bad, other = resolution.items
    assert found.ref == arn
    for item, ec2_id in ((missing, nowhere), (other, elsewhere)):
        assert isinstance(item.error, ContainerInstanceNotFoundError)
        assert item.error.container_instances == [ec2_id]
        assert ec2_id in str(item.error)
        assert "prod" in str(item.error)
    assert isinstance(bad.error, InvalidInputError)
    assert [e.given for e in resolution.errors] == [nowhere, "not an id", elsewhere]
    assert resolution.targets == (arn,)


async def test_duplicates_across_forms_are_one_target(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    ecs_env.create_cluster("prod")
    [arn] = ecs_env.register_instances("prod")
    [ec2] = _ec2_ids(ecs_env, "prod", [arn])
    instance_id = arn.rsplit("/", 1)[-1]
    ecs_env.reset_calls()
    inputs: list[object] = [
        instance_id,
        ec2,
        arn,
        ContainerInstance(container_instance_arn=arn),
        ec2,
    ]
    resolution = await resolve(ecs, inputs, cluster="prod")
    assert resolution.targets == (arn,)
    assert [item.instance_id for item in resolution.items] == [instance_id] * 5
    assert len(resolution.inputs_of(arn)) == 5
    assert ecs_env.calls("ListContainerInstances") == 1  # the EC2 ID is looked up once


async def test_re_registered_ec2_instance_resolves_to_the_new_registration(
    ecs_env: LocalEcs, ecs: EcsCalls
) -> None:
    ecs_env.create_cluster("prod")
    [old] = ecs_env.register_instances("prod")
    [ec2] = _ec2_ids(ecs_env, "prod", [old])
    _boto(ecs_env, "ecs").deregister_container_instance(
        cluster="prod", containerInstance=old, force=True
    )
    new = _register(ecs_env, "prod", ec2)
    assert new != old
    ecs_env.reset_calls()
    resolution = await resolve(ecs, [ec2], cluster="prod")
    assert resolution.targets == (new,)
    assert resolution.items[0].ec2_instance_id == ec2


async def test_a_thousand_ec2_ids_cost_a_handful_of_calls(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    ecs_env.create_cluster("big")
    arns = ecs_env.register_instances("big", count=1000)
    ec2 = _ec2_ids(ecs_env, "big", arns)
    ecs_env.reset_calls()
    resolution = await resolve(ecs, ec2, cluster="big")
    assert resolution.errors == []
    assert list(resolution.targets) == arns
    lists = ecs_env.calls("ListContainerInstances")
    describes = ecs_env.calls("DescribeContainerInstances")
    assert lists == len(ec2_id_filters(ec2)) == 22
    _need(_filters(ecs_env), "evaluate ListContainerInstances filters")
    # With real filtering each listing returns only its ~47 instances: 10 describes of 100.
    assert describes == 10
    assert lists + describes <= 35


async def test_resolution_waits_on_the_read_bucket(ecs_env: LocalEcs) -> None:
    """Every call of a resolution takes a read token first (the transport's limiter)."""
    taken: list[str] = []

    class CountingLimiter(RateLimiter):
        async def acquire(self, operation: str, service: str = "ecs") -> None:
            taken.append(self.kind_of(operation, service))
            await super().acquire(operation, service)

    ecs_env.create_cluster("prod")
    arns = ecs_env.register_instances("prod", count=2)
    ec2 = _ec2_ids(ecs_env, "prod", arns)
    config = AioConfig(retries={"total_max_attempts": 1})
    async with ecs_env.session().create_client(
        "ecs", region_name=ecs_env.region_name, endpoint_url=ecs_env.endpoint_url, config=config
    ) as client:
        api = EcsTransport(client, retry=RetryConfig(), limiter=CountingLimiter(RateLimits()))
        await resolve(EcsCalls(api), ec2, cluster="prod")
    assert taken == ["read", "read"]


# ----------------------------------------------------------------------------- list_instances


async def test_list_instances_reads_every_page(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    ecs_env.create_cluster("wide")
    arns = ecs_env.register_instances("wide", count=250)
    ecs_env.reset_calls()
    instances = await list_instances(ecs, cluster="wide")
    assert sorted(i.container_instance_arn or "" for i in instances) == sorted(arns)
    assert ecs_env.calls("DescribeContainerInstances") == 3
    lists = ecs_env.calls("ListContainerInstances")  # read before the probe resets the counts
    _need(_pages(ecs_env), "page ListContainerInstances")
    assert lists == 3


async def test_list_instances_by_filter(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    ecs_env.create_cluster("prod")
    arns = ecs_env.register_instances("prod", count=3)
    ec2 = _ec2_ids(ecs_env, "prod", arns)
    ecs_env.reset_calls()
    picked = await list_instances(ecs, cluster="prod", ec2_instance_ids=[ec2[1]])
    assert [i.container_instance_arn for i in picked] == [arns[1]]
    _need(_filters(ecs_env), "evaluate ListContainerInstances filters")
    others = await list_instances(ecs, cluster="prod", filter=f"ec2InstanceId != {ec2[1]}")
    assert sorted(i.container_instance_arn or "" for i in others) == sorted([arns[0], arns[2]])


async def test_a_bad_filter_comes_back_typed(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    ecs_env.create_cluster("prod")
    ecs_env.register_instances("prod")
    ecs_env.inject_fault(
        "ListContainerInstances",
        code="InvalidParameterException",
        message="The filter expression is invalid.",
    )
    with pytest.raises(InvalidParameterException) as exc_info:
        await list_instances(ecs, cluster="prod", filter="attribute:ecs.ami-id ==")
    assert exc_info.value.operation == "ListContainerInstances"
    assert ecs_env.calls("DescribeContainerInstances") == 0
    _need(_filters(ecs_env), "evaluate ListContainerInstances filters")
    with pytest.raises(InvalidParameterException):
        await list_instances(ecs, cluster="prod", filter="attribute:ecs.ami-id ==")


async def test_empty_cluster_lists_nothing_and_describes_nothing(
    ecs_env: LocalEcs, ecs: EcsCalls
) -> None:
    ecs_env.create_cluster("empty")
    assert await list_instances(ecs, cluster="empty") == []
    assert ecs_env.calls("DescribeContainerInstances") == 0


# ----------------------------------------------------------------------------- Auto Scaling


def _group(env: LocalEcs, name: str, size: int) -> list[str]:
    client = _boto(env, "autoscaling")
    client.create_launch_configuration(
        LaunchConfigurationName=f"{name}-lc", ImageId=_AMI, InstanceType="t3.micro"
    )
    client.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchConfigurationName=f"{name}-lc",
        MinSize=size,
        MaxSize=size,
        DesiredCapacity=size,
        AvailabilityZones=[f"{env.region_name}a"],
    )
    groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return [m["InstanceId"] for m in groups["AutoScalingGroups"][0]["Instances"]]


async def test_group_members_resolved_with_unregistered_ones_reported(
    ecs_env: LocalEcs, ecs: EcsCalls, autoscaling: EcsTransport
) -> None:
    ecs_env.create_cluster("prod")
    members = _group(ecs_env, "web", 4)
    arns = [_register(ecs_env, "prod", m) for m in members[:3]]
    ecs_env.reset_calls()
    assert await group_instance_ids(autoscaling, "web") == members
    with structlog.testing.capture_logs() as logs:
        found = await list_group_instances(ecs, autoscaling, cluster="prod", group="web")
    assert [i.container_instance_arn for i in found.instances] == arns
    assert found.missing == [members[3]]
    [event] = [e for e in logs if e["event"] == "ecs_safe.targets.unregistered"]
    assert event["log_level"] == "warning"
    assert event["ec2_instance_ids"] == [members[3]]
    assert (event["auto_scaling_group"], event["cluster"], event["count"]) == ("web", "prod", 1)


async def test_group_combined_with_status(
    ecs_env: LocalEcs, ecs: EcsCalls, autoscaling: EcsTransport
) -> None:
    ecs_env.create_cluster("prod")
    members = _group(ecs_env, "web", 3)
    arns = [_register(ecs_env, "prod", m) for m in members[:2]]
    _boto(ecs_env, "ecs").update_container_instances_state(
        cluster="prod", containerInstances=[arns[0]], status="DRAINING"
    )
    found = await list_group_instances(
        ecs, autoscaling, cluster="prod", group="web", status="DRAINING"
    )
    assert [i.container_instance_arn for i in found.instances] == [arns[0]]
    assert found.missing == [members[2]]  # ACTIVE members[1] is registered: not missing


async def test_unknown_group_is_a_typed_error(ecs_env: LocalEcs, autoscaling: EcsTransport) -> None:
    with pytest.raises(AutoScalingGroupNotFoundError) as exc_info:
        await group_instance_ids(autoscaling, "no-such-group")
    assert exc_info.value.group == "no-such-group"
    assert "no-such-group" in str(exc_info.value)
    assert exc_info.value.retryable is False


# ----------------------------------------------------------------------------- locate


async def test_locate_across_clusters(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    placed: dict[str, str] = {}
    for name in ("blue", "green", "batch"):
        ecs_env.create_cluster(name)
        for arn, ec2 in zip(
            arns := ecs_env.register_instances(name, count=2),
            _ec2_ids(ecs_env, name, arns),
            strict=True,
        ):
            placed[ec2] = arn
    [nowhere] = _unregistered_ec2(ecs_env, 1)
    ecs_env.create_cluster("empty")
    ecs_env.reset_calls()
    wanted = [*placed, nowhere]
    found = await locate(ecs, wanted)
    assert set(found) == set(placed)
    for ec2, instance in found.items():
        assert instance.container_instance_arn == placed[ec2]
        assert instance.ec2_instance_id == ec2
    assert {i.cluster_name for i in found.values()} == {"blue", "green", "batch"}
    assert ecs_env.calls("ListClusters") == 1
    assert ecs_env.calls("ListContainerInstances") <= 4  # one per cluster at most


async def test_locate_refuses_container_instance_ids(ecs_env: LocalEcs, ecs: EcsCalls) -> None:
    with pytest.raises(InvalidInputError, match="locate takes EC2"):
        await locate(ecs, [HEX_ID])
    assert ecs_env.call_log == []
    assert await locate(ecs, []) == {}


# ----------------------------------------------------------------------------- fakes


class FakeEcs:
    """An aiobotocore-shaped client answering from canned data (for what moto cannot do)."""

    def __init__(
        self,
        instances: list[dict[str, Any]],
        *,
        next_token: Callable[[str | None], str | None] = lambda _t: None,
        clusters: list[str] | None = None,
    ) -> None:
        self.instances = instances
        self.next_token = next_token
        self.clusters = clusters or ["arn:aws:ecs:us-east-1:123456789012:cluster/a"]
        self.list_calls = 0

    async def list_container_instances(self, **kwargs: Any) -> dict[str, Any]:
        self.list_calls += 1
        arns = [i["containerInstanceArn"] for i in self.instances]
        token = self.next_token(kwargs.get("nextToken"))
        return {"containerInstanceArns": arns, **({"nextToken": token} if token else {})}

    async def describe_container_instances(self, **kwargs: Any) -> dict[str, Any]:
        wanted = set(kwargs["containerInstances"])
        return {
            "containerInstances": [
                i for i in self.instances if i["containerInstanceArn"] in wanted
            ],
            "failures": [],
        }

    async def list_clusters(self, **_: Any) -> dict[str, Any]:
        return {"clusterArns": self.clusters}


def _fake_api(client: FakeEcs) -> EcsCalls:
    transport = EcsTransport(
        client, retry=RetryConfig(), limiter=RateLimiter(RateLimits.unlimited())
    )
    return EcsCalls(transport)


def _raw(n: int, ec2: str, status: str, year: int, cluster: str = "a") -> dict[str, Any]:
    return {
        "containerInstanceArn": (
            f"arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/{n:032x}"
        ),
        "ec2InstanceId": ec2,
        "status": status,
        "registeredAt": datetime(year, 1, 1, tzinfo=UTC),
    }


async def test_inactive_old_registration_loses_to_the_active_one() -> None:
    old = _raw(1, EC2_LONG, "INACTIVE", 2025)  # deregistered later than the new one registered
    new = _raw(2, EC2_LONG, "ACTIVE", 2024)
    api = _fake_api(FakeEcs([old, new]))
    resolution = await resolve(api, [EC2_LONG], cluster="a")
    assert resolution.targets == (new["containerInstanceArn"],)


async def test_locate_prefers_a_live_registration_in_another_cluster() -> None:
    stale = _raw(1, EC2_LONG, "INACTIVE", 2024, cluster="a")
    live = _raw(2, EC2_LONG, "ACTIVE", 2023, cluster="b")

    class TwoClusters(FakeEcs):
        async def list_container_instances(self, **kwargs: Any) -> dict[str, Any]:
            self.instances = [stale] if kwargs["cluster"].endswith("/a") else [live]
            return await super().list_container_instances(**kwargs)

    prefix = "arn:aws:ecs:us-east-1:123456789012:cluster/"
    client = TwoClusters([], clusters=[prefix + "a", prefix + "b"])
    found = await locate(_fake_api(client), [EC2_LONG])
    assert found[EC2_LONG].container_instance_arn == live["containerInstanceArn"]


async def test_a_repeated_next_token_is_an_error_not_a_loop() -> None:
    client = FakeEcs([_raw(1, EC2_LONG, "ACTIVE", 2024)], next_token=lambda _t: "same")
    with pytest.raises(PaginationError, match="same nextToken twice") as exc_info:
        await list_instances(_fake_api(client), cluster="a")
    assert exc_info.value.code == "PaginationLoop"
    assert client.list_calls == 2


async def test_a_listing_that_never_ends_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_calls, "LIST_PAGE_CAP", 5)  # the one pager lives in the call layer
    client = FakeEcs([], next_token=lambda t: str(int(t or "0") + 1))
    with pytest.raises(PaginationError, match="after 5 pages") as exc_info:
        await list_instances(_fake_api(client), cluster="a")
    assert exc_info.value.code == "PaginationCap"
    assert client.list_calls == 5


async def test_every_page_is_read_and_each_arn_described_once() -> None:
    """Paging as ECS pages (100 ARNs a page), which this LocalEcs may not do."""
    instances = [_raw(n, f"i-{n:017x}", "ACTIVE", 2024) for n in range(250)]

    class Paged(FakeEcs):
        async def list_container_instances(self, **kwargs: Any) -> dict[str, Any]:
            self.list_calls += 1
            start = int(kwargs.get("nextToken") or 0)
            page = self.instances[start : start + kwargs["maxResults"]]
            more = start + len(page) < len(self.instances)
            return {
                "containerInstanceArns": [i["containerInstanceArn"] for i in page],
                **({"nextToken": str(start + len(page))} if more else {}),
            }

    client = Paged(instances)
    listed = await list_instances(_fake_api(client), cluster="a")
    assert [i.container_instance_arn for i in listed] == [
        i["containerInstanceArn"] for i in instances
    ]
    assert client.list_calls == 3


async def test_a_throttled_listing_is_retried_through_the_transport(
    ecs_env: LocalEcs,
) -> None:
    ecs_env.create_cluster("prod")
    [arn] = ecs_env.register_instances("prod")
    [ec2] = _ec2_ids(ecs_env, "prod", [arn])
    ecs_env.reset_calls()
    ecs_env.inject_fault("ListContainerInstances", code="ThrottlingException")
    config = AioConfig(retries={"total_max_attempts": 1})
    session: Any = ecs_env.session()
    async with session.create_client(
        "ecs", region_name=ecs_env.region_name, endpoint_url=ecs_env.endpoint_url, config=config
    ) as client:
        api = EcsTransport(
            client,
            retry=RetryConfig(initial_delay=0.001, max_delay=0.001, jitter=False),
            limiter=RateLimiter(RateLimits()),
        )
        resolution = await resolve(EcsCalls(api), [ec2], cluster="prod")
    assert resolution.targets == (arn,)
    assert ecs_env.calls("ListContainerInstances") == 2
    assert ecs_env.pending_faults() == 0


# ----------------------------------------------------------------------------- through the client


@pytest.fixture
async def client(ecs_env: LocalEcs) -> AsyncIterator[EcsSafeClient]:
    """The public async client on LocalEcs."""
    async with EcsSafeClient(**ecs_env.client_kwargs()) as opened:
        yield opened


def _prod(env: LocalEcs, count: int = 2) -> tuple[list[str], list[str]]:
    """A cluster ``prod`` with ``count`` instances: their ARNs and EC2 instance IDs."""
    env.create_cluster("prod")
    arns = env.register_instances("prod", count=count)
    return arns, _ec2_ids(env, "prod", arns)


async def test_every_client_method_takes_an_ec2_id_and_a_model(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    arns, ec2 = _prod(ecs_env, 3)
    model = ContainerInstance(container_instance_arn=arns[1])
    described = await client.describe_container_instances([ec2[0], model], cluster="prod")
    assert [i.container_instance_arn for i in described] == arns[:2]
    assert described[0].ec2_instance_id == ec2[0]
    assert await client.list_tasks(ec2[0], cluster="prod") == []
    assert await client.list_tasks(model, cluster="prod") == []
    planned = await client.deregister_container_instance(ec2[0], cluster="prod", dry_run=True)
    assert planned.container_instance.container_instance_arn == arns[0]
    assert planned.container_instance.ec2_instance_id == ec2[0]
    [drained] = await client.drain([ec2[2]], cluster="prod")
    assert (drained.container_instance_arn, drained.status) == (arns[2], "DRAINING")
    done = await client.drain_and_deregister(
        model, cluster="prod", timeout=30.0, poll_interval=0.05
    )
    assert done.container_instance.container_instance_arn == arns[1]
    result = await client.deregister_container_instance(ec2[0], cluster="prod")
    assert result.container_instance.container_instance_arn == arns[0]
    assert result.container_instance.ec2_instance_id == ec2[0]
    assert ecs_env.calls("DeregisterContainerInstance") == 2


async def test_an_unregistered_ec2_id_is_not_found_before_any_change(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    _prod(ecs_env)
    [stranger] = _unregistered_ec2(ecs_env, 1)
    ecs_env.reset_calls()
    with pytest.raises(ContainerInstanceNotFoundError) as exc_info:
        await client.deregister_container_instance(stranger, cluster="prod", force=True)
    assert exc_info.value.container_instances == [stranger]
    assert stranger in str(exc_info.value)
    with pytest.raises(ContainerInstanceNotFoundError):
        await client.drain([stranger], cluster="prod")
    assert ecs_env.calls("DeregisterContainerInstance") == 0
    assert ecs_env.calls("UpdateContainerInstancesState") == 0
    assert ecs_env.calls("DescribeContainerInstances") == 0  # the listing found nothing


async def test_deregister_many_with_every_form_duplicates_and_unknowns(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    arns, ec2 = _prod(ecs_env, 2)
    [stranger] = _unregistered_ec2(ecs_env, 1)
    a_id = arns[0].rsplit("/", 1)[-1]
    model_b = ContainerInstance(container_instance_arn=arns[1])
    inputs: list[Any] = [ec2[0], arns[0], a_id, model_b, stranger, ec2[1], "bad id!"]
    ecs_env.reset_calls()
    result = await client.deregister_many(inputs, cluster="prod")
    assert [o.container_instance for o in result.outcomes] == [
        ec2[0],
        arns[0],
        a_id,
        arns[1],
        stranger,
        ec2[1],
        "bad id!",
    ]
    assert [o.status for o in result.outcomes] == [
        "deregistered", "deregistered", "deregistered", "deregistered", "failed",
        "deregistered", "failed",
    ]  # fmt: skip
    # Each instance once, each of its inputs the same outcome, with the ARN and EC2 ID.
    assert ecs_env.calls("DeregisterContainerInstance") == 2
    first = {id(o.result) for o in result.outcomes[:3]}
    assert len(first) == 1
    a = result.outcomes[0].result
    assert a is not None
    assert (a.container_instance.container_instance_arn, a.container_instance.ec2_instance_id) == (
        arns[0],
        ec2[0],
    )
    assert result.outcomes[3].result is result.outcomes[5].result
    missing = result.outcomes[4].error
    assert isinstance(missing, ContainerInstanceNotFoundError)
    assert missing.container_instances == [stranger]
    assert isinstance(result.outcomes[6].error, InvalidInputError)
    assert ecs_env.calls("ListContainerInstances") == 1  # one lookup for the whole fleet


async def test_a_failed_lookup_fails_only_the_inputs_that_needed_it(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    arns, ec2 = _prod(ecs_env, 2)
    ecs_env.inject_fault("ListContainerInstances", code="AccessDeniedException", times=1)
    result = await client.deregister_many([ec2[0], arns[1]], cluster="prod", dry_run=True)
    assert [o.status for o in result.outcomes] == ["failed", "would_deregister"]
    error = result.outcomes[0].error
    assert error is not None
    assert error.code == "AccessDeniedException"


async def test_list_container_instances_with_filter_status_and_group(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    arns, ec2 = _prod(ecs_env, 3)
    listed = await client.list_container_instances(cluster="prod")
    assert sorted(i.container_instance_arn or "" for i in listed) == sorted(arns)
    await client.drain([arns[0]], cluster="prod")
    draining = await client.list_container_instances(cluster="prod", status="DRAINING")
    assert [i.container_instance_arn for i in draining] == [arns[0]]
    members = _group(ecs_env, "web", 3)
    grouped = [_register(ecs_env, "prod", m) for m in members[:2]]
    with structlog.testing.capture_logs() as logs:
        in_group = await client.list_container_instances(cluster="prod", auto_scaling_group="web")
    assert [i.container_instance_arn for i in in_group] == grouped
    [event] = [e for e in logs if e["event"] == "ecs_safe.targets.unregistered"]
    assert event["ec2_instance_ids"] == [members[2]]
    with pytest.raises(AutoScalingGroupNotFoundError):
        await client.list_container_instances(cluster="prod", auto_scaling_group="nope")
    _need(_filters(ecs_env), "evaluate ListContainerInstances filters")
    picked = await client.list_container_instances(
        cluster="prod", filter=f"ec2InstanceId in [{ec2[1]}, {ec2[2]}]"
    )
    assert sorted(i.container_instance_arn or "" for i in picked) == sorted(arns[1:])
    narrowed = await client.list_container_instances(
        cluster="prod", auto_scaling_group="web", filter=f"ec2InstanceId == {members[0]}"
    )
    assert [i.container_instance_arn for i in narrowed] == grouped[:1]
    with pytest.raises(InvalidParameterException):
        await client.list_container_instances(cluster="prod", filter="attribute:x ==")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": "draining"},
        {"status": "STOPPED"},
        {"filter": ""},
        {"filter": 3},
        {"auto_scaling_group": ""},
        {"cluster": "bad cluster"},
    ],
)
async def test_list_arguments_are_checked_before_any_request(
    ecs_env: LocalEcs, client: EcsSafeClient, kwargs: dict[str, Any]
) -> None:
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError):
        await client.list_container_instances(**kwargs)
    assert ecs_env.call_log == []


async def test_from_client_cannot_select_by_group(ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster("default")
    session: Any = ecs_env.session()
    async with session.create_client(
        "ecs", region_name=ecs_env.region_name, endpoint_url=ecs_env.endpoint_url
    ) as raw:
        wrapped = EcsSafeClient.from_client(raw)
        with pytest.raises(InvalidInputError, match="construct EcsSafeClient"):
            await wrapped.list_container_instances(auto_scaling_group="web")
        assert await wrapped.list_container_instances() == []
        await wrapped.close()


async def test_locate_container_instances_through_the_client(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    arns, ec2 = _prod(ecs_env, 1)
    ecs_env.create_cluster("other")
    other = ecs_env.register_instances("other")
    other_ec2 = _ec2_ids(ecs_env, "other", other)
    found = await client.locate_container_instances([ec2[0], other_ec2[0], EC2_LONG])
    assert {k: v.container_instance_arn for k, v in found.items()} == {
        ec2[0]: arns[0],
        other_ec2[0]: other[0],
    }
    with pytest.raises(InvalidInputError):
        await client.locate_container_instances(EC2_LONG)  # a bare str, not a list


def test_the_sync_client_has_both_new_methods(ecs_env: LocalEcs) -> None:
    arns, ec2 = _prod(ecs_env, 2)
    with SyncEcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        listed = ecs.list_container_instances(cluster="prod", status="ACTIVE")
        assert sorted(i.container_instance_arn or "" for i in listed) == sorted(arns)
        found = ecs.locate_container_instances(ec2)
        assert [found[e].container_instance_arn for e in ec2] == arns
        planned = ecs.deregister_container_instance(ec2[0], cluster="prod", dry_run=True)
        assert planned.container_instance.ec2_instance_id == ec2[0]


async def test_on_unregistered_is_told_the_members_not_in_the_cluster(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    _prod(ecs_env, 1)
    members = _group(ecs_env, "web", 3)
    grouped = [_register(ecs_env, "prod", m) for m in members[:2]]
    told: list[list[str]] = []
    listed = await client.list_container_instances(
        cluster="prod", auto_scaling_group="web", on_unregistered=told.append
    )
    assert [i.container_instance_arn for i in listed] == grouped
    assert told == [[members[2]]]
    _register(ecs_env, "prod", members[2])
    await client.list_container_instances(
        cluster="prod", auto_scaling_group="web", on_unregistered=told.append
    )
    assert told[1] == []  # called with every group listing, empty when all are registered
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError, match="on_unregistered"):
        await client.list_container_instances(cluster="prod", on_unregistered=3)  # type: ignore[arg-type]
    assert ecs_env.call_log == []


async def test_resolve_container_instances_answers_every_input(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    arns, ec2 = _prod(ecs_env, 2)
    ecs_env.reset_calls()
    resolved = await client.resolve_container_instances(
        [ec2[0], arns[1], EC2_LONG, "bad id!", ContainerInstance(container_instance_arn=arns[0])],
        cluster="prod",
    )
    assert [r.ref for r in resolved] == [arns[0], arns[1], None, None, arns[0]]
    assert resolved[0].ec2_instance_id == ec2[0]
    assert isinstance(resolved[2].error, ContainerInstanceNotFoundError)
    assert isinstance(resolved[3].error, InvalidInputError)
    assert ecs_env.calls("ListContainerInstances") == 1  # the two EC2 IDs in one listing
    with pytest.raises(InvalidInputError):
        await client.resolve_container_instances(ec2[0], cluster="prod")  # a str, not a list


async def test_drain_and_wait_takes_an_ec2_id_and_never_forces(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    arns, ec2 = _prod(ecs_env, 1)
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError, match="on_timeout='force'"):
        await client.drain_and_wait(ec2[0], cluster="prod", on_timeout="force")
    assert ecs_env.call_log == []
    drained = await client.drain_and_wait(ec2[0], cluster="prod", timeout=30, poll_interval=0.05)
    assert (drained.container_instance_arn, drained.status) == (arns[0], "DRAINING")
    assert ecs_env.calls("DeregisterContainerInstance") == 0


# ----------------------------------------------------------------------------- past 1,000 instances

#: A cluster past 1,000 instances: ListContainerInstances takes 11 pages of 100 (the first
#: tools to list clusters read only the first page), DescribeContainerInstances 11 calls.
_BIG = "past-a-thousand"
_BIG_COUNT = 1050


@pytest.fixture(scope="module")
def _big_seed() -> dict[str, list[str]]:
    """The seeded ARNs and EC2 IDs of `_BIG`, kept for the module (seeding takes ~13 s)."""
    return {}


@pytest.fixture
def big(local_ecs: LocalEcs, _big_seed: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """`_BIG` with `_BIG_COUNT` instances: their ARNs and EC2 IDs; request counts at zero.

    Seeded once for the module; seeded again only when a test in between reset LocalEcs.
    """
    clusters = _boto(local_ecs, "ecs").describe_clusters(clusters=[_BIG])["clusters"]
    count = clusters[0].get("registeredContainerInstancesCount") if clusters else None
    if count != _BIG_COUNT or not _big_seed:
        local_ecs.reset()
        local_ecs.create_cluster(_BIG)
        arns = local_ecs.register_instances(_BIG, count=_BIG_COUNT)
        _big_seed.update(arns=arns, ec2=_ec2_ids(local_ecs, _BIG, arns))
    local_ecs.reset_calls()
    return _big_seed["arns"], _big_seed["ec2"]


async def test_listing_past_a_thousand_instances_reads_every_page(
    local_ecs: LocalEcs, big: tuple[list[str], list[str]]
) -> None:
    arns, _ec2 = big
    async with EcsSafeClient(**local_ecs.client_kwargs()) as client:
        listed = await client.list_container_instances(cluster=_BIG)
    assert sorted(i.container_instance_arn or "" for i in listed) == sorted(arns)
    assert len({i.container_instance_arn for i in listed}) == _BIG_COUNT
    assert local_ecs.calls("ListContainerInstances") == 11  # ceil(1,050 / 100) pages
    assert local_ecs.calls("DescribeContainerInstances") == 11  # 100 a call, each once


async def test_resolving_past_a_thousand_ec2_ids_is_batched(
    local_ecs: LocalEcs, big: tuple[list[str], list[str]]
) -> None:
    arns, ec2 = big
    async with EcsSafeClient(**local_ecs.client_kwargs()) as client:
        resolved = await client.resolve_container_instances(ec2, cluster=_BIG)
        calls = (
            local_ecs.calls("ListContainerInstances"),
            local_ecs.calls("DescribeContainerInstances"),
        )
        described = await client.describe_container_instances(ec2, cluster=_BIG)
    assert [r.ref for r in resolved] == arns
    assert [r.ec2_instance_id for r in resolved] == ec2
    assert [i.container_instance_arn for i in described] == arns
    listings = len(ec2_id_filters(ec2))  # about 47 IDs a filter: 23 listings
    assert listings == 23
    _need(_filters(local_ecs), "evaluate ListContainerInstances filters")
    # Each listing returns only its ~47 instances, described 100 a call: 11 describes.
    assert calls == (listings, 11)
