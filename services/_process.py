"""Server processes in their own process group, stopped whole, with an exit net."""

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from services.errors import ServiceStartError

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 40
_POLL_INTERVAL = 0.05


class GroupProcess:
    """A server started in a new session, so that it and its children stop together.

    Its standard output and error go to `log_path`, whose tail ends every start
    error.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_path: Path,
        env: Mapping[str, str],
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                # A new session keeps a terminal's Ctrl-C away from the server,
                # so the parent decides when and how it stops, and gives the
                # server a process group of its own to kill as a whole.
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    def running(self) -> bool:
        # Looks without reaping: an unreaped leader keeps its pid, and so the
        # group id stays ours until stop() has killed the whole group.
        return self.exit_code() is None

    def exit_code(self) -> int | None:
        if self._popen.returncode is not None:
            return self._popen.returncode
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return -1
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status

    def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit; its exit code, or None on time-out."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL)
        return self.exit_code()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return read_tail(self.log_path, lines)

    def stop(
        self,
        *,
        ask: Callable[[], None] | None = None,
        grace: float = 10.0,
    ) -> None:
        """Ask the server to exit, then kill its whole process group.

        Args:
            ask: sends the polite stop request; by default SIGTERM to the group.
            grace: seconds the server gets to exit before it is killed.
        """
        if self.running() and grace > 0:
            try:
                if ask is None:
                    self._signal_group(signal.SIGTERM)
                else:
                    ask()
            except OSError:
                # Gone already, or not ours to signal: the SIGKILL below decides.
                pass
            self.wait(grace)

        # The leader stays a zombie until it is reaped below, so the group id
        # cannot have been reused by an unrelated process yet.
        self._signal_group(signal.SIGKILL)
        try:
            self._popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.warning("%s (pid %s) survived SIGKILL", self.name, self.pid)

    def _signal_group(self, signum: int) -> None:
        if self._popen.returncode is not None:
            # Already reaped: the group id may belong to someone else by now.
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)


def read_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def wait_until_ready(
    probe: Callable[[], bool],
    *,
    process: GroupProcess,
    timeout: float,
    what: str,
) -> None:
    """Poll `probe` until it returns True, the process exits, or time runs out.

    Raises:
        ServiceStartError: the process exited or the deadline passed; the message
            ends with the process's log tail.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not process.running():
            raise ServiceStartError(
                f"{what} exited with code {process.exit_code()} before it was "
                f"ready; its log ends with:\n{process.log_tail()}"
            )
        if probe():
            return
        if time.monotonic() >= deadline:
            raise ServiceStartError(
                f"{what} was not ready after {timeout:.0f} s; its log ends "
                f"with:\n{process.log_tail()}"
            )
        time.sleep(_POLL_INTERVAL)


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def lost_port_race(error: ServiceStartError) -> bool:
    """Tell whether a start failed because another process took the port first."""
    return "address already in use" in str(error).lower()


def clean_env(drop_prefixes: Sequence[str] = ()) -> dict[str, str]:
    """Copy this process's environment for a server child.

    Drops proxy settings and the variables with the given prefixes, which could
    otherwise aim the child at another host.
    """
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    return {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in proxies
        and not any(key.startswith(prefix) for prefix in drop_prefixes)
    }


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_live: dict[int, _Stoppable] = {}
_live_lock = threading.Lock()


def stop_at_exit(service: _Stoppable) -> None:
    """Remember a started service so that interpreter exit stops it if nobody did."""
    with _live_lock:
        _live[id(service)] = service


def forget_at_exit(service: _Stoppable) -> None:
    with _live_lock:
        _live.pop(id(service), None)


# Limitation: atexit runs on a normal exit, an uncaught exception and Ctrl-C,
# and on SIGTERM/SIGHUP once install_signal_handlers() is in place, but not
# when the parent is killed with SIGKILL or crashes: the servers then outlive
# it until killed by hand (their temporary folders are named credflow-*).
@atexit.register
def _stop_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live.values())
    for service in reversed(leftovers):
        try:
            service.stop()
        except Exception:
            # Exit is under way: report and go on with the others.
            logger.exception("could not stop %r at exit", service)


class ManagedService:
    """What the embedded servers share: one child process, a with-block lifetime."""

    _process: GroupProcess | None = None
    base_dir: Path | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _discard_folder(self) -> None:
        """Delete the service's temporary folder; the at-exit net is not needed."""
        base, self.base_dir = self.base_dir, None
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        forget_at_exit(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
