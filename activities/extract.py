"""The query activities: one per extraction step, each writing JSON Lines files.

Each activity connects with the credential resolved just before it, runs its
catalog query, streams the rows to files and returns counts and file paths.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import errors
from activities.models import STEPS, StepRequest, StepResult
from credentials.models import ResolvedCredential
from dialects import postgres

# Rows per output file: bounds the size of one file whatever the catalog's size.
ROWS_PER_FILE = 100_000
HEARTBEAT_EVERY = 5_000


def database_url(credential: ResolvedCredential) -> URL:
    """Built with URL.create: any character in a password is safe."""
    query = {"application_name": "credflow"}
    if credential.sslmode:
        query["sslmode"] = credential.sslmode
    return URL.create(
        "postgresql+psycopg",
        username=credential.username,
        password=credential.password.get_secret_value(),
        host=credential.host,
        port=credential.port,
        database=credential.database,
        query=query,
    )


@contextmanager
def connect(credential: ResolvedCredential, step: str) -> Iterator[Connection]:
    """A connection made with `credential`, its failures mapped to typed errors."""
    engine = sqlalchemy.create_engine(
        database_url(credential),
        poolclass=NullPool,  # every step logs in afresh with its own credential
        connect_args={"connect_timeout": credential.connect_timeout_seconds},
    )
    where = f"{credential.host}:{credential.port}/{credential.database}"
    try:
        _refuse_expired(credential, step, where)
        try:
            connection = engine.connect()
        except Exception as exc:
            raise _connect_error(exc, credential, step, where) from None
        with connection:
            yield connection
    finally:
        engine.dispose()


def _refuse_expired(credential: ResolvedCredential, step: str, where: str) -> None:
    # An IAM token lives 15 minutes; one that expired while the step waited
    # makes the workflow resolve a fresh one (not a rejection of the version).
    if credential.expires_at is None:
        return
    now = datetime.now(UTC)
    if credential.expires_at <= now:
        raise ApplicationError(
            f"the credential for step {step} at {where} expired at "
            f"{credential.expires_at.isoformat()} before the step could log in "
            f"(auth type {credential.auth_type}): resolving a fresh one",
            {"secret_version_id": credential.version_id},
            type=errors.CREDENTIAL_EXPIRED,
            non_retryable=True,
        )


def _connect_error(
    exc: Exception, credential: ResolvedCredential, step: str, where: str
) -> ApplicationError:
    sqlstate = errors.connect_failure_sqlstate(exc)
    version = credential.version_id or "(typed in)"
    if sqlstate in errors.LOGIN_REJECTED_SQLSTATES:
        return ApplicationError(
            f"the database at {where} rejected the login of user "
            f"{credential.username!r} (SQLSTATE {sqlstate}) for step {step}, with "
            f"secret version {version}: the password in the secret does not match "
            "the database, or the user may not log in",
            {"sqlstate": sqlstate, "secret_version_id": credential.version_id},
            type=errors.LOGIN_REJECTED,
            non_retryable=True,
        )
    if sqlstate == errors.DATABASE_NOT_FOUND_SQLSTATE:
        return ApplicationError(
            f"the server at {credential.host}:{credential.port} has no database "
            f"{credential.database!r} (SQLSTATE {sqlstate}) for step {step}: check "
            "the database name (database in the connection description, or the "
            "secret's value under database_key) for typos and its case",
            {"sqlstate": sqlstate},
            type=errors.DATABASE_NOT_FOUND,
            non_retryable=True,
        )
    return ApplicationError(
        f"could not connect to the database at {where} for step {step} "
        f"({type(exc).__name__}{', SQLSTATE ' + sqlstate if sqlstate else ''}): "
        "check the host, port and database name, and that the worker can reach it",
        {"sqlstate": sqlstate},
        type=errors.DATABASE_UNREACHABLE,
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class _Writer:
    """Writes rows to numbered JSON Lines files, each renamed into place when full."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[str] = []
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        handle = None
        temp: Path | None = None
        try:
            for row in rows:
                if handle is None:
                    temp = (
                        self.folder / f".part-{len(self.files):05d}.{uuid.uuid4()}.tmp"
                    )
                    handle = temp.open("w", encoding="utf-8")
                    in_file = 0
                handle.write(json.dumps(row, ensure_ascii=False, default=_json_default))
                handle.write("\n")
                self.count += 1
                in_file += 1
                if self.count % HEARTBEAT_EVERY == 0:
                    activity.heartbeat(self.count)
                if in_file >= ROWS_PER_FILE:
                    self._finish(handle, temp)
                    handle = None
            if handle is not None:
                self._finish(handle, temp)
                handle = None
        finally:
            if handle is not None:
                handle.close()
                if temp is not None:
                    temp.unlink(missing_ok=True)
        self._remove_stale()

    def _finish(self, handle: Any, temp: Path | None) -> None:
        assert temp is not None
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        final = self.folder / f"part-{len(self.files):05d}.jsonl"
        os.replace(temp, final)  # atomic: readers see a whole file or none
        self.files.append(str(final))

    def _remove_stale(self) -> None:
        # A retry that writes fewer files than an earlier attempt must not leave
        # that attempt's extra files (or its unfinished temporaries) behind.
        keep = {Path(f).name for f in self.files}
        for path in self.folder.iterdir():
            if path.name not in keep and (
                path.name.startswith("part-") or path.name.startswith(".part-")
            ):
                path.unlink(missing_ok=True)


def _rows(connection: Connection, sql: str, **params: Any) -> Iterator[dict[str, Any]]:
    result = connection.execution_options(stream_results=True, yield_per=2_000).execute(
        sqlalchemy.text(sql), params
    )
    # The query has answered: a long one is not mistaken for a lost worker.
    activity.heartbeat("query answered")
    for row in result.mappings():
        yield dict(row)


def _schemas(connection: Connection, request: StepRequest) -> list[str]:
    names = list(connection.execute(sqlalchemy.text(postgres.SCHEMA_NAMES)).scalars())
    try:
        return postgres.select_schemas(
            names,
            include=request.filters.include,
            exclude=request.filters.exclude,
            include_system=request.filters.include_system_schemas,
        )
    except Exception as exc:  # re.error: a pattern the user typed
        raise ApplicationError(
            f"a schema filter is not a valid regular expression ({exc}): fix the "
            "include/exclude patterns",
            type=errors.INVALID_FILTER,
            non_retryable=True,
        ) from None


def _with_kind(rows: Iterable[dict[str, Any]], kinds: Counter[str]) -> Iterator[dict]:
    for row in rows:
        kind = postgres.relation_kind(row.pop("relkind"), row["is_partition"])
        kinds[kind] += 1
        yield {"kind": kind, **row}


def _counted(rows: Iterable[dict[str, Any]], kinds: Counter[str]) -> Iterator[dict]:
    for row in rows:
        kinds[row["kind"]] += 1
        yield row


def output_folder(request: StepRequest) -> Path:
    """The run's folder inside output_dir; a run name cannot climb out of it."""
    name = request.run_name
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ApplicationError(
            f"run name {name!r} is not a plain folder name: it must not be empty, "
            "'.', '..' or contain a path separator",
            type="InvalidRunName",
            non_retryable=True,
        )
    return Path(request.output_dir) / name


def run_step(request: StepRequest) -> StepResult:
    """Connect, run the step's catalog query and write what it finds."""
    started = time.monotonic()
    credential = request.credential
    info = activity.info()
    folder = output_folder(request)
    result = StepResult(step=request.step, count=0)
    activity.heartbeat("connecting")

    try:
        with connect(credential, request.step) as connection:
            if request.step == "preflight":
                row = connection.execute(sqlalchemy.text(postgres.PREFLIGHT)).one()
                result.count = 1
                result.server_version = row.server_version
                result.login_user = row.login_user
            else:
                schemas = _schemas(connection, request)
                writer = _Writer(folder / request.step)
                kinds: Counter[str] = Counter()
                if request.step == "databases":
                    rows = _rows(connection, postgres.DATABASES)
                elif request.step == "schemas":
                    rows = _rows(connection, postgres.SCHEMAS, schemas=schemas)
                elif request.step == "types":
                    rows = _counted(
                        _rows(connection, postgres.TYPES, schemas=schemas), kinds
                    )
                elif request.step == "tables":
                    rows = _with_kind(
                        _rows(connection, postgres.RELATIONS, schemas=schemas), kinds
                    )
                elif request.step == "columns":
                    rows = _rows(connection, postgres.COLUMNS, schemas=schemas)
                else:
                    raise ApplicationError(
                        f"unknown extraction step {request.step!r}",
                        type="UnknownStep",
                        non_retryable=True,
                    )
                writer.write_all(rows)
                result.count = writer.count
                result.files = writer.files
                result.counts_by_kind = dict(kinds)
    except ApplicationError:
        raise
    except sqlalchemy.exc.SQLAlchemyError as exc:
        # The query itself failed: name the step and SQLSTATE, never the driver text.
        sqlstate = errors.sqlstate_of(exc)
        if sqlstate in errors.LOGIN_REJECTED_SQLSTATES:
            raise _connect_error(
                exc, credential, request.step, credential.host
            ) from None
        # credflow's own words only: no driver text, so nothing to mask (and
        # masking a short password inside fixed text would reveal it).
        raise ApplicationError(
            f"the catalog query of step {request.step} failed "
            f"({type(exc).__name__}, SQLSTATE {sqlstate or 'unknown'}): check "
            "that the login may read pg_catalog",
            {"sqlstate": sqlstate},
            type=errors.QUERY_FAILED,
        ) from None

    result.secret_version_id = credential.version_id
    result.seconds = round(time.monotonic() - started, 3)
    activity.logger.info(
        "step %s of %s found %d with secret version %s in %.2fs",
        request.step,
        info.workflow_id,
        result.count,
        credential.version_id,
        result.seconds,
    )
    return result


def _step_activity(step: str):
    @activity.defn(name=f"extract_{step}")
    def step_activity(request: StepRequest) -> StepResult:
        return run_step(request)

    step_activity.__name__ = f"extract_{step}"
    step_activity.__qualname__ = f"extract_{step}"
    return step_activity


QUERY_ACTIVITIES = [_step_activity(step) for step in STEPS]
