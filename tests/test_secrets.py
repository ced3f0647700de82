"""No credential in any log event, error, repr or result, on every path we can drive.

The session carries a marker secret access key and a realistic (long, base64) marker session
token. Every path runs with structlog's events captured and an audit log kept, and everything a
user could print or keep is searched for any 20-character piece of either marker: log events,
audit records, the error's str/repr/args/notes and its whole ``__cause__``/``__context__``
chain, results' repr and ``model_dump``.

The secret key never leaves the process (SigV4 only signs with it); the session token travels
in the ``X-Amz-Security-Token`` header, so a server or gateway that echoes the request (the
proxy's `Fault.ECHO`) is how it could come back in an error message.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import botocore.exceptions as bce
import pytest
from aiobotocore.session import AioSession
from fault_proxy import Fault, FaultProxy
from pydantic import BaseModel
from structlog.testing import capture_logs
from typer.testing import CliRunner

import ecs_safe
from ecs_safe import AuditLog, EcsSafeClient, EcsSafeError, RateLimits, RetryConfig
from ecs_safe._error_mapping import map_errors
from ecs_safe.cli import app
from ecs_safe.local import LocalEcs

ACCESS_KEY_ID = "AKIAMARKER0000000000"
SECRET_KEY = "SECRETMARKER/wJalrXUtnFEMI+K7MDENGbPxRfiCY"
# Shaped like an STS session token: hundreds of base64 characters.
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEMARKERTOKEN" + base64.b64encode(bytes(range(256)) * 2).decode()
CLUSTER = "secrets"
DESCRIBE = "DescribeContainerInstances"
DEREGISTER = "DeregisterContainerInstance"
READ_TIMEOUT = 0.25
ALWAYS = 1000


def _pieces(secret: str, width: int = 20) -> set[str]:
    return {secret[i : i + width] for i in range(0, len(secret) - width + 1)}


#: The ways a gateway was seen to echo the session token back, beside its raw form.
ENCODINGS: dict[str, Callable[[str], str]] = {
    "url-encoded": lambda s: quote(s, safe=""),
    "mime-76": lambda s: "\r\n".join(s[i : i + 76] for i in range(0, len(s), 76)),
    "url-safe-base64": lambda s: s.replace("+", "-").replace("/", "_"),
    "split-64": lambda s: "\n".join(s[i : i + 64] for i in range(0, len(s), 64)),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
}
# Wrapping is undone before searching (`Transcript.leaks`); the other encodings are searched for.
MARKER_PIECES = (
    _pieces(SECRET_KEY)
    | _pieces(SESSION_TOKEN)
    | _pieces(ENCODINGS["url-encoded"](SESSION_TOKEN))
    | _pieces(ENCODINGS["url-safe-base64"](SESSION_TOKEN))
    | _pieces(ENCODINGS["base64"](SESSION_TOKEN))
)


def _unwrapped(text: str) -> str:
    """``text`` with line breaks (real or JSON-escaped) and spaces removed."""
    return "".join(text.replace("\\r", " ").replace("\\n", " ").split())


class Transcript:
    """Everything a path produced that a user could print, log or ship somewhere."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.errors = 0

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        seen: set[int] = set()
        todo: list[BaseException | None] = [exc]
        while todo:
            current = todo.pop()
            if current is None or id(current) in seen:
                continue
            seen.add(id(current))
            self.texts += [str(current), repr(current), repr(current.args)]
            self.texts += [str(note) for note in getattr(current, "__notes__", ())]
            if isinstance(current, EcsSafeError):
                # Ours hold only what we put there (botocore's keep the signed request).
                self.texts += [repr(value) for value in vars(current).values()]
            # The chain Python (and error trackers) display: the context only if not suppressed.
            todo.append(current.__cause__)
            if not current.__suppress_context__:
                todo.append(current.__context__)

    def result(self, value: object) -> None:
        self.texts.append(repr(value))
        if isinstance(value, BaseModel):
            self.texts.append(repr(value.model_dump()))
        elif isinstance(value, list):
            for item in value:
                self.result(item)

    def logs(self, events: list[Any]) -> None:
        self.texts += [repr(event) for event in events]

    def audit(self, records: str) -> None:
        self.texts += records.splitlines()

    def leaks(self) -> list[str]:
        return [
            text
            for text in self.texts
            if any(piece in text or piece in _unwrapped(text) for piece in MARKER_PIECES)
        ]


Step = Callable[[EcsSafeClient], Awaitable[object]]


# The audit log each client of `make_client` writes to, read back by `run`.
_AUDIT: dict[int, io.StringIO] = {}


async def run(client: EcsSafeClient, steps: list[Step]) -> Transcript:
    """Run each step (catching ecs-safe errors), with logs captured; return what was seen."""
    transcript = Transcript()
    with capture_logs() as events:
        async with client:
            for step in steps:
                try:
                    transcript.result(await step(client))
                except EcsSafeError as exc:
                    transcript.error(exc)
    transcript.logs(events)
    records = _AUDIT.pop(id(client)).getvalue()
    # The audit log was written (its text is checked below). A pre-flight that could not be
    # done records no decision (it is a failure, not a refusal), so a run may hold only its
    # start and end records.
    assert '"kind": "run_started"' in records
    transcript.audit(records)
    return transcript


def assert_clean(transcript: Transcript) -> None:
    leaks = transcript.leaks()
    assert not leaks, f"a credential leaked in {len(leaks)} place(s), e.g. {leaks[0][:400]}"


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture(scope="module")
def local(local_ecs: LocalEcs) -> LocalEcs:
    local_ecs.reset()
    local_ecs.create_cluster(CLUSTER)
    return local_ecs


@pytest.fixture(scope="module")
def session(local: LocalEcs) -> AioSession:
    marked = local.session()
    marked.set_credentials(ACCESS_KEY_ID, SECRET_KEY, SESSION_TOKEN)
    return marked


def make_client(session: AioSession, endpoint_url: str, **kwargs: Any) -> EcsSafeClient:
    audit = io.StringIO()
    client = EcsSafeClient(
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        session=session,
        retry=RetryConfig(max_attempts=3),
        rate_limits=RateLimits.unlimited(),
        connect_timeout=1.0,
        read_timeout=READ_TIMEOUT,
        audit_log=AuditLog(audit),
        **kwargs,
    )
    _AUDIT[id(client)] = audit
    return client


async def test_the_markers_are_in_the_session(session: AioSession) -> None:
    credentials = await session.get_credentials()
    assert credentials is not None
    frozen = await credentials.get_frozen_credentials()
    assert frozen.secret_key == SECRET_KEY
    assert frozen.token == SESSION_TOKEN


async def test_every_outcome_against_the_endpoint(local: LocalEcs, session: AioSession) -> None:
    idle, busy, drained, fleet_idle, fleet_busy = local.register_instances(CLUSTER, count=5)
    for arn in (busy, fleet_busy):
        local.start_standalone_task(CLUSTER, arn)
    steps: list[Step] = [
        lambda ecs: ecs.describe_container_instances([idle, busy], cluster=CLUSTER),
        lambda ecs: ecs.list_tasks(busy, cluster=CLUSTER),
        lambda ecs: ecs.deregister_container_instance(busy, cluster=CLUSTER),  # refused
        lambda ecs: ecs.deregister_container_instance(idle, cluster=CLUSTER, dry_run=True),
        lambda ecs: ecs.deregister_container_instance(idle, cluster=CLUSTER),  # deregistered
        # Already deregistered: ECS (and LocalEcs) describe it as INACTIVE.
        lambda ecs: ecs.deregister_container_instance(idle, cluster=CLUSTER),
        lambda ecs: ecs.deregister_container_instance("1" * 32, cluster=CLUSTER),  # not found
        lambda ecs: ecs.deregister_container_instance("0" * 32, cluster="nowhere"),
        lambda ecs: ecs.drain([busy], cluster=CLUSTER),
        lambda ecs: ecs.drain_and_deregister(drained, cluster=CLUSTER, poll_interval=0.02),
        lambda ecs: ecs.drain_and_deregister(busy, cluster=CLUSTER, timeout=0.1),  # timeout
        lambda ecs: ecs.deregister_many(
            [fleet_idle, fleet_busy, "0" * 32, "not an id!"], cluster=CLUSTER
        ),
        lambda ecs: ecs.deregister_container_instance(busy, cluster=CLUSTER, force=True),
    ]
    transcript = await run(make_client(session, local.endpoint_url), steps)
    assert transcript.errors >= 4
    assert len(transcript.texts) > 50
    assert_clean(transcript)


FAULT_CELLS = [
    pytest.param(operation, fault, times, id=f"{operation}-{fault}-{'always' if times else 'once'}")
    for operation in (DESCRIBE, DEREGISTER)
    for fault in Fault
    if fault not in (Fault.PASS, Fault.BODY)
    for times in (0, ALWAYS)
]


@pytest.fixture
async def proxy(local: LocalEcs) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(local.endpoint_url) as running:
        yield running


@pytest.mark.parametrize(("operation", "fault", "times"), FAULT_CELLS)
async def test_every_fault_through_the_proxy(
    local: LocalEcs,
    session: AioSession,
    proxy: FaultProxy,
    operation: str,
    fault: Fault,
    times: int,
) -> None:
    (arn,) = local.register_instances(CLUSTER)
    proxy.inject(operation, fault, times=times or 1)
    steps: list[Step] = [lambda ecs: ecs.deregister_container_instance(arn, cluster=CLUSTER)]
    transcript = await run(make_client(session, proxy.endpoint_url), steps)
    assert proxy.faulted(operation) >= 1
    assert_clean(transcript)


async def test_an_echoing_gateway_on_every_operation(
    local: LocalEcs, session: AioSession, proxy: FaultProxy
) -> None:
    idle, busy = local.register_instances(CLUSTER, count=2)
    local.start_standalone_task(CLUSTER, busy)
    for operation in (
        DESCRIBE,
        DEREGISTER,
        "ListTasks",
        "DescribeTasks",
        "UpdateContainerInstancesState",
        "StopTask",
    ):
        proxy.inject(operation, Fault.ECHO, times=ALWAYS)
    steps: list[Step] = [
        lambda ecs: ecs.describe_container_instances([idle], cluster=CLUSTER),
        lambda ecs: ecs.list_tasks(busy, cluster=CLUSTER),
        lambda ecs: ecs.deregister_container_instance(idle, cluster=CLUSTER),
        lambda ecs: ecs.drain([idle], cluster=CLUSTER),
        lambda ecs: ecs.drain_and_deregister(busy, cluster=CLUSTER, standalone_tasks="stop"),
        lambda ecs: ecs.deregister_many([idle, busy], cluster=CLUSTER, drain=True),
    ]
    transcript = await run(make_client(session, proxy.endpoint_url), steps)
    assert transcript.errors >= 5
    assert_clean(transcript)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
async def test_a_gateway_echoing_the_token_encoded(
    local: LocalEcs, session: AioSession, proxy: FaultProxy, encoding: str
) -> None:
    (arn,) = local.register_instances(CLUSTER)
    echoed = ENCODINGS[encoding](SESSION_TOKEN)
    message = f"The security token included in the request is invalid: {echoed}"
    body = json.dumps({"__type": "UnrecognizedClientException", "message": message})
    for operation in (DESCRIBE, DEREGISTER):
        proxy.inject_body(operation, 400, body.encode(), times=ALWAYS)
    steps: list[Step] = [
        lambda ecs: ecs.describe_container_instances([arn], cluster=CLUSTER),
        lambda ecs: ecs.deregister_container_instance(arn, cluster=CLUSTER),
    ]
    transcript = await run(make_client(session, proxy.endpoint_url), steps)
    assert transcript.errors == 2
    assert_clean(transcript)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_the_mapping_cuts_every_encoding_of_a_token(encoding: str) -> None:
    echoed = ENCODINGS[encoding](SESSION_TOKEN)
    response: dict[str, Any] = {
        "Error": {"Code": "ServerException", "Message": f"bad token {echoed} (echo)"},
        "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "r-1"},
    }
    transcript = Transcript()
    with pytest.raises(EcsSafeError) as info, map_errors(DESCRIBE):
        raise bce.ClientError(response, DESCRIBE)  # type: ignore[arg-type]
    transcript.error(info.value)
    assert_clean(transcript)
    assert "bad token" in info.value.message
    assert "(echo)" in info.value.message


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://admin:hunter2-PASSWORD@127.0.0.1:99999",  # port out of range
        "ftp://admin:hunter2-PASSWORD@ecs.example.com",  # wrong scheme
        "http://admin:hunter2-PASSWORD@",  # no host
    ],
)
def test_an_endpoint_url_with_credentials_is_refused_without_echoing_them(endpoint: str) -> None:
    with pytest.raises(ecs_safe.InvalidInputError) as info:
        EcsSafeClient(endpoint_url=endpoint, region_name="us-east-1")
    assert "hunter2" not in str(info.value)
    assert "admin" not in str(info.value)
    assert "endpoint_url" in str(info.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param("refused", id="connection-refused"),
        pytest.param("http://ecs-safe.invalid", id="unresolvable-host"),
        pytest.param("tls-to-plain-http", id="tls-to-a-plain-http-port"),
        pytest.param(
            f"http://user:{quote(SESSION_TOKEN, safe='')}@127.0.0.1:1", id="credentials-in-the-url"
        ),
    ],
)
async def test_bad_endpoints(local: LocalEcs, session: AioSession, endpoint: str) -> None:
    if endpoint == "refused":
        endpoint = f"http://127.0.0.1:{_closed_port()}"
    elif endpoint == "tls-to-plain-http":
        endpoint = local.endpoint_url.replace("http://", "https://")
    steps: list[Step] = [
        lambda ecs: ecs.deregister_container_instance("0" * 32, cluster=CLUSTER),
        lambda ecs: ecs.describe_container_instances(["0" * 32], cluster=CLUSTER),
        lambda ecs: ecs.deregister_many(["0" * 32], cluster=CLUSTER),
    ]
    transcript = await run(make_client(session, endpoint), steps)
    assert transcript.errors >= 2
    assert_clean(transcript)


# --------------------------------------------------------------------------- the mapping itself


class _OwnStr(aiohttp.ClientError):
    """A network error whose text does not come from its args (as some aiohttp errors)."""

    def __str__(self) -> str:
        return f"token {SESSION_TOKEN} rejected"


def _client_error() -> bce.ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": "ServerException", "Message": f"token {SESSION_TOKEN} is bad"},
        "ResponseMetadata": {"HTTPStatusCode": 500, "RequestId": "r-1"},
    }
    return bce.ClientError(response, DESCRIBE)  # type: ignore[arg-type]


def _raise_with_a_dirty_chain(original: Exception) -> None:
    with map_errors(DESCRIBE):
        try:
            raise OSError(f"while sending {SESSION_TOKEN}")
        except OSError as inner:
            raise original from inner


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_client_error, id="client-error"),
        pytest.param(
            lambda: bce.EndpointConnectionError(
                endpoint_url=f"http://h/?X-Amz-Security-Token={SECRET_KEY}"
            ),
            id="botocore-error",
        ),
        pytest.param(_OwnStr, id="own-str"),
    ],
)
def test_the_mapping_redacts_the_whole_chain(make: Callable[[], Exception]) -> None:
    original = make()
    transcript = Transcript()
    with pytest.raises(EcsSafeError) as info:
        _raise_with_a_dirty_chain(original)
    transcript.error(info.value)
    assert_clean(transcript)
    assert info.value.__cause__ is not None


# --------------------------------------------------------------------------- input is never code

# What would run input as code or through a shell, or unpickle it, if the package ever did.
_EVALUATING_BUILTINS = frozenset({"eval", "exec", "compile", "__import__"})
_EVALUATING_MODULES = frozenset({"subprocess", "pickle", "marshal", "yaml", "shelve"})
_EVALUATING_OS_CALLS = frozenset({"system", "popen", "execv", "execvp", "spawnv", "spawnvp"})


def _evaluating_calls(source: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name in _EVALUATING_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in _EVALUATING_MODULES:
            found.append(f"from {node.module} import")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _EVALUATING_BUILTINS:
                found.append(func.id)
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
                and func.attr in _EVALUATING_OS_CALLS
            ):
                found.append(f"os.{func.attr}")
            found += ["shell=" for k in node.keywords if k.arg == "shell"]
    return found


def test_no_module_of_the_package_can_evaluate_input() -> None:
    package = Path(ecs_safe.__file__).parent
    offenders = {
        path.name: calls
        for path in sorted(package.glob("*.py"))
        if (calls := _evaluating_calls(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


HOSTILE = [
    "$(touch PWNED)",
    "`touch PWNED`",
    "; touch PWNED",
    "__import__('os').system('touch PWNED')",
    "{{7*7}}",
    "../../etc/passwd",
]


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("where", ["instance", "cluster", "cluster-env"])
def test_the_cli_takes_hostile_input_as_plain_bad_input(
    local: LocalEcs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hostile: str,
    where: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    instance = hostile if where == "instance" else "0" * 32
    args = ["deregister", instance, "--endpoint-url", local.endpoint_url]
    if where == "cluster":
        args += ["--cluster", hostile]
    elif where == "cluster-env":
        monkeypatch.setenv("ECS_SAFE_CLUSTER", hostile)
    local.reset_calls()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert local.call_log == []  # refused before anything was sent
    assert list(tmp_path.iterdir()) == []  # nothing ran
    assert "49" not in result.output  # nothing was rendered as a template either
