"""What ``ecs-safe list`` reports: a cluster's container instances, and their JSON document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ecs_safe.cli.exit_codes import ExitCode
from ecs_safe.cli.reports import JSON_SCHEMA_VERSION, instance_json

if TYPE_CHECKING:
    from ecs_safe.models import ContainerInstance

__all__ = ["LIST_ATTRIBUTES", "ListReport", "attribute_of"]


def attribute_of(instance: ContainerInstance, name: str) -> str | None:
    """The value of one of the instance's ECS attributes (``ecs.instance-type``, ...)."""
    for attribute in instance.attributes or []:
        if attribute.name == name:
            return attribute.value
    return None


#: The ECS attributes ``list`` shows, by the JSON key each is written under.
LIST_ATTRIBUTES: Final = {
    "instance_type": "ecs.instance-type",
    "ami_id": "ecs.ami-id",
    "availability_zone": "ecs.availability-zone",
}


@dataclass
class ListReport:
    """The outcome of ``list``: a cluster's container instances, in listing order."""

    cluster: str | None
    """The cluster as given (``None``: the default cluster)."""
    instances: list[ContainerInstance]
    """As ListContainerInstances returned them (every page), described."""

    @property
    def exit_code(self) -> ExitCode:
        """Always success: an empty cluster is an answer, not an error."""
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` document (the shape of ``describe``'s, without tasks)."""
        items = []
        for instance in self.instances:
            registered = instance.registered_at
            items.append(
                {
                    **(instance_json(instance) or {}),
                    **{key: attribute_of(instance, name) for key, name in LIST_ATTRIBUTES.items()},
                    "registered_at": registered.isoformat() if registered else None,
                }
            )
        return {
            "schema_version": JSON_SCHEMA_VERSION,
            "command": "list",
            "cluster": self.cluster,
            "exit_code": int(self.exit_code),
            "error": None,
            "container_instances": items,
        }
