"""ecs-safe: take container instances out of an Amazon ECS cluster safely.

An async SDK around ECS ``DeregisterContainerInstance``: a policy check before any mutating call,
typed results and errors, retries, client-side rate limits and structured log events.

Only the error classes are imported with the package; every other public name is loaded on
first use (PEP 562), so that ``import ecs_safe`` (and the CLI's ``--help``) does not pay for
aiobotocore, aiohttp and pydantic before they are needed. ``from ecs_safe import X`` and
``ecs_safe.X`` work as usual.
"""

import importlib as _importlib
import typing as _typing

from ecs_safe.errors import (
    AccessDeniedException,
    ClientException,
    ClientStateError,
    ClusterNotFoundException,
    ContainerInstanceNotFoundError,
    CredentialsError,
    DrainNotFoundError,
    DrainRejectedError,
    DrainTimeoutError,
    EcsApiError,
    EcsConnectionError,
    EcsSafeError,
    InvalidInputError,
    InvalidParameterException,
    PartialDrainError,
    PolicyViolationError,
    ServerException,
    ThrottlingException,
)

if _typing.TYPE_CHECKING:
    # Lazy, unlike the errors above: they live with the listing code (aiobotocore's imports).
    from ecs_safe._calls import PaginationError
    from ecs_safe._targets import AutoScalingGroupNotFoundError
    from ecs_safe.audit import AuditLog
    from ecs_safe.client import EcsSafeClient
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
        TaskKind,
        VersionInfo,
    )
    from ecs_safe.policy import (
        ClusterAllowlist,
        Decision,
        NoPendingTasksUnlessForced,
        NoRunningTasksUnlessForced,
        Policy,
        PolicyContext,
        ProtectStandaloneTasks,
        RequireDraining,
        Rule,
        Violation,
        default_policy,
    )
    from ecs_safe.ratelimit import RateLimits
    from ecs_safe.results import BatchResult, DeregistrationResult, InstanceOutcome
    from ecs_safe.retry import RetryConfig
    from ecs_safe.sync import SyncEcsSafeClient

# Public name -> the module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "Attachment": "ecs_safe.models",
    "Attribute": "ecs_safe.models",
    "AuditLog": "ecs_safe.audit",
    "AutoScalingGroupNotFoundError": "ecs_safe._targets",
    "BatchResult": "ecs_safe.results",
    "ClusterAllowlist": "ecs_safe.policy",
    "ContainerInstance": "ecs_safe.models",
    "ContainerInstanceHealthStatus": "ecs_safe.models",
    "Decision": "ecs_safe.policy",
    "DeregistrationResult": "ecs_safe.results",
    "EcsSafeClient": "ecs_safe.client",
    "InstanceHealthCheckResult": "ecs_safe.models",
    "InstanceOutcome": "ecs_safe.results",
    "KeyValuePair": "ecs_safe.models",
    "NoPendingTasksUnlessForced": "ecs_safe.policy",
    "NoRunningTasksUnlessForced": "ecs_safe.policy",
    "PaginationError": "ecs_safe._calls",
    "Policy": "ecs_safe.policy",
    "PolicyContext": "ecs_safe.policy",
    "ProtectStandaloneTasks": "ecs_safe.policy",
    "RateLimits": "ecs_safe.ratelimit",
    "RequireDraining": "ecs_safe.policy",
    "Resource": "ecs_safe.models",
    "RetryConfig": "ecs_safe.retry",
    "Rule": "ecs_safe.policy",
    "SyncEcsSafeClient": "ecs_safe.sync",
    "Tag": "ecs_safe.models",
    "Task": "ecs_safe.models",
    "TaskKind": "ecs_safe.models",
    "VersionInfo": "ecs_safe.models",
    "Violation": "ecs_safe.policy",
    "default_policy": "ecs_safe.policy",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ecs_safe' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "AccessDeniedException",
    "Attachment",
    "Attribute",
    "AuditLog",
    "AutoScalingGroupNotFoundError",
    "BatchResult",
    "ClientException",
    "ClientStateError",
    "ClusterAllowlist",
    "ClusterNotFoundException",
    "ContainerInstance",
    "ContainerInstanceHealthStatus",
    "ContainerInstanceNotFoundError",
    "CredentialsError",
    "Decision",
    "DeregistrationResult",
    "DrainNotFoundError",
    "DrainRejectedError",
    "DrainTimeoutError",
    "EcsApiError",
    "EcsConnectionError",
    "EcsSafeClient",
    "EcsSafeError",
    "InstanceHealthCheckResult",
    "InstanceOutcome",
    "InvalidInputError",
    "InvalidParameterException",
    "KeyValuePair",
    "NoPendingTasksUnlessForced",
    "NoRunningTasksUnlessForced",
    "PaginationError",
    "PartialDrainError",
    "Policy",
    "PolicyContext",
    "PolicyViolationError",
    "ProtectStandaloneTasks",
    "RateLimits",
    "RequireDraining",
    "Resource",
    "RetryConfig",
    "Rule",
    "ServerException",
    "SyncEcsSafeClient",
    "Tag",
    "Task",
    "TaskKind",
    "ThrottlingException",
    "VersionInfo",
    "Violation",
    "__version__",
    "default_policy",
]
