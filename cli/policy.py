"""`credflow policy`: the least-privilege IAM policy a connection description needs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from credentials.arn import locate, parse_arn
from credentials.errors import CredentialError
from credentials.models import AuthType, AwsAccessMode, ConnectionDescription
from credentials.providers.aws import AwsSecretsManagerProvider, SecretDescription

# Secrets encrypted with this alias use the AWS-managed key, whose key policy
# already lets the account's identities decrypt through Secrets Manager.
_AWS_MANAGED_KEY = "alias/aws/secretsmanager"

READ_ACTIONS = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]


def resolver_policy(
    connection: ConnectionDescription,
    *,
    secret_arn: str,
    kms_key_arn: str | None,
) -> dict[str, Any]:
    """The policy of the identity that resolves: reads the secret, assumes a role."""
    arn = parse_arn(secret_arn)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadTheSecret",
            "Effect": "Allow",
            "Action": list(READ_ACTIONS),
            "Resource": secret_arn,
        }
    ]
    if kms_key_arn:
        statements.append(
            {
                "Sid": "DecryptTheSecret",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                # Only through Secrets Manager, not any decryption with the key.
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{arn.region}.amazonaws.com"
                    }
                },
            }
        )
    if connection.auth_type == AuthType.IAM_ROLE and connection.role_arn:
        statements.append(
            {
                "Sid": "AssumeTheDatabaseRole",
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": connection.role_arn,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def database_login_policy(
    connection: ConnectionDescription,
    *,
    region: str,
    account: str,
    partition: str = "aws",
    db_user: str = "*",
    db_resource_id: str = "*",
) -> dict[str, Any]:
    """The policy of the IAM user or role that logs in to the database."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectToTheDatabase",
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": (
                    f"arn:{partition}:rds-db:{region}:{account}:dbuser:"
                    f"{db_resource_id}/{db_user}"
                ),
            }
        ],
    }


def kms_key_arn(description: SecretDescription, account: str) -> str | None:
    """The customer-managed key's ARN, or None for the AWS-managed key."""
    key = description.kms_key_id
    if not key or key == _AWS_MANAGED_KEY or key.endswith(f":{_AWS_MANAGED_KEY}"):
        return None
    if key.startswith("arn:"):
        return key
    # The secret's own partition (aws, aws-cn, aws-us-gov) is the key's.
    partition = description.arn.split(":", 2)[1] if description.arn else "aws"
    if key.startswith("alias/"):
        # Limitation: an alias is not an IAM resource for kms:Decrypt; the key
        # it points at is. Without kms:DescribeKey the alias ARN is the best
        # hint, and the note on stderr says to replace it.
        return f"arn:{partition}:kms:{description.region}:{account}:{key}"
    return f"arn:{partition}:kms:{description.region}:{account}:key/{key}"


def main(args: argparse.Namespace, connection: ConnectionDescription) -> int:
    try:
        return _print_policy(args, connection)
    except CredentialError:
        raise  # credflow's own message, printed by the command line
    except Exception as exc:  # any failure credflow did not foresee
        # Its text is left out: it can quote a request header or a value read
        # from the secret.
        print(
            f"credflow: the policy could not be made: unexpected "
            f"{type(exc).__name__} (its text is not shown, as it may hold a "
            "secret value)",
            file=sys.stderr,
        )
        return 1


def _print_policy(args: argparse.Namespace, connection: ConnectionDescription) -> int:
    notes: list[str] = []
    location = locate(connection.secret_arn, connection.region)
    provider = AwsSecretsManagerProvider()

    description: SecretDescription | None = None
    try:
        description = provider.describe(connection)
    except Exception as exc:  # credflow's errors, and any other: type name only
        kind = exc.kind if isinstance(exc, CredentialError) else type(exc).__name__
        notes.append(
            f"DescribeSecret failed ({kind}), so the policy cannot say whether "
            "the secret uses a customer-managed KMS key; if it does, add kms:Decrypt "
            "on that key"
        )
    secret_arn = description.arn if description else location.secret_id
    if not secret_arn.startswith("arn:"):
        print(
            f"credflow: {location.secret_id!r} is a secret name and DescribeSecret "
            "could not turn it into an ARN: give the full secret ARN in the "
            "connection description",
            file=sys.stderr,
        )
        return 2
    arn = parse_arn(secret_arn)
    key_arn = kms_key_arn(description, arn.account) if description else None

    if args.database_login:
        if connection.auth_type == AuthType.BASIC:
            print(
                "credflow: auth type 'basic' logs in with a password; no IAM "
                "policy is needed for the database login",
                file=sys.stderr,
            )
            return 2
        account = arn.account
        if connection.auth_type == AuthType.IAM_ROLE and connection.role_arn:
            account = connection.role_arn.split(":")[4] or account
        policy = database_login_policy(
            connection,
            region=connection.database_region or arn.region,
            account=account,
            partition=arn.partition,
            db_user=args.db_user or "*",
            db_resource_id=args.db_resource_id or "*",
        )
        if not (args.db_user and args.db_resource_id):
            notes.append(
                "give --db-user and --db-resource-id (the instance's "
                "DbiResourceId) to narrow rds-db:connect to one user of one database"
            )
    else:
        policy = resolver_policy(connection, secret_arn=secret_arn, kms_key_arn=key_arn)
        if connection.auth_type != AuthType.BASIC:
            who = (
                f"role {connection.role_arn}"
                if connection.auth_type == AuthType.IAM_ROLE
                else "the IAM user whose keys the secret holds"
            )
            notes.append(
                f"{who} also needs rds-db:connect: `credflow policy FILE "
                "--database-login` prints it"
            )
        access = connection.aws_access
        if access is not None and access.mode == AwsAccessMode.ASSUME_ROLE:
            notes.append(
                f"this policy belongs to role {access.role_arn}, which reads the "
                "secret; the identity that assumes it needs sts:AssumeRole on it"
            )
        if key_arn and ":alias/" in key_arn:
            notes.append(
                f"the secret names its KMS key by alias ({key_arn}); replace it "
                "with the key's ARN"
            )

    print(json.dumps(policy, indent=2))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def add_parser(commands: Any) -> None:
    policy = commands.add_parser(
        "policy", help="print the least-privilege IAM policy for a connection"
    )
    policy.add_argument("connection", help="connection description (JSON file)")
    policy.add_argument(
        "--database-login",
        action="store_true",
        help="print the rds-db:connect policy of the IAM user or role that logs in",
    )
    policy.add_argument("--db-user", help="database user name for rds-db:connect")
    policy.add_argument(
        "--db-resource-id", help="the database instance's DbiResourceId"
    )
