"""Run the embedded services in the foreground until Ctrl-C or SIGTERM.

`python -m services` prints where each one listens; `--json` prints that as one
JSON line (with process ids, for tests that check clean-up), never a password.
`--pagila DIR` also loads Pagila, stores a login in a secret as the demo does,
and writes DIR/connection.json and DIR/local.env for trying the worker and the
command line by hand.
"""

import argparse
import json
import logging
import shlex
import threading
from pathlib import Path

from services import scenario
from services.stack import Stack, install_signal_handlers


def write_local_files(stack: Stack, folder: Path) -> list[Path]:
    """A connection description (key names only) and the settings to use it."""
    scene = scenario.prepare(stack.postgres, stack.moto)
    folder.mkdir(parents=True, exist_ok=True)
    connection = folder / "connection.json"
    connection.write_text(json.dumps(scene.connection(), indent=2) + "\n")
    settings = {
        "CREDFLOW_TEMPORAL_ADDRESS": stack.temporal.address,
        "TEMPORAL_ADDRESS": stack.temporal.address,
        **stack.moto.env(),
    }
    env = folder / "local.env"
    env.write_text(
        "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())
    )
    return [connection, env]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument(
        "--pagila",
        metavar="DIR",
        type=Path,
        help="load Pagila, store its login in a secret, write DIR/connection.json "
        "and DIR/local.env",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    install_signal_handlers()

    try:
        with Stack() as stack:
            facts = {
                "postgres": {
                    "host": stack.postgres.host,
                    "port": stack.postgres.port,
                    "superuser": stack.postgres.superuser,
                    "pid": stack.postgres.pid,
                    "base_dir": str(stack.postgres.base_dir),
                },
                "moto": {
                    "endpoint_url": stack.moto.endpoint_url,
                    "pid": stack.moto.pid,
                },
                "temporal": {
                    "address": stack.temporal.address,
                    "namespace": stack.temporal.namespace,
                    "pid": stack.temporal.pid,
                },
            }
            written = write_local_files(stack, args.pagila) if args.pagila else []
            if args.json:
                print(json.dumps(facts), flush=True)
            else:
                for name, where in facts.items():
                    shown = ", ".join(f"{key}={value}" for key, value in where.items())
                    print(f"{name}: {shown}", flush=True)
                for path in written:
                    print(f"wrote {path}", flush=True)
                print("Ctrl-C stops them all.", flush=True)
            # Sleeps until a signal handler raises KeyboardInterrupt.
            threading.Event().wait()
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
