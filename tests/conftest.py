"""The real servers the integration tests share: PostgreSQL, moto and Temporal.

Each starts once per session on free loopback ports and is stopped at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from services import MotoServer, PostgresCluster, TemporalDevServer

# Nothing in the tests may ever reach the instance metadata address.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


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
