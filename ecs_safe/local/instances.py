"""Container instances where moto falls short of ECS: filtered, paged listing and tags.

- ListContainerInstances: moto ignores ``filter`` and never pages. Here the filter is parsed
  and evaluated (`ecs_safe.local.query`), ``status`` honoured, and the answer paged by
  ``maxResults`` (default and maximum 100) with an opaque ``nextToken``, as ECS does.
- Tags: moto answers TagResource, UntagResource and ListTagsForResource on a container
  instance with an HTTP 500; here they are kept per instance, and DescribeContainerInstances
  with ``include=["TAGS"]`` returns them.

The handlers run on the server's request threads and read moto's in-process backend.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any, Final

from ecs_safe.local.names import last_segment
from ecs_safe.local.query import InstanceFacts, QueryError, parse
from ecs_safe.local.traffic import Amend, EcsError, Handler

if TYPE_CHECKING:
    from moto.ecs.models import ContainerInstance, EC2ContainerServiceBackend

__all__ = ["ContainerInstanceModel", "facts_of"]

# ListContainerInstances returns at most this many ARNs a page (and this many by default).
_MAX_RESULTS: Final = 100
_STATUSES: Final = frozenset(
    {"ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"}
)
_CONTAINER_INSTANCE_ARN: Final = ":container-instance/"
_INVALID: Final = "InvalidParameterException"


def facts_of(instance: ContainerInstance) -> InstanceFacts:
    """What a filter can ask about a moto container instance."""
    return InstanceFacts(
        attributes=dict(instance.attributes),
        ec2_instance_id=instance.ec2_instance_id,
        agent_connected=bool(instance.agent_connected),
        running_tasks_count=int(instance.running_tasks_count),
        registered_at=instance.registered_at,
    )


def _encode_token(arn: str) -> str:
    return base64.urlsafe_b64encode(arn.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        arn = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        arn = ""
    # b64decode skips characters outside its alphabet, so a garbled token may decode to
    # anything: only a token this model wrote (an ARN) is accepted.
    if not arn.startswith("arn:"):
        raise EcsError(_INVALID, "Invalid nextToken.")
    return arn


class ContainerInstanceModel:
    """Listing and tags of container instances, over moto's ECS backend."""

    def __init__(
        self, backend: Callable[[], EC2ContainerServiceBackend], *, report_inactive: bool = True
    ) -> None:
        """Read moto's backend through ``backend`` (it is looked up per request).

        With ``report_inactive``, a deregistered instance is described as INACTIVE (as ECS
        does for a while) instead of moto's MISSING failure.
        """
        self._backend = backend
        self._report_inactive = report_inactive
        self._lock = threading.Lock()
        self._tags: dict[str, dict[str, str]] = {}
        # (cluster name, container instance ID) -> the description at deregistration.
        self._inactive: dict[tuple[str, str], dict[str, Any]] = {}

    def handlers(self) -> dict[str, Handler]:
        """The ECS operations this model answers or amends."""
        return {
            "ListContainerInstances": self.list_container_instances,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
            "DescribeContainerInstances": self.describe_container_instances,
            "DeregisterContainerInstance": self.deregister_container_instance,
        }

    def reset(self) -> None:
        """Forget every tag (moto's state is being cleared)."""
        with self._lock:
            self._tags.clear()
            self._inactive.clear()

    # -- ListContainerInstances ------------------------------------------------------------

    def list_container_instances(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer ListContainerInstances: ``filter``, ``status``, ``maxResults``, ``nextToken``."""
        status = request.get("status")
        if status is not None and status not in _STATUSES:
            msg = f"status must be one of {', '.join(sorted(_STATUSES))}"
            raise EcsError(_INVALID, msg)
        max_results = request.get("maxResults", _MAX_RESULTS)
        if not isinstance(max_results, int) or not 1 <= max_results <= _MAX_RESULTS:
            msg = f"maxResults must be between 1 and {_MAX_RESULTS}"
            raise EcsError(_INVALID, msg)
        text = request.get("filter")
        try:
            query = parse(text) if text else None
        except QueryError as exc:
            raise EcsError(_INVALID, f"The filter is not valid: {exc}") from None
        token = request.get("nextToken")
        after = _decode_token(token) if token else None
        backend = self._backend()
        cluster = last_segment(str(request.get("cluster") or "default"))
        if cluster not in backend.clusters:
            raise EcsError("ClusterNotFoundException", "Cluster not found.")
        instances = sorted(
            backend.container_instances.get(cluster, {}).values(),
            key=lambda i: str(i.container_instance_arn),
        )
        arns: list[str] = []
        more = False
        for instance in instances:
            arn = str(instance.container_instance_arn)
            if after is not None and arn <= after:
                continue
            if status is not None and instance.status != status:
                continue
            if query is not None and not query.matches(facts_of(instance)):
                continue
            if len(arns) == max_results:
                more = True
                break
            arns.append(arn)
        response: dict[str, Any] = {"containerInstanceArns": arns}
        if more:
            response["nextToken"] = _encode_token(arns[-1])
        return response

    # -- tags ----------------------------------------------------------------------------

    def _instance_id(self, arn: str) -> str | None:
        """The ID of the container instance ``arn`` names; None if it is another resource."""
        if _CONTAINER_INSTANCE_ARN not in arn:
            return None
        instance_id = last_segment(arn)
        backend = self._backend()
        if not any(instance_id in by_id for by_id in backend.container_instances.values()):
            raise EcsError(_INVALID, "The specified resource is not found.")
        return instance_id

    def tag_resource(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """TagResource on a container instance (other resources go to moto)."""
        instance_id = self._instance_id(str(request.get("resourceArn", "")))
        if instance_id is None:
            return None
        tags = request.get("tags") or []
        if not tags:
            raise EcsError(_INVALID, "tags can not be empty")
        with self._lock:
            kept = self._tags.setdefault(instance_id, {})
            for tag in tags:
                kept[str(tag["key"])] = str(tag.get("value", ""))
        return {}

    def untag_resource(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """UntagResource on a container instance (other resources go to moto)."""
        instance_id = self._instance_id(str(request.get("resourceArn", "")))
        if instance_id is None:
            return None
        with self._lock:
            kept = self._tags.get(instance_id, {})
            for key in request.get("tagKeys") or []:
                kept.pop(str(key), None)
        return {}

    def list_tags_for_resource(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """ListTagsForResource on a container instance (other resources go to moto)."""
        instance_id = self._instance_id(str(request.get("resourceArn", "")))
        if instance_id is None:
            return None
        return {"tags": self._tag_list(instance_id)}

    def _tag_list(self, instance_id: str) -> list[dict[str, str]]:
        with self._lock:
            kept = dict(self._tags.get(instance_id, {}))
        return [{"key": k, "value": v} for k, v in kept.items()]

    # -- DescribeContainerInstances and deregistration ----------------------------------------

    def remember_deregistered(self, cluster: str, instance: ContainerInstance) -> None:
        """Describe ``instance`` as INACTIVE from now on (it is being deregistered directly).

        For deregistrations that do not come over HTTP (a terminated instance leaves its
        cluster); DeregisterContainerInstance requests are remembered by their answer.
        """
        if not self._report_inactive:
            return
        registered_at = instance.registered_at
        if registered_at.tzinfo is None:
            registered_at = registered_at.replace(tzinfo=UTC)  # moto's naive UTC
        described: dict[str, Any] = {
            "containerInstanceArn": str(instance.container_instance_arn),
            "ec2InstanceId": str(instance.ec2_instance_id),
            "status": "INACTIVE",
            "agentConnected": False,
            "runningTasksCount": int(instance.running_tasks_count),
            "pendingTasksCount": int(instance.pending_tasks_count),
            "registeredResources": list(instance.registered_resources),
            "remainingResources": list(instance.remaining_resources),
            "attributes": [{"name": k, "value": v} for k, v in instance.attributes.items()],
            "versionInfo": dict(instance.version_info),
            "registeredAt": registered_at.timestamp(),
        }
        with self._lock:
            self._inactive[last_segment(cluster), str(instance.id)] = described

    def deregister_container_instance(self, request: dict[str, Any]) -> Amend | None:
        """DeregisterContainerInstance: moto's, remembering the instance as INACTIVE if asked."""
        if not self._report_inactive:
            return None
        cluster = last_segment(str(request.get("cluster") or "default"))

        def remember(response: dict[str, Any]) -> dict[str, Any]:
            # The answer itself stays moto's; later descriptions say INACTIVE.
            described = dict(response.get("containerInstance") or {})
            arn = str(described.get("containerInstanceArn", ""))
            if arn:
                described["status"] = "INACTIVE"
                described["agentConnected"] = False
                with self._lock:
                    self._inactive[cluster, last_segment(arn)] = described
            return response

        return remember

    def describe_container_instances(self, request: dict[str, Any]) -> Amend | None:
        """DescribeContainerInstances: moto's, plus tags (``include`` TAGS) and INACTIVE ones."""
        with_tags = "TAGS" in (request.get("include") or [])
        if not with_tags and not self._report_inactive:
            return None
        cluster = last_segment(str(request.get("cluster") or "default"))

        def amend(response: dict[str, Any]) -> dict[str, Any]:
            described = response.setdefault("containerInstances", [])
            if self._report_inactive:
                still_missing = []
                for failure in response.get("failures", []):
                    with self._lock:
                        gone = self._inactive.get((cluster, last_segment(failure.get("arn", ""))))
                    # Only moto's "no such instance" hides an INACTIVE one; any other reason
                    # is the answer.
                    if gone is None or failure.get("reason") != "MISSING":
                        still_missing.append(failure)
                    else:
                        described.append(dict(gone))
                response["failures"] = still_missing
            if with_tags:
                for instance in described:
                    arn = str(instance.get("containerInstanceArn", ""))
                    instance["tags"] = self._tag_list(last_segment(arn))
            return response

        return amend
