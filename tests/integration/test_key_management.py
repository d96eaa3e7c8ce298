"""Key rotation across workers, and the codec endpoint for operators."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from codec.server import CodecServer
from credentials.sealing import KeyRing, generate_key_text
from services.temporal import find_temporal_cli
from worker import build_worker, data_converter
from workflows import SqlExtractionWorkflow
from workflows.models import ExtractionRequest

from .waiting import paused, wait_until

pytestmark = pytest.mark.integration

K1, K2 = generate_key_text("rot-k1"), generate_key_text("rot-k2")


async def workflow_task_failures(handle, converter) -> list[str]:
    """Failure messages of failed workflow tasks, decoded (they are encrypted)."""
    messages = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failure = event.workflow_task_failed_event_attributes.failure
            messages.append(str(await converter.decode_failure(failure)))
    return messages


async def test_a_run_started_under_key_1_finishes_on_a_ring_that_encrypts_with_key_2(
    temporal, pagila, aws_env, tmp_path
):
    queue = f"rotation-{uuid.uuid4().hex[:8]}"
    old_ring, new_ring, without_k1 = (
        KeyRing.parse(K1),
        KeyRing.parse(f"{K2},{K1}"),
        KeyRing.parse(K2),
    )
    old_client = await temporal.connect(data_converter=data_converter(old_ring))
    request = ExtractionRequest.model_validate(
        {
            "connection": pagila.connection(),
            "output_dir": str(tmp_path),
            "pause_after_step": "schemas",
        }
    )

    async with build_worker(old_client, task_queue=queue):
        handle = await old_client.start_workflow(
            SqlExtractionWorkflow.run,
            request,
            id=f"rot-{uuid.uuid4().hex}",
            task_queue=queue,
        )
        await paused(handle)

    # A worker that lacks key 1 cannot read the run: its workflow task fails
    # with a message naming the key, and the worker itself keeps running.
    blind_client = await temporal.connect(data_converter=data_converter(without_k1))
    blind = build_worker(blind_client, task_queue=queue)
    blind_run = asyncio.create_task(blind.run())
    await blind_client.get_workflow_handle(handle.id).signal(
        SqlExtractionWorkflow.resume, handle.id
    )

    converter = data_converter(new_ring)

    async def failed_clearly() -> bool:
        failures = await workflow_task_failures(handle, converter)
        return any("rot-k1" in m for m in failures)

    await wait_until(failed_clearly, timeout=60, what="a workflow task failure")
    assert not blind_run.done()
    failures = await workflow_task_failures(handle, converter)
    message = next(m for m in failures if "rot-k1" in m)
    assert "does not hold" in message
    await blind.shutdown()
    await blind_run

    # The rotated ring (encrypts with key 2, still holds key 1) finishes it.
    new_client = await temporal.connect(data_converter=data_converter(new_ring))
    async with build_worker(new_client, task_queue=queue):
        manifest = await new_client.get_workflow_handle_for(
            SqlExtractionWorkflow.run, handle.id
        ).result()
    assert manifest.objects["columns"] == 461

    # What the new ring wrote is under key 2; key 1 alone cannot read the result.
    outsider = await Client.connect(temporal.address)
    key_ids = set()
    async for event in outsider.get_workflow_handle(handle.id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            for (
                payload
            ) in event.workflow_execution_completed_event_attributes.result.payloads:
                key_ids.add(payload.metadata["encryption-key-id"].decode())
    assert key_ids == {"rot-k2"}


def post(url: str, body: bytes, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def test_codec_endpoint_decodes_for_a_key_holder_and_refuses_others(
    temporal, runner, pagila, key_ring
):
    handle = await runner.start(pagila.connection())
    await handle.result()
    outsider = await Client.connect(temporal.address)
    first = None
    async for event in outsider.get_workflow_handle(handle.id).fetch_history_events():
        first = event
        break
    encrypted = first.workflow_execution_started_event_attributes.input
    body = json_format.MessageToJson(encrypted).encode()

    with CodecServer(key_ring, port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, answer = post(f"{server.url}/decode", body, key_ring.access_token())
        assert status == 200
        decoded = json_format.Parse(answer, Payloads())
        request = json.loads(decoded.payloads[0].data)
        assert request["connection"]["secret_arn"] == pagila.secret_arn
        assert request["connection"]["password"].startswith("sealed:v1:")

        other = KeyRing.parse(generate_key_text("test"))
        for token in (None, "", "not-a-token", other.access_token()):
            status, answer = post(f"{server.url}/decode", body, token)
            assert status == 401
            assert pagila.secret_arn.encode() not in answer

        # The Temporal CLI decodes through it, given the token.
        cli = str(find_temporal_cli())
        args = [
            cli,
            "workflow",
            "show",
            "-w",
            handle.id,
            "--address",
            temporal.address,
            "--output",
            "json",
            "--codec-endpoint",
            server.url,
        ]
        shown = await asyncio.to_thread(
            subprocess.run,
            [*args, "--codec-auth", f"Bearer {key_ring.access_token()}"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr[-500:]
        assert pagila.secret_arn.encode() in started_input(shown.stdout)
        refused = await asyncio.to_thread(
            subprocess.run, args, capture_output=True, timeout=60, check=False
        )
        assert pagila.secret_arn.encode() not in started_input(refused.stdout)


def started_input(shown: bytes) -> bytes:
    """The workflow input's data in `temporal workflow show --output json`."""
    try:
        events = json.loads(shown)["events"]
    except (ValueError, KeyError):
        return b""
    payloads = events[0]["workflowExecutionStartedEventAttributes"]["input"]
    return b"".join(base64.b64decode(p.get("data", "")) for p in payloads["payloads"])
