"""Shared fixtures.

- ``local_ecs``: one `LocalEcs` for the whole test session (starting costs about a second).
- ``ecs_env``: that same `LocalEcs`, reset before the test: no clusters, no pending faults,
  request counts at zero, task transitions frozen. Ask for ``ecs_env`` in any test that talks
  to the local endpoint; ask for ``local_ecs`` only to read its address.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ecs_safe.local import LocalEcs


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
