"""Each bad input ends the workflow promptly with an error that says what to check."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from services import scenario

pytestmark = pytest.mark.integration

OTHER_REGION_ARN = (
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:my-postgres-connection-Zz9Zz9"
)


async def fail(runner, connection: dict) -> tuple[ApplicationError, float, object]:
    started = time.monotonic()
    handle = await runner.start(connection)
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=30)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    return cause, time.monotonic() - started, handle


async def resolve_attempts(handle) -> list[int]:
    attempts = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attempts.append(event.activity_task_started_event_attributes.attempt)
    return attempts


def assert_no_secret(message: str, pagila) -> None:
    assert pagila.password not in message
    assert "p@ss" not in message


@pytest.mark.parametrize(
    ("overrides", "error_type", "expected"),
    [
        pytest.param(
            {"secret_arn": "arn:aws:secretsmanager:us-east-1:12345:secret:x"},
            "MalformedArnError",
            ["is malformed", "account '12345' is not a 12-digit AWS account id"],
            id="malformed-arn",
        ),
        pytest.param(
            {"secret_arn": OTHER_REGION_ARN, "region": None},
            "SecretNotFoundError",
            [
                "found no secret",
                "region eu-west-1 (taken from the secret ARN)",
                OTHER_REGION_ARN,
            ],
            id="secret-missing-in-region-of-arn",
        ),
        pytest.param(
            {"secret_arn": OTHER_REGION_ARN, "region": "us-east-1"},
            "RegionMismatchError",
            ["contradicts the secret ARN", "'eu-west-1'"],
            id="region-contradicts-arn",
        ),
        pytest.param(
            {"username": "user", "password": "Postgres_Password"},
            "KeyNameError",
            [
                "the username key name 'user' is not in the secret",
                "did you mean 'postgres_password'",
                "'postgres_user', 'postgres_password'",
            ],
            id="key-names-not-in-secret",
        ),
        pytest.param(
            {"source": "vault"},
            "UnsupportedSourceError",
            ["credential source 'vault' is not supported"],
            id="unsupported-source",
        ),
        pytest.param(
            {"host": None, "database": ""},
            "InvalidConnectionError",
            ["missing host, database"],
            id="missing-host-and-database",
        ),
    ],
)
async def test_bad_connection_description(
    runner, pagila, overrides, error_type, expected
):
    cause, seconds, handle = await fail(runner, pagila.connection(**overrides))

    assert cause.type == error_type
    for text in expected:
        assert text in cause.message
    assert_no_secret(cause.message, pagila)
    assert cause.non_retryable
    # Failed on the first resolution: no pointless retries.
    assert await resolve_attempts(handle) == [1]
    assert seconds < 15


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [
        pytest.param("just-a-plain-VALUE", "is not JSON", id="plain-string"),
        pytest.param(json.dumps(["a", "b"]), "not an object (it is a list)", id="list"),
    ],
)
async def test_secret_that_is_not_a_json_object(
    runner, pagila, moto, secret_string, expected
):
    client = moto.client("secretsmanager", region=scenario.REGION)
    name = f"not-an-object-{abs(hash(secret_string))}"
    arn = client.create_secret(Name=name, SecretString=secret_string)["ARN"]

    cause, _, handle = await fail(runner, pagila.connection(secret_arn=arn))

    assert cause.type == "SecretFormatError"
    assert expected in cause.message
    assert "just-a-plain-VALUE" not in cause.message
    assert await resolve_attempts(handle) == [1]
