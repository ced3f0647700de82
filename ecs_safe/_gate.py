"""The decision gate: every deregistration, and every drain, passes the policy here.

`Gate` holds the client's policy, its call layer (`ecs_safe._calls.EcsCalls`) and its audit
run. Its steps, each used by `EcsSafeClient` and by the workflows (`ecs_safe.drain`,
`ecs_safe.fleet`):

- `Gate.snapshot` (and `Gate.tasks`): describe the instance (list its tasks) before deciding;
  a pre-flight call that fails raises its own typed error: nothing is decided, nothing done;
- `Gate.judge` (and `Gate.judge_drain` for a drain's pre-flight): fetch what the rules need,
  evaluate the policy and record the decision;
- `Gate.judge_wave`: judge a wave of drains as one (room elsewhere, disruption budgets),
  with the reads batched across the wave;
- `Gate.refuse`: log a refusal and build the `PolicyViolationError` that carries it;
- `Gate.deregister`: all of it, then DeregisterContainerInstance (with the policy's answer,
  ECS's own refusal, and the dry-run result built by `Gate.plan`).

What is asked of the gate is one `Request`: an instance, its cluster, force, dry run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ecs_safe import _events, _targets, budgets
from ecs_safe._constants import CLUSTER_TASKS_MIN_INSTANCES, DESCRIBE_TASKS_BATCH
from ecs_safe._error_mapping import redact
from ecs_safe._validation import instance_id_of
from ecs_safe.audit import DECISION
from ecs_safe.capacity import Wave, distinct_instance
from ecs_safe.errors import (
    ClientException,
    EcsApiError,
    InvalidParameterException,
    PolicyViolationError,
)
from ecs_safe.models import ContainerInstance, Task, service_name
from ecs_safe.policy import (
    Caution,
    Decision,
    DisruptionBudgets,
    Policy,
    PolicyContext,
    ProtectTermination,
    RoomElsewhere,
    Rule,
    Termination,
    Violation,
)
from ecs_safe.results import DeregistrationResult

if TYPE_CHECKING:
    from ecs_safe._calls import EcsCalls
    from ecs_safe.audit import AuditRun

__all__ = ["WAVE_RULE", "Gate", "Request", "Step", "WaveMember", "termination_fields"]

#: Where a decision was made (the audit log's ``step``): before a deregistration, or before a
#: drain sets DRAINING.
Step = Literal["deregister", "drain"]

#: The `Caution.rule` of the wave's own warnings (a service left with no ACTIVE instance).
WAVE_RULE = "wave"

# The message ECS (and moto) answer with when an unforced deregistration meets running tasks.
_SERVER_REFUSAL_HINTS = ("running task", "tasks running", "has tasks")


@dataclass(frozen=True, slots=True)
class Request:
    """What is being asked of the gate: one instance, validated.

    Attributes:
        instance: the container instance ID or ARN, as given.
        cluster: the cluster's short name or ARN, as given (``None``: the default cluster).
        force: deregister even with tasks running (the policy decides).
        dry_run: decide and log, but make no mutating call.
        termination: with ``terminate=True``, the termination that follows the
            deregistration, as the pre-flight found it (`ecs_safe.termination`); the rules see
            it, `ProtectTermination` among them.
    """

    instance: str
    cluster: str | None
    force: bool = False
    dry_run: bool = False
    termination: Termination | None = None


@dataclass(frozen=True, slots=True)
class WaveMember:
    """One instance of a wave of drains, as its pre-flight found it.

    Attributes:
        request: what was asked for the instance.
        snapshot: the instance as described before anything changed.
        tasks: the tasks (not STOPPED) on it then.
    """

    request: Request
    snapshot: ContainerInstance
    tasks: Sequence[Task]


def _stranded(wave: Wave, tasks: Sequence[Task]) -> Caution | None:
    """The plan's line for services the wave would leave with no ACTIVE instance at all."""
    if wave.targets:
        return None
    names = sorted({n for t in tasks if t.kind != "standalone" and (n := service_name(t.group))})
    if not names:
        return None
    return Caution(
        WAVE_RULE,
        f"no ACTIVE instance would be left outside this run: service(s) {', '.join(names)} "
        "would have no ACTIVE instance to run on",
    )


def _counted(snapshot: ContainerInstance) -> int:
    """The tasks the counters show on an instance (0 where they are absent)."""
    return (snapshot.running_tasks_count or 0) + (snapshot.pending_tasks_count or 0)


def _refusal_message(instance: str, decision: Decision) -> str:
    reasons = "; ".join(f"{v.rule}: {v.message}" for v in decision.violations)
    return f"refused to deregister container instance {instance}: {reasons}"


def _server_refusal(exc: EcsApiError, *, force: bool) -> Decision | None:
    """ECS's own refusal of an unforced deregistration (a task arrived after our check)."""
    if force or not isinstance(exc, InvalidParameterException | ClientException):
        return None
    if not any(hint in exc.message.lower() for hint in _SERVER_REFUSAL_HINTS):
        return None
    return Decision.refuse(Violation(rule="ecs-service", message=f"ECS refused: {exc.message}"))


def termination_fields(termination: Termination | None) -> dict[str, object]:
    """The `DeregistrationResult` fields that say how the instance is (would be) terminated."""
    if termination is None or termination.method is None:
        return {}
    return {
        "termination": termination.method,
        "auto_scaling_group": termination.auto_scaling_group,
        "decrement_desired_capacity": (
            termination.method == "auto-scaling" and termination.decrement_desired_capacity
        ),
    }


class Gate:
    """Snapshot, judge, refuse, record, deregister: the policy-checked path of one client.

    Args:
        calls: the client's call layer.
        policy: the rules every decision applies (`EcsSafeClient.policy` keeps it current).
        audit: the client's audit run, where every decision is recorded, if any.
    """

    def __init__(self, calls: EcsCalls, policy: Policy, audit: AuditRun | None) -> None:
        self.calls = calls
        self.policy = policy
        self.audit = audit

    # ------------------------------------------------------------------ pre-flight

    async def snapshot(self, request: Request) -> ContainerInstance:
        """Describe the instance before deciding.

        Raises:
            ContainerInstanceNotFoundError: the instance is not in the cluster.
            InvalidInputError: the instance's ARN names another Region or account than the
                instance ECS matched by its ID.
            EcsApiError: the describe failed (see `preflight_failed`).
        """
        try:
            instance = (await self.calls.describe([request.instance], request.cluster))[0]
        except EcsApiError as exc:
            self.preflight_failed(request, exc)
            raise
        foreign = self.calls.foreign(request.instance, instance)
        if foreign is not None:
            _events.log_failed(
                foreign, cluster=request.cluster, container_instance=request.instance
            )
            raise foreign
        return instance

    def preflight_failed(self, request: Request, exc: EcsApiError) -> EcsApiError:
        """A pre-flight call that failed: its own typed error, logged as a failure.

        A pre-flight that could not be done (no endpoint, no credentials, access denied,
        throttling past the retries, an instance or cluster that does not exist) is not a
        refusal: a refusal says "this instance is not safe to remove", and an outage says
        nothing about the instance. Nothing is decided and nothing is mutated; the error's
        ``retryable`` tells whether trying again later may help.
        """
        _events.log_failed(exc, cluster=request.cluster, container_instance=request.instance)
        return exc

    async def tasks(self, request: Request, *, told_to_stop: bool = True) -> list[Task]:
        """The tasks on the instance, for a decision.

        ``told_to_stop=False``: only those whose desired status is RUNNING (one ListTasks
        fewer), for a caller that needs no task already told to stop (`EcsCalls.list_tasks`).

        Raises:
            EcsApiError: the listing failed (see `preflight_failed`).
        """
        try:
            return await self.calls.list_tasks(
                request.instance, request.cluster, told_to_stop=told_to_stop
            )
        except EcsApiError as exc:
            self.preflight_failed(request, exc)
            raise

    def wants_tasks(self, request: Request, snapshot: ContainerInstance) -> bool:
        """Whether deciding on (or planning) this instance needs its task list.

        The one place that decides when tasks are listed before a deregistration, for a single
        call and a fleet, real runs and plans alike:

        - a rule asked for the list (`Policy.needs_tasks`): always, whatever the counters say,
          because tasks that are DEACTIVATING or STOPPING are in neither counter (aws-cdk
          #13506) and such a rule judges by the list;
        - otherwise the rules decide by the counters alone (`_evaluate` shows them no list), so
          a real run lists nothing: an unforced deregistration with running tasks is refused
          by the counter rules and, behind them, by ECS itself;
        - a plan (dry run) also names the tasks each deregistration would affect: where the
          counters show running or pending tasks (a refusal names its blockers), where they
          are absent, and for every forced plan (a forced deregistration orphans even the
          STOPPING tasks the counters miss). An unforced plan of an instance whose counters are
          zero lists nothing: its decision cannot depend on the list, and an unforced
          deregistration affects no task (docs/performance.md, "Plans").
        """
        if self.policy.needs_tasks:
            return True
        if not request.dry_run:
            return False
        if request.force:
            return True
        running, pending = snapshot.running_tasks_count, snapshot.pending_tasks_count
        return running is None or pending is None or running + pending > 0

    async def tasks_of_many(
        self, cluster: str | None, wanted: Sequence[tuple[Request, ContainerInstance]]
    ) -> dict[str, list[Task]] | None:
        """The task lists of many instances in one cluster-wide listing, keyed by instance ID.

        Tried from `CLUSTER_TASKS_MIN_INSTANCES` instances on, within the requests that
        listing them one by one would cost (two ListTasks and a DescribeTasks per 100 tasks
        each); ``None`` when that is not cheaper, and each is listed by `tasks` instead.

        Raises:
            EcsApiError: the listing failed (logged for every instance, see `preflight_failed`).
        """
        if len(wanted) < CLUSTER_TASKS_MIN_INSTANCES:
            return None
        budget = sum(2 + -(-_counted(snapshot) // DESCRIBE_TASKS_BATCH) for _, snapshot in wanted)
        try:
            return await self.calls.cluster_tasks(
                cluster, [request.instance for request, _ in wanted], budget=budget
            )
        except EcsApiError as exc:
            for request, _ in wanted:
                self.preflight_failed(request, exc)
            raise

    # ------------------------------------------------------------------ decisions

    def _evaluate(
        self, request: Request, snapshot: ContainerInstance, tasks: Sequence[Task] | None
    ) -> Decision:
        # Rules see the task list exactly when the policy asks for it (`Policy.needs_tasks`),
        # so a decision does not depend on whether the caller happened to hold the list.
        context = PolicyContext(
            cluster=request.cluster,
            container_instance=snapshot,
            force=request.force,
            dry_run=request.dry_run,
            tasks=tuple(tasks or ()) if self.policy.needs_tasks else None,
            termination=request.termination,
        )
        return self.policy_for(request).evaluate(context)

    def policy_for(self, request: Request) -> Policy:
        """The policy that judges ``request``: the client's, and `ProtectTermination` if asked.

        A request that terminates the EC2 instance is always judged for its protections, as a
        drain is always judged for room (`wave_rules`): the rule is added unless the policy
        holds one of that name already (the user's own, which then decides).
        """
        policy = self.policy
        if request.termination is None:
            return policy
        if any(rule.name == ProtectTermination.name for rule in policy.rules):
            return policy
        return policy.with_rules(ProtectTermination())

    async def judge(
        self,
        request: Request,
        snapshot: ContainerInstance,
        *,
        tasks: Sequence[Task] | None = None,
    ) -> tuple[Decision, list[Task]]:
        """Fetch what the rules need and evaluate the policy, without raising on a refusal.

        ``tasks``, when the caller already holds the task list, saves fetching it again; without
        it, the list is fetched where `wants_tasks` says so. The decision is recorded
        (`record`) before it is returned, with the tasks it saw.
        """
        if tasks is None and self.wants_tasks(request, snapshot):
            tasks = await self.tasks(request)
        decision = self._evaluate(request, snapshot, tasks)
        self.record(request, snapshot, decision, step="deregister")
        return decision, list(tasks or ())

    def judge_drain(
        self,
        request: Request,
        drained: ContainerInstance,
        *,
        blockers: Sequence[Violation] = (),
    ) -> Decision:
        """Judge a drain before DRAINING is set, on the instance as it will be once drained.

        The default policy refuses while tasks run, which is exactly what draining fixes, so
        the rules see ``drained`` (DRAINING, nothing left on it) with an empty task list;
        rules that would still refuse must do so now. ``blockers``, found by the drain's own
        pre-flight (standalone tasks it will not move), refuse along with the policy's.
        """
        decision = self._evaluate(request, drained, ())
        if blockers:
            decision = Decision.refuse(*decision.violations, *blockers)
        self.record(request, drained, decision, step="drain")
        return decision

    def wave_rules(self, *, require_room: bool) -> list[Rule]:
        """The rules that judge a drain's wave: the policy's, and `RoomElsewhere` if asked."""
        rules = [rule for rule in self.policy.rules if getattr(rule, "needs_wave", False)]
        if require_room and not any(rule.name == RoomElsewhere.name for rule in rules):
            rules.append(RoomElsewhere())
        return rules

    async def wave(
        self, members: Sequence[WaveMember], cluster: str | None, *, in_run: Iterable[str] = ()
    ) -> Wave:
        """Read what the wave's rules judge, batched across the whole wave.

        DescribeServices once for the round (10 a call), each task definition revision once
        (cached for the client), the cluster's ACTIVE instances (100 a listing page and a
        describe), the capacity providers involved (one call), and, for each
        ``distinctInstance`` service, where its tasks run. Never a call per task.
        ``in_run`` names the other instances of the run (IDs or ARNs): they take no tasks.
        """
        calls = self.calls
        tasks = {
            m.snapshot.container_instance_arn or m.request.instance: tuple(m.tasks) for m in members
        }
        names = {n for ts in tasks.values() for t in ts if (n := service_name(t.group))}
        services = await calls.describe_services(cluster, names, refresh=True)
        moving = [t for ts in tasks.values() for t in ts if t.kind == "service"]
        definitions = await calls.describe_task_definitions(
            t.task_definition_arn for t in moving if t.task_definition_arn
        )
        excluded = {instance_id_of(m.request.instance) for m in members}
        excluded |= {instance_id_of(m.snapshot.container_instance_arn or "") for m in members}
        excluded |= {instance_id_of(ref) for ref in in_run}
        active = await _targets.list_instances(calls, cluster=cluster, status="ACTIVE")
        targets = tuple(
            i
            for i in active
            if i.status == "ACTIVE"
            and i.agent_connected is not False
            and instance_id_of(i.container_instance_arn or "") not in excluded
        )
        providers = {
            item.capacity_provider
            for service in services.values()
            for item in service.capacity_provider_strategy or []
            if item.capacity_provider
        }
        providers |= {n for m in members if (n := m.snapshot.capacity_provider_name)}
        found = await calls.describe_capacity_providers(providers) if providers else {}
        hosts = {
            name: await calls.hosts_of_service(cluster, name)
            for name, service in services.items()
            if distinct_instance(service)
        }
        return Wave(
            instances=tuple(m.snapshot for m in members),
            tasks=tasks,
            targets=targets,
            services=services,
            task_definitions=definitions,
            capacity_providers=found,
            hosts=hosts,
        )

    async def judge_wave(
        self,
        members: Sequence[WaveMember],
        cluster: str | None,
        *,
        require_room: bool = True,
        in_run: Iterable[str] = (),
    ) -> dict[str, Decision]:
        """Judge a wave of drains once, before any of it is set DRAINING.

        Reads the wave's facts (`wave`) only when some rule judges waves (the policy's
        `DisruptionBudgets`, and `RoomElsewhere` unless ``require_room`` is false) or for a
        dry run (whose plan shows the services the wave affects), then
        evaluates those rules for each member with the whole wave in its context. Each
        decision carries the numbers of the services the instance affects
        (`Decision.services`) and, when no ACTIVE instance would be left outside the run, a
        warning saying so; each is recorded (step ``drain``).

        Returns:
            The decision of each member, keyed by its instance ID as requested (empty when
            no rule judges waves, or no service task is on the wave: nothing was read).

        Raises:
            EcsApiError: a read failed (after retries); nothing was decided or changed.
        """
        rules = self.wave_rules(require_room=require_room)
        # A plan shows the services a wave affects even when no rule judges them.
        planning = any(m.request.dry_run for m in members)
        # With no service task on the wave there is nothing to move or to budget: no reads.
        touched = any(service_name(t.group) for m in members for t in m.tasks)
        if not touched or not (rules or planning):
            return {}
        wave = await self.wave(members, cluster, in_run=in_run)
        policy = Policy(rules)
        user_budgets = next((r.budgets for r in rules if isinstance(r, DisruptionBudgets)), ())
        impacts = budgets.impacts(wave, user_budgets)
        decisions: dict[str, Decision] = {}
        for member in members:
            context = PolicyContext(
                cluster=cluster,
                container_instance=member.snapshot,
                force=False,
                dry_run=member.request.dry_run,
                tasks=tuple(member.tasks),
                wave=wave,
                termination=member.request.termination,
            )
            here = {n for t in member.tasks if (n := service_name(t.group))}
            stranded = _stranded(wave, member.tasks)
            decision = policy.evaluate(context).merged(
                Decision(
                    allowed=True,
                    warnings=(stranded,) if stranded else (),
                    services=tuple(i for i in impacts if i.service in here),
                )
            )
            self.record(member.request, member.snapshot, decision, step="drain")
            decisions[instance_id_of(member.request.instance)] = decision
        return decisions

    def record(
        self,
        request: Request,
        snapshot: ContainerInstance | None,
        decision: Decision,
        *,
        step: Step,
    ) -> None:
        """Record a decision in the audit log: the one place decisions are written.

        Every decision passes here before anything acts on it: `judge`'s and `judge_drain`'s.
        """
        if self.audit is None:
            return
        self.audit.write(
            DECISION,
            step=step,
            allowed=decision.allowed,
            violations=[
                {"rule": v.rule, "message": redact(v.message)} for v in decision.violations
            ],
            container_instance=request.instance,
            container_instance_arn=snapshot.container_instance_arn if snapshot else None,
            cluster=request.cluster,
            force=request.force,
            dry_run=request.dry_run,
            # Only with terminate=True, so that every other record keeps its shape.
            **(
                {"terminate": termination_fields(request.termination)}
                if request.termination
                else {}
            ),
        )

    def refuse(
        self,
        request: Request,
        snapshot: ContainerInstance | None,
        decision: Decision,
        tasks: Sequence[Task],
    ) -> PolicyViolationError:
        """Log a refusal and build the error that carries it."""
        _events.log_refused(
            snapshot,
            cluster=request.cluster,
            container_instance=request.instance,
            decision=decision,
            forced=request.force,
            dry_run=request.dry_run,
        )
        return PolicyViolationError(
            _refusal_message(request.instance, decision),
            decision=decision,
            container_instance=snapshot,
            tasks=tasks,
        )

    def plan(
        self, request: Request, snapshot: ContainerInstance, decision: Decision, tasks: list[Task]
    ) -> DeregistrationResult:
        """The result of a dry run that the policy allowed, logged: what would be done.

        Logged as ``ecs_safe.deregister.planned`` (a plan is not a deregistration), with the
        fields of ``ecs_safe.deregister.succeeded``.
        """
        _events.log_planned(snapshot, cluster=request.cluster, forced=request.force)
        return DeregistrationResult(
            container_instance=snapshot,
            decision=decision,
            forced=request.force,
            dry_run=True,
            request_id=None,
            tasks=tasks,
            **termination_fields(request.termination),
        )

    # ------------------------------------------------------------------ deregister

    async def deregister(
        self,
        request: Request,
        snapshot: ContainerInstance | None = None,
        *,
        tasks: Sequence[Task] | None = None,
    ) -> DeregistrationResult:
        """Judge the instance and deregister it (in a dry run, only log the plan).

        ``snapshot``, when the caller already described the instance, saves describing it
        again; ``tasks`` likewise for the task list.

        Raises:
            PolicyViolationError: the policy refused (before any mutating call), or ECS
                refused an unforced deregistration.
            ContainerInstanceNotFoundError: the instance is not in the cluster.
            EcsApiError: a pre-flight call or the deregistration failed (after retries).
        """
        if snapshot is None:
            snapshot = await self.snapshot(request)
        decision, tasks_seen = await self.judge(request, snapshot, tasks=tasks)
        if not decision.allowed:
            raise self.refuse(request, snapshot, decision, tasks_seen)
        if request.dry_run:
            return self.plan(request, snapshot, decision, tasks_seen)
        try:
            done = await self.calls.deregister(
                request.instance, request.cluster, snapshot, force=request.force
            )
        except EcsApiError as exc:
            refused = _server_refusal(exc, force=request.force)
            if refused is not None:
                raise self.refuse(request, snapshot, refused, tasks_seen) from exc
            _events.log_failed(exc, cluster=request.cluster, container_instance=request.instance)
            raise
        _events.log_succeeded(
            done.instance,
            cluster=request.cluster,
            forced=request.force,
            dry_run=False,
            request_id=done.request_id,
            **({"verified_after_lost_response": True} if done.verified else {}),
        )
        return DeregistrationResult(
            container_instance=done.instance,
            decision=decision,
            forced=request.force,
            dry_run=False,
            request_id=done.request_id,
            tasks=tasks_seen,
            verified=done.verified,
        )
