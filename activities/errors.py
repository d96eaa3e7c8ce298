"""Turn driver and resolution errors into Temporal application errors.

Messages are written here, not copied from drivers: a driver's text can carry a
connection URL or a server-echoed value, so only its SQLSTATE and class travel.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from temporalio.exceptions import ApplicationError

from credentials.errors import CredentialError

# The database refused the login: wrong password (28P01) or not allowed (28000).
LOGIN_REJECTED_SQLSTATES = frozenset({"28P01", "28000"})
# The server has no database of the name asked for.
DATABASE_NOT_FOUND_SQLSTATE = "3D000"

LOGIN_REJECTED = "LoginRejected"
# An IAM token past its 15 minutes: resolve again, the secret version is fine.
CREDENTIAL_EXPIRED = "CredentialExpired"
DATABASE_UNREACHABLE = "DatabaseUnreachable"
DATABASE_NOT_FOUND = "DatabaseNotFound"
QUERY_FAILED = "CatalogQueryFailed"
INVALID_FILTER = "InvalidSchemaFilter"


def cause_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the DBAPI errors SQLAlchemy wraps."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (
            getattr(current, "orig", None),
            current.__cause__,
            current.__context__,
        ):
            if isinstance(linked, BaseException):
                stack.append(linked)


def sqlstate_of(exc: BaseException) -> str | None:
    """The first SQLSTATE found anywhere in the cause chain."""
    for link in cause_chain(exc):
        for attr in ("sqlstate", "pgcode"):
            code = getattr(link, attr, None)
            if isinstance(code, str) and len(code) == 5:
                return code
        diag = getattr(link, "diag", None)
        code = getattr(diag, "sqlstate", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


# Limitation: psycopg 3 does not expose the SQLSTATE of an error raised while
# connecting (libpq keeps the server's error fields private then), so for such
# errors the server's FATAL message is matched instead. It matters when the
# server's lc_messages is not English: a rejected login is then reported as an
# unreachable database and is not re-resolved, and a missing database is
# retried as unreachable.
_CONNECT_MESSAGES = (
    (re.compile(r"password authentication failed for user"), "28P01"),
    (re.compile(r"no pg_hba\.conf entry for"), "28000"),
    (re.compile(r"pg_hba\.conf rejects connection"), "28000"),
    (re.compile(r'role ".*" does not exist'), "28000"),
    (re.compile(r'role ".*" is not permitted to log in'), "28000"),
    (re.compile(r"PAM authentication failed for user"), "28000"),
    (re.compile(r'database ".*" does not exist'), DATABASE_NOT_FOUND_SQLSTATE),
)


def connect_failure_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a login failure, from the chain or from the server's message."""
    sqlstate = sqlstate_of(exc)
    if sqlstate is not None:
        return sqlstate
    for link in cause_chain(exc):
        if type(link).__module__.startswith("psycopg") and " FATAL: " in str(link):
            text = str(link)
            for pattern, code in _CONNECT_MESSAGES:
                if pattern.search(text):
                    return code
    return None


def is_login_rejected(exc: BaseException) -> bool:
    return connect_failure_sqlstate(exc) in LOGIN_REJECTED_SQLSTATES


def application_error(err: CredentialError) -> ApplicationError:
    """The Temporal form of a resolution error: its type name and retryability."""
    return ApplicationError(err.message, type=err.kind, non_retryable=not err.retryable)
