"""RDS IAM authentication tokens for the IAM user and IAM role auth types.

A token is a SigV4-presigned `rds-db:connect` request that PostgreSQL on RDS
accepts as the password for 15 minutes. It is made locally from AWS
credentials: generating one calls no AWS service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.exceptions
from pydantic import SecretStr

from credentials import errors, redaction
from credentials.aws_access import assume_role, sts_client
from credentials.models import IAM_TOKEN_LIFETIME_SECONDS


@dataclass(frozen=True, repr=False)
class IamToken:
    """A token and when it stops being accepted; `repr` hides the token."""

    token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"IamToken(expires_at={self.expires_at.isoformat()})"


def generate_token(
    session: boto3.session.Session,
    *,
    host: str,
    port: int,
    user: str,
    region: str,
    identity: str,
) -> IamToken:
    """Presign an `rds-db:connect` token for `user` on `host:port` in `region`.

    `identity` names the AWS identity whose credentials sign it, for errors.
    """
    signed_at = datetime.now(UTC)
    try:
        rds = session.client("rds", region_name=region)
        token = rds.generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=user, Region=region
        )
    except (
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.PartialCredentialsError,
    ):
        raise errors.IamTokenError(
            f"no AWS credentials to sign the IAM authentication token for user "
            f"{user!r} on {host}:{port} ({identity}): check the access keys the "
            "auth type uses"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise errors.IamTokenError(
            f"could not generate the IAM authentication token for user {user!r} "
            f"on {host}:{port} in region {region} ({type(exc).__name__}, "
            f"{identity}): check the database host, port and region"
        ) from None
    # The token is the login's password: masked in any log line from now on.
    redaction.remember(str(token))
    return IamToken(
        token=str(token),
        expires_at=signed_at + timedelta(seconds=IAM_TOKEN_LIFETIME_SECONDS),
    )


def user_session(access_key_id: str, secret_access_key: SecretStr, region: str) -> Any:
    """A session acting as the IAM user whose keys the secret holds."""
    return boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key.get_secret_value(),
        region_name=region,
    )


def role_session(
    base: boto3.session.Session,
    *,
    role_arn: str,
    external_id: str | None,
    region: str,
    sts_endpoint_url: str | None,
) -> boto3.session.Session:
    """A session acting as `role_arn`, assumed now from `base`'s identity.

    A fresh assumption per resolution: the token it signs lives 15 minutes,
    far less than the role's credentials, so nothing here needs refreshing.
    """
    sts = sts_client(base, region, sts_endpoint_url)
    credentials = assume_role(
        sts,
        role_arn=role_arn,
        external_id=external_id,
        session_name="credflow-db",
        duration_seconds=900,
        purpose="to sign the database's IAM authentication token",
    )
    redaction.remember(credentials["SecretAccessKey"])
    redaction.remember(credentials["SessionToken"])
    return boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
