"""What ecs-safe operations return: `DeregistrationResult`, `BatchResult`, `InstanceOutcome`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ecs_safe import _html
from ecs_safe._constants import TerminationMethod
from ecs_safe.errors import EcsSafeError
from ecs_safe.models import ContainerInstance, Task
from ecs_safe.policy import Decision

__all__ = ["BatchResult", "DeregistrationResult", "InstanceOutcome", "OutcomeStatus", "PollStats"]

#: What happened to one instance of a batch.
OutcomeStatus = Literal["deregistered", "would_deregister", "refused", "failed"]


class DeregistrationResult(BaseModel):
    """The outcome of one allowed deregistration (or of a dry run that would be allowed)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    container_instance: ContainerInstance = Field(
        description="The model DeregisterContainerInstance returned; in a dry run, the "
        "pre-flight snapshot."
    )
    decision: Decision = Field(description="The policy decision the call was made under.")
    forced: bool = Field(description="Whether the deregistration used force.")
    dry_run: bool = Field(description="True when nothing was changed (a dry run).")
    request_id: str | None = Field(
        default=None, description="The AWS request ID of the deregistration call, if any."
    )
    tasks: list[Task] = Field(
        default_factory=list,
        description="The tasks seen at decision time (empty when no rule needed them).",
    )
    verified: bool = Field(
        default=False,
        description="True when the response was lost and a describe proved the instance gone.",
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What the run found worth saying beside the decision: who else was "
        "draining the instance (another drainer, ECS managed draining, Spot, a termination "
        "lifecycle hook).",
    )
    terminated: bool = Field(
        default=False,
        description="True when the EC2 instance was terminated (``terminate=True``), which "
        "happens only after a describe proved the deregistration.",
    )
    termination: TerminationMethod | None = Field(
        default=None,
        description="How the EC2 instance was (in a dry run: would be) terminated: "
        '"auto-scaling" (TerminateInstanceInAutoScalingGroup) or "ec2" (TerminateInstances); '
        "None when no termination was asked.",
    )
    auto_scaling_group: str | None = Field(
        default=None,
        description="The Auto Scaling group of the terminated instance (``termination`` "
        '"auto-scaling").',
    )
    decrement_desired_capacity: bool = Field(
        default=False,
        description="With auto-scaling termination: whether the group's desired capacity "
        "was (would be) lowered by one, so that no replacement is launched.",
    )
    termination_verified: bool = Field(
        default=False,
        description="True when the termination's response was lost and a read proved it done.",
    )

    def _repr_html_(self) -> str:
        """Jupyter's rich display: what happened, and to which instance."""
        return _html.deregistration_result(self)


class InstanceOutcome(BaseModel):
    """What happened to one instance of a `deregister_many` batch."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    container_instance: str = Field(description="The ID or ARN, exactly as given.")
    status: OutcomeStatus = Field(
        description='"deregistered", "would_deregister" (dry run), "refused" or "failed".'
    )
    result: DeregistrationResult | None = Field(
        default=None,
        description="The result, for deregistered and would_deregister; also for a failed "
        "outcome whose instance WAS deregistered but whose termination failed "
        "(``error`` is then a `TerminationError`).",
    )
    error: EcsSafeError | None = Field(
        default=None,
        description="The error, for refused (a PolicyViolationError) and failed outcomes.",
    )

    def _repr_html_(self) -> str:
        """Jupyter's rich display: a refusal's blockers and tasks, else the outcome in a row."""
        return _html.instance_outcome(self)


class BatchResult(BaseModel):
    """The outcomes of a `deregister_many` run, one per instance, in input order."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    outcomes: list[InstanceOutcome] = Field(description="One outcome per instance, in input order.")

    @property
    def succeeded(self) -> list[InstanceOutcome]:
        """Outcomes that deregistered (or would, in a dry run)."""
        return [o for o in self.outcomes if o.status in ("deregistered", "would_deregister")]

    @property
    def refused(self) -> list[InstanceOutcome]:
        """Outcomes the policy refused."""
        return [o for o in self.outcomes if o.status == "refused"]

    @property
    def failed(self) -> list[InstanceOutcome]:
        """Outcomes that failed with an error other than a refusal."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when nothing was refused and nothing failed."""
        return not self.refused and not self.failed

    def _repr_html_(self) -> str:
        """Jupyter's rich display: one row per instance, in input order, under a summary."""
        return _html.batch_result(self)


class PollStats(BaseModel):
    """What a client's drain poller has spent so far (`EcsSafeClient.poll_stats`).

    Every drain of a client is looked at in the rounds of its one poller; these counters
    say what the waits cost, for a dashboard or a benchmark (they never reset while the
    client is open).
    """

    model_config = ConfigDict(frozen=True)

    rounds: int = Field(description="Poll rounds run (each looks at every draining instance).")
    reads: int = Field(description="ECS read requests the rounds made.")
    looks: int = Field(description="Instances looked at, summed over the rounds.")

    @property
    def reads_per_look(self) -> float:
        """Reads per instance per round: what looking at one draining instance costs."""
        return self.reads / self.looks if self.looks else 0.0
