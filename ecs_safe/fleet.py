"""`EcsSafeClient.deregister_many`: the checks of one deregistration, for a whole fleet.

A run goes in phases, so that what can be batched is batched across the whole fleet:

1. Check every input on its own: a bad one becomes its own ``"failed"`` outcome with an
   `InvalidInputError`, and the others go on. EC2 and managed instance IDs are resolved in
   the cluster together (`ecs_safe._targets.resolve`, a few listings for the whole fleet); one
   not registered there is a ``"failed"`` outcome with `ContainerInstanceNotFoundError` naming
   it. An instance given several times (say as ID, ARN and EC2 ID) is processed once; every
   position that names it gets the same outcome.
2. Describe every instance, 100 per DescribeContainerInstances call across the fleet (not one
   call per instance). A describe that fails fails its instances with its typed error (a
   pre-flight that could not be done is not a refusal), and nothing is done to them. A real
   run without ``drain`` is pipelined: its smallest batch is described first, so that
   deregistrations start after the shortest round trip, and each later batch is described
   while the earlier ones are being deregistered.
3. Per instance, at most ``concurrency`` at a time: the policy check and DeregisterContainer-
   Instance, through the same decision gate (`ecs_safe._gate.Gate`) as
   `EcsSafeClient.deregister_container_instance`. With ``drain``: the
   drain pre-flight of every instance, then, at most ``concurrency`` instances at a time,
   DRAINING, the wait and the deregistration (`ecs_safe.drain`). With ``dry_run``: the full
   plan (what would be deregistered, what would be refused and why, the tasks each would
   affect) and not a single mutating call. Tasks are listed only where `Gate.wants_tasks`
   says (a rule asks, or a plan's counters show tasks, or a forced plan); when several
   instances of a describe batch need them, one cluster-wide listing serves the batch where
   that is cheaper (`Gate.tasks_of_many`).

Every call goes through the client's rate limiter, so a run of a thousand instances paces
itself to ECS's token buckets instead of provoking throttling. No failure of one instance stops
the others: every error becomes that instance's outcome, an unexpected exception wrapped in an
`EcsSafeError` (with the original as ``__cause__``), so ``outcome.error`` is always typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ecs_safe import _constants, _events, _targets, ownership
from ecs_safe._calls import not_found_error
from ecs_safe._gate import Request
from ecs_safe._progress import ProgressCallback, report
from ecs_safe._validation import (
    check_same_cluster,
    classify,
    instance_id_of,
    validate_container_instance,
)
from ecs_safe.drain import DrainOptions, DrainPlan, DrainRun, judge_wave, prepare
from ecs_safe.errors import (
    EcsApiError,
    EcsSafeError,
    InvalidInputError,
    PolicyViolationError,
    TerminationError,
)
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.policy import Termination
from ecs_safe.results import BatchResult, DeregistrationResult, InstanceOutcome, OutcomeStatus
from ecs_safe.steady import SteadyGate

if TYPE_CHECKING:
    from ecs_safe._gate import Gate
    from ecs_safe._poller import Poller
    from ecs_safe.termination import Terminator

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DESCRIBE_BATCH",
    "FleetSettings",
    "check_concurrency",
    "deregister_many",
]

# The values live in `ecs_safe._constants`; these names are kept for existing callers.
#: Instances processed at once by default.
DEFAULT_CONCURRENCY: Final = _constants.DEFAULT_CONCURRENCY
#: DescribeContainerInstances takes at most 100 instances a call.
DESCRIBE_BATCH: Final = _constants.DESCRIBE_INSTANCES_BATCH

_T = TypeVar("_T")


def check_concurrency(value: Any) -> int:
    """Require an ``int`` >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(
            f"concurrency must be an int >= 1, got {value!r}; pass 1 to go one at a time"
        )
    return value


def _as_given(item: object) -> str:
    # A model is named by its ARN (what it identifies), anything else as given.
    if isinstance(item, ContainerInstance) and item.container_instance_arn:
        return item.container_instance_arn
    return item if isinstance(item, str) else repr(item)


def _unexpected(exc: Exception, ref: str) -> EcsSafeError:
    error = EcsSafeError(
        f"unexpected {type(exc).__name__} while processing container instance {ref}: {exc}"
    )
    error.__cause__ = exc
    return error


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """The validated call-level arguments of one `deregister_many` run.

    Attributes:
        cluster: the cluster, as given.
        force: deregister with force (with ``drain``: force what is left at the deadline).
        drain: drain each instance first.
        dry_run: plan only; no mutating call.
        concurrency: instances worked on at once.
        drain_options: timeout, polling and standalone-task handling of each drain.
        progress: the caller's progress callback, if any.
        steady_timeout: seconds the steady-state gate waits before each new drain
            (`ecs_safe.steady`); with ``drain`` only.
        steady: a gate shared with the caller's other runs (a rolling replacement's waves,
            `ecs_safe.replace`) instead of one made for this run; its own timeout applies.
        terminator: with ``terminate=True``: surveys each instance's termination in the
            pre-flight (batched across the fleet) and terminates each EC2 instance once its
            own deregistration is verified (`ecs_safe.termination`).
    """

    cluster: str | None
    force: bool
    drain: bool
    dry_run: bool
    concurrency: int
    drain_options: DrainOptions
    progress: ProgressCallback | None
    steady_timeout: float = _constants.DEFAULT_STEADY_TIMEOUT
    steady: SteadyGate | None = None
    terminator: Terminator | None = None


class _FleetRun:
    """One `deregister_many` call: its inputs, its outcomes so far, and its phases."""

    def __init__(
        self, gate: Gate, items: list[object], settings: FleetSettings, poller: Poller
    ) -> None:
        self.gate = gate
        # The client's drain poller: every instance of the run is looked at in its rounds.
        self.poller = poller
        self.items = items
        self.cluster = settings.cluster
        self.force = settings.force
        self.drain = settings.drain
        self.dry_run = settings.dry_run
        self.options = settings.drain_options
        self.progress = settings.progress
        self.steady_timeout = settings.steady_timeout
        self.shared_steady = settings.steady
        self.terminator = settings.terminator
        # Each instance's termination (with ``terminate=True``), from the batched survey.
        self.terminations: dict[int, Termination] = {}
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.outcomes: list[InstanceOutcome | None] = [None] * len(items)
        self.done = 0
        # The first position of each distinct instance, with its reference ...
        self.refs: dict[int, str] = {}
        # ... and the later positions that name the same instance.
        self.repeats: dict[int, list[int]] = {}

    async def run(self) -> BatchResult:
        await self._check_inputs()
        if self.drain:
            # Every drain pre-flight comes before any instance is touched.
            await self._drain_all(await self._describe_all())
        elif self.dry_run:
            # A plan mutates nothing: its describes (the fewest, 100 a call) go out together.
            await asyncio.gather(*(self._describe_then_deregister(c) for c in self._batches()))
        else:
            await self._pipeline(self._pipeline_batches())
        outcomes = [o for o in self.outcomes if o is not None]
        assert len(outcomes) == len(self.items), "every input gets exactly one outcome"
        result = BatchResult(outcomes=outcomes)
        _events.logger.info(
            "ecs_safe.batch.finished",
            cluster=self.cluster,
            total=len(outcomes),
            succeeded=len(result.succeeded),
            refused=len(result.refused),
            failed=len(result.failed),
            dry_run=self.dry_run,
        )
        return result

    # -- outcomes ---------------------------------------------------------------------------

    async def _finish(
        self,
        index: int,
        status: OutcomeStatus,
        *,
        result: DeregistrationResult | None = None,
        error: EcsSafeError | None = None,
    ) -> None:
        for position in (index, *self.repeats.get(index, ())):
            self.outcomes[position] = InstanceOutcome(
                container_instance=_as_given(self.items[position]),
                status=status,
                result=result,
                error=error,
            )
            self.done += 1
            await report(
                self.progress,
                "ecs_safe.batch.progress",
                level="debug",
                container_instance=_as_given(self.items[position]),
                index=position,
                status=status,
                error_code=error.code if error is not None else None,
                done=self.done,
                total=len(self.items),
            )

    async def _fail(self, index: int, error: EcsSafeError) -> None:
        refused = isinstance(error, PolicyViolationError)
        # Deregistered, not terminated: failed, and the outcome keeps the deregistration.
        done = error.result if isinstance(error, TerminationError) else None
        await self._finish(index, "refused" if refused else "failed", result=done, error=error)

    async def _succeed(self, index: int, result: DeregistrationResult) -> None:
        status: OutcomeStatus = "would_deregister" if result.dry_run else "deregistered"
        await self._finish(index, status, result=result)

    async def _attempt(self, index: int, work: Callable[[], Awaitable[_T]]) -> _T | None:
        """Run one instance's step within the concurrency bound; its error is its outcome."""
        ref = self.refs[index]
        try:
            async with self.slots:
                return await work()
        except EcsSafeError as exc:
            await self._fail(index, exc)
        except Exception as exc:  # one instance's bug must not sink the fleet
            error = _unexpected(exc, ref)
            _events.log_failed(error, cluster=self.cluster, container_instance=ref)
            await self._fail(index, error)
        return None

    # -- phases -----------------------------------------------------------------------------

    async def _check_inputs(self) -> None:
        valid: dict[int, str] = {}
        for index, item in enumerate(self.items):
            try:
                ref = validate_container_instance(item, argument=f"container_instances[{index}]")
                check_same_cluster(ref, self.cluster)
                self.gate.calls.check_scope(ref)
            except InvalidInputError as exc:
                await self._reject(index, exc)
                continue
            valid[index] = ref
        resolved = await self._resolve(valid)
        first: dict[str, int] = {}
        for index, ref_or_error in resolved.items():
            if isinstance(ref_or_error, EcsSafeError):
                await self._reject(index, ref_or_error)
                continue
            key = instance_id_of(ref_or_error)
            if key in first:
                self.repeats.setdefault(first[key], []).append(index)
            else:
                first[key] = index
                self.refs[index] = ref_or_error

    async def _reject(self, index: int, error: EcsSafeError) -> None:
        """An input that names no instance: its own ``failed`` outcome, logged."""
        given = _as_given(self.items[index])
        _events.log_failed(error, cluster=self.cluster, container_instance=given)
        await self._finish(index, "failed", error=error)

    async def _resolve(self, refs: dict[int, str]) -> dict[int, str | EcsSafeError]:
        """Each valid input's container instance, in one batched resolution for the fleet.

        EC2 and managed instance IDs are looked up together (a handful of listings for a
        thousand); an unregistered one fails with `ContainerInstanceNotFoundError` naming it.
        A lookup that fails (after retries) fails the inputs that needed it, with its typed
        error; IDs and ARNs need no lookup and go on.
        """
        out: dict[int, str | EcsSafeError] = dict(refs)
        lookups = {i: ref for i, ref in refs.items() if classify(ref).needs_lookup}
        if not lookups:
            return out
        try:
            resolution = await _targets.resolve(
                self.gate.calls, lookups.values(), cluster=self.cluster
            )
        except EcsSafeError as exc:
            out.update(dict.fromkeys(lookups, exc))
            return out
        for index, item in zip(lookups, resolution.items, strict=True):
            if item.ref is None:
                out[index] = item.error or EcsSafeError(f"{item.given} names no instance")
                continue
            try:
                self.gate.calls.check_scope(item.ref)
            except InvalidInputError as exc:
                out[index] = exc
                continue
            out[index] = item.ref
        return out

    def _batches(self) -> list[list[int]]:
        """The distinct instances' positions, in the call layer's describe batches."""
        index_of = {instance_id_of(ref): index for index, ref in self.refs.items()}
        batches = self.gate.calls.describe_batches(self.refs.values())
        return [[index_of[instance_id_of(ref)] for ref in batch] for batch in batches]

    def _pipeline_batches(self) -> list[list[int]]:
        """A real run's describe batches (100 a call, no more calls), the smallest first.

        The deregistrations wait for their describe, and ECS's modify bucket starts full:
        while the first describe is out, the burst goes unspent. The partial batch (say the
        50 of 250 instances) is the quickest to describe and to parse, so it goes first and
        the deregistrations start one short round trip in; the others are described while
        those go on.
        """
        return sorted(self._batches(), key=len)

    async def _pipeline(self, batches: list[list[int]]) -> None:
        """Describe the batches one after another; each one's deregistrations start at once.

        One describe in flight at a time, and it takes its turn for a slot behind the batch
        before: the next batch is described just as the last of those deregistrations gets
        going, while they go on, and never ahead of the deregistrations it would delay (a
        describe of 100 is the slowest call of the run, for ECS to answer and for the client
        to parse).
        """
        async with asyncio.TaskGroup() as group:
            for chunk in batches:
                snapshots = await self._survey(await self._describe(chunk))
                lists = await self._task_lists(snapshots)
                for index, snapshot in snapshots.items():
                    if index in lists:
                        group.create_task(self._deregister(index, snapshot, lists[index]))
                # One turn of the loop: the batch's deregistrations take their slots (and
                # send) before the next describe asks for one, so it queues behind them.
                await asyncio.sleep(0)

    def _request(self, index: int) -> Request:
        return Request(
            self.refs[index],
            self.cluster,
            force=self.force,
            dry_run=self.dry_run,
            termination=self.terminations.get(index),
        )

    async def _survey(
        self, snapshots: dict[int, ContainerInstance]
    ) -> dict[int, ContainerInstance]:
        """Survey the terminations of ``snapshots`` (``terminate=True``), batched.

        Returns the instances that go on; a failed survey fails its instances' outcomes with
        its typed error (a pre-flight that could not be done), and nothing is done to them.
        """
        if self.terminator is None or not snapshots:
            return snapshots
        try:
            async with self.slots:
                found = await self.terminator.survey(
                    {self.refs[i]: s for i, s in snapshots.items()}
                )
        except EcsApiError as exc:
            for i in snapshots:
                await self._fail(i, self.gate.preflight_failed(self._request(i), exc))
            return {}
        self.terminations.update({i: found[self.refs[i]] for i in snapshots})
        return snapshots

    async def _describe_all(self) -> dict[int, ContainerInstance]:
        snapshots: dict[int, ContainerInstance] = {}
        for chunk in await asyncio.gather(*(self._describe(c) for c in self._batches())):
            snapshots.update(chunk)
        return await self._survey(snapshots)

    async def _describe_then_deregister(self, chunk: list[int]) -> None:
        snapshots = await self._survey(await self._describe(chunk))
        lists = await self._task_lists(snapshots)
        await asyncio.gather(
            *(self._deregister(i, s, lists.get(i)) for i, s in snapshots.items() if i in lists)
        )

    async def _task_lists(
        self, snapshots: dict[int, ContainerInstance], *, every: bool = False
    ) -> dict[int, list[Task] | None]:
        """The task lists one describe batch needs, in one cluster-wide listing where cheaper.

        Keyed by every instance that goes on: ``None`` for an instance whose list is not
        fetched here (not needed, or listed on its own by the gate within its deregistration
        or drain pre-flight); an instance whose listing failed is a ``"failed"`` outcome and
        is left out. ``every``: a drain needs every instance's list, whatever the counters say.
        """
        gate = self.gate
        out: dict[int, list[Task] | None] = dict.fromkeys(snapshots)
        requests = {i: (self._request(i), s) for i, s in snapshots.items()}
        wanted = {i: p for i, p in requests.items() if every or gate.wants_tasks(*p)}
        if not wanted:
            return out
        try:
            async with self.slots:
                found = await gate.tasks_of_many(self.cluster, list(wanted.values()))
        except EcsApiError as exc:
            for i in wanted:
                del out[i]
                await self._fail(i, exc)
            return out
        if found is not None:
            out.update({i: found[instance_id_of(self.refs[i])] for i in wanted})
        return out

    async def _describe(self, chunk: list[int]) -> dict[int, ContainerInstance]:
        """Describe one batch (one call, within the concurrency bound); failures are outcomes."""
        cluster = self.cluster
        refs = [self.refs[i] for i in chunk]
        try:
            async with self.slots:
                answers = await self.gate.calls.describe_instances(refs, cluster)
        except EcsApiError as exc:
            for i in chunk:
                await self._fail(i, self.gate.preflight_failed(self._request(i), exc))
            return {}
        except Exception as exc:  # a bug must fail this batch's outcomes, not the run
            for i in chunk:
                await self._fail(i, _unexpected(exc, self.refs[i]))
            return {}
        snapshots: dict[int, ContainerInstance] = {}
        for i in chunk:
            ref = self.refs[i]
            instance = answers.found.get(instance_id_of(ref))
            error: EcsSafeError | None
            if instance is not None:
                error = self.gate.calls.foreign(ref, instance)
                if error is None:
                    snapshots[i] = instance
                    continue
            else:
                error = not_found_error([ref], answers.missing, cluster)
            _events.log_failed(error, cluster=cluster, container_instance=ref)
            await self._fail(i, error)
        return snapshots

    async def _deregister(
        self, index: int, snapshot: ContainerInstance, tasks: list[Task] | None
    ) -> None:
        gate, request = self.gate, self._request(index)

        async def work() -> DeregistrationResult:
            # Without ``tasks`` the gate lists them itself where a rule or the plan needs them
            # (`Gate.wants_tasks`): an idle fleet's plan costs its describes only.
            result = await gate.deregister(request, snapshot, tasks=tasks)
            if self.terminator is None:
                return result
            # Each instance is terminated after its own verified deregistration, within its
            # slot: the others' deregistrations and terminations go on concurrently.
            return await self.terminator.finish(gate.calls, request, result)

        result = await self._attempt(index, work)
        if result is not None:
            await self._succeed(index, result)

    async def _drain_all(self, snapshots: dict[int, ContainerInstance]) -> None:
        gate, cluster = self.gate, self.cluster
        plans: dict[int, DrainPlan] = {}
        # Who else drains what, surveyed once for the whole fleet (batched lookups).
        drainers = await ownership.survey(
            gate.calls,
            {self.refs[i]: s for i, s in snapshots.items()},
            cluster,
            plan=self.dry_run,
        )
        # Every drain's pre-flight needs its instance's tasks: one cluster-wide listing for
        # the fleet where cheaper than a listing per instance (what a thousand cost is 3,000
        # reads, two and a half minutes of ECS's read bucket).
        lists = await self._task_lists(snapshots, every=True)

        # Surveyed with the describes (`_describe_all`): no drain surveys on its own.
        terminations = {self.refs[i]: t for i, t in self.terminations.items()}

        async def plan_one(index: int, snapshot: ContainerInstance) -> None:
            plan = await self._attempt(
                index,
                lambda: prepare(
                    gate,
                    self.refs[index],
                    cluster,
                    standalone_tasks=self.options.standalone_tasks,
                    dry_run=self.dry_run,
                    snapshot=snapshot,
                    take_over=self.options.take_over,
                    drainers=drainers,
                    terminator=self.terminator,
                    terminations=terminations,
                    tasks=lists[index],
                ),
            )
            if plan is not None:
                plans[index] = plan

        await asyncio.gather(*(plan_one(i, s) for i, s in snapshots.items() if i in lists))
        # The whole run is one wave for room and budgets: every instance of it drains.
        order = sorted(plans)
        judged = await judge_wave(
            gate, [plans[i] for i in order], self.options, dry_run=self.dry_run
        )
        for index, verdict in zip(order, judged, strict=True):
            if isinstance(verdict, EcsSafeError):
                del plans[index]
                await self._fail(index, verdict)
            else:
                plans[index] = verdict
        if self.dry_run:
            for index, plan in sorted(plans.items()):
                request = replace(plan.request(), dry_run=True)
                planned = gate.plan(request, plan.snapshot, plan.decision, plan.tasks)
                await self._succeed(index, plan.noted(planned))
            return

        # Tracks every drain, so that a cancelled run says what it left DRAINING.
        run = DrainRun(cluster, pending=[plan.label for _, plan in sorted(plans.items())])
        # Each drain starts only once the services earlier drains took tasks from are
        # steady again (`ecs_safe.steady`); once its deadline passes, no new drain starts.
        steady = self.shared_steady or SteadyGate(
            gate.calls,
            cluster,
            timeout=self.steady_timeout,
            poll_interval=self.options.poll_interval,
            progress=self.progress,
        )
        if not steady.survey_each:
            await steady.begin(task for plan in plans.values() for task in plan.tasks)

        async def start(plan: DrainPlan) -> DeregistrationResult:
            await steady.admit(plan.label, plan.tasks)
            return await run.drain(
                gate, self.poller, plan, self.options, self.progress, terminator=self.terminator
            )

        async def roll(index: int, plan: DrainPlan) -> None:
            # The slot is held from DRAINING to deregistration: `concurrency` bounds how many
            # instances are draining at once, so a fleet roll never drains the whole cluster
            # (and its capacity) in one go. Drains that start together share their DRAINING
            # calls (10 a call, `DrainRun.drain`), and every wait shares the poller's rounds.
            # `DrainRun.drain` logs ecs_safe.drain.failed when DRAINING could not be set.
            result = await self._attempt(index, lambda: start(plan))
            if result is not None:
                await self._succeed(index, result)

        try:
            await asyncio.gather(*(roll(i, p) for i, p in sorted(plans.items())))
        except asyncio.CancelledError:
            run.interrupted()
            raise


async def deregister_many(
    gate: Gate, container_instances: Iterable[object], settings: FleetSettings, poller: Poller
) -> BatchResult:
    """`EcsSafeClient.deregister_many` with validated settings; checks the list itself."""
    if isinstance(container_instances, str | bytes) or not isinstance(
        container_instances, Iterable
    ):
        raise InvalidInputError(
            "container_instances must be a list of container instance IDs or ARNs (or EC2 "
            "instance IDs, managed instance IDs, ContainerInstance models), got "
            f"{type(container_instances).__name__}; for one instance pass [instance]"
        )
    items = list(container_instances)
    if not items:
        raise InvalidInputError("container_instances must not be empty")
    return await _FleetRun(gate, items, settings, poller).run()
