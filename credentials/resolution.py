"""Resolution: read the secret through its provider and substitute the key names."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr

from credentials.errors import InvalidConnectionError
from credentials.models import (
    AuthType,
    ConnectionDescription,
    CredentialSource,
    ResolvedCredential,
)
from credentials.providers import Provider, provider_for
from credentials.substitution import substitute


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
    if connection.auth_type != AuthType.BASIC:
        supported = ", ".join(repr(a.value) for a in AuthType)
        if connection.auth_type not in {a.value for a in AuthType}:
            raise InvalidConnectionError(
                f"auth type {connection.auth_type!r} is not one of {supported}"
            )
        raise InvalidConnectionError(
            f"auth type {connection.auth_type!r} is not available in this build; "
            "use 'basic'"
        )

    secret = provider.read(
        connection, version_id=version_id, version_stage=version_stage
    )
    assert connection.password is not None  # check() guarantees it
    if connection.source == CredentialSource.DIRECT:
        references = {"username": "username", "password": "password"}
    else:
        references = {
            "username": connection.username or "",
            "password": connection.password.get_secret_value(),
        }
    values = substitute(secret.values, references, secret_label=secret.label)

    return ResolvedCredential(
        source=connection.source,
        auth_type=connection.auth_type,
        username=values["username"],
        password=SecretStr(values["password"]),
        host=connection.host or "",
        port=connection.port,
        database=connection.database or "",
        sslmode=connection.sslmode,
        connect_timeout_seconds=connection.connect_timeout_seconds,
        secret_arn=secret.arn,
        version_id=secret.version_id,
        version_stages=list(secret.version_stages),
        read_at=secret.read_at or datetime.now(UTC),
        expires_at=secret.expires_at,
    )
