"""Who may touch moto's in-process state at once: many requests, or one exclusive actor.

moto's server answers requests on a thread each, and they run side by side as they always
have (tests rely on overlap). Whatever acts on moto's backend from outside a request — the
service scheduler's pass, the seeding helpers that write to the backend directly — must not
run in the middle of a request, or a request would see a half-made move. `StateLock` is a
readers-writer lock: every request holds it *shared*, an actor holds it *exclusive*.

Requests are never held back by a waiting actor (no writer preference): a request may make
another request while it is served (a lifecycle completion terminates the EC2 instance over
HTTP), and holding the inner one back for an actor that waits for the outer one would
deadlock. Clients poll with pauses, so the actor gets its turn. An actor called from inside a
request (its thread already holds the lock shared) proceeds as that request: it cannot
exclude its own request. The exclusive side is re-entrant. An actor must never make an HTTP
request to the server while it holds the lock exclusively (the request would wait for the
actor, which waits for the request).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StateLock"]


class StateLock:
    """A readers-writer lock over moto's state (see the module)."""

    def __init__(self) -> None:
        """An unlocked lock."""
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._writer_depth = 0
        self._local = threading.local()

    def _shared_depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock shared, as a request does; waits while an actor holds it."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                while self._writer is not None:
                    self._cond.wait()
            self._readers += 1
        self._local.depth = self._shared_depth() + 1
        try:
            yield
        finally:
            self._local.depth = self._shared_depth() - 1
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone: no request is being served meanwhile.

        From a thread that is serving a request (holding the lock shared) it is a no-op.
        """
        if self._shared_depth():
            yield
            return
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._writer_depth += 1
            else:
                while self._writer is not None or self._readers:
                    self._cond.wait()
                self._writer, self._writer_depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._writer_depth -= 1
                if not self._writer_depth:
                    self._writer = None
                    self._cond.notify_all()
