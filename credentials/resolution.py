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
from credentials.aws_access import (
    check_access,
    check_endpoint_url,
    describe_access,
    session_for,
)
from credentials.errors import (
    CredentialValueError,
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
from credentials.substitution import lookup, substitute

# libpq modes that may fall back to a plain-text connection: RDS refuses an IAM
# token over one, so the IAM auth types insist on TLS.
_NO_TLS = {"disable", "allow", "prefer"}
_SECRET_FIELDS = frozenset({"password", "secret_access_key"})
# Fields that error messages and log lines may show: a failed connection names
# the host, port, database and user.
_PLAIN_FIELDS = ("username", "host", "port", "database")


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
    check_aws_settings(connection)

    secret = provider.read(
        connection, version_id=version_id, version_stage=version_stage
    )
    refuse_secret_reuse(connection, secret)
    # Secret values stay `SecretStr` in every local here and are unwrapped only
    # where they are used: a traceback rendered with locals (Sentry, rich)
    # shows each local's repr.
    values = substitute(
        secret,
        references(connection),
        secret_label=secret.label,
        hidden_fields=_SECRET_FIELDS,
    )
    if connection.secret_format == SecretFormat.PLAIN:
        values["username"] = connection.username or ""
    host, port, database = database_fields(connection, secret)
    check_login_values(connection, secret, values, host=host, database=database)

    password, expires_at, sslmode = _login(connection, values, host, port, provider)
    return ResolvedCredential(
        source=connection.source,
        auth_type=connection.auth_type,
        username=values["username"],
        password=password,
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
    check_aws_settings(connection)
    if connection.source != CredentialSource.DIRECT:
        locate(connection.secret_arn, connection.region)


def check_aws_settings(connection: ConnectionDescription) -> None:
    """Refuse endpoint URLs and `aws_access` values botocore cannot use.

    Found before any call, they fail at once instead of on every retry.
    """
    check_endpoint_url("aws_endpoint_url", connection.aws_endpoint_url)
    check_access(connection.aws_access)


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


def references(connection: ConnectionDescription) -> dict[str, str | SecretStr]:
    """Field -> key name in the secret, for every value resolution needs.

    The password's key name stays a `SecretStr`, as in the description: it is
    a password when one was typed where its key name belongs.
    """
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
        refs["password"] = connection.password
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
                secret, {name: key_name}, secret_label=secret.label
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


def refuse_secret_reuse(connection: ConnectionDescription, secret: SecretValue) -> None:
    """Refuse a username, host, port or database that takes a secret's value.

    Those fields appear in error messages (a failed connection names host, port
    and database): `database_key` pointing at the password's key would put the
    password there. The error names the fields, never the value.
    """
    refs = references(connection)
    clashes = [
        f"the {plain} ({_origin(connection, plain)}) and the {hidden} "
        f"({_origin(connection, hidden)})"
        for hidden in sorted(_SECRET_FIELDS & refs.keys())
        for plain in _PLAIN_FIELDS
        if _same_value(connection, secret, plain, refs[hidden])
    ]
    if clashes:
        raise InvalidConnectionError(
            f"{'; '.join(clashes)} have the same value in secret {secret.label}. "
            "The username, host, port and database are shown in error messages "
            "and logs, so none may hold a secret: point username, host_key, "
            "port_key and database_key at the keys that hold those values"
        )


def _same_value(
    connection: ConnectionDescription,
    secret: SecretValue,
    plain: str,
    hidden_key: str | SecretStr,
) -> bool:
    # Values are compared here and never returned, so no caller's local
    # holds a secret value when the error is raised.
    found, hidden = lookup(secret.values, _text(hidden_key))
    if not found or not _scalar(hidden) or str(hidden) == "":
        return False
    key_name = _plain_key(connection, plain)
    if key_name:
        found, value = lookup(secret.values, key_name)
    else:
        value = getattr(connection, plain)
        found = value is not None
    return found and _scalar(value) and str(value) == str(hidden)


def _plain_key(connection: ConnectionDescription, field: str) -> str | None:
    """The key name a plain field is read from in the secret, if any."""
    if field == "username":
        key_name = references(connection).get("username")
        return _text(key_name) if key_name is not None else None
    return getattr(connection, f"{field}_key") or None


def _origin(connection: ConnectionDescription, field: str) -> str:
    """Where a field's value comes from, in words for an error message."""
    if connection.source == CredentialSource.DIRECT:
        return "typed into the description"
    if field == "password" and connection.secret_format == SecretFormat.PLAIN:
        return "the secret's text"
    if field in _PLAIN_FIELDS:
        key_name = _plain_key(connection, field)
    else:
        key_name = _text(references(connection).get(field) or "")
    return f"key {key_name!r}" if key_name else "typed into the description"


def check_login_values(
    connection: ConnectionDescription,
    secret: SecretValue,
    values: dict[str, Any],
    *,
    host: str,
    database: str,
) -> None:
    """Refuse a login value that is empty or that libpq cannot send.

    libpq passes each value as a C string, so a NUL character cuts it short,
    and text that is not valid Unicode cannot be encoded at all: neither can
    succeed on a retry. The error names the field and its key, not the value.
    """
    found = {**values, "host": host, "database": database}
    for field in ("username", "password", "access_key_id", "secret_access_key"):
        if field in found:
            _check_value(connection, secret, field, found[field])
    for field in ("host", "database"):
        _check_value(connection, secret, field, found[field])


def _check_value(
    connection: ConnectionDescription,
    secret: SecretValue,
    field: str,
    value: str | SecretStr,
) -> None:
    text = _text(value)
    if not text:
        problem = "is empty"
        advice = (
            "store the value under that key, or point the connection description "
            "at the key that holds it"
        )
    elif "\x00" in text:
        problem = "holds a NUL character"
        advice = "remove it where the value is stored"
    elif not _encodable(text):
        problem = "holds text that is not valid Unicode (a lone surrogate)"
        advice = "store the value again as UTF-8 text"
    else:
        return
    del text  # not left in this frame for a traceback rendered with locals
    origin = _origin(connection, field)
    where = (
        f"{origin} of secret {secret.label}" if origin.startswith("key ") else origin
    )
    raise CredentialValueError(
        f"the {field} ({where}) {problem}, so the database login cannot use it: "
        f"{advice}"
    )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _text(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


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
    values: dict[str, Any],
    host: str,
    port: int,
    provider: Any,
) -> tuple[SecretStr, datetime | None, str | None]:
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
    return SecretStr(token.token), token.expires_at, connection.sslmode or "require"


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
