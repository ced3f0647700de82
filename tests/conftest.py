"""Shared fixtures.

- ``local_ecs``: one `LocalEcs` for the whole test session (starting costs about a second).
- ``ecs_env``: that same `LocalEcs`, reset before the test: no clusters, no pending faults,
  request counts at zero, task transitions frozen. Ask for ``ecs_env`` in any test that talks
  to the local endpoint; ask for ``local_ecs`` only to read its address.
- ``instant_retries``: retry waits of zero seconds for the test (attempts are still counted);
  a module that wants it for every test says ``pytestmark = pytest.mark.usefixtures(...)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecs_safe.local import LocalEcs
from ecs_safe.retry import set_testing


@pytest.fixture(scope="session")
def local_ecs() -> Iterator[LocalEcs]:
    """A running `LocalEcs`, shared by the session; its state is whatever the last test left."""
    with LocalEcs() as local:
        yield local


@pytest.fixture
def ecs_env(local_ecs: LocalEcs) -> LocalEcs:
    """The session's `LocalEcs`, reset to empty before the test."""
    local_ecs.reset()
    return local_ecs


@pytest.fixture
def instant_retries() -> Iterator[None]:
    """Retry waits of zero seconds for the duration of the test, then as they were."""
    with set_testing(True):
        yield
