"""The AWS identity credflow acts as: default chain, profile, static keys or a role.

An assumed role's credentials are refreshed by botocore before they expire, so
a long extraction never fails with an expired session token.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import botocore.session
import botocore.utils
from botocore.config import Config
from botocore.credentials import DeferredRefreshableCredentials
from pydantic import SecretStr

from credentials import errors, redaction
from credentials.models import AwsAccess, AwsAccessMode

_STS_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=5,
    read_timeout=15,
    user_agent_extra="credflow",
)
_NETWORK = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)

_sessions: dict[tuple[Any, ...], boto3.session.Session] = {}
_lock = threading.RLock()  # re-entrant: a session build may make an STS client


def describe_access(access: AwsAccess | None) -> str:
    """How the identity is chosen, in words for an error message (no secret)."""
    if access is None or access.mode == AwsAccessMode.DEFAULT_CHAIN:
        return "boto3's default credential chain"
    if access.mode == AwsAccessMode.PROFILE:
        return f"profile {access.profile!r}"
    if access.mode == AwsAccessMode.STATIC_KEYS:
        return f"the static access key {access.access_key_id!r}"
    return f"role {access.role_arn!r} assumed with STS"


def check_access(access: AwsAccess | None) -> None:
    """Refuse `aws_access` values botocore cannot send, before any call.

    The access key id and session token travel in HTTP headers: a line break
    or other control character there makes the HTTP client fail with an error
    that quotes the header, so such a value is refused here, by field name.
    """
    if access is None:
        return
    for name in ("access_key_id", "secret_access_key", "session_token"):
        problem = _key_problem(getattr(access, name))
        if problem:
            raise errors.InvalidConnectionError(
                f"aws_access.{name} {problem}; AWS keys and session tokens are "
                "printable ASCII with no spaces: copy the value again without the "
                "line break or surrounding spaces"
            )
    check_endpoint_url("aws_access.sts_endpoint_url", access.sts_endpoint_url)


def _key_problem(value: str | SecretStr | None) -> str | None:
    # Unwrapped only inside this function, so no caller's frame holds the value.
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if text is None:
        return None
    if text != text.strip():
        return "has leading or trailing whitespace (such as a line break)"
    if any(not (char.isascii() and char.isprintable()) for char in text):
        return "holds a control character (such as a line break) or a non-ASCII one"
    if any(char.isspace() for char in text):
        return "holds a space"
    return None


def check_endpoint_url(field: str, url: str | None) -> None:
    """Refuse an endpoint URL botocore would reject on every attempt."""
    if url is None:
        return
    # The URL is not repeated: one with user information would carry a password.
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    valid = bool(
        botocore.utils.is_valid_endpoint_url(url)
        or botocore.utils.is_valid_ipv6_endpoint_url(url)
    )
    if scheme not in {"http", "https"} or not valid or url != url.strip():
        raise errors.InvalidConnectionError(
            f"{field} is not an http:// or https:// URL with a valid host name: give "
            "the endpoint as https://host[:port] (such as a VPC endpoint's DNS "
            "name), or leave it out to use boto3's own settings"
        )


def _fingerprint(value: Any) -> str | None:
    # Secrets take part in the cache key only as a digest.
    if value is None:
        return None
    return hashlib.sha256(value.get_secret_value().encode()).hexdigest()


def _cache_key(access: AwsAccess, region: str) -> tuple[Any, ...]:
    return (
        access.mode,
        access.profile,
        access.access_key_id,
        _fingerprint(access.secret_access_key),
        _fingerprint(access.session_token),
        access.role_arn,
        access.external_id,
        access.role_session_name,
        access.duration_seconds,
        access.sts_endpoint_url,
        region,
    )


def session_for(access: AwsAccess | None, region: str) -> boto3.session.Session:
    """A boto3 session acting as the identity `access` names, shared per process.

    boto3 sessions are not thread-safe for building clients, so callers build
    their clients under their own lock; the session (and an assumed role's
    refreshing credentials) is reused so a role is not assumed on every read.
    """
    access = access or AwsAccess()
    check_access(access)
    key = _cache_key(access, region)
    with _lock:
        if key not in _sessions:
            _sessions[key] = _build_session(access, region)
        return _sessions[key]


def forget_sessions() -> None:
    """Drop every cached session (tests, or after the worker's identity changed)."""
    with _lock:
        _sessions.clear()


def _build_session(access: AwsAccess, region: str) -> boto3.session.Session:
    mode = access.mode
    if mode not in {m.value for m in AwsAccessMode}:
        raise errors.InvalidConnectionError(
            f"aws_access mode {mode!r} is not one of "
            f"{', '.join(repr(m.value) for m in AwsAccessMode)}"
        )
    if mode == AwsAccessMode.STATIC_KEYS:
        if not access.access_key_id or access.secret_access_key is None:
            raise errors.InvalidConnectionError(
                "aws_access mode 'static' needs access_key_id and secret_access_key"
            )
        return boto3.session.Session(
            aws_access_key_id=access.access_key_id,
            aws_secret_access_key=access.secret_access_key.get_secret_value(),
            aws_session_token=(
                access.session_token.get_secret_value()
                if access.session_token
                else None
            ),
            region_name=region,
        )

    base = _profile_session(access, region)
    if mode != AwsAccessMode.ASSUME_ROLE:
        return base

    if not access.role_arn:
        raise errors.InvalidConnectionError(
            "aws_access mode 'assume_role' needs role_arn (and external_id when "
            "the role's trust policy asks for one)"
        )
    sts = base.client(
        "sts",
        region_name=region,
        endpoint_url=access.sts_endpoint_url,
        config=_STS_CONFIG,
    )

    def refresh() -> dict[str, str]:
        answer = assume_role(
            sts,
            role_arn=access.role_arn or "",
            external_id=access.external_id,
            session_name=access.role_session_name,
            duration_seconds=access.duration_seconds,
            purpose="to read the secret",
        )
        # Masked in any log line from now on, whatever logs them.
        redaction.remember(answer["SecretAccessKey"])
        redaction.remember(answer["SessionToken"])
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": answer["Expiration"].isoformat(),
        }

    # Deferred: the role is assumed at the first call, then again by botocore a
    # few minutes before the credentials expire.
    credentials = DeferredRefreshableCredentials(
        refresh_using=refresh, method="sts-assume-role"
    )
    core = botocore.session.Session()
    # botocore has no public setter; this is the documented way to hand a
    # session refreshable credentials.
    core._credentials = credentials
    return boto3.session.Session(botocore_session=core, region_name=region)


def _profile_session(access: AwsAccess, region: str) -> boto3.session.Session:
    if access.mode == AwsAccessMode.PROFILE and not access.profile:
        raise errors.InvalidConnectionError("aws_access mode 'profile' needs profile")
    try:
        return boto3.session.Session(profile_name=access.profile, region_name=region)
    except botocore.exceptions.ProfileNotFound:
        raise errors.AwsIdentityError(
            f"AWS profile {access.profile!r} is not in the worker's AWS config or "
            "credentials file: check the profile name and AWS_CONFIG_FILE / "
            "AWS_SHARED_CREDENTIALS_FILE"
        ) from None


def assume_role(
    sts: Any,
    *,
    role_arn: str,
    external_id: str | None,
    session_name: str,
    duration_seconds: int = 3600,
    purpose: str,
) -> dict[str, Any]:
    """Call sts:AssumeRole and return its `Credentials`; errors are typed."""
    request: dict[str, Any] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "DurationSeconds": duration_seconds,
    }
    if external_id:
        request["ExternalId"] = external_id
    external = "with an external id" if external_id else "without an external id"
    try:
        return dict(sts.assume_role(**request)["Credentials"])
    except botocore.exceptions.ClientError as exc:
        code, _, status = error_code(exc)
        if code in _REJECTED_KEYS:
            raise errors.InvalidAwsCredentialsError(
                f"AWS rejected the credentials used to assume role {role_arn!r} "
                f"{purpose} ({code}): check the access key, session token or "
                "profile, and the machine's clock"
            ) from None
        if code in _THROTTLED:
            raise errors.SecretStoreThrottledError(
                f"STS throttled AssumeRole for {role_arn!r} {purpose} (retried "
                "with backoff): if this persists, lower the worker's concurrency"
            ) from None
        if status >= 500 or code in {"InternalFailure", "ServiceUnavailable"}:
            raise errors.SecretStoreUnavailableError(
                f"STS answered {code or status} to AssumeRole for {role_arn!r} "
                f"{purpose}: a fault on the service's side (retried with backoff)"
            ) from None
        raise errors.RoleAssumptionError(
            f"STS refused to let the AWS identity in use assume role {role_arn!r} "
            f"{purpose} ({code or status}, {external}): the identity needs "
            "sts:AssumeRole on the role, the role's trust policy must name that "
            "identity, and the external id must match the trust policy's "
            "sts:ExternalId condition"
        ) from None
    except _NETWORK as exc:
        raise errors.SecretStoreUnavailableError(
            f"could not reach STS ({type(exc).__name__}) to assume role "
            f"{role_arn!r} {purpose}: check the network path to the STS endpoint "
            "(retried with backoff)"
        ) from None
    except (
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.PartialCredentialsError,
    ):
        raise errors.AwsIdentityError(
            f"no AWS credentials were found to assume role {role_arn!r} {purpose}: "
            "configure the worker's AWS identity (environment, profile, web "
            "identity or instance role)"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        # Its text can quote a request header, such as a session token.
        raise errors.SecretStoreClientError(
            f"the AWS SDK failed to call STS AssumeRole for {role_arn!r} {purpose} "
            f"before STS answered ({type(exc).__name__}): check sts_endpoint_url, "
            "the proxy settings (HTTPS_PROXY, NO_PROXY) and that the AWS "
            "credentials in use hold no line break or other control character"
        ) from None


def sts_client(
    session: boto3.session.Session, region: str, endpoint_url: str | None
) -> Any:
    """An STS client with credflow's time-outs, built under the sessions' lock.

    boto3 sessions are not safe to build clients from in several threads at
    once; the clients themselves are.
    """
    with _lock:
        return session.client(
            "sts", region_name=region, endpoint_url=endpoint_url, config=_STS_CONFIG
        )


def caller_identity(
    session: boto3.session.Session, region: str, sts_endpoint_url: str | None
) -> str | None:
    """The ARN of the identity `session` acts as, or None when STS won't say.

    Best effort: it only enriches an error message, so no failure escapes.
    """
    try:
        sts = sts_client(session, region, sts_endpoint_url)
        return str(sts.get_caller_identity()["Arn"])
    except Exception:  # any failure: the message goes out without the identity
        return None


_REJECTED_KEYS = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}
_THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}


def error_code(exc: botocore.exceptions.ClientError) -> tuple[str, str, int]:
    """(code, message, HTTP status) of an AWS error answer.

    An emulator (and some proxies) answer a JSON-protocol call with an XML error
    body; botocore then reports the HTTP status as the code and the XML as the
    message, so the real code is read from the XML.
    """
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if (code.isdigit() or not code) and "<Code>" in message:
        code = message.split("<Code>", 1)[1].split("</Code>", 1)[0].strip()
        if "<Message>" in message:
            message = message.split("<Message>", 1)[1].split("</Message>", 1)[0]
    return code, message, int(status or 0)
