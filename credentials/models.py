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

from credentials import redaction
from credentials.errors import InvalidConnectionError
from credentials.sealing import installed_key_ring, is_sealed


class CredentialSource(StrEnum):
    DIRECT = "direct"
    AWS_SECRETS_MANAGER = "aws-secrets-manager"


class AuthType(StrEnum):
    BASIC = "basic"
    IAM_USER = "iam_user"
    IAM_ROLE = "iam_role"


class SecretFormat(StrEnum):
    """How the secret's text is read: key/value pairs, or the password alone."""

    JSON = "json"
    PLAIN = "plain"


class AwsAccessMode(StrEnum):
    """Which AWS identity reads the secret and assumes an IAM role auth's role."""

    DEFAULT_CHAIN = "default"
    PROFILE = "profile"
    STATIC_KEYS = "static"
    ASSUME_ROLE = "assume_role"


# An IAM authentication token lives 15 minutes (RDS's fixed lifetime).
IAM_TOKEN_LIFETIME_SECONDS = 900


def sealed_secret(field: str) -> Any:
    """A `SecretStr` type whose JSON form is sealed for one field only.

    The field's name is bound into the seal (as authenticated data), so a
    sealed value copied from one field into another, say a resolved password
    into a typed-in password, does not unseal there.
    """
    purpose = f"credflow/secret-field/v1/{field}"

    def seal(value: SecretStr) -> str:
        plaintext = value.get_secret_value()
        redaction.remember(plaintext)
        return installed_key_ring().seal(plaintext, purpose=purpose)

    def unseal(value: Any) -> Any:
        if isinstance(value, str) and is_sealed(value):
            plaintext = installed_key_ring().unseal(value, purpose=purpose)
            redaction.remember(plaintext)
            return plaintext
        return value

    return Annotated[
        SecretStr,
        BeforeValidator(unseal),
        PlainSerializer(seal, return_type=str, when_used="json"),
    ]


# One sealed type per secret field: a seal opens only in the field it was made for.
TypedInPassword = sealed_secret("connection.password")
AwsSecretAccessKey = sealed_secret("aws_access.secret_access_key")
AwsSessionToken = sealed_secret("aws_access.session_token")
ResolvedPassword = sealed_secret("resolved.password")


class AwsAccess(BaseModel):
    """How credflow reaches the secret store: which AWS identity it acts as.

    `default` uses boto3's credential chain (environment, profile, web identity,
    instance role); `profile` a named profile; `static` the keys given here;
    `assume_role` assumes `role_arn` (with `external_id`) from the default chain
    or `profile`, and refreshes the role's credentials before they expire.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: str = AwsAccessMode.DEFAULT_CHAIN.value
    profile: str | None = None
    access_key_id: str | None = None
    secret_access_key: AwsSecretAccessKey | None = None
    session_token: AwsSessionToken | None = None
    role_arn: str | None = None
    external_id: str | None = None
    role_session_name: str = "credflow"
    duration_seconds: int = Field(default=3600, ge=900, le=43200)
    # STS endpoint for assume_role (a VPC endpoint, or an emulator in tests);
    # unset means boto3's own settings (AWS_ENDPOINT_URL_STS, ...).
    sts_endpoint_url: str | None = None


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
    # `plain`: the secret's whole text is the password, and `username` holds
    # the database user name itself (a plain secret has no key names).
    secret_format: str = SecretFormat.JSON.value

    username: str | None = None
    password: TypedInPassword | None = None

    # IAM user auth type: key names of the IAM user's access keys in the secret.
    access_key_id_key: str | None = None
    secret_access_key_key: str | None = None
    # IAM role auth type: the role to assume for the token, its external id.
    role_arn: str | None = None
    external_id: str | None = None
    # The database's region for an IAM token; default: the secret's region.
    database_region: str | None = None

    host: str | None = None
    port: int = Field(default=5432, ge=1, le=65535)
    database: str | None = None
    # Key names in the secret to take host, port and database from (an
    # RDS-generated secret holds `host`, `port`, sometimes `dbname`).
    host_key: str | None = None
    port_key: str | None = None
    database_key: str | None = None
    sslmode: str | None = None
    # Below the query activity's heartbeat time-out (120 s), so a slow connect
    # is reported as one rather than as a lost heartbeat.
    connect_timeout_seconds: int = Field(default=10, ge=1, le=90)

    # Secrets Manager endpoint (a VPC endpoint, or an emulator in tests); when
    # unset boto3's own settings apply (AWS_ENDPOINT_URL_SECRETS_MANAGER, ...).
    aws_endpoint_url: str | None = None
    aws_access: AwsAccess | None = None

    def check(self) -> None:
        """Raise `InvalidConnectionError` naming every field that is missing."""
        missing = [
            name
            for name in ("host", "database")
            if not (getattr(self, name) or "").strip()
            and not (getattr(self, f"{name}_key") or "").strip()
        ]
        if not (self.username or "").strip():
            missing.append("username")
        plain = self.secret_format == SecretFormat.PLAIN
        needs_password = self.auth_type == AuthType.BASIC and not plain
        if needs_password and (
            self.password is None or not self.password.get_secret_value()
        ):
            missing.append("password")
        if self.auth_type == AuthType.IAM_USER:
            missing.extend(
                name
                for name in ("access_key_id_key", "secret_access_key_key")
                if not (getattr(self, name) or "").strip()
            )
        if self.auth_type == AuthType.IAM_ROLE and not (self.role_arn or "").strip():
            missing.append("role_arn")
        if missing:
            what = "key names" if self.source != CredentialSource.DIRECT else "values"
            raise InvalidConnectionError(
                f"the connection description is missing {', '.join(missing)}: "
                f"give the database host and name (or their key names), the "
                f"username and password {what}, and what the auth type "
                f"{self.auth_type!r} needs"
            )


class ResolvedCredential(BaseModel):
    """Values substituted for the key names, plus the non-secret facts of the read."""

    model_config = ConfigDict(frozen=True)

    source: str
    auth_type: str
    username: str
    password: ResolvedPassword
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
