"""Terminate after a verified deregistration (``terminate=True``, issue 12) against LocalEcs.

Every test talks HTTP to LocalEcs through the public clients. The audit log is the witness of
order: each EC2 instance's termination call must come after its own deregistration's outcome
and after a describe that proved it. Fleets are small (four instances at most) and nothing
waits on the clock but the drain poller's first look.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from typer.testing import CliRunner

from ecs_safe import (
    EcsSafeClient,
    InvalidInputError,
    PolicyViolationError,
    SyncEcsSafeClient,
    TerminationError,
)
from ecs_safe._calls import InstanceAnswers
from ecs_safe._gate import Request
from ecs_safe.audit import AuditLog
from ecs_safe.cli import app
from ecs_safe.local import LocalEcs
from ecs_safe.models import ContainerInstance
from ecs_safe.policy import Decision
from ecs_safe.results import DeregistrationResult
from ecs_safe.termination import TerminationOptions, Terminator

pytestmark = pytest.mark.usefixtures("instant_retries")

CLUSTER = "prod"
GROUP = "web-asg"
ARN_PREFIX = "arn:aws:ecs:us-east-1:123456789012:container-instance"
_TERMINATE_OPERATIONS = ("TerminateInstanceInAutoScalingGroup", "TerminateInstances")


def _boto(env: LocalEcs, service: str) -> Any:
    """A plain botocore client, to seed what LocalEcs has no helper for and to read effects."""
    session = botocore.session.get_session()
    session.set_credentials(env.access_key_id, env.secret_access_key)
    return session.create_client(
        service,
        region_name=env.region_name,
        endpoint_url=env.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )


def _group(env: LocalEcs, count: int = 2) -> tuple[list[str], list[str]]:
    """A cluster and a group of ``count`` registered members: (EC2 IDs, container ARNs)."""
    env.create_cluster(CLUSTER)
    group = env.create_auto_scaling_group(GROUP, CLUSTER, count)
    return list(group.instance_ids), list(group.container_instance_arns)


def _ec2_state(env: LocalEcs, instance_id: str) -> str:
    found = _boto(env, "ec2").describe_instances(InstanceIds=[instance_id])
    return str(found["Reservations"][0]["Instances"][0]["State"]["Name"])


def _desired(env: LocalEcs) -> int:
    found = _boto(env, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    return int(found["AutoScalingGroups"][0]["DesiredCapacity"])


def _terminated(env: LocalEcs, instance_id: str) -> bool:
    return _ec2_state(env, instance_id) in ("shutting-down", "terminated")


def _calls(records: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind") == "intent" and r["operation"] == operation]


def _outcome_of(records: list[dict[str, Any]], intent: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in records if r.get("intent_seq") == intent["seq"])


@pytest.fixture
async def client(ecs_env: LocalEcs, tmp_path: Path) -> AsyncIterator[EcsSafeClient]:
    """The async client on LocalEcs, with an audit log at ``tmp_path / "audit.jsonl"``."""
    async with EcsSafeClient(**ecs_env.client_kwargs(), audit_log=tmp_path / "audit.jsonl") as ecs:
        yield ecs


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    return AuditLog.read(tmp_path / "audit.jsonl")


# ------------------------------------------------------------------ single instances


@pytest.mark.parametrize("decrement", [False, True])
async def test_drain_then_terminate_a_group_member(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path, decrement: bool
) -> None:
    ids, arns = _group(ecs_env)
    result = await client.drain_and_deregister(
        arns[0],
        cluster=CLUSTER,
        poll_interval=0.1,
        terminate=True,
        decrement_desired_capacity=decrement,
    )
    assert result.terminated
    assert (result.termination, result.auto_scaling_group) == ("auto-scaling", GROUP)
    assert result.decrement_desired_capacity is decrement
    assert not result.termination_verified
    assert _terminated(ecs_env, ids[0])
    assert not _terminated(ecs_env, ids[1])
    assert _desired(ecs_env) == (1 if decrement else 2)

    records = _audit(tmp_path)
    [deregister] = _calls(records, "DeregisterContainerInstance")
    [terminate] = _calls(records, "TerminateInstanceInAutoScalingGroup")
    assert terminate["params"] == {
        "InstanceId": ids[0],
        "ShouldDecrementDesiredCapacity": decrement,
    }
    assert _outcome_of(records, terminate)["result"] == "ok"
    # Terminated only after the deregistration answered and a describe proved it.
    assert _outcome_of(records, deregister)["seq"] < terminate["seq"]
    decision = next(r for r in records if r.get("kind") == "decision")
    assert decision["terminate"] == {
        "termination": "auto-scaling",
        "auto_scaling_group": GROUP,
        "decrement_desired_capacity": decrement,
    }


async def test_a_plain_ec2_instance_is_terminated_with_terminate_instances(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path
) -> None:
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    result = await client.deregister_container_instance(arn, cluster=CLUSTER, terminate=True)
    ec2_id = result.container_instance.ec2_instance_id
    assert ec2_id is not None
    assert (result.terminated, result.termination, result.auto_scaling_group) == (
        True,
        "ec2",
        None,
    )
    assert _terminated(ecs_env, ec2_id)
    [terminate] = _calls(_audit(tmp_path), "TerminateInstances")
    assert terminate["params"] == {"InstanceIds": [ec2_id]}


async def test_a_dry_run_says_how_it_would_terminate_and_changes_nothing(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path
) -> None:
    ids, arns = _group(ecs_env)
    plan = await client.deregister_container_instance(
        arns[0], cluster=CLUSTER, terminate=True, dry_run=True
    )
    assert plan.dry_run
    assert (plan.terminated, plan.termination, plan.decrement_desired_capacity) == (
        False,
        "auto-scaling",
        False,
    )
    assert not _terminated(ecs_env, ids[0])
    assert [r for r in _audit(tmp_path) if r.get("kind") == "intent"] == []
    assert f"would terminate (auto-scaling, group {GROUP})" in plan._repr_html_()
    # The survey reads are only made when terminate is asked: here they were.
    assert set(client._others) == {"autoscaling", "ec2"}


async def test_without_terminate_no_auto_scaling_or_ec2_client_or_call(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path
) -> None:
    ids, arns = _group(ecs_env)
    batch = await client.deregister_many(arns, cluster=CLUSTER)
    assert all(o.result is not None and o.result.termination is None for o in batch.outcomes)
    assert set(client._others) == set()  # never even made
    assert ecs_env.service_call_log("autoscaling") == ecs_env.service_call_log("ec2") == []
    assert not any(_terminated(ecs_env, i) for i in ids)


@pytest.mark.parametrize("member", [True, False], ids=["auto-scaling", "ec2"])
async def test_a_lost_termination_response_is_verified_not_resent(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path, member: bool
) -> None:
    if member:
        _ids, arns = _group(ecs_env)
        operation = "TerminateInstanceInAutoScalingGroup"
    else:
        ecs_env.create_cluster(CLUSTER)
        arns = ecs_env.register_instances(CLUSTER)
        operation = "TerminateInstances"
    # EC2 acts, then the connection drops before any answer: the response is lost.
    ecs_env.inject_fault(operation, after_acting=True, disconnect=True)
    result = await client.deregister_container_instance(arns[0], cluster=CLUSTER, terminate=True)
    ec2_id = result.container_instance.ec2_instance_id
    assert ec2_id is not None
    assert result.terminated
    assert result.termination_verified
    assert _terminated(ecs_env, ec2_id)
    assert ecs_env.calls(operation) == 1  # proved by a read, never sent again
    [intent] = _calls(_audit(tmp_path), operation)
    assert _outcome_of(_audit(tmp_path), intent)["result"] == "verified"


class _FakeAws:
    """Auto Scaling and EC2 call layers that only record what they were asked."""

    def __init__(self) -> None:
        self.terminated: list[str] = []

    async def describe_instances(self, instance_ids: Sequence[str]) -> list[Any]:
        return []

    async def termination_protected(self, instance_ids: Sequence[str]) -> frozenset[str]:
        return frozenset()

    async def terminate_instance(
        self, instance_id: str, *, decrement_desired_capacity: bool
    ) -> bool:
        self.terminated.append(instance_id)
        return False

    async def terminate_instances(self, instance_ids: Sequence[str]) -> bool:
        self.terminated.extend(instance_ids)
        return False


class _StillRegistered:
    """An ECS call layer whose describe still shows the instance (a deregistration not done)."""

    def __init__(self, instance: ContainerInstance) -> None:
        self.instance = instance

    async def describe_instances(self, refs: Sequence[str], cluster: str | None) -> InstanceAnswers:
        return InstanceAnswers(found={"0123abcd": self.instance}, missing={})


@pytest.mark.parametrize("status", ["ACTIVE", "DRAINING"])
async def test_a_deregistration_a_describe_does_not_prove_terminates_nothing(status: str) -> None:
    instance = ContainerInstance.model_validate(
        {
            "containerInstanceArn": f"{ARN_PREFIX}/prod/0123abcd",
            "ec2InstanceId": "i-0123456789abcdef0",
            "status": status,
        }
    )
    aws = _FakeAws()
    terminator = Terminator(aws, aws, TerminationOptions())
    [termination] = (await terminator.survey({"0123abcd": instance})).values()
    assert termination.method == "ec2"
    request = Request("0123abcd", CLUSTER, termination=termination)
    result = DeregistrationResult(
        container_instance=instance, decision=Decision.allow(), forced=False, dry_run=False
    )
    with pytest.raises(TerminationError) as caught:
        await terminator.finish(_StillRegistered(instance), request, result)  # type: ignore[arg-type]
    assert not caught.value.deregistration_verified
    assert caught.value.reason == "DeregistrationUnverified"
    assert "NOT terminated" in str(caught.value)
    assert aws.terminated == []


# ------------------------------------------------------------------ protections


def _protect_from_scale_in(env: LocalEcs, instance_id: str) -> None:
    _boto(env, "autoscaling").set_instance_protection(
        InstanceIds=[instance_id], AutoScalingGroupName=GROUP, ProtectedFromScaleIn=True
    )


def _protect_from_termination(env: LocalEcs, instance_id: str) -> None:
    _boto(env, "ec2").modify_instance_attribute(
        InstanceId=instance_id, DisableApiTermination={"Value": True}
    )


async def test_scale_in_protection_is_refused_before_draining_unless_allowed(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path
) -> None:
    ids, arns = _group(ecs_env)
    _protect_from_scale_in(ecs_env, ids[0])
    with pytest.raises(PolicyViolationError) as caught:
        await client.drain_and_deregister(arns[0], cluster=CLUSTER, terminate=True)
    [violation] = caught.value.decision.violations
    assert violation.rule == "termination-protection"
    assert "scale-in protection" in violation.message
    assert "allow_protected" in violation.message
    # Nothing was changed: not DRAINING, not marked, not deregistered, not terminated.
    assert [r for r in _audit(tmp_path) if r.get("kind") == "intent"] == []
    [instance] = await client.describe_container_instances([arns[0]], cluster=CLUSTER)
    assert instance.status == "ACTIVE"

    # Allowed: Auto Scaling's own termination goes ahead despite scale-in protection.
    result = await client.deregister_container_instance(
        arns[0], cluster=CLUSTER, terminate=True, allow_protected=True
    )
    assert result.terminated
    assert _terminated(ecs_env, ids[0])


async def test_termination_protection_is_refused_unless_allowed_and_then_reported(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    [instance] = await client.describe_container_instances([arn], cluster=CLUSTER)
    ec2_id = instance.ec2_instance_id
    assert ec2_id is not None
    _protect_from_termination(ecs_env, ec2_id)
    with pytest.raises(PolicyViolationError, match="DisableApiTermination"):
        await client.deregister_container_instance(arn, cluster=CLUSTER, terminate=True)

    # Allowed: the deregistration happens, and EC2 refuses the termination. Said so honestly.
    with pytest.raises(TerminationError) as caught:
        await client.deregister_container_instance(
            arn, cluster=CLUSTER, terminate=True, allow_protected=True
        )
    error = caught.value
    assert error.deregistration_verified
    assert error.ec2_instance_id == ec2_id
    assert error.result.container_instance.container_instance_arn == arn
    assert (error.result.terminated, error.result.termination) == (False, "ec2")
    assert "IS deregistered" in str(error)
    assert not _terminated(ecs_env, ec2_id)
    listed = await client.list_container_instances(cluster=CLUSTER)
    assert arn not in {i.container_instance_arn for i in listed}


async def test_choices_without_terminate_are_bad_input_before_any_call(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="terminate=True"):
        await client.deregister_container_instance(
            "0123abcd", cluster=CLUSTER, decrement_desired_capacity=True
        )
    with pytest.raises(InvalidInputError, match="terminate must be True or False"):
        await client.deregister_many(["0123abcd"], terminate="yes")  # type: ignore[arg-type]
    assert ecs_env.call_log == []


# ------------------------------------------------------------------ fleets


@pytest.mark.parametrize("drain", [False, True], ids=["deregister", "drain"])
async def test_deregister_many_terminates_each_after_its_own_verified_deregistration(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path, drain: bool
) -> None:
    ids, arns = _group(ecs_env, count=3)
    [plain] = ecs_env.register_instances(CLUSTER)
    batch = await client.deregister_many(
        [*arns, plain],
        cluster=CLUSTER,
        drain=drain,
        poll_interval=0.1,
        terminate=True,
        decrement_desired_capacity=True,
    )
    assert batch.ok
    results = [o.result for o in batch.outcomes]
    assert all(r is not None and r.terminated for r in results)
    assert [r.termination for r in results if r] == ["auto-scaling"] * 3 + ["ec2"]
    assert all(_terminated(ecs_env, i) for i in ids)
    assert _desired(ecs_env) == 0

    records = _audit(tmp_path)
    done = {
        r["params"]["containerInstance"]: _outcome_of(records, r)["seq"]
        for r in _calls(records, "DeregisterContainerInstance")
    }
    by_ec2 = {
        r.container_instance.ec2_instance_id: r.container_instance.container_instance_arn
        for r in results
        if r
    }
    terminations = _calls(records, "TerminateInstanceInAutoScalingGroup")
    terminations += _calls(records, "TerminateInstances")
    assert len(terminations) == 4
    for intent in terminations:
        params = intent["params"]
        ec2_id = params.get("InstanceId") or params["InstanceIds"][0]
        arn = by_ec2[ec2_id]
        deregistered = next(v for k, v in done.items() if arn and arn.endswith(k.split("/")[-1]))
        assert deregistered < intent["seq"], ec2_id


async def test_a_fleet_termination_failure_is_its_own_failed_outcome(
    ecs_env: LocalEcs, client: EcsSafeClient
) -> None:
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, 2)
    described = await client.describe_container_instances(arns, cluster=CLUSTER)
    protected = described[0].ec2_instance_id
    assert protected is not None
    _protect_from_termination(ecs_env, protected)

    plan = await client.deregister_many(arns, cluster=CLUSTER, terminate=True, dry_run=True)
    assert [o.status for o in plan.outcomes] == ["refused", "would_deregister"]

    batch = await client.deregister_many(
        arns, cluster=CLUSTER, terminate=True, allow_protected=True
    )
    first, second = batch.outcomes
    assert first.status == "failed"
    assert isinstance(first.error, TerminationError)
    assert first.result is not None
    assert not first.result.terminated
    assert second.status == "deregistered"
    assert second.result is not None
    assert second.result.terminated
    assert not batch.ok


def test_the_sync_client_takes_terminate(ecs_env: LocalEcs) -> None:
    ids, arns = _group(ecs_env)
    with SyncEcsSafeClient(**ecs_env.client_kwargs()) as ecs:
        result = ecs.deregister_container_instance(arns[0], cluster=CLUSTER, terminate=True)
        batch = ecs.deregister_many([arns[1]], cluster=CLUSTER, terminate=True, dry_run=True)
    assert result.terminated
    assert _terminated(ecs_env, ids[0])
    [outcome] = batch.outcomes
    assert outcome.result is not None
    assert outcome.result.termination == "auto-scaling"


# ------------------------------------------------------------------ CLI


def _cli(env: LocalEcs, *args: str) -> Any:
    credentials = {
        "AWS_ACCESS_KEY_ID": env.access_key_id,
        "AWS_SECRET_ACCESS_KEY": env.secret_access_key,
        "AWS_REGION": env.region_name,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    return CliRunner().invoke(app, [*args, "--endpoint-url", env.endpoint_url], env=credentials)


def test_cli_dry_run_shows_the_termination(ecs_env: LocalEcs) -> None:
    ids, arns = _group(ecs_env)
    shown = _cli(ecs_env, "drain", arns[0], "-c", CLUSTER, "--terminate", "--dry-run")
    assert shown.exit_code == 0, shown.output
    assert "would terminate (auto-scaling, decrement: no)" in " ".join(shown.output.split())
    assert not _terminated(ecs_env, ids[0])


def test_cli_json_reports_the_termination(ecs_env: LocalEcs) -> None:
    ids, arns = _group(ecs_env)
    args = ("deregister", arns[0], "-c", CLUSTER, "--terminate", "--decrement-desired-capacity")
    done = _cli(ecs_env, *args, "-o", "json")
    assert done.exit_code == 0, done.output
    document = json.loads(done.stdout)
    assert document["schema_version"] == 1
    [outcome] = document["outcomes"]
    assert outcome["status"] == "deregistered"
    assert outcome["termination"] == {
        "method": "auto-scaling",
        "auto_scaling_group": GROUP,
        "decrement_desired_capacity": True,
        "terminated": True,
        "verified": False,
    }
    assert _terminated(ecs_env, ids[0])


def test_cli_terminate_choices_need_terminate(ecs_env: LocalEcs) -> None:
    refused = _cli(ecs_env, "deregister", "0123abcd", "--allow-protected")
    assert refused.exit_code == 2
    assert "--terminate" in refused.output
    both = _cli(ecs_env, "drain", "0123abcd", "--terminate", "--no-deregister")
    assert both.exit_code == 2


def test_cli_reports_a_termination_refused_after_deregistration(ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster(CLUSTER)
    [arn] = ecs_env.register_instances(CLUSTER)
    ec2_id = _boto(ecs_env, "ecs").describe_container_instances(
        cluster=CLUSTER, containerInstances=[arn]
    )["containerInstances"][0]["ec2InstanceId"]
    _protect_from_termination(ecs_env, ec2_id)
    args = ("deregister", arn, "-c", CLUSTER, "--terminate", "--allow-protected", "-o", "json")
    done = _cli(ecs_env, *args)
    assert done.exit_code == 1, done.output
    [outcome] = json.loads(done.stdout)["outcomes"]
    assert outcome["status"] == "failed"
    assert outcome["error"]["code"] == "TerminationFailed"
    assert "IS deregistered" in outcome["error"]["message"]
    assert outcome["termination"]["terminated"] is False
    assert outcome["request_id"]  # the deregistration that did happen


async def test_a_failed_termination_survey_fails_the_pre_flight_and_changes_nothing(
    ecs_env: LocalEcs, client: EcsSafeClient, tmp_path: Path
) -> None:
    _ids, arns = _group(ecs_env)
    ecs_env.inject_fault(
        "DescribeAutoScalingInstances", code="AccessDenied", http_status=403, message="no"
    )
    batch = await client.deregister_many(arns, cluster=CLUSTER, terminate=True)
    assert [o.status for o in batch.outcomes] == ["failed", "failed"]
    assert all(o.error is not None and o.error.code == "AccessDenied" for o in batch.outcomes)
    assert [r for r in _audit(tmp_path) if r.get("kind") == "intent"] == []
