"""Auto Scaling groups losing and gaining instances, as AWS has them.

moto scales a group in by terminating instances at once, whatever the group's lifecycle
hooks; its instances never join an ECS cluster; and a terminated instance stays registered in
its cluster. `GroupModel` puts AWS's behaviour on top, over moto's in-process backends:

- **Scale-in.** Whenever a group is to lose instances (SetDesiredCapacity or
  UpdateAutoScalingGroup lowering the desired capacity, a scaling policy, DeleteAutoScalingGroup,
  TerminateInstanceInAutoScalingGroup) and it has an ``autoscaling:EC2_INSTANCE_TERMINATING``
  hook, each leaving instance enters ``Terminating:Wait`` (`LifecycleModel`, with the hook's
  HeartbeatTimeout and DefaultResult, and the hook's NotificationMetadata in the event)
  instead of being terminated; DescribeAutoScalingInstances and DescribeAutoScalingGroups
  report that state. When the wait ends (CONTINUE, ABANDON, the timeout) the instance is
  terminated. Without such a hook it is terminated at once.
- **Which instances.** AWS's default termination policy, simplified: never an instance
  protected from scale-in; the Availability Zone with the most InService instances first
  (the first by name on a tie); within it the instance launched first (AWS would look at
  launch templates, then the billing hour, then pick at random: moto keeps no per-instance
  template version, and a fixed order keeps tests deterministic).
- **Replacements.** An instance that leaves without lowering the desired capacity
  (TerminateInstanceInAutoScalingGroup without ShouldDecrementDesiredCapacity, EC2
  TerminateInstances, a Spot interruption) is replaced at once by a new launch; an instance in
  ``Terminating:Wait`` no longer counts towards the desired capacity.
- **Termination** (the end of a wait, an immediate scale-in, EC2 TerminateInstances,
  `LocalEcs.terminate_instance`) takes the EC2 instance out of every cluster it is
  registered in, as ECS does when the agent goes with its host: the container instance is
  deregistered and its tasks stop. Auto Scaling terminates an instance whatever its
  DisableApiTermination; EC2's TerminateInstances refuses one (OperationNotPermitted).
- **Joining.** A group bound to a cluster (`GroupModel.join_cluster`) has every instance it
  launches from then on registered as an ACTIVE container instance, as the ECS agent does
  when the instance boots.
- **Validation moto skips.** A desired capacity outside the group's sizes, a heartbeat timeout
  outside 30..7200 seconds, a default result other than CONTINUE/ABANDON: ValidationError, as
  AWS answers. DescribeLifecycleHooks reports AWS's GlobalTimeout (the smaller of 48 hours
  and 100 heartbeat timeouts), not moto's fixed 48 hours.

Limits: one terminate hook per group is honoured (the first by name); launch hooks are not
modelled (new instances are InService at once); instances are never Pending.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from xml.sax.saxutils import escape

from ecs_safe.local.lifecycle import HEARTBEAT_TIMEOUTS_LIMIT, MAX_GLOBAL_TIMEOUT, LifecycleModel
from ecs_safe.local.traffic import After, EcsError, QueryHandler, query_response

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, InstanceState

__all__ = ["TERMINATING_TRANSITION", "GroupModel"]

#: The lifecycle transition of a terminate hook.
TERMINATING_TRANSITION: Final = "autoscaling:EC2_INSTANCE_TERMINATING"
_WAIT: Final = "Terminating:Wait"
_IN_SERVICE: Final = "InService"
# Marks a moto group whose capacity changes go through this model.
_ADOPTED: Final = "_ecs_safe_local_adopted"
_HEARTBEAT_RANGE: Final = (30, 7200)
_RESULTS: Final = frozenset({"CONTINUE", "ABANDON"})
_VALIDATION: Final = "ValidationError"


def _is_true(value: object) -> bool:
    # moto stores ModifyInstanceAttribute's value as parsed: a bool, or a string ("false").
    return value is True or str(value).lower() == "true"


def _sizes(group: FakeAutoScalingGroup) -> tuple[int, int, int]:
    """The group's min, max and desired capacity (moto types them as optional)."""
    return int(group.min_size or 0), int(group.max_size or 0), int(group.desired_capacity or 0)


def _int_param(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        msg = f"{name} must be an integer, not {value!r}"
        raise EcsError(_VALIDATION, msg) from None


class GroupModel:
    """Scale-in through the terminate hook, termination leaving the cluster, agents joining.

    Args:
        backend: Looks up moto's Auto Scaling backend for the Region (per use).
        lifecycle: The ``Terminating:Wait`` model; its ``terminate`` must be `terminated`.
        exclusive: Holds moto's state alone (a no-op inside a request).
        leave: Takes an EC2 instance out of every cluster (deregisters it, stops its tasks).
        register: Registers EC2 instances in a cluster as container instances.
        clusters: The names of the clusters that exist.
    """

    def __init__(
        self,
        backend: Callable[[], AutoScalingBackend],
        lifecycle: LifecycleModel,
        *,
        exclusive: Callable[[], AbstractContextManager[None]],
        leave: Callable[[str], None],
        register: Callable[[str, list[str]], list[str]],
        clusters: Callable[[], set[str]],
    ) -> None:
        """Model nothing until a request (or `adopt`) makes a group this model's."""
        self._backend = backend
        self._lifecycle = lifecycle
        self._exclusive = exclusive
        self._leave = leave
        self._register = register
        self._clusters = clusters
        self._lock = threading.Lock()
        self._bindings: dict[str, str] = {}
        self._metadata: dict[tuple[str, str], str] = {}

    def reset(self) -> None:
        """Forget the bindings and hook metadata (moto's state is being cleared)."""
        with self._lock:
            self._bindings.clear()
            self._metadata.clear()

    # -- joining -------------------------------------------------------------------------

    def join_cluster(self, group: str, cluster: str) -> None:
        """Register every instance the group launches from now on in ``cluster`` (ACTIVE).

        The group's current instances are left as they are: register them yourself, or
        leave some out as instances whose agent never joined.
        """
        with self._exclusive():
            self._adopt(self._group(group))
        with self._lock:
            self._bindings[group] = cluster

    def cluster_of(self, group: str) -> str | None:
        """The cluster a group's new instances join, if it is bound to one."""
        with self._lock:
            return self._bindings.get(group)

    def _launched(self, group: FakeAutoScalingGroup, instance_ids: list[str]) -> None:
        cluster = self.cluster_of(group.name)
        if cluster is not None and instance_ids and cluster in self._clusters():
            self._register(cluster, instance_ids)

    # -- adopting moto's groups ----------------------------------------------------------

    def adopt(self) -> None:
        """Make every group of the Region change its capacity through this model.

        Also gives every hook AWS's GlobalTimeout (moto fixes it at 48 hours), whichever
        way it was made (PutLifecycleHook, or CreateAutoScalingGroup's hook list).
        """
        backend = self._backend()
        for group in list(backend.autoscaling_groups.values()):
            self._adopt(group)
        for hook in list(backend.lifecycle_hooks.values()):
            hook.global_timeout = min(
                int(MAX_GLOBAL_TIMEOUT.total_seconds()),
                HEARTBEAT_TIMEOUTS_LIMIT * int(hook.heartbeat_timeout),
            )

    def _adopt(self, group: FakeAutoScalingGroup) -> None:
        if group.__dict__.get(_ADOPTED):
            return
        launch = group.replace_autoscaling_group_instances
        resize = group.set_desired_capacity

        def replace(count_needed: int, propagated_tags: dict[str, str]) -> None:
            before = {state.instance.id for state in group.instance_states}
            launch(count_needed, propagated_tags)
            new = [s.instance.id for s in group.instance_states if s.instance.id not in before]
            self._launched(group, new)

        def set_desired_capacity(new_capacity: int | None) -> None:
            self._resize(group, new_capacity, resize)

        # Instance attributes, so only this Region's groups change, and only these objects.
        group.replace_autoscaling_group_instances = replace  # type: ignore[method-assign]
        group.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]
        group.__dict__[_ADOPTED] = True

    def _group(self, name: str) -> FakeAutoScalingGroup:
        group = self._backend().autoscaling_groups.get(name)
        if group is None:
            msg = f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found"
            raise EcsError(_VALIDATION, msg)
        return group

    # -- scale-in ------------------------------------------------------------------------

    def _resize(
        self,
        group: FakeAutoScalingGroup,
        new_capacity: int | None,
        moto_resize: Callable[[int | None], None],
    ) -> None:
        desired = _sizes(group)[0] if new_capacity is None else new_capacity
        active = [s for s in group.instance_states if s.lifecycle_state == _IN_SERVICE]
        if len(active) <= desired:
            # moto launches what is missing (it counts InService instances only).
            moto_resize(desired)
            return
        group.desired_capacity = desired
        for state in self._victims(group, len(active) - desired):
            self._remove(group, state)

    @staticmethod
    def _victims(group: FakeAutoScalingGroup, count: int) -> list[InstanceState]:
        """The instances the default termination policy picks (simplified, see the module)."""
        active = [s for s in group.instance_states if s.lifecycle_state == _IN_SERVICE]
        order = {id(state): index for index, state in enumerate(group.instance_states)}
        chosen: list[InstanceState] = []
        while len(chosen) < count:
            left = [s for s in active if s not in chosen]
            eligible = [s for s in left if not s.protected_from_scale_in]
            if not eligible:
                break  # as AWS: protected instances stay, above the desired capacity
            zones = Counter(s.availability_zone for s in left)
            zone = min({s.availability_zone for s in eligible}, key=lambda z: (-zones[z], str(z)))
            chosen.append(
                min(
                    (s for s in eligible if s.availability_zone == zone),
                    key=lambda s: order[id(s)],
                )
            )
        return chosen

    def _terminate_hook(self, group: str) -> Any:
        hooks = sorted(
            (
                h
                for h in self._backend().describe_lifecycle_hooks(group)
                if h.lifecycle_transition == TERMINATING_TRANSITION
            ),
            key=lambda h: str(h.name),
        )
        return hooks[0] if hooks else None

    def _remove(self, group: FakeAutoScalingGroup, state: InstanceState) -> None:
        """Take one instance out of service: ``Terminating:Wait`` under a hook, else terminate."""
        hook = self._terminate_hook(group.name)
        instance_id = str(state.instance.id)
        if hook is None:
            state.lifecycle_state = "Terminating"
            self.terminated(instance_id)
            return
        state.lifecycle_state = _WAIT
        if any(a.instance_id == instance_id for a in self._lifecycle.waiting()):
            return  # a test began its wait by hand: that action is the one to end
        with self._lock:
            metadata = self._metadata.get((group.name, str(hook.name)))
        self._lifecycle.begin_termination(
            group.name,
            str(hook.name),
            instance_id,
            heartbeat_timeout=int(hook.heartbeat_timeout),
            default_result=str(hook.default_result),
            metadata=metadata,
        )

    def entered_wait(self, group: str, instance_id: str) -> None:
        """Mark a wait begun outside a scale-in (`LifecycleModel.begin_termination` by hand).

        If the instance is an InService member of ``group``, moto's group reports it in
        ``Terminating:Wait`` from now on and its desired capacity drops by one (not below
        the min size), as in a scale-in: so no replacement is launched when it goes.
        """
        with self._exclusive():
            found = self._backend().autoscaling_groups.get(group)
            if found is None:
                return
            self._adopt(found)
            for state in found.instance_states:
                if state.instance.id == instance_id and state.lifecycle_state == _IN_SERVICE:
                    state.lifecycle_state = _WAIT
                    low, _, desired = _sizes(found)
                    found.desired_capacity = max(low, desired - 1)

    # -- termination ---------------------------------------------------------------------

    def terminated(self, instance_id: str) -> None:
        """Terminate an EC2 instance as AWS would; it leaves its group and its clusters.

        A group member still InService (a Spot interruption, an EC2 termination) is replaced;
        one that was leaving (``Terminating:Wait``) is not. DisableApiTermination is not
        consulted: it guards EC2's TerminateInstances only.
        """
        with self._exclusive():
            backend = self._backend()
            self.adopt()
            backend.ec2_backend.get_instance(instance_id).terminate()
            # moto's own bookkeeping of an EC2 termination: out of the group, and the
            # replacement of an InService member.
            backend.notify_terminate_instances([instance_id])
            self._leave(instance_id)
        self._lifecycle.instance_gone(instance_id)

    # -- the requests ----------------------------------------------------------------------

    def query_handlers(self) -> dict[str, QueryHandler]:
        """The Auto Scaling and EC2 actions this model answers or amends."""
        adopting: QueryHandler = self._adopting
        return {
            "autoscaling:SetDesiredCapacity": self._set_desired_capacity,
            "autoscaling:UpdateAutoScalingGroup": self._update_group,
            "autoscaling:TerminateInstanceInAutoScalingGroup": self._terminate_in_group,
            "autoscaling:PutLifecycleHook": self._put_lifecycle_hook,
            "autoscaling:ExecutePolicy": adopting,
            "autoscaling:DeleteAutoScalingGroup": adopting,
            "autoscaling:DetachInstances": adopting,
            "autoscaling:EnterStandby": adopting,
            "autoscaling:ExitStandby": adopting,
            "autoscaling:AttachInstances": adopting,
            "autoscaling:DescribeLifecycleHooks": adopting,
            "ec2:TerminateInstances": self._terminate_instances,
        }

    def _adopting(self, params: dict[str, str]) -> None:
        self.adopt()

    def _set_desired_capacity(self, params: dict[str, str]) -> None:
        low, high, _ = _sizes(self._group(params.get("AutoScalingGroupName", "")))
        desired = _int_param(params, "DesiredCapacity")
        if desired is not None and desired < low:
            msg = (
                f"New SetDesiredCapacity value {desired} is below min value "
                f"{low} for the AutoScalingGroup."
            )
            raise EcsError(_VALIDATION, msg)
        if desired is not None and desired > high:
            msg = (
                f"New SetDesiredCapacity value {desired} is above max value "
                f"{high} for the AutoScalingGroup."
            )
            raise EcsError(_VALIDATION, msg)
        self.adopt()

    def _update_group(self, params: dict[str, str]) -> None:
        group_low, group_high, _ = _sizes(self._group(params.get("AutoScalingGroupName", "")))
        new_low = _int_param(params, "MinSize")
        new_high = _int_param(params, "MaxSize")
        desired = _int_param(params, "DesiredCapacity")
        low = group_low if new_low is None else new_low
        high = group_high if new_high is None else new_high
        if low > high:
            msg = f"Max bound, {high}, must be greater than or equal to min bound, {low}"
            raise EcsError(_VALIDATION, msg)
        if desired is not None and not low <= desired <= high:
            msg = (
                f"Desired capacity:{desired} must be between the specified min size:{low} "
                f"and max size:{high}"
            )
            raise EcsError(_VALIDATION, msg)
        self.adopt()

    def _terminate_in_group(self, params: dict[str, str]) -> str:
        instance_id = params.get("InstanceId", "")
        decrement = params.get("ShouldDecrementDesiredCapacity", "").lower() == "true"
        self.adopt()
        found = [
            (group, state)
            for group in self._backend().autoscaling_groups.values()
            for state in group.instance_states
            if state.instance.id == instance_id
        ]
        if not found:
            msg = (
                f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
            )
            raise EcsError(_VALIDATION, msg)
        group, state = found[0]
        if state.lifecycle_state != _IN_SERVICE:
            # AWS: the instance is already on its way out; the call changes nothing.
            msg = f"The instance {instance_id} is not in InService or Standby."
            raise EcsError(_VALIDATION, msg)
        low, _, before = _sizes(group)
        if decrement:
            if before - 1 < low:
                msg = "Currently, desiredCapacity is less than or equal to minSize"
                raise EcsError(_VALIDATION, msg)
            group.desired_capacity = before - 1
        self._remove(group, state)
        if not decrement:
            # The leaving instance no longer counts: the group launches its replacement.
            group.set_desired_capacity(before)
        return query_response(
            "TerminateInstanceInAutoScalingGroup",
            _activity(group.name, instance_id, before, _sizes(group)[2]),
        )

    def _put_lifecycle_hook(self, params: dict[str, str]) -> After:
        group = params.get("AutoScalingGroupName", "")
        name = params.get("LifecycleHookName", "")
        timeout = _int_param(params, "HeartbeatTimeout")
        low, high = _HEARTBEAT_RANGE
        if timeout is not None and not low <= timeout <= high:
            msg = f"Heartbeat timeout must be between {low} and {high} seconds, not {timeout}"
            raise EcsError(_VALIDATION, msg)
        result = params.get("DefaultResult")
        if result is not None and result not in _RESULTS:
            msg = f"Valid values for DefaultResult are CONTINUE and ABANDON, not {result!r}"
            raise EcsError(_VALIDATION, msg)
        metadata = params.get("NotificationMetadata")

        def after() -> None:
            with self._lock:
                if metadata is None:
                    self._metadata.pop((group, name), None)
                else:
                    self._metadata[group, name] = metadata
            self.adopt()

        return after

    def _terminate_instances(self, params: dict[str, str]) -> After:
        ids = [v for k, v in sorted(params.items()) if k.startswith("InstanceId.")]
        wanted = set(ids)
        # An unknown ID is moto's to answer (InvalidInstanceID.NotFound).
        for instance in self._backend().ec2_backend.all_instances():
            instance_id = str(instance.id)
            if instance_id in wanted and _is_true(instance.disable_api_termination):
                # EC2 refuses the whole request before terminating anything.
                msg = (
                    f"The instance '{instance_id}' may not be terminated. Modify its "
                    "'disableApiTermination' instance attribute and try again."
                )
                raise EcsError("OperationNotPermitted", msg)
        self.adopt()

        def after() -> None:
            for instance_id in ids:
                self._leave(instance_id)
                self._lifecycle.instance_gone(instance_id)

        return after


def _activity(group: str, instance_id: str, before: int, after: int) -> str:
    now = datetime.now(UTC)
    shrink = f", shrinking the capacity from {before} to {after}" if after != before else ""
    cause = (
        f"At {now:%Y-%m-%dT%H:%M:%SZ} instance {instance_id} was taken out of service in "
        f"response to a user request{shrink}."
    )
    return (
        f"<Activity><ActivityId>{uuid.uuid4()}</ActivityId>"
        f"<AutoScalingGroupName>{escape(group)}</AutoScalingGroupName>"
        f"<Description>Terminating EC2 instance: {escape(instance_id)}</Description>"
        f"<Cause>{escape(cause)}</Cause>"
        f"<StartTime>{now:%Y-%m-%dT%H:%M:%S.000Z}</StartTime>"
        "<StatusCode>InProgress</StatusCode><Progress>0</Progress><Details>{}</Details>"
        "</Activity>"
    )
