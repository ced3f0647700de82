"""The policy: the checks that run before any container instance is deregistered.

A `Policy` is an ordered list of rules. Before ecs-safe makes a mutating call it describes the
container instance, builds a `PolicyContext` from that snapshot and asks the policy for a
`Decision`. Every rule is evaluated, so a refusal names every blocker at once (as ``kubectl drain``
does), and a `Violation` is a plain frozen value, not an exception.

The policy fails closed: a rule that raises, or that returns something other than a `Violation` or
``None``, refuses the operation instead of being skipped.

Writing your own rule needs no base class; any object with a ``name`` and a ``check`` method is a
`Rule`::

    class NotOnFridays:
        name = "not-on-fridays"

        def check(self, context: PolicyContext) -> Violation | None:
            if datetime.date.today().weekday() == 4:
                return Violation(self.name, "no deregistrations on Fridays")
            return None

    policy = default_policy().with_rules(NotOnFridays())

Each built-in rule carries its own examples (``VALID`` and ``INVALID``, as `RuleExample` values):
they document the rule and the test suite is generated from them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from ecs_safe import budgets as _budgets
from ecs_safe._constants import DEFAULT_CLUSTER, TerminationMethod
from ecs_safe.budgets import DisruptionBudget, ServiceImpact
from ecs_safe.capacity import Wave
from ecs_safe.errors import InvalidInputError
from ecs_safe.models import (
    CapacityProvider,
    ContainerInstance,
    Service,
    Task,
    TaskDefinition,
    service_name,
)

__all__ = [
    "Caution",
    "ClusterAllowlist",
    "Decision",
    "DisruptionBudgets",
    "NoPendingTasksUnlessForced",
    "NoRunningTasksUnlessForced",
    "Policy",
    "PolicyContext",
    "ProtectStandaloneTasks",
    "ProtectTermination",
    "RequireDraining",
    "RoomElsewhere",
    "Rule",
    "RuleExample",
    "Termination",
    "Violation",
    "default_policy",
]

#: Task states before RUNNING: what ECS's ``pendingTasksCount`` stands for.
_PENDING_STATUSES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
_STOPPED = "STOPPED"
#: How many task ARNs a message lists before it says "and N more".
_PREVIEW_LIMIT = 5


@dataclass(frozen=True)
class Violation:
    """One reason a rule refuses the operation.

    Attributes:
        rule: the `Rule.name` of the rule that refused.
        message: what is wrong and, where there is one, how to fix it.

    """

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class Caution:
    """A warning from a rule: the operation may go ahead, but here is something to know.

    A rule returns one instead of a `Violation` to allow with a warning (for example: the
    drained tasks have no room now, but managed scaling will add instances). It lands in
    `Decision.warnings`, in plans, refusals and logs, and never refuses.

    Attributes:
        rule: the `Rule.name` of the rule that warns.
        message: what to know, in words.

    """

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class Decision:
    """The outcome of `Policy.evaluate`: allowed, or refused with every violation.

    ``allowed`` is true exactly when ``violations`` is empty; constructing anything else raises
    `InvalidInputError`. Use `Decision.allow` and `Decision.refuse` rather than the constructor.

    Attributes:
        allowed: whether the operation may go ahead.
        violations: every violation found, in the order of the policy's rules.
        warnings: every `Caution` the rules gave (they never refuse).
        services: for a drain judged as a wave, the numbers of each REPLICA service it
            affects (`ecs_safe.budgets.ServiceImpact`: desired, running, after the wave,
            the floor and budget); empty otherwise.

    """

    allowed: bool
    violations: tuple[Violation, ...] = ()
    warnings: tuple[Caution, ...] = ()
    services: tuple[ServiceImpact, ...] = ()

    def __post_init__(self) -> None:
        # A refusal without a reason (or an allowance with one) cannot be explained to the user.
        if self.allowed == bool(self.violations):
            raise InvalidInputError(
                "a Decision is allowed exactly when it has no violations; "
                "use Decision.allow() or Decision.refuse(violation, ...)"
            )

    @classmethod
    def allow(cls) -> Decision:
        """Return an allowing decision (no violations)."""
        return cls(allowed=True)

    @classmethod
    def refuse(cls, *violations: Violation) -> Decision:
        """Return a refusing decision; needs at least one `Violation`."""
        if not violations:
            raise InvalidInputError("Decision.refuse() needs at least one Violation saying why")
        return cls(allowed=False, violations=violations)

    def summary(self) -> str:
        """One readable message naming every violation, one per line (or ``"allowed"``).

        Warnings follow, one per line, after ``warning:``.
        """
        if self.allowed:
            lines = ["allowed"]
        else:
            count = len(self.violations)
            lines = [f"refused by policy ({count} violation{'s' if count != 1 else ''}):"]
            lines.extend(f"  - {violation}" for violation in self.violations)
        lines.extend(f"  warning: {caution}" for caution in self.warnings)
        return "\n".join(lines)

    def merged(self, other: Decision) -> Decision:
        """Return this decision and ``other`` together: refused if either is, every reason kept."""
        violations = (*self.violations, *other.violations)
        return Decision(
            allowed=not violations,
            violations=violations,
            warnings=(*self.warnings, *other.warnings),
            services=(*self.services, *other.services),
        )

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class Termination:
    """A termination asked for after the deregistration, as the pre-flight found the instance.

    Built by the pre-flight (`ecs_safe.termination`) only when ``terminate=True`` was asked:
    DescribeAutoScalingInstances says whether the EC2 instance is a group member (and whether
    it is protected from scale-in), DescribeInstanceAttribute whether EC2 termination
    protection (``DisableApiTermination``) is on. Rules read it as `PolicyContext.termination`.

    Attributes:
        ec2_instance_id: the EC2 instance to terminate (``None``: the container instance has
            none, e.g. an ECS Anywhere ``mi-`` instance, and nothing can be terminated).
        method: ``"auto-scaling"`` (TerminateInstanceInAutoScalingGroup, for a group member)
            or ``"ec2"`` (TerminateInstances); ``None`` with no EC2 instance.
        auto_scaling_group: the group the instance belongs to, if any.
        decrement_desired_capacity: with ``"auto-scaling"``, lower the group's desired
            capacity by one (no replacement is launched).
        protected_from_scale_in: the group protects the instance from scale-in.
        termination_protected: EC2 termination protection (``DisableApiTermination``) is on.
        allow_protected: the caller asked to terminate a protected instance anyway.

    """

    ec2_instance_id: str | None
    method: TerminationMethod | None
    auto_scaling_group: str | None = None
    decrement_desired_capacity: bool = False
    protected_from_scale_in: bool = False
    termination_protected: bool = False
    allow_protected: bool = False

    def describe(self) -> str:
        """How it is (or would be) terminated, in words: ``auto-scaling, decrement: no``."""
        if self.method == "auto-scaling":
            decrement = "yes" if self.decrement_desired_capacity else "no"
            return f"auto-scaling, decrement: {decrement}"
        return self.method or "nothing to terminate"


@dataclass(frozen=True)
class PolicyContext:
    """Everything a rule may look at: the request and the pre-flight snapshot.

    Attributes:
        cluster: the cluster as the caller gave it (short name or ARN); ``None`` means the
            default cluster.
        container_instance: the `ContainerInstance` as described just before the decision.
        force: whether the deregistration would be forced.
        dry_run: whether this is a dry run (rules normally decide the same either way).
        tasks: the tasks on the instance that are not STOPPED, or ``None`` when they were not
            fetched (the client fetches them only when `Policy.needs_tasks` is true).
        wave: for a drain, the wave this instance drains with and the cluster around it
            (`ecs_safe.capacity.Wave`: the wave's instances and tasks, the other ACTIVE
            instances, the services and task definitions, the simulated placement), or
            ``None`` outside a drain's wave check. Rules that read it set
            ``needs_wave = True``.
        termination: with ``terminate=True``, what terminating the EC2 instance after the
            deregistration would do and the protections found (`Termination`); ``None``
            when no termination is asked (`ProtectTermination` then allows).

    """

    cluster: str | None
    container_instance: ContainerInstance
    force: bool = False
    dry_run: bool = False
    tasks: tuple[Task, ...] | None = None
    wave: Wave | None = None
    termination: Termination | None = None

    def __post_init__(self) -> None:
        # Accept any sequence (a list from list_tasks) but keep the context immutable.
        if self.tasks is not None and not isinstance(self.tasks, tuple):
            object.__setattr__(self, "tasks", tuple(self.tasks))


@runtime_checkable
class Rule(Protocol):
    """What a policy rule is: anything with a ``name`` and a ``check`` method.

    No base class is needed; a plain class with a ``name`` attribute and a synchronous
    ``check(context)`` is a rule, and ``isinstance(obj, Rule)`` is true for it.

    ``name`` identifies the rule in a `Violation`, in logs and in error messages, so it must be a
    non-empty string, unique within a policy.

    ``check`` returns ``None`` to allow and a `Violation` to refuse. It should not raise; if it
    does, the policy refuses (fails closed) with a violation naming the exception.

    Optional capability: a rule that needs the task list sets ``needs_tasks = True``. The client
    reads `Policy.needs_tasks` and, when any rule asks, lists the instance's tasks (ListTasks and
    DescribeTasks) before evaluating, so ``context.tasks`` is filled in. Without it,
    ``context.tasks`` may be ``None``.
    """

    # A read-only property, so that a class attribute, an instance attribute or a property all
    # satisfy the protocol.
    @property
    def name(self) -> str:
        """The rule's unique name, e.g. ``"no-running-tasks-unless-forced"``."""
        ...

    def check(self, context: PolicyContext) -> Violation | Caution | None:
        """Return ``None`` to allow, or a `Violation` saying why the operation is refused.

        A rule may also return a `Caution`: allowed, with a warning.
        """
        ...


@dataclass(frozen=True)
class RuleExample:
    """A documented example of a rule at work: a context, plus the rule's constructor arguments.

    Built-in rules list these in ``VALID`` (the rule allows) and ``INVALID`` (the rule refuses);
    the tests are generated from them.

    Attributes:
        context: the `PolicyContext` to check.
        args: positional arguments for the rule's constructor (empty for rules that take none).
        note: what the example shows, in a few words.

    """

    context: PolicyContext
    args: tuple[object, ...] = ()
    note: str = ""

    def make_rule(self, rule_class: Callable[..., Rule]) -> Rule:
        """Build the rule this example is about: ``rule_class(*self.args)``."""
        return rule_class(*self.args)


class Policy:
    """An ordered set of rules that decides whether a deregistration may go ahead.

    Args:
        rules: the rules, evaluated in this order. An empty policy allows everything.

    Raises:
        InvalidInputError: an item is not a rule (it needs a non-empty ``name`` string and a
            synchronous ``check(context)`` method), is a rule class rather than an instance, or
            two rules share a name. Names must be unique because `Violation.rule` is how callers
            and logs tell the refusing rule apart; combine the settings into one rule instead.

    """

    __slots__ = ("_rules",)

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = _validated_rules(rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in evaluation order."""
        return self._rules

    @property
    def needs_tasks(self) -> bool:
        """Whether any rule asked for the task list (``needs_tasks = True``)."""
        return any(getattr(rule, "needs_tasks", False) for rule in self._rules)

    @property
    def needs_wave(self) -> bool:
        """Whether any rule judges a drain's wave (``needs_wave = True``)."""
        return any(getattr(rule, "needs_wave", False) for rule in self._rules)

    def with_rules(self, *rules: Rule) -> Policy:
        """Return a new policy with ``rules`` appended (this policy is unchanged)."""
        return Policy((*self._rules, *rules))

    def evaluate(self, context: PolicyContext) -> Decision:
        """Run every rule, in order, and collect every violation.

        Never raises because of a rule: a rule that raises an `Exception`, or returns something
        other than a `Violation` or ``None``, becomes a violation of its own, so the policy
        fails closed.
        """
        results = [result for rule in self._rules if (result := _run_rule(rule, context))]
        violations = tuple(r for r in results if isinstance(r, Violation))
        warnings = tuple(r for r in results if isinstance(r, Caution))
        return Decision(allowed=not violations, violations=violations, warnings=warnings)

    def __repr__(self) -> str:
        return f"Policy([{', '.join(repr(rule) for rule in self._rules)}])"


def default_policy() -> Policy:
    """Return the policy used when none is given: no running or pending tasks unless forced."""
    return Policy([NoRunningTasksUnlessForced(), NoPendingTasksUnlessForced()])


def _run_rule(rule: Rule, context: PolicyContext) -> Violation | Caution | None:
    try:
        result: object = rule.check(context)
    except Exception as exc:  # fail closed: any failure of a rule refuses
        return Violation(
            rule.name,
            f"rule {rule.name!r} failed with {type(exc).__name__}: {exc}; "
            "refusing because the policy fails closed",
        )
    if result is None or isinstance(result, Violation | Caution):
        return result
    if inspect.isawaitable(result):
        # Close an un-awaited coroutine so that it does not warn later, far from the cause.
        close = getattr(result, "close", None)
        if callable(close):
            close()
        detail = "an awaitable (check must be synchronous)"
    else:
        detail = f"{type(result).__name__} {result!r}"
    return Violation(
        rule.name,
        f"rule {rule.name!r} returned {detail}, not a Violation or None (or a Caution); "
        "refusing because the policy fails closed",
    )


def _validated_rules(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    what = "a rule needs a non-empty `name` string and a synchronous `check(context)` method"
    if isinstance(rules, str) or not isinstance(rules, Iterable):
        raise InvalidInputError(
            f"Policy takes an iterable of rules, got {type(rules).__name__}; "
            "write Policy([rule, ...])"
        )
    validated: list[Rule] = []
    seen: set[str] = set()
    for rule in rules:
        if isinstance(rule, type):
            # A class has `name` and `check` too, so say what to do instead of failing later.
            raise InvalidInputError(f"pass a rule instance, not the class: {rule.__name__}()")
        if not isinstance(rule, Rule):
            raise InvalidInputError(f"{rule!r} is not a rule: {what}")
        name = rule.name
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"{rule!r} has name {name!r}: {what}")
        if not callable(rule.check) or inspect.iscoroutinefunction(rule.check):
            raise InvalidInputError(f"{rule!r} has an unusable `check`: {what}")
        if name in seen:
            raise InvalidInputError(
                f"two rules are named {name!r}; rule names must be unique in a policy "
                "(combine their settings into one rule)"
            )
        seen.add(name)
        validated.append(rule)
    return tuple(validated)


# --- helpers shared by the built-in rules -----------------------------------------------------


def _instance_label(instance: ContainerInstance) -> str:
    ident = instance.container_instance_arn or instance.ec2_instance_id or "(unknown ARN)"
    return f"container instance {ident}"


def _preview(tasks: Sequence[Task]) -> str:
    arns = [task.task_arn or "(task without ARN)" for task in tasks]
    shown = ", ".join(arns[:_PREVIEW_LIMIT])
    hidden = len(arns) - _PREVIEW_LIMIT
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cluster_name(value: str) -> str | None:
    """Return the cluster name in a short name or a cluster ARN; ``None`` when neither."""
    if not value.startswith("arn:"):
        return value or None
    parts = value.split(":", 5)
    prefix = "cluster/"
    if len(parts) == 6 and parts[2] == "ecs" and parts[5].startswith(prefix):
        return parts[5][len(prefix) :] or None
    return None


def _snapshot(home: str, fields: Mapping[str, object]) -> ContainerInstance:
    return ContainerInstance.model_validate(
        {
            "containerInstanceArn": (
                f"arn:aws:ecs:eu-west-1:123456789012:container-instance/{home}/0123abcd"
            ),
            "ec2InstanceId": "i-0123456789abcdef0",
            "status": "ACTIVE",
            "runningTasksCount": 0,
            "pendingTasksCount": 0,
            "agentConnected": True,
            **fields,
        }
    )


def _task(number: int, *, kind: str = "service", status: str = "RUNNING") -> Task:
    group = "service:web" if kind != "standalone" else "family:batch"
    return Task.model_validate(
        {
            "taskArn": f"arn:aws:ecs:eu-west-1:123456789012:task/prod/task{number:04d}",
            "lastStatus": status,
            "desiredStatus": "RUNNING",
            "group": group,
            "kind": kind,
        }
    )


def _example(
    note: str,
    *,
    args: tuple[object, ...] = (),
    cluster: str | None = "prod",
    force: bool = False,
    tasks: Sequence[Task] | None = None,
    home: str = "prod",
    **fields: object,
) -> RuleExample:
    """Build a `RuleExample` tersely.

    ``home`` is the cluster in the instance's ARN; ``fields`` are camelCase ContainerInstance
    fields overriding an ACTIVE, empty, connected instance.
    """
    return RuleExample(
        context=PolicyContext(
            cluster=cluster,
            container_instance=_snapshot(home, fields),
            force=force,
            tasks=None if tasks is None else tuple(tasks),
        ),
        args=args,
        note=note,
    )


# --- built-in rules ---------------------------------------------------------------------------


class _BuiltinRule:
    """Shared plumbing of the built-in rules (users' rules need none of it)."""

    name: ClassVar[str]
    needs_tasks: ClassVar[bool] = False
    VALID: ClassVar[tuple[RuleExample, ...]] = ()
    INVALID: ClassVar[tuple[RuleExample, ...]] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _UnforcedTaskCountRule(_BuiltinRule):
    """Refuse an unforced deregistration while tasks in some phase are on the instance.

    The counter from the describe is the primary evidence. When the task list was fetched too,
    it also counts (the larger number wins), because counters miss tasks in some states. With
    neither a counter nor a task list there is no evidence that the instance is empty, so the
    rule refuses (fails closed); AWS always sends the counters, so this only bites on a broken
    or non-AWS endpoint.
    """

    _phase: ClassVar[str]
    _counter_alias: ClassVar[str]

    def _counter(self, instance: ContainerInstance) -> int | None:
        raise NotImplementedError

    def _in_phase(self, task: Task) -> bool:
        raise NotImplementedError

    def check(self, context: PolicyContext) -> Violation | None:
        """Refuse when not forced and tasks in this rule's phase are on the instance."""
        if context.force:
            return None
        instance = context.container_instance
        counter = self._counter(instance)
        if counter is None and context.tasks is None:
            return Violation(
                self.name,
                f"cannot tell whether {_instance_label(instance)} has {self._phase} tasks: "
                f"the describe response has no {self._counter_alias}; refusing (fail closed)",
            )
        seen = [task for task in context.tasks or () if self._in_phase(task)]
        count = max(counter or 0, len(seen))
        if count == 0:
            return None
        listed = f": {_preview(seen)}" if seen else ""
        return Violation(
            self.name,
            f"{_instance_label(instance)} has {_plural(count, f'{self._phase} task')}"
            f" ({self._counter_alias}={counter}){listed}; drain it first "
            "(drain_and_deregister) or pass force=True to orphan them",
        )


class NoRunningTasksUnlessForced(_UnforcedTaskCountRule):
    """Refuse an unforced deregistration while tasks are running on the instance.

    The core rule: ECS itself refuses this, but the policy says so before any mutating call and
    with the reasons spelled out. "Running" means ``runningTasksCount`` from the describe and,
    when the task list was fetched, every task that is neither STOPPED nor still starting:
    tasks that are DEACTIVATING, STOPPING or DEPROVISIONING may still hold live connections yet
    are in neither counter, and a status AWS adds later counts as running too.
    A missing ``runningTasksCount`` with no task list refuses (fail closed).
    """

    name = "no-running-tasks-unless-forced"
    _phase = "running"
    _counter_alias = "runningTasksCount"

    def _counter(self, instance: ContainerInstance) -> int | None:
        return instance.running_tasks_count

    def _in_phase(self, task: Task) -> bool:
        return task.last_status != _STOPPED and task.last_status not in _PENDING_STATUSES

    VALID = (
        _example("an empty instance"),
        _example("running tasks, but forced", force=True, runningTasksCount=3),
        _example("only stopped tasks listed", tasks=[_task(1, status="STOPPED")]),
        _example("counter absent, empty task list", tasks=[], runningTasksCount=None),
    )
    INVALID = (
        _example("running tasks", runningTasksCount=2),
        _example("counter absent, no task list", runningTasksCount=None),
        _example("a stopping task the counter misses", tasks=[_task(1, status="DEACTIVATING")]),
    )


class NoPendingTasksUnlessForced(_UnforcedTaskCountRule):
    """Refuse an unforced deregistration while tasks are starting on the instance.

    "Pending" means ``pendingTasksCount`` from the describe and, when the task list was
    fetched, every task that is PROVISIONING, PENDING or ACTIVATING. A missing
    ``pendingTasksCount`` with no task list refuses (fail closed).
    """

    name = "no-pending-tasks-unless-forced"
    _phase = "pending"
    _counter_alias = "pendingTasksCount"

    def _counter(self, instance: ContainerInstance) -> int | None:
        return instance.pending_tasks_count

    def _in_phase(self, task: Task) -> bool:
        return task.last_status in _PENDING_STATUSES

    VALID = (
        _example("nothing pending"),
        _example("pending tasks, but forced", force=True, pendingTasksCount=1),
        _example("a running task is not pending", tasks=[_task(1)], runningTasksCount=1),
    )
    INVALID = (
        _example("pending tasks", pendingTasksCount=4),
        _example("counter absent, no task list", pendingTasksCount=None),
        _example("a provisioning task listed", tasks=[_task(1, status="PROVISIONING")]),
    )


class RequireDraining(_BuiltinRule):
    """Refuse unless the instance is DRAINING, forced or not.

    Draining first lets the service scheduler move service tasks elsewhere within the
    service's deployment limits, so requiring it makes "drain, then deregister" the only path.
    An instance whose status is unknown is refused.
    """

    name = "require-draining"

    def check(self, context: PolicyContext) -> Violation | None:
        """Refuse when the instance's status is anything but DRAINING."""
        instance = context.container_instance
        if instance.status == "DRAINING":
            return None
        status = instance.status or "of unknown status"
        return Violation(
            self.name,
            f"{_instance_label(instance)} is {status}, not DRAINING; "
            "drain it first (drain or drain_and_deregister)",
        )

    VALID = (
        _example("a draining instance", status="DRAINING"),
        _example(
            "draining, forced, tasks left", status="DRAINING", force=True, runningTasksCount=1
        ),
    )
    INVALID = (
        _example("an active instance"),
        _example("forcing does not skip draining", force=True),
        _example("status absent", status=None),
    )


class ProtectStandaloneTasks(_BuiltinRule):
    """Refuse ``force`` while tasks that no service would replace are on the instance.

    A forced deregistration orphans its tasks: service tasks are started again elsewhere, but a
    standalone task (RunTask/StartTask) is simply lost to ECS. This rule asks for the task list
    (``needs_tasks = True``) and refuses a forced deregistration while any standalone task is
    not STOPPED, listing their ARNs. Without ``force`` it allows (the counter rules and ECS
    itself refuse an instance with tasks). When forced and the task list is missing, it refuses,
    since nothing proves the instance is free of standalone tasks (fail closed).
    """

    name = "protect-standalone-tasks"
    needs_tasks = True

    def check(self, context: PolicyContext) -> Violation | None:
        """Refuse a forced deregistration while standalone tasks are not STOPPED."""
        if not context.force:
            return None
        label = _instance_label(context.container_instance)
        if context.tasks is None:
            return Violation(
                self.name,
                f"force=True on {label} needs the task list to prove no standalone task would "
                "be lost, but it was not fetched; refusing (fail closed)",
            )
        standalone = [
            task
            for task in context.tasks
            if task.kind == "standalone" and task.last_status != _STOPPED
        ]
        if not standalone:
            return None
        return Violation(
            self.name,
            f"force=True would orphan {_plural(len(standalone), 'standalone task')} on {label} "
            f"that no service will replace: {_preview(standalone)}; stop them or wait for "
            "them to finish, or deregister without force",
        )

    VALID = (
        _example("not forced", tasks=[_task(1, kind="standalone")], runningTasksCount=1),
        _example(
            "forced, only service tasks", force=True, tasks=[_task(1), _task(2, kind="daemon")]
        ),
        _example(
            "forced, standalone task stopped",
            force=True,
            tasks=[_task(1, kind="standalone", status="STOPPED")],
        ),
        _example("not forced, task list not fetched"),
    )
    INVALID = (
        _example(
            "forced, a standalone task running",
            force=True,
            tasks=[_task(1), _task(2, kind="standalone")],
        ),
        _example(
            "forced, many standalone tasks",
            force=True,
            tasks=[_task(n, kind="standalone") for n in range(8)],
        ),
        _example("forced, task list not fetched", force=True),
    )


class ClusterAllowlist(_BuiltinRule):
    """Refuse any cluster that is not named in the allowlist.

    Args:
        clusters: cluster short names or cluster ARNs (``arn:aws:ecs:REGION:ACCOUNT:cluster/NAME``).
            Clusters are compared by name, so a name and an ARN of the same cluster match.

    Which clusters are checked: the requested cluster (``context.cluster``, a name or an ARN), and
    the cluster embedded in the snapshot's long-format container instance ARN
    (``.../container-instance/CLUSTER/ID``), because that is where the instance actually lives.
    When they differ, both must be allowed. When no cluster was requested and the ARN names
    none, the cluster is ``"default"``, as in ECS.

    Raises:
        InvalidInputError: the allowlist is empty (it would refuse everything), is a single
            string instead of a list, or holds something that is not a cluster name or ARN.

    """

    name = "cluster-allowlist"

    def __init__(self, clusters: Iterable[str]) -> None:
        if isinstance(clusters, str):
            raise InvalidInputError(
                "ClusterAllowlist takes a list of cluster names or ARNs, not one string; "
                f"write ClusterAllowlist([{clusters!r}])"
            )
        if not isinstance(clusters, Iterable):
            raise InvalidInputError(
                "ClusterAllowlist takes a list of cluster names or ARNs, got "
                f"{type(clusters).__name__}; write ClusterAllowlist(['prod'])"
            )
        names: dict[str, None] = {}
        for cluster in clusters:
            parsed = _cluster_name(cluster) if isinstance(cluster, str) else None
            if parsed is None:
                raise InvalidInputError(
                    f"{cluster!r} is not a cluster name or a cluster ARN "
                    "(arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)"
                )
            names[parsed] = None
        if not names:
            raise InvalidInputError(
                "ClusterAllowlist needs at least one cluster; an empty allowlist would refuse "
                "every deregistration"
            )
        self._clusters = tuple(names)

    @property
    def clusters(self) -> tuple[str, ...]:
        """The allowed cluster names (ARNs reduced to names), in the order given."""
        return self._clusters

    def check(self, context: PolicyContext) -> Violation | None:
        """Refuse when the requested or the instance's own cluster is not allowed."""
        checked: list[str] = []
        if context.cluster is not None:
            requested = _cluster_name(context.cluster)
            if requested is None:
                return Violation(
                    self.name,
                    f"{context.cluster!r} is not a cluster name or a cluster ARN; refusing",
                )
            checked.append(requested)
        embedded = context.container_instance.cluster_name
        if embedded is not None and embedded not in checked:
            checked.append(embedded)
        if not checked:
            checked.append(DEFAULT_CLUSTER)
        outside = [cluster for cluster in checked if cluster not in self._clusters]
        if not outside:
            return None
        return Violation(
            self.name,
            f"{_instance_label(context.container_instance)}: cluster "
            f"{', '.join(repr(c) for c in outside)} is not in the allowlist "
            f"({', '.join(self._clusters)})",
        )

    def __repr__(self) -> str:
        return f"ClusterAllowlist({list(self._clusters)!r})"

    VALID = (
        _example("an allowed name", args=(["prod"],)),
        _example(
            "an ARN in the allowlist matches a name",
            args=(["arn:aws:ecs:eu-west-1:123456789012:cluster/prod"],),
        ),
        _example(
            "an ARN in the request matches a name",
            args=(["prod", "blue"],),
            cluster="arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
        ),
        _example("no cluster given: the instance's own", args=(["prod"],), cluster=None),
        _example(
            "no cluster anywhere means default",
            args=(["default"],),
            cluster=None,
            containerInstanceArn="arn:aws:ecs:eu-west-1:123456789012:container-instance/0123abcd",
        ),
    )
    INVALID = (
        _example("a cluster not named", args=(["prod"],), cluster="staging"),
        _example(
            "the instance lives in another cluster",
            args=(["prod"],),
            home="staging",
        ),
        _example(
            "no cluster anywhere means default",
            args=(["prod"],),
            cluster=None,
            containerInstanceArn="arn:aws:ecs:eu-west-1:123456789012:container-instance/0123abcd",
        ),
        _example(
            "not a cluster ARN", args=(["prod"],), cluster="arn:aws:ecs:eu-west-1:1:service/x"
        ),
    )


def _termination_example(
    note: str,
    *,
    ec2_instance_id: str | None = "i-0123456789abcdef0",
    method: TerminationMethod | None = "auto-scaling",
    auto_scaling_group: str | None = "web-asg",
    protected_from_scale_in: bool = False,
    termination_protected: bool = False,
    allow_protected: bool = False,
) -> RuleExample:
    """A `RuleExample` of an empty instance whose EC2 instance would be terminated."""
    base = _example(note).context
    termination = Termination(
        ec2_instance_id=ec2_instance_id,
        method=method,
        auto_scaling_group=auto_scaling_group,
        protected_from_scale_in=protected_from_scale_in,
        termination_protected=termination_protected,
        allow_protected=allow_protected,
    )
    context = PolicyContext(
        cluster=base.cluster, container_instance=base.container_instance, termination=termination
    )
    return RuleExample(context=context, note=note)


class ProtectTermination(_BuiltinRule):
    """Refuse to terminate an instance that is protected, unless ``allow_protected``.

    Asked only with ``terminate=True`` (`PolicyContext.termination` is set; otherwise it
    allows), and added by the gate to any policy for such a request: protection is the
    owner's explicit "do not remove this one". Refuses, before any mutating call, when the
    Auto Scaling group protects the instance from scale-in or EC2 termination protection
    (``DisableApiTermination``) is on, naming which; and when there is no EC2 instance to
    terminate at all (an ECS Anywhere instance). ``allow_protected=True`` lets the protected
    ones through: TerminateInstanceInAutoScalingGroup terminates an instance protected from
    scale-in, but EC2 still refuses TerminateInstances with termination protection on (the
    instance is then deregistered and not terminated, and the error says so).
    """

    name = "termination-protection"

    def check(self, context: PolicyContext) -> Violation | None:
        """Refuse a termination of a protected instance (or of no EC2 instance at all)."""
        termination = context.termination
        if termination is None:
            return None
        label = _instance_label(context.container_instance)
        if termination.ec2_instance_id is None or termination.method is None:
            return Violation(
                self.name,
                f"terminate=True, but {label} has no EC2 instance to terminate (an ECS "
                "Anywhere instance?); deregister it without terminate",
            )
        if termination.allow_protected:
            return None
        protections = []
        if termination.protected_from_scale_in:
            protections.append(
                f"scale-in protection in Auto Scaling group {termination.auto_scaling_group}"
            )
        if termination.termination_protected:
            protections.append("EC2 termination protection (DisableApiTermination)")
        if not protections:
            return None
        return Violation(
            self.name,
            f"EC2 instance {termination.ec2_instance_id} of {label} has "
            f"{' and '.join(protections)}; remove the protection, or pass "
            "allow_protected=True to terminate it anyway",
        )

    VALID = (
        _termination_example("a group member without protection"),
        _termination_example("a plain EC2 instance", method="ec2", auto_scaling_group=None),
        _termination_example(
            "protected, but allow_protected",
            protected_from_scale_in=True,
            termination_protected=True,
            allow_protected=True,
        ),
        _example("no termination asked"),
    )
    INVALID = (
        _termination_example("scale-in protection", protected_from_scale_in=True),
        _termination_example(
            "EC2 termination protection",
            method="ec2",
            auto_scaling_group=None,
            termination_protected=True,
        ),
        _termination_example(
            "no EC2 instance, even with allow_protected",
            ec2_instance_id=None,
            method=None,
            allow_protected=True,
        ),
    )


# --- service-aware rules: judged on a drain's whole wave --------------------------------------
# These read `PolicyContext.wave` (``needs_wave = True``): the gate fills it in once per wave
# of drains (`ecs_safe._gate.Gate.judge_wave`). Outside a wave (a plain deregistration) they
# allow. The numbers come from `ecs_safe.capacity` (placement) and `ecs_safe.budgets`.

_ACCOUNT_PREFIX = "arn:aws:ecs:eu-west-1:123456789012"


def _wave_service(
    name: str,
    *,
    desired: int = 3,
    running: int | None = None,
    minimum: int = 100,
    maximum: int = 200,
    rollout: str = "COMPLETED",
    provider: str | None = None,
    distinct: bool = False,
) -> Service:
    return Service.model_validate(
        {
            "serviceName": name,
            "serviceArn": f"{_ACCOUNT_PREFIX}:service/prod/{name}",
            "status": "ACTIVE",
            "schedulingStrategy": "REPLICA",
            "desiredCount": desired,
            "runningCount": desired if running is None else running,
            "deploymentConfiguration": {
                "minimumHealthyPercent": minimum,
                "maximumPercent": maximum,
            },
            "deployments": [
                {"id": f"ecs-svc/{name}", "status": "PRIMARY", "rolloutState": rollout}
            ],
            **(
                {"capacityProviderStrategy": [{"capacityProvider": provider, "weight": 1}]}
                if provider
                else {}
            ),
            **({"placementConstraints": [{"type": "distinctInstance"}]} if distinct else {}),
        }
    )


def _wave_instance(number: int, *, cpu: int = 1024, memory: int = 2048) -> ContainerInstance:
    return ContainerInstance.model_validate(
        {
            "containerInstanceArn": f"{_ACCOUNT_PREFIX}:container-instance/prod/{number:08x}",
            "status": "ACTIVE",
            "agentConnected": True,
            "remainingResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
                {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]},
            ],
        }
    )


def _wave_task(number: int, service: str, instance: ContainerInstance, size: str) -> Task:
    return Task.model_validate(
        {
            "taskArn": f"{_ACCOUNT_PREFIX}:task/prod/{service}{number:04d}",
            "lastStatus": "RUNNING",
            "desiredStatus": "RUNNING",
            "group": f"service:{service}",
            "startedBy": f"ecs-svc/{service}",
            "containerInstanceArn": instance.container_instance_arn,
            "taskDefinitionArn": f"{_ACCOUNT_PREFIX}:task-definition/{size}:1",
            "kind": "service",
        }
    )


#: The task definitions of the examples: "small" (256 CPU, 512 MiB), "big" (1024, 2048) and
#: "port" (256, 512, host port 8080).
_WAVE_DEFINITIONS = {
    f"{_ACCOUNT_PREFIX}:task-definition/{size}:1": TaskDefinition.model_validate(
        {
            "taskDefinitionArn": f"{_ACCOUNT_PREFIX}:task-definition/{size}:1",
            "containerDefinitions": [
                {
                    "name": size,
                    "cpu": cpu,
                    "memory": memory,
                    **({"portMappings": [{"containerPort": 80, "hostPort": 8080}]} if port else {}),
                }
            ],
        }
    )
    for size, cpu, memory, port in (
        ("small", 256, 512, False),
        ("big", 1024, 2048, False),
        ("port", 256, 512, True),
    )
}


def _wave_example(
    note: str,
    *,
    args: tuple[object, ...] = (),
    drained: Sequence[tuple[str, str, int]] = (("web", "small", 1),),
    wave_size: int = 1,
    targets: Sequence[tuple[int, int]] = ((1024, 2048),),
    services: Sequence[Service] = (),
    providers: Sequence[CapacityProvider] = (),
    in_wave: bool = True,
    judged: int = 0,
) -> RuleExample:
    """Build a wave example tersely.

    ``drained``: (service, task size, count) of the tasks on each of the ``wave_size``
    instances being drained (the first is the instance judged); ``targets``: (CPU, MiB) left
    on each other ACTIVE instance; ``services``: the services (default: a healthy "web");
    ``in_wave=False``: the same instance judged outside a drain's wave; ``judged``: which
    of the wave's instances the context is about.
    """
    instances = [_wave_instance(n) for n in range(wave_size)]
    tasks: dict[str, tuple[Task, ...]] = {}
    for n, instance in enumerate(instances):
        tasks[instance.container_instance_arn or ""] = tuple(
            _wave_task(100 * n + i, service, instance, size)
            for service, size, count in drained
            for i in range(count)
        )
    wave = Wave(
        instances=tuple(instances),
        tasks=tasks,
        targets=tuple(
            _wave_instance(1000 + n, cpu=c, memory=m) for n, (c, m) in enumerate(targets)
        ),
        services={s.service_name or "": s for s in services or [_wave_service("web")]},
        task_definitions=_WAVE_DEFINITIONS,
        capacity_providers={p.name or "": p for p in providers},
    )
    first = instances[judged]
    return RuleExample(
        context=PolicyContext(
            cluster="prod",
            container_instance=first,
            tasks=tasks[first.container_instance_arn or ""],
            wave=wave if in_wave else None,
        ),
        args=args,
        note=note,
    )


def _scaling_provider(name: str) -> CapacityProvider:
    return CapacityProvider.model_validate(
        {
            "name": name,
            "status": "ACTIVE",
            "autoScalingGroupProvider": {"managedScaling": {"status": "ENABLED"}},
        }
    )


class RoomElsewhere(_BuiltinRule):
    """Refuse a drain whose service tasks have nowhere to go.

    Draining an instance whose tasks fit nowhere else leaves them running (ECS never stops a
    service task for lack of room) until the drain's deadline. This rule simulates the
    placement of every moving task of the whole wave on the cluster's other ACTIVE
    instances (`ecs_safe.capacity.pack`: CPU, memory, static host ports, ``distinctInstance``;
    first-fit decreasing, a conservative check) and refuses with every task of this instance
    that has nowhere to go. Where the service's capacity provider has managed scaling
    ENABLED, ECS will add instances: the rule warns (a `Caution`) instead of refusing.

    On by default for ``drain_and_deregister``, ``deregister_many(drain=True)`` and the CLI's
    ``drain``; pass ``require_room=False`` (``--no-room-check``) to skip it. Outside a drain's
    wave (``context.wave`` is ``None``) it allows.
    """

    name = "room-elsewhere"
    needs_wave = True

    def check(self, context: PolicyContext) -> Violation | Caution | None:
        """Refuse (or warn) when tasks of this instance fit nowhere else in the cluster."""
        wave = context.wave
        if wave is None:
            return None
        placement = wave.placement
        mine = placement.unplaced_on(context.container_instance.container_instance_arn)
        blocked = [u for u in mine if not u.scales]
        scaling = [u for u in mine if u.scales]
        label = _instance_label(context.container_instance)
        total = len(placement.placed) + len(placement.unplaced)
        if blocked:
            listed = "; ".join(u.describe() for u in blocked)
            more = (
                f" ({len(placement.unplaced)} of the wave's {total})"
                if len(wave.instances) > 1
                else ""
            )
            return Violation(
                self.name,
                f"{_plural(len(blocked), 'service task')} on {label} would have nowhere to go"
                f"{more}: {listed}. Add capacity first, drain fewer instances at once, or pass "
                "require_room=False (--no-room-check) to drain anyway",
            )
        if scaling:
            listed = "; ".join(u.describe() for u in scaling)
            verb = "has" if len(scaling) == 1 else "have"
            return Caution(
                self.name,
                f"{_plural(len(scaling), 'service task')} on {label} {verb} no room now, but "
                f"the capacity provider has managed scaling ENABLED, so ECS will add "
                f"instances: {listed}",
            )
        unjudged = [
            t.task_arn
            for t in context.tasks or ()
            if t.task_arn and t.task_arn in placement.unjudged
        ]
        if unjudged:
            return Caution(
                self.name,
                f"memberOf placement constraints were not evaluated for {', '.join(unjudged)}",
            )
        return None

    VALID = (
        _wave_example("the task fits on another instance"),
        _wave_example("three fit on one big instance", drained=(("web", "small", 3),)),
        _wave_example(
            "a wave of two packs onto two instances",
            drained=(("web", "big", 1),),
            wave_size=2,
            targets=((1024, 2048), (1024, 2048)),
        ),
        _wave_example("nothing to move", drained=()),
        _wave_example("outside a drain's wave", targets=(), in_wave=False),
    )
    INVALID = (
        _wave_example("no other ACTIVE instance", targets=()),
        _wave_example(
            "not enough memory anywhere", drained=(("web", "big", 1),), targets=((2048, 1024),)
        ),
        _wave_example(
            "the wave's first instance takes the room, the second has none",
            drained=(("web", "big", 1),),
            wave_size=2,
            judged=1,
        ),
        _wave_example(
            "a host port taken by the wave's own task",
            drained=(("web", "port", 2),),
            targets=((4096, 8192),),
        ),
    )
    #: Examples that allow with a warning (managed scaling will add capacity).
    WARN = (
        _wave_example(
            "no room, but managed scaling is ENABLED",
            targets=(),
            services=(_wave_service("web", provider="asg"),),
            providers=(_scaling_provider("asg"),),
        ),
    )


class DisruptionBudgets(_BuiltinRule):
    """Refuse a drain's wave that would take a service below its floor (a disruption budget).

    Counts every instance of the wave (`ecs_safe.budgets`): for each REPLICA service with
    tasks on this instance, refuse when the service is degraded already (``runningCount <
    desiredCount``) or a deployment is in progress or failed; when ECS could not keep its
    ``minimumHealthyPercent`` within ``maximumPercent`` while replacing the wave's tasks; or
    when the tasks on the wave's instances exceed the user's budget. The refusal names the
    service's numbers: desired, running, after the wave, the floor and the budget.

    Args:
        budgets: `DisruptionBudget` values (a service name or glob pattern, a count or a
            percentage); the first that matches a service is its budget. With none, the
            service's own ECS limits and health still apply.

    Not in `default_policy`: add it (``default_policy().with_rules(DisruptionBudgets(
    DisruptionBudget(service="web*", max_unavailable="10%")))``). Outside a drain's wave it
    allows.
    """

    name = "disruption-budgets"
    needs_wave = True

    def __init__(self, *budgets: DisruptionBudget) -> None:
        for budget in budgets:
            if not isinstance(budget, DisruptionBudget):
                raise InvalidInputError(
                    f"DisruptionBudgets takes DisruptionBudget values, got {budget!r}; write "
                    "DisruptionBudgets(DisruptionBudget(service='web', max_unavailable=1))"
                )
        self._budgets = budgets

    @property
    def budgets(self) -> tuple[DisruptionBudget, ...]:
        """The user's budgets, in the order given."""
        return self._budgets

    def check(self, context: PolicyContext) -> Violation | None:
        """Refuse when the wave breaks the floor of a service with tasks on this instance."""
        wave = context.wave
        if wave is None:
            return None
        here = {
            name
            for task in context.tasks or ()
            if task.kind == "service" and (name := service_name(task.group))
        }
        broken = [
            impact
            for impact in _budgets.impacts(wave, self._budgets)
            if impact.service in here and not impact.ok
        ]
        if not broken:
            return None
        reasons = "; ".join(f"{i.summary()}: {', '.join(i.problems)}" for i in broken)
        return Violation(
            self.name,
            f"draining {_instance_label(context.container_instance)} with this wave would "
            f"break the disruption budget of {_plural(len(broken), 'service')}: {reasons}. "
            "Drain fewer instances at once, or wait until the service is steady",
        )

    def __repr__(self) -> str:
        return f"DisruptionBudgets({', '.join(repr(b) for b in self._budgets)})"

    VALID = (
        _wave_example("one of three tasks, ECS's defaults"),
        _wave_example(
            "within a budget of one",
            args=(DisruptionBudget("web*", max_unavailable=1),),
        ),
        _wave_example(
            "within 50% of four",
            args=(DisruptionBudget("*", max_unavailable="50%"),),
            drained=(("web", "small", 2),),
            services=(_wave_service("web", desired=4),),
        ),
        _wave_example(
            "a budget for another service",
            args=(DisruptionBudget("api", max_unavailable=0),),
        ),
    )
    INVALID = (
        _wave_example(
            "two hosts of one service against a budget of one",
            args=(DisruptionBudget("web", max_unavailable=1),),
            wave_size=2,
        ),
        _wave_example(
            "below minimumHealthyPercent with no surge",
            drained=(("web", "small", 2),),
            services=(_wave_service("web", desired=3, minimum=50, maximum=100),),
        ),
        _wave_example("degraded already", services=(_wave_service("web", desired=3, running=2),)),
        _wave_example(
            "a deployment in progress",
            services=(_wave_service("web", rollout="IN_PROGRESS"),),
        ),
        _wave_example(
            "10% of five allows none",
            args=(DisruptionBudget("web", max_unavailable="10%"),),
            services=(_wave_service("web", desired=5),),
        ),
    )
