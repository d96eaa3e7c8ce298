"""The AWS Secrets Manager provider: GetSecretValue with boto3, errors mapped."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from credentials import errors, redaction
from credentials.arn import SecretLocation, locate
from credentials.aws_access import (
    caller_identity,
    describe_access,
    error_code,
    session_for,
)
from credentials.models import AwsAccess, ConnectionDescription, SecretFormat
from credentials.providers.base import SecretValue

# KMS named as KMS, or an action of it: a secret merely called "kms-db" is not.
_KMS_MESSAGE = re.compile(r"\bKMS\b|\bkms:[A-Za-z]+")
_THROTTLING = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}
_TRANSIENT = {"InternalServiceError", "InternalFailure", "ServiceUnavailable"}
_BAD_IDENTITY = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "ExpiredToken",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}
_NETWORK = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)

# Resolution has its own retry policy with backoff; botocore retries once more
# on its own so a single dropped connection does not cost a whole attempt.
_CLIENT_CONFIG = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    connect_timeout=5,
    read_timeout=15,
    user_agent_extra="credflow",
)

# Version ids are 32-64 characters (UUIDs in practice); stage names are labels
# such as AWSCURRENT. Each pattern recognises the other kind in the wrong field.
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
_STAGE_LIKE = re.compile(r"^AWS[A-Z]+$")


class AwsSecretsManagerProvider:
    """Reads secrets with GetSecretValue; one boto3 client per region and endpoint."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self._session = session
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def session(
        self, region: str, access: AwsAccess | None = None
    ) -> boto3.session.Session:
        """The session acting as the identity the connection's `aws_access` names."""
        return self._session or session_for(access, region)

    def client(
        self,
        region: str,
        endpoint_url: str | None = None,
        access: AwsAccess | None = None,
    ) -> Any:
        # boto3 sessions are not thread-safe, clients are: build under a lock,
        # share afterwards between the worker's activity threads.
        session = self.session(region, access)
        key = (region, endpoint_url, id(session))
        with self._lock:
            if key not in self._clients:
                self._clients[key] = session.client(
                    "secretsmanager",
                    region_name=region,
                    endpoint_url=endpoint_url,
                    config=_CLIENT_CONFIG,
                )
            return self._clients[key]

    def read(
        self,
        connection: ConnectionDescription,
        *,
        version_id: str | None = None,
        version_stage: str | None = None,
    ) -> SecretValue:
        location = locate(connection.secret_arn, connection.region)
        version_id = version_id or connection.version_id
        version_stage = version_stage or connection.version_stage
        check_version_reference(version_id, version_stage)
        request: dict[str, Any] = {"SecretId": location.secret_id}
        if version_id:
            request["VersionId"] = version_id
        else:
            request["VersionStage"] = version_stage or "AWSCURRENT"

        try:
            response = self._call(connection, location, "get_secret_value", request)
        except errors.SecretNotFoundError as err:
            if request.get("VersionStage") == "AWSCURRENT":
                raise
            # The answer does not always say whether the secret or the version
            # is missing; DescribeSecret does, when the identity may call it.
            raise self._missing_version(connection, location, request) or err from None

        try:
            values = parse_secret(
                response,
                location,
                connection.secret_format,
                plain_keys=plain_key_names(connection),
            )
        except errors.CredentialError as err:
            # Raised afresh without the response: a traceback rendered with its
            # frames' locals (Sentry, rich) would show the secret's text.
            del response
            raise type(err)(err.message) from None
        return SecretValue(
            values=values,
            label=repr(location.secret_id),
            arn=response.get("ARN"),
            version_id=response.get("VersionId"),
            version_stages=tuple(response.get("VersionStages", ())),
            read_at=datetime.now(UTC),
        )

    def describe(self, connection: ConnectionDescription) -> SecretDescription:
        """DescribeSecret: the secret's versions and rotation state, never its value."""
        location = locate(connection.secret_arn, connection.region)
        request = {"SecretId": location.secret_id}
        response = self._call(connection, location, "describe_secret", request)
        return SecretDescription(
            arn=response["ARN"],
            name=response["Name"],
            region=location.region,
            versions={
                version: tuple(stages)
                for version, stages in response.get("VersionIdsToStages", {}).items()
            },
            rotation_enabled=bool(response.get("RotationEnabled")),
            last_rotated=response.get("LastRotatedDate"),
            deleted_date=response.get("DeletedDate"),
            kms_key_id=response.get("KmsKeyId"),
        )

    def identity(self, connection: ConnectionDescription) -> str | None:
        """The ARN of the AWS identity reading the secret (best effort)."""
        location = locate(connection.secret_arn, connection.region)
        access = connection.aws_access
        return caller_identity(
            self.session(location.region, access),
            location.region,
            access.sts_endpoint_url if access else None,
        )

    def _call(
        self,
        connection: ConnectionDescription,
        location: SecretLocation,
        operation: str,
        request: dict[str, Any],
    ) -> dict[str, Any]:
        """One Secrets Manager call, every failure mapped to the guide's class."""
        access = connection.aws_access
        what = "reading" if operation == "get_secret_value" else "describing"
        try:
            client = self.client(location.region, connection.aws_endpoint_url, access)
            return dict(getattr(client, operation)(**request))
        except botocore.exceptions.ClientError as exc:
            err = map_client_error(exc, location, request, operation=operation)
            if isinstance(err, errors.SecretAccessDeniedError):
                # Whose access was denied is the first thing to check.
                identity = self.identity(connection)
                err = errors.SecretAccessDeniedError(
                    f"{err.message}. Identity in use: "
                    f"{identity or 'unknown (sts:GetCallerIdentity failed)'}, "
                    f"chosen by {describe_access(access)}"
                )
            raise err from None
        except _NETWORK as exc:
            raise errors.SecretStoreUnavailableError(
                f"could not reach Secrets Manager in {location.region} "
                f"({type(exc).__name__}) while {what} {location.secret_id!r}: check "
                "the network path to the endpoint (VPC endpoint, proxy, firewall) "
                "(retried with backoff)"
            ) from None
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
        ):
            raise errors.AwsIdentityError(
                f"no AWS credentials were found for {what} {location.secret_id!r} "
                f"with {describe_access(access)}: configure the worker's AWS "
                "identity (environment, profile, web identity or instance role) "
                "or the connection's aws_access"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            # Its text can quote a request header, such as a session token.
            raise errors.SecretStoreClientError(
                f"the AWS SDK failed {what} {location.secret_id!r} in "
                f"{location.region} before Secrets Manager answered "
                f"({type(exc).__name__}) with {describe_access(access)}: check "
                "aws_endpoint_url, the proxy settings (HTTPS_PROXY, NO_PROXY) and "
                "that the AWS credentials in use hold no line break or other "
                "control character"
            ) from None

    def _missing_version(
        self,
        connection: ConnectionDescription,
        location: SecretLocation,
        request: dict[str, Any],
    ) -> errors.CredentialError | None:
        try:
            description = self.describe(connection)
        except errors.CredentialError:
            return None
        asked = (
            f"version id {request['VersionId']!r}"
            if "VersionId" in request
            else f"version stage {request['VersionStage']!r}"
        )
        stages = sorted({s for v in description.versions.values() for s in v})
        return errors.VersionNotFoundError(
            f"secret {location.secret_id!r} in region {location.region} exists but "
            f"has no {asked}. Its stages are {', '.join(stages) or '(none)'} and its "
            f"version ids {', '.join(sorted(description.versions)) or '(none)'}: "
            "check version_id / version_stage"
        )


def check_version_reference(version_id: str | None, version_stage: str | None) -> None:
    """Raise `VersionReferenceError` when a stage sits where an id belongs, or not."""
    if version_id and version_stage:
        raise errors.VersionReferenceError(
            f"both version_id {version_id!r} and version_stage {version_stage!r} "
            "were given: give one. A version id is a UUID such as "
            "'a1b2c3d4-...'; a version stage is a label such as AWSCURRENT, "
            "AWSPREVIOUS or AWSPENDING"
        )
    if version_id and (
        _STAGE_LIKE.match(version_id)
        or (not _UUID.match(version_id) and len(version_id) < 32)
    ):
        raise errors.VersionReferenceError(
            f"version_id {version_id!r} looks like a version stage, not a "
            "version id: a version id is a 32-64 character id such as a UUID; "
            f"to pin a stage, set version_stage to {version_id!r} instead"
        )
    if version_stage and _UUID.match(version_stage):
        raise errors.VersionReferenceError(
            f"version_stage {version_stage!r} is a version id, not a stage: a stage "
            "is a label such as AWSCURRENT; to pin this version, set version_id to "
            f"{version_stage!r} instead"
        )


@dataclass(frozen=True)
class SecretDescription:
    """What DescribeSecret says of a secret: no value, only its metadata."""

    arn: str
    name: str
    region: str
    versions: dict[str, tuple[str, ...]]  # version id -> its stages
    rotation_enabled: bool = False
    last_rotated: datetime | None = None
    deleted_date: datetime | None = None
    kms_key_id: str | None = None

    def version_with_stage(self, stage: str) -> str | None:
        for version_id, stages in self.versions.items():
            if stage in stages:
                return version_id
        return None


# What an RDS-generated secret holds besides the password: not secret, and
# values such as "postgres" would mask ordinary words in every log line.
RDS_SECRET_METADATA_KEYS = frozenset(
    {"engine", "host", "port", "dbname", "dbInstanceIdentifier", "dbClusterIdentifier"}
)


def plain_key_names(connection: ConnectionDescription) -> frozenset[str]:
    """Key names whose values are not secret: user name, access key id, host...

    The keys the description names for them, and an RDS-generated secret's
    metadata. Their values are left out of log redaction, so that log lines
    can still name the database user and host.
    """
    if connection.secret_format == SecretFormat.PLAIN:
        return frozenset()
    names = (
        connection.username,
        connection.access_key_id_key,
        connection.host_key,
        connection.port_key,
        connection.database_key,
    )
    # The keys the login's secrets come from are remembered, whatever else says.
    secret_keys = {
        connection.password.get_secret_value() if connection.password else "",
        connection.secret_access_key_key or "",
    }
    return (RDS_SECRET_METADATA_KEYS | {name for name in names if name}) - secret_keys


def parse_secret(
    response: dict[str, Any],
    location: SecretLocation,
    secret_format: str = SecretFormat.JSON.value,
    *,
    plain_keys: Collection[str] = (),
) -> dict[str, Any]:
    """The secret's key/value pairs; the error never quotes the secret's text.

    With `secret_format` `plain` the secret's whole text is the password and is
    returned under the key `password`, without one trailing line break. A
    binary secret is accepted only when it decodes to a JSON object. Every
    string value, except those under `plain_keys`, is remembered for log
    redaction as soon as it is read.
    """
    label = repr(location.secret_id)
    if secret_format not in {f.value for f in SecretFormat}:
        raise errors.InvalidConnectionError(
            f"secret_format {secret_format!r} is not one of "
            f"{', '.join(repr(f.value) for f in SecretFormat)}"
        )
    if "SecretString" in response:
        text = response["SecretString"]
        kind = "text"
    else:
        text = _binary_text(response.get("SecretBinary"), label)
        kind = "binary data"

    if secret_format == SecretFormat.PLAIN:
        if kind != "text":
            raise errors.SecretFormatError(
                f"secret {label} holds binary data, and secret_format 'plain' "
                "needs the password as the secret's text: store it as a plain "
                "text secret"
            )
        # A file stored as the secret usually ends with a line break that is
        # not part of the password.
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise errors.SecretFormatError(
                f"secret {label} is empty: secret_format 'plain' needs the "
                "password as the secret's whole text"
            )
        redaction.remember(text)
        return {"password": text}

    try:
        values = json.loads(text)
    except ValueError:
        raise errors.SecretFormatError(
            f"secret {label} holds {kind} that is not JSON: store the credentials "
            'as a JSON object such as {"username": "...", "password": "..."} (the '
            "secret's 'Key/value' tab in the console), or set secret_format to "
            "'plain' when the secret's text is the password alone"
        ) from None
    if not isinstance(values, dict):
        raise errors.SecretFormatError(
            f"secret {label} holds {kind} that is JSON but not an object (it is a "
            f"{type(values).__name__}): store the credentials as key/value pairs"
        )
    _remember_values(values, plain_keys)
    return values


def _remember_values(
    values: dict[str, Any], plain_keys: Collection[str], prefix: str = ""
) -> None:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            _remember_values(value, plain_keys, prefix=f"{path}.")
        elif isinstance(value, str) and path not in plain_keys:
            redaction.remember(value)


def _binary_text(data: Any, label: str) -> str:
    # boto3 hands back bytes; tolerate base64 text from other clients too.
    if isinstance(data, str):
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            data = data.encode()
    try:
        return bytes(data or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise errors.SecretFormatError(
            f"secret {label} holds binary data that is not UTF-8 text, so it "
            "cannot be a JSON object: store the credentials as a JSON object of "
            "key/value pairs in the secret's text (SecretString)"
        ) from None


def map_client_error(
    exc: botocore.exceptions.ClientError,
    location: SecretLocation,
    request: dict[str, Any],
    *,
    operation: str = "get_secret_value",
) -> errors.CredentialError:
    """Translate an AWS error answer into the guide's failure class."""
    code, message, status = error_code(exc)
    secret = repr(location.secret_id)
    region = f"region {location.region} (taken from {location.region_from})"
    version = request.get("VersionId") or request.get("VersionStage")
    action = (
        "secretsmanager:GetSecretValue"
        if operation == "get_secret_value"
        else "secretsmanager:DescribeSecret"
    )
    pinned = f", version {version!r}" if version else ""

    if code == "ResourceNotFoundException":
        if ("VersionId" in request or request.get("VersionStage") != "AWSCURRENT") and (
            "version" in message.lower() or "staging" in message.lower()
        ):
            return errors.VersionNotFoundError(
                f"secret {secret} in {region} has no version {version!r}: check "
                "the version id or stage (stages are names such as AWSCURRENT "
                "or AWSPENDING; ids are UUIDs)"
            )
        return errors.SecretNotFoundError(
            f"Secrets Manager found no secret {secret} in {region}. Check the ARN "
            "for typos, that the secret exists in that region and was not deleted, "
            "and that the worker's AWS account is the secret's account"
        )
    if code in _BAD_IDENTITY:
        return errors.InvalidAwsCredentialsError(
            f"AWS rejected the credentials in use ({code}) while calling {action} "
            f"on secret {secret} in {region}: check the access key, session token "
            "or role the worker uses, that it is not expired or deactivated, and "
            "the machine's clock"
        )
    if code in _THROTTLING:
        return errors.SecretStoreThrottledError(
            f"Secrets Manager throttled the read of secret {secret} in {region} "
            "(retried with backoff): if this persists, lower concurrency or raise "
            "the cache lifetime"
        )
    if code in _TRANSIENT or status >= 500:
        return errors.SecretStoreUnavailableError(
            f"Secrets Manager answered {code or status} for secret {secret} in "
            f"{region}: a fault on the service's side or on the way to it (retried "
            "with backoff)"
        )
    denied = code in {"AccessDeniedException", "AccessDenied"} or status == 403
    if (
        code == "DecryptionFailure"
        or code.startswith("KMS")
        or (denied and _KMS_MESSAGE.search(message))
    ):
        # Checked before access denied: a KMS refusal arrives as an access
        # denied answer whose message names KMS (not merely a secret's name).
        return errors.KmsDecryptionError(
            f"Secrets Manager could not decrypt secret {secret}{pinned} in "
            f"{region} with its KMS key ({code}): the AWS identity in use needs "
            "kms:Decrypt on the secret's customer-managed key (key policy and IAM "
            "policy), and the key must be enabled; `credflow policy` prints the "
            "statement"
        )
    if denied:
        return errors.SecretAccessDeniedError(
            f"access denied calling {action} on secret {secret}{pinned} in "
            f"{region}: the AWS identity in use needs secretsmanager:GetSecretValue "
            "and secretsmanager:DescribeSecret (and kms:Decrypt when the secret "
            "uses a customer-managed key) on this secret, and no resource policy "
            "may deny it; `credflow policy` prints the policy"
        )
    if code == "InvalidRequestException" and "delet" in message.lower():
        return errors.SecretScheduledForDeletionError(
            f"secret {secret} in {region} is scheduled for deletion and cannot be "
            "read: restore it (RestoreSecret, or Cancel deletion in the console) or "
            "point the connection at another secret"
        )
    return errors.CredentialError(
        f"Secrets Manager refused to read secret {secret} in {region} ({code}): "
        "check the ARN, version and permissions"
    )
