"""Every exception ecs-safe raises.

The whole tree, so that a reader sees it at once::

    EcsSafeError
    ├── InvalidInputError (also a ValueError)  bad arguments; raised before any network call
    ├── ClientStateError (also a RuntimeError) the client was used before opening or after closing
    ├── PolicyViolationError                   refused by the policy, before any mutating call
    ├── DrainTimeoutError                      the drain did not finish before its deadline
    ├── PartialDrainError                      .drained, .failures: some instances not set DRAINING
    └── EcsApiError                            the ECS API (or the way to it) failed
        ├── ServerException                    (retryable)
        ├── ClientException
        │   ├── ContainerInstanceNotFoundError
        │   │   └── DrainNotFoundError         (also a PartialDrainError)
        │   ├── DrainRejectedError             (also a PartialDrainError)
        │   ├── Ec2InstanceNotFoundError       EC2 knows no such instance
        │   └── TerminationProtectedError      EC2 refused: the instance has termination protection
        ├── InvalidParameterException
        │   └── LifecycleActionNotFoundError   Auto Scaling has no such lifecycle action waiting
        ├── ClusterNotFoundException
        ├── AccessDeniedException
        │   └── CredentialsError               bad, expired or missing credentials (not retried)
        ├── ThrottlingException                (retryable)
        └── EcsConnectionError                 connection failures and timeouts (retryable)

botocore and aiohttp errors become these in exactly one place, `ecs_safe._error_mapping`, which
keeps the original exception as ``__cause__``. Messages never carry credentials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ecs_safe.models import ContainerInstance, Task
    from ecs_safe.policy import Decision

__all__ = [
    "AccessDeniedException",
    "ClientException",
    "ClientStateError",
    "ClusterNotFoundException",
    "ContainerInstanceNotFoundError",
    "CredentialsError",
    "DrainNotFoundError",
    "DrainRejectedError",
    "DrainTimeoutError",
    "Ec2InstanceNotFoundError",
    "EcsApiError",
    "EcsConnectionError",
    "EcsSafeError",
    "InvalidInputError",
    "InvalidParameterException",
    "LifecycleActionNotFoundError",
    "PartialDrainError",
    "PolicyViolationError",
    "ServerException",
    "TerminationProtectedError",
    "ThrottlingException",
]


class EcsSafeError(Exception):
    """Base class of every error ecs-safe raises; catch this to catch them all."""

    #: A short machine-readable name of what went wrong (the AWS code for API errors).
    code: str = "EcsSafeError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInputError(EcsSafeError, ValueError):
    """An argument is malformed; raised before any network call, with the fix in the message."""

    code = "InvalidInput"


class ClientStateError(EcsSafeError, RuntimeError):
    """The client was used before ``async with`` opened it, or after it was closed."""

    code = "ClientState"


class PolicyViolationError(EcsSafeError):
    """The policy refused the operation; raised before any mutating call.

    Attributes:
        decision: the refusing `Decision`, with every violation.
        container_instance: the pre-flight `ContainerInstance` snapshot the decision was made on
            (``None`` only for a refusal made before any describe, e.g. of a fleet input). A
            pre-flight that could not be done is not a refusal: it raises its `EcsApiError`.
        tasks: the tasks seen at decision time (empty when no rule needed them).
    """

    code = "PolicyViolation"

    def __init__(
        self,
        message: str,
        *,
        decision: Decision,
        container_instance: ContainerInstance | None,
        tasks: Sequence[Task] = (),
    ) -> None:
        super().__init__(message)
        self.decision = decision
        self.container_instance = container_instance
        self.tasks = list(tasks)

    def _repr_html_(self) -> str:
        """Jupyter's rich display: every blocker (rule and message), the instance, its tasks."""
        from ecs_safe import _html  # noqa: PLC0415  # _html imports this module: a cycle at the top

        return _html.policy_violation(self)


class DrainTimeoutError(EcsSafeError):
    """A drain did not empty the instance before its deadline.

    Attributes:
        container_instance: the `ContainerInstance` as described at the deadline.
        remaining_tasks: the tasks (not STOPPED) still on it.
    """

    code = "DrainTimeout"

    def __init__(
        self,
        message: str,
        *,
        container_instance: ContainerInstance,
        remaining_tasks: Sequence[Task],
    ) -> None:
        super().__init__(message)
        self.container_instance = container_instance
        self.remaining_tasks = list(remaining_tasks)


class EcsApiError(EcsSafeError):
    """A call to the ECS API failed.

    Attributes:
        code: the AWS error code (``"ServerException"``, ...), or the HTTP status where none came.
        message: the service's message.
        operation: the API operation, e.g. ``"DeregisterContainerInstance"``.
        request_id: the AWS request ID, when the service sent one.
        http_status: the HTTP status code, when a response arrived.
        retryable: whether ecs-safe retries this error.
    """

    #: Whether errors of this class are retried.
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        operation: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or type(self).__name__
        self.operation = operation
        self.request_id = request_id
        self.http_status = http_status
        self.retryable = self.default_retryable if retryable is None else retryable

    def __str__(self) -> str:
        where = f" during {self.operation}" if self.operation else ""
        rid = f" (request ID {self.request_id})" if self.request_id else ""
        return f"{self.code}{where}: {self.message}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"operation={self.operation!r}, request_id={self.request_id!r}, "
            f"http_status={self.http_status!r}, retryable={self.retryable!r})"
        )


class ServerException(EcsApiError):
    """A server-side fault (AWS ``ServerException``, or an HTTP 5xx without AWS code); retried."""

    default_retryable = True


class ClientException(EcsApiError):
    """The request was refused because of something about the caller or the resource."""


class ContainerInstanceNotFoundError(ClientException):
    """Container instances that the service reports missing.

    Attributes:
        container_instances: the IDs or ARNs (as given) that were not found.
    """

    def __init__(
        self,
        message: str,
        *,
        container_instances: Sequence[str],
        code: str | None = "ContainerInstanceNotFound",
        operation: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(
            message,
            code=code,
            operation=operation,
            request_id=request_id,
            http_status=http_status,
        )
        self.container_instances = list(container_instances)


class InvalidParameterException(EcsApiError):
    """ECS rejected a parameter (also its refusal of an unforced deregistration with tasks)."""


class Ec2InstanceNotFoundError(ClientException):
    """EC2 knows no instance of that ID (``InvalidInstanceID.NotFound``) in this Region."""


class TerminationProtectedError(ClientException):
    """EC2 refused to terminate an instance whose ``disableApiTermination`` is set.

    EC2 answers ``OperationNotPermitted``; ecs-safe does not lift the protection: that is the
    owner's decision (``aws ec2 modify-instance-attribute --no-disable-api-termination``).
    """


class LifecycleActionNotFoundError(InvalidParameterException):
    """Auto Scaling has no lifecycle action waiting for that instance and hook.

    It was completed already, timed out (the hook's default result applied), or never began
    (the token or instance is wrong). Auto Scaling answers ``ValidationError`` "No active
    Lifecycle Action found". After a CompleteLifecycleAction whose response was lost, ecs-safe
    checks the instance instead of raising this (`docs/reliability.md`).
    """


class ClusterNotFoundException(EcsApiError):
    """The named cluster does not exist in this account and Region."""


class AccessDeniedException(EcsApiError):
    """The credentials in use are not allowed to make this call."""


class ThrottlingException(EcsApiError):
    """ECS throttled the request ("Rate exceeded", or an HTTP 429); retried."""

    default_retryable = True


class EcsConnectionError(EcsApiError):
    """The endpoint could not be reached or did not answer in time; retried."""

    default_retryable = True


class PartialDrainError(EcsSafeError):
    """`EcsSafeClient.drain` could not set every instance DRAINING; ECS said why in ``failures[]``.

    The instances that were set DRAINING stay DRAINING: draining only stops new placements and
    moves service tasks, and undoing it would be another mutating call that may fail in turn.
    The error says what happened to every instance instead. The raised class is
    `DrainNotFoundError` (also a `ContainerInstanceNotFoundError`) when some instances are
    missing, `DrainRejectedError` (a `ClientException`) for any other reason.

    Attributes:
        drained: the instances that are DRAINING now, as ECS returned them, in input order.
        failures: every instance (as given) that was not changed, with ECS's reason.

    Args:
        message: what happened, naming the instances.
        drained: see ``drained``.
        failures: see ``failures``.
        **kwargs: passed on to the other base class (`EcsApiError`'s keywords for the
            subclasses).
    """

    def __init__(
        self,
        message: str,
        *,
        drained: Sequence[ContainerInstance] = (),
        failures: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.drained: list[ContainerInstance] = list(drained)
        self.failures: dict[str, str] = dict(failures or {})


class DrainNotFoundError(PartialDrainError, ContainerInstanceNotFoundError):
    """Some instances to drain are not in the cluster (``MISSING``, or ``INACTIVE``).

    ``container_instances`` names them; ``drained`` lists the ones set DRAINING anyway.
    """


class DrainRejectedError(PartialDrainError, ClientException):
    """ECS refused to change some instances for a reason other than missing (it is ``code``)."""


class CredentialsError(AccessDeniedException):
    """The AWS credentials are missing, expired, malformed or signed wrong; never retried.

    Raised for ``ExpiredToken``, ``ExpiredTokenException``, ``RequestExpired``,
    ``InvalidClientTokenId``, ``SignatureDoesNotMatch``, ``UnrecognizedClientException``,
    ``AuthFailure`` and their kin, and when botocore finds no credentials (or cannot load
    them). Retrying cannot help: refresh the credentials (a new session token, ``aws sso
    login``) or fix them (``profile_name=``/``session=``, the standard credential chain).
    A subclass of `AccessDeniedException`, so code that caught that catches this too.
    """
