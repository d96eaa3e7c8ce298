"""`credflow check` on a good connection description and on each bad one.

The secret lives in moto's server; the database checks log in to the real
PostgreSQL cluster.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from cli.main import main
from services.ports import free_port

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture
def login(pg, aws):
    """A login role on the cluster and a secret that holds its credentials."""
    role = f"checker_{uuid.uuid4().hex[:8]}"
    password = f"p@ss:{uuid.uuid4().hex}"
    pg.create_login_role(role, password)
    client = aws.client("secretsmanager", region=REGION)
    arn = client.create_secret(
        Name=f"check-{role}",
        SecretString=json.dumps({"user": role, "pass": password}),
    )["ARN"]
    return {"role": role, "password": password, "arn": arn, "client": client}


def _description(pg, login, **overrides):
    description = {
        "secret_arn": login["arn"],
        "username": "user",
        "password": "pass",
        "host": pg.host,
        "port": pg.port,
        "database": "postgres",
        "connect_timeout_seconds": 3,
    }
    description.update(overrides)
    return {k: v for k, v in description.items() if v is not None}


def _check(tmp_path, capsys, description) -> tuple[int, dict[str, tuple[str, str]]]:
    path = tmp_path / "connection.json"
    path.write_text(json.dumps(description))
    code = main(["check", str(path)])
    out = capsys.readouterr().out
    lines = {}
    for line in out.splitlines():
        match = re.match(r"^(PASS|FAIL|WARN|SKIP)\s+(.+?)\s{2,}(.*)$", line)
        if match:
            lines[match.group(2)] = (match.group(1), match.group(3))
    return code, lines


def _statuses(lines):
    return {name: status for name, (status, _) in lines.items()}


def test_good_description_passes_every_check(pg, login, tmp_path, capsys):
    code, lines = _check(tmp_path, capsys, _description(pg, login))
    assert code == 0
    assert _statuses(lines) == {
        "connection description": "PASS",
        "ARN format": "PASS",
        "region": "PASS",
        "AWS identity": "PASS",
        "secret exists": "PASS",
        "DescribeSecret allowed": "PASS",
        "GetSecretValue allowed": "PASS",
        "rotation state": "PASS",
        "key names present": "PASS",
        "database reachable": "PASS",
        "login accepted": "PASS",
    }
    assert "us-east-1 (taken from the secret ARN)" in lines["region"][1]
    assert login["role"] in lines["login accepted"][1]
    assert login["password"] not in str(lines)


def test_direct_source_skips_the_secret_store_and_logs_in(pg, login, tmp_path, capsys):
    description = {
        "source": "direct",
        "username": login["role"],
        "password": login["password"],
        "host": pg.host,
        "port": pg.port,
        "database": "postgres",
        "connect_timeout_seconds": 3,
    }
    code, lines = _check(tmp_path, capsys, description)

    assert code == 0
    statuses = _statuses(lines)
    assert statuses.pop("values present") == "PASS"
    assert statuses.pop("database reachable") == "PASS"
    assert statuses.pop("login accepted") == "PASS"
    assert statuses.pop("connection description") == "PASS"
    # Every other check asks the secret store, which a direct source has none of.
    assert set(statuses.values()) == {"SKIP"}
    assert "ARN format" in statuses and "GetSecretValue allowed" in statuses
    assert "source 'direct'" in lines["ARN format"][1]
    assert login["password"] not in str(lines)


def test_malformed_arn_fails_the_arn_check(pg, login, tmp_path, capsys):
    bad = login["arn"].replace("123456789012", "12345")
    code, lines = _check(tmp_path, capsys, _description(pg, login, secret_arn=bad))
    assert code == 1
    assert lines["ARN format"][0] == "FAIL"
    assert "account '12345'" in lines["ARN format"][1]


def test_region_mismatch_fails_the_region_check(pg, login, tmp_path, capsys):
    description = _description(pg, login, region="eu-west-1")
    code, lines = _check(tmp_path, capsys, description)
    assert code == 1
    assert lines["region"][0] == "FAIL"


def test_missing_secret_fails_the_exists_check(pg, login, tmp_path, capsys):
    missing = login["arn"].rsplit(":", 1)[0] + ":gone-AbCdEf"
    code, lines = _check(tmp_path, capsys, _description(pg, login, secret_arn=missing))
    assert code == 1
    assert lines["secret exists"][0] == "FAIL"
    assert "found no secret" in lines["secret exists"][1]


def test_secret_scheduled_for_deletion(pg, login, tmp_path, capsys):
    login["client"].delete_secret(SecretId=login["arn"], RecoveryWindowInDays=7)
    code, lines = _check(tmp_path, capsys, _description(pg, login))
    assert code == 1
    assert lines["secret exists"][0] == "FAIL"
    assert "scheduled for deletion" in lines["secret exists"][1]
    assert "SecretScheduledForDeletionError" in lines["GetSecretValue allowed"][1]


def test_wrong_key_name_fails_and_suggests_the_near_match(pg, login, tmp_path, capsys):
    code, lines = _check(tmp_path, capsys, _description(pg, login, username="User"))
    assert code == 1
    status, reason = lines["key names present"]
    assert status == "FAIL"
    assert "did you mean 'user'?" in reason


def test_rejected_password_fails_the_login_check(pg, login, tmp_path, capsys):
    pg.set_password(login["role"], "changed-in-the-database-only")
    code, lines = _check(tmp_path, capsys, _description(pg, login))
    assert code == 1
    assert lines["database reachable"][0] == "PASS"
    status, reason = lines["login accepted"]
    assert status == "FAIL"
    assert "rejected the login" in reason and "28P01" in reason


def test_unreachable_database(pg, login, tmp_path, capsys):
    description = _description(pg, login, port=free_port())
    code, lines = _check(tmp_path, capsys, description)
    assert code == 1
    assert lines["database reachable"][0] == "FAIL"
    assert lines["login accepted"][0] == "SKIP"


def test_database_that_does_not_exist(pg, login, tmp_path, capsys):
    description = _description(pg, login, database="no_such_db")
    code, lines = _check(tmp_path, capsys, description)
    assert code == 1
    assert "has no database 'no_such_db'" in lines["login accepted"][1]


def test_pending_version_is_reported_in_the_rotation_state(pg, login, tmp_path, capsys):
    login["client"].put_secret_value(
        SecretId=login["arn"],
        SecretString=json.dumps({"user": login["role"], "pass": "next"}),
        VersionStages=["AWSPENDING"],
    )
    code, lines = _check(tmp_path, capsys, _description(pg, login))
    assert code == 0  # a warning, not a failure: the current version still works
    status, reason = lines["rotation state"]
    assert status == "WARN"
    assert "AWSPENDING" in reason


def test_policy_command_prints_the_exact_secret_arn(pg, login, tmp_path, capsys):
    path = tmp_path / "connection.json"
    path.write_text(json.dumps(_description(pg, login)))
    assert main(["policy", str(path)]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert policy["Statement"] == [
        {
            "Sid": "ReadTheSecret",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret",
            ],
            "Resource": login["arn"],
        }
    ]
