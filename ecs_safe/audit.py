"""The audit log: a JSONL record of every decision and every mutating call, kept by you.

Give a client ``audit_log=`` (a path, or an `AuditLog`) and it appends one JSON object per line:

- ``decision``: each policy decision, allowed or refused, with its violations, the instance,
  the cluster, ``force`` and ``dry_run`` (``step`` is ``"deregister"``, or ``"drain"`` for the
  check made before DRAINING is set);
- ``intent``: each mutating call (DeregisterContainerInstance, UpdateContainerInstancesState,
  StopTask), written *before* its request is sent, with the request's parameters;
- ``outcome``: that call's end, written before the call returns: ``result`` is ``"ok"`` (with
  the ``request_id``), ``"verified"`` (the response was lost and a describe showed the call had
  taken effect) or ``"error"`` (the typed ``error_code``, and ``may_have_acted`` when a failed
  attempt may have reached ECS);
- ``run_started`` and ``run_finished``: a client opening and closing.

Every record carries ``run_id`` (one per client, unless the `AuditLog` was given one),
``seq`` (1, 2, ... within the run), ``ts`` (UTC, ISO 8601) and ``kind``. Each record is written
with one ``write`` and flushed (and, for a file, ``fsync``'d) before the call that produced it
returns, so a run killed at any moment leaves a log that says what it did: an ``intent``
without an ``outcome`` is a call whose result is unknown (`unfinished` lists them), and at most
the last line is torn. No credential is ever written: error messages are redacted as in every
ecs-safe error.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from ecs_safe.errors import EcsSafeError, InvalidInputError

__all__ = [
    "DECISION",
    "INTENT",
    "OUTCOME",
    "RUN_FINISHED",
    "RUN_STARTED",
    "TORN",
    "AuditLog",
    "AuditRun",
    "unfinished",
]

#: The ``kind`` of a policy decision record.
DECISION: Final = "decision"
#: The ``kind`` of the record written before a mutating request is sent.
INTENT: Final = "intent"
#: The ``kind`` of the record written when a mutating call ends (its ``intent_seq`` pairs it).
OUTCOME: Final = "outcome"
#: The ``kind`` of a client's first record.
RUN_STARTED: Final = "run_started"
#: The ``kind`` of a client's last record (absent when the run crashed).
RUN_FINISHED: Final = "run_finished"
#: The ``kind`` `AuditLog.read` gives a line that is not a whole record (a write torn by a
#: crash); such records have ``line`` and ``text`` and no ``run_id``.
TORN: Final = "torn"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _write_all(fd: int, data: bytes) -> None:
    # One write() of a whole line: with O_APPEND the kernel places it at the end in one piece,
    # so a kill can tear at most the line being written, never interleave two. The loop only
    # matters if the kernel ever accepts part of it (a full disk, a signal).
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _ends_torn(path: Path) -> bool:
    """Whether the file exists, is not empty and its last line has no newline (torn)."""
    try:
        with path.open("rb") as existing:
            existing.seek(0, os.SEEK_END)
            if existing.tell() == 0:
                return False
            existing.seek(-1, os.SEEK_END)
            return existing.read(1) != b"\n"
    except OSError:
        return False  # missing (it will be created), or not a file: opening it will say so


class AuditLog:
    """An append-only JSONL audit log: open a path, or wrap a text stream you own.

    Pass it (or just a path) to a client as ``audit_log=``::

        async with EcsSafeClient(region_name="eu-west-1", audit_log="ecs-safe-audit.jsonl") as ecs:
            await ecs.deregister_many(instances, cluster="prod")

    A path is opened for appending (created if missing), so runs accumulate in one file; a run
    appended after a crash starts on a fresh line. One `AuditLog` may be shared by several
    clients and threads: writes are serialised by a lock, and each client writes under its own
    run ID unless ``run_id`` is given here.

    Args:
        target: a path (``str`` or ``os.PathLike``), or a writable text stream (``sys.stdout``,
            ``io.StringIO``, a file you opened); a stream is flushed after each record and
            never closed by ecs-safe.
        run_id: the run ID of every record written through this log; by default each client
            gets a new one (a UUID).
        fsync: ``os.fsync`` after every record, so that records survive a crash of the host,
            not only of the process. ``None`` (the default): yes for a path, no for a stream.
            It costs 0.25-0.7 ms a record where measured (see the docs' reliability page).

    Raises:
        InvalidInputError: a bad argument, or a path that cannot be opened for appending.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        *,
        run_id: str | None = None,
        fsync: bool | None = None,
    ) -> None:
        if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
            raise InvalidInputError(f"run_id must be a non-empty str or None, got {run_id!r}")
        if fsync is not None and not isinstance(fsync, bool):
            raise InvalidInputError(f"fsync must be True, False or None, got {fsync!r}")
        self._lock = threading.Lock()
        self._seq: dict[str, int] = {}
        # Set when a failed write may have left part of a line that could not be removed: the
        # next record then starts on a fresh line, so that it is not glued onto the torn one.
        self._torn = False
        self._fd: int | None = None
        self._stream: IO[str] | None = None
        self.run_id = run_id
        """The run ID given to the constructor, if any."""
        self.path: Path | None = None
        """The file written to, when the log was opened from a path."""
        if isinstance(target, str | os.PathLike):
            self.path = Path(target)
            self._fsync = fsync is not False
            self._fd = self._open(self.path)
        elif callable(getattr(target, "write", None)) and callable(getattr(target, "flush", None)):
            self._stream = target
            self._fsync = bool(fsync)
            if self._fsync:
                self._fileno(target)
        else:
            raise InvalidInputError(
                "audit log target must be a path (str or os.PathLike) or a writable text "
                f"stream, got {type(target).__name__}"
            )

    @staticmethod
    def _open(path: Path) -> int:
        torn = _ends_torn(path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o666)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot open the audit log {str(path)!r} for appending: {exc.strerror or exc}"
            ) from exc
        if torn:
            # A crashed writer left half a line: end it, so that the next record is whole.
            _write_all(fd, b"\n")
        return fd

    @staticmethod
    def _fileno(stream: IO[str]) -> int:
        try:
            return stream.fileno()
        except (AttributeError, OSError, ValueError) as exc:
            raise InvalidInputError(
                "fsync=True needs a stream backed by a file (with fileno()); "
                "pass a path instead, or fsync=False"
            ) from exc

    @property
    def closed(self) -> bool:
        """Whether `close` has been called (a wrapped stream's own state is not consulted)."""
        return self._fd is None and self._stream is None

    @property
    def fsync(self) -> bool:
        """Whether each record is ``os.fsync``'d after it is written."""
        return self._fsync

    def start_run(self, run_id: str | None = None) -> AuditRun:
        """A writer for one run: ``run_id``, else this log's, else a new UUID.

        A run ID the file already holds (a crashed run carried on under its own ID, as a
        resumed replacement is, `ecs_safe.replace`) goes on numbering after that run's last
        record, so that ``seq`` stays unique within the run and its intents and outcomes pair.
        """
        chosen = run_id or self.run_id
        if chosen is None:
            return AuditRun(self, uuid.uuid4().hex)
        if self.path is not None and chosen not in self._seq and self.path.exists():
            last = max(
                (
                    r["seq"]
                    for r in self.read(self.path)
                    if r.get("run_id") == chosen and isinstance(r.get("seq"), int)
                ),
                default=0,
            )
            with self._lock:
                self._seq.setdefault(chosen, last)
        return AuditRun(self, chosen)

    def write(self, run_id: str, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Append one record and return it; it is on disk (or in the stream) on return.

        ``seq`` counts the records of ``run_id`` in this log, from 1.

        Raises:
            EcsSafeError: the record could not be written (the log is closed, the disk is
                full, ...); its ``code`` is ``"AuditLog"``.
        """
        with self._lock:
            seq = self._seq.get(run_id, 0) + 1
            record = {"run_id": run_id, "seq": seq, "ts": _now(), "kind": kind, **fields}
            # default=str: a value JSON has no type for (a datetime) is kept as text, never an
            # exception in the middle of a deregistration.
            line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
            try:
                self._append(line)
            except (OSError, ValueError) as exc:
                error = EcsSafeError(f"could not write the audit log: {exc}")
                error.code = "AuditLog"
                raise error from exc
            self._seq[run_id] = seq
        return record

    def _append(self, line: str) -> None:
        if self._torn:
            line = "\n" + line
        if self._fd is not None:
            self._append_to_file(self._fd, line.encode("utf-8"))
        elif self._stream is not None:
            try:
                self._stream.write(line)
                self._stream.flush()
            except BaseException:
                # A stream cannot be cut back: what it kept of the line stays, torn.
                self._torn = True
                raise
            self._torn = False
            if self._fsync:
                os.fsync(self._fileno(self._stream))
        else:
            raise ValueError("the audit log is closed")

    def _append_to_file(self, fd: int, data: bytes) -> None:
        """Append ``data`` whole, or leave the file as it was (a full disk tears no record)."""
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            _write_all(fd, data)
        except BaseException:
            try:
                os.ftruncate(fd, start)
            except OSError:
                self._torn = True  # the partial line stays: start the next one on its own
            raise
        self._torn = False
        if self._fsync:
            os.fsync(fd)

    def close(self) -> None:
        """Close the file (a wrapped stream is left open). Idempotent."""
        with self._lock:
            fd, self._fd, self._stream = self._fd, None, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "stream"
        return f"AuditLog({where!r}, run_id={self.run_id!r}, fsync={self._fsync})"

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Every record of the log at ``path``, in file order.

        A line that is not a whole JSON object (normally only the last line, torn by a crash
        mid-write) does not fail the read: it comes back as ``{"kind": "torn", "line": N,
        "text": ...}``, so nothing in the file is hidden. A whole record written onto the end of
        a torn one (by an older writer, or a stream that could not be cut back) is still read:
        the line gives its torn part, then the record. Blank lines are skipped.
        """
        records: list[dict[str, Any]] = []
        with Path(path).open(encoding="utf-8", errors="replace") as log:
            for number, text in enumerate(log, start=1):
                if text.strip():
                    records += _parse_line(text.rstrip("\n"), number)
        return records


# Every record starts so (`AuditLog.write` puts ``run_id`` first).
_RECORD_START = '{"run_id": '


def _as_record(text: str) -> dict[str, Any] | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _parse_line(text: str, number: int) -> list[dict[str, Any]]:
    """The records of one line: one record, or torn text followed by the whole record after it."""
    record = _as_record(text)
    if record is not None:
        return [record]
    # Torn text with a record glued on: the last start from which the rest parses is it.
    at = text.find(_RECORD_START, 1)
    while at != -1:
        record = _as_record(text[at:])
        if record is not None:
            return [*_parse_line(text[:at], number), record]
        at = text.find(_RECORD_START, at + 1)
    return [{"kind": TORN, "line": number, "text": text}]


class AuditRun:
    """The records of one run (one client) in an `AuditLog`, under one run ID.

    Clients create theirs with `AuditLog.start_run`; use one yourself to add records of your
    own to a run (a change ticket, say): ``run.write("note", ticket="CHG-1234")``.
    """

    def __init__(self, log: AuditLog, run_id: str) -> None:
        self.log = log
        """The log written to."""
        self.run_id = run_id
        """The run ID every record of this run carries."""

    def write(self, kind: str, /, **fields: Any) -> dict[str, Any]:
        """Append one record of ``kind`` with ``fields``; see `AuditLog.write`."""
        return self.log.write(self.run_id, kind, fields)

    def __repr__(self) -> str:
        return f"AuditRun(run_id={self.run_id!r}, log={self.log!r})"


def unfinished(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``intent`` records with no ``outcome``: the calls whose result is unknown.

    After a crash these are the mutating requests that were sent (or about to be) when the
    process died; describe the instances they name to learn what happened. Outcomes are paired
    with intents by ``run_id`` and ``intent_seq``, so one file may hold many runs.
    """
    intents: dict[tuple[Any, Any], dict[str, Any]] = {}
    for record in records:
        kind = record.get("kind")
        key = (record.get("run_id"), record.get("seq"))
        if kind == INTENT:
            intents[key] = dict(record)
        elif kind == OUTCOME:
            intents.pop((record.get("run_id"), record.get("intent_seq")), None)
    return list(intents.values())
