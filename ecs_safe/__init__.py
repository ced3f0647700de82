"""ecs-safe: take container instances out of an Amazon ECS cluster safely.

An async SDK around ECS ``DeregisterContainerInstance``: a policy check before any mutating call,
typed results and errors, retries, client-side rate limits and structured log events.
"""

from ecs_safe.audit import AuditLog
from ecs_safe.client import EcsSafeClient
from ecs_safe.errors import (
    AccessDeniedException,
    ClientException,
    ClientStateError,
    ClusterNotFoundException,
    ContainerInstanceNotFoundError,
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

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedException",
    "Attachment",
    "Attribute",
    "AuditLog",
    "BatchResult",
    "ClientException",
    "ClientStateError",
    "ClusterAllowlist",
    "ClusterNotFoundException",
    "ContainerInstance",
    "ContainerInstanceHealthStatus",
    "ContainerInstanceNotFoundError",
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
