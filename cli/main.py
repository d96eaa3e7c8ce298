"""`credflow`: the command line entry point."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

from pydantic import ValidationError

from cli import check, policy
from credentials.errors import CredentialError
from credentials.models import ConnectionDescription
from credentials.sealing import generate_key_text, load_key_ring


def load_connection(path: str) -> ConnectionDescription:
    """Read and validate a connection description file; exit with a clear message."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"credflow: cannot read {path}: {exc.strerror}") from None
    try:
        connection = ConnectionDescription.model_validate_json(text)
        connection.check()
    except ValidationError as exc:
        # input=False: pydantic would otherwise echo the offending value, which
        # for a password field is the password itself.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise SystemExit(
            f"credflow: {path} is not a valid connection description: {problems}"
        ) from None
    except CredentialError as err:
        raise SystemExit(f"credflow: {path}: {err}") from None
    return connection


async def _run(args: argparse.Namespace) -> int:
    from worker import TemporalSettings, connect
    from workflows import SqlExtractionWorkflow
    from workflows.models import ExtractionRequest

    connection = load_connection(args.connection)
    settings = TemporalSettings.from_env()
    client = await connect(settings, load_key_ring())
    request = ExtractionRequest(connection=connection, output_dir=args.output)
    manifest = await client.execute_workflow(
        SqlExtractionWorkflow.run,
        request,
        id=args.workflow_id or f"credflow-{uuid.uuid4()}",
        task_queue=settings.task_queue,
    )
    print(manifest.model_dump_json(indent=2))
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    print(generate_key_text(args.key_id))
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

    commands.add_parser("worker", help="run a worker (settings from the environment)")
    commands.add_parser("demo", help="the whole demo on embedded servers")
    check.add_parser(commands)
    policy.add_parser(commands)

    keys = commands.add_parser("keys", help="manage the workers' key ring")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    generate = key_commands.add_parser("generate", help="print a new key")
    generate.add_argument("--key-id", default="k1")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return asyncio.run(_run(args))
        if args.command == "worker":
            import worker

            worker.main()
            return 0
        if args.command == "check":
            return check.main(args, load_connection(args.connection))
        if args.command == "policy":
            return policy.main(args, load_connection(args.connection))
        if args.command == "demo":
            from cli import demo

            return demo.main([])
        if args.command == "keys":
            return _keys_generate(args)
    except CredentialError as err:
        print(f"credflow: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
