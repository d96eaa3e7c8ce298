"""Values that cannot work end the workflow at once, named but never quoted.

Each case runs the real workflow on Temporal, moto and PostgreSQL and checks
the error type, that no activity was retried, and that no secret value is in
the failure.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError

from services import scenario

pytestmark = pytest.mark.integration

CANARY = f"CANARY-{uuid.uuid4().hex}"

ALL_KINDS = {
    "databases",
    "schemas",
    "table",
    "partition",
    "partitioned table",
    "view",
    "materialized view",
    "foreign table",
    "domain",
    "enum",
    "range",
    "columns",
}


async def failure(runner, connection: dict) -> tuple[ApplicationError, WorkflowHandle]:
    """The application error that ended the run, whichever activity raised it."""
    handle = await runner.start(connection)
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=30)
    cause = caught.value.cause
    # The run fails with the step's own error, not a bare "activity failed".
    assert not isinstance(cause, ActivityError)
    assert isinstance(cause, ApplicationError)
    return cause, handle


async def attempts(handle: WorkflowHandle) -> dict[str, int]:
    """The last attempt number of each activity type the run started."""
    found: dict[str, int] = {}
    scheduled: dict[int, str] = {}
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            name = scheduled[attributes.scheduled_event_id]
            found[name] = max(found.get(name, 0), attributes.attempt)
    return found


def new_secret(moto, values: dict | str) -> str:
    client = moto.client("secretsmanager", region=scenario.REGION)
    text = values if isinstance(values, str) else json.dumps(values)
    name = f"values-{uuid.uuid4().hex[:8]}"
    return client.create_secret(Name=name, SecretString=text)["ARN"]


async def test_a_session_token_with_a_line_break_fails_once_without_quoting_it(
    runner, pagila
):
    access = {
        "mode": "static",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "session_token": f"{CANARY}\n",
    }
    cause, handle = await failure(runner, pagila.connection(aws_access=access))

    assert cause.type == "InvalidConnectionError"
    assert "aws_access.session_token" in cause.message
    assert CANARY not in cause.message
    assert await attempts(handle) == {"resolve_credentials": 1}


async def test_an_endpoint_that_is_not_a_url_fails_once(runner, pagila):
    cause, handle = await failure(
        runner, pagila.connection(aws_endpoint_url="not a url")
    )

    assert cause.type == "InvalidConnectionError"
    assert "aws_endpoint_url is not an http:// or https:// URL" in cause.message
    assert await attempts(handle) == {"resolve_credentials": 1}


async def test_a_database_key_pointing_at_the_password_never_shows_it(runner, pagila):
    connection = pagila.connection(database=None, database_key=scenario.PASSWORD_KEY)
    cause, handle = await failure(runner, connection)

    assert cause.type == "InvalidConnectionError"
    assert (
        f"the database (key {scenario.PASSWORD_KEY!r}) and the password "
        f"(key {scenario.PASSWORD_KEY!r}) have the same value"
    ) in cause.message
    assert pagila.password not in cause.message
    assert await attempts(handle) == {"resolve_credentials": 1}


async def test_an_empty_password_in_the_secret_is_not_retried(runner, pagila, moto):
    arn = new_secret(moto, {scenario.USER_KEY: pagila.role, scenario.PASSWORD_KEY: ""})
    cause, handle = await failure(runner, pagila.connection(secret_arn=arn))

    assert cause.type == "CredentialValueError"
    assert f"the password (key {scenario.PASSWORD_KEY!r} of secret" in cause.message
    assert "is empty" in cause.message
    assert cause.non_retryable
    assert await attempts(handle) == {"resolve_credentials": 1}


async def test_a_nul_in_a_typed_in_password_is_not_retried(runner, pagila):
    connection = {
        "source": "direct",
        "username": pagila.role,
        "password": f"{CANARY}\x00",
        "host": pagila.pg.host,
        "port": pagila.pg.port,
        "database": pagila.database,
    }
    cause, handle = await failure(runner, connection)

    assert cause.type == "CredentialValueError"
    assert "holds a NUL character" in cause.message
    assert CANARY not in cause.message
    assert await attempts(handle) == {"resolve_credentials": 1}


async def test_a_database_that_does_not_exist_is_not_retried(runner, pagila):
    cause, handle = await failure(runner, pagila.connection(database="no_such_db"))

    assert cause.type == "DatabaseNotFound"
    assert cause.message.startswith("step preflight failed: ")
    assert f"{pagila.pg.host}:{pagila.pg.port} has no database 'no_such_db'" in (
        cause.message
    )
    assert "database_key" in cause.message
    assert pagila.password not in cause.message
    assert await attempts(handle) == {
        "resolve_credentials": 1,
        "extract_preflight": 1,
    }


async def test_a_plain_secret_with_a_trailing_line_break_logs_in(runner, fresh_login):
    arn = new_secret(fresh_login.moto, f"{fresh_login.password}\r\n")
    connection = fresh_login.connection(
        secret_arn=arn, secret_format="plain", username=fresh_login.role, password=None
    )
    handle = await runner.start(connection, filters={"include": ["public"]})
    manifest = await asyncio.wait_for(handle.result(), timeout=60)

    assert manifest.objects["columns"] == 461


async def test_a_filter_that_matches_nothing_lists_every_kind_with_zero(runner, pagila):
    handle = await runner.start(
        pagila.connection(), filters={"include": ["no_schema_has_this_name"]}
    )
    manifest = await asyncio.wait_for(handle.result(), timeout=60)

    assert set(manifest.objects) == ALL_KINDS
    assert manifest.objects["databases"] >= 1
    assert {
        k: v for k, v in manifest.objects.items() if k != "databases"
    } == dict.fromkeys(ALL_KINDS - {"databases"}, 0)
