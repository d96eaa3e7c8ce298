"""Resolution: read the secret through its provider and substitute the key names.

For the IAM auth types resolution also makes the RDS IAM authentication token
the database login uses as its password, so every step gets a fresh one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from credentials import iam
from credentials.arn import locate
from credentials.aws_access import describe_access, session_for
from credentials.errors import (
    DatabaseFieldError,
    InvalidConnectionError,
    KeyNameError,
)
from credentials.models import (
    AuthType,
    ConnectionDescription,
    CredentialSource,
    ResolvedCredential,
    SecretFormat,
)
from credentials.providers import Provider, provider_for
from credentials.providers.base import SecretValue
from credentials.substitution import substitute

# libpq modes that may fall back to a plain-text connection: RDS refuses an IAM
# token over one, so the IAM auth types insist on TLS.
_NO_TLS = {"disable", "allow", "prefer"}
_SECRET_FIELDS = frozenset({"password", "secret_access_key"})


def resolve(
    connection: ConnectionDescription,
    *,
    version_id: str | None = None,
    version_stage: str | None = None,
    provider: Provider | None = None,
) -> ResolvedCredential:
    """Resolve `connection` into values the database driver can use.

    `version_id` / `version_stage` override the description's pinning, so a
    caller that saw a version rejected can ask for another one. `provider`
    replaces the source's own (the worker passes one that reads through its
    cache).
    """
    connection.check()
    provider = provider or provider_for(connection.source)
    check_auth_type(connection)

    secret = provider.read(
        connection, version_id=version_id, version_stage=version_stage
    )
    values = substitute(
        secret.values,
        references(connection),
        secret_label=secret.label,
        hidden_fields=_SECRET_FIELDS,
    )
    if connection.secret_format == SecretFormat.PLAIN:
        values["username"] = connection.username or ""
    host, port, database = database_fields(connection, secret)

    password, expires_at, sslmode = _login(connection, values, host, port, provider)
    return ResolvedCredential(
        source=connection.source,
        auth_type=connection.auth_type,
        username=values["username"],
        password=SecretStr(password),
        host=host,
        port=port,
        database=database,
        sslmode=sslmode,
        connect_timeout_seconds=connection.connect_timeout_seconds,
        secret_arn=secret.arn,
        version_id=secret.version_id,
        version_stages=list(secret.version_stages),
        read_at=secret.read_at or datetime.now(UTC),
        expires_at=_earliest(secret.expires_at, expires_at),
    )


def check_offline(connection: ConnectionDescription) -> None:
    """Every check resolution makes before it calls anything.

    Fields, source, auth type, ARN and region: `credflow run` calls it before
    it starts a run, so a mistake is reported at once.
    """
    connection.check()
    provider_for(connection.source)
    check_auth_type(connection)
    if connection.source != CredentialSource.DIRECT:
        locate(connection.secret_arn, connection.region)


def check_auth_type(connection: ConnectionDescription) -> None:
    """Reject an auth type, secret format or TLS mode that cannot work together."""
    auth_type = connection.auth_type
    if auth_type not in {a.value for a in AuthType}:
        supported = ", ".join(repr(a.value) for a in AuthType)
        raise InvalidConnectionError(
            f"auth type {auth_type!r} is not one of {supported}"
        )
    direct = connection.source == CredentialSource.DIRECT
    plain = connection.secret_format == SecretFormat.PLAIN
    if plain and (direct or auth_type != AuthType.BASIC):
        raise InvalidConnectionError(
            "secret_format 'plain' (the secret's text is the password) works only "
            "with auth type 'basic' and a secret store; use a JSON secret for "
            f"auth type {auth_type!r}"
        )
    if auth_type == AuthType.IAM_USER and direct:
        raise InvalidConnectionError(
            "auth type 'iam_user' reads the IAM user's access keys from a secret: "
            "use source 'aws-secrets-manager' and give their key names"
        )
    if auth_type != AuthType.BASIC and (connection.sslmode or "") in _NO_TLS:
        raise InvalidConnectionError(
            f"auth type {auth_type!r} logs in with an IAM authentication token, "
            f"which the database accepts only over TLS, but sslmode is "
            f"{connection.sslmode!r}: use 'require', 'verify-ca' or 'verify-full'"
        )
    for name in ("host", "port", "database"):
        if getattr(connection, f"{name}_key") and direct:
            raise InvalidConnectionError(
                f"{name}_key names a key in a secret, but the source is 'direct': "
                f"give {name} itself"
            )
    for name in ("host", "database"):
        if getattr(connection, f"{name}_key") and getattr(connection, name):
            raise InvalidConnectionError(
                f"both {name} and {name}_key were given: give {name} itself, or "
                f"the key name that holds it in the secret, not both"
            )


def references(connection: ConnectionDescription) -> dict[str, str]:
    """Field -> key name in the secret, for every value resolution needs."""
    if connection.source == CredentialSource.DIRECT:
        refs = {"username": "username"}
        if connection.auth_type == AuthType.BASIC:
            refs["password"] = "password"
        return refs
    if connection.secret_format == SecretFormat.PLAIN:
        return {"password": "password"}

    refs = {"username": connection.username or ""}
    if connection.auth_type == AuthType.BASIC:
        assert connection.password is not None  # check() guarantees it
        refs["password"] = connection.password.get_secret_value()
    elif connection.auth_type == AuthType.IAM_USER:
        refs["access_key_id"] = connection.access_key_id_key or ""
        refs["secret_access_key"] = connection.secret_access_key_key or ""
    return refs


def database_fields(
    connection: ConnectionDescription, secret: SecretValue
) -> tuple[str, int, str]:
    """Host, port and database: from the description, or the secret when asked."""
    fields: dict[str, Any] = {
        "host": connection.host or "",
        "port": connection.port,
        "database": connection.database or "",
    }
    for name in ("host", "port", "database"):
        key_name = getattr(connection, f"{name}_key")
        if not key_name:
            continue
        try:
            fields[name] = substitute(
                secret.values, {name: key_name}, secret_label=secret.label
            )[name]
        except KeyNameError as err:
            raise DatabaseFieldError(f"{err.message}. {_missing_hint(name)}") from None

    try:
        port = int(str(fields["port"]).strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise DatabaseFieldError(
            f"key {connection.port_key!r} of secret {secret.label} does not hold a "
            "port number (1-65535, as a number or a string of digits): fix the "
            "secret or give port in the connection description"
        )
    return str(fields["host"]), port, str(fields["database"])


def _missing_hint(name: str) -> str:
    if name == "database":
        return (
            "An RDS-generated secret holds host, port, username, password and "
            "engine, and often no dbname: the database name is missing from this "
            "secret, so give database in the connection description (and drop "
            "database_key), or add the key to the secret"
        )
    return (
        f"Point {name}_key at the key that holds the {name}, or give {name} in "
        "the connection description"
    )


def _login(
    connection: ConnectionDescription,
    values: dict[str, str],
    host: str,
    port: int,
    provider: Any,
) -> tuple[str, datetime | None, str | None]:
    """The login's password (or IAM token), its expiry, and the TLS mode."""
    if connection.auth_type == AuthType.BASIC:
        return values["password"], None, connection.sslmode

    region = _database_region(connection)
    if connection.auth_type == AuthType.IAM_USER:
        session = iam.user_session(
            values["access_key_id"], values["secret_access_key"], region
        )
        identity = f"the IAM user whose access key id is {values['access_key_id']!r}"
    else:
        access = connection.aws_access
        base = (
            provider.session(region, access)
            if hasattr(provider, "session")
            else session_for(access, region)
        )
        session = iam.role_session(
            base,
            role_arn=connection.role_arn or "",
            external_id=connection.external_id,
            region=region,
            sts_endpoint_url=access.sts_endpoint_url if access else None,
        )
        identity = f"role {connection.role_arn!r} assumed by {describe_access(access)}"
    token = iam.generate_token(
        session,
        host=host,
        port=port,
        user=values["username"],
        region=region,
        identity=identity,
    )
    return token.token, token.expires_at, connection.sslmode or "require"


def _database_region(connection: ConnectionDescription) -> str:
    if connection.database_region:
        return connection.database_region
    if connection.source == CredentialSource.DIRECT:
        raise InvalidConnectionError(
            "an IAM auth type with source 'direct' needs database_region: the "
            "region of the database the token is for"
        )
    return locate(connection.secret_arn, connection.region).region


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None
