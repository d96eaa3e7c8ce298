"""Each auth type and each way of reaching the secret store, end to end on moto.

For the IAM auth types the generated token is checked, not used: its SigV4
signature is recomputed from the signing keys, and its lifetime read from the
token itself (moto has no RDS endpoint to log in to).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from credentials import errors, iam
from credentials.models import ConnectionDescription
from credentials.providers.aws import AwsSecretsManagerProvider
from credentials.resolution import resolve
from tests.integration.sigv4 import parse_token, verify_token

pytestmark = pytest.mark.integration

REGION = "us-east-1"
DB_HOST = "mydb.abc123xyz.us-east-1.rds.amazonaws.com"


def _secret(moto, values, **kwargs) -> str:
    client = moto.client("secretsmanager", region=REGION)
    name = f"auth-{uuid.uuid4().hex[:8]}"
    if isinstance(values, bytes):
        return client.create_secret(Name=name, SecretBinary=values, **kwargs)["ARN"]
    text = values if isinstance(values, str) else json.dumps(values)
    return client.create_secret(Name=name, SecretString=text, **kwargs)["ARN"]


def _resolve(**fields):
    fields.setdefault("host", DB_HOST)
    fields.setdefault("database", "postgres")
    return resolve(
        ConnectionDescription.model_validate(fields),
        provider=AwsSecretsManagerProvider(),
    )


def test_basic_substitutes_the_key_names(aws):
    arn = _secret(aws, {"u": "app", "p": "s3cret!", "port": "6432"})
    credential = _resolve(secret_arn=arn, username="u", password="p", port_key="port")
    assert credential.username == "app"
    assert credential.password.get_secret_value() == "s3cret!"
    assert credential.port == 6432
    assert credential.expires_at is None


def test_plain_text_secret_is_the_password_alone(aws):
    arn = _secret(aws, "just-the-password")
    credential = _resolve(secret_arn=arn, secret_format="plain", username="app")
    assert credential.username == "app"
    assert credential.password.get_secret_value() == "just-the-password"


def test_binary_secret_holding_a_json_object_is_read(aws):
    arn = _secret(aws, json.dumps({"u": "app", "p": "pw"}).encode())
    credential = _resolve(secret_arn=arn, username="u", password="p")
    assert credential.password.get_secret_value() == "pw"


def test_binary_secret_that_is_not_json_is_a_format_error(aws):
    arn = _secret(aws, b"\x00\xff\x10binary")
    with pytest.raises(errors.SecretFormatError, match="binary data that is not UTF-8"):
        _resolve(secret_arn=arn, username="u", password="p")


def test_rds_generated_secret_gives_host_and_port_and_says_dbname_is_missing(aws):
    arn = _secret(
        aws,
        {
            "username": "app",
            "password": "pw",
            "engine": "postgres",
            "host": DB_HOST,
            "port": 5432,
        },
    )
    credential = _resolve(
        secret_arn=arn,
        username="username",
        password="password",
        host=None,
        host_key="host",
        port_key="port",
    )
    assert (credential.host, credential.port) == (DB_HOST, 5432)
    with pytest.raises(errors.DatabaseFieldError) as caught:
        _resolve(
            secret_arn=arn,
            username="username",
            password="password",
            database=None,
            database_key="dbname",
        )
    assert "the database name is missing from this secret" in caught.value.message
    assert "'engine'" in caught.value.message  # lists the key names it has
    assert "pw" not in caught.value.message


def test_iam_user_token_is_signed_by_the_users_keys_and_lives_15_minutes(aws):
    iam_client = aws.client("iam")
    user = f"db-user-{uuid.uuid4().hex[:6]}"
    iam_client.create_user(UserName=user)
    key = iam_client.create_access_key(UserName=user)["AccessKey"]
    arn = _secret(
        aws,
        {
            "db_user": "app_iam",
            "akid": key["AccessKeyId"],
            "sak": key["SecretAccessKey"],
        },
    )
    before = datetime.now(UTC).replace(microsecond=0)
    credential = _resolve(
        secret_arn=arn,
        auth_type="iam_user",
        username="db_user",
        access_key_id_key="akid",
        secret_access_key_key="sak",
        port=5432,
    )
    token = credential.password.get_secret_value()
    parsed = parse_token(token)
    assert parsed.host == f"{DB_HOST}:5432"
    assert parsed.query["Action"] == "connect"
    assert parsed.query["DBUser"] == "app_iam"
    assert parsed.query["X-Amz-Expires"] == "900"
    assert parsed.access_key_id == key["AccessKeyId"]
    assert parsed.scope_region == REGION and parsed.scope_service == "rds-db"
    assert before <= parsed.signed_at <= datetime.now(UTC)
    verify_token(token, key["SecretAccessKey"])
    assert credential.sslmode == "require"
    assert credential.expires_at is not None
    lifetime = credential.expires_at - parsed.signed_at
    assert timedelta(seconds=899) <= lifetime <= timedelta(seconds=901)


def test_iam_role_token_is_signed_by_the_assumed_roles_credentials(aws, monkeypatch):
    role_arn = aws.client("iam").create_role(
        RoleName=f"db-role-{uuid.uuid4().hex[:6]}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"sts:ExternalId": "ext-42"}},
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    arn = _secret(aws, {"db_user": "app_role"})
    seen: list[dict] = []
    real = iam.assume_role

    def spy(sts, **kwargs):
        seen.append({"kwargs": kwargs, "credentials": real(sts, **kwargs)})
        return seen[-1]["credentials"]

    monkeypatch.setattr(iam, "assume_role", spy)
    credential = _resolve(
        secret_arn=arn,
        auth_type="iam_role",
        username="db_user",
        role_arn=role_arn,
        external_id="ext-42",
    )
    assert seen[0]["kwargs"]["role_arn"] == role_arn
    assert seen[0]["kwargs"]["external_id"] == "ext-42"
    assumed = seen[0]["credentials"]
    token = credential.password.get_secret_value()
    parsed = parse_token(token)
    assert parsed.query["DBUser"] == "app_role"
    assert parsed.access_key_id == assumed["AccessKeyId"]
    assert parsed.query["X-Amz-Security-Token"] == assumed["SessionToken"]
    assert parsed.query["X-Amz-Expires"] == "900"
    verify_token(token, assumed["SecretAccessKey"])


def test_each_resolution_makes_a_fresh_token(aws, monkeypatch):
    from credentials import iam

    made = []
    real = iam.generate_token

    def counting(*args, **kwargs):
        token = real(*args, **kwargs)
        made.append(token)
        return token

    monkeypatch.setattr(iam, "generate_token", counting)
    arn = _secret(aws, {"u": "app", "a": "AKIAEXAMPLEEXAMPLE01", "s": "x" * 40})
    fields = dict(
        secret_arn=arn,
        auth_type="iam_user",
        username="u",
        access_key_id_key="a",
        secret_access_key_key="s",
    )
    first = _resolve(**fields)
    second = _resolve(**fields)
    # One token signed per resolution, none reused from an earlier one.
    assert len(made) == 2
    assert first.password.get_secret_value() == made[0].token
    assert second.password.get_secret_value() == made[1].token
    assert second.expires_at >= first.expires_at


# Reaching the secret store.


def test_static_keys_act_as_the_given_user(aws):
    arn = _secret(aws, {"u": "app", "p": "pw"})
    credential = _resolve(
        secret_arn=arn,
        username="u",
        password="p",
        aws_access={
            "mode": "static",
            "access_key_id": "AKIASTATICEXAMPLE001",
            "secret_access_key": "static-secret",
        },
    )
    assert credential.password.get_secret_value() == "pw"


def test_named_profile_is_read_from_the_config_file(aws, tmp_path, monkeypatch):
    credentials_file = tmp_path / "credentials"
    credentials_file.write_text(
        "[reader]\naws_access_key_id = AKIAPROFILEEXAMPLE01\n"
        "aws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    # Only the profile may provide keys.
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    arn = _secret(aws, {"u": "app", "p": "pw"})
    credential = _resolve(
        secret_arn=arn,
        username="u",
        password="p",
        aws_access={"mode": "profile", "profile": "reader"},
    )
    assert credential.username == "app"

    with pytest.raises(errors.AwsIdentityError, match="profile 'nope' is not"):
        _resolve(
            secret_arn=arn,
            username="u",
            password="p",
            aws_access={"mode": "profile", "profile": "nope"},
        )


def test_default_chain_without_credentials_says_what_to_configure(aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    arn = _secret(aws, {"u": "app", "p": "pw"})
    with pytest.raises(errors.AwsIdentityError) as caught:
        _resolve(secret_arn=arn, username="u", password="p")
    assert "boto3's default credential chain" in caught.value.message
    assert caught.value.retryable is False


def test_assumed_role_credentials_refresh_before_they_expire(aws):
    role_arn = aws.client("iam").create_role(
        RoleName=f"reader-{uuid.uuid4().hex[:6]}",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "*"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    arn = _secret(aws, {"u": "app", "p": "pw"})
    access = {
        "mode": "assume_role",
        "role_arn": role_arn,
        "external_id": "ext-1",
        "sts_endpoint_url": aws.endpoint_url,
    }
    connection = ConnectionDescription.model_validate(
        dict(
            secret_arn=arn,
            username="u",
            password="p",
            host=DB_HOST,
            database="postgres",
            aws_access=access,
        )
    )
    provider = AwsSecretsManagerProvider()
    resolve(connection, provider=provider)
    session = provider.session(REGION, connection.aws_access)
    refreshable = session._session._credentials
    first = refreshable.get_frozen_credentials().access_key

    # Pretend the hour passed: botocore must assume the role again by itself.
    refreshable._expiry_time = datetime.now(UTC) - timedelta(seconds=1)
    assert resolve(connection, provider=provider).username == "app"
    assert refreshable.get_frozen_credentials().access_key != first
    assert refreshable._expiry_time > datetime.now(UTC) + timedelta(minutes=30)


def test_service_endpoint_variable_is_honoured(aws, monkeypatch):
    arn = _secret(aws, {"u": "app", "p": "pw"})
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws.endpoint_url)
    assert _resolve(secret_arn=arn, username="u", password="p").username == "app"


def test_connection_endpoint_wins_over_the_environment(aws, monkeypatch):
    arn = _secret(aws, {"u": "app", "p": "pw"})
    # A dead endpoint in the environment: only the connection's may be used.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    credential = _resolve(
        secret_arn=arn, username="u", password="p", aws_endpoint_url=aws.endpoint_url
    )
    assert credential.username == "app"


def test_secret_name_with_region_is_found(aws):
    arn = _secret(aws, {"u": "app", "p": "pw"})
    name = arn.split(":secret:", 1)[1].rsplit("-", 1)[0]
    credential = _resolve(secret_arn=name, region=REGION, username="u", password="p")
    assert credential.secret_arn == arn
