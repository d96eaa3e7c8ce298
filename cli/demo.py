"""The demo: the whole main job on embedded servers, with a rotation mid-run.

Starts the Temporal dev server, moto's server as Secrets Manager and a throwaway
PostgreSQL cluster; loads Pagila; stores the login in a secret; runs the
extraction workflow; rotates the password while it runs; prints a summary.
Everything it starts is stopped at the end, on Ctrl-C and on failure too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from pathlib import Path

from credentials.models import ConnectionDescription
from credentials.redaction import install_log_redaction
from credentials.sealing import KeyRing

log = logging.getLogger("credflow.demo")


def _print(text: str = "") -> None:
    print(text, flush=True)


async def _wait_for(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


async def run_demo(output: Path, stack, launched: float) -> int:
    from services import scenario
    from worker import build_worker, data_converter
    from workflows import SqlExtractionWorkflow
    from workflows.models import ExtractionRequest

    started = time.monotonic()
    pg, moto, temporal = stack.postgres, stack.moto, stack.temporal

    _print("2. Loading Pagila and storing the login in Secrets Manager ...")
    scene = scenario.prepare(pg, moto)
    first_version = scene.current_version()
    _print(f"   database {scene.database!r} on {pg.host}:{pg.port}")
    _print(f"   secret   {scene.secret_arn}")
    _print(
        f"   version  {first_version} (key names {scenario.USER_KEY!r}, "
        f"{scenario.PASSWORD_KEY!r})"
    )

    # The worker finds Secrets Manager the way it would in production: through
    # boto3's standard settings, here aimed at the emulator.
    os.environ.update(moto.env())

    key_ring = KeyRing.generate("demo")
    client = await temporal.connect(data_converter=data_converter(key_ring))
    connection = ConnectionDescription.model_validate(scene.connection())
    request = ExtractionRequest(
        connection=connection,
        output_dir=str(output),
        pause_after_step="schemas",
    )
    _print("3. Starting the extraction workflow; its connection description:")
    _print("   " + _describe(connection))

    task_queue = f"credflow-demo-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, task_queue=task_queue):
        handle = await client.start_workflow(
            SqlExtractionWorkflow.run,
            request,
            id=f"credflow-demo-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )

        async def paused() -> bool:
            return (await handle.query(SqlExtractionWorkflow.current_step)) == (
                "paused after schemas"
            )

        await _wait_for(paused, timeout=120, what="the schemas step to finish")
        _print("4. Rotating the password between the schemas and types steps ...")
        new_version = scene.rotate()
        _print(f"   new password set in PostgreSQL; new secret version {new_version}")
        await handle.signal(SqlExtractionWorkflow.resume, handle.id)
        manifest = await handle.result()

    _summary(manifest, first_version, new_version, time.monotonic() - started)
    _print(
        f"   in all          {time.monotonic() - launched:.1f}s (with starting the "
        "servers)"
    )
    used_new = [s.step for s in manifest.steps if s.secret_version_id == new_version]
    if used_new != ["types", "tables", "columns"]:
        _print(
            f"!! expected the steps after schemas to use the new version: {used_new}"
        )
        return 1
    return 0


def _describe(connection: ConnectionDescription) -> str:
    # The password field holds a key name here; show it as typed by the user.
    shown = connection.model_dump(exclude_none=True, mode="python")
    shown["password"] = connection.password.get_secret_value()
    return ", ".join(
        f"{k}={v}" for k, v in shown.items() if k != "connect_timeout_seconds"
    )


def _summary(manifest, first_version: str, new_version: str, seconds: float) -> None:
    _print("5. Summary")
    _print(f"   workflow        {manifest.workflow_id}")
    _print(f"   server          PostgreSQL {manifest.server_version}")
    _print("   objects found:")
    for kind, count in sorted(manifest.objects.items()):
        _print(f"     {kind:<20} {count:>5}")
    folder = Path(manifest.output_dir) / manifest.run_name
    _print(f"   files written   {manifest.files} under {folder}")
    _print("   secret version per step:")
    names = {first_version: "before rotation", new_version: "after rotation"}
    for step in manifest.steps:
        label = names.get(step.secret_version_id or "", "")
        extra = ""
        if step.failed_logins:
            extra = (
                f"  (login rejected {step.failed_logins}x with the cached old "
                f"version; resolved again)"
            )
        _print(f"     {step.step:<10} {step.secret_version_id}  {label}{extra}")
    _print(
        f"   Secrets Manager GetSecretValue {manifest.get_secret_value_calls}, "
        f"DescribeSecret {manifest.describe_secret_calls}, failed logins "
        f"{manifest.failed_logins}"
    )
    _print(f"   time taken      {seconds:.1f}s (load, extraction and rotation)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="credflow demo", description=__doc__)
    parser.add_argument("--output", default="output", help="folder for the files")
    args = parser.parse_args(argv)
    logging.basicConfig(
        # The summary tells the story; CREDFLOW_LOG_LEVEL=INFO shows every step.
        level=os.environ.get("CREDFLOW_LOG_LEVEL", "ERROR"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_log_redaction()

    from services.stack import Stack, install_signal_handlers

    install_signal_handlers()
    launched = time.monotonic()
    _print(
        "1. Starting Temporal's dev server, moto (Secrets Manager) and "
        "PostgreSQL 15 ..."
    )
    try:
        with Stack() as stack:
            _print(
                f"   Temporal {stack.temporal.address}, "
                f"moto {stack.moto.endpoint_url}, "
                f"PostgreSQL {stack.postgres.host}:{stack.postgres.port}"
            )
            return asyncio.run(run_demo(Path(args.output), stack, launched))
    except KeyboardInterrupt:
        _print("interrupted; every server started was stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
