"""The blocking client, over real HTTP against the local ECS endpoint.

Covers plain sync use, use from inside a running event loop, errors keeping their type,
Ctrl-C, shutdown, and that open/close cycles leak neither threads nor loops nor descriptors.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from moto.ecs.models import EC2ContainerServiceBackend

from ecs_safe import (
    BatchResult,
    ClientStateError,
    ContainerInstanceNotFoundError,
    InvalidInputError,
    PolicyViolationError,
    SyncEcsSafeClient,
)
from ecs_safe import sync as sync_module
from ecs_safe.client import EcsSafeClient
from ecs_safe.local import LocalEcs

LOOP_THREAD = "ecs-safe-sync-loop"
CLUSTER = "sync"
GHOST = "0123456789abcdef0123456789abcdef"


pytestmark = pytest.mark.usefixtures("instant_retries")


@pytest.fixture
def ecs(ecs_env: LocalEcs) -> Iterator[SyncEcsSafeClient]:
    with SyncEcsSafeClient(**ecs_env.client_kwargs()) as client:
        yield client


@pytest.fixture
def fleet(ecs_env: LocalEcs) -> tuple[str, str, str]:
    """A cluster with one busy instance (2 service tasks) and two idle ones."""
    ecs_env.create_cluster(CLUSTER)
    busy, idle, spare = ecs_env.register_instances(CLUSTER, count=3)
    ecs_env.create_service(CLUSTER, "web")
    ecs_env.start_service_task(CLUSTER, busy, "web", count=2)
    return busy, idle, spare


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LOOP_THREAD]


def open_loops() -> int:
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()
    )


def interrupt_main_thread_when(started: threading.Event) -> threading.Thread:
    """Send SIGINT to the main thread (a real Ctrl-C) once ``started`` is set."""
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        # A bound only so that a broken test cannot leave the thread behind for ever.
        if started.wait(120):
            signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


needs_sigint = pytest.mark.skipif(
    not hasattr(signal, "pthread_kill")
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs POSIX signals and Python's default SIGINT handler",
)


# --------------------------------------------------------------------------- every method


def test_every_method_from_plain_sync_code(
    ecs: SyncEcsSafeClient, fleet: tuple[str, str, str]
) -> None:
    busy, idle, spare = fleet
    described = ecs.describe_container_instances([busy, idle], cluster=CLUSTER)
    assert [d.container_instance_arn for d in described] == [busy, idle]
    tasks = ecs.list_tasks(busy, cluster=CLUSTER)
    assert [t.kind for t in tasks] == ["service", "service"]

    plan = ecs.deregister_many([busy, idle], cluster=CLUSTER, dry_run=True)
    assert isinstance(plan, BatchResult)
    assert [o.status for o in plan.outcomes] == ["refused", "would_deregister"]

    dry = ecs.deregister_container_instance(idle, cluster=CLUSTER, dry_run=True)
    assert dry.dry_run
    done = ecs.deregister_container_instance(idle, cluster=CLUSTER)
    assert not done.dry_run
    assert done.container_instance.container_instance_arn == idle

    (drained,) = ecs.drain([spare], cluster=CLUSTER)
    assert drained.status == "DRAINING"
    result = ecs.drain_and_deregister(spare, cluster=CLUSTER, timeout=10, poll_interval=0.05)
    assert result.container_instance.container_instance_arn == spare
    assert not result.forced


def test_progress_callbacks_run_on_the_loop_thread_and_cannot_call_back(
    ecs: SyncEcsSafeClient, fleet: tuple[str, str, str]
) -> None:
    _, idle, spare = fleet
    seen: list[str] = []
    refused: list[ClientStateError] = []

    def progress(event: Mapping[str, Any]) -> None:
        seen.append(threading.current_thread().name)
        try:
            ecs.list_tasks(idle, cluster=CLUSTER)
        except ClientStateError as exc:
            refused.append(exc)

    ecs.deregister_many([idle, spare], cluster=CLUSTER, dry_run=True, progress=progress)
    assert seen
    assert set(seen) == {LOOP_THREAD}
    assert len(refused) == len(seen)
    assert "own loop thread" in str(refused[0])


# --------------------------------------------------------------------------- inside a loop


async def test_works_when_called_inside_a_running_loop(
    ecs_env: LocalEcs, fleet: tuple[str, str, str]
) -> None:
    busy, idle, _ = fleet
    asyncio.get_running_loop()  # the point: a loop is running in this very thread
    with SyncEcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        with pytest.raises(PolicyViolationError):
            ecs.deregister_container_instance(busy, cluster=CLUSTER)
        result = ecs.deregister_container_instance(idle, cluster=CLUSTER)
    assert result.container_instance.container_instance_arn == idle
    assert not loop_threads()


async def test_a_client_opened_outside_works_inside_a_coroutine(
    ecs: SyncEcsSafeClient, fleet: tuple[str, str, str]
) -> None:
    _, idle, _ = fleet
    (instance,) = ecs.describe_container_instances([idle], cluster=CLUSTER)
    assert instance.status == "ACTIVE"


def test_two_clients_at_once(ecs_env: LocalEcs, fleet: tuple[str, str, str]) -> None:
    _, idle, spare = fleet
    with (
        SyncEcsSafeClient(**ecs_env.client_kwargs()) as first,
        SyncEcsSafeClient(**ecs_env.client_kwargs()) as second,
    ):
        assert len(loop_threads()) == 2
        first.deregister_container_instance(idle, cluster=CLUSTER)
        second.deregister_container_instance(spare, cluster=CLUSTER)
        # The first client sees what the second did (ECS: INACTIVE once deregistered).
        [gone] = first.describe_container_instances([spare], cluster=CLUSTER)
        assert gone.status == "INACTIVE"
    assert not loop_threads()


def test_one_client_shared_by_threads(ecs: SyncEcsSafeClient, fleet: tuple[str, str, str]) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(
                lambda arn: ecs.describe_container_instances([arn], cluster=CLUSTER), fleet * 4
            )
        )
    assert [r[0].container_instance_arn for r in results] == list(fleet * 4)


# --------------------------------------------------------------------------- errors


def _raised_in_client_py(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).name == "client.py":
            return True
        tb = tb.tb_next
    return False


def test_errors_keep_their_type_and_identity(
    ecs: SyncEcsSafeClient, fleet: tuple[str, str, str]
) -> None:
    busy, _, _ = fleet
    with pytest.raises(PolicyViolationError) as refused:
        ecs.deregister_container_instance(busy, cluster=CLUSTER)
    assert refused.value.container_instance is not None
    assert refused.value.container_instance.running_tasks_count == 2
    # The very object raised on the loop: its traceback still runs through the async client.
    assert _raised_in_client_py(refused.value)

    with pytest.raises(InvalidInputError):
        ecs.deregister_container_instance("", cluster=CLUSTER)
    with pytest.raises(ContainerInstanceNotFoundError) as missing:
        ecs.describe_container_instances([GHOST], cluster=CLUSTER)
    assert missing.value.container_instances == [GHOST]
    # An error leaves the client usable.
    assert ecs.describe_container_instances([busy], cluster=CLUSTER)


def test_bad_constructor_arguments_raise_and_leave_no_thread() -> None:
    with pytest.raises(InvalidInputError, match="endpoint_url"):
        SyncEcsSafeClient(endpoint_url="ftp://nowhere")
    with pytest.raises(InvalidInputError, match="connect_timeout"):
        SyncEcsSafeClient(region_name="us-east-1", connect_timeout=-1)
    assert not loop_threads()


# --------------------------------------------------------------------------- lifetime


def test_close_is_idempotent_and_use_after_close_raises(ecs_env: LocalEcs) -> None:
    ecs = SyncEcsSafeClient(**ecs_env.client_kwargs())
    assert len(loop_threads()) == 1
    assert not ecs.closed
    ecs.close()
    ecs.close()
    assert ecs.closed
    assert not loop_threads()
    with pytest.raises(ClientStateError, match="closed"):
        ecs.describe_container_instances([GHOST])
    with pytest.raises(ClientStateError, match="closed"):
        ecs.deregister_container_instance(GHOST, dry_run=True)
    with pytest.raises(ClientStateError), ecs:
        pass


def test_the_with_block_closes(ecs_env: LocalEcs) -> None:
    with SyncEcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        assert len(loop_threads()) == 1
    assert ecs.closed
    assert not loop_threads()


def test_no_leak_across_open_close_cycles(ecs_env: LocalEcs, fleet: tuple[str, str, str]) -> None:
    fd_dir = Path("/proc/self/fd")
    fds_before = len(list(fd_dir.iterdir())) if fd_dir.exists() else 0
    threads_before = set(threading.enumerate())
    loops_before = open_loops()
    for _ in range(20):
        with SyncEcsSafeClient(**ecs_env.client_kwargs()) as ecs:
            ecs.describe_container_instances([fleet[1]], cluster=CLUSTER)
    gc.collect()
    # Threads of other tests may end meanwhile; none may be added, except the local server's
    # per-connection threads, which werkzeug ends on its own schedule.
    added = set(threading.enumerate()) - threads_before
    assert [t for t in added if "process_request" not in t.name] == []
    assert not loop_threads()
    assert open_loops() == loops_before
    if fd_dir.exists():
        # A leaked loop costs three descriptors (selector and self-pipe), a connection one.
        assert len(list(fd_dir.iterdir())) <= fds_before + 2
    # No bound on the time taken: a close that ran into its shutdown timeout would leave its
    # thread alive, its loop open or its connection unclosed, and the checks above see those.


def test_a_forgotten_client_is_closed_when_collected(ecs_env: LocalEcs) -> None:
    ecs = SyncEcsSafeClient(**ecs_env.client_kwargs())
    assert len(loop_threads()) == 1
    del ecs
    gc.collect()
    assert not loop_threads()


def test_a_forgotten_client_does_not_hang_interpreter_exit() -> None:
    script = textwrap.dedent(
        """
        from aiobotocore.session import AioSession
        from ecs_safe import SyncEcsSafeClient

        session = AioSession()
        session.set_credentials("testing", "testing")
        client = SyncEcsSafeClient(
            endpoint_url="http://127.0.0.1:9", region_name="us-east-1", session=session
        )
        print("open", flush=True)
        """
    )
    # Exiting on its own is the point; the timeout only turns a hang into a failure, and is
    # far above what a loaded machine needs to start Python and import aiobotocore.
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "open\n"
    assert proc.stderr == ""  # no "Unclosed client session", no traceback at exit


# --------------------------------------------------------------------------- Ctrl-C


@needs_sigint
def test_ctrl_c_cancels_the_call_and_waits_for_it_to_unwind(ecs: SyncEcsSafeClient) -> None:
    started = threading.Event()
    never = threading.Event()
    order: list[str] = []

    async def slow() -> None:
        started.set()
        try:
            # Ends only by cancellation: nothing ever sets the event.
            await asyncio.to_thread(never.wait)
        finally:
            order.append("unwound")

    interrupt_main_thread_when(started)
    try:
        with pytest.raises(KeyboardInterrupt):
            ecs._run(slow)
        order.append("KeyboardInterrupt")
    finally:
        never.set()  # ends the worker thread the cancelled call left waiting
    # Re-raised only after the coroutine was cancelled and had unwound, however long that took.
    assert order == ["unwound", "KeyboardInterrupt"]
    assert not ecs.closed


@needs_sigint
def test_ctrl_c_on_a_wedged_loop_gives_up_after_the_grace(
    ecs: SyncEcsSafeClient, fleet: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop thread is blocked (as by a progress callback that never returns), so the
    # cancelled call cannot unwind until the test releases it: the ordering below holds
    # however fast or slow the machine is. No grace, so the test does not wait it out.
    monkeypatch.setattr(sync_module, "_CANCEL_GRACE_S", 0.0)
    started = threading.Event()
    release = threading.Event()
    unwound = threading.Event()

    async def wedged() -> None:
        started.set()
        try:
            release.wait()  # blocks the loop itself, not only this coroutine
            await asyncio.sleep(0)  # where the pending cancellation lands
        finally:
            unwound.set()

    interrupt_main_thread_when(started)
    try:
        with pytest.raises(KeyboardInterrupt):
            ecs._run(wedged)
        # Given up on: re-raised while the call was still stuck.
        assert not unwound.is_set()
    finally:
        release.set()
    # Released, the abandoned call is cancelled after all, and the client works on.
    assert unwound.wait(120)
    (instance,) = ecs.describe_container_instances([fleet[1]], cluster=CLUSTER)
    assert instance.status == "ACTIVE"


@needs_sigint
def test_ctrl_c_during_a_deregistration_stops_it_before_the_mutating_call(
    ecs: SyncEcsSafeClient,
    ecs_env: LocalEcs,
    fleet: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, idle, _ = fleet
    in_describe = threading.Event()
    release = threading.Event()
    call_ended = threading.Event()
    original = EC2ContainerServiceBackend.describe_container_instances
    original_call = EcsSafeClient.deregister_container_instance

    def held_describe(self: EC2ContainerServiceBackend, *args: Any, **kwargs: Any) -> Any:
        # Holds the pre-flight describe's response, so that Ctrl-C lands mid-request.
        in_describe.set()
        release.wait(120)
        return original(self, *args, **kwargs)

    async def tracked_call(self: EcsSafeClient, *args: Any, **kwargs: Any) -> Any:
        # Tells when the async call is over: after that it can send nothing more.
        try:
            return await original_call(self, *args, **kwargs)
        finally:
            call_ended.set()

    monkeypatch.setattr(EC2ContainerServiceBackend, "describe_container_instances", held_describe)
    monkeypatch.setattr(EcsSafeClient, "deregister_container_instance", tracked_call)
    ecs_env.reset_calls()
    interrupt_main_thread_when(in_describe)
    try:
        with pytest.raises(KeyboardInterrupt):
            ecs.deregister_container_instance(idle, cluster=CLUSTER)
        # The call had ended (cancelled) before Ctrl-C reached us...
        assert call_ended.is_set()
    finally:
        release.set()
        monkeypatch.undo()
    # ... so no deregistration can follow the released describe.
    assert ecs_env.calls("DeregisterContainerInstance") == 0
    # The client survives the interruption, and the instance is untouched.
    (instance,) = ecs.describe_container_instances([idle], cluster=CLUSTER)
    assert instance.status == "ACTIVE"


def test_calls_are_not_serialised_across_threads(
    ecs: SyncEcsSafeClient, fleet: tuple[str, str, str]
) -> None:
    gate = threading.Event()

    async def wait_for_gate() -> str:
        # The bound only frees the thread of a broken test; the gate is set below.
        await asyncio.to_thread(gate.wait, 120)
        return "released"

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(ecs._run, wait_for_gate)
        # Another thread's call completes while the first is still in flight.
        assert ecs.describe_container_instances([fleet[0]], cluster=CLUSTER)
        assert not waiting.done()
        gate.set()
        assert waiting.result(timeout=120) == "released"
