"""What every benchmark shares: interleaved timing, medians, results, and the two clients.

The machines these run on are shared and noisy, so a benchmark never trusts an absolute time:
it runs ecs-safe and its baseline in the same process, against the same endpoint, one after
the other in alternating order (A B, B A, A B, ...), and reports medians and their ratio.
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aiobotocore.config import AioConfig

from ecs_safe import EcsSafeClient, RateLimits
from ecs_safe._constants import MAX_POOL_CONNECTIONS
from ecs_safe.client import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT

if TYPE_CHECKING:
    from types_aiobotocore_ecs import ECSClient

    from ecs_safe.local import LocalEcs

__all__ = [
    "BENCH_CLUSTER",
    "Check",
    "Result",
    "baseline_client",
    "baseline_config",
    "ecs_safe_client",
    "frozen_heap",
    "interleaved",
    "log_to_devnull",
    "median",
    "ratio",
    "requests_made",
    "timed",
]

#: The cluster every benchmark seeds its instances into.
BENCH_CLUSTER = "bench"

# What `EcsSafeClient` sets on the aiobotocore client it creates (see ecs_safe/client.py).
_MAX_POOL_CONNECTIONS = MAX_POOL_CONNECTIONS


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, then freeze everything the process holds, for one timed run.

    LocalEcs serves from the benchmark's own process, so its moto state (thousands of
    instances and tasks, the clients of earlier rounds) would be traversed by every full
    collection the client under test sets off: a cost no client talking to ECS pays, and
    one that lands at random inside a run of a few seconds. Frozen objects are skipped by the
    collector (`gc.freeze`); what the run allocates, the client's own and the server's, is
    collected as usual. Every side of a comparison is timed inside it alike.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class Check:
    """One target of the issue: a measured value compared with its bound."""

    what: str
    value: float
    target: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class Result:
    """The report of one benchmark: its parameters, its measurements and its targets."""

    name: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "params": self.params,
            "metrics": self.metrics,
            "checks": [c.to_json() for c in self.checks],
            "notes": self.notes,
        }

    def render(self) -> str:
        lines = [f"== {self.title}"]
        if self.params:
            lines.append("   " + ", ".join(f"{k}={v}" for k, v in self.params.items()))
        width = max((len(k) for k in self.metrics), default=0)
        for key, value in self.metrics.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"   {key:<{width}}  {shown}")
        for check in self.checks:
            verdict = "met" if check.met else "NOT MET"
            lines.append(
                f"   target: {check.what} = {check.value:.3f}{check.unit} "
                f"(<= {check.target:g}{check.unit}): {verdict}"
            )
        lines.extend(f"   note: {note}" for note in self.notes)
        return "\n".join(lines)


class _Discard:
    """A file that drops what is written to it, without a system call."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        return None


def log_to_devnull() -> None:
    """Configure structlog as a production service would, and discard what it renders.

    ecs-safe logs an event per deregistration; rendering it (INFO level, ISO timestamps,
    JSON) is part of its cost, so the benchmarks pay it. The rendered line is dropped without
    a system call: LocalEcs runs in this process, and every system call hands the GIL to the
    server's threads, which would charge moto's time to whoever happened to log.
    """
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.WriteLoggerFactory(file=_Discard()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def median(values: Sequence[float]) -> float:
    """The median (the benchmarks' only summary of a time: robust to a noisy neighbour)."""
    return float(statistics.median(values))


def ratio(ours: Sequence[float], baseline: Sequence[float]) -> float:
    """median(ours) / median(baseline)."""
    return median(ours) / median(baseline)


async def interleaved(
    sides: Mapping[str, Callable[[int], Awaitable[float]]], rounds: int
) -> dict[str, list[float]]:
    """Run each side once per round, rotating which goes first; collect what each returns.

    Each side is called with the round number and returns the measurement it took (usually
    the seconds of its timed region, so that its own set-up stays untimed).
    """
    names = list(sides)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(await sides[name](round_))
    return samples


async def timed(call: Awaitable[object]) -> float:
    """Seconds ``call`` took to complete."""
    start = time.perf_counter()
    await call
    return time.perf_counter() - start


def baseline_config(*, botocore_retries: bool = False) -> AioConfig:
    """The aiobotocore config `EcsSafeClient` uses, for the plain-aiobotocore baselines.

    With ``botocore_retries=True`` botocore's own defaults (legacy mode, 5 attempts) are left
    on: what a naive script gets.
    """
    return AioConfig(
        retries=None if botocore_retries else {"total_max_attempts": 1},
        connect_timeout=DEFAULT_CONNECT_TIMEOUT,
        read_timeout=DEFAULT_READ_TIMEOUT,
        max_pool_connections=_MAX_POOL_CONNECTIONS,
    )


@asynccontextmanager
async def baseline_client(
    local: LocalEcs, *, endpoint_url: str | None = None, botocore_retries: bool = False
) -> AsyncIterator[ECSClient]:
    """A plain aiobotocore ECS client on ``local`` (or on a proxy in front of it)."""
    async with local.session().create_client(
        "ecs",
        region_name=local.region_name,
        endpoint_url=endpoint_url or local.endpoint_url,
        config=baseline_config(botocore_retries=botocore_retries),
    ) as client:
        yield client


@asynccontextmanager
async def ecs_safe_client(
    local: LocalEcs, *, rate_limits: RateLimits | None = None, endpoint_url: str | None = None
) -> AsyncIterator[EcsSafeClient]:
    """An `EcsSafeClient` on ``local`` (or on a proxy in front of it)."""
    kwargs = local.client_kwargs()
    if endpoint_url is not None:
        kwargs["endpoint_url"] = endpoint_url
    async with EcsSafeClient(**kwargs, rate_limits=rate_limits) as client:
        yield client


def requests_made(local: LocalEcs) -> int:
    """ECS requests ``local`` received since its counts were last reset (retries included)."""
    return len(local.call_log)
