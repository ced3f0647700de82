"""LocalEcs's responses render as moto's do, with moto's attribute look-ups computed once."""

from __future__ import annotations

import json
from typing import Any

from botocore.model import Shape
from moto.core.serialize import XFormedAttributePicker, get_serializer_class
from moto.core.utils import get_service_model
from moto.ecs.responses import EC2ContainerServiceResponse

from ecs_safe.local import LocalEcs
from ecs_safe.local.serializing import install, memo_picker

CLUSTER = "c"


def _render(picker_class: type[Any], operation: str, result: dict[str, Any]) -> Any:
    """``result`` as moto's JSON serializer renders it for ``operation`` with ``picker_class``."""
    serializer = get_serializer_class("ecs", "json")(
        operation_model=get_service_model("ecs").operation_model(operation),
        pretty_print=False,
        value_picker=picker_class(
            response_transformers=EC2ContainerServiceResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER
        ),
    )
    return json.loads(serializer.serialize(result)["body"])


def test_a_describe_over_http_is_what_moto_s_own_picker_renders(ecs_env: LocalEcs) -> None:
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, count=3)
    ecs_env.start_standalone_task(CLUSTER, arns[0], count=2)
    answer = ecs_env._client("ecs").describe_container_instances(
        cluster=CLUSTER, containerInstances=arns, include=["TAGS", "CONTAINER_INSTANCE_HEALTH"]
    )
    backend = ecs_env._ecs_backend()
    instances = [backend.container_instances[CLUSTER][arn.split("/")[-1]] for arn in arns]
    expected = _render(
        XFormedAttributePicker,
        "DescribeContainerInstances",
        {"containerInstances": instances, "failures": []},
    )
    got = answer["containerInstances"]
    assert [i["containerInstanceArn"] for i in got] == arns
    assert got[0]["runningTasksCount"] == 2
    # botocore parsed the wire JSON; compare what both say about each instance.
    for mine, moto_s in zip(got, expected["containerInstances"], strict=True):
        assert mine["runningTasksCount"] == moto_s["runningTasksCount"]
        assert mine["status"] == moto_s["status"]
        assert {r["name"] for r in mine["remainingResources"]} == {
            r["name"] for r in moto_s["remainingResources"]
        }
        assert mine["ec2InstanceId"] == moto_s["ec2InstanceId"]


def test_the_memo_picker_renders_byte_for_byte_what_moto_s_picker_renders(
    ecs_env: LocalEcs,
) -> None:
    ecs_env.create_cluster(CLUSTER)
    arns = ecs_env.register_instances(CLUSTER, count=2)
    ecs_env.start_standalone_task(CLUSTER, arns[1], count=1)
    backend = ecs_env._ecs_backend()
    instances = list(backend.container_instances[CLUSTER].values())
    result = {"containerInstances": instances, "failures": []}
    plain = _render(XFormedAttributePicker, "DescribeContainerInstances", result)
    # Twice: the first render fills the cache, the second is served from it.
    assert _render(memo_picker(), "DescribeContainerInstances", result) == plain
    assert _render(memo_picker(), "DescribeContainerInstances", result) == plain
    tasks = list(backend.tasks[CLUSTER].values())
    assert _render(memo_picker(), "DescribeTasks", {"tasks": tasks, "failures": []}) == (
        _render(XFormedAttributePicker, "DescribeTasks", {"tasks": tasks, "failures": []})
    )


def _shape(serialized_name: str) -> Shape:
    """A string member shape that botocore serializes as ``serialized_name``."""
    return Shape("String", {"type": "string", "locationName": serialized_name})


class _Context:
    """The parts of moto's picker context that its aliases read."""

    def __init__(self, shape: Shape) -> None:
        self.obj = object()
        self.key = "clusterName"
        self.shape = shape


def _context(shape: Shape) -> Any:
    return _Context(shape)


def test_a_cached_entry_is_never_taken_for_another_shape_under_a_reused_id() -> None:
    memo = memo_picker()
    picker = memo(response_transformers={})
    plain = XFormedAttributePicker(response_transformers={})
    old = _shape("clusterName")
    old_keys = list(picker.get_possible_keys(_context(old)))
    assert old_keys == list(plain.get_possible_keys(_context(old)))
    # A shape that was collected, its id then given to a new one: its entry, under that id.
    new = _shape("name")
    memo._keys[(object, "clusterName", id(new))] = (old, tuple(old_keys))
    new_keys = list(picker.get_possible_keys(_context(new)))
    assert new_keys == list(plain.get_possible_keys(_context(new)))
    assert "name" in new_keys
    assert new_keys != old_keys


def test_install_is_idempotent_and_leaves_moto_s_responses_on_the_memo_picker() -> None:
    from moto.core import responses  # noqa: PLC0415

    install()
    install()
    assert vars(responses)["XFormedAttributePicker"] is memo_picker()
    assert issubclass(memo_picker(), XFormedAttributePicker)
