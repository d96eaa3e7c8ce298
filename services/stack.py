"""All three embedded services together: PostgreSQL, moto and Temporal."""

import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor, wait
from types import FrameType, TracebackType
from typing import Self

from services.aws import MotoServer
from services.postgres import PostgresCluster
from services.temporal import TemporalDevServer

logger = logging.getLogger(__name__)


class Stack:
    """PostgreSQL, moto and the Temporal dev server, started together.

    They start concurrently, and stop in the reverse order of `services`
    whatever happens: if one fails to start, those already up are stopped before
    the error goes on. Pass ready-made, unstarted services to change their
    options.
    """

    def __init__(
        self,
        *,
        postgres: PostgresCluster | None = None,
        moto: MotoServer | None = None,
        temporal: TemporalDevServer | None = None,
    ) -> None:
        self.postgres = postgres or PostgresCluster()
        self.moto = moto or MotoServer()
        self.temporal = temporal or TemporalDevServer()

    @property
    def services(self) -> tuple[PostgresCluster, MotoServer, TemporalDevServer]:
        return (self.postgres, self.moto, self.temporal)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        started_at = time.monotonic()
        # Each start mostly waits on a child process, so threads overlap them
        # well even on two cores.
        pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="stack-start")
        futures = [pool.submit(service.start) for service in self.services]
        try:
            for future in futures:
                future.result()
        except BaseException:
            # Ctrl-C cannot cut a start short in its thread: let the others
            # finish so that what they started is stopped here too, not left
            # for the exit net.
            wait(futures)
            self.stop()
            raise
        finally:
            pool.shutdown(wait=False)
        logger.info("stack ready in %.1f s", time.monotonic() - started_at)
        return self

    def stop(self) -> None:
        """Stop every service, last started first, even when one stop fails."""
        errors: list[BaseException] = []
        for service in reversed(self.services):
            try:
                service.stop()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            first = errors[0]
            for other in errors[1:]:
                first.add_note(f"also failed to stop: {other!r}")
            raise first


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP unwind the program like Ctrl-C does.

    By default they end Python at once, skipping every `with` block and atexit
    handler, so the servers would outlive it. Call this from a main program's
    main thread only: it replaces the handlers for the whole process.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
