"""Tests for ecs_safe._validation: every argument is checked before any network call."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from ecs_safe._validation import (
    check_bool,
    check_choice,
    check_filter,
    check_instance_status,
    check_name,
    check_positive_number,
    check_same_cluster,
    cluster_name_of,
    instance_id_of,
    validate_cluster,
    validate_container_instance,
    validate_container_instances,
)
from ecs_safe.errors import EcsSafeError, InvalidInputError
from ecs_safe.models import ContainerInstance

HEX_ID = "0123456789abcdef0123456789abcdef"
UUID_ID = "f1b2c3d4-1234-4abc-9def-0123456789ab"
ACCOUNT = "123456789012"
LONG_ARN = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:container-instance/prod/{HEX_ID}"
SHORT_ARN = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:container-instance/{UUID_ID}"
CLUSTER_ARN = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/prod"


def repr_short(value: object) -> str:
    """A test ID that stays readable for huge values."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**20 else "huge-int"
    return text[:30]


def _refused(exc_info: pytest.ExceptionInfo[InvalidInputError], argument: str) -> None:
    """Every refusal is an InvalidInputError, also a ValueError, and names the argument."""
    exc = exc_info.value
    assert isinstance(exc, InvalidInputError)
    assert isinstance(exc, ValueError)
    assert isinstance(exc, EcsSafeError)
    assert argument in str(exc)
    assert exc.message == str(exc)


# ------------------------------------------------------------------ validate_container_instance


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(HEX_ID, id="32-hex"),
        pytest.param(HEX_ID.upper(), id="32-hex-upper"),
        pytest.param(UUID_ID, id="uuid"),
        pytest.param(LONG_ARN, id="long-arn"),
        pytest.param(SHORT_ARN, id="short-arn"),
        pytest.param(
            f"arn:aws-cn:ecs:cn-north-1:{ACCOUNT}:container-instance/c_1/{HEX_ID}", id="aws-cn"
        ),
        pytest.param(
            f"arn:aws-us-gov:ecs:us-gov-west-1:{ACCOUNT}:container-instance/{HEX_ID}",
            id="aws-us-gov",
        ),
    ],
)
def test_valid_container_instances_are_returned_unchanged(value: str) -> None:
    result = validate_container_instance(value)
    assert result == value
    assert isinstance(result, str)
    assert instance_id_of(result) in (HEX_ID, HEX_ID.upper(), UUID_ID)


def test_long_arn_exposes_its_cluster_and_id() -> None:
    ref: Any = validate_container_instance(LONG_ARN)
    assert ref.cluster_in_arn == "prod"
    assert ref.instance_id == HEX_ID
    short: Any = validate_container_instance(SHORT_ARN)
    assert short.cluster_in_arn is None
    assert short.instance_id == UUID_ID


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="None"),
        pytest.param(HEX_ID.encode(), id="bytes"),
        pytest.param(12345, id="int"),
        pytest.param(1.5, id="float"),
        pytest.param([HEX_ID], id="list"),
        pytest.param({"id": HEX_ID}, id="dict"),
    ],
)
def test_non_str_is_refused(value: object) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        validate_container_instance(value)
    _refused(exc_info, "container_instance")
    assert type(value).__name__ in str(exc_info.value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="spaces"),
        pytest.param("\t\n", id="tab-newline"),
        pytest.param(f" {HEX_ID}", id="leading-space"),
        pytest.param(f"{HEX_ID} ", id="trailing-space"),
        pytest.param(f"{HEX_ID}\n", id="trailing-newline"),
        pytest.param(f"{LONG_ARN}\n", id="arn-trailing-newline"),
        pytest.param(f"{HEX_ID[:16]}\n{HEX_ID[16:]}", id="inner-newline"),
        pytest.param("a" * 65, id="id-too-long"),
        pytest.param("a" * 5000, id="way-too-long"),
        pytest.param("arn:aws:ecs:eu-west-1:" + ACCOUNT + ":container-instance/" + "a" * 3000),
        pytest.param(f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abc1234def567890", id="ec2-arn"),
        pytest.param(f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/prod/{HEX_ID}", id="task-arn"),
        pytest.param(CLUSTER_ARN, id="cluster-arn"),
        pytest.param(f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/prod/web", id="service-arn"),
        pytest.param(f"arn:aws:ecs:eu-west-1:{ACCOUNT}:container-instance/", id="arn-no-id"),
        pytest.param(f"arn:aws:ecs:eu-west-1:12345:container-instance/{HEX_ID}", id="short-acct"),
        pytest.param(
            f"arn:aws:ecs:eu-west-1:{ACCOUNT}:container-instance/a/b/{HEX_ID}", id="arn-3-levels"
        ),
        pytest.param(
            "arn:aws:ecs:eu-west-1:" + "\u0661" * 12 + ":container-instance/" + HEX_ID,
            id="arn-unicode-digits-account",
        ),
        # EC2 and managed instance IDs are accepted now (issue 10); mistyped ones are not.
        pytest.param("i-0abc1234def56789", id="ec2-instance-id-16-hex"),
        pytest.param("i-0ABC1234", id="ec2-instance-id-uppercase"),
        pytest.param("mi-0abc1234", id="managed-instance-id-short"),
        pytest.param(f"../{HEX_ID}", id="dot-dot-slash"),
        pytest.param(f"prod/{HEX_ID}", id="slash"),
        pytest.param(f"{HEX_ID};rm -rf /", id="semicolon"),
        pytest.param(f"{HEX_ID}&x=1", id="ampersand"),
        pytest.param("0123abcdé", id="unicode-letter"),
        pytest.param("\uff10\uff11\uff12\uff13abcd", id="fullwidth-digits"),
        pytest.param("-0123abcd", id="leading-hyphen"),
        pytest.param(f"{HEX_ID}\x00", id="nul"),
        pytest.param(f"arn:aws:ecs:eu-west-1:{ACCOUNT}:container-instance/../{HEX_ID}"),
    ],
)
def test_malformed_container_instance_is_refused(value: str) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        validate_container_instance(value)
    _refused(exc_info, "container_instance")


def test_mistyped_ec2_instance_id_gets_a_pointed_hint() -> None:
    with pytest.raises(InvalidInputError, match="EC2 instance ID"):
        validate_container_instance("i-0abc1234def5678")


@pytest.mark.parametrize("value", ["i-0abc1234def567890", "i-0abc1234", "mi-0123456789abcdef0"])
def test_ec2_and_managed_instance_ids_are_accepted_for_resolution(value: str) -> None:
    # Changed contract (issue 10): resolved in the cluster before anything else.
    assert validate_container_instance(value) == value


def test_a_container_instance_model_is_taken_by_its_arn() -> None:
    arn = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:container-instance/prod/{HEX_ID}"
    assert validate_container_instance(ContainerInstance(container_instance_arn=arn)) == arn
    with pytest.raises(InvalidInputError, match="without a container_instance_arn"):
        validate_container_instance(ContainerInstance())


def test_filter_status_and_group_checks() -> None:
    assert check_filter(None) is None
    expression = "attribute:ecs.instance-type == t3.large"
    assert check_filter(expression) == expression
    for bad in ("", "  ", 42):
        with pytest.raises(InvalidInputError, match="filter"):
            check_filter(bad)
    assert check_instance_status("DRAINING") == "DRAINING"
    assert check_instance_status(None) is None
    with pytest.raises(InvalidInputError, match="REGISTRATION_FAILED"):
        check_instance_status("draining")
    assert check_name("web-asg", "auto_scaling_group") == "web-asg"
    with pytest.raises(InvalidInputError, match="auto_scaling_group"):
        check_name(" web", "auto_scaling_group")


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0abc1234def567890", "ec2"),
        (f"arn:aws:ecs:eu-west-1:{ACCOUNT}:task/prod/{HEX_ID}", "task"),
        (CLUSTER_ARN, "cluster"),
    ],
)
def test_foreign_arn_message_names_what_it_is(value: str, named: str) -> None:
    with pytest.raises(InvalidInputError, match="not of an ECS container instance") as exc_info:
        validate_container_instance(value)
    assert named in str(exc_info.value)


def test_too_long_message_gives_the_length_not_the_value() -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        validate_container_instance("a" * 5000)
    assert "5000" in str(exc_info.value)
    assert len(str(exc_info.value)) < 300


def test_custom_argument_name_is_used() -> None:
    with pytest.raises(InvalidInputError, match="my_arg"):
        validate_container_instance(None, argument="my_arg")


# ------------------------------------------------------------------ validate_cluster


@pytest.mark.parametrize(
    "value",
    [
        "default",
        "prod",
        "my_cluster-2",
        "a" * 255,
        CLUSTER_ARN,
        f"arn:aws-cn:ecs:cn-north-1:{ACCOUNT}:cluster/prod",
        f"arn:aws-us-gov:ecs:us-gov-east-1:{ACCOUNT}:cluster/prod",
    ],
)
def test_valid_clusters(value: str) -> None:
    assert validate_cluster(value) == value


def test_cluster_none_means_default() -> None:
    assert validate_cluster(None) is None
    assert cluster_name_of(None) == "default"
    assert cluster_name_of(CLUSTER_ARN) == "prod"
    assert cluster_name_of("prod") == "prod"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param(" ", id="space"),
        pytest.param("prod\n", id="trailing-newline"),
        pytest.param(f"{CLUSTER_ARN}\n", id="arn-trailing-newline"),
        pytest.param(" prod", id="leading-space"),
        pytest.param("a" * 256, id="too-long"),
        pytest.param("prod/../x", id="dot-dot-slash"),
        pytest.param("prod;x", id="semicolon"),
        pytest.param("prödd", id="unicode"),
        pytest.param(LONG_ARN, id="instance-arn"),
        pytest.param(f"arn:aws:ec2:eu-west-1:{ACCOUNT}:vpc/vpc-1", id="ec2-arn"),
        pytest.param(b"prod", id="bytes"),
        pytest.param(1, id="int"),
        pytest.param(True, id="bool"),
    ],
)
def test_bad_clusters_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        validate_cluster(value)
    _refused(exc_info, "cluster")


# ------------------------------------------------------------------ check_same_cluster


def test_same_cluster_by_name_or_arn_is_accepted() -> None:
    check_same_cluster(LONG_ARN, "prod")
    check_same_cluster(LONG_ARN, CLUSTER_ARN)
    check_same_cluster(SHORT_ARN, "anything")
    check_same_cluster(HEX_ID, "anything")
    check_same_cluster(f"arn:aws:ecs:eu-west-1:{ACCOUNT}:container-instance/default/{HEX_ID}", None)


@pytest.mark.parametrize(
    "cluster", ["staging", f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/staging", None]
)
def test_contradicting_cluster_is_refused_with_the_fix(cluster: str | None) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        check_same_cluster(LONG_ARN, cluster)
    _refused(exc_info, "cluster")
    assert "cluster='prod'" in str(exc_info.value)


# ------------------------------------------------------------------ validate_container_instances


def test_list_of_instances_is_returned_as_list() -> None:
    assert validate_container_instances([HEX_ID, UUID_ID], cluster=None) == [HEX_ID, UUID_ID]


def test_tuple_and_generator_are_accepted() -> None:
    assert validate_container_instances((HEX_ID,), cluster=None) == [HEX_ID]

    def gen() -> Iterator[str]:
        yield HEX_ID
        yield LONG_ARN

    assert validate_container_instances(gen(), cluster="prod") == [HEX_ID, LONG_ARN]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(HEX_ID, id="bare-str"),
        pytest.param(HEX_ID.encode(), id="bare-bytes"),
        pytest.param(None, id="None"),
        pytest.param(42, id="int"),
    ],
)
def test_non_collections_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        validate_container_instances(value, cluster=None)
    _refused(exc_info, "container_instances")


def test_bare_string_message_says_how_to_pass_one() -> None:
    with pytest.raises(InvalidInputError, match=r"\[instance\]"):
        validate_container_instances(HEX_ID, cluster=None)


@pytest.mark.parametrize("value", [[], (), iter([])])
def test_empty_collection_is_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        validate_container_instances(value, cluster=None)
    _refused(exc_info, "container_instances")
    assert "empty" in str(exc_info.value)


def test_one_bad_item_refuses_the_collection() -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        validate_container_instances([HEX_ID, "i-0abc1234def5678"], cluster=None)
    _refused(exc_info, "container_instances")


def test_item_of_another_cluster_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="prod"):
        validate_container_instances([HEX_ID, LONG_ARN], cluster="staging")


# ------------------------------------------------------------------ check_bool


@pytest.mark.parametrize("value", [True, False])
def test_check_bool_accepts_bools(value: bool) -> None:
    assert check_bool(value, "force") is value


@pytest.mark.parametrize("value", ["false", "False", "true", "", 0, 1, None, 1.0, [False]])
def test_check_bool_refuses_everything_else(value: Any) -> None:
    # "false" is truthy: accepting it would force a deregistration nobody asked for.
    with pytest.raises(InvalidInputError) as exc_info:
        check_bool(value, "force")
    _refused(exc_info, "force")


# ------------------------------------------------------------------ check_choice

CHOICES = ("raise", "reactivate", "force")


@pytest.mark.parametrize("value", CHOICES)
def test_check_choice_accepts_each_choice(value: str) -> None:
    assert check_choice(value, "on_timeout", CHOICES) == value


@pytest.mark.parametrize("value", ["RAISE", "raise ", "", None, 1, ["raise"], b"raise"])
def test_check_choice_refuses_others_and_lists_the_choices(value: Any) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        check_choice(value, "on_timeout", CHOICES)
    _refused(exc_info, "on_timeout")
    for choice in CHOICES:
        assert repr(choice) in str(exc_info.value)


# ------------------------------------------------------------------ check_positive_number


@pytest.mark.parametrize(("value", "expected"), [(1, 1.0), (0.5, 0.5), (600, 600.0), (1e-9, 1e-9)])
def test_check_positive_number_accepts(value: float, expected: float) -> None:
    result = check_positive_number(value, "timeout")
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -1, -0.1, math.nan, math.inf, -math.inf, True, False, "5", None, [1], 10**400],
    ids=repr_short,
)
def test_check_positive_number_refuses(value: Any) -> None:
    with pytest.raises(InvalidInputError) as exc_info:
        check_positive_number(value, "timeout")
    _refused(exc_info, "timeout")


def test_check_positive_number_allow_zero() -> None:
    assert check_positive_number(0, "poll_interval", allow_zero=True) == 0.0
    with pytest.raises(InvalidInputError, match=">= 0"):
        check_positive_number(-1, "poll_interval", allow_zero=True)


def test_check_positive_number_integer() -> None:
    assert check_positive_number(10, "concurrency", integer=True) == 10.0
    for bad in (10.0, 2.5, True, "10"):
        with pytest.raises(InvalidInputError, match="concurrency must be an int"):
            check_positive_number(bad, "concurrency", integer=True)


def test_check_positive_number_huge_negative_int_is_refused_cleanly() -> None:
    # Too many digits even to print: must still be an InvalidInputError, not a ValueError
    # from int -> str conversion or an OverflowError.
    with pytest.raises(InvalidInputError, match="timeout"):
        check_positive_number(-(10**5000), "timeout")
