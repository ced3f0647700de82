"""An `EcsSafeClient` opens its HTTP session with itself, not ahead of its first request."""

from __future__ import annotations

from typing import Any

import pytest
from aiobotocore.httpsession import AIOHTTPSession
from structlog.testing import capture_logs

from ecs_safe import EcsSafeClient
from ecs_safe._transport import open_http_session
from ecs_safe.local import LocalEcs

CLUSTER = "c"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TLS context aiobotocore builds (it reads the CA bundle to build one)."""
    seen: list[str] = []
    original = vars(AIOHTTPSession)["_build_ssl_contexts"]

    def build(self: AIOHTTPSession, proxy_url: str | None) -> Any:
        seen.append("built")
        return original(self, proxy_url)

    monkeypatch.setattr(AIOHTTPSession, "_build_ssl_contexts", build)
    return seen


async def test_the_session_is_ready_when_the_client_is_open(
    ecs_env: LocalEcs, built: list[str]
) -> None:
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, count=1)
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        assert built == ["built"]  # at open, before any request
        assert ecs_env.call_log == []
        batch = await ecs.deregister_many(arns, cluster=CLUSTER, dry_run=True)
        assert batch.ok
        assert built == ["built"]  # the first request found it made
    assert ecs_env.calls("DescribeContainerInstances") == 1


class _Endpoint:
    def __init__(self, http_session: object) -> None:
        self.host = "https://ecs.eu-west-1.amazonaws.com"
        self.http_session = http_session


class _Client:
    def __init__(self, http_session: object) -> None:
        self._endpoint = _Endpoint(http_session)


class _Proxies:
    def proxy_url_for(self, url: str) -> str | None:
        return None


class _FailingSession:
    _proxy_config = _Proxies()

    async def _get_session(self, proxy_url: str | None) -> None:
        msg = "no such CA bundle: /nowhere.pem"
        raise OSError(msg)


async def test_a_session_that_cannot_be_made_is_left_to_the_first_request() -> None:
    with capture_logs() as logs:
        opened = await open_http_session(_Client(_FailingSession()))
    assert opened is False
    [event] = [e for e in logs if e["event"] == "ecs_safe.transport.session_deferred"]
    assert event["error_type"] == "OSError"
    assert "nowhere.pem" in event["error"]


async def test_a_client_without_aiobotocore_s_internals_keeps_the_lazy_session() -> None:
    assert await open_http_session(object()) is False
    assert await open_http_session(_Client(object())) is False
