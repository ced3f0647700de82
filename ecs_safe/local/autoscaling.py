"""Auto Scaling groups whose instances are registered in a cluster, as an ECS fleet has them.

moto has Auto Scaling: a group launches real moto EC2 instances. `AutoScalingSeeding` creates a
launch template and a group, then registers the group's instances as container instances
(optionally leaving some out, as when an instance's agent never joined), and binds the group
to the cluster so that the instances it launches later join it too (`ecs_safe.local.scaling`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ecs_safe.local.names import last_segment
from ecs_safe.local.seeding import AMI_ID, Seeding

__all__ = ["AutoScalingGroup", "AutoScalingSeeding"]

_INSTANCE_TYPE: Final = "t3.large"


@dataclass(frozen=True, slots=True)
class AutoScalingGroup:
    """A group created by `AutoScalingSeeding.create_auto_scaling_group`."""

    name: str
    """The group's name."""
    instance_ids: tuple[str, ...]
    """Every EC2 instance of the group, in the order moto lists them."""
    container_instance_arns: tuple[str, ...]
    """The container instance ARNs of the registered ones, in the same order."""
    unregistered_instance_ids: tuple[str, ...]
    """Group members left out of the cluster."""


class AutoScalingSeeding(Seeding):
    """The Auto Scaling part of the seeding helpers."""

    def join_cluster(self, group: str, cluster: str) -> None:
        """Register the instances a group launches from now on in a cluster (`LocalEcs`'s)."""
        raise NotImplementedError

    def create_auto_scaling_group(
        self,
        name: str,
        cluster: str,
        count: int,
        *,
        unregistered: int = 0,
        instance_type: str = _INSTANCE_TYPE,
        availability_zones: tuple[str, ...] = ("us-east-1a",),
        max_size: int | None = None,
        join: bool = True,
    ) -> AutoScalingGroup:
        """Create a group of ``count`` instances and register all but ``unregistered`` of them.

        A launch template ``NAME-template`` is created for it; the last ``unregistered``
        members are left out of the cluster. The group's sizes are min 0, desired ``count``
        and max ``max_size`` (``count`` unless given; more leaves room for a surge). With
        ``join`` (the default) the instances the group launches later (a surge, the
        replacement of a terminated instance) register in the cluster as they start, as
        their ECS agent would (`join_cluster`).

        Raises:
            ValueError: ``count`` is below 1, or ``unregistered`` is not in 0..count.
            LookupError: the cluster does not exist.
        """
        if count < 1:
            msg = f"count must be at least 1, not {count}"
            raise ValueError(msg)
        if not 0 <= unregistered <= count:
            msg = f"unregistered must be between 0 and count ({count}), not {unregistered}"
            raise ValueError(msg)
        if max_size is not None and max_size < count:
            msg = f"max_size must be at least count ({count}), not {max_size}"
            raise ValueError(msg)
        cluster_name = last_segment(cluster)
        if cluster_name not in self._ecs_backend().clusters:
            msg = f"cluster {cluster!r} does not exist: call create_cluster({cluster_name!r}) first"
            raise LookupError(msg)
        autoscaling = self._client("autoscaling")
        template = f"{name}-template"
        self._client("ec2").create_launch_template(
            LaunchTemplateName=template,
            LaunchTemplateData={"ImageId": AMI_ID, "InstanceType": instance_type},
        )
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=0,
            MaxSize=count if max_size is None else max_size,
            DesiredCapacity=count,
            AvailabilityZones=list(availability_zones),
        )
        described = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
        instance_ids = tuple(
            i["InstanceId"] for i in described["AutoScalingGroups"][0]["Instances"]
        )
        joining = list(instance_ids[: count - unregistered])
        arns = self._registered(cluster_name, joining)
        if join:
            self.join_cluster(name, cluster_name)
        return AutoScalingGroup(
            name=name,
            instance_ids=instance_ids,
            container_instance_arns=tuple(arns),
            unregistered_instance_ids=instance_ids[count - unregistered :],
        )
