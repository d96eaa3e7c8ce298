"""Record the extraction workflow's histories that the replay tests check.

Run it after changing the workflow on purpose (the README says when):

    .venv/bin/python tests/replay/record.py

It starts the embedded servers, runs each scenario with the test-only key ring
in `histories/KEYS`, and writes one JSON history per scenario next to it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import WorkflowFailureError  # noqa: E402

from credentials.sealing import KeyRing  # noqa: E402
from services import scenario  # noqa: E402
from services.stack import Stack  # noqa: E402
from worker import build_worker, data_converter  # noqa: E402
from workflows import SqlExtractionWorkflow  # noqa: E402
from workflows.models import ExtractionRequest  # noqa: E402

HISTORIES = Path(__file__).resolve().parent / "histories"
# A key for these recorded histories only: they hold throwaway test values.
KEYS = HISTORIES / "KEYS"


async def _wait(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the recorded run did not reach its checkpoint")


async def _rejections(handle) -> int:
    count = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            info = event.activity_task_failed_event_attributes.failure
            count += info.application_failure_info.type == "LoginRejected"
    return count


async def record(stack: Stack, ring: KeyRing, output: Path) -> dict[str, str]:
    import os

    os.environ.update(stack.moto.env())
    scene = scenario.prepare(stack.postgres, stack.moto)
    client = await stack.temporal.connect(data_converter=data_converter(ring))
    queue = f"record-{uuid.uuid4().hex[:8]}"

    def request(**extra) -> ExtractionRequest:
        return ExtractionRequest.model_validate(
            {"connection": scene.connection(), "output_dir": str(output), **extra}
        )

    async def start(name: str, req: ExtractionRequest):
        return await client.start_workflow(
            SqlExtractionWorkflow.run, req, id=f"replay-{name}", task_queue=queue
        )

    async def paused(handle) -> bool:
        step = await handle.query(SqlExtractionWorkflow.current_step)
        return step == "paused after schemas"

    ids = {}
    async with build_worker(client, task_queue=queue):
        handle = await start("clean", request())
        await handle.result()
        ids["clean"] = handle.id

        handle = await start("rotation", request(pause_after_step="schemas"))
        await _wait(lambda: paused(handle))
        scene.rotate()
        await handle.signal(SqlExtractionWorkflow.resume, handle.id)
        await handle.result()
        ids["rotation"] = handle.id

        handle = await start(
            "rejected-login",
            request(pause_after_step="schemas", login_retry={"initial_seconds": 0.5}),
        )
        await _wait(lambda: paused(handle))
        password = scenario.new_password()
        scene.set_database_password(password)
        await handle.signal(SqlExtractionWorkflow.resume, handle.id)

        async def rejected() -> bool:
            return await _rejections(handle) >= 1

        await _wait(rejected)
        scene.put_secret(password)
        await handle.result()
        ids["rejected-login"] = handle.id

        handle = await start(
            "bad-key-name",
            ExtractionRequest.model_validate(
                {
                    "connection": scene.connection(username="no_such_key"),
                    "output_dir": str(output),
                }
            ),
        )
        try:
            await handle.result()
        except WorkflowFailureError:
            pass
        else:
            raise AssertionError("the bad key name run was expected to fail")
        ids["bad-key-name"] = handle.id

        for name, workflow_id in ids.items():
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            path = HISTORIES / f"{name}.json"
            path.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
            print(f"recorded {path.relative_to(ROOT)} ({len(history.events)} events)")
    return ids


def main() -> None:
    import tempfile

    ring = KeyRing.parse(KEYS.read_text())
    with Stack() as stack, tempfile.TemporaryDirectory() as output:
        asyncio.run(record(stack, ring, Path(output)))


if __name__ == "__main__":
    main()
