"""The public surface of ecs_safe is a decision: names, hierarchy, docstrings, client state."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
import types
from importlib import resources
from typing import Any

import pytest
from aiobotocore.session import AioSession

import ecs_safe
from ecs_safe import (
    AccessDeniedException,
    AutoScalingGroupNotFoundError,
    ClientException,
    ClientStateError,
    ClusterNotFoundException,
    ContainerInstance,
    ContainerInstanceNotFoundError,
    CredentialsError,
    Decision,
    DrainNotFoundError,
    DrainRejectedError,
    DrainTimeoutError,
    Ec2InstanceNotFoundError,
    EcsApiError,
    EcsConnectionError,
    EcsSafeClient,
    EcsSafeError,
    InvalidInputError,
    InvalidParameterException,
    LifecycleActionNotFoundError,
    NoticeError,
    NotStartedError,
    PaginationError,
    PartialDrainError,
    PolicyViolationError,
    RateLimits,
    RetryConfig,
    ServerException,
    TerminationProtectedError,
    ThrottlingException,
    Violation,
    default_policy,
)

# Every name API.md promises at the top level.
API_MD_NAMES = [
    "EcsSafeClient",
    "SyncEcsSafeClient",
    "RetryConfig",
    "RateLimits",
    "ContainerInstance",
    "VersionInfo",
    "Resource",
    "Attribute",
    "Attachment",
    "KeyValuePair",
    "Tag",
    "ContainerInstanceHealthStatus",
    "InstanceHealthCheckResult",
    "Task",
    "DeregistrationResult",
    "BatchResult",
    "InstanceOutcome",
    "Policy",
    "Rule",
    "PolicyContext",
    "Decision",
    "Violation",
    "default_policy",
    "NoRunningTasksUnlessForced",
    "NoPendingTasksUnlessForced",
    "RequireDraining",
    "ProtectStandaloneTasks",
    "ClusterAllowlist",
    "EcsSafeError",
    "InvalidInputError",
    "PolicyViolationError",
    "DrainTimeoutError",
    "EcsApiError",
    "ServerException",
    "ClientException",
    "ContainerInstanceNotFoundError",
    "InvalidParameterException",
    "ClusterNotFoundException",
    "AccessDeniedException",
    "ThrottlingException",
    "EcsConnectionError",
]

# Names that arrive with later work; skipped (not failed) only while they are not importable.
PENDING = {"SyncEcsSafeClient": "SyncEcsSafeClient arrives with issue 4"}

HEX_ID = "0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------ __all__


def test_all_is_sorted_without_duplicates() -> None:
    names = list(ecs_safe.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_import_loads_names_lazily_and_from_import_works() -> None:
    code = (
        "import sys, ecs_safe\n"
        "assert 'ecs_safe.client' not in sys.modules, 'client imported eagerly'\n"
        "assert 'aiobotocore' not in sys.modules\n"
        "from ecs_safe import EcsSafeClient, ContainerInstance, default_policy\n"
        "from ecs_safe.client import EcsSafeClient as Direct\n"
        "assert EcsSafeClient is Direct\n"
        "from ecs_safe import *\n"
        "assert SyncEcsSafeClient.__name__ == 'SyncEcsSafeClient'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = ecs_safe.Nope


def test_every_name_in_all_resolves() -> None:
    for name in ecs_safe.__all__:
        assert hasattr(ecs_safe, name), name


def test_all_is_exactly_the_public_surface() -> None:
    # dir(), not vars(): most names load on first access (PEP 562).
    public = {
        name
        for name in dir(ecs_safe)
        if not name.startswith("_") and not isinstance(getattr(ecs_safe, name), types.ModuleType)
    }
    assert public == set(ecs_safe.__all__) - {"__version__"}


@pytest.mark.parametrize("name", API_MD_NAMES)
def test_api_md_name_is_exported(name: str) -> None:
    if name in PENDING and not hasattr(ecs_safe, name):
        pytest.skip(PENDING[name])
    assert name in ecs_safe.__all__
    assert getattr(ecs_safe, name) is not None


def test_version_is_a_string() -> None:
    assert isinstance(ecs_safe.__version__, str)
    assert ecs_safe.__version__


def test_py_typed_is_shipped() -> None:
    assert (resources.files("ecs_safe") / "py.typed").is_file()


# ------------------------------------------------------------------ errors

# Each error's direct bases, as drawn in API.md (ClientStateError is ours, beside them).
ERROR_TREE: dict[type[BaseException], tuple[type[BaseException], ...]] = {
    EcsSafeError: (Exception,),
    InvalidInputError: (EcsSafeError, ValueError),
    ClientStateError: (EcsSafeError, RuntimeError),
    PolicyViolationError: (EcsSafeError,),
    DrainTimeoutError: (EcsSafeError,),
    EcsApiError: (EcsSafeError,),
    ServerException: (EcsApiError,),
    ClientException: (EcsApiError,),
    ContainerInstanceNotFoundError: (ClientException,),
    InvalidParameterException: (EcsApiError,),
    ClusterNotFoundException: (EcsApiError,),
    AccessDeniedException: (EcsApiError,),
    ThrottlingException: (EcsApiError,),
    EcsConnectionError: (EcsApiError,),
    # Ours, beside API.md's tree: drain() partial failures keep their API.md meaning too.
    PartialDrainError: (EcsSafeError,),
    DrainNotFoundError: (PartialDrainError, ContainerInstanceNotFoundError),
    DrainRejectedError: (PartialDrainError, ClientException),
    # Issue 13 item 11: credential problems, still caught as AccessDeniedException.
    CredentialsError: (AccessDeniedException,),
    # Issue 10: a listing that does not end (retryable), an Auto Scaling group not found.
    PaginationError: (ServerException,),
    AutoScalingGroupNotFoundError: (EcsApiError,),
    # Issue 11: a rolling drain's steady-state gate closed before the instance's turn.
    NotStartedError: (EcsSafeError,),
    # Issue 12: a queue message that is no notice ecs-safe handles (bad input, tests included).
    NoticeError: (InvalidInputError,),
    # Issue 12: EC2 and Auto Scaling refusals worth telling apart.
    Ec2InstanceNotFoundError: (ClientException,),
    TerminationProtectedError: (ClientException,),
    LifecycleActionNotFoundError: (InvalidParameterException,),
}


@pytest.mark.parametrize("cls", list(ERROR_TREE), ids=lambda c: c.__name__)
def test_error_hierarchy_matches_api_md(cls: type[BaseException]) -> None:
    assert cls.__bases__ == ERROR_TREE[cls]
    assert issubclass(cls, Exception)


def test_every_exported_error_is_in_the_tree() -> None:
    exported = {
        value
        for name in ecs_safe.__all__
        if isinstance(value := getattr(ecs_safe, name), type) and issubclass(value, BaseException)
    }
    assert exported == set(ERROR_TREE)


def test_invalid_input_error_is_a_value_error() -> None:
    assert issubclass(InvalidInputError, ValueError)
    with pytest.raises(ValueError, match="bad"):
        raise InvalidInputError("bad")


def test_siblings_are_not_confused() -> None:
    assert not issubclass(ThrottlingException, ServerException)
    assert not issubclass(EcsConnectionError, ServerException)
    assert not issubclass(InvalidParameterException, ClientException)
    assert not issubclass(PolicyViolationError, EcsApiError)
    assert not issubclass(EcsApiError, ValueError)


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (EcsApiError, False),
        (ServerException, True),
        (ClientException, False),
        (InvalidParameterException, False),
        (ClusterNotFoundException, False),
        (AccessDeniedException, False),
        (ThrottlingException, True),
        (EcsConnectionError, True),
    ],
)
def test_api_error_fields_and_default_retryable(cls: type[EcsApiError], retryable: bool) -> None:
    err = cls("msg", operation="DescribeTasks", request_id="rid", http_status=400)
    assert err.retryable is retryable
    assert err.code == cls.__name__
    assert (err.message, err.operation, err.request_id, err.http_status) == (
        "msg",
        "DescribeTasks",
        "rid",
        400,
    )


def test_container_instance_not_found_names_them() -> None:
    err = ContainerInstanceNotFoundError("gone", container_instances=("a", "b"))
    assert err.container_instances == ["a", "b"]
    assert isinstance(err, ClientException)
    assert not err.retryable


def test_policy_violation_and_drain_timeout_fields() -> None:
    decision = Decision.refuse(Violation(rule="r", message="no"))
    snapshot = ContainerInstance.model_validate({"containerInstanceArn": "arn", "status": "ACTIVE"})
    refused = PolicyViolationError("refused", decision=decision, container_instance=snapshot)
    assert refused.decision is decision
    assert refused.container_instance is snapshot
    assert refused.tasks == []
    timed_out = DrainTimeoutError("late", container_instance=snapshot, remaining_tasks=())
    assert timed_out.container_instance is snapshot
    assert timed_out.remaining_tasks == []


# ------------------------------------------------------------------ docstrings


def _own_doc(obj: Any) -> str:
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__") or ""
        # A dataclass without a docstring gets its signature as __doc__.
        return "" if doc.startswith(f"{obj.__name__}(") else doc
    return inspect.getdoc(obj) or ""


def _documentables() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name in ecs_safe.__all__:
        obj = getattr(ecs_safe, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # __version__ and type aliases cannot carry their own docstrings
        found.append((name, obj))
        if inspect.isclass(obj) and obj.__module__.startswith("ecs_safe"):
            for attr, raw in vars(obj).items():
                if attr.startswith("_"):
                    continue
                member = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
                if inspect.isfunction(member) or isinstance(member, property):
                    found.append((f"{name}.{attr}", member))
    return found


@pytest.mark.parametrize(
    ("name", "obj"), _documentables(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_names_have_docstrings(name: str, obj: Any) -> None:
    assert _own_doc(obj).strip(), f"{name} has no docstring"


# ------------------------------------------------------------------ EcsSafeClient construction


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"region_name": 123}, "region_name"),
        ({"region_name": ""}, "region_name"),
        ({"profile_name": b"dev"}, "profile_name"),
        ({"endpoint_url": "localhost:4566"}, "endpoint_url"),
        ({"endpoint_url": "ftp://localhost"}, "endpoint_url"),
        ({"endpoint_url": 4566}, "endpoint_url"),
        ({"session": "not a session"}, "session"),
        ({"policy": ["NoRunningTasksUnlessForced"]}, "policy"),
        ({"retry": {"max_attempts": 3}}, "retry"),
        ({"rate_limits": 20}, "rate_limits"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"connect_timeout": "5"}, "connect_timeout"),
        ({"connect_timeout": True}, "connect_timeout"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"read_timeout": math.nan}, "read_timeout"),
        ({"read_timeout": math.inf}, "read_timeout"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        EcsSafeClient(**kwargs)
    assert named in str(exc_info.value)


def test_session_and_profile_are_exclusive() -> None:
    with pytest.raises(InvalidInputError, match="session") as exc_info:
        EcsSafeClient(session=AioSession(), profile_name="dev")
    assert "profile_name" in str(exc_info.value)


def test_constructor_accepts_good_arguments_without_network() -> None:
    client = EcsSafeClient(
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:4566",
        policy=default_policy(),
        retry=RetryConfig(max_attempts=2),
        rate_limits=RateLimits.unlimited(),
        connect_timeout=1,
        read_timeout=2.5,
    )
    assert client.retry.max_attempts == 2


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        EcsSafeClient("eu-west-1")  # type: ignore[call-arg]


def test_from_client_rejects_non_clients() -> None:
    with pytest.raises(InvalidInputError, match="from_client"):
        EcsSafeClient.from_client(object())


# ------------------------------------------------------------------ EcsSafeClient state


async def _use(client: EcsSafeClient) -> None:
    await client.deregister_container_instance(HEX_ID)


CALLS = {
    "deregister_container_instance": lambda c: c.deregister_container_instance(HEX_ID),
    "describe_container_instances": lambda c: c.describe_container_instances([HEX_ID]),
    "list_tasks": lambda c: c.list_tasks(HEX_ID),
}


@pytest.mark.parametrize("method", list(CALLS))
async def test_using_an_unopened_client_says_what_to_do(method: str) -> None:
    client = EcsSafeClient(region_name="eu-west-1")
    with pytest.raises(ClientStateError, match="async with") as exc_info:
        await CALLS[method](client)
    assert isinstance(exc_info.value, RuntimeError)
    assert isinstance(exc_info.value, EcsSafeError)


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the environment, so that opening a client never reaches IMDS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("fake_aws_env")
@pytest.mark.parametrize("method", list(CALLS))
async def test_using_a_closed_client_says_it_is_closed(method: str) -> None:
    # Opening creates the aiobotocore client but sends no request: no network needed.
    async with EcsSafeClient(region_name="eu-west-1", endpoint_url="http://127.0.0.1:9") as ecs:
        pass
    with pytest.raises(ClientStateError, match="closed"):
        await CALLS[method](ecs)


@pytest.mark.usefixtures("fake_aws_env")
async def test_a_closed_client_cannot_be_reopened() -> None:
    client = EcsSafeClient(region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    async with client:
        pass
    with pytest.raises(ClientStateError, match="closed"):
        await client.__aenter__()


@pytest.mark.usefixtures("fake_aws_env")
async def test_an_open_client_cannot_be_entered_twice() -> None:
    client = EcsSafeClient(region_name="eu-west-1", endpoint_url="http://127.0.0.1:9")
    async with client:
        with pytest.raises(ClientStateError, match="already open"):
            await client.__aenter__()


async def test_close_is_idempotent_and_works_on_unopened_clients() -> None:
    client = EcsSafeClient(region_name="eu-west-1")
    await client.close()
    await client.close()
    with pytest.raises(ClientStateError, match="closed"):
        await _use(client)


class _FakeEcs:
    """Just enough of an aiobotocore ECS client for from_client()."""

    def __init__(self) -> None:
        self.closed = False

    async def deregister_container_instance(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("no request expected")

    async def close(self) -> None:
        self.closed = True

    async def __aexit__(self, *_: object) -> None:
        self.closed = True


async def test_from_client_never_closes_the_callers_client() -> None:
    fake = _FakeEcs()
    client = EcsSafeClient.from_client(fake)
    async with client:
        pass
    assert not fake.closed
    with pytest.raises(ClientStateError, match="closed"):
        await _use(client)


async def test_bad_input_is_refused_before_the_state_check() -> None:
    client = EcsSafeClient(region_name="eu-west-1")
    with pytest.raises(InvalidInputError):
        # A mistyped EC2 ID (16 hex digits); a real one is accepted since issue 10.
        await client.deregister_container_instance("i-0abc1234def56789")
    with pytest.raises(InvalidInputError):
        await client.deregister_container_instance(HEX_ID, force="false")  # type: ignore[arg-type]
