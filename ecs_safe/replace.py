"""Rolling replacement of an Auto Scaling group (`EcsSafeClient.replace_auto_scaling_group`).

The safe version of ecsmec's ``replace-auto-scaling-group-instances`` and of an instance
refresh: every instance the group has when the run starts (its *old* instances) is drained,
deregistered and terminated, wave by wave, through the same drain workflow, policy, disruption
budgets and steady-state gate as ``deregister_many(drain=True)``; the group launches the new
ones. The steps:

1. **Read** the group (sizes, members) and the cluster's container instances. The members
   registered in the cluster are the old instances, in the group's order; a member that is not
   registered (an agent that never joined, another cluster) is never touched, and the result
   names it. The sizes are saved (the ``replace_started`` audit record) before anything
   changes.
2. **Surge** (``surge=True``): desired capacity is raised by one wave (and the maximum with it
   when needed), then the run waits until every new member is InService and registered ACTIVE
   in the cluster, up to ``capacity_timeout`` (`CapacityTimeoutError` names what is missing).
3. **Waves** of ``wave_size`` old instances (the remainder first, so the last wave is full):
   before each, the group must be back at capacity (every member that is not an old instance
   InService and ACTIVE in the cluster) and the services earlier waves took tasks from steady
   again (one `SteadyGate` for the whole run); then the wave is one `deregister_many` run:
   the pre-flight of each instance, the budgets judged on the wave as one, DRAINING, the wait,
   the deregistration, then TerminateInstanceInAutoScalingGroup of each instance once its
   deregistration is verified. With a surge, the last wave's terminations decrement the
   desired capacity, so the group is back to its saved size without Auto Scaling choosing an
   instance to scale in; without one, the group replaces each instance it loses.
4. **Restore** the saved sizes (min, max, desired) where they differ.

Any wave that does not fully succeed (a refusal, a timeout, a failed call) stops the run where
it is: no further wave starts and the sizes are *not* restored (lowering desired capacity
would let Auto Scaling pick instances to terminate, undrained). The result says where it
stopped; the run can be resumed.

**Resume.** Every step is in the client's audit log: the ``replace_started`` record (the saved
sizes, the old instances, the options), a ``replace_wave`` record before each wave, the intent
and outcome of every mutating call (UpdateAutoScalingGroup, UpdateContainerInstancesState,
DeregisterContainerInstance, TerminateInstanceInAutoScalingGroup, ...), and
``replace_finished`` at the end. A client opened with the crashed run's ``run_id`` on the same
log resumes it (``resume=True``; the CLI's ``ecs-safe replace --resume RUN_ID``): the saved
sizes and the old instances come from the log, never from the group as it is now; an old
instance no longer an InService member is done and never touched again; one left DRAINING
under the run's mark is carried on with; one already deregistered is only terminated; the
surge is not made again when the log holds its UpdateAutoScalingGroup call (or the group
shows it); the saved sizes are restored at the end. Starting a new replacement of a group
that the log shows unfinished is refused, naming the run to resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecs_safe import _constants, _events, _targets, fleet
from ecs_safe._progress import ProgressCallback, report
from ecs_safe.audit import INTENT, OUTCOME, AuditLog
from ecs_safe.errors import EcsSafeError, InvalidInputError
from ecs_safe.policy import DisruptionBudgets
from ecs_safe.results import InstanceOutcome
from ecs_safe.steady import SteadyGate
from ecs_safe.termination import TerminationOptions, Terminator

if TYPE_CHECKING:
    from ecs_safe._aws_calls import AutoScalingCalls, Ec2Calls
    from ecs_safe._gate import Gate
    from ecs_safe._poller import Poller
    from ecs_safe.audit import AuditRun
    from ecs_safe.drain import DrainOptions
    from ecs_safe.models import AutoScalingGroupState, ContainerInstance

__all__ = [
    "REPLACE_FINISHED",
    "REPLACE_RESUMED",
    "REPLACE_STARTED",
    "REPLACE_STOPPED",
    "REPLACE_WAVE",
    "CapacityTimeoutError",
    "GroupSizes",
    "ReplaceSettings",
    "ReplacementResult",
    "ReplacementStatus",
    "ReplacementWave",
    "plan_waves",
    "replace_group",
]

#: The audit record written before a replacement changes anything: the saved sizes, the old
#: instances and the options (what a resume reads back).
REPLACE_STARTED: Final = "replace_started"
#: The audit record of a resumed run, written when it carries on (``resumes``: the run ID).
REPLACE_RESUMED: Final = "replace_resumed"
#: The audit record written before each wave: its instances and whether it decrements.
REPLACE_WAVE: Final = "replace_wave"
#: The audit record of a replacement that ran to its end: every old instance replaced, the
#: sizes restored.
REPLACE_FINISHED: Final = "replace_finished"
#: The audit record of a replacement that stopped (its ``error``); it is still to be resumed.
REPLACE_STOPPED: Final = "replace_stopped"

_UPDATE_GROUP: Final = "UpdateAutoScalingGroup"
_IN_SERVICE: Final = "InService"
_LIVE: Final = frozenset({"ACTIVE", "DRAINING"})

#: Where a replacement ended up.
ReplacementStatus = Literal["planned", "replaced", "stopped"]


class CapacityTimeoutError(EcsSafeError):
    """The group did not get back to capacity in time: new instances missing or not ACTIVE.

    Raised inside a replacement (the surge, or a wave's replacements) and returned as the
    stopped result's ``error``. Nothing more was drained; the group keeps its current sizes.

    Attributes:
        group: the group's name.
        missing: the EC2 instance IDs of the members not yet registered ACTIVE in the cluster.
    """

    code = "CapacityTimeout"

    def __init__(self, message: str, *, group: str, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.group = group
        self.missing = list(missing)


class GroupSizes(BaseModel):
    """An Auto Scaling group's three sizes."""

    model_config = ConfigDict(frozen=True)

    min_size: int = Field(description="MinSize.")
    max_size: int = Field(description="MaxSize.")
    desired_capacity: int = Field(description="DesiredCapacity.")

    def __str__(self) -> str:
        return f"min {self.min_size}, max {self.max_size}, desired {self.desired_capacity}"


class ReplacementWave(BaseModel):
    """One wave of a replacement: the old instances it drains and terminates together."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    index: int = Field(description="1, 2, ... in the order the waves run.")
    instance_ids: list[str] = Field(description="The EC2 instance IDs of the wave.")
    container_instances: list[str] = Field(
        description="Their container instance ARNs, in the same order."
    )
    decrement_desired_capacity: bool = Field(
        description="Whether its terminations lower the desired capacity (a surge's last wave)."
    )
    outcomes: list[InstanceOutcome] = Field(
        default_factory=list,
        description="The drain's outcome of each instance (in a dry run, the plan's); empty "
        "for a wave not run.",
    )
    terminated: list[str] = Field(
        default_factory=list, description="The EC2 instance IDs terminated by this wave."
    )

    @property
    def ok(self) -> bool:
        """Whether no instance of the wave was refused or failed (so far)."""
        return all(o.status in ("deregistered", "would_deregister") for o in self.outcomes)


class ReplacementResult(BaseModel):
    """What a rolling replacement did (or, in a dry run, would do)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    group: str = Field(description="The Auto Scaling group's name.")
    cluster: str | None = Field(description="The cluster, as given.")
    run_id: str = Field(description="The run ID (the audit log's; give it to resume).")
    status: ReplacementStatus = Field(
        description='"planned" (dry run), "replaced" (every old instance, sizes restored) or '
        '"stopped" (see ``error``; resumable).'
    )
    dry_run: bool = Field(description="True when nothing was changed.")
    resumed: bool = Field(default=False, description="True when this call resumed a run.")
    saved_sizes: GroupSizes = Field(description="The sizes the group had when the run began.")
    surge: int = Field(description="Instances added before the first wave (0: no surge).")
    surge_sizes: GroupSizes | None = Field(
        default=None, description="The sizes during the surge, if any."
    )
    surged: bool = Field(
        default=False, description="Whether this call raised the desired capacity itself."
    )
    waves: list[ReplacementWave] = Field(
        default_factory=list, description="The waves, in order (run, or planned)."
    )
    already_replaced: list[str] = Field(
        default_factory=list,
        description="Old instances a resumed run found done already (left alone).",
    )
    unregistered: list[str] = Field(
        default_factory=list,
        description="Members not registered in the cluster when the run began (never touched).",
    )
    restored: bool = Field(
        default=False, description="Whether the saved sizes are the group's again."
    )
    error: EcsSafeError | None = Field(default=None, description="Why a stopped run stopped.")

    @property
    def ok(self) -> bool:
        """True when the run is planned or replaced, with no error."""
        return self.status != "stopped" and self.error is None

    @property
    def terminated(self) -> list[str]:
        """Every old instance this call terminated, in order."""
        return [i for wave in self.waves for i in wave.terminated]


@dataclass(frozen=True, slots=True)
class ReplaceSettings:
    """The validated arguments of one `replace_group` call.

    Attributes:
        group: the Auto Scaling group's name.
        cluster: the cluster its instances are registered in.
        wave_size: old instances drained at once.
        surge: raise desired capacity by a wave before the first one.
        capacity_timeout: seconds to wait for the group to be back at capacity each time.
        poll_interval: seconds between looks at the group (and each drain's longest wait).
        dry_run: plan only.
        resume: carry on the replacement the client's run started (from its audit log).
        drain_options: each instance's drain (timeout, standalone tasks, room, ...).
        steady_timeout: seconds the steady-state gate waits before each drain.
        progress: the caller's progress callback.
        allow_protected: terminate even instances protected from scale-in or with EC2
            termination protection (refused by `ecs_safe.policy.ProtectTermination` otherwise).
    """

    group: str
    cluster: str | None
    wave_size: int = _constants.DEFAULT_WAVE_SIZE
    surge: bool = False
    capacity_timeout: float = _constants.DEFAULT_CAPACITY_TIMEOUT
    poll_interval: float = _constants.DEFAULT_POLL_INTERVAL
    dry_run: bool = False
    resume: bool = False
    drain_options: DrainOptions | None = None
    steady_timeout: float = _constants.DEFAULT_STEADY_TIMEOUT
    progress: ProgressCallback | None = None
    allow_protected: bool = False


def plan_waves(instance_ids: Sequence[str], wave_size: int) -> list[list[str]]:
    """``instance_ids`` in waves of ``wave_size``, the remainder first (the last wave is full).

    A surge of one wave is given back by the last wave's terminations: a full last wave gives
    all of it back, so no instance is left for Auto Scaling to choose.
    """
    ids = list(instance_ids)
    first = len(ids) % wave_size
    waves = [ids[:first]] if first else []
    waves += [ids[i : i + wave_size] for i in range(first, len(ids), wave_size)]
    return waves


# ----------------------------------------------------------------------------- the log


@dataclass
class _Logged:
    """What the audit log says of one replacement run (for a resume or a refusal)."""

    started: dict[str, Any] | None = None
    finished: bool = False
    # The surge's UpdateAutoScalingGroup: "ok" (done), "unknown" (no outcome), or None.
    surge_call: str | None = None
    # The waves it started (their indexes go on from there).
    waves: int = 0


def _read_log(audit: AuditRun | None) -> list[dict[str, Any]]:
    path = audit.log.path if audit is not None else None
    if path is None or not Path(path).exists():
        return []
    return AuditLog.read(path)


def _logged(records: Sequence[Mapping[str, Any]], run_id: str, group: str) -> _Logged:
    """The replacement of ``group`` by ``run_id`` in ``records``: its start, end and surge."""
    found = _Logged()
    surge_target: int | None = None
    intents: dict[Any, str] = {}
    for record in records:
        if record.get("run_id") != run_id:
            continue
        kind = record.get("kind")
        if kind == REPLACE_STARTED and record.get("group") == group:
            found = _Logged(started=dict(record))
            surge_target = record.get("surge_desired")
            intents = {}
        elif kind == REPLACE_FINISHED and record.get("group") == group:
            found.finished = True
        elif kind == REPLACE_WAVE and record.get("group") == group:
            found.waves = max(found.waves, int(record.get("index") or 0))
        elif kind == INTENT and record.get("operation") == _UPDATE_GROUP:
            params = record.get("params") or {}
            if (
                found.started is not None
                and surge_target is not None
                and params.get("AutoScalingGroupName") == group
                and params.get("DesiredCapacity") == surge_target
            ):
                intents[record.get("seq")] = "surge"
                found.surge_call = found.surge_call or "unknown"
        elif kind == OUTCOME and intents.get(record.get("intent_seq")) == "surge":
            if record.get("result") in ("ok", "verified"):
                found.surge_call = "ok"
            elif record.get("may_have_acted") is False and found.surge_call != "ok":
                found.surge_call = None
    return found


def _unfinished_elsewhere(
    records: Sequence[Mapping[str, Any]], group: str, run_id: str
) -> str | None:
    """The run ID of another replacement of ``group`` the log shows started and not finished."""
    open_runs: dict[str, bool] = {}
    for record in records:
        if record.get("group") != group:
            continue
        rid = str(record.get("run_id"))
        if record.get("kind") == REPLACE_STARTED:
            open_runs[rid] = True
        elif record.get("kind") == REPLACE_FINISHED:
            open_runs[rid] = False
    return next((rid for rid, left in open_runs.items() if left and rid != run_id), None)


# ----------------------------------------------------------------------------- the run


@dataclass
class _Replacement:
    """One `replace_group` call: its settings, what it saved, and what it did."""

    gate: Gate
    poller: Poller
    autoscaling: AutoScalingCalls
    ec2: Ec2Calls
    settings: ReplaceSettings
    options: DrainOptions
    saved: GroupSizes | None = None
    old: list[str] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    waves: list[ReplacementWave] = field(default_factory=list)
    resumed: bool = False
    surged: bool = False
    logged: _Logged = field(default_factory=_Logged)
    steady: SteadyGate | None = None
    # Instances the surge adds: fixed when the run starts (a resume reads it back).
    surge_count: int = 0

    @property
    def audit(self) -> AuditRun | None:
        return self.gate.audit

    @property
    def cluster(self) -> str | None:
        return self.settings.cluster

    @property
    def group(self) -> str:
        return self.settings.group

    def _record(self, kind: str, **fields: Any) -> None:
        if self.audit is not None and not self.settings.dry_run:
            self.audit.write(kind, group=self.group, cluster=self.cluster, **fields)

    async def _report(self, event: str, **fields: Any) -> None:
        await report(self.settings.progress, event, group=self.group, **fields)

    # -- reads ------------------------------------------------------------------------------

    async def _group(self) -> AutoScalingGroupState:
        return await self.autoscaling.group(self.group)

    async def _registered(self, ec2_ids: Sequence[str]) -> dict[str, ContainerInstance]:
        """The live (ACTIVE or DRAINING) container instance of each EC2 ID registered."""
        if not ec2_ids:
            return {}
        wanted = set(ec2_ids)
        found = await _targets.list_instances(
            self.gate.calls, cluster=self.cluster, ec2_instance_ids=list(ec2_ids)
        )
        return {
            i.ec2_instance_id: i for i in found if i.ec2_instance_id in wanted and i.status in _LIVE
        }

    @staticmethod
    def _sizes(state: AutoScalingGroupState) -> GroupSizes:
        return GroupSizes(
            min_size=state.min_size,
            max_size=state.max_size,
            desired_capacity=state.desired_capacity,
        )

    @staticmethod
    def _in_service(state: AutoScalingGroupState) -> list[str]:
        return [m.instance_id for m in state.instances if m.lifecycle_state == _IN_SERVICE]

    # -- start or resume --------------------------------------------------------------------

    async def _begin(self) -> AutoScalingGroupState:
        state = await self._group()
        run_id = self.gate.calls.run_id
        records = _read_log(self.audit)
        self.logged = _logged(records, run_id, self.group)
        if self.settings.resume:
            started = self.logged.started
            if started is None:
                where = self.audit.log.path if self.audit is not None else None
                raise InvalidInputError(
                    f"no replacement of group {self.group!r} by run {run_id} in the audit log "
                    f"{str(where) if where else '(none: the client has no audit_log path)'}; "
                    "resume with the crashed run's run_id and the same audit_log"
                )
            self.saved = GroupSizes.model_validate(started["saved_sizes"])
            self.old = [str(i) for i in started["old_instances"]]
            self.unregistered = [str(i) for i in started.get("unregistered") or []]
            surge_desired = started.get("surge_desired")
            self.surge_count = (
                int(surge_desired) - self.saved.desired_capacity if surge_desired else 0
            )
            self.resumed = True
            self._record(REPLACE_RESUMED, resumes=run_id)
            await self._report("ecs_safe.replace.resumed", run_id=run_id, saved=str(self.saved))
            return state
        other = _unfinished_elsewhere(records, self.group, run_id)
        if (self.logged.started is not None and not self.logged.finished) or other:
            rid = other or run_id
            raise InvalidInputError(
                f"the audit log shows replacement run {rid} of group {self.group!r} started and "
                f"not finished: resume it (ecs-safe replace --resume {rid}, or a client with "
                "run_id=... and resume=True) instead of starting over"
            )
        self.saved = self._sizes(state)
        members = [m.instance_id for m in state.instances]
        live = await self._registered(members)
        self.old = [i for i in members if i in live]
        self.unregistered = [i for i in members if i not in live]
        self.surge_count = min(self.settings.wave_size, len(self.old)) if self.settings.surge else 0
        surge_desired = self.saved.desired_capacity + self.surge_count
        self._record(
            REPLACE_STARTED,
            saved_sizes=self.saved.model_dump(),
            old_instances=self.old,
            unregistered=self.unregistered,
            wave_size=self.settings.wave_size,
            surge=self.settings.surge,
            surge_desired=surge_desired if self.surge_count else None,
        )
        self.logged.started = {"surge_desired": surge_desired}
        await self._report(
            "ecs_safe.replace.started",
            saved=str(self.saved),
            old_instances=len(self.old),
            unregistered=self.unregistered,
            wave_size=self.settings.wave_size,
            surge=self.settings.surge,
            dry_run=self.settings.dry_run,
        )
        return state

    def _surge_sizes(self) -> GroupSizes | None:
        saved = self.saved
        assert saved is not None
        count = self.surge_count
        if not count:
            return None
        desired = saved.desired_capacity + count
        return GroupSizes(
            min_size=saved.min_size,
            max_size=max(saved.max_size, desired),
            desired_capacity=desired,
        )

    # -- capacity ---------------------------------------------------------------------------

    async def _wait_for_capacity(self, why: str) -> AutoScalingGroupState:
        """Until every member that is not old is InService and ACTIVE, as many as desired.

        Raises:
            CapacityTimeoutError: not so within ``capacity_timeout``.
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + self.settings.capacity_timeout
        delay = self.settings.poll_interval
        longest = max(delay, _constants.MAX_POLL_INTERVAL)
        old = set(self.old)
        while True:
            state = await self._group()
            serving = self._in_service(state)
            new = [i for i in serving if i not in old]
            live = await self._registered(new)
            missing = [i for i in new if i not in live or live[i].status != "ACTIVE"]
            elapsed = round(loop.time() - began, 3)
            if len(serving) >= state.desired_capacity and not missing:
                await self._report(
                    "ecs_safe.replace.capacity",
                    why=why,
                    desired=state.desired_capacity,
                    in_service=len(serving),
                    elapsed_s=elapsed,
                )
                return state
            await self._report(
                "ecs_safe.replace.waiting",
                level="debug",
                why=why,
                desired=state.desired_capacity,
                in_service=len(serving),
                not_active=missing,
                elapsed_s=elapsed,
            )
            left = deadline - loop.time()
            if left <= 0:
                raise CapacityTimeoutError(
                    f"group {self.group!r} was not back at capacity ({why}) within "
                    f"capacity_timeout={self.settings.capacity_timeout:g}s: desired "
                    f"{state.desired_capacity}, {len(serving)} InService, "
                    f"{len(new) - len(missing)} new registered ACTIVE in cluster "
                    f"{self.cluster or 'default'}"
                    + (f"; not ACTIVE yet: {', '.join(missing)}" if missing else "")
                    + f". Nothing more was drained; the group keeps desired "
                    f"{state.desired_capacity} (saved: {self.saved}). Resume with "
                    f"`ecs-safe replace --resume {self.gate.calls.run_id}` once the "
                    "instances join",
                    group=self.group,
                    missing=missing,
                )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * _constants.POLL_BACKOFF, longest)

    async def _surge(self, state: AutoScalingGroupState) -> None:
        sizes = self._surge_sizes()
        if sizes is None:
            return
        if self.logged.surge_call == "ok" or state.desired_capacity >= sizes.desired_capacity:
            return  # made before the crash (the log or the group says so): not made twice
        if self.logged.surge_call == "unknown" and state.desired_capacity != (
            self.saved.desired_capacity if self.saved else None
        ):
            return  # a call without outcome that the group shows took effect
        await self._report("ecs_safe.replace.surge", sizes=str(sizes))
        await self.autoscaling.set_sizes(
            self.group,
            max_size=sizes.max_size if sizes.max_size != state.max_size else None,
            desired_capacity=sizes.desired_capacity,
        )
        self.surged = True

    # -- waves ------------------------------------------------------------------------------

    def _decrements(self, wave: Sequence[str], after: int, state: AutoScalingGroupState) -> int:
        """How many of ``wave``'s terminations give the surge back (``after``: old ones left)."""
        saved = self.saved
        assert saved is not None
        surplus = state.desired_capacity - saved.desired_capacity
        return max(0, min(len(wave), surplus - after))

    def _wave_settings(self, *, dry_run: bool, decrement: bool) -> fleet.FleetSettings:
        # The one termination path (`ecs_safe.termination`): surveyed in the pre-flight (the
        # policy sees protection), done per instance once its deregistration is verified.
        terminator = Terminator(
            self.autoscaling,
            self.ec2,
            TerminationOptions(
                decrement_desired_capacity=decrement,
                allow_protected=self.settings.allow_protected,
            ),
        )
        return fleet.FleetSettings(
            cluster=self.cluster,
            force=False,
            drain=True,
            dry_run=dry_run,
            concurrency=self.settings.wave_size,
            drain_options=self.options,
            progress=self.settings.progress,
            steady_timeout=self.settings.steady_timeout,
            steady=None if dry_run else self.steady,
            terminator=terminator,
        )

    async def _run_wave(self, index: int, wave: list[str], decrement: bool) -> ReplacementWave:
        live = await self._registered(wave)
        arns = [live[i].container_instance_arn or i for i in wave if i in live]
        gone = [i for i in wave if i not in live]  # deregistered before a crash: terminate only
        record = ReplacementWave(
            index=index,
            instance_ids=wave,
            container_instances=arns,
            decrement_desired_capacity=decrement,
        )
        self._record(
            REPLACE_WAVE, index=index, instance_ids=wave, decrement_desired_capacity=decrement
        )
        await self._report(
            "ecs_safe.replace.wave",
            index=index,
            instance_ids=wave,
            decrement_desired_capacity=decrement,
        )
        assert self.steady is not None
        if index > 1 or self.resumed:
            await self.steady.settle(f"wave {index}")
        outcomes: list[InstanceOutcome] = []
        if arns:
            batch = await fleet.deregister_many(
                self.gate,
                arns,
                self._wave_settings(dry_run=False, decrement=decrement),
                self.poller,
            )
            outcomes = batch.outcomes
        registered = [i for i in wave if i in live]
        terminated = [
            i
            for i, o in zip(registered, outcomes, strict=True)
            if o.result is not None and o.result.terminated
        ]
        try:
            for instance_id in gone:
                # Deregistered by the crashed run (the listing above proves it: not ACTIVE or
                # DRAINING any more), under the decision its audit log holds; only the
                # termination is left. Through the call layer's verified termination.
                await self.autoscaling.terminate_instance(
                    instance_id, decrement_desired_capacity=decrement
                )
                terminated.append(instance_id)
        finally:
            # Kept even when a termination fails: the result says what this wave did.
            self.waves.append(
                record.model_copy(update={"outcomes": outcomes, "terminated": terminated})
            )
        return self.waves[-1]

    async def _plan(self, state: AutoScalingGroupState) -> list[ReplacementWave]:
        """The dry run's waves, each with the fleet plan of its instances as things stand."""
        planned: list[ReplacementWave] = []
        remaining = [i for i in self.old if i in self._in_service(state)]
        surge = self._surge_sizes()
        desired = surge.desired_capacity if surge else state.desired_capacity
        projected = state.model_copy(update={"desired_capacity": desired})
        waves = plan_waves(remaining, self.settings.wave_size)
        left = len(remaining)
        live = await self._registered(remaining)
        for index, wave in enumerate(waves, start=1):
            left -= len(wave)
            decrement = self._decrements(wave, left, projected) > 0
            arns = [live[i].container_instance_arn or i for i in wave if i in live]
            outcomes: list[InstanceOutcome] = []
            if arns:
                batch = await fleet.deregister_many(
                    self.gate,
                    arns,
                    self._wave_settings(dry_run=True, decrement=decrement),
                    self.poller,
                )
                outcomes = batch.outcomes
            planned.append(
                ReplacementWave(
                    index=index,
                    instance_ids=wave,
                    container_instances=arns,
                    decrement_desired_capacity=decrement,
                    outcomes=outcomes,
                )
            )
        return planned

    def _result(
        self, status: ReplacementStatus, *, restored: bool = False, **extra: Any
    ) -> ReplacementResult:
        assert self.saved is not None
        surge = self._surge_sizes()
        return ReplacementResult(
            group=self.group,
            cluster=self.cluster,
            run_id=self.gate.calls.run_id,
            status=status,
            dry_run=self.settings.dry_run,
            resumed=self.resumed,
            saved_sizes=self.saved,
            surge=surge.desired_capacity - self.saved.desired_capacity if surge else 0,
            surge_sizes=surge,
            surged=self.surged,
            waves=self.waves,
            already_replaced=self.already,
            unregistered=self.unregistered,
            restored=restored,
            **extra,
        )

    async def run(self) -> ReplacementResult:
        state = await self._begin()
        assert self.saved is not None
        serving = set(self._in_service(state))
        remaining = [i for i in self.old if i in serving]
        self.already = [i for i in self.old if i not in serving]
        if not any(isinstance(rule, DisruptionBudgets) for rule in self.gate.policy.rules):
            # Still safe by ECS's own limits (the scheduler's) and the gate, but no wave is
            # judged against a budget: say so, where it is easy to miss in a library call.
            _events.logger.warning(
                "ecs_safe.replace.no_budgets",
                group=self.group,
                note="the policy has no DisruptionBudgets rule: waves are not judged against "
                "budgets; add default_policy().with_rules(DisruptionBudgets(...))",
            )
        if self.settings.dry_run:
            self.waves = await self._plan(state)
            return self._result("planned")
        self.steady = SteadyGate(
            self.gate.calls,
            self.cluster,
            timeout=self.settings.steady_timeout,
            poll_interval=self.options.poll_interval,
            progress=self.settings.progress,
            survey_each=True,
        )
        try:
            if remaining:
                await self._surge(state)
            index = self.logged.waves
            while remaining:
                state = await self._wait_for_capacity(
                    "before wave" if index or not self.surge_count else "surge"
                )
                serving = set(self._in_service(state))
                remaining = [i for i in remaining if i in serving]
                if not remaining:
                    break
                wave = plan_waves(remaining, self.settings.wave_size)[0]
                after = len(remaining) - len(wave)
                decrements = self._decrements(wave, after, state)
                if 0 < decrements < len(wave):
                    wave = wave[: len(wave) - decrements]  # the rest decrements next time
                    decrements = 0
                index += 1
                done = await self._run_wave(index, wave, decrements > 0)
                if not done.ok or len(done.terminated) != len(wave):  # stop here
                    failed = next((o.error for o in done.outcomes if o.error), None)
                    raise failed or EcsSafeError(f"wave {index} did not terminate every instance")
                remaining = [i for i in remaining if i not in done.terminated]
            state = await self._wait_for_capacity("after the last wave")
            restored = await self._restore(state)
        except EcsSafeError as exc:
            self._record(REPLACE_STOPPED, error_code=exc.code, error=str(exc))
            await self._report("ecs_safe.replace.stopped", error_code=exc.code, error=str(exc))
            return self._result("stopped", error=exc)
        self._record(
            REPLACE_FINISHED,
            status="replaced",
            terminated=[i for w in self.waves for i in w.terminated],
        )
        await self._report(
            "ecs_safe.replace.finished", terminated=len(self.old) - len(self.already)
        )
        return self._result("replaced", restored=restored)

    async def _restore(self, state: AutoScalingGroupState) -> bool:
        saved = self.saved
        assert saved is not None
        now = self._sizes(state)
        if now == saved:
            return True
        await self._report("ecs_safe.replace.restore", sizes=str(saved), now=str(now))
        await self.autoscaling.set_sizes(
            self.group,
            min_size=saved.min_size if saved.min_size != now.min_size else None,
            max_size=saved.max_size if saved.max_size != now.max_size else None,
            desired_capacity=(
                saved.desired_capacity if saved.desired_capacity != now.desired_capacity else None
            ),
        )
        return True


async def replace_group(
    gate: Gate,
    poller: Poller,
    settings: ReplaceSettings,
    options: DrainOptions,
    *,
    autoscaling: AutoScalingCalls,
    ec2: Ec2Calls,
) -> ReplacementResult:
    """`EcsSafeClient.replace_auto_scaling_group` on validated settings (see the module)."""
    return await _Replacement(gate, poller, autoscaling, ec2, settings, options).run()
