"""Tests for ecs_safe.policy; built-in rules are tested from their own VALID/INVALID examples."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ecs_safe import policy as policy_module
from ecs_safe.errors import InvalidInputError
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.policy import (
    ClusterAllowlist,
    Decision,
    NoPendingTasksUnlessForced,
    NoRunningTasksUnlessForced,
    Policy,
    PolicyContext,
    ProtectStandaloneTasks,
    RequireDraining,
    Rule,
    RuleExample,
    Violation,
    default_policy,
)

# Discovered rather than listed, so that a new built-in rule is tested from its examples at once.
BUILTIN_RULES: list[type[Any]] = [
    obj
    for name in policy_module.__all__
    if isinstance(obj := getattr(policy_module, name), type) and hasattr(obj, "INVALID")
]


def _cases(kind: str) -> list[Any]:
    return [
        pytest.param(rule_class, example, id=f"{rule_class.name}:{example.note}")
        for rule_class in BUILTIN_RULES
        for example in getattr(rule_class, kind)
    ]


def _context(
    *,
    force: bool = False,
    cluster: str | None = "prod",
    tasks: tuple[Task, ...] | None = None,
    **fields: object,
) -> PolicyContext:
    instance = ContainerInstance.model_validate(
        {
            "containerInstanceArn": "arn:aws:ecs:eu-west-1:1:container-instance/prod/abc",
            "status": "ACTIVE",
            "runningTasksCount": 0,
            "pendingTasksCount": 0,
            **fields,
        }
    )
    return PolicyContext(cluster=cluster, container_instance=instance, force=force, tasks=tasks)


class Named:
    """A user-written rule: a plain class, no base class."""

    def __init__(self, name: str, violation: str | None = None) -> None:
        self.name = name
        self.violation = violation

    def check(self, context: PolicyContext) -> Violation | None:
        return Violation(self.name, self.violation) if self.violation else None


class Raising:
    name = "raising"

    def check(self, context: PolicyContext) -> Violation | None:
        raise KeyError("boom")


class ReturnsString:
    name = "returns-string"

    def check(self, context: PolicyContext) -> Violation | None:
        return "nope"  # type: ignore[return-value]


class NeedsTasks:
    name = "needs-tasks"
    needs_tasks = True

    def check(self, context: PolicyContext) -> Violation | None:
        return None


# --- generated from the examples ----------------------------------------------------------


def test_every_builtin_rule_is_discovered_and_has_examples() -> None:
    assert {cls.__name__ for cls in BUILTIN_RULES} == {
        "ClusterAllowlist",
        "DisruptionBudgets",
        "NoPendingTasksUnlessForced",
        "NoRunningTasksUnlessForced",
        "ProtectStandaloneTasks",
        "ProtectTermination",
        "RequireDraining",
        "RoomElsewhere",
    }
    for rule_class in BUILTIN_RULES:
        assert rule_class.VALID, rule_class
        assert rule_class.INVALID, rule_class
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule_class.name), rule_class.name
    assert len({cls.name for cls in BUILTIN_RULES}) == len(BUILTIN_RULES)


@pytest.mark.parametrize(("rule_class", "example"), _cases("VALID"))
def test_valid_example_is_allowed(rule_class: type[Any], example: RuleExample) -> None:
    rule = example.make_rule(rule_class)
    assert isinstance(rule, Rule)
    assert rule.check(example.context) is None


@pytest.mark.parametrize(("rule_class", "example"), _cases("INVALID"))
def test_invalid_example_is_refused(rule_class: type[Any], example: RuleExample) -> None:
    rule = example.make_rule(rule_class)
    violation = rule.check(example.context)
    assert isinstance(violation, Violation)
    assert violation.rule == rule.name
    assert violation.message
    # Through a policy too: the same example refuses, and only with this rule's violation.
    decision = Policy([rule]).evaluate(example.context)
    assert not decision.allowed
    assert decision.violations == (violation,)


# --- messages of the built-in rules -------------------------------------------------------


def test_running_tasks_message_names_count_and_fix() -> None:
    violation = NoRunningTasksUnlessForced().check(_context(runningTasksCount=3))
    assert violation is not None
    assert "3 running tasks" in violation.message
    assert "runningTasksCount=3" in violation.message
    assert "container-instance/prod/abc" in violation.message
    assert "force=True" in violation.message


def test_task_list_beats_a_lower_counter() -> None:
    task = Task(task_arn="arn:task/1", last_status="STOPPING", group="service:x", kind="service")
    violation = NoRunningTasksUnlessForced().check(_context(tasks=(task,)))
    assert violation is not None
    assert "1 running task " in violation.message
    assert "arn:task/1" in violation.message


def test_standalone_message_lists_first_arns_and_count() -> None:
    tasks = tuple(
        Task(task_arn=f"arn:task/{n}", last_status="RUNNING", group="family:x", kind="standalone")
        for n in range(8)
    )
    violation = ProtectStandaloneTasks().check(_context(force=True, tasks=tasks))
    assert violation is not None
    assert "8 standalone tasks" in violation.message
    assert "arn:task/0, arn:task/1, arn:task/2, arn:task/3, arn:task/4 and 3 more" in (
        violation.message
    )
    assert "arn:task/5" not in violation.message


def test_require_draining_message_names_status() -> None:
    violation = RequireDraining().check(_context(status="ACTIVE"))
    assert violation is not None
    assert "is ACTIVE, not DRAINING" in violation.message


def test_cluster_allowlist_normalises_arns() -> None:
    rule = ClusterAllowlist(["arn:aws:ecs:eu-west-1:1:cluster/prod", "blue", "prod"])
    assert rule.clusters == ("prod", "blue")
    assert repr(rule) == "ClusterAllowlist(['prod', 'blue'])"


def test_cluster_allowlist_checks_requested_and_embedded_cluster() -> None:
    # Requested prod, but the instance lives in staging: both must be allowed.
    context = _context(
        cluster="prod",
        containerInstanceArn="arn:aws:ecs:eu-west-1:1:container-instance/staging/abc",
    )
    violation = ClusterAllowlist(["prod"]).check(context)
    assert violation is not None
    assert "'staging'" in violation.message
    assert "'prod'" not in violation.message
    assert ClusterAllowlist(["prod", "staging"]).check(context) is None


@pytest.mark.parametrize(
    "clusters",
    [
        pytest.param([], id="empty"),
        pytest.param("prod", id="single-string"),
        pytest.param([""], id="empty-name"),
        pytest.param(["arn:aws:ecs:eu-west-1:1:service/x"], id="not-a-cluster-arn"),
        pytest.param([42], id="not-a-string"),
    ],
)
def test_cluster_allowlist_rejects_bad_input(clusters: Any) -> None:
    with pytest.raises(InvalidInputError):
        ClusterAllowlist(clusters)


def test_single_string_allowlist_message_shows_fix() -> None:
    with pytest.raises(InvalidInputError, match=re.escape("ClusterAllowlist(['prod'])")):
        ClusterAllowlist("prod")


# --- the policy -----------------------------------------------------------------------------


def test_evaluate_collects_every_violation_in_order() -> None:
    policy = Policy([Named("a", "first"), Named("b"), Named("c", "third")])
    decision = policy.evaluate(_context())
    assert not decision.allowed
    assert decision.violations == (Violation("a", "first"), Violation("c", "third"))


def test_evaluate_allows_when_no_rule_objects() -> None:
    decision = Policy([Named("a"), Named("b")]).evaluate(_context())
    assert decision == Decision.allow()
    assert Policy([]).evaluate(_context()).allowed


def test_builtin_rules_together_list_every_blocker() -> None:
    policy = default_policy().with_rules(RequireDraining())
    decision = policy.evaluate(_context(runningTasksCount=2, pendingTasksCount=1))
    assert [v.rule for v in decision.violations] == [
        "no-running-tasks-unless-forced",
        "no-pending-tasks-unless-forced",
        "require-draining",
    ]


def test_raising_rule_fails_closed_and_others_still_run() -> None:
    decision = Policy([Raising(), Named("after", "also")]).evaluate(_context())
    assert not decision.allowed
    first, second = decision.violations
    assert first.rule == "raising"
    assert "failed with KeyError: 'boom'" in first.message
    assert second == Violation("after", "also")


def test_bad_return_value_fails_closed() -> None:
    decision = Policy([ReturnsString()]).evaluate(_context())
    assert not decision.allowed
    (violation,) = decision.violations
    assert violation.rule == "returns-string"
    assert "str 'nope'" in violation.message
    assert "not a Violation or None" in violation.message


def test_awaitable_return_value_fails_closed_without_warning() -> None:
    class SneakyAsync:
        name = "sneaky-async"

        def check(self, context: PolicyContext) -> Violation | None:
            async def inner() -> None:
                return None

            return inner()  # type: ignore[return-value]

    # filterwarnings = error would turn an un-awaited coroutine warning into a failure.
    decision = Policy([SneakyAsync()]).evaluate(_context())
    assert not decision.allowed
    assert "check must be synchronous" in decision.violations[0].message


def test_base_exception_is_not_swallowed() -> None:
    class Interrupting:
        name = "interrupting"

        def check(self, context: PolicyContext) -> Violation | None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Policy([Interrupting()]).evaluate(_context())


def test_needs_tasks() -> None:
    assert not default_policy().needs_tasks
    assert not Policy([]).needs_tasks
    assert Policy([Named("a"), NeedsTasks()]).needs_tasks
    assert default_policy().with_rules(ProtectStandaloneTasks()).needs_tasks


def test_user_written_plain_rule_works() -> None:
    rule = Named("not-on-fridays", "no deregistrations on Fridays")
    assert isinstance(rule, Rule)
    policy = default_policy().with_rules(rule)
    decision = policy.evaluate(_context())
    assert decision.violations == (Violation("not-on-fridays", "no deregistrations on Fridays"),)


def test_default_policy_contents() -> None:
    rules = default_policy().rules
    assert [type(rule) for rule in rules] == [
        NoRunningTasksUnlessForced,
        NoPendingTasksUnlessForced,
    ]
    assert default_policy().evaluate(_context()).allowed
    assert default_policy().evaluate(_context(force=True, runningTasksCount=5)).allowed


def test_rules_are_a_tuple_in_order_and_with_rules_copies() -> None:
    base = Policy([Named("a")])
    extended = base.with_rules(Named("b"), Named("c"))
    assert [rule.name for rule in extended.rules] == ["a", "b", "c"]
    assert [rule.name for rule in base.rules] == ["a"]
    assert isinstance(extended.rules, tuple)
    assert Policy(iter([Named("x")])).rules[0].name == "x"
    assert repr(default_policy()) == (
        "Policy([NoRunningTasksUnlessForced(), NoPendingTasksUnlessForced()])"
    )


class NoCheck:
    name = "no-check"


class AsyncCheck:
    name = "async-check"

    async def check(self, context: PolicyContext) -> Violation | None:
        return None


class EmptyName:
    name = ""

    def check(self, context: PolicyContext) -> Violation | None:
        return None


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        pytest.param([object()], "needs a non-empty `name`", id="not-a-rule"),
        pytest.param([NoCheck()], "needs a non-empty `name`", id="no-check"),
        pytest.param([EmptyName()], "has name ''", id="empty-name"),
        pytest.param([AsyncCheck()], "synchronous", id="async-check"),
        pytest.param([NoRunningTasksUnlessForced], "NoRunningTasksUnlessForced()", id="class"),
        pytest.param([Named("a"), Named("a")], "two rules are named 'a'", id="duplicate"),
        pytest.param(NoRunningTasksUnlessForced(), "Policy([rule, ...])", id="not-iterable"),
        pytest.param("rules", "Policy([rule, ...])", id="string"),
    ],
)
def test_policy_rejects_bad_rules(rules: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        Policy(rules)


def test_duplicate_via_with_rules_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="unique"):
        default_policy().with_rules(NoRunningTasksUnlessForced())


# --- values -----------------------------------------------------------------------------------


def test_decision_formatting_lists_every_violation() -> None:
    decision = Decision.refuse(Violation("a", "first problem"), Violation("b", "second problem"))
    assert str(decision) == decision.summary()
    assert decision.summary() == (
        "refused by policy (2 violations):\n  - a: first problem\n  - b: second problem"
    )
    assert (
        Decision.refuse(Violation("a", "x")).summary().startswith("refused by policy (1 violation)")
    )
    assert str(Decision.allow()) == "allowed"
    assert str(Violation("a", "x")) == "a: x"


def test_decision_is_consistent() -> None:
    with pytest.raises(InvalidInputError):
        Decision.refuse()
    with pytest.raises(InvalidInputError):
        Decision(allowed=False)
    with pytest.raises(InvalidInputError):
        Decision(allowed=True, violations=(Violation("a", "x"),))


def test_values_are_frozen() -> None:
    context = _context()
    with pytest.raises(AttributeError):
        context.force = True  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Violation("a", "x").rule = "b"  # type: ignore[misc]


def test_context_tasks_become_a_tuple() -> None:
    task = Task(task_arn="arn:task/1", last_status="RUNNING", group="family:x", kind="standalone")
    context = PolicyContext(
        cluster=None,
        container_instance=ContainerInstance.model_validate({}),
        tasks=[task],  # type: ignore[arg-type]
    )
    assert context.tasks == (task,)


def test_protocol_isinstance() -> None:
    assert isinstance(NoRunningTasksUnlessForced(), Rule)
    assert isinstance(ClusterAllowlist(["prod"]), Rule)
    assert isinstance(Named("x"), Rule)
    assert not isinstance(NoCheck(), Rule)
    assert not isinstance(object(), Rule)


def test_all_is_sorted_and_complete() -> None:
    assert policy_module.__all__ == sorted(policy_module.__all__)
    public = {
        name
        for name, value in vars(policy_module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == policy_module.__name__
    }
    assert public == set(policy_module.__all__)
