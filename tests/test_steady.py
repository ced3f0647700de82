"""The steady-state gate of a rolling drain, against LocalEcs's service scheduler.

The scheduler moves the services' tasks as ECS would and records every start and stop; the
assertions replay that record. Tests wait on the run's own events, never on timers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from drain_support import client

from ecs_safe import DrainTimeoutError
from ecs_safe.local import LocalEcs
from ecs_safe.local.scheduler import TaskEvent
from ecs_safe.steady import NotStartedError

CLUSTER = "steady"
SERVICES = {"web": 10, "api": 8, "worker": 6}


@pytest.fixture
def env(ecs_env: LocalEcs) -> Iterator[LocalEcs]:
    ecs_env.create_cluster(CLUSTER)
    yield ecs_env
    ecs_env.scheduler.stop()


def _ecs(env: LocalEcs) -> Any:
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client("ecs", endpoint_url=env.endpoint_url, region_name=env.region_name)


def _seed(env: LocalEcs, old: int, spare: int) -> list[str]:
    """``old`` hosts running the services (settled), then ``spare`` empty hosts; the old ARNs."""
    hosts = env.register_instances(CLUSTER, old)
    for name, desired in SERVICES.items():
        env.create_service(CLUSTER, name, desired_count=desired, scheduler=True)
    env.scheduler.run_until_settled()
    env.register_instances(CLUSTER, spare)
    return hosts


@dataclass
class Admissions:
    """When the gate let each drain start (the progress callback's own clock)."""

    at: dict[str, datetime] = field(default_factory=dict)
    events: list[Mapping[str, Any]] = field(default_factory=list)

    def __call__(self, event: Mapping[str, Any]) -> None:
        self.events.append(event)
        if event["event"] == "ecs_safe.steady.admitted":
            self.at[str(event["container_instance"])] = datetime.now(UTC)


def _live(record: list[TaskEvent], until: datetime) -> dict[str, dict[str, tuple[str, str]]]:
    """Per service, each live task: (host ID, status), from the events before ``until``."""
    live: dict[str, dict[str, tuple[str, str]]] = {}
    for event in record:
        if event.at >= until:
            break
        tasks = live.setdefault(event.service, {})
        host = event.container_instance_arn.rsplit("/", 1)[-1]
        if event.kind == "stopped":
            tasks.pop(event.task_arn, None)
        else:
            tasks[event.task_arn] = (host, "RUNNING" if event.kind == "running" else "PENDING")
    return live


async def test_a_rolling_drain_never_drains_a_host_whose_services_are_not_steady(
    env: LocalEcs,
) -> None:
    old = _seed(env, old=20, spare=10)
    env.scheduler.start(interval=0.02)
    admissions = Admissions()
    async with client(env) as ecs:
        batch = await ecs.deregister_many(
            old,
            cluster=CLUSTER,
            drain=True,
            concurrency=4,
            timeout=120.0,
            poll_interval=0.05,
            steady_timeout=120.0,
            progress=admissions,
        )
    env.scheduler.stop()
    assert batch.ok, [str(o.error) for o in batch.outcomes if o.error]
    assert len(admissions.at) == 20
    record = env.scheduler.record
    order = sorted(admissions.at, key=admissions.at.__getitem__)
    waited = 0
    touched: set[str] = set()
    for position, label in enumerate(order):
        earlier = {h.rsplit("/", 1)[-1] for h in order[:position]}
        live = _live(record, admissions.at[label])
        for service in touched:
            tasks = live[service].values()
            # Steady at the moment this host's drain was let start: desired tasks, all
            # RUNNING, none left on a host the run had already started draining.
            assert len(tasks) == SERVICES[service], (label, service, tasks)
            assert all(status == "RUNNING" for _, status in tasks), (label, service)
            assert not any(host in earlier for host, _ in tasks), (label, service)
        waited += bool(touched)
        # What this host's drain takes tasks from: what ran on it when it was let start.
        host = label.rsplit("/", 1)[-1]
        touched |= {svc for svc, tasks in live.items() if any(h == host for h, _ in tasks.values())}
    assert waited >= 19  # every drain but the first had services to wait for
    assert any(e["event"] == "ecs_safe.steady.waiting" for e in admissions.events)
    # The scheduler agrees: every service is steady at the end, on the spare hosts.
    for service in SERVICES:
        assert env.scheduler.is_steady(CLUSTER, service)


async def test_when_the_gate_deadline_passes_no_new_drain_starts(env: LocalEcs) -> None:
    old = _seed(env, old=3, spare=2)
    # web's replacements never reach RUNNING: it never becomes steady again.
    env.scheduler.fail_starts(CLUSTER, "web", times=None, how="PENDING")
    env.scheduler.start(interval=0.02)
    admissions = Admissions()
    env.reset_calls()
    async with client(env) as ecs:
        batch = await ecs.deregister_many(
            old,
            cluster=CLUSTER,
            drain=True,
            concurrency=3,
            timeout=1.0,
            poll_interval=0.05,
            steady_timeout=0.3,
            progress=admissions,
        )
    env.scheduler.stop()
    assert [o.status for o in batch.outcomes] == ["failed"] * 3
    not_started = [o for o in batch.outcomes if isinstance(o.error, NotStartedError)]
    assert len(not_started) == 2
    for outcome in not_started:
        error = outcome.error
        assert isinstance(error, NotStartedError)
        assert "was never set DRAINING" in str(error)
        assert "steady_timeout=0.3s" in str(error)
        assert "web" in [s.name for s in error.services]
    started = next(o for o in batch.outcomes if not isinstance(o.error, NotStartedError))
    assert isinstance(started.error, DrainTimeoutError)  # web's task never left it
    # Only the first host was ever set DRAINING; the others are untouched and unmarked.
    assert env.calls("UpdateContainerInstancesState") == 1
    described = _ecs(env).describe_container_instances(
        cluster=CLUSTER, containerInstances=[o.container_instance for o in not_started]
    )["containerInstances"]
    assert {i["status"] for i in described} == {"ACTIVE"}
    assert any(e["event"] == "ecs_safe.steady.expired" for e in admissions.events)


async def test_steady_timeout_is_validated_before_any_call(env: LocalEcs) -> None:
    [host] = env.register_instances(CLUSTER, 1)
    env.reset_calls()
    async with client(env) as ecs:
        with pytest.raises(ValueError, match="steady_timeout"):
            await ecs.deregister_many([host], cluster=CLUSTER, drain=True, steady_timeout=0)
    assert env.call_log == []
