"""No secret value reaches Temporal, a log line, the CLI's output or an error.

The canary run uses recognisable secret values, then reads the whole history
back with the default converter only (as the server and an outsider see it)
and searches every event for each value and its base64 forms.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from google.protobuf import json_format
from temporalio.client import Client, WorkflowFailureError

from credentials.redaction import install_log_redaction
from services import scenario
from workflows import SqlExtractionWorkflow

from .waiting import login_rejections, paused, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def forms(value: str) -> list[bytes]:
    """The value and every base64 spelling of it, at each byte alignment."""
    raw = value.encode()
    found = [raw]
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + raw)
            # Drop the characters that also encode the padding bytes and the end.
            found.append(text[4 if shift else 0 : -4])
    return found


def hits(blob: bytes, secrets: list[str]) -> list[str]:
    return [s for s in secrets for form in forms(s) if form and form in blob]


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured_logs():
    """Everything logged in this process at any level, with the worker's set-up."""
    root = logging.getLogger()
    capture = Capture()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    install_log_redaction(root)
    yield capture
    root.removeHandler(capture)
    root.setLevel(old_level)


async def raw_history(temporal, workflow_id: str) -> bytes:
    """The history as the server holds it, decoded with the default converter only."""
    outsider = await Client.connect(temporal.address, namespace=temporal.namespace)
    handle = outsider.get_workflow_handle(workflow_id)
    blob = b""
    async for event in handle.fetch_history_events():
        blob += event.SerializeToString()
        blob += json_format.MessageToJson(event).encode()
    return blob


async def test_canary_secrets_never_reach_history_logs_or_cli(
    runner, fresh_login, temporal, key_ring_text, moto, captured_logs, tmp_path
):
    canaries = [f"CANARY-first-{uuid.uuid4().hex}", f"CANARY-second-{uuid.uuid4().hex}"]
    fresh_login.set_database_password(canaries[0])
    fresh_login.put_secret(canaries[0])

    # The demo scenario: a rotation between steps, and a rejected login that
    # resolves again (the database changes a moment before the secret).
    handle = await runner.start(
        fresh_login.connection(),
        pause_after_step="schemas",
        login_retry={"initial_seconds": 0.5},
    )
    await paused(handle)
    fresh_login.set_database_password(canaries[1])
    await handle.signal(SqlExtractionWorkflow.resume, handle.id)

    async def rejected() -> bool:
        return await login_rejections(handle) >= 1

    await wait_until(rejected, timeout=30, what="a rejected login")
    fresh_login.put_secret(canaries[1])
    manifest = await handle.result()
    assert manifest.objects["columns"] == 461

    # Direct mode: the password typed into the description is a secret too.
    direct = f"CANARY-direct-{uuid.uuid4().hex}"
    canaries.append(direct)
    fresh_login.set_database_password(direct)
    direct_handle = await runner.start(
        {
            "source": "direct",
            "username": fresh_login.role,
            "password": direct,
            "host": fresh_login.pg.host,
            "port": fresh_login.pg.port,
            "database": fresh_login.database,
        }
    )
    await direct_handle.result()

    # A bad key name in a secret whose values are canaries.
    bad = f"CANARY-bad-{uuid.uuid4().hex}"
    canaries.append(bad)
    arn = moto.client("secretsmanager", region=scenario.REGION).create_secret(
        Name=f"canary-{uuid.uuid4().hex[:6]}",
        SecretString=json.dumps({"user": "x", "pass": bad}),
    )["ARN"]
    bad_handle = await runner.start(fresh_login.connection(secret_arn=arn))
    with pytest.raises(WorkflowFailureError) as caught:
        await bad_handle.result()
    assert "'user', 'pass'" in str(caught.value.cause)
    assert hits(str(caught.value.cause).encode(), canaries) == []

    for workflow_id in (handle.id, direct_handle.id, bad_handle.id):
        blob = await raw_history(temporal, workflow_id)
        assert len(blob) > 1000
        assert hits(blob, canaries) == [], f"secret in the history of {workflow_id}"
        # The payloads are there, but encrypted: not even key names show.
        assert b"binary/encrypted" in blob
        assert b"postgres_password" not in blob

    logged = "\n".join(captured_logs.lines).encode()
    assert b"resolved credentials for step" in logged  # the worker did log
    assert hits(logged, canaries) == []
    # The redaction filter had nothing to mask: messages are clean at the source.
    assert b"**********" not in logged

    # The CLI: `credflow run` against the same server and worker.
    description = tmp_path / "connection.json"
    description.write_text(json.dumps(fresh_login.connection()))
    fresh_login.set_database_password(canaries[1])
    env = {
        **os.environ,
        "CREDFLOW_TEMPORAL_ADDRESS": temporal.address,
        "CREDFLOW_TASK_QUEUE": runner.task_queue,
        "CREDFLOW_KEYS": key_ring_text,
        "CREDFLOW_LOG_LEVEL": "DEBUG",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "cli.main",
            "run",
            str(description),
            "--output",
            str(tmp_path / "cli-output"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b'"columns": 461' in done.stdout
    assert hits(done.stdout + done.stderr, canaries) == []
