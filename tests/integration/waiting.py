"""Waiting on workflow conditions with deadlines, and reading their histories."""

from __future__ import annotations

import asyncio
import time

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from workflows import SqlExtractionWorkflow


async def wait_until(condition, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def paused(handle: WorkflowHandle, step: str = "schemas") -> None:
    """Wait until a run started with `pause_after_step=step` holds there."""

    async def at_pause() -> bool:
        current = await handle.query(SqlExtractionWorkflow.current_step)
        return current == f"paused after {step}"

    await wait_until(at_pause, timeout=60, what=f"the pause after {step}")


async def history_counts(handle: WorkflowHandle) -> tuple[int, int]:
    """Rejected logins and timers (backoff waits) in the workflow's history."""
    rejected = timers = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            failure = event.activity_task_failed_event_attributes.failure
            if failure.application_failure_info.type == "LoginRejected":
                rejected += 1
        elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            timers += 1
    return rejected, timers


async def login_rejections(handle: WorkflowHandle) -> int:
    return (await history_counts(handle))[0]
