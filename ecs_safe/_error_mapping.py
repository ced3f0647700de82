"""The one place where botocore, aiohttp and socket errors become ecs-safe errors.

Everything that talks to the network goes through `map_errors`, so the choice of class, the
``retryable`` flag and the redaction of anything secret-looking happen here and nowhere else.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final

import aiohttp
import botocore.exceptions as bce
from botocore.parsers import ResponseParserError

from ecs_safe.errors import (
    AccessDeniedException,
    ClientException,
    ClusterNotFoundException,
    CredentialsError,
    Ec2InstanceNotFoundError,
    EcsApiError,
    EcsConnectionError,
    EcsSafeError,
    InvalidInputError,
    InvalidParameterException,
    LifecycleActionNotFoundError,
    ServerException,
    TerminationProtectedError,
    ThrottlingException,
)

__all__ = ["SERVICE_CODES", "api_error_from_exception", "map_errors", "redact"]

# botocore's standard retry mode (botocore.retries.standard and botocore/data/_retry.json) is the
# reference for what is transient; tests/test_error_mapping.py compares these with botocore's
# own lists, so that a drift in botocore is caught. Deliberate differences: docs/retries.md.
#: Codes botocore's standard mode treats as throttling: retried, as `ThrottlingException`.
THROTTLING_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
#: Codes botocore's standard mode treats as transient (not throttling): a `ServerException`.
TRANSIENT_CODES: Final = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
#: HTTP statuses that are transient without an AWS code (not 501 Not Implemented, not 505).
TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})
#: Codes that say the credentials are wrong, expired or unsigned: a `CredentialsError`.
CREDENTIALS_CODES: Final = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "AuthFailure",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "InvalidAccessKeyId",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)

# AWS codes, ECS's own and the generic ones every AWS JSON service may return.
_CODE_TO_CLASS: Mapping[str, type[EcsApiError]] = {
    "ServerException": ServerException,
    "InternalFailure": ServerException,
    "ServiceUnavailable": ServerException,
    "ServiceUnavailableException": ServerException,
    "ClientException": ClientException,
    "InvalidParameterException": InvalidParameterException,
    "ValidationException": InvalidParameterException,
    "ClusterNotFoundException": ClusterNotFoundException,
    "AccessDeniedException": AccessDeniedException,
    "AccessDenied": AccessDeniedException,
    "UnauthorizedOperation": AccessDeniedException,
    **dict.fromkeys(TRANSIENT_CODES, ServerException),
    **dict.fromkeys(THROTTLING_CODES, ThrottlingException),
    **dict.fromkeys(CREDENTIALS_CODES, CredentialsError),
}
#: What a code means depends on the service that sent it: each service's own codes, looked up
#: before the generic ones above. Throttles need no entry: Auto Scaling's ``Throttling``, EC2's
#: ``RequestLimitExceeded`` (HTTP 503) and SQS's ``RequestThrottled`` (HTTP 403) are in botocore's
#: throttling list, so every service's throttle is a `ThrottlingException` and slows that
#: service's bucket (`ecs_safe.ratelimit`, AIMD).
SERVICE_CODES: Final[Mapping[str, Mapping[str, type[EcsApiError]]]] = {
    "autoscaling": {
        # Auto Scaling answers bad parameters and wrong states alike with ValidationError
        # (an unknown group, an instance not in the group, no lifecycle action waiting).
        "ValidationError": InvalidParameterException,
        # Another scaling activity or update of the group is in progress: it ends by itself.
        "ScalingActivityInProgress": ServerException,
        "ResourceContention": ServerException,
        "ResourceInUse": ClientException,
        "AlreadyExists": ClientException,
        "LimitExceeded": ClientException,  # a quota (groups, hooks), not a rate
        "ServiceLinkedRoleFailure": AccessDeniedException,
    },
    "ec2": {
        "InvalidInstanceID.NotFound": Ec2InstanceNotFoundError,
        "InvalidInstanceID.Malformed": InvalidParameterException,
        "InvalidParameterValue": InvalidParameterException,
        "InvalidParameterCombination": InvalidParameterException,
        "MissingParameter": InvalidParameterException,
        "IncorrectInstanceState": ClientException,
        "OperationNotPermitted": ClientException,  # TerminateInstances: see `_refined`
        "InternalError": ServerException,
        "Unavailable": ServerException,
    },
    "sqs": {
        "AWS.SimpleQueueService.NonExistentQueue": ClientException,
        "QueueDoesNotExist": ClientException,
        "ReceiptHandleIsInvalid": InvalidParameterException,
        "InvalidParameterValue": InvalidParameterException,
        "InvalidAddress": InvalidParameterException,
        "AWS.SimpleQueueService.InternalError": ServerException,
        "InternalError": ServerException,
    },
}
# Auto Scaling's ValidationError for a lifecycle action that is not (or no longer) waiting.
_NO_LIFECYCLE_ACTION = re.compile(r"(?i)no active lifecycle action")


def _refined(
    cls: type[EcsApiError] | None, code: str, message: str, operation: str
) -> type[EcsApiError] | None:
    """A more specific class for a code whose meaning depends on the operation or message."""
    if cls is InvalidParameterException and _NO_LIFECYCLE_ACTION.search(message):
        return LifecycleActionNotFoundError
    if code == "OperationNotPermitted" and operation == "TerminateInstances":
        # EC2's answer to terminating an instance with disableApiTermination set.
        return TerminationProtectedError
    return cls


_CREDENTIALS_ADVICE = (
    "the AWS credentials were refused or have expired: refresh them (a new session token, "
    "`aws sso login`) or fix them (profile_name=/session=, or the standard AWS credential chain); "
    "ecs-safe does not retry this"
)
# botocore's failures to find or load credentials, before any request is signed.
_CREDENTIALS_EXCEPTIONS = (
    bce.NoCredentialsError,
    bce.PartialCredentialsError,
    bce.CredentialRetrievalError,
    bce.TokenRetrievalError,
    bce.SSOError,
    bce.RefreshWithMFAUnsupportedError,
    bce.NoAuthTokenError,
)

# Anything that looks like `secret=...`, `token: ...` or a SigV4 signature is cut out of
# messages before they reach an exception or a log event. AWS never echoes a secret key, but a
# proxy's error page or a credential provider's message might. The session token travels in
# every request (X-Amz-Security-Token), so a gateway that echoes the request can send it back
# in free text ("the security token IQoJb3Jp... is invalid"), and encoded: URL-encoded (%2B,
# %2F, %3D), in the URL-safe alphabet (- and _), re-encoded in base64, or wrapped into lines (76
# columns for MIME, 64 for PEM). STS tokens are hundreds of characters, a run no ECS message
# has: any such run is cut, and so is a column of shorter base64 lines that adds up to one.
_B64_CHAR = r"(?:[A-Za-z0-9+/_-]|%[0-9A-Fa-f]{2})"
_LONG_RUN = 100
_SECRET_PATTERNS = (
    # A URL's user:password@ (an endpoint URL with credentials in it) is never shown.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)(?!\*\*\*@)[^/@\s]+(?=@)"),
    re.compile(
        # The optional quote after the key catches JSON and dict reprs: {"SessionToken": "..."}.
        r"(?i)((?:secret|token|signature|password|credential)[A-Za-z_-]*[\"']?\s*[=:]\s*)"
        # Never a value already redacted, so that redacting twice changes nothing.
        r"(?!\*\*\*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
    ),
    re.compile(r"(?i)(X-Amz-Security-Token=|X-Amz-Signature=)(?!\*\*\*)[^\s&]+"),
    re.compile(r"(?i)(Bearer\s+)(?!\*\*\*)[^\s,;&\"']+"),
    re.compile(rf"()(?<![A-Za-z0-9+/=%_-]){_B64_CHAR}{{{_LONG_RUN},}}(?:=|%3[Dd]){{0,2}}"),
)
# Lines of 16+ base64 characters one after the other (separated by line breaks, spaces, or the
# escaped "\n" of a JSON string): cut when together they are as long as a token. A last line
# shorter than 16 stays (it cannot be told from the next word, and is too short to be of use).
_WRAPPED = re.compile(
    rf"(?<![A-Za-z0-9+/=%_-])(?:{_B64_CHAR}{{16,}}=*(?:\s+|\\[rn])+)+{_B64_CHAR}{{16,}}=*"
)


def _cut_wrapped(match: re.Match[str]) -> str:
    text = match.group(0)
    letters = sum(1 for c in text if not c.isspace())
    return "***" if letters >= _LONG_RUN else text


_MAX_MESSAGE = 500


def _scrub(text: str) -> str:
    text = _WRAPPED.sub(_cut_wrapped, text)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


def redact(text: str) -> str:
    """Return ``text`` with secret-looking values replaced by ``***`` and its length bounded."""
    text = " ".join(_scrub(text).split())
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "…"
    return text


def _from_client_error(exc: bce.ClientError, operation: str, service: str) -> EcsApiError:
    response: Mapping[str, Any] = exc.response or {}
    error: Mapping[str, Any] = response.get("Error") or {}
    meta: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    raw_status = meta.get("HTTPStatusCode")
    status = raw_status if isinstance(raw_status, int) else None
    code = str(error.get("Code") or "")
    message = redact(str(error.get("Message") or "") or "no message in the response")
    request_id = meta.get("RequestId") or None

    own = SERVICE_CODES.get(service, {})
    cls = _refined(own.get(code) or _CODE_TO_CLASS.get(code), code, message, operation)
    if cls is CredentialsError:
        message = f"{message} ({_CREDENTIALS_ADVICE})"
    # botocore reports an HTML error page (proxy, load balancer) with the status as the code.
    has_aws_code = bool(code) and not code.isdigit()
    retryable: bool | None = None
    if cls is None:
        if not has_aws_code and status in TRANSIENT_STATUSES:
            cls = ServerException
        elif not has_aws_code and status == 429:
            cls = ThrottlingException
        else:
            cls = EcsApiError
            # An unknown code on a transient 5xx is still a server fault: worth another attempt
            # (not on 501 Not Implemented or 505, which say the same every time).
            retryable = status in TRANSIENT_STATUSES
    return cls(
        message,
        code=code or (str(status) if status else None),
        operation=operation,
        request_id=str(request_id) if request_id else None,
        http_status=status,
        retryable=retryable,
    )


#: The code of the error for a response nobody could read (see `_malformed`).
MALFORMED_RESPONSE = "MalformedResponse"
# Raised whatever the origin: a response parser's own error, a body that is not UTF-8, JSON
# nested too deep for the decoder. None of these can come from a caller's argument.
_ALWAYS_MALFORMED = (ResponseParserError, UnicodeError, RecursionError)
# Raised by botocore's parsers on a body of the wrong shape (``[1]`` where an object belongs:
# ``body.get`` fails), but just as well by a bug in the code inside ``map_errors``: mapped
# only when raised in the code that reads the response.
_SHAPE_ERRORS = (ValueError, TypeError, AttributeError, LookupError)
_WIRE_MODULES = ("botocore.", "aiobotocore.", "json.", "codecs")


def _deterministic(exc: bce.HTTPClientError) -> bool:
    """Whether the HTTP layer refused to build the request (the same every time).

    aiohttp raises a plain ``ValueError`` for a URL it will not send (credentials in the URL
    next to a signed Authorization header, an invalid URL); aiobotocore wraps it. A network
    failure is an ``OSError`` or an aiohttp ``ClientError`` other than ``InvalidURL``.
    """
    error = getattr(exc, "kwargs", {}).get("error")
    if isinstance(error, aiohttp.InvalidURL):
        return True
    return isinstance(error, ValueError) and not isinstance(error, aiohttp.ClientError | OSError)


def _raised_reading_response(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside botocore, aiobotocore or the decoders they call."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(_WIRE_MODULES):
            return True
        tb = tb.tb_next
    return False


def _malformed(exc: BaseException, operation: str) -> EcsApiError:
    """The retryable error for a response that could not be read.

    Retryable, and of unknown HTTP status, so that the transport treats it as a lost response:
    a call that may have acted is verified before it is sent again.
    """
    return ServerException(
        f"the {operation} response could not be read ({type(exc).__name__}: "
        f"{redact(str(exc))[:200] or 'no detail'})",
        code=MALFORMED_RESPONSE,
        operation=operation,
    )


def api_error_from_exception(
    exc: BaseException, operation: str, service: str = "ecs"
) -> EcsSafeError | None:
    """Translate one lower-level exception into ours, or return ``None`` if it is not ours to map.

    Args:
        exc: what botocore, aiohttp or the socket layer raised.
        operation: the operation being called, e.g. ``"DescribeTasks"``.
        service: the service it was sent to, as botocore names it (``"ecs"``,
            ``"autoscaling"``, ``"ec2"``, ``"sqs"``): picks its own codes (`SERVICE_CODES`).
    """
    if isinstance(exc, EcsSafeError):
        return exc
    if isinstance(exc, bce.ClientError):
        return _from_client_error(exc, operation, service)
    if isinstance(exc, bce.ParamValidationError):
        return InvalidInputError(f"{operation}: {redact(str(exc))}")
    if isinstance(exc, bce.SSLError):
        # A certificate problem does not heal by itself; retrying only delays the bad news.
        return EcsConnectionError(
            redact(str(exc)), code="SSLError", operation=operation, retryable=False
        )
    if isinstance(exc, bce.HTTPClientError) and _deterministic(exc):
        return EcsConnectionError(
            "the request could not be built for this endpoint URL "
            f"({redact(str(exc))}); credentials in an endpoint URL are "
            "not supported: remove the user:password@ part",
            code="InvalidEndpoint",
            operation=operation,
            retryable=False,
        )
    if isinstance(
        exc,
        bce.ConnectionError | bce.HTTPClientError | aiohttp.ClientError | asyncio.TimeoutError,
    ):
        return EcsConnectionError(
            redact(str(exc)) or type(exc).__name__,
            code=type(exc).__name__,
            operation=operation,
        )
    if isinstance(exc, _CREDENTIALS_EXCEPTIONS):
        found = "no AWS credentials found" if isinstance(exc, bce.NoCredentialsError) else None
        return CredentialsError(
            f"{found or redact(str(exc))}: configure the standard AWS credential chain "
            "(environment, ~/.aws, SSO, instance role) or pass profile_name=/session=; "
            "refresh expired ones",
            code=type(exc).__name__,
            operation=operation,
        )
    if isinstance(exc, bce.BotoCoreError):
        return EcsApiError(redact(str(exc)), code=type(exc).__name__, operation=operation)
    if isinstance(exc, OSError):
        return EcsConnectionError(
            redact(str(exc)) or type(exc).__name__, code=type(exc).__name__, operation=operation
        )
    if isinstance(exc, _ALWAYS_MALFORMED) or (
        isinstance(exc, _SHAPE_ERRORS) and _raised_reading_response(exc)
    ):
        return _malformed(exc, operation)
    return None


class RedactedCause(Exception):
    """Stands in as ``__cause__`` for an original whose message could not be redacted."""


def _redact_chain(exc: BaseException) -> bool:
    """Redact secret-looking text in ``exc`` and its cause chain, in place.

    Exceptions whose text comes from their ``args`` (botocore's, including `ClientError`, and
    most others) are redacted by rewriting them; returns ``False`` if one still shows a secret
    (a class with its own ``__str__``).
    """
    clean = True
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        todo += [current.__cause__, current.__context__]
        # botocore's HTTP errors keep the signed request (headers with the session token and
        # the signature) as `.request`; the error is about the connection, not the request.
        if isinstance(current, bce.HTTPClientError) and hasattr(current, "request"):
            setattr(current, "request", None)  # noqa: B010 - botocore-stubs omit the attribute
        text = str(current)
        if _scrub(text) == text:
            continue
        if isinstance(current, bce.ClientError):
            error = (current.response or {}).get("Error")
            if isinstance(error, dict) and isinstance(error.get("Message"), str):
                error["Message"] = _scrub(error["Message"])
        current.args = tuple(_scrub(a) if isinstance(a, str) else a for a in current.args)
        text = str(current)
        clean = clean and _scrub(text) == text
    return clean


@contextmanager
def map_errors(operation: str, service: str = "ecs") -> Iterator[None]:
    """Re-raise botocore/aiohttp/socket errors inside the block as typed ecs-safe errors.

    The original exception is kept as ``__cause__``, with secret-looking text in it (and in its
    own cause chain) redacted. Exceptions that are not about talking to AWS (programming
    errors, cancellation) pass through untouched. ``service`` is the service called (its own
    error codes, `SERVICE_CODES`, come first).
    """
    try:
        yield
    except EcsSafeError:
        raise
    except Exception as exc:
        mapped = api_error_from_exception(exc, operation, service)
        if mapped is None:
            raise
        # Redacted in place, not copied: a copy would still have the original as __context__.
        if not _redact_chain(exc):
            stand_in = RedactedCause(f"{type(exc).__qualname__}: {redact(str(exc))}")
            raise mapped from stand_in.with_traceback(exc.__traceback__)
        raise mapped from exc
