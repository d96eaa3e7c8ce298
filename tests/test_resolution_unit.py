"""ARN parsing, the connection model, the provider factory and error mapping."""

from __future__ import annotations

import botocore.exceptions
import pytest

from credentials import errors
from credentials.arn import locate, parse_arn
from credentials.models import ConnectionDescription
from credentials.providers import provider_for
from credentials.providers.aws import AwsSecretsManagerProvider, map_client_error
from credentials.providers.direct import DirectProvider
from credentials.resolution import resolve

ARN = (
    "arn:aws:secretsmanager:eu-west-2:123456789012:secret:my-postgres-connection-AbCdEf"
)


def test_arn_parts():
    arn = parse_arn(ARN)
    assert (arn.partition, arn.region, arn.account) == (
        "aws",
        "eu-west-2",
        "123456789012",
    )
    assert arn.name == "my-postgres-connection-AbCdEf"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("arn:aws:secretsmanager:eu-west-2:123456789012", "has 5 colon-separated"),
        ("arn:aws:s3:eu-west-2:123456789012:secret:x", "names service 's3'"),
        ("arn:aws:secretsmanager:Europe:123456789012:secret:x", "region 'Europe'"),
        ("arn:aws:secretsmanager:eu-west-2:1234:secret:x", "account '1234'"),
        ("arn:aws:secretsmanager:eu-west-2:123456789012:key:x", "'secret:<name>'"),
        ("arn:amazon:secretsmanager:eu-west-2:123456789012:secret:x", "partition"),
    ],
)
def test_malformed_arn_says_which_part_is_wrong(text, problem):
    with pytest.raises(errors.MalformedArnError, match=problem) as caught:
        parse_arn(text)
    assert "Copy the ARN" in str(caught.value)
    assert caught.value.retryable is False


def test_region_comes_from_the_arn():
    location = locate(ARN, None)
    assert location.region == "eu-west-2"
    assert location.region_from == "the secret ARN"


def test_a_region_contradicting_the_arn_is_a_mistake():
    with pytest.raises(errors.RegionMismatchError, match="'us-east-1'.*'eu-west-2'"):
        locate(ARN, "us-east-1")


def test_a_secret_name_needs_a_region():
    with pytest.raises(errors.InvalidConnectionError, match="no region was given"):
        locate("my-postgres-connection", None)
    location = locate("my-postgres-connection", "us-east-1")
    assert (location.secret_id, location.region) == (
        "my-postgres-connection",
        "us-east-1",
    )


def test_check_names_every_missing_field():
    connection = ConnectionDescription(secret_arn=ARN, username="u")
    with pytest.raises(errors.InvalidConnectionError) as caught:
        connection.check()
    assert "host, database, password" in str(caught.value)


def test_factory_picks_the_provider_for_the_source():
    assert isinstance(provider_for("direct"), DirectProvider)
    assert isinstance(provider_for("aws-secrets-manager"), AwsSecretsManagerProvider)
    assert provider_for("direct") is provider_for("direct")


def test_unsupported_source_lists_the_supported_ones():
    with pytest.raises(errors.UnsupportedSourceError) as caught:
        provider_for("vault")
    assert "'vault'" in str(caught.value)
    assert "'aws-secrets-manager', 'direct'" in str(caught.value)


def test_direct_source_resolves_the_typed_values():
    connection = ConnectionDescription(
        source="direct",
        username="extractor",
        password="typed-PASSWORD",
        host="127.0.0.1",
        database="pagila",
    )
    credential = resolve(connection)
    assert credential.username == "extractor"
    assert credential.password.get_secret_value() == "typed-PASSWORD"
    assert credential.version_id is None
    assert "typed-PASSWORD" not in repr(connection)


def _client_error(code: str, message: str = "", status: int = 400):
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetSecretValue",
    )


@pytest.mark.parametrize(
    ("code", "message", "status", "expected", "retryable"),
    [
        (
            "ResourceNotFoundException",
            "not found",
            400,
            errors.SecretNotFoundError,
            False,
        ),
        ("AccessDeniedException", "denied", 400, errors.SecretAccessDeniedError, False),
        ("AccessDenied", "", 403, errors.SecretAccessDeniedError, False),
        ("DecryptionFailure", "kms", 400, errors.KmsDecryptionError, False),
        (
            "InvalidRequestException",
            "You can't perform this operation on the secret because it was marked "
            "for deletion.",
            400,
            errors.SecretScheduledForDeletionError,
            False,
        ),
        ("ThrottlingException", "", 400, errors.SecretStoreThrottledError, True),
        ("InternalServiceError", "", 500, errors.SecretStoreUnavailableError, True),
        (
            "UnrecognizedClientException",
            "",
            400,
            errors.InvalidAwsCredentialsError,
            False,
        ),
    ],
)
def test_aws_errors_map_to_the_guide_failure_classes(
    code, message, status, expected, retryable
):
    location = locate(ARN, None)
    mapped = map_client_error(
        _client_error(code, message, status),
        location,
        {"SecretId": ARN, "VersionStage": "AWSCURRENT"},
    )
    assert type(mapped) is expected
    assert mapped.retryable is retryable
    assert ARN in str(mapped)
    assert "eu-west-2" in str(mapped)


def test_not_found_names_the_region_searched_and_where_it_came_from():
    mapped = map_client_error(
        _client_error("ResourceNotFoundException"),
        locate(ARN, None),
        {"SecretId": ARN, "VersionStage": "AWSCURRENT"},
    )
    assert "region eu-west-2 (taken from the secret ARN)" in str(mapped)


def test_a_secret_named_after_kms_is_not_a_kms_error():
    location = locate(
        "arn:aws:secretsmanager:eu-west-2:123456789012:secret:kms-db-AbCdEf", None
    )
    request = {"SecretId": location.secret_id, "VersionStage": "AWSCURRENT"}
    denied = map_client_error(
        _client_error("AccessDeniedException", "no access to kms-db-AbCdEf"),
        location,
        request,
    )
    assert type(denied) is errors.SecretAccessDeniedError
    kms = map_client_error(
        _client_error("AccessDeniedException", "Access to KMS is not allowed"),
        location,
        request,
    )
    assert type(kms) is errors.KmsDecryptionError
    busy = map_client_error(
        _client_error("KMSInternalException", "kms fault", 500), location, request
    )
    assert type(busy) is errors.SecretStoreUnavailableError
    assert busy.retryable


def test_the_resolve_retry_policy_retries_exactly_the_transient_errors():
    from workflows.policies import RESOLVE_RETRY

    never = set(RESOLVE_RETRY.non_retryable_error_types)
    assert "SecretStoreThrottledError" not in never
    assert "SecretStoreUnavailableError" not in never
    for name in ("KeyNameError", "RoleAssumptionError", "SecretNotFoundError"):
        assert name in never
