"""Every documented rule reads only fields that the real snapshots hold (issue 13, item 5).

A rule that reads a field the pre-flight never fetches (``tags`` from a describe without
``include=["TAGS"]``, a task's tags from a DescribeTasks that did not ask for them, a name that
is no field of ECS's answer at all) sees ``None`` and never refuses: silently. This test runs
every documented rule (the built-ins of `ecs_safe.policy`, and every rule defined in the docs,
the examples and the policy module's docstring) over REAL shapes:

- the actual pre-flight path: a dry-run deregistration by an `EcsSafeClient` against
  `LocalEcs`, whose requests and answers are captured on the wire (botocore's event hooks);
- moto's DescribeContainerInstances answers, asked with every ``include`` and without.

Each rule runs against a recording stand-in of the `ContainerInstance` and of each `Task`, so
every field it reads is known. A read is a defect when the field is not in botocore's shape of
the call's answer, when it is a field ECS returns only if asked (``include``) and the call did
not ask, or when no real answer where the rule read it ever held it. The bad rules at the end
show the check failing.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import datetime
import functools
import inspect
import json
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3  # type: ignore[import-untyped]
import botocore.session
import pytest
from pydantic.alias_generators import to_camel

import ecs_safe
import ecs_safe.policy
from ecs_safe import (
    Caution,
    EcsSafeClient,
    Policy,
    PolicyContext,
    PolicyViolationError,
    Rule,
    Violation,
)
from ecs_safe.local import LocalEcs
from ecs_safe.models import ContainerInstance, Task

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "prod"
DESCRIBE = "DescribeContainerInstances"
DESCRIBE_TASKS = "DescribeTasks"
#: The members of an answer that ECS returns only when the request's ``include`` names them.
#: Checked against botocore's enums below, so a new include value fails this test.
INCLUDE_GATED: Mapping[str, Mapping[str, str]] = {
    DESCRIBE: {"TAGS": "tags", "CONTAINER_INSTANCE_HEALTH": "healthStatus"},
    DESCRIBE_TASKS: {"TAGS": "tags"},
}
#: Where each model comes from: the operation, and the key of its list in the answer.
SOURCES: Mapping[str, tuple[str, str, str]] = {
    "ContainerInstance": (DESCRIBE, "containerInstances", "containerInstanceArn"),
    "Task": (DESCRIBE_TASKS, "tasks", "taskArn"),
}
#: Fields that are ecs-safe's own, not ECS's: always set.
OURS: Mapping[str, frozenset[str]] = {"Task": frozenset({"kind"})}

pytestmark = pytest.mark.usefixtures("instant_retries")


# --------------------------------------------------------------------------- ECS's shapes


@functools.cache
def _ecs_model() -> Any:
    return botocore.session.get_session().get_service_model("ecs")


def _members(operation: str, key: str) -> frozenset[str]:
    shape = _ecs_model().operation_model(operation).output_shape.members[key].member
    return frozenset(shape.members)


def _include_values(operation: str) -> frozenset[str]:
    return frozenset(
        _ecs_model().operation_model(operation).input_shape.members["include"].member.enum
    )


def test_the_include_gated_members_are_botocores() -> None:
    for operation, gated in INCLUDE_GATED.items():
        assert set(gated) == _include_values(operation), operation
        _, key, _ = next(s for s in SOURCES.values() if s[0] == operation)
        assert set(gated.values()) <= _members(operation, key), operation


# --------------------------------------------------------------------------- recording reads


class Recording:
    """A read-only stand-in for a model that records the name of every attribute read.

    A property (``cluster_name``, ``instance_id``) is run against the stand-in, so what it is
    derived from is recorded instead of its own name.
    """

    __slots__ = ("_reads", "_target")

    def __init__(self, target: object, reads: set[str]) -> None:
        self._target = target
        self._reads = reads

    def __getattr__(self, name: str) -> Any:
        derived = getattr(type(self._target), name, None)
        if isinstance(derived, property) and derived.fget is not None:
            return derived.fget(self)
        self._reads.add(name)  # before the read: a name that raises is a read too
        return getattr(self._target, name)


@dataclass
class Evaluation:
    """One rule's check of one context: what it read, and the wire answers the context came from."""

    rule: str
    instance_reads: set[str] = field(default_factory=set)
    task_reads: set[str] = field(default_factory=set)
    instance_item: Mapping[str, Any] = field(default_factory=dict)
    instance_include: frozenset[str] = frozenset()
    task_items: list[Mapping[str, Any]] = field(default_factory=list)
    task_include: frozenset[str] = frozenset()


def recorded_check(
    rule: Rule, context: PolicyContext
) -> tuple[Violation | Caution | None, Evaluation]:
    """Run ``rule`` on ``context`` through recording stand-ins; its answer and its reads."""
    evaluation = Evaluation(rule.name)
    instance = Recording(context.container_instance, evaluation.instance_reads)
    tasks = None
    if context.tasks is not None:
        tasks = tuple(cast(Task, Recording(t, evaluation.task_reads)) for t in context.tasks)
    recorded = dataclasses.replace(
        context, container_instance=cast(ContainerInstance, instance), tasks=tasks
    )
    return rule.check(recorded), evaluation


class Recorder:
    """A rule that runs another through `recorded_check`, keeping every evaluation."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.name = rule.name
        self.needs_tasks = bool(getattr(rule, "needs_tasks", False))
        self.evaluations: list[Evaluation] = []

    def check(self, context: PolicyContext) -> Violation | Caution | None:
        """Check with the wrapped rule, recording what it reads."""
        verdict, evaluation = recorded_check(self.rule, context)
        self.evaluations.append(evaluation)
        return verdict


def defects(evaluations: list[Evaluation]) -> list[str]:
    """Every read of a field the snapshots could not hold, in words (empty: none)."""
    found: list[str] = []
    present: dict[tuple[str, str], bool] = {}
    for ev in evaluations:
        for model, reads, items, include in (
            (ContainerInstance, ev.instance_reads, [ev.instance_item], ev.instance_include),
            (Task, ev.task_reads, ev.task_items, ev.task_include),
        ):
            operation, key, _ = SOURCES[model.__name__]
            members = _members(operation, key)
            gated = {member: value for value, member in INCLUDE_GATED[operation].items()}
            for name in sorted(reads - OURS.get(model.__name__, frozenset())):
                model_field = model.model_fields.get(name)
                # A name the model does not declare is still ECS's when it is a member (a task's
                # ``tags``, kept in ``model_extra`` when sent).
                alias = (model_field.alias if model_field else None) or to_camel(name)
                where = f"{ev.rule}: {model.__name__}.{name}"
                if alias not in members:
                    found.append(f"{where} is no member of {operation}'s answer")
                elif alias in gated and gated[alias] not in include:
                    found.append(f"{where} needs include={gated[alias]}, which was not asked")
                else:
                    seen = any(alias in item for item in items)
                    present[(where, operation)] = present.get((where, operation), False) or seen
    found.extend(
        f"{where} was never in a real {operation} answer"
        for (where, operation), ok in present.items()
        if not ok
    )
    return sorted(set(found))


# --------------------------------------------------------------------------- documented rules


def _code_blocks() -> Iterator[tuple[str, str]]:
    """Every Python code in the docs, the README, the examples and ecs_safe's docstrings."""
    fence = re.compile(r"```python[^\n]*\n(.*?)```", re.DOTALL)
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, block in enumerate(fence.findall(page.read_text())):
            yield f"{page.name}#{number}", block
    for example in sorted((ROOT / "examples").glob("*.py")):
        yield example.name, example.read_text()
    for module in sorted((ROOT / "ecs_safe").rglob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                for number, block in enumerate(
                    re.findall(r"::\n\n((?:(?: {4}.*)?\n)+)", doc or "")
                ):
                    yield (
                        f"{module.name}:{getattr(node, 'name', '')}#{number}",
                        inspect.cleandoc(block),
                    )


def _defines_a_rule(node: ast.stmt) -> bool:
    if not isinstance(node, ast.ClassDef):
        return False
    body = node.body
    has_check = any(isinstance(s, ast.FunctionDef) and s.name == "check" for s in body)
    has_name = any(
        isinstance(s, ast.Assign | ast.AnnAssign)
        and "name"
        in {
            t.id
            for t in (s.targets if isinstance(s, ast.Assign) else [s.target])
            if isinstance(t, ast.Name)
        }
        for s in body
    )
    return has_check and has_name


def documented_rules() -> dict[str, Rule]:
    """The rules the docs define, by where they are defined (built from the docs' own code)."""
    # The docstrings' fragments use these names without importing them.
    namespace: dict[str, Any] = {n: getattr(ecs_safe, n) for n in ecs_safe.__all__}
    namespace["datetime"] = datetime
    rules: dict[str, Rule] = {}
    for where, code in _code_blocks():
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        definitions = [n for n in tree.body if _defines_a_rule(n)]
        if not definitions:
            continue
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        scope = dict(namespace)
        exec(compile(ast.Module([*imports, *definitions], []), where, "exec"), scope)
        for node in definitions:
            assert isinstance(node, ast.ClassDef)
            rule = scope[node.name]()
            assert isinstance(rule, Rule), where
            rules[f"{where}:{node.name}"] = rule
    return rules


def builtin_rules() -> dict[str, Rule]:
    """Every built-in rule, built with the arguments of its first documented example."""
    rules: dict[str, Rule] = {}
    for name in ecs_safe.policy.__all__:
        cls = getattr(ecs_safe.policy, name)
        examples = getattr(cls, "VALID", ())
        if inspect.isclass(cls) and examples:
            rules[name] = examples[0].make_rule(cls)
    return rules


def every_rule() -> dict[str, Rule]:
    return {**builtin_rules(), **documented_rules()}


def test_every_documented_rule_is_found() -> None:
    # So that a change in how the docs are written cannot leave this test checking nothing.
    assert set(builtin_rules()) == {
        "ClusterAllowlist",
        "DisruptionBudgets",
        "NoPendingTasksUnlessForced",
        "NoRunningTasksUnlessForced",
        "ProtectStandaloneTasks",
        "ProtectTermination",
        "RequireDraining",
        "RoomElsewhere",
    }
    names = {rule.name for rule in documented_rules().values()}
    assert {"not-on-fridays", "keep-tagged"} <= names


# --------------------------------------------------------------------------- real shapes


class Wire:
    """Every ECS request of a session and its answer, as botocore sent and parsed them."""

    def __init__(self, session: Any) -> None:
        self.calls: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = []
        session.register("before-parameter-build.ecs", self._params)
        session.register("after-call.ecs", self._answer)

    @staticmethod
    def _params(params: Mapping[str, Any], context: MutableMapping[str, Any], **_: Any) -> None:
        context["shape_test_params"] = json.loads(json.dumps(params, default=str))

    def _answer(
        self, parsed: Mapping[str, Any], model: Any, context: Mapping[str, Any], **_: Any
    ) -> None:
        self.calls.append((model.name, context.get("shape_test_params", {}), parsed))

    def items(
        self, operation: str, key: str, ident: str, value: str | None
    ) -> tuple[list[Mapping[str, Any]], frozenset[str]]:
        """The answer items of ``operation`` naming ``value`` (the last call's), and its include."""
        for name, params, parsed in reversed(self.calls):
            found = [i for i in parsed.get(key) or [] if value is None or i.get(ident) == value]
            if name == operation and found:
                return found, frozenset(params.get("include") or ())
        return [], frozenset()


@dataclass
class Fleet:
    """A cluster with an instance of each interesting kind."""

    local: LocalEcs
    instances: dict[str, str]


@pytest.fixture
async def fleet(ecs_env: LocalEcs) -> Fleet:
    ecs_env.create_cluster(CLUSTER)
    idle, tagged, busy, draining = ecs_env.register_instances(CLUSTER, count=4)
    _boto(ecs_env).tag_resource(resourceArn=tagged, tags=[{"key": "protected", "value": "true"}])
    ecs_env.create_service(CLUSTER, "web")
    ecs_env.start_service_task(CLUSTER, busy, "web")
    ecs_env.start_standalone_task(CLUSTER, busy)
    async with EcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        await ecs.drain([draining], cluster=CLUSTER)
    return Fleet(ecs_env, {"idle": idle, "tagged": tagged, "busy": busy, "draining": draining})


def _boto(local: LocalEcs) -> Any:
    return boto3.Session(
        aws_access_key_id=local.access_key_id,
        aws_secret_access_key=local.secret_access_key,
        region_name=local.region_name,
    ).client("ecs", endpoint_url=local.endpoint_url)


async def preflight_evaluations(fleet: Fleet, *rules: Rule) -> list[list[Evaluation]]:
    """Each rule's evaluations (in order) on the real pre-flight path: dry runs of each instance.

    One client for every rule (its policy is live, so each rule takes its turn): a dry run,
    forced and not, of each instance, with the requests and answers captured on the wire.
    """
    kwargs = fleet.local.client_kwargs()
    wire = Wire(kwargs["session"])
    out: list[list[Evaluation]] = []
    async with EcsSafeClient(**kwargs) as ecs:
        for rule in rules:
            recorder = Recorder(rule)
            ecs.policy = Policy([recorder])
            out.append([])
            for arn in fleet.instances.values():
                for force in (False, True):
                    wire.calls.clear()
                    recorder.evaluations.clear()
                    # Refusing is a rule's right; what it read is what matters here.
                    with contextlib.suppress(PolicyViolationError):
                        await ecs.deregister_container_instance(
                            arn, cluster=CLUSTER, force=force, dry_run=True
                        )
                    (ev,) = recorder.evaluations
                    [ev.instance_item], ev.instance_include = wire.items(
                        DESCRIBE, "containerInstances", "containerInstanceArn", arn
                    )
                    if recorder.needs_tasks:
                        ev.task_items, ev.task_include = wire.items(
                            DESCRIBE_TASKS, "tasks", "taskArn", None
                        )
                    out[-1].append(ev)
    return out


def moto_evaluations(fleet: Fleet, rule: Rule, include: list[str]) -> list[Evaluation]:
    """``rule``'s evaluations on moto's own DescribeContainerInstances answers."""
    boto = _boto(fleet.local)
    asked: dict[str, Any] = {"include": include} if include else {}
    answer = boto.describe_container_instances(
        cluster=CLUSTER, containerInstances=list(fleet.instances.values()), **asked
    )
    evaluations = []
    for item in answer["containerInstances"]:
        for force in (False, True):
            context = PolicyContext(
                CLUSTER,
                ContainerInstance.model_validate(item),
                force=force,
                dry_run=True,
                tasks=() if getattr(rule, "needs_tasks", False) else None,
            )
            _, ev = recorded_check(rule, context)
            ev.instance_item, ev.instance_include = item, frozenset(include)
            evaluations.append(ev)
    return evaluations


async def test_the_preflight_asks_for_every_include_and_gets_moto_s_full_shape(
    fleet: Fleet,
) -> None:
    kwargs = fleet.local.client_kwargs()
    wire = Wire(kwargs["session"])
    async with EcsSafeClient(**kwargs) as ecs:
        await ecs.deregister_container_instance(
            fleet.instances["tagged"], cluster=CLUSTER, dry_run=True
        )
    [item], include = wire.items(
        DESCRIBE, "containerInstances", "containerInstanceArn", fleet.instances["tagged"]
    )
    assert include == _include_values(DESCRIBE)
    full = _boto(fleet.local).describe_container_instances(
        cluster=CLUSTER, containerInstances=[fleet.instances["tagged"]], include=sorted(include)
    )["containerInstances"][0]
    assert set(item) == set(full)
    assert {"key": "protected", "value": "true"} in item["tags"]
    assert set(item) <= _members(DESCRIBE, "containerInstances")


async def test_every_documented_rule_reads_only_what_real_snapshots_hold(fleet: Fleet) -> None:
    rules = every_rule()
    preflight = await preflight_evaluations(fleet, *rules.values())
    include = sorted(_include_values(DESCRIBE))
    found = {
        where: defects(evaluations + moto_evaluations(fleet, rule, include))
        for (where, rule), evaluations in zip(rules.items(), preflight, strict=True)
    }
    assert found == {where: [] for where in rules}


def test_the_tag_rule_decides_on_the_real_shape(fleet: Fleet) -> None:
    # Not only read: the tagged instance is refused, the others are not.
    (rule,) = [r for r in documented_rules().values() if r.name == "keep-tagged"]
    refused = {
        ev_item["containerInstanceArn"]
        for ev_item in _boto(fleet.local).describe_container_instances(
            cluster=CLUSTER, containerInstances=list(fleet.instances.values()), include=["TAGS"]
        )["containerInstances"]
        if rule.check(PolicyContext(CLUSTER, ContainerInstance.model_validate(ev_item))) is not None
    }
    assert refused == {fleet.instances["tagged"]}


# --------------------------------------------------------------------------- bad rules


class ReadsTaskTags:
    name = "reads-task-tags"
    needs_tasks = True

    def check(self, context: PolicyContext) -> Violation | None:
        for task in context.tasks or ():
            if getattr(task, "tags", None):
                return Violation(self.name, "a task is tagged")
        return None


class ReadsANameEcsNeverSends:
    name = "reads-instance-type"

    def check(self, context: PolicyContext) -> Violation | None:
        if getattr(context.container_instance, "instance_type", None) == "t2.micro":
            return Violation(self.name, "too small to matter")
        return None


class ReadsHealth:
    name = "reads-health"

    def check(self, context: PolicyContext) -> Violation | None:
        health = context.container_instance.health_status
        if health is not None and health.overall_status == "IMPAIRED":
            return Violation(self.name, "impaired")
        return None


async def test_bad_rules_are_caught(fleet: Fleet) -> None:
    task_tags, instance_type, health = await preflight_evaluations(
        fleet, ReadsTaskTags(), ReadsANameEcsNeverSends(), ReadsHealth()
    )
    assert defects(task_tags) == [
        "reads-task-tags: Task.tags needs include=TAGS, which was not asked"
    ]
    assert defects(instance_type) == [
        "reads-instance-type: ContainerInstance.instance_type is no member of "
        "DescribeContainerInstances's answer"
    ]
    # ECS would send health (it is asked for); LocalEcs never does, so no test could show it.
    assert defects(health) == [
        "reads-health: ContainerInstance.health_status was never in a real "
        "DescribeContainerInstances answer"
    ]


def test_the_tag_rule_is_caught_on_a_describe_without_tags(fleet: Fleet) -> None:
    (rule,) = [r for r in documented_rules().values() if r.name == "keep-tagged"]
    assert defects(moto_evaluations(fleet, rule, [])) == [
        "keep-tagged: ContainerInstance.tags needs include=TAGS, which was not asked"
    ]
    # Asked for, moto (through LocalEcs) sends them: the same rule passes.
    assert defects(moto_evaluations(fleet, rule, ["TAGS"])) == []
