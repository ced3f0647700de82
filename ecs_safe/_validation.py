"""Input validation: every public argument is checked here before any network call.

Messages say what was wrong and how to fix it. Nothing here talks to the network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlsplit

from ecs_safe._constants import CONTAINER_INSTANCE_STATUSES, DEFAULT_CLUSTER
from ecs_safe.errors import InvalidInputError
from ecs_safe.models import ContainerInstance

__all__ = [
    "EC2_ID_RE",
    "ID_RE",
    "INSTANCE_ARN_RE",
    "MANAGED_ID_RE",
    "MAX_INPUT",
    "ContainerInstanceRef",
    "InstanceInput",
    "Target",
    "TargetKind",
    "arn_scope",
    "check_bool",
    "check_choice",
    "check_filter",
    "check_instance_status",
    "check_name",
    "check_positive_number",
    "classify",
    "cluster_name_of",
    "instance_id_of",
    "unique_refs",
    "validate_cluster",
    "validate_container_instance",
    "validate_container_instances",
    "validate_endpoint_url",
]

_T = TypeVar("_T", bound=str)

# The patterns of every accepted form, owned here and shared with `ecs_safe._targets` (which
# classifies the same inputs), so that validation and resolution can never disagree.
# ECS container instance IDs are 32 hex digits today and were UUIDs before; ARNs end in one of
# them. Only letters, digits and hyphens ever appear, so anything else is a typo or an injection.
# `\Z`, not `$` (which also matches before a trailing newline), and `[0-9]`, not `\d` (which
# matches any Unicode digit).
_ID = r"[A-Za-z0-9][A-Za-z0-9-]{0,63}"
#: A container instance ID (today's 32 hex digits, an older UUID, or the wider grammar).
ID_RE: Final = re.compile(rf"^{_ID}\Z")
_CLUSTER_NAME = r"[A-Za-z0-9_-]{1,255}"
_CLUSTER_NAME_RE = re.compile(rf"^{_CLUSTER_NAME}\Z")
_ARN_PREFIX = r"arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:"
#: A container instance ARN, short (``container-instance/ID``) or long (``.../CLUSTER/ID``).
INSTANCE_ARN_RE: Final = re.compile(
    rf"^{_ARN_PREFIX}container-instance/(?:(?P<cluster>{_CLUSTER_NAME})/)?(?P<id>{_ID})\Z"
)
_CLUSTER_ARN_RE = re.compile(rf"^{_ARN_PREFIX}cluster/(?P<name>{_CLUSTER_NAME})\Z")
_ANY_ARN_RE = re.compile(r"^arn:[^:]*:(?P<service>[^:]*):[^:]*:[^:]*:(?P<resource>[^/:]*)")
#: An EC2 instance ID: ``i-`` and 8 (older) or 17 lowercase hex digits.
EC2_ID_RE: Final = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})\Z")
#: An ECS Anywhere (SSM) managed instance ID: ``mi-`` and 17 lowercase hex digits.
MANAGED_ID_RE: Final = re.compile(r"^mi-[0-9a-f]{17}\Z")
#: The longest input accepted (ECS's ARN limit).
MAX_INPUT: Final = 2048
_FORMS = (
    "a container instance ID or ARN, an EC2 instance ID (i- and 8 or 17 hex digits), "
    "a managed instance ID (mi- and 17 hex digits) or a ContainerInstance"
)

#: What every method taking container instances accepts: a container instance ID or ARN, an
#: EC2 or managed instance ID (strings), or a `ContainerInstance` (by its ARN).
InstanceInput = str | ContainerInstance

#: Which form an instance input has (see `classify`).
TargetKind = Literal[
    "container_instance_id", "container_instance_arn", "ec2_instance_id", "managed_instance_id"
]


@dataclass(frozen=True, slots=True)
class Target:
    """One input, classified.

    Attributes:
        given: the input as given (for a `ContainerInstance`: its ARN).
        kind: which form it has.
        key: what identifies the instance in that form: the container instance ID (also of an
            ARN) or the EC2/managed instance ID.
        cluster_in_arn: the cluster a long-form container instance ARN names, if any.
    """

    given: str
    kind: TargetKind
    key: str
    cluster_in_arn: str | None = None

    @property
    def needs_lookup(self) -> bool:
        """Whether the container instance must be found by listing (EC2 and managed IDs)."""
        return self.kind in ("ec2_instance_id", "managed_instance_id")


def _classify_arn(value: str, argument: str) -> Target:
    match = INSTANCE_ARN_RE.match(value)
    if match is not None:
        return Target(value, "container_instance_arn", match.group("id"), match.group("cluster"))
    other = _ANY_ARN_RE.match(value)
    if other and (
        other.group("service") != "ecs" or other.group("resource") != "container-instance"
    ):
        raise InvalidInputError(
            f"{argument} {value!r} is an ARN of {other.group('service')}:"
            f"{other.group('resource') or '?'}, not of an ECS container instance "
            "(arn:aws:ecs:REGION:ACCOUNT:container-instance/[CLUSTER/]ID); "
            f"pass {_FORMS}"
        )
    raise InvalidInputError(
        f"{argument} {value!r} is not a valid container instance ARN "
        "(expected arn:aws:ecs:REGION:ACCOUNT:container-instance/[CLUSTER/]ID); "
        f"pass {_FORMS}"
    )


def classify(value: object, *, argument: str = "container_instance") -> Target:
    """Sort one instance input into its form; nothing here talks to the network.

    Raises:
        InvalidInputError: anything that is not one of the accepted forms (the message names
            them and how to fix the input), including a `ContainerInstance` without an ARN.
    """
    if isinstance(value, ContainerInstance):
        if not value.container_instance_arn:
            raise InvalidInputError(
                f"{argument} is a ContainerInstance without a container_instance_arn; pass {_FORMS}"
            )
        value = value.container_instance_arn
    if not isinstance(value, str):
        raise InvalidInputError(f"{argument} must be {_FORMS}, got {_type_name(value)}")
    if not value.strip():
        raise InvalidInputError(f"{argument} must not be empty: pass {_FORMS}")
    if len(value) > MAX_INPUT:
        raise InvalidInputError(
            f"{argument} is {len(value)} characters long; ECS IDs and ARNs are at most {MAX_INPUT}"
        )
    if value != value.strip():
        raise InvalidInputError(f"{argument} {value.strip()!r} has surrounding whitespace")
    if value.startswith("arn:"):
        return _classify_arn(value, argument)
    if EC2_ID_RE.match(value):
        return Target(value, "ec2_instance_id", value)
    if MANAGED_ID_RE.match(value):
        return Target(value, "managed_instance_id", value)
    if value.startswith(("i-", "mi-")):
        # A container instance ID never starts so: this is a mistyped EC2 or managed ID.
        raise InvalidInputError(
            f"{argument} {value!r} is neither an EC2 instance ID (i- and 8 or 17 lowercase hex "
            "digits) nor a managed instance ID (mi- and 17 lowercase hex digits)"
        )
    if not ID_RE.match(value):
        raise InvalidInputError(
            f"{argument} {value!r} is not a container instance ID: IDs hold only letters, "
            f"digits and hyphens (at most 64); pass {_FORMS}"
        )
    return Target(value, "container_instance_id", value)


class ContainerInstanceRef(str):
    """A validated container instance ID or ARN (a ``str``), with its ID and cluster parsed."""

    __slots__ = ()

    @property
    def instance_id(self) -> str:
        """The instance ID (the ARN's last path segment)."""
        return instance_id_of(self)

    @property
    def cluster_in_arn(self) -> str | None:
        """The cluster name a long-form ARN embeds, if any."""
        match = INSTANCE_ARN_RE.match(self)
        return match.group("cluster") if match else None


def _type_name(value: object) -> str:
    return type(value).__name__


def instance_id_of(ref: str) -> str:
    """The container instance ID of an ID or ARN (its last path segment)."""
    return ref.rsplit("/", 1)[-1]


def arn_scope(value: str) -> tuple[str, str] | None:
    """The (Region, account) an ARN names; ``None`` for a bare ID (or anything not an ARN)."""
    if not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    if len(parts) != 6:
        return None
    return parts[3], parts[4]


def unique_refs(refs: Iterable[str]) -> list[str]:
    """``refs`` without repeats of an instance (an ID and its ARN are one), first kept."""
    first: dict[str, str] = {}
    for ref in refs:
        first.setdefault(instance_id_of(ref), ref)
    return list(first.values())


def cluster_name_of(cluster: str | None) -> str:
    """The short name of a cluster given by name or ARN (``None`` is the ``default`` cluster)."""
    if cluster is None:
        return DEFAULT_CLUSTER
    match = _CLUSTER_ARN_RE.match(cluster)
    return match.group("name") if match else cluster


def validate_container_instance(value: Any, *, argument: str = "container_instance") -> str:
    """Check one instance input (any form `classify` accepts) and return it as a string.

    A container instance ID or ARN, an EC2 or managed instance ID is returned unchanged; a
    `ContainerInstance` as its ARN. EC2 and managed IDs still need resolving in a cluster
    (`ecs_safe._targets.resolve`) before ECS can act on them.

    Raises:
        InvalidInputError: wrong type, empty, too long, an ARN of another service or resource
            type, a mistyped EC2 or managed instance ID, or characters ECS never uses.
    """
    return ContainerInstanceRef(classify(value, argument=argument).given)


def validate_endpoint_url(value: Any) -> str | None:
    """Check an ``http(s)://host[:port]`` endpoint URL (``None`` means AWS's own endpoint)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"endpoint_url must be a non-empty str or None, got {value!r}")
    problem = None
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        problem = str(exc)
    else:
        if parts.scheme not in ("http", "https"):
            problem = "it must start with http:// or https://"
        elif not parts.hostname:
            problem = "it names no host"
        elif any(c.isspace() for c in value):
            problem = "it contains white space"
        elif port == 0:
            problem = "port 0 is not a port to connect to"
    if problem:
        # Never echo a user:password@ (nor any secret-looking text); imported here, on the error
        # path only, so that validating costs no import of botocore.
        from ecs_safe._error_mapping import redact  # noqa: PLC0415

        raise InvalidInputError(
            f"endpoint_url {redact(value)!r} is not a usable URL: {redact(problem)} "
            "(expected e.g. https://ecs.eu-west-1.amazonaws.com or http://127.0.0.1:5000)"
        )
    return value


def validate_cluster(value: Any) -> str | None:
    """Check a cluster short name or ARN (``None`` means the default cluster)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(
            f"cluster must be a cluster name or ARN (str) or None, got {_type_name(value)}"
        )
    if not value:
        raise InvalidInputError("cluster must not be empty: pass None for the default cluster")
    if value.startswith("arn:"):
        if _CLUSTER_ARN_RE.match(value):
            return value
        raise InvalidInputError(
            f"cluster {value!r} is not an ECS cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)"
        )
    if not _CLUSTER_NAME_RE.match(value):
        raise InvalidInputError(
            f"cluster {value!r} is not a valid cluster name: up to 255 letters, digits, "
            "hyphens and underscores"
        )
    return value


def check_same_cluster(instance: str, cluster: str | None) -> None:
    """Refuse a long-form instance ARN whose embedded cluster contradicts ``cluster``."""
    match = INSTANCE_ARN_RE.match(instance)
    embedded = match.group("cluster") if match else None
    if embedded is not None and embedded != cluster_name_of(cluster):
        raise InvalidInputError(
            f"container instance {instance!r} belongs to cluster {embedded!r}, but cluster="
            f"{cluster!r} was given; pass cluster={embedded!r}"
        )


def validate_container_instances(value: Any, *, cluster: str | None) -> list[str]:
    """Check a non-empty collection of instance inputs (not a bare string), as strings."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError(
            "container_instances must be a list of container instance IDs or ARNs (or EC2 "
            "instance IDs, managed instance IDs, ContainerInstance models), got "
            f"{_type_name(value)}; for one instance pass [instance]"
        )
    items = list(value)
    if not items:
        raise InvalidInputError("container_instances must not be empty")
    refs = [validate_container_instance(item, argument="container_instances[]") for item in items]
    for ref in refs:
        check_same_cluster(ref, cluster)
    return refs


def check_bool(value: Any, argument: str) -> bool:
    """Require a real ``bool``: ``force="false"`` is truthy and must never force anything."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{argument} must be True or False, got {value!r}")
    return value


def check_queue_url(value: Any, argument: str, *, optional: bool = False) -> str | None:
    """Require an SQS queue URL (``https://sqs...``; ``http://`` for a local endpoint).

    With ``optional``, ``None`` is accepted (and returned) too.
    """
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        also = " or None" if optional else ""
        raise InvalidInputError(
            f"{argument} must be an SQS queue URL (https://sqs...){also}, got {value!r}"
        )
    return value


def check_choice(value: Any, argument: str, choices: tuple[_T, ...]) -> _T:
    """Require ``value`` to be one of ``choices``."""
    for choice in choices:
        if value == choice and isinstance(value, str):
            return choice
    allowed = ", ".join(repr(c) for c in choices)
    raise InvalidInputError(f"{argument} must be one of {allowed}, got {value!r}")


def check_positive_number(
    value: Any, argument: str, *, allow_zero: bool = False, integer: bool = False
) -> float:
    """Require a finite number > 0 (or >= 0), optionally an int."""
    ok_type = int if integer else (int, float)
    kind = "an int" if integer else "a finite number"
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise InvalidInputError(f"{argument} must be {kind}, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        # An int beyond float range (and too long to print safely).
        raise InvalidInputError(f"{argument} is far too large a number") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{argument} must be {kind}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{argument} must be {bound}, got {value!r}")
    return number


def check_filter(value: Any) -> str | None:
    """A cluster query language expression: a non-empty ``str`` (ECS judges its grammar)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"filter must be a non-empty cluster query expression (str) or None, got {value!r}; "
            "e.g. 'attribute:ecs.instance-type == t3.large'"
        )
    return value


def check_instance_status(value: Any) -> str | None:
    """One of ECS's container instance statuses (ACTIVE, DRAINING, ...), or ``None``."""
    if value is None:
        return None
    return check_choice(value, "status", CONTAINER_INSTANCE_STATUSES)


def check_name(value: Any, argument: str) -> str | None:
    """A non-empty name without surrounding whitespace (an Auto Scaling group's), or ``None``."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidInputError(f"{argument} must be a non-empty name (str) or None, got {value!r}")
    return value
