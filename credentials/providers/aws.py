"""The AWS Secrets Manager provider: GetSecretValue with boto3, errors mapped."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from credentials import errors
from credentials.arn import SecretLocation, locate
from credentials.models import ConnectionDescription
from credentials.providers.base import SecretValue

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


class AwsSecretsManagerProvider:
    """Reads secrets with GetSecretValue; one boto3 client per region and endpoint."""

    def __init__(self, session: boto3.session.Session | None = None) -> None:
        self._session = session
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def client(self, region: str, endpoint_url: str | None = None) -> Any:
        # boto3 sessions are not thread-safe, clients are: build under a lock,
        # share afterwards between the worker's activity threads.
        key = (region, endpoint_url)
        with self._lock:
            if key not in self._clients:
                session = self._session or boto3.session.Session()
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
        if version_id and version_stage:
            raise errors.InvalidConnectionError(
                "give either a version id or a version stage, not both"
            )
        request: dict[str, Any] = {"SecretId": location.secret_id}
        if version_id:
            request["VersionId"] = version_id
        else:
            request["VersionStage"] = version_stage or "AWSCURRENT"

        client = self.client(location.region, connection.aws_endpoint_url)
        try:
            response = client.get_secret_value(**request)
        except botocore.exceptions.ClientError as exc:
            raise map_client_error(exc, location, request) from None
        except _NETWORK as exc:
            raise errors.SecretStoreUnavailableError(
                f"could not reach Secrets Manager in {location.region} "
                f"({type(exc).__name__}) while reading {location.secret_id!r}: check "
                "the network path to the endpoint (VPC endpoint, proxy, firewall); "
                "retrying with backoff"
            ) from None
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
        ):
            raise errors.AwsIdentityError(
                f"no AWS credentials were found to read {location.secret_id!r}: "
                "configure the worker's AWS identity (environment, profile, web "
                "identity or instance role)"
            ) from None

        return SecretValue(
            values=parse_secret(response, location),
            label=repr(location.secret_id),
            arn=response.get("ARN"),
            version_id=response.get("VersionId"),
            version_stages=tuple(response.get("VersionStages", ())),
            read_at=datetime.now(UTC),
        )

    def describe(self, connection: ConnectionDescription) -> SecretDescription:
        """DescribeSecret: the secret's versions and rotation state, never its value."""
        location = locate(connection.secret_arn, connection.region)
        client = self.client(location.region, connection.aws_endpoint_url)
        request = {"SecretId": location.secret_id}
        try:
            response = client.describe_secret(**request)
        except botocore.exceptions.ClientError as exc:
            raise map_client_error(exc, location, request) from None
        except _NETWORK as exc:
            raise errors.SecretStoreUnavailableError(
                f"could not reach Secrets Manager in {location.region} "
                f"({type(exc).__name__}) while describing {location.secret_id!r}: "
                "check the network path to the endpoint; retrying with backoff"
            ) from None
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
        ):
            raise errors.AwsIdentityError(
                f"no AWS credentials were found to describe {location.secret_id!r}: "
                "configure the worker's AWS identity"
            ) from None
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


def parse_secret(response: dict[str, Any], location: SecretLocation) -> dict[str, Any]:
    """The secret's key/value pairs; the error never quotes the secret's text."""
    label = repr(location.secret_id)
    if "SecretString" not in response:
        raise errors.SecretFormatError(
            f"secret {label} holds binary data, not a JSON object: store the "
            "credentials as a JSON object of key/value pairs"
        )
    try:
        values = json.loads(response["SecretString"])
    except ValueError:
        raise errors.SecretFormatError(
            f"secret {label} is not JSON: store the credentials as a JSON object "
            'such as {"username": "...", "password": "..."} (the secret\'s '
            "'Key/value' tab in the console)"
        ) from None
    if not isinstance(values, dict):
        raise errors.SecretFormatError(
            f"secret {label} is JSON but not an object (it is a "
            f"{type(values).__name__}): store the credentials as key/value pairs"
        )
    return values


def _error_code(exc: botocore.exceptions.ClientError) -> tuple[str, str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), str(error.get("Message", "")), int(status)


def map_client_error(
    exc: botocore.exceptions.ClientError,
    location: SecretLocation,
    request: dict[str, Any],
) -> errors.CredentialError:
    """Translate an AWS error answer into the guide's failure class."""
    code, message, status = _error_code(exc)
    secret = repr(location.secret_id)
    region = f"region {location.region} (taken from {location.region_from})"
    version = request.get("VersionId") or request.get("VersionStage")

    if code == "ResourceNotFoundException":
        if "VersionId" in request or request.get("VersionStage") != "AWSCURRENT":
            if "version" in message.lower() or "staging" in message.lower():
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
    if code in {"AccessDeniedException", "AccessDenied"} or status == 403:
        return errors.SecretAccessDeniedError(
            f"access denied reading secret {secret} in {region}: the AWS identity "
            "in use needs secretsmanager:GetSecretValue (and kms:Decrypt when the "
            "secret uses a customer-managed key) on this secret; `credflow policy` "
            "prints the policy"
        )
    if code == "DecryptionFailure" or "kms" in message.lower():
        return errors.KmsDecryptionError(
            f"Secrets Manager could not decrypt secret {secret} in {region} with "
            "its KMS key: the AWS identity in use needs kms:Decrypt on the key, and "
            "the key must be enabled"
        )
    if code == "InvalidRequestException" and "delet" in message.lower():
        return errors.SecretScheduledForDeletionError(
            f"secret {secret} in {region} is scheduled for deletion and cannot be "
            "read: restore it (RestoreSecret, or Cancel deletion in the console) or "
            "point the connection at another secret"
        )
    if code in _THROTTLING:
        return errors.SecretStoreThrottledError(
            f"Secrets Manager throttled the read of secret {secret} in {region}; "
            "retrying with backoff. If this persists, lower concurrency or raise "
            "the cache lifetime"
        )
    if code in _TRANSIENT or status >= 500:
        return errors.SecretStoreUnavailableError(
            f"Secrets Manager answered {code or status} for secret {secret} in "
            f"{region}; retrying with backoff"
        )
    if code in _BAD_IDENTITY:
        return errors.AwsIdentityError(
            f"AWS rejected the worker's credentials ({code}) while reading secret "
            f"{secret} in {region}: check the access key, session token or role the "
            "worker uses, and the machine's clock"
        )
    return errors.CredentialError(
        f"Secrets Manager refused to read secret {secret} in {region} ({code}): "
        "check the ARN, version and permissions"
    )
