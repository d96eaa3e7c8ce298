"""Build and run a credflow worker: its activities, workflow and data converter.

Run it with `python worker.py` (or `credflow worker`); it reads its settings
from the environment (see the README's configuration section).
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import (
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)

from activities import ALL_ACTIVITIES
from codec import encrypted_data_converter
from credentials.cache import cache_seconds_from_env
from credentials.errors import KeyRingError
from credentials.redaction import install_log_redaction
from credentials.sealing import KeyRing, load_key_ring
from workflows import ALL_WORKFLOWS

TASK_QUEUE = "credflow-extraction"

log = logging.getLogger("credflow.worker")


@dataclass(frozen=True)
class TemporalSettings:
    """Where the Temporal cluster is and how to reach it."""

    address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    api_key: str | None = field(default=None, repr=False)
    tls: bool = False
    max_concurrent_activities: int = 16

    @classmethod
    def from_env(cls) -> TemporalSettings:
        env = os.environ
        api_key = env.get("CREDFLOW_TEMPORAL_API_KEY") or None
        return cls(
            address=env.get("CREDFLOW_TEMPORAL_ADDRESS", cls.address),
            namespace=env.get("CREDFLOW_TEMPORAL_NAMESPACE", cls.namespace),
            task_queue=env.get("CREDFLOW_TASK_QUEUE", cls.task_queue),
            api_key=api_key,
            # Temporal Cloud with an API key always needs TLS.
            tls=env.get("CREDFLOW_TEMPORAL_TLS", "").lower() in {"1", "true", "yes"}
            or api_key is not None,
            max_concurrent_activities=int(
                env.get("CREDFLOW_MAX_CONCURRENT_ACTIVITIES", "16")
            ),
        )


def data_converter(key_ring: KeyRing) -> DataConverter:
    """Pydantic payloads sealed and encrypted with `key_ring`, failures encoded."""
    return encrypted_data_converter(key_ring)


async def connect(settings: TemporalSettings, key_ring: KeyRing) -> Client:
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        api_key=settings.api_key,
        tls=settings.tls,
        data_converter=data_converter(key_ring),
    )


def workflow_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox, with the modules that seal credentials passed through.

    Credential fields are unsealed wherever a payload is read, the sandbox
    included. `cryptography`'s native code raises its own exception types and
    aborts the process if the sandbox hands it a re-imported copy of them, so
    it and the sealing code use the real modules.
    """
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "cryptography", "credentials", "pydantic", "pydantic_core"
        )
    )


def build_worker(
    client: Client,
    *,
    task_queue: str = TASK_QUEUE,
    max_concurrent_activities: int = 16,
) -> Worker:
    """A worker for the extraction workflow and all its activities."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=ALL_WORKFLOWS,
        activities=ALL_ACTIVITIES,
        workflow_runner=workflow_runner(),
        # The activities are synchronous (boto3, psycopg): they run on threads.
        activity_executor=ThreadPoolExecutor(max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
    )


async def run_worker(settings: TemporalSettings, key_ring: KeyRing) -> None:
    client = await connect(settings, key_ring)
    worker = build_worker(
        client,
        task_queue=settings.task_queue,
        max_concurrent_activities=settings.max_concurrent_activities,
    )
    log.info(
        "worker polling %s on %s (namespace %s), key ring %s",
        settings.task_queue,
        settings.address,
        settings.namespace,
        key_ring.key_ids,
    )
    await worker.run()


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("CREDFLOW_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_log_redaction()
    # Refuse to start without keys: credentials could not be sealed otherwise.
    try:
        key_ring = load_key_ring()
        cache_seconds_from_env()
    except (KeyRingError, ValueError) as err:
        raise SystemExit(f"credflow worker: refusing to start: {err}") from None
    asyncio.run(run_worker(TemporalSettings.from_env(), key_ring))


if __name__ == "__main__":
    main()
