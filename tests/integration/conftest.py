"""A worker on the real servers, the Pagila scenario, and helpers to run workflows."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle

from credentials import aws_access
from credentials.models import ConnectionDescription
from credentials.sealing import KeyRing, generate_key_text
from services import scenario
from worker import build_worker, data_converter
from workflows import SqlExtractionWorkflow
from workflows.models import ExtractionRequest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def aws_env(moto) -> Iterator[dict[str, str]]:
    """Point boto3 in this process (the worker's activities) at the emulator."""
    saved = {k: os.environ.get(k) for k in moto.env()}
    os.environ.update(moto.env())
    yield moto.env()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def aws(moto, monkeypatch):
    """boto3 in this process aimed at moto, with dummy keys and no other AWS_*."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    aws_access.forget_sessions()
    yield moto
    aws_access.forget_sessions()


@pytest.fixture(scope="session")
def key_ring_text() -> str:
    """The session's key ring in the CREDFLOW_KEYS form, for child processes."""
    return generate_key_text("test")


@pytest.fixture(scope="session")
def key_ring(key_ring_text) -> KeyRing:
    return KeyRing.parse(key_ring_text)


@pytest_asyncio.fixture(scope="session")
async def client(temporal, key_ring) -> Client:
    return await temporal.connect(data_converter=data_converter(key_ring))


@pytest_asyncio.fixture(scope="session")
async def task_queue(client, aws_env) -> AsyncIterator[str]:
    queue = f"credflow-test-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue=queue):
        yield queue


@pytest.fixture(scope="session")
def pagila(pg, moto) -> scenario.Scenario:
    """Pagila loaded once; tests that change the password use their own role."""
    return scenario.prepare(pg, moto)


@pytest.fixture
def fresh_login(pg, moto, pagila) -> scenario.Scenario:
    """A login role and secret of this test's own, on the shared Pagila database."""
    suffix = uuid.uuid4().hex[:8]
    return scenario.prepare(
        pg,
        moto,
        database=pagila.database,
        role=f"extractor_{suffix}",
        secret_name=f"pagila-login-{suffix}",
        load=False,
    )


class Runner:
    """Starts extraction workflows on the test worker."""

    def __init__(self, client: Client, task_queue: str, output_dir: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.output_dir = output_dir

    async def start(
        self, connection: dict[str, Any] | ConnectionDescription, **request: Any
    ) -> WorkflowHandle:
        if isinstance(connection, dict):
            connection = ConnectionDescription.model_validate(connection)
        request.setdefault("output_dir", self.output_dir)
        return await self.client.start_workflow(
            SqlExtractionWorkflow.run,
            ExtractionRequest(connection=connection, **request),
            id=f"test-{uuid.uuid4().hex[:12]}",
            task_queue=self.task_queue,
        )


@pytest.fixture
def runner(client, task_queue, tmp_path) -> Runner:
    return Runner(client, task_queue, str(tmp_path / "output"))
