"""The connection description a user writes and the credential resolution makes.

Secret fields are `SecretStr`: masked in `repr`, `str` and logs. When either
model is serialized to JSON (as Temporal does), secret fields are sealed with
the process's key ring instead of pydantic's mask, so the real value reaches
the query activity and no plaintext reaches the wire.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
)

from credentials.errors import InvalidConnectionError
from credentials.sealing import SEALED_PREFIX, installed_key_ring

_PURPOSE = "credflow/secret-field/v1"


class CredentialSource(StrEnum):
    DIRECT = "direct"
    AWS_SECRETS_MANAGER = "aws-secrets-manager"


class AuthType(StrEnum):
    BASIC = "basic"
    IAM_USER = "iam_user"
    IAM_ROLE = "iam_role"


def _seal(value: SecretStr) -> str:
    return installed_key_ring().seal(value.get_secret_value(), purpose=_PURPOSE)


def _unseal(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(SEALED_PREFIX):
        return installed_key_ring().unseal(value, purpose=_PURPOSE)
    return value


# A secret that JSON serialization seals rather than masks.
SealedSecret = Annotated[
    SecretStr,
    BeforeValidator(_unseal),
    PlainSerializer(_seal, return_type=str, when_used="json"),
]


class ConnectionDescription(BaseModel):
    """Where the credentials live and how to reach the database.

    With a secret store as the source, `username` and `password` hold the *key
    names* inside the secret, never values. With `direct`, they hold the values.
    Source and auth type are plain strings here and are checked by resolution,
    so a bad value fails the workflow with a clear error instead of failing to
    decode its input.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = CredentialSource.AWS_SECRETS_MANAGER.value
    secret_arn: str | None = None
    region: str | None = None
    version_stage: str | None = None
    version_id: str | None = None
    auth_type: str = AuthType.BASIC.value

    username: str | None = None
    password: SealedSecret | None = None

    host: str | None = None
    port: int = Field(default=5432, ge=1, le=65535)
    database: str | None = None
    sslmode: str | None = None
    connect_timeout_seconds: int = Field(default=10, ge=1, le=300)

    # Secrets Manager endpoint (a VPC endpoint, or an emulator in tests); when
    # unset boto3's own settings apply (AWS_ENDPOINT_URL_SECRETS_MANAGER, ...).
    aws_endpoint_url: str | None = None

    def check(self) -> None:
        """Raise `InvalidConnectionError` naming every field that is missing."""
        missing = [
            name
            for name in ("host", "database", "username")
            if not (getattr(self, name) or "").strip()
        ]
        if self.password is None or not self.password.get_secret_value():
            missing.append("password")
        if missing:
            what = "key names" if self.source != CredentialSource.DIRECT else "values"
            raise InvalidConnectionError(
                f"the connection description is missing {', '.join(missing)}: "
                f"give the database host and name, and the username and password "
                f"{what}"
            )


class ResolvedCredential(BaseModel):
    """Values substituted for the key names, plus the non-secret facts of the read."""

    model_config = ConfigDict(frozen=True)

    source: str
    auth_type: str
    username: str
    password: SealedSecret
    host: str
    port: int
    database: str
    sslmode: str | None = None
    connect_timeout_seconds: int = 10

    secret_arn: str | None = None
    version_id: str | None = None
    version_stages: list[str] = Field(default_factory=list)
    read_at: datetime
    expires_at: datetime | None = None
