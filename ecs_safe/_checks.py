"""Response checks: a 200 must hold what its operation promises.

botocore turns an empty or unparseable 200 (a proxy's page, a truncated body) into ``{}``, as if
nothing were wrong. Taken at face value, ``{}`` from ListTasks means "no tasks" and the policy
would judge an instance without the tasks on it. Each check here runs inside the request's
attempt (`ecs_safe._transport.EcsTransport.call`) and raises a retryable `ServerException`, so
such a response is retried like any other fault and never mistaken for an answer.

Names: ``expect_*`` checks a response (and `accounted` builds one such check); ``check_*``
elsewhere in the package always checks an argument, returning it or raising
`InvalidInputError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ecs_safe._transport import Response, request_id_of
from ecs_safe._validation import instance_id_of
from ecs_safe.errors import ServerException

__all__ = [
    "accounted",
    "expect_deregistered",
    "expect_stopped_task",
    "expect_task_list",
    "incomplete",
]


def incomplete(
    operation: str, response: Response, what: str, *, code: str = "IncompleteResponse"
) -> ServerException:
    """The retryable error for a 200 of ``operation`` that ``what`` (e.g. "held no task")."""
    return ServerException(
        f"the {operation} response {what}",
        code=code,
        operation=operation,
        request_id=request_id_of(response),
        http_status=200,
    )


def accounted(
    operation: str, wanted: Sequence[str], listed: str, arn_field: str
) -> Callable[[Response], None]:
    """A response check: every name or ARN in ``wanted`` is in ``listed`` or in ``failures``.

    Items are matched by the last path segment of their ARN (an ID or a name), because some
    endpoints shorten the ARNs in ``failures[]``. A 200 that neither returns nor reports a
    requested item, such as an empty ``{}``, is not an answer; taking it for "none" would let
    the policy judge an instance without its tasks.
    """

    def check(response: Response) -> None:
        # A null or non-object item is no answer about anything: the response is malformed.
        for key in (listed, "failures"):
            items = response.get(key)
            if items is not None and (
                not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items)
            ):
                raise incomplete(
                    operation,
                    response,
                    f"held a {key} item that is not an object",
                    code="MalformedResponse",
                )
        seen = {
            instance_id_of(str(item.get(arn_field) or ""))
            for item in response.get(listed) or []
            if isinstance(item, Mapping)
        }
        seen |= {
            instance_id_of(str(f.get("arn") or ""))
            for f in response.get("failures") or []
            if isinstance(f, Mapping)
        }
        lost = [w for w in wanted if instance_id_of(w) not in seen]
        if lost:
            raise incomplete(
                operation,
                response,
                f"neither returned nor reported {len(lost)} requested item(s), e.g. {lost[0]}",
            )

    return check


def expect_task_list(response: Response) -> None:
    """ListTasks must return a ``taskArns`` list (possibly empty)."""
    arns = response.get("taskArns")
    if not isinstance(arns, list):
        raise incomplete("ListTasks", response, "held no taskArns list")
    if not all(isinstance(arn, str) and arn for arn in arns):
        raise incomplete(
            "ListTasks",
            response,
            "held a taskArns item that is not an ARN",
            code="MalformedResponse",
        )
    token = response.get("nextToken")
    if token is not None and not isinstance(token, str):
        # A mangled token would be sent back as the next request's token (or break the
        # repeated-token check): a retryable malformed answer, like any other.
        raise incomplete(
            "ListTasks", response, "held a nextToken that is not a string", code="MalformedResponse"
        )


def expect_stopped_task(response: Response) -> None:
    """StopTask must return the task (StopTask may safely be sent again)."""
    if not isinstance(response.get("task"), Mapping):
        raise incomplete("StopTask", response, "held no task")


def expect_deregistered(response: Response) -> None:
    """DeregisterContainerInstance must return the instance.

    The call may well have worked: the retryable error sends the transport to its verifying
    describe rather than straight to a second attempt.
    """
    if not isinstance(response.get("containerInstance"), Mapping):
        raise incomplete(
            "DeregisterContainerInstance",
            response,
            "held no containerInstance",
            code="MalformedResponse",
        )
