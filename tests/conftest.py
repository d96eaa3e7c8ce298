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
# A test that forgets to aim boto3 at its emulator reaches a closed loopback
# port with dummy keys, never a real AWS endpoint with real credentials.
for _name in [
    n for n in os.environ if n.startswith("AWS_") and n != "AWS_EC2_METADATA_DISABLED"
]:
    del os.environ[_name]
os.environ.update(
    AWS_ENDPOINT_URL="http://127.0.0.1:9",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)


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
