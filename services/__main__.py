"""Run the embedded services in the foreground until Ctrl-C or SIGTERM.

`python -m services` prints where each one listens; `--json` prints that as one
JSON line (with process ids, for tests that check clean-up), never a password.
"""

import argparse
import json
import logging
import threading

from services.stack import Stack, install_signal_handlers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
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
            if args.json:
                print(json.dumps(facts), flush=True)
            else:
                for name, where in facts.items():
                    shown = ", ".join(f"{key}={value}" for key, value in where.items())
                    print(f"{name}: {shown}", flush=True)
                print("Ctrl-C stops them all.", flush=True)
            # Sleeps until a signal handler raises KeyboardInterrupt.
            threading.Event().wait()
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
