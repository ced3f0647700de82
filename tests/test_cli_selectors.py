"""The CLI's selectors and the plan's resolution lines, against LocalEcs over HTTP (issue 10).

``--filter``, ``--auto-scaling-group``, ``--status`` and ``--all`` on ``deregister``, ``drain``
and ``describe``; their union with positional inputs (each instance acted on once); a selector
that matches nothing (exit 2, nothing mutated); the dry run's lines saying how every input
resolved; and ``drain --no-deregister`` (issue 14).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from test_cli import MUTATING, _hermetic_env, as_json, assert_one_error_line
from typer.testing import CliRunner, Result

from ecs_safe.cli import app
from ecs_safe.local import LocalEcs

__all__ = ["_hermetic_env"]  # an autouse fixture: imported to apply here too

CLUSTER = "c1"
GROUP = "web"
UNKNOWN_EC2 = "i-0123456789abcdef0"
# The instance type LocalEcs gives group members; the plain instances are moto's default.
GROUP_FILTER = "attribute:ecs.instance-type == t3.large"
COMMANDS = (["deregister", "--dry-run"], ["drain", "--dry-run"], ["describe"])


@dataclass
class Fleet:
    """Two plain instances and a group of three whose last member is not registered."""

    local: LocalEcs
    plain: list[str]
    members: list[str]
    unregistered: str
    ec2: dict[str, str]

    def mutating_calls(self) -> int:
        return sum(self.local.calls(op) for op in MUTATING)


def run(fleet: Fleet, *args: str, cluster: str = CLUSTER, width: int = 200) -> Result:
    """The CLI in-process against the fleet's endpoint and cluster, ``width`` columns wide."""
    return CliRunner().invoke(
        app,
        [*args, "--endpoint-url", fleet.local.endpoint_url, "--cluster", cluster],
        env={"COLUMNS": str(width)},
        catch_exceptions=False,
    )


def short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def targets(document: dict[str, Any]) -> list[str]:
    """The container instance IDs a batch acted on, in order."""
    return [o["container_instance_id"] for o in document["outcomes"]]


@pytest.fixture
def fleet(ecs_env: LocalEcs) -> Fleet:
    ecs_env.create_cluster(CLUSTER)
    plain = ecs_env.register_instances(CLUSTER, count=2)
    group = ecs_env.create_auto_scaling_group(GROUP, CLUSTER, 3, unregistered=1)
    listed = CliRunner().invoke(
        app, ["list", "-o", "json", "--endpoint-url", ecs_env.endpoint_url, "--cluster", CLUSTER]
    )
    ec2 = {
        i["container_instance_arn"]: i["ec2_instance_id"]
        for i in as_json(listed)["container_instances"]
    }
    ecs_env.reset_calls()
    return Fleet(
        ecs_env, plain, list(group.container_instance_arns), group.unregistered_instance_ids[0], ec2
    )


# --------------------------------------------------------------------------- each selector


def test_filter_selects_by_the_cluster_query_language(fleet: Fleet) -> None:
    result = run(fleet, "deregister", "--dry-run", "-o", "json", "--filter", GROUP_FILTER)
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    # In ECS's listing order, which is not the group's.
    assert sorted(targets(document)) == sorted(short(a) for a in fleet.members)
    for outcome in document["outcomes"]:
        assert outcome["status"] == "would_deregister"
        assert outcome["input"] is None
        assert outcome["selected_by"] == f"--filter '{GROUP_FILTER}'"
        assert (
            outcome["ec2_instance_id"] == fleet.ec2[outcome["instance"]["container_instance_arn"]]
        )
    assert fleet.mutating_calls() == 0


def test_auto_scaling_group_selects_its_registered_members(fleet: Fleet) -> None:
    result = run(fleet, "describe", "-o", "json", "--auto-scaling-group", GROUP)
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    listed = [i["container_instance_arn"] for i in document["container_instances"]]
    assert listed == fleet.members
    [member] = [e for e in document["resolution"] if e["state"] == "unregistered_member"]
    assert member["ec2_instance_id"] == fleet.unregistered
    assert member["source"] == f"--auto-scaling-group {GROUP}"


def test_all_selects_every_active_instance(fleet: Fleet) -> None:
    run(fleet, "drain", "--no-deregister", "--timeout", "30", fleet.plain[0])
    result = run(fleet, "deregister", "--dry-run", "-o", "json", "--all")
    assert result.exit_code == 0, result.stderr
    assert set(targets(as_json(result))) == {short(a) for a in [fleet.plain[1], *fleet.members]}


def test_status_selects_the_instances_of_that_status(fleet: Fleet) -> None:
    run(fleet, "drain", "--no-deregister", "--timeout", "30", fleet.members[1])
    result = run(fleet, "describe", "-o", "json", "--status", "DRAINING")
    assert result.exit_code == 0, result.stderr
    listed = [i["container_instance_arn"] for i in as_json(result)["container_instances"]]
    assert listed == [fleet.members[1]]
    # --status narrows --all (every instance of that status) and a group.
    both = as_json(run(fleet, "describe", "-o", "json", "--all", "--status", "DRAINING"))
    assert [i["container_instance_arn"] for i in both["container_instances"]] == listed
    grouped = run(
        fleet, "describe", "-o", "json", "--auto-scaling-group", GROUP, "--status", "ACTIVE"
    )
    assert [i["container_instance_arn"] for i in as_json(grouped)["container_instances"]] == [
        fleet.members[0]
    ]


def test_filter_and_group_combine(fleet: Fleet) -> None:
    chosen = fleet.ec2[fleet.members[1]]
    result = run(
        fleet,
        "deregister",
        "--dry-run",
        "-o",
        "json",
        "--auto-scaling-group",
        GROUP,
        "--filter",
        f"ec2InstanceId == {chosen}",
    )
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    assert targets(document) == [short(fleet.members[1])]
    assert document["outcomes"][0]["selected_by"] == (
        f"--filter 'ec2InstanceId == {chosen}' --auto-scaling-group {GROUP}"
    )


def test_a_bad_filter_is_ecs_s_error(fleet: Fleet) -> None:
    result = run(fleet, "describe", "--filter", "attribute:x ==")
    assert result.exit_code == 1
    assert "InvalidParameterException" in assert_one_error_line(result.stderr)


# --------------------------------------------------------------------------- nothing matched


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            ["--filter", "attribute:x == y"],
            "--filter 'attribute:x == y' matched no instance in cluster 'c1'",
        ),
        (["--status", "DRAINING"], "--status DRAINING matched no instance in cluster 'c1'"),
        (
            ["--auto-scaling-group", "nope"],
            "--auto-scaling-group nope matched no instance in cluster 'c1'",
        ),
        (
            ["--auto-scaling-group", "lonely"],
            "--auto-scaling-group lonely matched no instance in cluster 'c1' "
            "(1 group member(s) not registered there)",
        ),
        (
            ["--auto-scaling-group", GROUP, "--filter", "attribute:x == y"],
            "--filter 'attribute:x == y' --auto-scaling-group web matched no instance",
        ),
    ],
)
def test_a_selector_matching_nothing_is_a_usage_error(
    fleet: Fleet, command: list[str], selector: list[str], message: str
) -> None:
    fleet.local.create_auto_scaling_group("lonely", CLUSTER, 1, unregistered=1)
    fleet.local.reset_calls()
    # A named instance does not make an empty selector acceptable: the typo stays a typo.
    result = run(fleet, *command, *selector, fleet.plain[0])
    assert result.exit_code == 2, result.output
    # The one error line, after the warning naming an unregistered member (if any).
    *warnings, last = result.stderr.splitlines()
    assert all("ecs_safe.targets.unregistered" in w for w in warnings), result.stderr
    assert message in assert_one_error_line(last)
    assert result.stdout == ""
    assert fleet.mutating_calls() == 0


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_all_on_an_empty_cluster_is_a_usage_error(fleet: Fleet, command: list[str]) -> None:
    fleet.local.create_cluster("empty")
    result = run(fleet, *command, "--all", "-o", "json", cluster="empty")
    assert result.exit_code == 2
    line = assert_one_error_line(result.stderr)
    assert "--all matched no instance in cluster 'empty' (no ACTIVE instance)" in line
    assert as_json(result)["error"]["type"] == "InvalidInputError"


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["--all", "abc"],
            "--all selects every ACTIVE instance of the cluster and cannot be "
            "combined with instances named on the command line (abc)",
        ),
        (["--all", "--filter", "agentConnected == true"], "cannot be combined with --filter"),
        (
            ["--status", "draining"],
            "--status 'draining' is not a container instance status; valid values: ACTIVE, "
            "DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED, INACTIVE",
        ),
        ([], "Missing argument"),
    ],
)
def test_selector_usage_errors_send_nothing(
    fleet: Fleet, command: list[str], args: list[str], needle: str
) -> None:
    result = run(fleet, *command, *args)
    assert result.exit_code == 2, result.output
    assert needle in assert_one_error_line(result.stderr)
    assert fleet.local.call_log == []


# --------------------------------------------------------------------------- union and plan


def test_ids_and_selectors_union_each_instance_once(fleet: Fleet) -> None:
    member_ec2 = fleet.ec2[fleet.members[0]]
    result = run(fleet, "deregister", "-o", "json", member_ec2, "--auto-scaling-group", GROUP)
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    assert targets(document) == [short(a) for a in fleet.members]
    first = document["outcomes"][0]
    assert (first["input"], first["container_instance"]) == (member_ec2, member_ec2)
    assert first["selected_by"] is None
    assert fleet.local.calls("DeregisterContainerInstance") == 2  # each once
    [duplicate] = [e for e in document["resolution"] if e["state"] == "duplicate"]
    assert duplicate["duplicate_of"] == member_ec2
    assert duplicate["container_instance_id"] == short(fleet.members[0])


def test_the_plan_shows_how_every_input_resolved(fleet: Fleet) -> None:
    ec2 = fleet.ec2[fleet.plain[0]]
    plain_id = short(fleet.plain[0])
    args = ["deregister", "--dry-run", ec2, plain_id, UNKNOWN_EC2, "--auto-scaling-group", GROUP]
    result = run(fleet, *args)
    assert result.exit_code == 5, result.output  # the unknown one failed, the rest would go
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert f"{ec2} → {plain_id} ({ec2})" in lines
    assert f"{plain_id} → duplicate of {ec2}" in lines
    assert f"{UNKNOWN_EC2} → not registered in cluster 'c1'" in lines
    for member in fleet.members:
        assert f"--auto-scaling-group {GROUP} → {short(member)} ({fleet.ec2[member]})" in lines
    assert (
        f"--auto-scaling-group {GROUP}: member {fleet.unregistered} → "
        "not registered in cluster 'c1'"
    ) in lines
    assert fleet.mutating_calls() == 0

    document = as_json(run(fleet, *args, "-o", "json"))
    states = [(e["input"], e["state"]) for e in document["resolution"]]
    assert states == [
        (ec2, "resolved"),
        (plain_id, "duplicate"),
        (UNKNOWN_EC2, "not_registered"),
        *((short(m), "resolved") for m in fleet.members),
        (fleet.unregistered, "unregistered_member"),
    ]
    assert [o["input"] for o in document["outcomes"]] == [ec2, UNKNOWN_EC2, None, None]
    unknown = document["outcomes"][1]
    assert unknown["status"] == "failed"
    assert unknown["error"]["type"] == "ContainerInstanceNotFoundError"


def test_an_unknown_container_instance_id_is_not_registered_in_the_plan(fleet: Fleet) -> None:
    missing = "0123456789abcdef0123456789abcdef"
    result = run(fleet, "deregister", "--dry-run", missing, short(fleet.plain[1]))
    assert result.exit_code == 5
    assert f"{missing} → not registered in cluster 'c1'" in result.stdout
    assert f"{short(fleet.plain[1])} → {short(fleet.plain[1])} " in result.stdout


def test_tables_show_the_resolved_id_for_an_ec2_input(fleet: Fleet) -> None:
    ec2 = fleet.ec2[fleet.plain[1]]
    for args in (["deregister", "--dry-run"], ["drain", "--dry-run"], ["describe"]):
        for width in (200, 80):
            result = run(fleet, *args, ec2, width=width)
            assert result.exit_code == 0, result.output
            rows = [line for line in result.stdout.splitlines() if short(fleet.plain[1]) in line]
            # The resolved ID heads a row (or a block), not only the plan's line.
            assert any(not line.strip().startswith(ec2) for line in rows), result.stdout


# --------------------------------------------------------------------------- --no-deregister


def test_drain_no_deregister_leaves_the_instance_registered_and_draining(fleet: Fleet) -> None:
    ec2 = fleet.ec2[fleet.plain[0]]
    result = run(fleet, "drain", "--no-deregister", "-o", "json", "--timeout", "30", ec2)
    assert result.exit_code == 0, result.stderr
    document = as_json(result)
    [outcome] = document["outcomes"]
    assert outcome["status"] == "drained"
    assert outcome["instance"]["status"] == "DRAINING"
    assert outcome["container_instance_id"] == short(fleet.plain[0])
    assert document["summary"]["drained"] == 1
    assert document["deregister"] is False
    assert fleet.local.calls("DeregisterContainerInstance") == 0
    described = as_json(run(fleet, "describe", "-o", "json", ec2))
    assert described["container_instances"][0]["status"] == "DRAINING"
    text = run(fleet, "drain", "--no-deregister", "--timeout", "30", fleet.plain[0])
    assert text.exit_code == 0
    assert "drained (still registered)" in text.stdout
    assert "1 drained (still registered) (exit 0: success)" in text.stdout


def test_drain_no_deregister_plan(fleet: Fleet) -> None:
    result = run(fleet, "drain", "--no-deregister", "--dry-run", "--all")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("would drain and wait (nothing to move); would not deregister") == 4
    document = as_json(run(fleet, "drain", "--no-deregister", "--dry-run", "-o", "json", "--all"))
    assert {o["status"] for o in document["outcomes"]} == {"would_drain"}
    assert document["summary"]["would_drain"] == 4
    assert fleet.mutating_calls() == 0


def test_drain_no_deregister_times_out_like_a_drain(fleet: Fleet) -> None:
    local = fleet.local
    local.create_service(CLUSTER, "api")
    local.start_service_task(CLUSTER, fleet.plain[1], "api")
    result = run(
        fleet,
        "drain",
        "--no-deregister",
        "-o",
        "json",
        "--timeout",
        "0.3",
        "--poll-interval",
        "0.05",
        "--on-timeout",
        "reactivate",
        fleet.plain[1],
    )
    assert result.exit_code == 4, result.output
    [outcome] = as_json(result)["outcomes"]
    assert outcome["status"] == "timed_out"
    assert local.calls("DeregisterContainerInstance") == 0
    described = as_json(run(fleet, "describe", "-o", "json", fleet.plain[1]))
    assert described["container_instances"][0]["status"] == "ACTIVE"  # reactivated


def test_drain_no_deregister_refuses_on_timeout_force(fleet: Fleet) -> None:
    result = run(fleet, "drain", "--no-deregister", "--on-timeout", "force", fleet.plain[0])
    assert result.exit_code == 2
    line = assert_one_error_line(result.stderr)
    assert re.search(r"--on-timeout force .* --no-deregister", line)
    assert fleet.local.call_log == []
