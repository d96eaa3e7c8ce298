"""Values that cannot work are refused by field name, never quoted.

Control characters in AWS keys, endpoint URLs that are not URLs, empty or
unsendable login values, a secret value reused as a host or database name,
and AWS SDK failures whose text can quote a header: each fails at once with a
typed error written by credflow. Secret values stay out of tracebacks rendered
with locals, and are remembered for log redaction as soon as they are read.
"""

from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import resolve as resolve_activity
from activities.errors import connect_failure_sqlstate
from activities.extract import QUERY_ACTIVITIES, _connect_error
from activities.models import ResolveRequest, StepRequest
from credentials import aws_access, errors, iam, redaction
from credentials.arn import locate
from credentials.models import ConnectionDescription, ResolvedCredential
from credentials.providers.aws import (
    AwsSecretsManagerProvider,
    parse_secret,
    plain_key_names,
)
from credentials.providers.base import SecretValue
from credentials.resolution import check_offline, resolve
from services.ports import free_port

ARN = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:db-AbCdEf"
CANARY = "CANARY-7d41c0a9e2"


@pytest.fixture(autouse=True)
def _aws_only_on_loopback(monkeypatch):
    """Any AWS call these tests make by mistake goes to a closed loopback port."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)


class FixedProvider:
    """A secret store that answers every read with the same values."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def read(self, connection, *, version_id=None, version_stage=None):
        return SecretValue(values=dict(self.values), label=repr(ARN), version_id="v1")


def _description(**fields: Any) -> ConnectionDescription:
    base = {
        "secret_arn": ARN,
        "username": "user",
        "password": "pass",
        "host": "db.example",
        "database": "orders",
    }
    return ConnectionDescription.model_validate({**base, **fields})


def _locals_text(exc: BaseException) -> str:
    """The traceback as Sentry or rich would render it: every frame's locals.

    The test's own frame is left out: it holds the values the test typed in.
    """
    assert exc.__traceback__ is not None
    frames = traceback.walk_tb(exc.__traceback__.tb_next)
    return "".join(traceback.StackSummary.extract(frames, capture_locals=True).format())


# 1. AWS keys with control characters, and endpoint URLs that are not URLs.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("session_token", f"{CANARY}\n"),
        ("session_token", f"{CANARY}\nsecond-line"),
        ("secret_access_key", f" {CANARY}"),
        ("secret_access_key", f"{CANARY}\t"),
        ("access_key_id", f"AKIA{CANARY}\r"),
        ("access_key_id", f"AKIA{CANARY}\x7f"),
    ],
)
def test_aws_keys_with_control_characters_are_refused_by_name(field, value):
    access = {
        "mode": "static",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "x" * 40,
        field: value,
    }
    with pytest.raises(errors.InvalidConnectionError) as caught:
        check_offline(_description(aws_access=access))

    assert f"aws_access.{field}" in caught.value.message
    assert CANARY not in caught.value.message
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"aws_endpoint_url": "not a url"}, "aws_endpoint_url"),
        ({"aws_endpoint_url": "ftp://files.example"}, "aws_endpoint_url"),
        ({"aws_endpoint_url": "http://not a host"}, "aws_endpoint_url"),
        (
            {
                "aws_access": {
                    "mode": "assume_role",
                    "role_arn": "r",
                    "sts_endpoint_url": "sts",
                }
            },
            "aws_access.sts_endpoint_url",
        ),
    ],
)
def test_an_endpoint_that_is_not_an_http_url_fails_at_once(fields, name):
    with pytest.raises(errors.InvalidConnectionError) as caught:
        check_offline(_description(**fields))
    assert f"{name} is not an http:// or https:// URL" in caught.value.message

    # Resolution refuses it too, before it reads anything.
    with pytest.raises(errors.InvalidConnectionError):
        resolve(_description(**fields), provider=FixedProvider({}))


def test_loopback_and_vpc_endpoints_are_accepted():
    check_offline(
        _description(
            aws_endpoint_url="http://127.0.0.1:5000",
            aws_access={
                "mode": "assume_role",
                "role_arn": "arn:aws:iam::123456789012:role/r",
                "sts_endpoint_url": "https://vpce-1.sts.eu-west-2.vpce.amazonaws.com",
            },
        )
    )


class RaisingClient:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get_secret_value(self, **request):
        raise self.exc

    describe_secret = get_secret_value
    assume_role = get_secret_value


def _header_error() -> Exception:
    return botocore.exceptions.HTTPClientError(
        error=ValueError(f"Invalid header value b'{CANARY}\\n'")
    )


@pytest.mark.parametrize(
    "exc",
    [
        _header_error(),
        botocore.exceptions.InvalidRegionError(region_name=CANARY),
        botocore.exceptions.SSLError(endpoint_url="https://x", error=CANARY),
    ],
    ids=["http-client", "other-botocore", "ssl"],
)
def test_an_sdk_failure_is_typed_and_never_quotes_its_text(exc):
    provider = AwsSecretsManagerProvider()
    provider.client = lambda *args, **kwargs: RaisingClient(exc)

    with pytest.raises(errors.CredentialError) as caught:
        provider.read(_description())

    err = caught.value
    assert CANARY not in str(err)
    assert type(exc).__name__ in err.message
    assert err.__cause__ is None and err.__suppress_context__
    if isinstance(exc, botocore.exceptions.HTTPClientError):
        assert type(err) is errors.SecretStoreClientError
        assert err.retryable is False
        assert "control character" in err.message


def test_assume_role_maps_an_sdk_failure_without_its_text():
    with pytest.raises(errors.SecretStoreClientError) as caught:
        aws_access.assume_role(
            RaisingClient(_header_error()),
            role_arn="arn:aws:iam::123456789012:role/r",
            external_id=None,
            session_name="s",
            purpose="to read the secret",
        )
    assert CANARY not in str(caught.value)
    assert "HTTPClientError" in caught.value.message
    assert caught.value.__suppress_context__


def test_an_unmapped_exception_in_resolution_goes_out_by_type_only(monkeypatch):
    class Exploding:
        def read(self, connection, *, version_id=None, version_stage=None):
            raise RuntimeError(f"Invalid header value b'{CANARY}\\n'")

    monkeypatch.setattr(resolve_activity, "provider_for", lambda source: Exploding())
    request = ResolveRequest(connection=_description(), step="preflight")
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(resolve_activity.resolve_credentials, request)

    assert caught.value.type == "RuntimeError"
    assert "unexpected RuntimeError" in caught.value.message
    assert CANARY not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_retryable_failure_says_it_was_retried_not_that_it_will_be():
    location = locate(ARN, None)
    throttled = botocore.exceptions.ClientError(
        {"Error": {"Code": "ThrottlingException"}}, "GetSecretValue"
    )
    provider = AwsSecretsManagerProvider()
    for exc in (
        throttled,
        botocore.exceptions.EndpointConnectionError(endpoint_url="x"),
    ):
        provider.client = lambda *args, exc=exc, **kwargs: RaisingClient(exc)
        with pytest.raises(errors.CredentialError) as caught:
            provider._call(_description(), location, "get_secret_value", {})
        assert caught.value.retryable
        assert "(retried with backoff)" in caught.value.message
        assert "retrying" not in caught.value.message


# 2. Secret values stay wrapped in the locals of a traceback.


def test_a_resolution_error_leaves_no_secret_in_the_locals_of_its_traceback():
    provider = FixedProvider({"user": "u", "pass": CANARY, "port": "not-a-port"})
    with pytest.raises(errors.DatabaseFieldError) as caught:
        resolve(_description(port_key="port"), provider=provider)
    assert "resolve" in _locals_text(caught.value)
    assert CANARY not in _locals_text(caught.value)

    # A missing key name raises inside substitution, after the password was read.
    provider = FixedProvider({"pass": CANARY})
    with pytest.raises(errors.KeyNameError) as caught:
        resolve(_description(), provider=provider)
    assert "substitute" in _locals_text(caught.value)
    assert CANARY not in _locals_text(caught.value)


def test_a_failed_step_leaves_no_password_in_the_locals_of_its_traceback(tmp_path):
    credential = ResolvedCredential(
        source="direct",
        auth_type="basic",
        username="nobody",
        password=SecretStr(CANARY),
        host="127.0.0.1",
        port=free_port(),  # nothing listens: the connection is refused
        database="d",
        connect_timeout_seconds=2,
        read_at=datetime.now(UTC),
    )
    request = StepRequest(
        step="preflight", credential=credential, output_dir=str(tmp_path), run_name="r"
    )
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(QUERY_ACTIVITIES[0], request)

    assert caught.value.type == "DatabaseUnreachable"
    assert "run_step" in _locals_text(caught.value)
    assert CANARY not in _locals_text(caught.value)


# 3. A secret value in a field that error messages show.


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"database": None, "database_key": "pass"}, "the database (key 'pass')"),
        ({"host": None, "host_key": "pass"}, "the host (key 'pass')"),
        ({"port_key": "pass"}, "the port (key 'pass')"),
        ({"username": "pass"}, "the username (key 'pass')"),
        ({"database": None, "database_key": "copy"}, "the database (key 'copy')"),
        ({"host": CANARY}, "the host (typed into the description)"),
    ],
)
def test_a_plain_field_holding_the_password_is_refused_by_name(fields, named):
    provider = FixedProvider({"user": "u", "pass": CANARY, "copy": CANARY})
    with pytest.raises(errors.InvalidConnectionError) as caught:
        resolve(_description(**fields), provider=provider)

    message = caught.value.message
    assert f"{named} and the password (key 'pass') have the same value" in message
    assert CANARY not in message
    if "typed" not in named:  # a typed-in host is in the description's repr
        assert CANARY not in _locals_text(caught.value)


def test_a_typed_in_username_equal_to_the_password_is_refused():
    connection = ConnectionDescription(
        source="direct", username=CANARY, password=CANARY, host="h", database="d"
    )
    with pytest.raises(errors.InvalidConnectionError) as caught:
        resolve(connection)
    assert "the username (typed into the description)" in caught.value.message
    assert CANARY not in caught.value.message


# 5. Login values the database cannot use.


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"user": "u", "pass": ""}, "the password (key 'pass' of secret"),
        ({"user": "", "pass": CANARY}, "the username (key 'user' of secret"),
        ({"user": "u", "pass": f"{CANARY}\x00tail"}, "holds a NUL character"),
        ({"user": "u", "pass": f"{CANARY}\ud800"}, "not valid Unicode"),
    ],
    ids=["empty-password", "empty-username", "nul", "lone-surrogate"],
)
def test_a_login_value_the_database_cannot_use_is_refused(values, expected):
    with pytest.raises(errors.CredentialValueError) as caught:
        resolve(_description(), provider=FixedProvider(values))
    assert expected in caught.value.message
    assert caught.value.retryable is False
    assert CANARY not in caught.value.message


def test_a_nul_in_a_typed_in_password_is_refused():
    connection = ConnectionDescription(
        source="direct", username="u", password=f"{CANARY}\x00", host="h", database="d"
    )
    with pytest.raises(errors.CredentialValueError) as caught:
        resolve(connection)
    assert "the password (typed into the description) holds a NUL" in str(caught.value)
    assert CANARY not in str(caught.value)


def test_a_missing_database_is_its_own_non_retryable_error():
    import psycopg

    exc = psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 '
        'failed: FATAL:  database "ordres" does not exist'
    )
    assert connect_failure_sqlstate(exc) == "3D000"
    credential = ResolvedCredential(
        source="direct",
        auth_type="basic",
        username="u",
        password=SecretStr("p"),
        host="db.example",
        port=5432,
        database="ordres",
        read_at=datetime.now(UTC),
    )
    err = _connect_error(exc, credential, "schemas", "db.example:5432/ordres")
    assert err.type == "DatabaseNotFound"
    assert err.non_retryable
    assert "db.example:5432 has no database 'ordres'" in err.message
    assert "database_key" in err.message


# 6. Values read are remembered for log redaction at once.


def test_secret_values_are_remembered_as_soon_as_they_are_read():
    password, nested, username = f"{CANARY}-pw", f"{CANARY}-nested", "login_user_1"
    response = {
        "SecretString": (
            f'{{"user": "{username}", "pass": "{password}", "db": {{"p": "{nested}"}}}}'
        )
    }
    parse_secret(response, locate(ARN, None), plain_keys={"user"})

    assert redaction.redact(password) == redaction.MASK
    assert redaction.redact(nested) == redaction.MASK
    # The user name stays readable in log lines.
    assert redaction.redact(username) == username


def test_rds_metadata_and_the_plain_fields_keys_stay_readable_in_logs():
    connection = _description(
        username="username", password="password", host=None, host_key="host"
    )
    readable = {
        "username": "rds_app_user_7",
        "engine": "postgres",
        "host": "db-7.internal.example",
        "dbInstanceIdentifier": "orders-db-7",
    }
    password = f"{CANARY}-rds"
    response = {"SecretString": json.dumps({**readable, "password": password})}
    parse_secret(response, locate(ARN, None), plain_keys=plain_key_names(connection))

    assert redaction.redact(password) == redaction.MASK
    for value in readable.values():
        assert redaction.redact(value) == value

    # The password's key is remembered even when it is named like metadata.
    odd = _description(username="username", password="host", host="h")
    assert "host" not in plain_key_names(odd)


def test_an_iam_token_and_assumed_role_keys_are_remembered(monkeypatch):
    session = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="x",
        region_name="eu-west-2",
    )
    token = iam.generate_token(
        session, host="h.example", port=5432, user="u", region="eu-west-2", identity="t"
    )
    assert redaction.redact(token.token) == redaction.MASK

    answer = {
        "AccessKeyId": "ASIAEXAMPLE",
        "SecretAccessKey": f"{CANARY}-role-secret",
        "SessionToken": f"{CANARY}-role-token",
        "Expiration": datetime(2099, 1, 1, tzinfo=UTC),
    }
    monkeypatch.setattr(iam, "assume_role", lambda *args, **kwargs: answer)
    iam.role_session(
        session,
        role_arn="r",
        external_id=None,
        region="eu-west-2",
        sts_endpoint_url=None,
    )
    assert redaction.redact(answer["SecretAccessKey"]) == redaction.MASK
    assert redaction.redact(answer["SessionToken"]) == redaction.MASK

    answer = {**answer, "SessionToken": f"{CANARY}-read-token"}
    monkeypatch.setattr(aws_access, "assume_role", lambda *args, **kwargs: answer)
    aws_access.forget_sessions()
    role = aws_access.session_for(
        ConnectionDescription(
            secret_arn=ARN, aws_access={"mode": "assume_role", "role_arn": "r"}
        ).aws_access,
        "eu-west-2",
    )
    role.get_credentials().get_frozen_credentials()  # the deferred assumption
    aws_access.forget_sessions()
    assert redaction.redact(answer["SessionToken"]) == redaction.MASK


# 7. A plain secret's trailing line break.


@pytest.mark.parametrize(
    ("text", "password"),
    [
        ("pw-value\n", "pw-value"),
        ("pw-value\r\n", "pw-value"),
        ("pw-value\n\n", "pw-value\n"),
        ("pw-value", "pw-value"),
    ],
)
def test_a_plain_secret_loses_one_trailing_line_break(text, password):
    values = parse_secret({"SecretString": text}, locate(ARN, None), "plain")
    assert values == {"password": password}


def test_a_plain_secret_that_is_only_a_line_break_is_empty():
    with pytest.raises(errors.SecretFormatError, match="is empty"):
        parse_secret({"SecretString": "\n"}, locate(ARN, None), "plain")
