"""The policy-checked deregistration, end to end over HTTP against the local ECS endpoint."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from structlog.testing import capture_logs

from ecs_safe import (
    AccessDeniedException,
    ClientException,
    ClientStateError,
    ClusterNotFoundException,
    ContainerInstanceNotFoundError,
    EcsApiError,
    EcsConnectionError,
    EcsSafeClient,
    InvalidInputError,
    InvalidParameterException,
    Policy,
    PolicyContext,
    PolicyViolationError,
    ProtectStandaloneTasks,
    RetryConfig,
    ServerException,
    ThrottlingException,
    Violation,
    default_policy,
)
from ecs_safe.local import LocalEcs

DEREGISTER = "DeregisterContainerInstance"
DESCRIBE = "DescribeContainerInstances"


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
async def ecs(ecs_env: LocalEcs) -> AsyncIterator[EcsSafeClient]:
    async with EcsSafeClient(**ecs_env.client_kwargs()) as client:
        yield client


@pytest.fixture
def cluster(ecs_env: LocalEcs) -> str:
    ecs_env.create_cluster("prod")
    return "prod"


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


# --------------------------------------------------------------------------- the core rule


async def test_refuses_running_tasks_before_any_mutating_call(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.start_standalone_task(cluster, arn, count=2)
    ecs_env.reset_calls()
    with capture_logs() as logs, pytest.raises(PolicyViolationError) as info:
        await ecs.deregister_container_instance(arn, cluster=cluster)
    assert ecs_env.calls(DEREGISTER) == 0
    err = info.value
    assert not err.decision.allowed
    assert [v.rule for v in err.decision.violations] == ["no-running-tasks-unless-forced"]
    assert err.container_instance is not None
    assert err.container_instance.running_tasks_count == 2
    (event,) = events(logs, "ecs_safe.deregister.refused")
    assert event["container_instance_arn"] == arn
    assert event["running_tasks_count"] == 2
    assert event["cluster"] == cluster
    assert event["violations"][0]["rule"] == "no-running-tasks-unless-forced"
    assert "2 running tasks" in event["violations"][0]["message"]
    # Still registered and untouched.
    (still,) = await ecs.describe_container_instances([arn], cluster=cluster)
    assert still.status == "ACTIVE"


async def test_deregisters_an_idle_instance_and_logs_the_returned_model(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.reset_calls()
    with capture_logs() as logs:
        result = await ecs.deregister_container_instance(arn, cluster=cluster)
    assert ecs_env.calls(DEREGISTER) == 1
    assert ecs_env.calls(DESCRIBE) == 1
    assert result.container_instance.container_instance_arn == arn
    assert result.decision.allowed
    assert result.forced is False
    assert result.dry_run is False
    assert result.request_id
    assert result.tasks == []
    (event,) = events(logs, "ecs_safe.deregister.succeeded")
    assert event["request_id"] == result.request_id
    assert event["container_instance_arn"] == arn
    assert event["ec2_instance_id"] == result.container_instance.ec2_instance_id
    assert event["running_tasks_count"] == 0
    assert event["agent_connected"] is True
    assert event["forced"] is False
    assert event["dry_run"] is False
    assert event["status"] == result.container_instance.status
    # Gone from the cluster: ECS describes it as INACTIVE (LocalEcs too), no longer ACTIVE.
    [gone] = await ecs.describe_container_instances([arn], cluster=cluster)
    assert gone.status == "INACTIVE"


async def test_id_and_default_cluster(ecs: EcsSafeClient, ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster("default")
    (arn,) = ecs_env.register_instances("default")
    instance_id = arn.rsplit("/", 1)[-1]
    result = await ecs.deregister_container_instance(instance_id)
    assert result.container_instance.container_instance_arn == arn


async def test_dry_run_makes_no_mutating_call(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.reset_calls()
    with capture_logs() as logs:
        result = await ecs.deregister_container_instance(arn, cluster=cluster, dry_run=True)
    assert ecs_env.calls(DEREGISTER) == 0
    assert result.dry_run is True
    assert result.request_id is None
    assert result.container_instance.status == "ACTIVE"
    # A plan is not a deregistration: it is logged as planned (API.md), never as succeeded.
    assert events(logs, "ecs_safe.deregister.succeeded") == []
    (event,) = events(logs, "ecs_safe.deregister.planned")
    assert event["dry_run"] is True
    assert event["container_instance_arn"] == arn
    # A dry run of a refused deregistration refuses too, still without a mutating call.
    ecs_env.start_standalone_task(cluster, arn)
    with pytest.raises(PolicyViolationError):
        await ecs.deregister_container_instance(arn, cluster=cluster, dry_run=True)
    assert ecs_env.calls(DEREGISTER) == 0


async def test_force_is_allowed_by_the_default_policy(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.start_standalone_task(cluster, arn)
    result = await ecs.deregister_container_instance(arn, cluster=cluster, force=True)
    assert result.forced is True
    assert result.container_instance.container_instance_arn == arn


async def test_protect_standalone_tasks_lists_them_and_refuses_force(
    ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    (task,) = ecs_env.start_standalone_task(cluster, arn)
    policy = default_policy().with_rules(ProtectStandaloneTasks())
    async with EcsSafeClient(**ecs_env.client_kwargs(), policy=policy) as ecs:
        ecs_env.reset_calls()
        with pytest.raises(PolicyViolationError) as info:
            await ecs.deregister_container_instance(arn, cluster=cluster, force=True)
    assert ecs_env.calls(DEREGISTER) == 0
    assert [t.task_arn for t in info.value.tasks] == [task]
    assert info.value.tasks[0].kind == "standalone"
    assert task in info.value.decision.violations[0].message


def _start_labelled_task(env: LocalEcs, cluster: str, arn: str, **labels: str) -> str:
    """Start a task by hand with whatever ``group``/``startedBy`` a caller may set."""
    import boto3  # type: ignore[import-untyped]  # noqa: PLC0415

    ecs = boto3.client(
        "ecs",
        endpoint_url=env.endpoint_url,
        region_name=env.region_name,
        aws_access_key_id=env.access_key_id,
        aws_secret_access_key=env.secret_access_key,
    )
    definition = env.register_task_definition(family="nightly")
    response = ecs.start_task(
        cluster=cluster, taskDefinition=definition, containerInstances=[arn], **labels
    )
    return str(response["tasks"][0]["taskArn"])


@pytest.mark.parametrize(
    "labels",
    [
        {"group": "service:ghost", "startedBy": "ecs-svc/1234567890"},  # no such service
        {"group": "family:nightly", "startedBy": "ecs-svc/nightly-batch"},  # no service group
        {"group": "service:web", "startedBy": "nightly-batch"},  # web exists, did not start it
    ],
    ids=["ghost-service", "startedBy-only", "not-started-by-the-service"],
)
async def test_a_forged_service_label_is_a_standalone_task(
    ecs_env: LocalEcs, cluster: str, labels: dict[str, str]
) -> None:
    # Anyone can set group and startedBy on StartTask: a task is a service task only when the
    # service its group names exists and started it, else forcing would orphan it.
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.create_service(cluster, "web")
    ecs_env.start_service_task(cluster, arn, "web")
    forged = _start_labelled_task(ecs_env, cluster, arn, **labels)
    policy = default_policy().with_rules(ProtectStandaloneTasks())
    async with EcsSafeClient(**ecs_env.client_kwargs(), policy=policy) as ecs:
        kinds = {t.task_arn: t.kind for t in await ecs.list_tasks(arn, cluster=cluster)}
        assert kinds[forged] == "standalone"
        assert sorted(kinds.values()) == ["service", "standalone"]
        ecs_env.reset_calls()
        with pytest.raises(PolicyViolationError) as info:
            await ecs.deregister_container_instance(arn, cluster=cluster, force=True)
    assert ecs_env.calls(DEREGISTER) == 0
    assert forged in info.value.decision.violations[0].message


async def test_not_found_is_typed_and_never_mutates(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    ecs_env.register_instances(cluster)
    ghost = "0123456789abcdef0123456789abcdef"
    ecs_env.reset_calls()
    with capture_logs() as logs, pytest.raises(ContainerInstanceNotFoundError) as info:
        await ecs.deregister_container_instance(ghost, cluster=cluster)
    assert info.value.container_instances == [ghost]
    assert ecs_env.calls(DEREGISTER) == 0
    (event,) = events(logs, "ecs_safe.deregister.failed")
    assert event["container_instance"] == ghost
    assert event["error_code"] == "ContainerInstanceNotFound"


async def test_describe_batches_100_and_keeps_input_order(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    arns = ecs_env.register_instances(cluster, count=250)
    wanted = list(reversed(arns))
    ecs_env.reset_calls()
    described = await ecs.describe_container_instances(wanted, cluster=cluster)
    assert [d.container_instance_arn for d in described] == wanted
    assert ecs_env.calls(DESCRIBE) == 3


async def test_describe_names_every_missing_instance(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    arns = ecs_env.register_instances(cluster, count=3)
    ghosts = ["0" * 32, "f" * 32]
    with pytest.raises(ContainerInstanceNotFoundError) as info:
        await ecs.describe_container_instances(
            [arns[0], ghosts[0], arns[1], ghosts[1]], cluster=cluster
        )
    assert info.value.container_instances == ghosts
    assert info.value.operation == DESCRIBE


# --------------------------------------------------------------------------- errors & retries


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("ClientException", 400, ClientException),
        ("InvalidParameterException", 400, InvalidParameterException),
        ("ClusterNotFoundException", 400, ClusterNotFoundException),
        ("AccessDeniedException", 400, AccessDeniedException),
        ("SomethingAwsAddsLater", 400, EcsApiError),
    ],
)
async def test_non_retryable_errors_are_typed_and_not_retried(
    ecs: EcsSafeClient,
    ecs_env: LocalEcs,
    cluster: str,
    code: str,
    status: int,
    cls: type[EcsApiError],
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.inject_fault(DEREGISTER, code=code, http_status=status, message="nope")
    ecs_env.reset_calls()
    with capture_logs() as logs, pytest.raises(cls) as info:
        await ecs.deregister_container_instance(arn, cluster=cluster)
    err = info.value
    assert type(err) is cls
    assert err.code == code
    assert err.message == "nope"
    assert err.operation == DEREGISTER
    assert err.http_status == status
    assert err.request_id
    assert err.retryable is False
    assert err.__cause__ is not None
    assert ecs_env.calls(DEREGISTER) == 1
    assert events(logs, "ecs_safe.retry.scheduled") == []
    (failed,) = events(logs, "ecs_safe.deregister.failed")
    assert failed["error_code"] == code
    assert failed["request_id"] == err.request_id


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        ({"code": "ThrottlingException", "http_status": 400}, ThrottlingException),
        ({"code": "ServerException", "http_status": 500}, ServerException),
        ({"html": True, "http_status": 503}, ServerException),
        ({"html": True, "http_status": 429}, ThrottlingException),
    ],
)
async def test_retryable_errors_are_retried_then_succeed(
    ecs: EcsSafeClient,
    ecs_env: LocalEcs,
    cluster: str,
    fault: dict[str, Any],
    cls: type[EcsApiError],
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.inject_fault(DESCRIBE, times=2, **fault)
    ecs_env.reset_calls()
    with capture_logs() as logs:
        result = await ecs.deregister_container_instance(arn, cluster=cluster)
    assert result.container_instance.container_instance_arn == arn
    assert ecs_env.calls(DESCRIBE) == 3
    retries = events(logs, "ecs_safe.retry.scheduled")
    assert [r["attempt"] for r in retries] == [1, 2]
    assert {r["operation"] for r in retries} == {DESCRIBE}
    expected_code = fault.get("code") or str(fault["http_status"])
    assert retries[0]["error_code"] == expected_code
    assert all(r["wait_s"] >= 0 for r in retries)
    _ = cls


async def test_retries_run_out_with_the_last_typed_error(ecs_env: LocalEcs, cluster: str) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.inject_fault(DEREGISTER, code="ThrottlingException", times=10)
    retry = RetryConfig(max_attempts=3, initial_delay=0.0, max_delay=0.0)
    async with EcsSafeClient(**ecs_env.client_kwargs(), retry=retry) as ecs:
        ecs_env.reset_calls()
        with pytest.raises(ThrottlingException) as info:
            await ecs.deregister_container_instance(arn, cluster=cluster)
    assert info.value.retryable
    assert ecs_env.calls(DEREGISTER) == 3


async def test_botocore_retries_are_off(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.inject_fault(DESCRIBE, code="ThrottlingException", times=1)
    ecs_env.reset_calls()
    await ecs.describe_container_instances([arn], cluster=cluster)
    # One failed + one successful attempt: botocore did not add its own retries.
    assert ecs_env.calls(DESCRIBE) == 2


async def test_lost_response_is_verified_not_resent(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.inject_fault(DEREGISTER, html=True, http_status=502, after_acting=True)
    ecs_env.reset_calls()
    with capture_logs() as logs:
        result = await ecs.deregister_container_instance(arn, cluster=cluster)
    assert result.verified is True
    assert result.container_instance.container_instance_arn == arn
    assert ecs_env.calls(DEREGISTER) == 1  # verified by a describe, never sent twice
    assert ecs_env.calls(DESCRIBE) == 2  # pre-flight + verification
    (event,) = events(logs, "ecs_safe.deregister.succeeded")
    assert event["verified_after_lost_response"] is True


async def test_lost_response_then_instance_still_there_retries(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    # The server fails *without* acting: the describe finds the instance, so it is re-sent.
    ecs_env.inject_fault(DEREGISTER, code="ServerException", http_status=500)
    ecs_env.reset_calls()
    result = await ecs.deregister_container_instance(arn, cluster=cluster)
    assert result.verified is False
    assert result.request_id
    assert ecs_env.calls(DEREGISTER) == 2


async def test_a_failed_preflight_raises_its_typed_error_not_a_refusal(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    # An outage says nothing about the instance: it is the typed error that stopped the
    # pre-flight (API.md), not a PolicyViolationError, and nothing is mutated.
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.inject_fault(DESCRIBE, code="AccessDeniedException", message="not allowed")
    ecs_env.reset_calls()
    with capture_logs() as logs, pytest.raises(AccessDeniedException) as info:
        await ecs.deregister_container_instance(arn, cluster=cluster)
    assert ecs_env.calls(DEREGISTER) == 0
    assert not info.value.retryable
    assert events(logs, "ecs_safe.deregister.refused") == []
    (failed,) = events(logs, "ecs_safe.deregister.failed")
    assert failed["error_code"] == "AccessDeniedException"


async def test_a_throttled_preflight_past_the_retries_is_a_retryable_error(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    ecs_env.start_standalone_task(cluster, arn)
    ecs_env.inject_fault("ListTasks", code="ThrottlingException", times=20)
    policy = Policy([*default_policy().rules, ProtectStandaloneTasks()])
    ecs.policy = policy
    with pytest.raises(ThrottlingException) as info:
        await ecs.deregister_container_instance(arn, cluster=cluster, force=True)
    assert info.value.retryable
    assert ecs_env.calls(DEREGISTER) == 0


async def test_a_raising_rule_refuses(ecs_env: LocalEcs, cluster: str) -> None:
    class Broken:
        name = "broken"

        def check(self, context: PolicyContext) -> Violation | None:
            raise RuntimeError("bug in my rule")

    (arn,) = ecs_env.register_instances(cluster)
    async with EcsSafeClient(**ecs_env.client_kwargs(), policy=Policy([Broken()])) as ecs:
        ecs_env.reset_calls()
        with pytest.raises(PolicyViolationError) as info:
            await ecs.deregister_container_instance(arn, cluster=cluster)
    assert ecs_env.calls(DEREGISTER) == 0
    assert info.value.decision.violations[0].rule == "broken"
    assert "bug in my rule" in info.value.decision.violations[0].message


async def test_task_placed_after_the_check_comes_back_as_a_refusal(
    ecs_env: LocalEcs, cluster: str
) -> None:
    """ECS's own refusal (a task arrived between check and call) is a typed refusal."""
    (arn,) = ecs_env.register_instances(cluster)

    class PlaceTaskDuringCheck:
        name = "race"

        def check(self, context: PolicyContext) -> Violation | None:
            ecs_env.start_standalone_task(cluster, arn)
            return None

    policy = Policy([*default_policy().rules, PlaceTaskDuringCheck()])
    async with EcsSafeClient(**ecs_env.client_kwargs(), policy=policy) as ecs:
        with pytest.raises(PolicyViolationError) as info:
            await ecs.deregister_container_instance(arn, cluster=cluster)
    assert info.value.decision.violations[0].rule == "ecs-service"
    assert isinstance(info.value.__cause__, InvalidParameterException)
    (still,) = await _describe(ecs_env, arn, cluster)
    assert still.running_tasks_count == 1


async def _describe(local: LocalEcs, arn: str, cluster: str) -> list[Any]:
    async with EcsSafeClient(**local.client_kwargs()) as ecs:
        return await ecs.describe_container_instances([arn], cluster=cluster)


async def test_connection_refused_is_a_retryable_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    local = LocalEcs()
    retry = RetryConfig(max_attempts=2, initial_delay=0.0, max_delay=0.0)
    async with EcsSafeClient(
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        session=local.session(),
        retry=retry,
        connect_timeout=0.5,
    ) as ecs:
        # The pre-flight could not be done: its own typed error (API.md), not a refusal.
        with capture_logs() as logs, pytest.raises(EcsConnectionError) as info:
            await ecs.deregister_container_instance("0" * 32)
        assert info.value.retryable
        assert len(events(logs, "ecs_safe.retry.scheduled")) == 1
        with pytest.raises(EcsConnectionError):
            await ecs.describe_container_instances(["0" * 32])


# --------------------------------------------------------------------------- input & lifecycle


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("",), {}),
        (("i-0123456789abcdef",), {}),  # a mistyped EC2 ID (16 hex digits)
        (("arn:aws:ec2:us-east-1:123456789012:instance/i-0123",), {}),
        (("abc; rm -rf /",), {}),
        ((["a"],), {}),
        (("0" * 32,), {"force": "false"}),
        (("0" * 32,), {"dry_run": 1}),
        (("0" * 32,), {"cluster": ""}),
        (
            ("arn:aws:ecs:us-east-1:123456789012:container-instance/other/" + "0" * 32,),
            {"cluster": "prod"},
        ),
    ],
)
async def test_bad_input_is_refused_before_any_network_call(
    ecs: EcsSafeClient, ecs_env: LocalEcs, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError):
        await ecs.deregister_container_instance(*args, **kwargs)
    assert ecs_env.call_log == []


async def test_client_refuses_use_outside_its_lifetime(ecs_env: LocalEcs) -> None:
    client = EcsSafeClient(**ecs_env.client_kwargs())
    with pytest.raises(ClientStateError, match="async with"):
        await client.describe_container_instances(["0" * 32])
    async with client:
        pass
    with pytest.raises(ClientStateError, match="closed"):
        await client.deregister_container_instance("0" * 32)
    with pytest.raises(ClientStateError):
        async with client:
            pass


async def test_from_client_does_not_close_the_callers_client(
    ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    session = ecs_env.session()
    config = AioConfig(retries={"total_max_attempts": 1})
    async with session.create_client(
        "ecs", endpoint_url=ecs_env.endpoint_url, region_name=ecs_env.region_name, config=config
    ) as raw:
        async with EcsSafeClient.from_client(raw) as ecs:
            (described,) = await ecs.describe_container_instances([arn], cluster=cluster)
            assert described.container_instance_arn == arn
        # Still usable: ecs-safe did not close it.
        response = await raw.list_clusters()
        assert response["clusterArns"]
    with pytest.raises(InvalidInputError):
        EcsSafeClient.from_client(object())


async def test_no_secret_reaches_logs_or_errors(ecs_env: LocalEcs, cluster: str) -> None:
    marker = "SECRETMARKERxyz0123456789abcdefABCDEF0123"
    session = ecs_env.session()
    session.set_credentials("AKIDTESTMARKER", marker, "TOKENMARKER0123456789")
    (busy, idle) = ecs_env.register_instances(cluster, count=2)
    ecs_env.start_standalone_task(cluster, busy)
    seen: list[str] = []
    async with EcsSafeClient(
        endpoint_url=ecs_env.endpoint_url, region_name=ecs_env.region_name, session=session
    ) as ecs:
        with capture_logs() as logs:
            for fault in ("AccessDeniedException", "ThrottlingException"):
                ecs_env.inject_fault(DEREGISTER, code=fault, times=5)
                try:
                    await ecs.deregister_container_instance(idle, cluster=cluster)
                except EcsApiError as exc:
                    seen += [str(exc), repr(exc), exc.message]
                ecs_env.clear_faults()
            for target in (busy, "0" * 32):
                try:
                    await ecs.deregister_container_instance(target, cluster=cluster)
                except (PolicyViolationError, ContainerInstanceNotFoundError) as exc:
                    seen += [str(exc), repr(exc)]
            await ecs.deregister_container_instance(idle, cluster=cluster)
    text = "\n".join(seen) + "\n" + "\n".join(repr(e) for e in logs)
    assert len(logs) >= 5
    assert marker not in text
    assert "TOKENMARKER0123456789" not in text


async def test_a_throttled_deregistration_is_retried_without_a_verifying_describe(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    # A 400 ThrottlingException is ECS refusing before acting: nothing to verify.
    ecs_env.inject_fault(DEREGISTER, code="ThrottlingException", times=2)
    ecs_env.reset_calls()
    result = await ecs.deregister_container_instance(arn, cluster=cluster)
    assert result.verified is False
    assert ecs_env.calls(DEREGISTER) == 3
    assert ecs_env.calls(DESCRIBE) == 1  # the pre-flight only


# --------------------------------------------------------------------------- pagination


def _list_tasks_pages(monkeypatch: pytest.MonkeyPatch, token_of: Any) -> list[str | None]:
    """Make the endpoint's ListTasks answer every page with ``token_of(n)`` as its nextToken."""
    from moto.core.responses import ActionResult  # noqa: PLC0415
    from moto.ecs.responses import EC2ContainerServiceResponse  # noqa: PLC0415

    seen: list[str | None] = []

    def list_tasks(self: Any) -> Any:
        seen.append(self._get_param("nextToken"))
        return ActionResult({"taskArns": [], "nextToken": token_of(len(seen))})

    monkeypatch.setattr(EC2ContainerServiceResponse, "list_tasks", list_tasks)
    return seen


async def test_a_list_tasks_page_that_repeats_its_token_is_a_typed_error(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    seen = _list_tasks_pages(monkeypatch, lambda n: "again")
    with pytest.raises(ServerException) as info:
        await ecs.list_tasks(arn, cluster=cluster)
    assert info.value.code == "PaginationLoop"
    assert info.value.operation == "ListTasks"
    assert seen == [None, "again"], "stops at the first repeated token"


async def test_a_list_tasks_that_never_ends_stops_at_the_page_cap(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecs_safe import _calls  # noqa: PLC0415

    (arn,) = ecs_env.register_instances(cluster)
    # A cap of 5 pages instead of 10,000, so the test makes 5 requests.
    monkeypatch.setattr(_calls, "LIST_PAGE_CAP", 5)
    seen = _list_tasks_pages(monkeypatch, lambda n: f"page-{n}")
    with pytest.raises(ServerException, match="5 pages") as info:
        await ecs.list_tasks(arn, cluster=cluster)
    # One pager serves every listing: a listing past the cap is PaginationCap (a repeated
    # token stays PaginationLoop); both are retryable ServerExceptions (PaginationError).
    assert info.value.code == "PaginationCap"
    assert len(seen) == 5


async def test_policy_stays_live_after_open(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)

    class Never:
        name = "never"

        def check(self, context: PolicyContext) -> Violation | None:
            return Violation(self.name, "not today")

    ecs.policy = Policy([Never()])
    with pytest.raises(PolicyViolationError) as info:
        await ecs.deregister_container_instance(arn, cluster=cluster, dry_run=True)
    assert [v.rule for v in info.value.decision.violations] == ["never"]
    ecs.policy = default_policy()
    result = await ecs.deregister_container_instance(arn, cluster=cluster, dry_run=True)
    assert result.decision.allowed


# --------------------------------------------------------------------------- failures[] (13.2)


async def test_a_task_in_describe_failures_for_another_reason_counts_as_standalone(
    ecs_env: LocalEcs, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only MISSING proves a task gone: any other failure leaves it unknown, and an unknown
    # task must be protected like a standalone one (fail closed).
    # LocalEcs answers DescribeTasks itself (not moto): its answer is the one replaced.
    from ecs_safe.local.tasks import TaskDescriber  # noqa: PLC0415

    (arn,) = ecs_env.register_instances(cluster)
    (task,) = ecs_env.start_standalone_task(cluster, arn)

    def describe(self: Any, backend: Any, name: str, refs: list[str], tags: bool) -> Any:
        return {"tasks": [], "failures": [{"arn": t, "reason": "ACCESS_DENIED"} for t in refs]}

    monkeypatch.setattr(TaskDescriber, "describe", describe)
    policy = default_policy().with_rules(ProtectStandaloneTasks())
    async with EcsSafeClient(**ecs_env.client_kwargs(), policy=policy) as ecs:
        [unknown] = await ecs.list_tasks(arn, cluster=cluster)
        assert (unknown.task_arn, unknown.kind) == (task, "standalone")
        ecs_env.reset_calls()
        with pytest.raises(PolicyViolationError):
            await ecs.deregister_container_instance(arn, cluster=cluster, force=True)
    assert ecs_env.calls(DEREGISTER) == 0


async def test_a_verifying_describe_with_another_failure_reason_proves_nothing(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.responses import ActionResult  # noqa: PLC0415
    from moto.ecs.responses import EC2ContainerServiceResponse  # noqa: PLC0415

    (arn,) = ecs_env.register_instances(cluster)
    original = EC2ContainerServiceResponse.describe_container_instances
    describes = 0

    def describe(self: Any) -> Any:
        nonlocal describes
        describes += 1
        if describes == 1:  # the pre-flight
            return original(self)
        wanted = self._get_param("containerInstances")
        return ActionResult(
            {
                "containerInstances": [],
                "failures": [{"arn": a, "reason": "ACCESS_DENIED"} for a in wanted],
            }
        )

    monkeypatch.setattr(EC2ContainerServiceResponse, "describe_container_instances", describe)
    ecs_env.inject_fault(DEREGISTER, code="ServerException", after_acting=True, times=10)
    with pytest.raises(EcsApiError):
        await ecs.deregister_container_instance(arn, cluster=cluster)
    assert describes >= 2, "the verifying describe was made"


async def test_the_preflight_describe_asks_for_tags_and_health_so_rules_can_read_them(
    ecs_env: LocalEcs, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ECS leaves tags (and health) out of DescribeContainerInstances unless `include` asks;
    # LocalEcs does the same, so a rule on a "protected" tag only works when the pre-flight
    # asks. The tag is set for real (TagResource), as an operator would.
    import boto3  # noqa: PLC0415

    (arn,) = ecs_env.register_instances(cluster)
    boto3.session.Session(
        aws_access_key_id=ecs_env.access_key_id,
        aws_secret_access_key=ecs_env.secret_access_key,
        region_name=ecs_env.region_name,
    ).client("ecs", endpoint_url=ecs_env.endpoint_url).tag_resource(
        resourceArn=arn, tags=[{"key": "protected", "value": "true"}]
    )

    class ProtectedTag:
        name = "protected-tag"

        def check(self, context: PolicyContext) -> Violation | None:
            tags = {t.key: t.value for t in context.container_instance.tags or []}
            return Violation(self.name, "tagged protected") if tags.get("protected") else None

    policy = default_policy().with_rules(ProtectedTag())
    async with EcsSafeClient(**ecs_env.client_kwargs(), policy=policy) as ecs:
        with pytest.raises(PolicyViolationError) as info:
            await ecs.deregister_container_instance(arn, cluster=cluster, dry_run=True)
    assert [v.rule for v in info.value.decision.violations] == ["protected-tag"]


# --------------------------------------------------------------------------- scope (13.12)


def _elsewhere(arn: str, *, region: str | None = None, account: str | None = None) -> str:
    parts = arn.split(":", 5)
    parts[3] = region or parts[3]
    parts[4] = account or parts[4]
    return ":".join(parts)


async def test_an_arn_of_another_region_is_bad_input_before_any_call(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    (arn,) = ecs_env.register_instances(cluster)
    other = _elsewhere(
        arn, region="eu-central-1" if ecs_env.region_name != "eu-central-1" else "us-west-2"
    )
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError, match="Region"):
        await ecs.deregister_container_instance(other, cluster=cluster, force=True)
    with pytest.raises(InvalidInputError, match="Region"):
        await ecs.drain([other], cluster=cluster)
    assert ecs_env.call_log == []
    batch = await ecs.deregister_many([other, arn], cluster=cluster)
    assert [o.status for o in batch.outcomes] == ["failed", "deregistered"]
    assert isinstance(batch.outcomes[0].error, InvalidInputError)


async def test_an_arn_of_another_account_is_bad_input_and_nothing_is_mutated(
    ecs: EcsSafeClient, ecs_env: LocalEcs, cluster: str
) -> None:
    first, second = ecs_env.register_instances(cluster, count=2)
    # Unknown account at first: the pre-flight describe shows the ARN is not the instance's.
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError, match="account"):
        await ecs.deregister_container_instance(
            _elsewhere(first, account="999999999999"), cluster=cluster, force=True
        )
    assert ecs_env.calls(DEREGISTER) == 0
    # Once known, the account refuses before any call.
    ecs_env.reset_calls()
    with pytest.raises(InvalidInputError, match="account"):
        await ecs.drain([_elsewhere(second, account="999999999999")], cluster=cluster)
    assert ecs_env.call_log == []
    (instance,) = await ecs.describe_container_instances([first], cluster=cluster)
    assert instance.status == "ACTIVE"
