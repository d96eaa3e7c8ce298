"""`credflow check`: the troubleshooting checklist, run against a connection.

Each check prints pass, fail, warn or skip with its reason; the command exits
non-zero when any check fails. Values read from the secret are never printed.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from credentials.arn import locate
from credentials.errors import (
    CredentialError,
    MalformedArnError,
    RegionMismatchError,
    SecretNotFoundError,
)
from credentials.models import (
    AuthType,
    ConnectionDescription,
    CredentialSource,
    ResolvedCredential,
)
from credentials.providers import Provider, provider_for
from credentials.providers.aws import AwsSecretsManagerProvider, SecretDescription
from credentials.resolution import check_auth_type, check_aws_settings, resolve

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"

# SQLSTATEs of a refused login, and of a database name the server does not have.
_LOGIN_REFUSED = {"28P01", "28000"}
_NO_SUCH_DATABASE = "3D000"

# The checks that ask the secret store; `direct` values are typed in instead.
_SECRET_STORE_CHECKS = (
    "ARN format",
    "region",
    "AWS identity",
    "secret exists",
    "DescribeSecret allowed",
    "GetSecretValue allowed",
    "rotation state",
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    reason: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<26}  {self.reason}"


class Checklist:
    """Runs the checks in the guide's order; later ones skip when they can't run."""

    def __init__(
        self,
        connection: ConnectionDescription,
        provider: AwsSecretsManagerProvider | None = None,
        *,
        printer: Callable[[str], None] | None = None,
    ) -> None:
        self.connection = connection
        self.provider = provider or AwsSecretsManagerProvider()
        self.results: list[CheckResult] = []
        self._printer = printer

    def add(self, name: str, status: str, reason: str) -> CheckResult:
        result = CheckResult(name, status, reason)
        self.results.append(result)
        if self._printer is not None:
            self._printer(result.line())
        return result

    @property
    def failed(self) -> bool:
        return any(r.status == FAIL for r in self.results)

    def run(self) -> list[CheckResult]:
        try:
            self._run()
        except Exception as exc:  # any failure no check foresaw
            # Its text is left out: it can quote a request header or a value
            # read from the secret.
            self.add(
                "checklist",
                FAIL,
                f"stopped by an unexpected {type(exc).__name__} (its text is not "
                "shown, as it may hold a secret value)",
            )
        return self.results

    def _run(self) -> None:
        connection = self.connection
        try:
            connection.check()
            provider_for(connection.source)
            check_auth_type(connection)
            check_aws_settings(connection)
            self.add(
                "connection description",
                PASS,
                f"source {connection.source}, auth type {connection.auth_type}",
            )
        except CredentialError as err:
            self.add("connection description", FAIL, err.message)
            return

        secret_ok = True
        if connection.source == CredentialSource.AWS_SECRETS_MANAGER:
            secret_ok = self._secret_store_checks()
        else:
            for name in _SECRET_STORE_CHECKS:
                self.add(
                    name,
                    SKIP,
                    f"source {connection.source!r}: the values are typed into the "
                    "description, no secret store is asked",
                )
        credential = self._resolution_check(secret_ok)
        self._database_checks(credential)

    def _secret_store_checks(self) -> bool:
        connection = self.connection
        try:
            location = locate(connection.secret_arn, connection.region)
        except MalformedArnError as err:
            self.add("ARN format", FAIL, err.message)
            self.add("region", SKIP, "the ARN must be fixed first")
            return False
        except RegionMismatchError as err:
            self.add("ARN format", PASS, "a well-formed Secrets Manager ARN")
            self.add("region", FAIL, err.message)
            return False
        except CredentialError as err:
            self.add("ARN format", FAIL, err.message)
            return False
        arn_kind = "a full ARN" if location.arn else "a secret name with a region"
        self.add("ARN format", PASS, f"{location.secret_id} is {arn_kind}")
        self.add(
            "region", PASS, f"{location.region} (taken from {location.region_from})"
        )

        try:
            identity = self.provider.identity(connection)
        except CredentialError as err:
            self.add("AWS identity", FAIL, err.message)
            return False
        if identity:
            self.add("AWS identity", PASS, identity)
        else:
            self.add(
                "AWS identity",
                WARN,
                "sts:GetCallerIdentity did not answer, so the identity in use is "
                "unknown; the checks below still run",
            )

        description = self._describe()
        self._read_allowed()
        if description is not None:
            self._rotation_state(description)
        else:
            self.add("rotation state", SKIP, "needs DescribeSecret")
        return not self.failed

    def _describe(self) -> SecretDescription | None:
        try:
            description = self.provider.describe(self.connection)
        except SecretNotFoundError as err:
            self.add("secret exists", FAIL, err.message)
            self.add("DescribeSecret allowed", SKIP, "the secret was not found")
            return None
        except CredentialError as err:
            self.add("secret exists", SKIP, "DescribeSecret did not answer")
            self.add("DescribeSecret allowed", FAIL, err.message)
            return None
        if description.deleted_date is not None:
            self.add(
                "secret exists",
                FAIL,
                f"{description.arn} is scheduled for deletion on "
                f"{description.deleted_date.isoformat()}: restore it (RestoreSecret, "
                "or Cancel deletion in the console) or use another secret",
            )
        else:
            self.add("secret exists", PASS, f"{description.arn}, not being deleted")
        self.add("DescribeSecret allowed", PASS, "the identity may describe it")
        return description

    def _read_allowed(self) -> None:
        try:
            secret = self.provider.read(self.connection)
        except CredentialError as err:
            self.add("GetSecretValue allowed", FAIL, f"{err.kind}: {err.message}")
            return
        self.add(
            "GetSecretValue allowed",
            PASS,
            f"read version {secret.version_id} "
            f"({', '.join(secret.version_stages) or 'no stage'})",
        )

    def _rotation_state(self, description: SecretDescription) -> None:
        current = description.version_with_stage("AWSCURRENT")
        pending = description.version_with_stage("AWSPENDING")
        rotated = description.last_rotated
        last = rotated.isoformat() if rotated else "never"
        state = "enabled" if description.rotation_enabled else "not enabled"
        reason = f"rotation {state}, last rotated {last}, current version {current}"
        if pending and pending != current:
            self.add(
                "rotation state",
                WARN,
                f"{reason}; version {pending} is AWSPENDING: a rotation is in "
                "progress or failed half-way, and the database may already use "
                "the pending password",
            )
        else:
            self.add("rotation state", PASS, f"{reason}, no pending version")

    def _resolution_check(self, secret_ok: bool) -> ResolvedCredential | None:
        name = (
            "key names present"
            if self.connection.source != CredentialSource.DIRECT
            else "values present"
        )
        if not secret_ok:
            self.add(name, SKIP, "the secret could not be read")
            return None
        provider: Provider = (
            self.provider
            if self.connection.source == CredentialSource.AWS_SECRETS_MANAGER
            else provider_for(self.connection.source)
        )
        try:
            credential = resolve(self.connection, provider=provider)
        except CredentialError as err:
            self.add(name, FAIL, f"{err.kind}: {err.message}")
            return None
        reason = f"username, host {credential.host}, database {credential.database}"
        if credential.auth_type != AuthType.BASIC and credential.expires_at:
            reason += (
                "; IAM authentication token signed, valid until "
                f"{credential.expires_at.isoformat()}"
            )
        self.add(name, PASS, reason)
        return credential

    def _database_checks(self, credential: ResolvedCredential | None) -> None:
        connection = self.connection
        host = credential.host if credential else connection.host
        port = credential.port if credential else connection.port
        if not host:
            self.add("database reachable", SKIP, "the host comes from the secret")
            self.add("login accepted", SKIP, "the host comes from the secret")
            return
        try:
            with socket.create_connection(
                (host, port), timeout=connection.connect_timeout_seconds
            ):
                pass
        except OSError as exc:
            self.add(
                "database reachable",
                FAIL,
                f"no TCP connection to {host}:{port} ({type(exc).__name__}): check "
                "the host and port, security groups, and the worker's network path",
            )
            self.add("login accepted", SKIP, "the database is not reachable")
            return
        self.add("database reachable", PASS, f"{host}:{port} accepts TCP connections")

        if credential is None:
            self.add("login accepted", SKIP, "no credential was resolved")
            return
        self._login(credential)

    def _login(self, credential: ResolvedCredential) -> None:
        where = f"{credential.host}:{credential.port}/{credential.database}"
        kwargs: dict[str, Any] = {
            "host": credential.host,
            "port": credential.port,
            "dbname": credential.database,
            "user": credential.username,
            "password": credential.password.get_secret_value(),
            "connect_timeout": credential.connect_timeout_seconds,
            "application_name": "credflow-check",
        }
        if credential.sslmode:
            kwargs["sslmode"] = credential.sslmode
        try:
            with psycopg.connect(**kwargs) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            self.add("login accepted", FAIL, _login_failure(exc, credential, where))
            return
        self.add(
            "login accepted",
            PASS,
            f"user {credential.username!r} logged in to {where} with secret version "
            f"{credential.version_id or '(typed in)'}",
        )


def _login_failure(
    exc: psycopg.Error, credential: ResolvedCredential, where: str
) -> str:
    # The driver's text can echo connection details: only the class, the
    # SQLSTATE and our own words go out.
    from activities.errors import connect_failure_sqlstate

    # Limitation: like the query activity, this reads the server's English
    # message when psycopg gives no SQLSTATE for a failed connection.
    sqlstate = connect_failure_sqlstate(exc)
    user = credential.username
    version = credential.version_id or "(typed in)"
    if sqlstate in _LOGIN_REFUSED:
        what = (
            "the IAM authentication token (check rds-db:connect for this user, "
            "that the user has the rds_iam role, and TLS)"
            if credential.auth_type != AuthType.BASIC
            else f"the password from secret version {version} (it does not match "
            "the database: a rotation may have changed one but not the other)"
        )
        return f"{where} rejected the login of user {user!r} (SQLSTATE {sqlstate}) " + (
            f"with {what}"
        )
    if sqlstate == _NO_SUCH_DATABASE:
        return f"the server at {where} has no database {credential.database!r}"
    return (
        f"could not log in to {where} as {user!r} ({type(exc).__name__}"
        f"{', SQLSTATE ' + sqlstate if sqlstate else ''}): check TLS (sslmode), "
        "pg_hba.conf and the database name"
    )


def main(args: argparse.Namespace, connection: ConnectionDescription) -> int:
    checklist = Checklist(connection, printer=print)
    checklist.run()
    failed = sum(r.status == FAIL for r in checklist.results)
    passed = sum(r.status == PASS for r in checklist.results)
    print(f"{len(checklist.results)} checks: {passed} passed, {failed} failed")
    return 1 if failed else 0


def add_parser(commands: Any) -> None:
    check = commands.add_parser(
        "check", help="run the troubleshooting checklist against a connection"
    )
    check.add_argument("connection", help="connection description (JSON file)")
