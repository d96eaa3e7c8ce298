"""A credential that expired before its step logged in is resolved afresh.

The query activities here are stand-ins with the real names: an IAM token
cannot be made to expire on this machine without waiting 15 minutes, and what
is under test is the workflow's answer to the expiry, not the login.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities import resolve_credentials
from activities.models import STEPS, StepRequest, StepResult
from worker import workflow_runner
from workflows import SqlExtractionWorkflow
from workflows.models import ExtractionRequest

pytestmark = pytest.mark.integration

calls: list[str] = []


def stand_in(step: str):
    @activity.defn(name=f"extract_{step}")
    def run(request: StepRequest) -> StepResult:
        calls.append(step)
        if step == "tables" and calls.count("tables") == 1:
            raise ApplicationError(
                "the credential expired before the step could log in",
                type="CredentialExpired",
                non_retryable=True,
            )
        return StepResult(step=step, count=1)

    return run


async def test_an_expired_credential_is_resolved_again_not_rejected(client, pg):
    queue = f"expiry-{uuid.uuid4().hex[:8]}"
    request = ExtractionRequest.model_validate(
        {
            "connection": {
                "source": "direct",
                "username": "someone",
                "password": "a-typed-in-password",
                "host": pg.host,
                "database": "postgres",
            },
            "output_dir": "/tmp/unused",
        }
    )
    calls.clear()
    async with Worker(
        client,
        task_queue=queue,
        workflows=[SqlExtractionWorkflow],
        activities=[resolve_credentials, *(stand_in(step) for step in STEPS)],
        activity_executor=ThreadPoolExecutor(4),
        workflow_runner=workflow_runner(),
    ):
        manifest = await client.execute_workflow(
            SqlExtractionWorkflow.run,
            request,
            id=f"expiry-{uuid.uuid4().hex}",
            task_queue=queue,
        )

    tables = next(s for s in manifest.steps if s.step == "tables")
    assert calls.count("tables") == 2
    assert tables.resolutions == 2
    assert tables.rejected_version_ids == []
    assert tables.failed_logins == 0
    assert manifest.failed_logins == 0
