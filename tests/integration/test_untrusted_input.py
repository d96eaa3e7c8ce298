"""Workers run only what a key holder started, and never echo a rejected value."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from workflows import SqlExtractionWorkflow

from .waiting import paused, wait_until

pytestmark = pytest.mark.integration


async def events(handle) -> list:
    return [event async for event in handle.fetch_history_events()]


async def failed_task_messages(handle, converter) -> list[str]:
    messages = []
    for event in await events(handle):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            error: BaseException | None = await converter.decode_failure(failure)
            chain = []
            while error is not None:
                chain.append(str(error))
                error = error.__cause__
            messages.append(" <- ".join(chain))
    return messages


async def test_a_workflow_started_without_the_key_ring_is_not_run(
    temporal, task_queue, client, pagila
):
    # Someone with access to the namespace but not the key ring, pointing the
    # worker at the real secret and a host of their own.
    outsider = await Client.connect(temporal.address, namespace=temporal.namespace)
    handle = await outsider.start_workflow(
        "SqlExtraction",
        {"connection": pagila.connection(host="127.0.0.2"), "output_dir": "/tmp/x"},
        id=f"outsider-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )

    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=30)
    # The failure is encrypted too: only the key ring's holder reads why.
    mine = client.get_workflow_handle(handle.id)
    with pytest.raises(WorkflowFailureError) as read_by_owner:
        await mine.result()
    cause = read_by_owner.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "UnencryptedInput"
    assert "not encrypted with the workers' key ring" in cause.message
    assert caught.value is not None
    kinds = {e.event_type for e in await events(handle)}
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds


async def test_signals_from_outside_neither_wedge_nor_resume_a_run(
    temporal, runner, client, pagila
):
    handle = await runner.start(pagila.connection(), pause_after_step="schemas")
    await paused(handle)
    outsider = await Client.connect(temporal.address, namespace=temporal.namespace)
    theirs = outsider.get_workflow_handle(handle.id)

    await theirs.signal("resume")  # no payload at all
    await theirs.signal("resume", "junk")  # a plain payload
    await theirs.signal("no-such-signal", {"x": 1})

    async def all_three_handled() -> bool:
        history = await events(handle)
        signals = [
            i
            for i, e in enumerate(history)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        done = [
            i
            for i, e in enumerate(history)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        ]
        return len(signals) == 3 and bool(done) and done[-1] > signals[-1]

    await wait_until(all_three_handled, timeout=30, what="the signals handled")
    assert await handle.query(SqlExtractionWorkflow.current_step) == (
        "paused after schemas"
    )

    await handle.signal(SqlExtractionWorkflow.resume, handle.id)
    manifest = await asyncio.wait_for(handle.result(), timeout=60)
    assert manifest.objects["columns"] == 461
    assert await failed_task_messages(handle, client.data_converter) == []


async def test_a_malformed_input_is_refused_without_echoing_its_values(
    client, task_queue, pagila, caplog
):
    canary = "31415926535897"
    connection = {**pagila.connection(), "password": int(canary)}
    caplog.set_level(logging.DEBUG)
    handle = await client.start_workflow(
        "SqlExtraction",
        {"connection": connection, "output_dir": "/tmp/x"},
        id=f"malformed-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )

    async def refused() -> bool:
        return bool(await failed_task_messages(handle, client.data_converter))

    await wait_until(refused, timeout=30, what="the worker to refuse the task")
    messages = await failed_task_messages(handle, client.data_converter)
    assert any(
        "connection.password: Input should be a valid string" in m for m in messages
    )
    assert not any(canary in m for m in messages)
    assert canary not in caplog.text
    assert "connection.password" in caplog.text  # the worker did log the refusal
    await handle.terminate("test done")
