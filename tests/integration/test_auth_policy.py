"""The policy `credflow policy` prints is enough, and no narrower one is.

Runs on moto's IAM-enforcing mode. Limitation: moto evaluates only the actions
of a policy, not its resources (every request is checked against "*"), so the
printed statements are tried with their resources widened to "*"; that the
exact secret ARN is right is checked by comparing it with the secret's ARN.
moto does not check kms:Decrypt on GetSecretValue either, so that statement is
asserted on the printed policy only.
"""

from __future__ import annotations

import copy
import json
import math
import os
import uuid
from typing import Any

import pytest

from cli.check import FAIL, PASS, Checklist
from cli.policy import resolver_policy
from credentials import aws_access, errors
from credentials.models import ConnectionDescription
from credentials.providers.aws import AwsSecretsManagerProvider
from credentials.resolution import resolve
from services.aws import MotoServer

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture(scope="module")
def strict_moto():
    with MotoServer(enforce_iam=True) as server:
        yield server


@pytest.fixture
def aws(strict_moto, monkeypatch):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in strict_moto.env().items():
        monkeypatch.setenv(key, value)
    aws_access.forget_sessions()
    yield strict_moto
    aws_access.forget_sessions()


class Admin:
    """Sets up users, roles and secrets with IAM checks paused."""

    def __init__(self, moto: MotoServer) -> None:
        self.moto = moto

    def __enter__(self) -> Admin:
        self.moto.reset_auth(math.inf)
        return self

    def __exit__(self, *exc: object) -> None:
        self.moto.reset_auth(0)

    def secret(self, values: dict[str, Any]) -> str:
        client = self.moto.client("secretsmanager", region=REGION)
        name = f"policy-{uuid.uuid4().hex[:8]}"
        return client.create_secret(Name=name, SecretString=json.dumps(values))["ARN"]

    def user(self, policy: dict[str, Any]) -> dict[str, str]:
        iam = self.moto.client("iam")
        name = f"reader-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=name)
        iam.put_user_policy(
            UserName=name, PolicyName="credflow", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"AccessKeyId": key["AccessKeyId"], "Secret": key["SecretAccessKey"]}

    def role(self) -> str:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    # moto does not match an account-root principal against
                    # a user; "*" keeps the test about the user's own policy.
                    "Principal": {"AWS": "*"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        return self.moto.client("iam").create_role(
            RoleName=f"db-{uuid.uuid4().hex[:8]}",
            AssumeRolePolicyDocument=json.dumps(trust),
        )["Role"]["Arn"]


def _widened(policy: dict[str, Any]) -> dict[str, Any]:
    # moto matches statements against resource "*" only (see the module note).
    widened = copy.deepcopy(policy)
    for statement in widened["Statement"]:
        statement["Resource"] = "*"
        statement.pop("Condition", None)
    return widened


def _without(policy: dict[str, Any], action: str) -> dict[str, Any]:
    narrower = copy.deepcopy(policy)
    for statement in narrower["Statement"]:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        statement["Action"] = [a for a in actions if a != action]
    narrower["Statement"] = [s for s in narrower["Statement"] if s["Action"]]
    return narrower


def _actions(policy: dict[str, Any]) -> list[str]:
    found = []
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found += [actions] if isinstance(actions, str) else actions
    return found


def _connection(moto, secret_arn, key, **fields) -> ConnectionDescription:
    return ConnectionDescription.model_validate(
        {
            "secret_arn": secret_arn,
            "username": "u",
            "password": "p",
            "host": "db.example.internal",
            "database": "d",
            "aws_access": {
                "mode": "static",
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["Secret"],
                "sts_endpoint_url": moto.endpoint_url,
            },
            **fields,
        }
    )


def _secret_checks(connection) -> dict[str, str]:
    checklist = Checklist(connection, AwsSecretsManagerProvider())
    checklist._secret_store_checks()
    return {r.name: r.status for r in checklist.results}


def test_basic_policy_is_sufficient_and_minimal(aws):
    with Admin(aws) as admin:
        secret_arn = admin.secret({"u": "app", "p": "pw"})
    policy = resolver_policy(
        ConnectionDescription(secret_arn=secret_arn),
        secret_arn=secret_arn,
        kms_key_arn=None,
    )
    assert policy["Statement"][0]["Resource"] == secret_arn
    assert sorted(_actions(policy)) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]

    with Admin(aws) as admin:
        key = admin.user(_widened(policy))
    connection = _connection(aws, secret_arn, key)
    assert resolve(connection, provider=AwsSecretsManagerProvider()).username == "app"
    checks = _secret_checks(connection)
    assert checks["DescribeSecret allowed"] == PASS
    assert checks["GetSecretValue allowed"] == PASS

    # Without GetSecretValue resolution fails, naming the identity in use.
    with Admin(aws) as admin:
        key = admin.user(_widened(_without(policy, "secretsmanager:GetSecretValue")))
    with pytest.raises(errors.SecretAccessDeniedError) as caught:
        resolve(_connection(aws, secret_arn, key), provider=AwsSecretsManagerProvider())
    message = caught.value.message
    assert caught.value.retryable is False
    assert "secretsmanager:GetSecretValue" in message
    assert "Identity in use: arn:aws:iam::123456789012:user/reader-" in message
    assert f"the static access key {key['AccessKeyId']!r}" in message

    # Without DescribeSecret the checklist (versions, rotation, deletion) fails.
    with Admin(aws) as admin:
        key = admin.user(_widened(_without(policy, "secretsmanager:DescribeSecret")))
    checks = _secret_checks(_connection(aws, secret_arn, key))
    assert checks["DescribeSecret allowed"] == FAIL
    assert checks["GetSecretValue allowed"] == PASS


def test_iam_role_policy_needs_assume_role(aws):
    with Admin(aws) as admin:
        secret_arn = admin.secret({"u": "app_role"})
        role_arn = admin.role()
    fields = {"auth_type": "iam_role", "role_arn": role_arn, "password": None}
    policy = resolver_policy(
        ConnectionDescription(secret_arn=secret_arn, **fields),
        secret_arn=secret_arn,
        kms_key_arn=None,
    )
    assert {
        "Sid": "AssumeTheDatabaseRole",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Resource": role_arn,
    } in policy["Statement"]

    with Admin(aws) as admin:
        key = admin.user(_widened(policy))
    credential = resolve(
        _connection(aws, secret_arn, key, **fields),
        provider=AwsSecretsManagerProvider(),
    )
    assert "X-Amz-Security-Token=" in credential.password.get_secret_value()

    with Admin(aws) as admin:
        key = admin.user(_widened(_without(policy, "sts:AssumeRole")))
    with pytest.raises(errors.RoleAssumptionError) as caught:
        resolve(
            _connection(aws, secret_arn, key, **fields),
            provider=AwsSecretsManagerProvider(),
        )
    assert repr(role_arn) in caught.value.message
    assert "sts:AssumeRole" in caught.value.message


def test_kms_statement_appears_for_a_customer_key():
    secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
    key_arn = (
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )
    policy = resolver_policy(
        ConnectionDescription(secret_arn=secret_arn),
        secret_arn=secret_arn,
        kms_key_arn=key_arn,
    )
    kms = policy["Statement"][1]
    assert (kms["Action"], kms["Resource"]) == ("kms:Decrypt", key_arn)
    assert kms["Condition"]["StringEquals"]["kms:ViaService"] == (
        "secretsmanager.us-east-1.amazonaws.com"
    )


def test_unknown_access_key_is_invalid_credentials(aws):
    with Admin(aws) as admin:
        secret_arn = admin.secret({"u": "app", "p": "pw"})
    key = {"AccessKeyId": "AKIAUNKNOWNEXAMPLE01", "Secret": "nope"}
    with pytest.raises(errors.InvalidAwsCredentialsError) as caught:
        resolve(_connection(aws, secret_arn, key), provider=AwsSecretsManagerProvider())
    assert "InvalidClientTokenId" in caught.value.message
    assert caught.value.retryable is False
