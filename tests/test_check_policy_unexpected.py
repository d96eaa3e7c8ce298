"""`credflow check` and `credflow policy` never print a traceback or its text.

An exception credflow did not foresee becomes a FAIL line (check) or one
message (policy) that names its type only: its text can quote a request
header or a value read from the secret.
"""

from __future__ import annotations

import argparse
import json
import re

import pytest

from cli import check, policy
from cli.main import main
from credentials.models import ConnectionDescription
from credentials.providers.aws import AwsSecretsManagerProvider

ARN = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:db-AbCdEf"
CANARY = "CANARY-0f3b9e51d7"
DESCRIPTION = {
    "secret_arn": ARN,
    "username": "user",
    "password": "pass",
    "host": "127.0.0.1",
    "database": "orders",
}


@pytest.fixture(autouse=True)
def _aws_only_on_loopback(monkeypatch):
    """Any AWS call these tests make by mistake goes to a closed loopback port."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)


class ExplodingProvider(AwsSecretsManagerProvider):
    def identity(self, connection):
        raise RuntimeError(f"header value b'{CANARY}\\n'")


def test_an_unexpected_exception_in_check_is_a_fail_line_with_its_type_only():
    lines: list[str] = []
    checklist = check.Checklist(
        ConnectionDescription.model_validate(DESCRIPTION),
        ExplodingProvider(),
        printer=lines.append,
    )
    results = checklist.run()

    assert checklist.failed
    last = results[-1]
    assert (last.name, last.status) == ("checklist", "FAIL")
    assert "unexpected RuntimeError" in last.reason
    assert CANARY not in "\n".join(lines)


def test_an_unexpected_exception_in_policy_names_its_type_only(monkeypatch, capsys):
    def explode(*args, **kwargs):
        raise RuntimeError(CANARY)

    monkeypatch.setattr(AwsSecretsManagerProvider, "describe", explode)
    args = argparse.Namespace(database_login=False, db_user=None, db_resource_id=None)
    connection = ConnectionDescription.model_validate(DESCRIPTION)

    # DescribeSecret failing is a note; the policy is still printed.
    assert policy.main(args, connection) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["Statement"][0]["Resource"] == ARN
    assert "DescribeSecret failed (RuntimeError)" in err
    assert CANARY not in out + err

    monkeypatch.setattr(policy, "resolver_policy", explode)
    assert policy.main(args, connection) == 1
    out, err = capsys.readouterr()
    assert "unexpected RuntimeError" in err
    assert CANARY not in out + err
    assert "Traceback" not in err


def test_a_session_token_with_a_line_break_is_refused_before_any_call(tmp_path, capsys):
    path = tmp_path / "connection.json"
    access = {
        "mode": "static",
        "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "x" * 40,
        "session_token": f"{CANARY}\n",
    }
    path.write_text(json.dumps({**DESCRIPTION, "aws_access": access}))
    refusal = "aws_access.session_token has leading or trailing whitespace"

    # check: the description's own check fails, naming the field.
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert re.search(rf"^FAIL\s+connection description\s+{refusal}", out, re.M)
    assert CANARY not in out + err

    # policy: refused before it starts.
    with pytest.raises(SystemExit) as caught:
        main(["policy", str(path)])
    assert refusal in str(caught.value)
    assert CANARY not in str(caught.value) + "".join(capsys.readouterr())
