"""Names and ARNs: what ECS's identifiers have in common."""

from __future__ import annotations


def last_segment(name_or_arn: str) -> str:
    """The name or ID in a name or ARN: names and IDs are the last path segment of ARNs."""
    return name_or_arn.rsplit("/", 1)[-1]
