"""A password rotator for the tests, in the order AWS's rotation functions follow.

createSecret stages a new version as AWSPENDING, setSecret changes the
database, testSecret logs in with it, finishSecret moves AWSCURRENT to it.
Two strategies: one user whose password changes, or two users (`app` and
`app_clone`) that take turns, the secret switching to the one just changed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from services.scenario import PASSWORD_KEY, USER_KEY, new_password

SINGLE_USER = "single-user"
ALTERNATING_USERS = "alternating-users"


@dataclass
class Rotator:
    """Rotates one secret's password against the database `pg`.

    `users` holds one role (single user) or two (alternating users); the
    secret starts on `users[0]`. `window_seconds` is the time between
    setSecret and finishSecret, during which AWSCURRENT no longer logs in.
    """

    pg: Any
    client: Any
    secret_arn: str
    database: str
    users: tuple[str, ...]
    window_seconds: float = 0.0
    rotations: int = 0
    versions: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: BaseException | None = None

    @property
    def strategy(self) -> str:
        return SINGLE_USER if len(self.users) == 1 else ALTERNATING_USERS

    def current_version(self) -> str:
        stages = self.client.describe_secret(SecretId=self.secret_arn)
        for version, names in stages["VersionIdsToStages"].items():
            if "AWSCURRENT" in names:
                return version
        raise LookupError("the secret has no AWSCURRENT version")

    def create_secret(self) -> tuple[str, str, str]:
        """createSecret: a new version staged as AWSPENDING only."""
        current = json.loads(
            self.client.get_secret_value(
                SecretId=self.secret_arn, VersionStage="AWSCURRENT"
            )["SecretString"]
        )
        user = current[USER_KEY]
        if self.strategy == ALTERNATING_USERS:
            user = self.users[1] if user == self.users[0] else self.users[0]
        password = new_password()
        token = str(uuid.uuid4())
        self.client.put_secret_value(
            SecretId=self.secret_arn,
            ClientRequestToken=token,
            SecretString=json.dumps({USER_KEY: user, PASSWORD_KEY: password}),
            VersionStages=["AWSPENDING"],
        )
        return token, user, password

    def set_secret(self, user: str, password: str) -> None:
        self.pg.set_password(user, password)

    def test_secret(self, user: str, password: str) -> None:
        with self.pg.connect(self.database, user=user, password=password) as conn:
            conn.execute("SELECT 1")

    def finish_secret(self, token: str) -> None:
        current = self.current_version()
        self.client.update_secret_version_stage(
            SecretId=self.secret_arn,
            VersionStage="AWSCURRENT",
            MoveToVersionId=token,
            RemoveFromVersionId=current,
        )
        self.client.update_secret_version_stage(
            SecretId=self.secret_arn,
            VersionStage="AWSPENDING",
            RemoveFromVersionId=token,
        )

    def rotate(self) -> str:
        """One whole rotation; returns the new version id."""
        token, user, password = self.create_secret()
        self.set_secret(user, password)
        self.test_secret(user, password)
        if self.window_seconds:
            self._stop.wait(self.window_seconds)
        self.finish_secret(token)
        self.rotations += 1
        self.versions.append(token)
        return token

    # Continuous rotation in a background thread.

    def start(self, every_seconds: float, *, max_rotations: int = 1000) -> None:
        def loop() -> None:
            try:
                while self.rotations < max_rotations:
                    started = time.monotonic()
                    self.rotate()
                    pause = every_seconds - (time.monotonic() - started)
                    if self._stop.wait(max(pause, 0.0)):
                        return
            except BaseException as exc:  # reported by stop()
                self.error = exc

        self._stop.clear()
        self._thread = threading.Thread(target=loop, name="rotator", daemon=True)
        self._thread.start()

    def stop(self) -> int:
        """Stop rotating (a rotation under way finishes); the rotations made."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.error is not None:
            raise self.error
        return self.rotations


def create_wide_catalog(
    pg: Any, database: str, *, tables: int, columns: int = 8, schema: str = "wide"
) -> None:
    """A database with `tables` tables of `columns` columns each in `schema`."""
    pg.create_database(database)
    names = ", ".join(
        f"c{i} {kind}"
        for i, kind in zip(
            range(columns),
            ["integer", "text", "bigint", "timestamptz", "numeric", "boolean"]
            * columns,
            strict=False,
        )
    )
    pg.execute(f"CREATE SCHEMA {schema}", database=database)
    # One statement per batch keeps the server's memory for one DO block small.
    for first in range(0, tables, 500):
        last = min(first + 500, tables)
        pg.execute(
            f"DO $$ BEGIN FOR i IN {first}..{last - 1} LOOP "
            f"EXECUTE format('CREATE TABLE {schema}.t%s ({names})', i); "
            "END LOOP; END $$",
            database=database,
        )
