"""Error classes that moto cannot produce, version confusion, and token expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import botocore.exceptions
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError

from activities.extract import _refuse_expired
from credentials import errors, iam
from credentials.arn import locate
from credentials.models import ConnectionDescription, ResolvedCredential
from credentials.providers.aws import check_version_reference, map_client_error
from credentials.resolution import check_auth_type

ARN = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:db-AbCdEf"
VERSION = "0b6e2b7e-3f7c-4f6b-9c41-1a2b3c4d5e6f"


def _client_error(code: str, message: str, status: int) -> Exception:
    return botocore.exceptions.ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetSecretValue",
    )


def _map(code: str, message: str = "", status: int = 400):
    return map_client_error(
        _client_error(code, message, status),
        locate(ARN, None),
        {"SecretId": ARN, "VersionId": VERSION},
    )


def test_kms_refusal_is_a_kms_error_not_access_denied():
    err = _map("AccessDeniedException", "Access to KMS is not allowed", 400)
    assert type(err) is errors.KmsDecryptionError
    assert err.retryable is False
    assert "kms:Decrypt" in err.message
    assert f"version {VERSION!r}" in err.message
    assert "region eu-west-2 (taken from the secret ARN)" in err.message


def test_decryption_failure_is_a_kms_error():
    err = _map("DecryptionFailure", "Secrets Manager can't decrypt", 400)
    assert type(err) is errors.KmsDecryptionError


def test_throttling_is_retryable():
    err = _map("ThrottlingException", "Rate exceeded", 400)
    assert type(err) is errors.SecretStoreThrottledError
    assert err.retryable is True
    # The last attempt's message is the one the user reads: past tense.
    assert "(retried with backoff)" in err.message
    assert "retrying" not in err.message


def test_xml_error_body_is_read_for_its_code():
    xml = (
        '<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>'
        "InvalidClientTokenId</Code><Message>The security token included in the "
        "request is invalid.</Message></Error></Errors></ErrorResponse>"
    )
    err = _map("403", xml, 403)
    assert type(err) is errors.InvalidAwsCredentialsError
    assert "<" not in err.message  # no raw XML reaches the user

    denied = _map("403", xml.replace("InvalidClientTokenId", "AccessDenied"), 403)
    assert type(denied) is errors.SecretAccessDeniedError
    assert "secretsmanager:GetSecretValue" in denied.message


@pytest.mark.parametrize("stage", ["AWSCURRENT", "AWSPENDING", "v1"])
def test_a_stage_given_as_version_id_says_which_is_which(stage):
    with pytest.raises(errors.VersionReferenceError) as caught:
        check_version_reference(stage, None)
    assert f"version_id {stage!r} looks like a version stage" in caught.value.message
    assert f"set version_stage to {stage!r}" in caught.value.message
    assert caught.value.retryable is False


def test_a_version_id_given_as_stage_says_which_is_which():
    with pytest.raises(errors.VersionReferenceError) as caught:
        check_version_reference(None, VERSION)
    assert "is a version id, not a stage" in caught.value.message
    assert f"set version_id to {VERSION!r}" in caught.value.message


def test_a_real_version_id_and_custom_stage_are_accepted():
    check_version_reference(VERSION, None)
    check_version_reference(None, "MYSTAGE")


def _description(**fields) -> ConnectionDescription:
    base = {"secret_arn": ARN, "host": "h", "database": "d", "username": "u"}
    return ConnectionDescription.model_validate({**base, **fields})


def test_iam_auth_refuses_a_connection_without_tls():
    connection = _description(
        auth_type="iam_user",
        access_key_id_key="a",
        secret_access_key_key="s",
        sslmode="disable",
    )
    with pytest.raises(errors.InvalidConnectionError, match="only over TLS"):
        check_auth_type(connection)


def test_iam_role_needs_a_role_arn():
    with pytest.raises(errors.InvalidConnectionError, match="role_arn"):
        _description(auth_type="iam_role").check()


def test_plain_secret_is_only_for_basic_auth():
    connection = _description(
        auth_type="iam_user",
        secret_format="plain",
        access_key_id_key="a",
        secret_access_key_key="s",
    )
    with pytest.raises(errors.InvalidConnectionError, match="secret_format 'plain'"):
        check_auth_type(connection)


def test_token_records_fifteen_minutes_and_hides_itself():
    session = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="x",
        region_name="eu-west-2",
    )
    before = datetime.now(UTC)
    token = iam.generate_token(
        session, host="h.example", port=5432, user="u", region="eu-west-2", identity="t"
    )
    assert "X-Amz-Expires=900" in token.token
    assert before + timedelta(seconds=899) <= token.expires_at
    assert token.expires_at <= datetime.now(UTC) + timedelta(seconds=900)
    assert token.token not in repr(token)


def test_a_step_never_starts_with_an_expired_token():
    credential = ResolvedCredential(
        source="aws-secrets-manager",
        auth_type="iam_user",
        username="u",
        password=SecretStr("token"),
        host="h",
        port=5432,
        database="d",
        read_at=datetime.now(UTC) - timedelta(minutes=16),
        expires_at=datetime.now(UTC) - timedelta(minutes=1),
    )
    with pytest.raises(ApplicationError) as caught:
        _refuse_expired(credential, "tables", "h:5432/d")
    assert caught.value.type == "CredentialExpired"
    assert "expired at" in caught.value.message
    fresh = credential.model_copy(
        update={"expires_at": datetime.now(UTC) + timedelta(minutes=14)}
    )
    _refuse_expired(fresh, "tables", "h:5432/d")


def test_an_sts_service_fault_is_retried_a_refusal_is_not():
    import botocore.exceptions

    from credentials import aws_access
    from credentials import errors as credential_errors

    class Sts:
        def __init__(self, code: str, status: int) -> None:
            self.code, self.status = code, status

        def assume_role(self, **request):
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": self.code, "Message": "x"},
                    "ResponseMetadata": {"HTTPStatusCode": self.status},
                },
                "AssumeRole",
            )

    def attempt(code: str, status: int):
        with pytest.raises(credential_errors.CredentialError) as caught:
            aws_access.assume_role(
                Sts(code, status),
                role_arn="arn:aws:iam::123456789012:role/r",
                external_id=None,
                session_name="s",
                purpose="to read the secret",
            )
        return caught.value

    fault = attempt("InternalFailure", 500)
    assert type(fault) is credential_errors.SecretStoreUnavailableError
    assert fault.retryable
    refusal = attempt("AccessDenied", 403)
    assert type(refusal) is credential_errors.RoleAssumptionError
    assert not refusal.retryable


@pytest.mark.parametrize("name", ["", ".", "..", "../escape", "a/b", "a\\\\b"])
def test_a_run_name_cannot_leave_the_output_folder(name):
    from activities.extract import output_folder
    from activities.models import StepRequest

    request = StepRequest.model_construct(
        step="tables", output_dir="/tmp/out", run_name=name
    )
    with pytest.raises(ApplicationError) as caught:
        output_folder(request)
    assert caught.value.type == "InvalidRunName"
    assert caught.value.non_retryable
