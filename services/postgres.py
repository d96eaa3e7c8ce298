"""A throwaway PostgreSQL cluster on loopback with password authentication on."""

import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import psycopg
from psycopg import sql
from psycopg.abc import Params, Query
from sqlalchemy.engine import URL

from services._process import (
    GroupProcess,
    ManagedService,
    clean_env,
    lost_port_race,
    read_tail,
    stop_at_exit,
    wait_until_ready,
)
from services.errors import (
    ServiceCommandError,
    ServiceError,
    ServiceNotInstalledError,
    ServiceStartError,
)
from services.ports import LOOPBACK, free_port

logger = logging.getLogger(__name__)

BINDIR_ENV = "CREDFLOW_PG_BINDIR"
DEFAULT_BINDIR = Path("/usr/lib/postgresql/15/bin")
# initdb and postgres refuse to run as root; as root we run them as this user.
CLUSTER_OWNER = "postgres"
_REQUIRED_PROGRAMS = ("initdb", "postgres", "psql")
_PORT_ATTEMPTS = 3


def find_bindir() -> Path:
    """Find the PostgreSQL server binaries.

    Looks at $CREDFLOW_PG_BINDIR, then /usr/lib/postgresql/15/bin, then what
    `pg_config --bindir` says. A $CREDFLOW_PG_BINDIR that lacks them is an error
    rather than a reason to look elsewhere, since someone asked for it.
    """
    configured = os.environ.get(BINDIR_ENV)
    if configured:
        bindir = Path(configured)
        missing = _missing_programs(bindir)
        if missing:
            raise ServiceNotInstalledError(
                f"{BINDIR_ENV}={bindir} has no {', '.join(missing)}; point it at "
                "the folder holding PostgreSQL 15's initdb and postgres, or unset it"
            )
        return bindir

    candidates = [DEFAULT_BINDIR]
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(Path(found.stdout.strip()))

    for bindir in candidates:
        if not _missing_programs(bindir):
            return bindir
    searched = " or ".join(str(c) for c in candidates)
    raise ServiceNotInstalledError(
        f"no PostgreSQL server binaries (initdb, postgres, psql) in {searched}; "
        "install PostgreSQL 15's server (Debian: apt-get install postgresql-15) "
        f"or set {BINDIR_ENV}"
    )


def _missing_programs(bindir: Path) -> list[str]:
    return [
        name for name in _REQUIRED_PROGRAMS if not os.access(bindir / name, os.X_OK)
    ]


class PostgresCluster(ManagedService):
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only.

    Host and local connections both need a SCRAM-SHA-256 password; the superuser's
    is generated at start. Use it as a context manager, or call start() and stop().
    """

    host = LOOPBACK

    def __init__(
        self,
        *,
        bindir: Path | None = None,
        superuser: str = "postgres",
        startup_timeout: float = 60.0,
    ) -> None:
        self._bindir = bindir
        self.superuser = superuser
        self.superuser_password = secrets.token_urlsafe(24)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.base_dir: Path | None = None
        self._process: GroupProcess | None = None

    # Paths inside the temporary folder.

    @property
    def data_dir(self) -> Path:
        return self._base() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base() / "socket"

    @property
    def log_path(self) -> Path:
        return self._base() / "postgres.log"

    def _base(self) -> Path:
        if self.base_dir is None:
            raise ServiceError("the PostgreSQL cluster is not started; call start()")
        return self.base_dir

    # Lifecycle.

    def start(self) -> Self:
        """Create the cluster, start its server and wait until it takes logins."""
        if self._process is not None:
            return self
        started_at = time.monotonic()
        bindir = self._bindir or find_bindir()
        self._bindir = bindir
        stop_at_exit(self)
        try:
            self.base_dir = Path(tempfile.mkdtemp(prefix="credflow-pg-"))
            self.socket_dir.mkdir()
            self._init_cluster(bindir)
            self._start_server(bindir)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "PostgreSQL ready on %s:%s in %.1f s",
            self.host,
            self.port,
            time.monotonic() - started_at,
        )
        return self

    def stop(self) -> None:
        """Stop the server at once (an immediate shutdown) and delete the cluster."""
        process, self._process = self._process, None
        try:
            if process is not None:
                _shut_down(process, self.data_dir)
        finally:
            self._discard_folder()

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while the server runs."""
        if self.base_dir is None:
            return None
        return _postmaster_pid(self.data_dir)

    def _init_cluster(self, bindir: Path) -> None:
        base = self._base()
        pwfile = base / "superuser.pw"
        pwfile.write_text(self.superuser_password + "\n", encoding="utf-8")
        pwfile.chmod(0o600)
        if _running_as_root():
            _hand_over(base, self.socket_dir, pwfile)

        argv = [
            str(bindir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            self.superuser,
            "--pwfile",
            str(pwfile),
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            # A cluster that lives for one test session needs no fsync.
            "--no-sync",
        ]
        # In a process group of its own like the server, so that an interrupt
        # ends initdb too and not only the runuser above it.
        initdb = GroupProcess(
            _as_cluster_owner(argv),
            name="initdb",
            log_path=base / "initdb.log",
            env=clean_env(drop_prefixes=("PG",)),
            cwd=base,
        )
        try:
            code = initdb.wait(self.startup_timeout)
        finally:
            initdb.stop(grace=0)
            pwfile.unlink(missing_ok=True)
        if code != 0:
            outcome = "timed out" if code is None else f"failed with code {code}"
            raise ServiceStartError(
                f"initdb {outcome} in {self.data_dir}; it said:\n{initdb.log_tail(20)}"
            )

    def _start_server(self, bindir: Path) -> None:
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = free_port()
            argv = [
                str(bindir / "postgres"),
                "-D",
                str(self.data_dir),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                "password_encryption=scram-sha-256",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                # %e puts each message's SQLSTATE in the log, the only place a
                # client can see 28P01 for a rejected login (libpq keeps it).
                "-c",
                "log_line_prefix=%m [%p] %e ",
            ]
            self._process = GroupProcess(
                _as_cluster_owner(argv),
                name="postgres",
                log_path=self.log_path,
                env=clean_env(drop_prefixes=("PG",)),
                cwd=self._base(),
            )
            try:
                wait_until_ready(
                    self._accepts_login,
                    process=self._process,
                    timeout=self.startup_timeout,
                    what=f"PostgreSQL on {self.host}:{self.port}",
                )
                return
            except ServiceStartError as exc:
                process, self._process = self._process, None
                _shut_down(process, self.data_dir)
                if attempt == _PORT_ATTEMPTS or not lost_port_race(exc):
                    raise

    def _accepts_login(self) -> bool:
        try:
            with self.connect(connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    # Using the cluster.

    def url(self, *, username: str, password: str, database: str) -> URL:
        """A SQLAlchemy URL for a role on this cluster; it quotes every part."""
        return URL.create(
            "postgresql+psycopg",
            username=username,
            password=password,
            host=self.host,
            port=self.port,
            database=database,
        )

    def admin_url(self, database: str = "postgres") -> URL:
        """A SQLAlchemy URL that logs in as the superuser."""
        return self.url(
            username=self.superuser,
            password=self.superuser_password,
            database=database,
        )

    def connect(
        self,
        database: str = "postgres",
        *,
        user: str | None = None,
        password: str | None = None,
        connect_timeout: int = 10,
    ) -> psycopg.Connection[Any]:
        """An autocommit connection over TCP, as the superuser unless told."""
        if user is None:
            user, password = self.superuser, self.superuser_password
        return psycopg.connect(
            # hostaddr too, so that no PGHOSTADDR in the environment can win.
            host=self.host,
            hostaddr=self.host,
            port=self.port,
            dbname=database,
            user=user,
            password=password,
            connect_timeout=connect_timeout,
            autocommit=True,
        )

    def execute(
        self,
        query: Query,
        *,
        database: str = "postgres",
        params: Params | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser; return its rows, if it has any."""
        with self.connect(database) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str, *, owner: str | None = None) -> None:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner is not None:
            statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
        self.execute(statement)

    def create_login_role(self, name: str, password: str) -> None:
        self.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )

    def set_password(self, role: str, password: str) -> None:
        """Change a role's password, as a rotation in the secret store would."""
        self.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )

    def load_sql_file(
        self, path: Path | str, database: str, *, timeout: float = 600.0
    ) -> None:
        """Run a SQL script with psql as the superuser, stopping at its first error.

        The script runs from its own folder, so relative `\\i` includes work.
        """
        script = Path(path).resolve()
        if not script.is_file():
            raise ServiceCommandError(f"no SQL file at {script}")
        bindir = self._bindir or find_bindir()

        env = clean_env(drop_prefixes=("PG",))
        # The password reaches psql through its environment only, never argv,
        # where any user of the machine could read it.
        env.update(
            PGHOST=self.host,
            PGHOSTADDR=self.host,
            PGPORT=str(self.port),
            PGUSER=self.superuser,
            PGPASSWORD=self.superuser_password,
            PGDATABASE=database,
            PGOPTIONS="-c client_min_messages=warning",
        )
        argv = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        done = subprocess.run(
            [*argv, "-f", str(script)],
            cwd=script.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            said = "\n".join(done.stderr.strip().splitlines()[-20:])
            raise ServiceCommandError(
                f"psql stopped with code {done.returncode} loading {script} into "
                f"database {database}; it said:\n{said}"
            )

    def log_tail(self) -> str:
        if self.base_dir is None:
            return ""
        return read_tail(self.log_path)

    def __repr__(self) -> str:
        return (
            f"PostgresCluster(host={self.host!r}, port={self.port!r}, "
            f"running={self.running!r})"
        )


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _as_cluster_owner(argv: list[str]) -> list[str]:
    if not _running_as_root():
        return argv
    runuser = shutil.which("runuser") or shutil.which(
        "runuser", path="/usr/sbin:/sbin:/usr/bin:/bin"
    )
    if runuser is None:
        raise ServiceNotInstalledError(
            f"running as root, PostgreSQL must run as the {CLUSTER_OWNER!r} user, "
            "but runuser (util-linux) is not installed"
        )
    return [runuser, "-u", CLUSTER_OWNER, "--", *argv]


def _hand_over(*paths: Path) -> None:
    """Give the cluster's files to its owner, since postgres won't run as root."""
    try:
        owner = pwd.getpwnam(CLUSTER_OWNER)
    except KeyError:
        raise ServiceNotInstalledError(
            "running as root, PostgreSQL must run as an unprivileged "
            f"{CLUSTER_OWNER!r} user, and there is none; installing the "
            "postgresql-15 package creates it"
        ) from None
    for path in paths:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _shut_down(process: GroupProcess, data_dir: Path) -> None:
    """An immediate shutdown, then the whole process group killed."""

    def ask() -> None:
        # SIGQUIT is what `pg_ctl stop -m immediate` sends. It goes to the
        # postmaster itself: as root, runuser sits between us and it and would
        # turn a signal to the group into a slow "smart" shutdown.
        pid = _postmaster_pid(data_dir)
        if pid is not None:
            os.kill(pid, signal.SIGQUIT)
        else:
            os.killpg(process.pid, signal.SIGQUIT)

    # The postmaster waits for its backends (each in a session of its own, out
    # of reach of the group kill) before it exits, so they go too.
    process.stop(ask=ask, grace=10.0)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first_line)
    except (OSError, ValueError):
        return None
