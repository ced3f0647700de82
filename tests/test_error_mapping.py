"""Tests for ecs_safe._error_mapping: the one place lower-level errors become ours."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import aiohttp
import botocore.exceptions as bce
import pytest

from ecs_safe._error_mapping import api_error_from_exception, map_errors, redact
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

OPERATION = "DeregisterContainerInstance"
REQUEST_ID = "8f9e0d1c-aaaa-bbbb-cccc-0123456789ab"
ENDPOINT = "https://ecs.eu-west-1.amazonaws.com/"


def client_error(
    code: str | None,
    message: str | None = "something went wrong",
    *,
    status: int | None = 400,
    request_id: str | None = REQUEST_ID,
    operation: str = OPERATION,
) -> bce.ClientError:
    """A ClientError shaped the way botocore builds one from a parsed response."""
    error: dict[str, Any] = {}
    if code is not None:
        error["Code"] = code
    if message is not None:
        error["Message"] = message
    meta: dict[str, Any] = {"HTTPHeaders": {}, "RetryAttempts": 0}
    if status is not None:
        meta["HTTPStatusCode"] = status
    if request_id is not None:
        meta["RequestId"] = request_id
    response: Any = {"Error": error, "ResponseMetadata": meta}
    return bce.ClientError(response, operation)


def mapped(exc: BaseException, operation: str = OPERATION) -> EcsSafeError:
    """Map through the context manager, as production code does, and check the cause."""
    with pytest.raises(EcsSafeError) as exc_info, map_errors(operation):
        raise exc
    assert exc_info.value.__cause__ is exc
    direct = api_error_from_exception(exc, operation)
    assert type(direct) is type(exc_info.value)
    return exc_info.value


# ------------------------------------------------------------------ AWS error codes


@pytest.mark.parametrize(
    ("code", "status", "cls", "retryable"),
    [
        ("ServerException", 500, ServerException, True),
        ("ClientException", 400, ClientException, False),
        ("InvalidParameterException", 400, InvalidParameterException, False),
        ("ClusterNotFoundException", 400, ClusterNotFoundException, False),
        ("AccessDeniedException", 400, AccessDeniedException, False),
        ("ThrottlingException", 400, ThrottlingException, True),
        # Generic codes every AWS JSON service may send.
        ("InternalFailure", 500, ServerException, True),
        ("ServiceUnavailable", 503, ServerException, True),
        ("ValidationException", 400, InvalidParameterException, False),
        ("Throttling", 400, ThrottlingException, True),
        ("TooManyRequestsException", 429, ThrottlingException, True),
        ("RequestLimitExceeded", 400, ThrottlingException, True),
    ],
)
def test_aws_code_maps_to_class_with_every_field(
    code: str, status: int, cls: type[EcsApiError], retryable: bool
) -> None:
    exc = client_error(code, "the service says no", status=status)
    err = mapped(exc)
    assert type(err) is cls
    assert isinstance(err, EcsApiError)
    assert err.code == code
    assert err.message == "the service says no"
    assert err.operation == OPERATION
    assert err.request_id == REQUEST_ID
    assert err.http_status == status
    assert err.retryable is retryable
    text = str(err)
    assert code in text
    assert OPERATION in text
    assert REQUEST_ID in text
    assert "the service says no" in text


def test_missing_message_and_request_id() -> None:
    err = mapped(client_error("ClientException", None, request_id=None))
    assert isinstance(err, ClientException)
    assert err.message  # never empty
    assert err.request_id is None
    assert "request ID" not in str(err)


def test_response_without_metadata_still_maps() -> None:
    exc = bce.ClientError({"Error": {"Code": "ServerException", "Message": "x"}}, OPERATION)
    err = mapped(exc)
    assert isinstance(err, ServerException)
    assert err.http_status is None
    assert err.request_id is None
    assert err.retryable


# ------------------------------------------------------------------ no AWS code


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_html_5xx_without_aws_code_is_a_retryable_server_exception(status: int) -> None:
    # botocore reports a proxy's or load balancer's HTML page with the status as the code.
    exc = client_error(str(status), "Service Unavailable", status=status, request_id=None)
    err = mapped(exc)
    assert type(err) is ServerException
    assert err.retryable
    assert err.http_status == status
    assert err.code == str(status)


def test_5xx_with_empty_error_is_a_server_exception() -> None:
    err = mapped(client_error(None, None, status=503, request_id=None))
    assert type(err) is ServerException
    assert err.retryable
    assert err.code == "503"


@pytest.mark.parametrize("code", ["429", None, ""])
def test_429_without_aws_code_is_throttling(code: str | None) -> None:
    err = mapped(client_error(code, "Too Many Requests", status=429))
    assert type(err) is ThrottlingException
    assert err.retryable
    assert err.http_status == 429


def test_4xx_html_without_aws_code_is_a_plain_non_retryable_error() -> None:
    err = mapped(client_error("404", "Not Found", status=404))
    assert type(err) is EcsApiError
    assert not err.retryable
    assert err.code == "404"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (403, False), (500, True)])
def test_unknown_aws_code_is_a_plain_ecs_api_error(status: int, retryable: bool) -> None:
    err = mapped(client_error("BrandNewException", "new in 2030", status=status))
    assert type(err) is EcsApiError
    assert err.code == "BrandNewException"
    assert err.message == "new in 2030"
    assert err.retryable is retryable
    assert err.http_status == status


# ------------------------------------------------------------------ transport errors


@pytest.mark.parametrize(
    "exc",
    [
        pytest.param(bce.EndpointConnectionError(endpoint_url=ENDPOINT), id="endpoint"),
        pytest.param(bce.ConnectTimeoutError(endpoint_url=ENDPOINT), id="connect-timeout"),
        pytest.param(bce.ReadTimeoutError(endpoint_url=ENDPOINT), id="read-timeout"),
        pytest.param(bce.ConnectionClosedError(endpoint_url=ENDPOINT), id="closed"),
        pytest.param(aiohttp.ClientConnectionError("connection reset"), id="aiohttp"),
        pytest.param(aiohttp.ServerDisconnectedError(), id="aiohttp-disconnected"),
        # asyncio.TimeoutError is the builtin TimeoutError since Python 3.11.
        pytest.param(TimeoutError(), id="asyncio-timeout"),
        pytest.param(ConnectionResetError(104, "Connection reset by peer"), id="socket-reset"),
    ],
)
def test_connection_problems_are_retryable_connection_errors(exc: Exception) -> None:
    err = mapped(exc)
    assert type(err) is EcsConnectionError
    assert isinstance(err, EcsApiError)
    assert err.retryable
    assert err.operation == OPERATION
    assert err.code  # the lower error's class name
    assert err.message  # never empty, even for asyncio.TimeoutError()
    assert err.http_status is None


def test_ssl_error_is_not_retryable() -> None:
    exc = bce.SSLError(endpoint_url=ENDPOINT, error=OSError("certificate verify failed"))
    err = mapped(exc)
    assert isinstance(err, EcsConnectionError)
    assert not err.retryable
    assert err.code == "SSLError"


@pytest.mark.parametrize(
    "exc",
    [bce.NoCredentialsError(), bce.PartialCredentialsError(provider="env", cred_var="secret")],
)
def test_missing_credentials_explains_the_fix(exc: Exception) -> None:
    err = mapped(exc)
    assert isinstance(err, EcsApiError)
    assert not isinstance(err, EcsConnectionError)
    assert not err.retryable
    assert err.code == type(exc).__name__
    assert "credential" in err.message


def test_param_validation_error_is_invalid_input() -> None:
    exc = bce.ParamValidationError(report="Invalid type for parameter force, value: 1")
    err = mapped(exc)
    assert isinstance(err, InvalidInputError)
    assert isinstance(err, ValueError)
    assert "force" in str(err)


@pytest.mark.parametrize(
    "exc",
    [KeyError("x"), ValueError("y"), TypeError("z"), RuntimeError("w"), AttributeError("v")],
)
def test_non_network_exceptions_pass_through_unmapped(exc: Exception) -> None:
    assert api_error_from_exception(exc, OPERATION) is None
    with pytest.raises(type(exc)) as exc_info, map_errors(OPERATION):
        raise exc
    assert exc_info.value is exc


def test_cancellation_passes_through() -> None:
    with pytest.raises(asyncio.CancelledError), map_errors(OPERATION):
        raise asyncio.CancelledError


def test_our_own_errors_pass_through_untouched() -> None:
    ours = ThrottlingException("slow down", operation="DescribeTasks")
    with pytest.raises(ThrottlingException) as exc_info, map_errors(OPERATION):
        raise ours
    assert exc_info.value is ours
    assert exc_info.value.operation == "DescribeTasks"
    assert api_error_from_exception(ours, OPERATION) is ours


def test_map_errors_without_error_does_nothing() -> None:
    with map_errors(OPERATION):
        value = 1
    assert value == 1


# ------------------------------------------------------------------ redaction

SECRET = "SECRETMARKER123"


@pytest.mark.parametrize(
    "message",
    [
        f"aws_secret_access_key={SECRET}",
        f"bad config: aws_secret_access_key = {SECRET}, region=eu-west-1",
        f"https://ecs.amazonaws.com/?X-Amz-Signature={SECRET}&X-Amz-Date=20240101",
        f"X-Amz-Security-Token={SECRET}",
        f"token: {SECRET}",
        f"Token:{SECRET}",
        f'{{"aws_secret_access_key": "{SECRET}"}}',
        f"{{'SessionToken': '{SECRET}', 'x': 1}}",
        f"Authorization: AWS4-HMAC-SHA256 Credential=AKIA/{SECRET}, Signature={SECRET}",
        f"Authorization: Bearer {SECRET}",
        f"password={SECRET}",
    ],
)
def test_secrets_never_reach_str_repr_or_message(message: str) -> None:
    for exc in (
        client_error("ServerException", message, status=500),
        client_error("503", message, status=503),
        bce.EndpointConnectionError(endpoint_url=message),
        bce.ParamValidationError(report=message),
    ):
        err = mapped(exc)
        assert SECRET not in str(err), str(err)
        assert SECRET not in repr(err), repr(err)
        assert SECRET not in err.message
        assert SECRET not in str(err.args)


def test_redact_keeps_the_rest_of_the_message() -> None:
    text = redact(f"could not sign: aws_secret_access_key={SECRET} is wrong")
    assert SECRET not in text
    assert text.startswith("could not sign: aws_secret_access_key=")
    assert text.endswith("is wrong")


def test_long_messages_are_bounded_and_single_line() -> None:
    err = mapped(client_error("ServerException", "line\n" * 1000, status=500))
    assert len(err.message) <= 501
    assert "\n" not in err.message


def test_the_signed_request_is_dropped_from_a_kept_connection_error() -> None:
    class SignedRequest:
        headers: ClassVar[dict[str, str]] = {"X-Amz-Security-Token": "SESSIONTOKENMARKER"}
        url = "http://127.0.0.1:9"

    original = bce.ConnectionClosedError(
        error=OSError("reset"), request=SignedRequest(), endpoint_url=SignedRequest.url
    )
    with pytest.raises(EcsConnectionError) as info, map_errors("DescribeTasks"):
        raise original
    assert info.value.__cause__ is original
    assert getattr(original, "request", "missing") is None


# ------------------------------------------------------------------ unreadable responses


def _parse_error_body(body: bytes, status: int = 400) -> BaseException:
    """What botocore's own JSON parser raises on ``body`` (raised inside botocore)."""
    import botocore.parsers  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("DescribeTasks").output_shape
    assert shape is not None
    parser = botocore.parsers.create_parser("json")
    response = {"body": body, "headers": {}, "status_code": status}
    try:
        parser.parse(response, shape)
    except Exception as exc:  # whatever botocore raises is the point
        return exc
    raise AssertionError("botocore parsed it")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"\x1f\x8b\x08\x00\xff\xfe", 200, id="not-utf8-200"),
        pytest.param(b"\x1f\x8b\x08\x00\xff\xfe", 400, id="not-utf8-400"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, 200, id="deep-json"),
        pytest.param(b"[1]", 400, id="error-body-not-an-object"),
    ],
)
def test_unreadable_response_is_a_retryable_malformed_response(body: bytes, status: int) -> None:
    exc = _parse_error_body(body, status)
    assert not isinstance(exc, EcsSafeError)
    err = mapped(exc, "DescribeTasks")
    assert type(err) is ServerException
    assert err.code == "MalformedResponse"
    assert err.retryable
    # Unknown status: the transport treats it as a response lost after ECS may have acted.
    assert err.http_status is None


@pytest.mark.parametrize(
    "exc", [RecursionError("deep"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "x")]
)
def test_decoder_errors_are_malformed_whatever_raised_them(exc: Exception) -> None:
    err = mapped(exc)
    assert isinstance(err, ServerException)
    assert err.code == "MalformedResponse"


# ------------------------------------------------------------------ retries, against botocore


def _botocore_retry_lists() -> tuple[set[str], set[str], set[int]]:
    """botocore's standard-mode lists (throttling codes, transient codes, transient statuses).

    Read from botocore itself, with the service codes of ``botocore/data/_retry.json`` added to
    the throttling ones, so that a botocore release that adds a code fails this module.
    """
    import json  # noqa: PLC0415
    from importlib import resources  # noqa: PLC0415

    from botocore.retries import standard  # noqa: PLC0415

    # Class attributes botocore's stubs do not declare: read through vars().
    throttling = set(vars(standard.ThrottledRetryableChecker)["_THROTTLED_ERROR_CODES"])
    transient = set(vars(standard.TransientRetryableChecker)["_TRANSIENT_ERROR_CODES"])
    statuses = set(vars(standard.TransientRetryableChecker)["_TRANSIENT_STATUS_CODES"])
    data = json.loads((resources.files("botocore") / "data" / "_retry.json").read_text())
    for definition in data["definitions"].values():
        code = definition.get("applies_when", {}).get("response", {}).get("service_error_code")
        if code:
            throttling.add(code)
    return throttling, transient, statuses


BOTOCORE_THROTTLING, BOTOCORE_TRANSIENT, BOTOCORE_STATUSES = _botocore_retry_lists()


@pytest.mark.parametrize("code", sorted(BOTOCORE_THROTTLING))
def test_every_botocore_throttling_code_is_a_retried_throttle(code: str) -> None:
    err = mapped(client_error(code, "slow down", status=400))
    assert type(err) is ThrottlingException
    assert err.retryable


@pytest.mark.parametrize("code", sorted(BOTOCORE_TRANSIENT - BOTOCORE_THROTTLING))
def test_every_botocore_transient_code_is_retried(code: str) -> None:
    err = mapped(client_error(code, "try again", status=400))
    assert type(err) is ServerException
    assert err.retryable


@pytest.mark.parametrize("status", range(500, 512))
def test_a_5xx_without_code_is_retried_exactly_as_botocore_does(status: int) -> None:
    err = mapped(client_error(str(status), "<html>", status=status, request_id=None))
    assert isinstance(err, EcsApiError)
    assert err.retryable is (status in BOTOCORE_STATUSES)
    # An unknown AWS code follows the status in the same way.
    err = mapped(client_error("BrandNewException", "new", status=status))
    assert isinstance(err, EcsApiError)
    assert err.retryable is (status in BOTOCORE_STATUSES)


def test_our_lists_are_botocores() -> None:
    from ecs_safe import _error_mapping as m  # noqa: PLC0415

    assert m.THROTTLING_CODES == BOTOCORE_THROTTLING
    assert BOTOCORE_TRANSIENT <= m.TRANSIENT_CODES | m.THROTTLING_CODES
    assert m.TRANSIENT_STATUSES == BOTOCORE_STATUSES


def test_credentials_in_the_url_are_not_retried_and_not_echoed() -> None:
    # What aiohttp raises for https://user:pass@host next to a signed Authorization header,
    # wrapped by aiobotocore: the same on every attempt.
    inner = ValueError(
        "Cannot combine AUTHORIZATION header with AUTH argument or credentials encoded in URL"
    )
    exc = bce.HTTPClientError(error=inner)
    err = mapped(exc)
    assert isinstance(err, EcsConnectionError)
    assert not err.retryable
    assert err.code == "InvalidEndpoint"
    assert "user:password@" in err.message


# ------------------------------------------------------------------ credentials

CREDENTIAL_CODES = [
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "AuthFailure",
    "InvalidSignatureException",
]


@pytest.mark.parametrize("code", CREDENTIAL_CODES)
@pytest.mark.parametrize("status", [400, 403])
def test_credential_codes_are_one_typed_error_that_says_what_to_do(code: str, status: int) -> None:
    err = mapped(
        client_error(code, "The security token included in the request is expired", status=status)
    )
    assert type(err) is CredentialsError
    assert isinstance(err, AccessDeniedException)  # what callers caught before
    assert not err.retryable
    assert err.code == code
    assert err.http_status == status
    assert "refresh" in err.message
    assert "fix" in err.message
    assert "expired" in err.message


@pytest.mark.parametrize(
    "exc",
    [
        bce.NoCredentialsError(),
        bce.PartialCredentialsError(provider="env", cred_var="secret"),
        bce.CredentialRetrievalError(provider="sso", error_msg="the SSO session has expired"),
        bce.TokenRetrievalError(provider="sso", error_msg="token expired"),
    ],
)
def test_credentials_not_found_or_not_loaded_are_a_credentials_error(exc: Exception) -> None:
    err = mapped(exc)
    assert type(err) is CredentialsError
    assert not err.retryable
    assert err.code == type(exc).__name__
    assert "refresh" in err.message


# ----------------------------------------------------------------------------- other services


def mapped_from(service: str, exc: BaseException, operation: str) -> EcsSafeError:
    """Map an error of ``service`` through the context manager, as its transport does."""
    with pytest.raises(EcsSafeError) as exc_info, map_errors(operation, service):
        raise exc
    direct = api_error_from_exception(exc, operation, service)
    assert type(direct) is type(exc_info.value)
    return exc_info.value


@pytest.mark.parametrize(
    ("service", "code", "status", "operation"),
    [
        ("ec2", "RequestLimitExceeded", 503, "TerminateInstances"),
        ("autoscaling", "Throttling", 400, "CompleteLifecycleAction"),
        ("sqs", "RequestThrottled", 403, "ReceiveMessage"),
        ("sqs", "ThrottlingException", 400, "DeleteMessage"),
    ],
)
def test_each_services_throttle_is_a_retried_throttle(
    service: str, code: str, status: int, operation: str
) -> None:
    error = mapped_from(service, client_error(code, "Rate exceeded", status=status), operation)
    assert type(error) is ThrottlingException
    assert error.retryable is True
    assert (error.code, error.http_status, error.operation) == (code, status, operation)


@pytest.mark.parametrize(
    ("service", "code", "message", "operation", "cls", "retryable"),
    [
        (
            "autoscaling",
            "ValidationError",
            "No active Lifecycle Action found with instance ID i-0123456789abcdef0",
            "CompleteLifecycleAction",
            LifecycleActionNotFoundError,
            False,
        ),
        (
            "autoscaling",
            "ValidationError",
            "AutoScalingGroup name not found - null",
            "UpdateAutoScalingGroup",
            InvalidParameterException,
            False,
        ),
        (
            "autoscaling",
            "ScalingActivityInProgress",
            "Scaling activity 1234 is in progress and blocks this action",
            "UpdateAutoScalingGroup",
            ServerException,
            True,
        ),
        (
            "autoscaling",
            "LimitExceeded",
            "You have reached the limit of Auto Scaling groups",
            "UpdateAutoScalingGroup",
            ClientException,
            False,
        ),
        (
            "ec2",
            "InvalidInstanceID.NotFound",
            "The instance ID 'i-0123456789abcdef0' does not exist",
            "TerminateInstances",
            Ec2InstanceNotFoundError,
            False,
        ),
        (
            "ec2",
            "OperationNotPermitted",
            "The instance 'i-0123456789abcdef0' may not be terminated. Modify its "
            "'disableApiTermination' instance attribute and try again.",
            "TerminateInstances",
            TerminationProtectedError,
            False,
        ),
        ("ec2", "OperationNotPermitted", "no", "ModifyInstanceAttribute", ClientException, False),
        (
            "ec2",
            "UnauthorizedOperation",
            "denied",
            "TerminateInstances",
            AccessDeniedException,
            False,
        ),
        ("ec2", "InternalError", "oops", "DescribeInstances", ServerException, True),
        ("sqs", "ReceiptHandleIsInvalid", "bad", "DeleteMessage", InvalidParameterException, False),
        ("sqs", "QueueDoesNotExist", "gone", "ReceiveMessage", ClientException, False),
    ],
)
def test_service_codes_map_to_typed_errors(
    service: str,
    code: str,
    message: str,
    operation: str,
    cls: type[EcsApiError],
    retryable: bool,
) -> None:
    error = mapped_from(service, client_error(code, message), operation)
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.code == code


def test_a_service_code_means_nothing_special_to_ecs() -> None:
    # ECS has no ValidationError of its own: the generic map decides (a plain EcsApiError).
    error = mapped(client_error("ValidationError", "No active Lifecycle Action found"))
    assert type(error) is EcsApiError


def test_other_services_messages_are_redacted() -> None:
    secret = "IQoJb3JpZ2luX2VjEJr" + "A" * 120
    error = mapped_from(
        "autoscaling",
        client_error("ValidationError", f"bad token={secret} for the hook"),
        "CompleteLifecycleAction",
    )
    assert secret not in str(error)
    assert "token=***" in str(error)
