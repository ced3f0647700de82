"""Terminate the EC2 instance, only after its deregistration is verified: the one place.

Deregistering a container instance does not stop its EC2 instance: ``terminate=True`` on
`EcsSafeClient.deregister_container_instance`, `EcsSafeClient.drain_and_deregister` and
`EcsSafeClient.deregister_many` (and ``--terminate`` in the CLI) finishes the job. Every path
(rolling replacement too) terminates through `Terminator`, in two steps:

1. **Pre-flight** (`Terminator.survey`, only when a termination is asked, so it costs nothing
   otherwise): DescribeAutoScalingInstances (50 IDs a call) says which EC2 instances belong to
   a group and which are protected from scale-in; DescribeInstanceAttribute says which carry
   EC2 termination protection. The result, a `ecs_safe.policy.Termination` per instance, goes
   into the decision: the policy sees it (`ecs_safe.policy.ProtectTermination` refuses a
   protected instance unless ``allow_protected``) before any mutating call, and a dry run
   shows it ("would terminate (auto-scaling, decrement: no)").
2. **After the deregistration** (`Terminator.finish`): a describe must show the container
   instance INACTIVE or gone (a 200 from DeregisterContainerInstance is not proof enough); only
   then TerminateInstanceInAutoScalingGroup for a group member (lowering the desired capacity
   if asked) or TerminateInstances otherwise. Both go through the client's transports: paced,
   retried, audited (intent and outcome records), and a lost response is verified by a read,
   never resent blind (`ecs_safe._aws_calls`).

A termination that fails after a successful deregistration is a `TerminationError` carrying
the deregistration's result: the instance IS deregistered, its EC2 instance still runs, and
the error says so. It is never reported as a success, nor as a plain failed deregistration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from ecs_safe import _constants, _events
from ecs_safe._gate import Request, termination_fields
from ecs_safe._validation import check_bool, instance_id_of
from ecs_safe.errors import EcsApiError, EcsSafeError, TerminationError
from ecs_safe.policy import Termination

if TYPE_CHECKING:
    from ecs_safe._calls import EcsCalls
    from ecs_safe._gate import Gate
    from ecs_safe.models import ContainerInstance
    from ecs_safe.results import DeregistrationResult

__all__ = [
    "AutoScalingApi",
    "Ec2Api",
    "GroupMember",
    "TerminationOptions",
    "Terminator",
    "deregister",
]

#: The describe's statuses that prove a container instance is deregistered.
_DEREGISTERED = "INACTIVE"
#: The status of an instance ECS is still deregistering (trunk ENIs): looked at again.
_DEREGISTERING = "DEREGISTERING"


class GroupMember(Protocol):
    """What the survey reads of a DescribeAutoScalingInstances answer (`AutoScalingInstance`)."""

    @property
    def instance_id(self) -> str:
        """The EC2 instance ID."""
        ...

    @property
    def group(self) -> str:
        """The Auto Scaling group's name."""
        ...

    @property
    def protected_from_scale_in(self) -> bool:
        """Whether the group protects it from scale-in."""
        ...


class AutoScalingApi(Protocol):
    """The Auto Scaling calls termination needs (`ecs_safe._aws_calls.AutoScalingCalls`)."""

    async def describe_instances(self, instance_ids: Sequence[str]) -> Sequence[GroupMember]:
        """DescribeAutoScalingInstances; an ID in no group is absent."""
        ...

    async def terminate_instance(
        self, instance_id: str, *, decrement_desired_capacity: bool
    ) -> bool:
        """TerminateInstanceInAutoScalingGroup; True when verified after a lost response."""
        ...


class Ec2Api(Protocol):
    """The EC2 calls termination needs (`ecs_safe._aws_calls.Ec2Calls`)."""

    async def termination_protected(self, instance_ids: Sequence[str]) -> frozenset[str]:
        """The IDs whose ``DisableApiTermination`` is on."""
        ...

    async def terminate_instances(self, instance_ids: Sequence[str]) -> bool:
        """TerminateInstances; True when verified after a lost response."""
        ...


@dataclass(frozen=True, slots=True)
class TerminationOptions:
    """The choices of a termination, validated once (the ``terminate=`` keyword arguments).

    Args:
        decrement_desired_capacity: for a group member, lower the group's desired capacity by
            one, so that the group launches no replacement.
        allow_protected: terminate even an instance protected from scale-in or with EC2
            termination protection (EC2 still refuses the latter: see `TerminationError`).

    Raises:
        InvalidInputError: a value is not a bool.
    """

    decrement_desired_capacity: bool = False
    allow_protected: bool = False

    def __post_init__(self) -> None:
        for name in ("decrement_desired_capacity", "allow_protected"):
            object.__setattr__(self, name, check_bool(getattr(self, name), name))


class Terminator:
    """Surveys what terminating would do, and terminates only verified deregistrations.

    Args:
        autoscaling: the client's Auto Scaling call layer.
        ec2: the client's EC2 call layer.
        options: what was asked (decrement, allow protected).
    """

    def __init__(
        self, autoscaling: AutoScalingApi, ec2: Ec2Api, options: TerminationOptions
    ) -> None:
        self.autoscaling = autoscaling
        self.ec2 = ec2
        self.options = options

    async def survey(self, snapshots: Mapping[str, ContainerInstance]) -> dict[str, Termination]:
        """What terminating each instance would do, keyed like ``snapshots`` (by reference).

        One DescribeAutoScalingInstances per 50 EC2 instances and the termination-protection
        reads, for the whole batch at once. An instance with no EC2 instance (ECS Anywhere)
        gets a `Termination` with nothing to terminate, which the policy refuses.

        Raises:
            EcsApiError: a read failed (after retries): nothing was decided or changed.
        """
        ids = {
            ref: ec2_id
            for ref, snapshot in snapshots.items()
            if (ec2_id := snapshot.ec2_instance_id) and ec2_id.startswith("i-")
        }
        wanted = sorted(set(ids.values()))
        members: dict[str, GroupMember] = {}
        protected: frozenset[str] = frozenset()
        if wanted:
            found, protected = await asyncio.gather(
                self.autoscaling.describe_instances(wanted), self.ec2.termination_protected(wanted)
            )
            members = {member.instance_id: member for member in found}
        plans: dict[str, Termination] = {}
        for ref in snapshots:
            ec2_id = ids.get(ref)
            member = members.get(ec2_id) if ec2_id else None
            plans[ref] = Termination(
                ec2_instance_id=ec2_id,
                method=None if ec2_id is None else "auto-scaling" if member else "ec2",
                auto_scaling_group=member.group if member else None,
                decrement_desired_capacity=self.options.decrement_desired_capacity,
                protected_from_scale_in=bool(member and member.protected_from_scale_in),
                termination_protected=ec2_id in protected,
                allow_protected=self.options.allow_protected,
            )
        return plans

    async def request(self, gate: Gate, request: Request, snapshot: ContainerInstance) -> Request:
        """``request`` with its `Termination` surveyed (for one instance).

        Raises:
            EcsApiError: a read failed (logged as a failed pre-flight; nothing changed).
        """
        try:
            found = await self.survey({request.instance: snapshot})
        except EcsApiError as exc:
            gate.preflight_failed(request, exc)
            raise
        return replace(request, termination=found[request.instance])

    async def finish(
        self, calls: EcsCalls, request: Request, result: DeregistrationResult
    ) -> DeregistrationResult:
        """Terminate the EC2 instance of a deregistration, once a describe proves it done.

        A dry run, or a request without termination, is returned as it is (a plan already
        says how the instance would be terminated: `ecs_safe._gate.Gate.plan`).

        Returns:
            ``result`` with ``terminated`` true and how (``termination``, the group, whether
            the desired capacity was lowered, whether a lost response was verified).

        Raises:
            TerminationError: the deregistration could not be verified (nothing terminated),
                or the termination failed: the instance is deregistered either way
                (``error.result``) and its EC2 instance still runs.
        """
        termination = request.termination
        if termination is None or result.dry_run:
            return result
        result = result.model_copy(update=termination_fields(termination))
        ec2_id = termination.ec2_instance_id
        label = result.container_instance.container_instance_arn or request.instance
        fields = {
            "cluster": request.cluster,
            "container_instance_arn": label,
            "ec2_instance_id": ec2_id,
            "termination": termination.method,
            "auto_scaling_group": termination.auto_scaling_group,
            "decrement_desired_capacity": result.decrement_desired_capacity,
        }
        try:
            verified = await _deregistration_verified(calls, request)
        except EcsApiError as exc:
            raise self._failed(result, termination, fields, exc, verified=False) from exc
        if not verified:
            raise self._failed(result, termination, fields, None, verified=False)
        try:
            if termination.method == "auto-scaling" and ec2_id is not None:
                lost = await self.autoscaling.terminate_instance(
                    ec2_id, decrement_desired_capacity=termination.decrement_desired_capacity
                )
            elif termination.method == "ec2" and ec2_id is not None:
                lost = await self.ec2.terminate_instances([ec2_id])
            else:  # the policy refuses this before the deregistration (ProtectTermination)
                raise EcsSafeError(f"{label} has no EC2 instance to terminate")
        except EcsSafeError as exc:
            raise self._failed(result, termination, fields, exc, verified=True) from exc
        _events.logger.info(
            "ecs_safe.terminate.succeeded", **fields, verified_after_lost_response=lost
        )
        return result.model_copy(update={"terminated": True, "termination_verified": lost})

    @staticmethod
    def _failed(
        result: DeregistrationResult,
        termination: Termination,
        fields: Mapping[str, object],
        cause: EcsSafeError | None,
        *,
        verified: bool,
    ) -> TerminationError:
        label = fields["container_instance_arn"]
        ec2_id = termination.ec2_instance_id
        if not verified:
            why = f"a describe could not prove it deregistered ({cause or 'it is still listed'})"
            message = (
                f"container instance {label} was deregistered (DeregisterContainerInstance "
                f"answered), but {why}: EC2 instance {ec2_id} was NOT terminated. Check the "
                "instance, then terminate it yourself or call again"
            )
            reason = "DeregistrationUnverified"
        else:
            auto = termination.method == "auto-scaling"
            how = "TerminateInstanceInAutoScalingGroup" if auto else "TerminateInstances"
            message = (
                f"container instance {label} IS deregistered, but terminating EC2 instance "
                f"{ec2_id} failed ({how}: {cause}): it is still running outside the cluster; "
                "terminate it yourself (or fix the cause and terminate it)"
            )
            reason = cause.code if cause is not None else "TerminationFailed"
        _events.logger.error(
            "ecs_safe.terminate.failed",
            **fields,
            deregistered=True,
            deregistration_verified=verified,
            error_code=reason,
            error=message,
        )
        return TerminationError(
            message,
            result=result,
            ec2_instance_id=ec2_id,
            deregistration_verified=verified,
            reason=reason,
        )


async def _deregistration_verified(calls: EcsCalls, request: Request) -> bool:
    """Whether a describe shows the container instance INACTIVE or gone from the cluster.

    An instance ECS is still DEREGISTERING (trunk ENIs being detached) is looked at again, a
    few times, before the answer is no.

    Raises:
        EcsApiError: the describe failed (after retries).
    """
    key = instance_id_of(request.instance)
    for attempt in range(_constants.DEREGISTRATION_CHECKS):
        answers = await calls.describe_instances([request.instance], request.cluster)
        instance = answers.found.get(key)
        if instance is None:
            return key in answers.missing
        if instance.status == _DEREGISTERED:
            return True
        if instance.status != _DEREGISTERING or attempt + 1 == _constants.DEREGISTRATION_CHECKS:
            return False
        await asyncio.sleep(_constants.DEREGISTRATION_CHECK_INTERVAL)
    return False


async def deregister(
    gate: Gate, request: Request, terminator: Terminator | None
) -> DeregistrationResult:
    """`EcsSafeClient.deregister_container_instance` on a validated request.

    Without ``terminator`` it is `Gate.deregister`; with one, the termination is surveyed
    in the pre-flight, judged with the rest, and done after the verified deregistration.

    Raises:
        TerminationError: deregistered, but not terminated (see `Terminator.finish`).
        PolicyViolationError, EcsApiError: as `Gate.deregister`.
    """
    if terminator is None:
        return await gate.deregister(request)
    snapshot = await gate.snapshot(request)
    request = await terminator.request(gate, request, snapshot)
    result = await gate.deregister(request, snapshot)
    return await terminator.finish(gate.calls, request, result)
