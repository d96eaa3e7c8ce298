"""Each failure class of the troubleshooting guide, raised against moto's server."""

from __future__ import annotations

import json
import uuid

import pytest

from credentials import errors
from credentials.models import ConnectionDescription
from credentials.providers.aws import AwsSecretsManagerProvider
from credentials.resolution import resolve

pytestmark = pytest.mark.integration

REGION = "us-east-1"
PASSWORD = "pw-value-never-shown"


@pytest.fixture
def secret(aws):
    client = aws.client("secretsmanager", region=REGION)
    name = f"errors-{uuid.uuid4().hex[:8]}"
    answer = client.create_secret(
        Name=name,
        SecretString=json.dumps(
            {"db_user": "app", "db_password": PASSWORD, "db": {"host": "h"}}
        ),
    )
    return answer["ARN"]


def _resolve(**fields):
    base = {"host": "h", "database": "d", "username": "db_user"}
    base.setdefault("password", "db_password")
    connection = ConnectionDescription.model_validate({**base, **fields})
    return resolve(connection, provider=AwsSecretsManagerProvider())


def _fails(error_type, **fields):
    with pytest.raises(errors.CredentialError) as caught:
        _resolve(**fields)
    assert type(caught.value) is error_type, caught.value.message
    assert PASSWORD not in caught.value.message
    return caught.value


def test_secret_not_found_names_arn_and_region(secret):
    missing = secret.rsplit(":", 1)[0] + ":nope-AbCdEf"
    err = _fails(errors.SecretNotFoundError, secret_arn=missing)
    assert err.retryable is False
    assert repr(missing) in err.message
    assert "region us-east-1 (taken from the secret ARN)" in err.message
    assert "Check the ARN for typos" in err.message


def test_secret_scheduled_for_deletion(aws, secret):
    aws.client("secretsmanager").delete_secret(SecretId=secret, RecoveryWindowInDays=7)
    err = _fails(errors.SecretScheduledForDeletionError, secret_arn=secret)
    assert err.retryable is False
    assert "restore it" in err.message


def test_missing_version_stage_lists_the_stages_and_ids(secret):
    err = _fails(errors.VersionNotFoundError, secret_arn=secret, version_stage="OLD")
    assert "has no version stage 'OLD'" in err.message
    assert "AWSCURRENT" in err.message
    assert err.retryable is False


def test_stage_given_as_version_id(secret):
    err = _fails(
        errors.VersionReferenceError, secret_arn=secret, version_id="AWSCURRENT"
    )
    assert "looks like a version stage" in err.message


def test_bad_key_names_point_at_the_near_match(secret):
    err = _fails(errors.KeyNameError, secret_arn=secret, username="DB_USER ")
    assert "did you mean 'db_user'?" in err.message
    assert "'db_password'" in err.message  # key names are listed, values never


def test_password_typed_where_its_key_name_belongs_is_not_echoed(secret):
    err = _fails(errors.KeyNameError, secret_arn=secret, password=PASSWORD)
    assert f"({len(PASSWORD)} characters)" in err.message


def test_nested_key_by_path(secret):
    credential = _resolve(secret_arn=secret, host=None, host_key="db.host")
    assert credential.host == "h"


def test_bad_arn(secret):
    err = _fails(errors.MalformedArnError, secret_arn=secret.replace(":secret:", ":x:"))
    assert "is malformed" in err.message


def test_region_mismatch(secret):
    err = _fails(errors.RegionMismatchError, secret_arn=secret, region="eu-west-1")
    assert "contradicts the secret ARN" in err.message


def test_unreachable_endpoint_is_retryable(secret):
    err = _fails(
        errors.SecretStoreUnavailableError,
        secret_arn=secret,
        aws_endpoint_url="http://127.0.0.1:9",
    )
    assert err.retryable is True
