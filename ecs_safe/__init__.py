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
    Ec2InstanceNotFoundError,
    EcsApiError,
    EcsConnectionError,
    EcsSafeError,
    InvalidInputError,
    InvalidParameterException,
    LifecycleActionNotFoundError,
    PartialDrainError,
    PolicyViolationError,
    ServerException,
    TerminationProtectedError,
    ThrottlingException,
)

if _typing.TYPE_CHECKING:
    # Lazy, unlike the errors above: they live with the listing code (aiobotocore's imports).
    from ecs_safe._aws_calls import AutoScalingGroupNotFoundError
    from ecs_safe._calls import PaginationError
    from ecs_safe.audit import AuditLog
    from ecs_safe.autoscaling import LifecycleActionResult
    from ecs_safe.budgets import DisruptionBudget, ServiceImpact
    from ecs_safe.client import EcsSafeClient
    from ecs_safe.models import (
        Attachment,
        Attribute,
        AutoScalingGroupProvider,
        AutoScalingGroupState,
        AutoScalingInstance,
        CapacityProvider,
        CapacityProviderStrategyItem,
        ContainerDefinition,
        ContainerInstance,
        ContainerInstanceHealthStatus,
        Deployment,
        DeploymentCircuitBreaker,
        DeploymentConfiguration,
        Ec2Instance,
        InstanceHealthCheckResult,
        KeyValuePair,
        LifecycleHook,
        ManagedScaling,
        PlacementConstraint,
        PortMapping,
        QueueMessage,
        Resource,
        Service,
        Tag,
        Task,
        TaskDefinition,
        TaskKind,
        VersionInfo,
    )
    from ecs_safe.notices import (
        LifecycleActionNotice,
        Notice,
        NoticeError,
        RebalanceNotice,
        SpotInterruptionNotice,
        parse_notice,
    )
    from ecs_safe.policy import (
        Caution,
        ClusterAllowlist,
        Decision,
        DisruptionBudgets,
        NoPendingTasksUnlessForced,
        NoRunningTasksUnlessForced,
        Policy,
        PolicyContext,
        ProtectStandaloneTasks,
        RequireDraining,
        RoomElsewhere,
        Rule,
        Violation,
        default_policy,
    )
    from ecs_safe.ratelimit import RateLimits
    from ecs_safe.results import BatchResult, DeregistrationResult, InstanceOutcome
    from ecs_safe.retry import RetryConfig
    from ecs_safe.steady import NotStartedError
    from ecs_safe.sync import SyncEcsSafeClient
    from ecs_safe.worker import EventOutcome, WatchSummary

# Public name -> the module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "Attachment": "ecs_safe.models",
    "Attribute": "ecs_safe.models",
    "AuditLog": "ecs_safe.audit",
    "AutoScalingGroupNotFoundError": "ecs_safe._aws_calls",
    "AutoScalingGroupProvider": "ecs_safe.models",
    "AutoScalingGroupState": "ecs_safe.models",
    "AutoScalingInstance": "ecs_safe.models",
    "BatchResult": "ecs_safe.results",
    "CapacityProvider": "ecs_safe.models",
    "CapacityProviderStrategyItem": "ecs_safe.models",
    "Caution": "ecs_safe.policy",
    "ClusterAllowlist": "ecs_safe.policy",
    "ContainerDefinition": "ecs_safe.models",
    "ContainerInstance": "ecs_safe.models",
    "ContainerInstanceHealthStatus": "ecs_safe.models",
    "Decision": "ecs_safe.policy",
    "Deployment": "ecs_safe.models",
    "DeploymentCircuitBreaker": "ecs_safe.models",
    "DeploymentConfiguration": "ecs_safe.models",
    "DeregistrationResult": "ecs_safe.results",
    "DisruptionBudget": "ecs_safe.budgets",
    "DisruptionBudgets": "ecs_safe.policy",
    "Ec2Instance": "ecs_safe.models",
    "EcsSafeClient": "ecs_safe.client",
    "EventOutcome": "ecs_safe.worker",
    "InstanceHealthCheckResult": "ecs_safe.models",
    "InstanceOutcome": "ecs_safe.results",
    "KeyValuePair": "ecs_safe.models",
    "LifecycleActionNotice": "ecs_safe.notices",
    "LifecycleActionResult": "ecs_safe.autoscaling",
    "LifecycleHook": "ecs_safe.models",
    "ManagedScaling": "ecs_safe.models",
    "NoPendingTasksUnlessForced": "ecs_safe.policy",
    "NotStartedError": "ecs_safe.steady",
    "NoRunningTasksUnlessForced": "ecs_safe.policy",
    "Notice": "ecs_safe.notices",
    "NoticeError": "ecs_safe.notices",
    "PaginationError": "ecs_safe._calls",
    "PlacementConstraint": "ecs_safe.models",
    "Policy": "ecs_safe.policy",
    "PolicyContext": "ecs_safe.policy",
    "PortMapping": "ecs_safe.models",
    "ProtectStandaloneTasks": "ecs_safe.policy",
    "QueueMessage": "ecs_safe.models",
    "RateLimits": "ecs_safe.ratelimit",
    "RebalanceNotice": "ecs_safe.notices",
    "RequireDraining": "ecs_safe.policy",
    "Resource": "ecs_safe.models",
    "RetryConfig": "ecs_safe.retry",
    "RoomElsewhere": "ecs_safe.policy",
    "Rule": "ecs_safe.policy",
    "Service": "ecs_safe.models",
    "ServiceImpact": "ecs_safe.budgets",
    "SpotInterruptionNotice": "ecs_safe.notices",
    "SyncEcsSafeClient": "ecs_safe.sync",
    "Tag": "ecs_safe.models",
    "Task": "ecs_safe.models",
    "TaskDefinition": "ecs_safe.models",
    "TaskKind": "ecs_safe.models",
    "VersionInfo": "ecs_safe.models",
    "Violation": "ecs_safe.policy",
    "WatchSummary": "ecs_safe.worker",
    "default_policy": "ecs_safe.policy",
    "parse_notice": "ecs_safe.notices",
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
    "AutoScalingGroupProvider",
    "AutoScalingGroupState",
    "AutoScalingInstance",
    "BatchResult",
    "CapacityProvider",
    "CapacityProviderStrategyItem",
    "Caution",
    "ClientException",
    "ClientStateError",
    "ClusterAllowlist",
    "ClusterNotFoundException",
    "ContainerDefinition",
    "ContainerInstance",
    "ContainerInstanceHealthStatus",
    "ContainerInstanceNotFoundError",
    "CredentialsError",
    "Decision",
    "Deployment",
    "DeploymentCircuitBreaker",
    "DeploymentConfiguration",
    "DeregistrationResult",
    "DisruptionBudget",
    "DisruptionBudgets",
    "DrainNotFoundError",
    "DrainRejectedError",
    "DrainTimeoutError",
    "Ec2Instance",
    "Ec2InstanceNotFoundError",
    "EcsApiError",
    "EcsConnectionError",
    "EcsSafeClient",
    "EcsSafeError",
    "EventOutcome",
    "InstanceHealthCheckResult",
    "InstanceOutcome",
    "InvalidInputError",
    "InvalidParameterException",
    "KeyValuePair",
    "LifecycleActionNotFoundError",
    "LifecycleActionNotice",
    "LifecycleActionResult",
    "LifecycleHook",
    "ManagedScaling",
    "NoPendingTasksUnlessForced",
    "NoRunningTasksUnlessForced",
    "NotStartedError",
    "Notice",
    "NoticeError",
    "PaginationError",
    "PartialDrainError",
    "PlacementConstraint",
    "Policy",
    "PolicyContext",
    "PolicyViolationError",
    "PortMapping",
    "ProtectStandaloneTasks",
    "QueueMessage",
    "RateLimits",
    "RebalanceNotice",
    "RequireDraining",
    "Resource",
    "RetryConfig",
    "RoomElsewhere",
    "Rule",
    "ServerException",
    "Service",
    "ServiceImpact",
    "SpotInterruptionNotice",
    "SyncEcsSafeClient",
    "Tag",
    "Task",
    "TaskDefinition",
    "TaskKind",
    "TerminationProtectedError",
    "ThrottlingException",
    "VersionInfo",
    "Violation",
    "WatchSummary",
    "__version__",
    "default_policy",
    "parse_notice",
]
