"""The real servers the tests share: PostgreSQL, moto and the Temporal dev server.

Each starts the first time a test asks for it, on free loopback ports, and stops
when the session ends.
"""

import os
import threading
from collections.abc import Iterator

import pytest

from services import (
    MotoServer,
    PostgresCluster,
    TemporalDevServer,
    install_signal_handlers,
)

# Nothing in the tests may ever try the instance metadata address.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def pytest_configure(config: pytest.Config) -> None:
    # A SIGTERM (a CI time-out, a closed terminal) would end pytest at once and
    # leave the servers running; as a KeyboardInterrupt it makes pytest stop
    # and run the session fixtures' teardown.
    if threading.current_thread() is threading.main_thread():
        install_signal_handlers()


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="session")
def temporal() -> Iterator[TemporalDevServer]:
    with TemporalDevServer() as server:
        yield server
