"""`credflow`: the command line entry point."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import re
import sys
import uuid
from pathlib import Path

from pydantic import ValidationError

from cli import check, policy
from credentials.errors import CredentialError
from credentials.models import ConnectionDescription
from credentials.resolution import check_offline
from credentials.sealing import generate_key_text, load_key_ring


def _problem(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(file)"
    hint = ""
    if error["type"] == "extra_forbidden":
        known = ConnectionDescription.model_fields
        near = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"{where}: {error['msg']}{hint}"


def load_connection(path: str, *, offline_checks: bool = True) -> ConnectionDescription:
    """Read and validate a connection description file; exit with a clear message.

    `offline_checks=False` leaves the checks resolution makes before any call
    (ARN, region, auth type, ...) to the caller: `credflow check` reports each
    on its own line.
    """
    try:
        # utf-8-sig: a file saved with a byte-order mark reads the same.
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SystemExit(f"credflow: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SystemExit(
            f"credflow: {path} is not UTF-8 text: save the connection description "
            "as UTF-8 JSON"
        ) from None
    try:
        connection = ConnectionDescription.model_validate_json(text)
        if offline_checks:
            check_offline(connection)
    except ValidationError as exc:
        # input=False: pydantic would otherwise echo the offending value, which
        # for a password field is the password itself.
        problems = "; ".join(
            _problem(e) for e in exc.errors(include_input=False, include_url=False)
        )
        raise SystemExit(
            f"credflow: {path} is not a valid connection description: {problems}"
        ) from None
    except CredentialError as err:
        raise SystemExit(f"credflow: {path}: {err}") from None
    return connection


async def _run(args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from activities.models import SchemaFilters
    from worker import TemporalSettings, connect
    from workflows import SqlExtractionWorkflow
    from workflows.models import ExtractionRequest

    connection = load_connection(args.connection)
    try:
        filters = SchemaFilters(
            include=args.include or [],
            exclude=args.exclude or [],
            include_system_schemas=args.include_system_schemas,
        )
        for pattern in [*filters.include, *filters.exclude]:
            re.compile(pattern)
    except re.error as exc:
        raise SystemExit(
            f"credflow: a schema filter is not a valid regular expression: {exc}"
        ) from None
    name = args.run_name
    if name is not None and (name in ("", ".", "..") or "/" in name or "\\" in name):
        raise SystemExit(f"credflow: --run-name {name!r} is not a plain folder name")
    request = ExtractionRequest(
        connection=connection,
        filters=filters,
        output_dir=args.output,
        run_name=args.run_name,
    )
    settings = TemporalSettings.from_env()
    try:
        client = await connect(settings, load_key_ring())
    except RuntimeError as exc:
        raise SystemExit(
            f"credflow: cannot reach Temporal at {settings.address} "
            f"({type(exc).__name__}): check CREDFLOW_TEMPORAL_ADDRESS and that "
            "the server is up"
        ) from None
    try:
        handle = await client.start_workflow(
            SqlExtractionWorkflow.run,
            request,
            id=args.workflow_id or f"credflow-{uuid.uuid4()}",
            task_queue=settings.task_queue,
        )
    except WorkflowAlreadyStartedError:
        raise SystemExit(
            f"credflow: a workflow with id {args.workflow_id!r} is already running "
            "or was run: choose another --workflow-id, or leave it out"
        ) from None
    _say(
        f"started workflow {handle.id} on task queue {settings.task_queue} "
        f"at {settings.address}"
    )
    finished = asyncio.Event()
    watcher = asyncio.create_task(_watch(handle, finished))
    try:
        manifest = await handle.result()
    except WorkflowFailureError as err:
        cause = err.cause
        _say(f"credflow: the extraction failed: {getattr(cause, 'message', cause)}")
        if getattr(cause, "type", None):
            _say(f"credflow: error type {cause.type}; `credflow check` helps find why")
        return 1
    finally:
        # Let the watcher finish its call: a call still in flight when the
        # interpreter exits would crash it from the client's own thread.
        finished.set()
        await watcher
    print(manifest.model_dump_json(indent=2))
    return 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _watch(handle, finished: asyncio.Event) -> None:
    """Say which step runs, and warn when no worker can run the workflow."""
    from temporalio.api.enums.v1 import EventType

    from workflows import SqlExtractionWorkflow

    last = None
    warned = False
    while not finished.is_set():
        try:
            await asyncio.wait_for(finished.wait(), timeout=2)
            return
        except TimeoutError:
            pass
        try:
            step = await handle.query(SqlExtractionWorkflow.current_step)
        except Exception:
            step = None  # no worker answers queries yet, or it cannot decode
        if step and step != last:
            _say(f"  step: {step}")
            last = step
        if warned:
            continue
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                _say(
                    "credflow: a worker picked the workflow up but could not run "
                    "it (its task failed; the worker's log says why). The usual "
                    "cause is a worker and client with different CREDFLOW_KEYS; "
                    "the run waits until a worker that can read it takes it"
                )
                warned = True
                break


def _keys(args: argparse.Namespace) -> int:
    if args.keys_command == "generate":
        print(generate_key_text(args.key_id))
        return 0
    ring = load_key_ring()
    key_id = args.key_id or ring.active
    if not ring.holds(key_id):
        print(f"credflow: the key ring has no key {key_id!r}", file=sys.stderr)
        return 2
    print(ring.access_token(key_id))
    return 0


def _codec_server(args: argparse.Namespace) -> int:
    import logging

    from codec.server import DEFAULT_ORIGINS, CodecServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        server = CodecServer(
            load_key_ring(),
            host=args.host,
            port=args.port,
            origins=args.origin or DEFAULT_ORIGINS,
            allow_encode=args.allow_encode,
        )
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or "not a valid port"
        print(
            f"credflow: cannot listen on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 2
    print(f"codec endpoint on {server.url} (send the `credflow keys token` value)")
    server.serve_forever()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credflow",
        description="SQL metadata extraction with credentials from a secret store.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="extract a database's catalog with a running worker"
    )
    run.add_argument("connection", help="connection description (JSON file)")
    run.add_argument("--output", default="output", help="folder for the files")
    run.add_argument("--workflow-id", help="workflow id (default: a new one)")
    run.add_argument(
        "--run-name", help="folder under --output for this run (default: workflow id)"
    )
    run.add_argument(
        "--include",
        action="append",
        metavar="REGEX",
        help="extract only schemas whose whole name matches (repeatable)",
    )
    run.add_argument(
        "--exclude",
        action="append",
        metavar="REGEX",
        help="leave out schemas whose whole name matches (repeatable)",
    )
    run.add_argument(
        "--include-system-schemas",
        action="store_true",
        help="also extract pg_catalog, information_schema and the like",
    )

    commands.add_parser("worker", help="run a worker (settings from the environment)")
    demo_command = commands.add_parser(
        "demo", help="the whole demo on embedded servers"
    )
    demo_command.add_argument("--output", default="output", help="folder for files")
    check.add_parser(commands)
    policy.add_parser(commands)

    keys = commands.add_parser("keys", help="manage the workers' key ring")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    generate = key_commands.add_parser("generate", help="print a new key")
    generate.add_argument("--key-id", default="k1")
    token = key_commands.add_parser(
        "token", help="print the codec endpoint's bearer token for a key of the ring"
    )
    token.add_argument("--key-id", help="default: the active key")

    codec = commands.add_parser(
        "codec-server", help="serve the codec endpoint for the Temporal UI and CLI"
    )
    codec.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    codec.add_argument("--port", type=int, default=8081)
    codec.add_argument(
        "--allow-encode",
        action="store_true",
        help="also serve /encode (it lets the token's holder make payloads a "
        "worker accepts)",
    )
    codec.add_argument(
        "--origin",
        action="append",
        help="a UI origin allowed to call it (repeat; default: the dev server's UI)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            code = asyncio.run(_run(args))
            # The Temporal client's native threads can call back into Python
            # while the interpreter finalizes, which aborts it (exit -6) after
            # the work is done. Nothing is left to clean up here: leave at once.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if args.command == "worker":
            import worker

            worker.main()
            return 0
        if args.command == "check":
            connection = load_connection(args.connection, offline_checks=False)
            return check.main(args, connection)
        if args.command == "policy":
            return policy.main(args, load_connection(args.connection))
        if args.command == "demo":
            from cli import demo

            return demo.main(["--output", args.output])
        if args.command == "keys":
            return _keys(args)
        if args.command == "codec-server":
            return _codec_server(args)
    except CredentialError as err:
        print(f"credflow: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
