"""Tests of the ECS models: drift against botocore, lenient parsing, exact round trips."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import botocore.session
import pytest
from botocore.model import ListShape, Shape, StructureShape
from botocore.utils import parse_timestamp
from pydantic import ValidationError

from ecs_safe import models
from ecs_safe.models import (
    Attachment,
    Attribute,
    ContainerInstance,
    ContainerInstanceHealthStatus,
    InstanceHealthCheckResult,
    KeyValuePair,
    Resource,
    Tag,
    Task,
    VersionInfo,
    _AwsModel,
    classify_task,
    service_name,
)

# botocore shape name -> our model
SHAPE_MODELS: dict[str, type[_AwsModel]] = {
    "ContainerInstance": ContainerInstance,
    "VersionInfo": VersionInfo,
    "Resource": Resource,
    "Attribute": Attribute,
    "Attachment": Attachment,
    "KeyValuePair": KeyValuePair,
    "Tag": Tag,
    "ContainerInstanceHealthStatus": ContainerInstanceHealthStatus,
    "InstanceHealthCheckResult": InstanceHealthCheckResult,
}
SCALARS: dict[str, type] = {
    "string": str,
    "integer": int,
    "long": int,
    "double": float,
    "float": float,
    "boolean": bool,
    "timestamp": datetime,
}
# Read-only properties we add on top of the AWS shape; they are not fields and never dumped.
CONVENIENCES: dict[type[_AwsModel], set[str]] = {ContainerInstance: {"instance_id", "cluster_name"}}
# Fields that are ours, not AWS's.
OUR_FIELDS: dict[type[_AwsModel], set[str]] = {Task: {"kind"}}

UTC_2015 = datetime(2015, 1, 1, tzinfo=UTC)
# What botocore itself returns for a timestamp: a datetime with dateutil's tzutc.
BOTOCORE_2015: datetime = parse_timestamp("2015-01-01T00:00:00Z")
ALL_MODELS: list[type[_AwsModel]] = [*SHAPE_MODELS.values(), Task]


def ecs_shape(name: str) -> StructureShape:
    shape = botocore.session.get_session().get_service_model("ecs").shape_for(name)
    assert isinstance(shape, StructureShape)
    return shape


def fields_by_alias(model: type[_AwsModel]) -> dict[str, str]:
    return {field.alias or name: name for name, field in model.model_fields.items()}


def non_optional(annotation: Any) -> Any:
    """Strip ``| None`` from a field annotation."""
    assert isinstance(annotation, types.UnionType), annotation
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    assert len(args) == 1, annotation
    return args[0]


def expected_type(shape: Shape) -> Any:
    """The Python type our model should use for a botocore shape."""
    if isinstance(shape, StructureShape):
        return SHAPE_MODELS[shape.name]
    if isinstance(shape, ListShape):
        return list[expected_type(shape.member)]  # type: ignore[misc]
    return SCALARS[shape.type_name]


def check_structure(shape: StructureShape, model: type[_AwsModel], seen: set[str]) -> None:
    aliases = fields_by_alias(model)
    for member_name, member in shape.members.items():
        assert member_name in aliases, f"{model.__name__} lacks botocore member {member_name}"
        field = model.model_fields[aliases[member_name]]
        assert field.default is None, f"{model.__name__}.{member_name} must default to None"
        assert non_optional(field.annotation) == expected_type(member), member_name
        target = member.member if isinstance(member, ListShape) else member
        if isinstance(target, StructureShape) and target.name not in seen:
            seen.add(target.name)
            check_structure(target, SHAPE_MODELS[target.name], seen)
    ours = set(aliases) - set(shape.members) - OUR_FIELDS.get(model, set())
    assert not ours, f"{model.__name__} has fields botocore does not: {ours}"


def test_container_instance_matches_botocore_recursively() -> None:
    seen = {"ContainerInstance"}
    check_structure(ecs_shape("ContainerInstance"), ContainerInstance, seen)
    assert seen == set(SHAPE_MODELS), "every model maps to a botocore shape, and back"


def test_conveniences_are_properties_not_fields() -> None:
    for model, names in CONVENIENCES.items():
        for name in names:
            assert isinstance(getattr(model, name), property)
            assert name not in model.model_fields


def test_task_fields_are_botocore_task_members() -> None:
    shape = ecs_shape("Task")
    aliases = fields_by_alias(Task)
    assert set(aliases) - set(shape.members) == {"kind"}
    for alias, name in aliases.items():
        if alias == "kind":
            continue
        field = Task.model_fields[name]
        assert field.default is None
        assert non_optional(field.annotation) == expected_type(shape.members[alias]), alias
    assert set(Task.model_fields["kind"].annotation.__args__) == {  # type: ignore[union-attr]
        "service",
        "daemon",
        "standalone",
    }


def test_aliases_round_trip_through_the_generator() -> None:
    for model in ALL_MODELS:
        for name, field in model.model_fields.items():
            assert field.alias is not None
            assert field.alias[0].islower(), (model, name)
            assert "_" not in field.alias, (model, name)
    assert ContainerInstance.model_fields["ec2_instance_id"].alias == "ec2InstanceId"


def test_every_public_class_and_field_is_documented() -> None:
    for model in ALL_MODELS:
        assert model.__doc__
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


def test_all_is_sorted_and_public() -> None:
    assert models.__all__ == sorted(models.__all__)
    for name in models.__all__:
        assert hasattr(models, name)


# The seed's response syntax, every field filled, plus botocore's newer
# InstanceHealthCheckResult.statusReason.
FULL: dict[str, Any] = {
    "containerInstanceArn": "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/0123abcd",
    "ec2InstanceId": "i-0123456789abcdef0",
    "capacityProviderName": "cp",
    "version": 123,
    "versionInfo": {"agentVersion": "1.80.0", "agentHash": "abc123", "dockerVersion": "24.0.5"},
    "remainingResources": [
        {
            "name": "CPU",
            "type": "INTEGER",
            "doubleValue": 0.0,
            "longValue": 0,
            "integerValue": 2048,
            "stringSetValue": ["string"],
        },
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375"]},
    ],
    "registeredResources": [
        {
            "name": "MEMORY",
            "type": "INTEGER",
            "doubleValue": 123.0,
            "longValue": 123,
            "integerValue": 3768,
            "stringSetValue": ["string"],
        }
    ],
    "status": "INACTIVE",
    "statusReason": "string",
    "agentConnected": True,
    "runningTasksCount": 0,
    "pendingTasksCount": 0,
    "agentUpdateStatus": "UPDATED",
    "attributes": [
        {
            "name": "ecs.os-type",
            "value": "linux",
            "targetType": "container-instance",
            "targetId": "0123abcd",
        }
    ],
    "registeredAt": BOTOCORE_2015,
    "attachments": [
        {
            "id": "att-1",
            "type": "ElasticNetworkInterface",
            "status": "ATTACHED",
            "details": [{"name": "networkInterfaceId", "value": "eni-1"}],
        }
    ],
    "tags": [{"key": "team", "value": "infra"}],
    "healthStatus": {
        "overallStatus": "OK",
        "details": [
            {
                "type": "CONTAINER_RUNTIME",
                "status": "OK",
                "statusReason": "string",
                "lastUpdated": BOTOCORE_2015,
                "lastStatusChange": BOTOCORE_2015,
            }
        ],
    },
}


def test_full_example_covers_every_botocore_member() -> None:
    def members_missing(shape: Shape, value: Any, path: str) -> list[str]:
        if isinstance(shape, StructureShape):
            missing = [f"{path}.{m}" for m in shape.members if m not in value]
            for m, sub in shape.members.items():
                if m in value:
                    missing += members_missing(sub, value[m], f"{path}.{m}")
            return missing
        if isinstance(shape, ListShape):
            # The first item of each list is the fully populated one.
            return members_missing(shape.member, value[0], path) if value else [f"{path}[]"]
        return []

    assert members_missing(ecs_shape("ContainerInstance"), FULL, "") == []


def test_full_round_trip_by_alias() -> None:
    instance = ContainerInstance.model_validate(FULL)
    assert instance.model_dump(by_alias=True) == FULL
    assert instance.model_extra == {}
    assert instance.version_info is not None
    assert instance.version_info.agent_version == "1.80.0"
    assert instance.health_status is not None
    assert instance.health_status.details is not None
    assert instance.health_status.details[0].status_reason == "string"


def test_full_round_trip_through_json() -> None:
    instance = ContainerInstance.model_validate(FULL)
    dumped = instance.model_dump(mode="json", by_alias=True)
    assert dumped["registeredAt"] == "2015-01-01T00:00:00Z"
    assert ContainerInstance.model_validate(dumped) == instance
    as_json = instance.model_dump_json(by_alias=True)
    assert ContainerInstance.model_validate_json(as_json) == instance


def test_snake_case_dump_and_population_by_name() -> None:
    instance = ContainerInstance.model_validate(FULL)
    snake = instance.model_dump()
    assert snake["ec2_instance_id"] == "i-0123456789abcdef0"
    assert snake["health_status"]["details"][0]["last_status_change"] == UTC_2015
    assert "containerInstanceArn" not in snake
    assert ContainerInstance.model_validate(snake) == instance


def test_empty_dict_parses_and_dumps_empty() -> None:
    instance = ContainerInstance.model_validate({})
    assert instance.status is None
    assert instance.attributes is None
    assert instance.model_dump(by_alias=True) == {}
    assert instance.model_dump() == {}
    assert instance.model_dump(mode="json") == {}


def test_absent_fields_are_not_dumped_but_explicit_none_is() -> None:
    data = {"status": "ACTIVE", "statusReason": None, "versionInfo": {"agentVersion": "1"}}
    instance = ContainerInstance.model_validate(data)
    assert instance.model_dump(by_alias=True) == data
    assert instance.model_dump() == {
        "status": "ACTIVE",
        "status_reason": None,
        "version_info": {"agent_version": "1"},
    }


def test_unknown_fields_are_kept_and_dumped_back() -> None:
    data = {
        "status": "ACTIVE",
        "brandNewField": {"nested": [1, 2]},
        "healthStatus": {"overallStatus": "OK", "futureThing": 1},
        "attributes": [{"name": "a", "extraKey": "x"}],
    }
    instance = ContainerInstance.model_validate(data)
    assert instance.model_extra == {"brandNewField": {"nested": [1, 2]}}
    assert instance.model_dump(by_alias=True) == data


def test_unknown_enum_values_are_kept() -> None:
    data = {
        "status": "SOMETHING_NEW",
        "agentUpdateStatus": "SOMETHING_NEW",
        "attributes": [{"targetType": "SOMETHING_NEW"}],
        "healthStatus": {
            "overallStatus": "SOMETHING_NEW",
            "details": [{"type": "SOMETHING_NEW", "status": "SOMETHING_NEW"}],
        },
    }
    instance = ContainerInstance.model_validate(data)
    assert instance.status == "SOMETHING_NEW"
    assert instance.model_dump(by_alias=True) == data


def test_moto_empty_attributes_parse() -> None:
    data = {"containerInstanceArn": "arn", "attributes": [{}, {}]}
    instance = ContainerInstance.model_validate(data)
    assert instance.attributes == [Attribute(), Attribute()]
    assert instance.model_dump(by_alias=True) == data


@pytest.mark.parametrize(
    "value",
    [
        UTC_2015,
        BOTOCORE_2015,
        datetime(2015, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        1420070400,
        1420070400.0,
        1420070400000,  # milliseconds
        "1420070400",
        "2015-01-01T00:00:00Z",
        "2015-01-01T00:00:00+00:00",
        "2015-01-01T01:00:00+01:00",
    ],
)
def test_timestamps_accept_datetimes_epochs_and_iso(value: Any) -> None:
    instance = ContainerInstance.model_validate(
        {"registeredAt": value, "healthStatus": {"details": [{"lastUpdated": value}]}}
    )
    assert instance.registered_at == UTC_2015
    assert instance.health_status is not None
    assert instance.health_status.details is not None
    assert instance.health_status.details[0].last_updated == UTC_2015
    assert instance.model_dump(mode="json", by_alias=True)["registeredAt"] in {
        "2015-01-01T00:00:00Z",
        "2015-01-01T01:00:00+01:00",
    }


def test_numeric_strings_are_coerced() -> None:
    instance = ContainerInstance.model_validate(
        {"runningTasksCount": "12", "agentConnected": "true", "version": 7.0}
    )
    assert instance.running_tasks_count == 12
    assert instance.agent_connected is True
    assert instance.version == 7


@pytest.mark.parametrize(
    ("key", "attribute", "value"),
    [
        ("runningTasksCount", "running_tasks_count", "lots"),
        ("runningTasksCount", "running_tasks_count", 1.5),
        ("registeredAt", "registered_at", "not a date"),
        ("versionInfo", "version_info", "1.2.3"),
        ("attributes", "attributes", "name=value"),
        ("attributes", "attributes", [{}, "junk"]),
        ("tags", "tags", {"team": "infra"}),
        ("status", "status", 5),
    ],
)
def test_values_that_do_not_fit_are_kept_not_rejected(key: str, attribute: str, value: Any) -> None:
    data = {"containerInstanceArn": "arn", "pendingTasksCount": 0, key: value}
    instance = ContainerInstance.model_validate(data)
    assert getattr(instance, attribute) is None  # the typed attribute never lies
    assert instance.model_extra == {key: value}
    assert instance.pending_tasks_count == 0
    assert instance.model_dump(by_alias=True) == data
    assert instance.model_dump()[key] == value


def test_nested_values_that_do_not_fit_stay_in_the_nested_model() -> None:
    data = {"attributes": [{"name": "a", "value": 1}], "versionInfo": {"agentVersion": ["x"]}}
    instance = ContainerInstance.model_validate(data)
    assert instance.attributes is not None
    assert instance.attributes[0].name == "a"
    assert instance.attributes[0].value is None
    assert instance.attributes[0].model_extra == {"value": 1}
    assert instance.model_dump(by_alias=True) == data


def test_top_level_non_mapping_is_still_an_error() -> None:
    with pytest.raises(ValidationError):
        ContainerInstance.model_validate("not a container instance")


@pytest.mark.parametrize(
    ("arn", "instance_id", "cluster"),
    [
        ("arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/0123abcd", "0123abcd", "prod"),
        ("arn:aws-cn:ecs:cn-north-1:123456789012:container-instance/c-1/abc", "abc", "c-1"),
        ("arn:aws:ecs:eu-west-1:123456789012:container-instance/0123abcd", "0123abcd", None),
        ("0123abcd", "0123abcd", None),
        (None, None, None),
    ],
)
def test_instance_id_and_cluster_name(
    arn: str | None, instance_id: str | None, cluster: str | None
) -> None:
    instance = ContainerInstance(container_instance_arn=arn)
    assert instance.instance_id == instance_id
    assert instance.cluster_name == cluster
    assert "instance_id" not in instance.model_dump()


@pytest.mark.parametrize(
    ("group", "started_by", "daemons", "kind"),
    [
        ("service:web", "ecs-svc/123", frozenset(), "service"),
        ("service:web", None, frozenset(), "service"),
        ("custom-group", "ecs-svc/123", frozenset(), "service"),
        (None, "ecs-svc/123", frozenset({"web"}), "service"),
        ("service:agent", "ecs-svc/9", frozenset({"agent"}), "daemon"),
        ("service:web", "ecs-svc/9", frozenset({"agent"}), "service"),
        ("family:batch", None, frozenset(), "standalone"),
        ("family:batch", "me", frozenset({"batch"}), "standalone"),
        (None, None, frozenset(), "standalone"),
        ("", "", frozenset(), "standalone"),
    ],
)
def test_classify_task(
    group: str | None, started_by: str | None, daemons: frozenset[str], kind: str
) -> None:
    assert classify_task(group, started_by, daemons) == kind


def test_service_name() -> None:
    assert service_name("service:web") == "web"
    assert service_name("service:") is None
    assert service_name("family:web") is None
    assert service_name(None) is None


TASK: dict[str, Any] = {
    "taskArn": "arn:aws:ecs:eu-west-1:123456789012:task/prod/abc",
    "lastStatus": "RUNNING",
    "desiredStatus": "RUNNING",
    "group": "service:agent",
    "startedBy": "ecs-svc/1",
    "launchType": "EC2",
    "containerInstanceArn": "arn:aws:ecs:eu-west-1:123456789012:container-instance/prod/0123abcd",
    "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/agent:1",
    "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
    "createdAt": UTC_2015,
    "startedAt": UTC_2015,
    "containers": [{"name": "agent", "lastStatus": "RUNNING"}],
    "cpu": "256",
}


def test_task_from_api_classifies_and_keeps_everything() -> None:
    task = Task.from_api(TASK, daemon_services=frozenset({"agent"}))
    assert task.kind == "daemon"
    assert task.model_extra == {"containers": TASK["containers"], "cpu": "256"}
    assert task.model_dump(by_alias=True) == {**TASK, "kind": "daemon"}
    assert Task.model_validate(task.model_dump(by_alias=True)) == task
    assert Task.from_api(TASK).kind == "service"
    assert Task.from_api({}).kind == "standalone"
    assert Task.from_api({}).model_dump(by_alias=True) == {"kind": "standalone"}


def test_task_from_api_is_lenient_about_group_types() -> None:
    task = Task.from_api({"group": 7, "startedBy": "ecs-svc/1"})
    assert task.kind == "service"
    assert task.group is None
    assert task.model_extra == {"group": 7}


def test_task_kind_is_ours_and_strict() -> None:
    with pytest.raises(ValidationError):
        Task.model_validate({"taskArn": "t"})
    with pytest.raises(ValidationError):
        Task.model_validate({"taskArn": "t", "kind": "orphan"})


def test_with_the_existing_services_known_labels_alone_make_no_service_task() -> None:
    live = frozenset({"web", "agent"})
    assert classify_task("service:web", "ecs-svc/1", services=live) == "service"
    assert classify_task("service:agent", "ecs-svc/2", {"agent"}, services=live) == "daemon"
    assert classify_task("service:ghost", "ecs-svc/1", services=live) == "standalone"
    assert classify_task("service:web", "nightly", services=live) == "standalone"
    assert classify_task("family:web", "ecs-svc/1", services=live) == "standalone"
    assert classify_task(None, None, services=live) == "standalone"
    # Without the services, the labels decide (the model's own, offline classification).
    assert classify_task("family:web", "ecs-svc/1") == "service"
