"""Extraction under continuous rotation against a rotation-free baseline.

Runs on the embedded servers (PostgreSQL, moto, Temporal) in one invocation:
the same wide catalog is extracted without rotation, then while each rotation
strategy rotates the password every few seconds, and prints the time of each
and their ratio, the steps re-resolved, the failed logins and the AWS calls per
workflow. Then 100 concurrent workflows sharing one secret run with and without
the secret cache, and the calls to Secrets Manager of each are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from credentials.cache import DEFAULT_TTL_SECONDS, configure_shared_cache
from credentials.models import ConnectionDescription
from credentials.sealing import KeyRing
from services import Stack, install_signal_handlers, scenario
from worker import build_worker, data_converter
from workflows import SqlExtractionWorkflow
from workflows.models import ExtractionRequest

# The rotator and the catalog builder are the tests' own: the benchmark is the
# long version of the continuous rotation test.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from rotator import Rotator, create_wide_catalog  # noqa: E402

log = logging.getLogger("credflow.bench")


async def run_phase(client, queue, connection, *, runs: int, output: str) -> tuple:
    """`runs` extractions one after another; their manifests and the time taken."""
    started = time.monotonic()
    manifests = []
    for _ in range(runs):
        handle = await client.start_workflow(
            SqlExtractionWorkflow.run,
            ExtractionRequest(
                connection=connection,
                filters={"include": ["wide"]},
                output_dir=output,
            ),
            id=f"bench-{uuid.uuid4().hex[:12]}",
            task_queue=queue,
        )
        manifests.append(await handle.result())
    return manifests, time.monotonic() - started


def summary(name: str, manifests: list, seconds: float, baseline: float) -> str:
    count = len(manifests)
    steps = sum(len(m.steps) for m in manifests)
    return (
        f"  {name:<18} {seconds:7.1f}s  x{seconds / baseline:5.2f}  "
        f"re-resolved {sum(m.steps_re_resolved for m in manifests):3d}/{steps}  "
        f"failed logins {sum(m.failed_logins for m in manifests):3d}  "
        f"GetSecretValue/wf "
        f"{sum(m.get_secret_value_calls for m in manifests) / count:4.1f}  "
        f"DescribeSecret/wf "
        f"{sum(m.describe_secret_calls for m in manifests) / count:4.1f}"
    )


async def concurrent_calls(client, queue, connection, *, workflows: int) -> tuple:
    """Secrets Manager calls of `workflows` extractions started together."""
    output = tempfile.mkdtemp(prefix="credflow-bench-")
    handles = [
        await client.start_workflow(
            SqlExtractionWorkflow.run,
            ExtractionRequest(
                connection=connection,
                filters={"include": ["tiny"]},
                output_dir=output,
            ),
            id=f"bench-{uuid.uuid4().hex[:12]}",
            task_queue=queue,
        )
        for _ in range(workflows)
    ]
    manifests = await asyncio.gather(*(h.result() for h in handles))
    return (
        sum(m.get_secret_value_calls for m in manifests),
        sum(m.describe_secret_calls for m in manifests),
    )


async def main_async(stack: Stack, args: argparse.Namespace) -> None:
    pg, moto, temporal = stack.postgres, stack.moto, stack.temporal
    os.environ.update(moto.env())

    t0 = time.monotonic()
    create_wide_catalog(pg, "wide", tables=args.tables, columns=args.columns)
    pg.create_database("tiny")
    pg.execute("CREATE SCHEMA tiny", database="tiny")
    for i in range(10):
        pg.execute(f"CREATE TABLE tiny.t{i} (id int, name text)", database="tiny")
    print(
        f"catalog: {args.tables} tables x {args.columns} columns, built in "
        f"{time.monotonic() - t0:.1f}s",
        flush=True,
    )

    client = await temporal.connect(
        data_converter=data_converter(KeyRing.generate("bench"))
    )
    queue = f"credflow-bench-{uuid.uuid4().hex[:8]}"
    output = tempfile.mkdtemp(prefix="credflow-bench-")
    async with build_worker(client, task_queue=queue, max_concurrent_activities=32):
        single = scenario.prepare(
            pg, moto, database="wide", role="app", secret_name="single", load=False
        )
        baseline, base_s = await run_phase(
            client,
            queue,
            ConnectionDescription.model_validate(single.connection()),
            runs=args.runs,
            output=output,
        )
        print(
            f"\n{args.runs} extractions each, rotation every "
            f"{args.rotate_every:g}s (window {args.window:g}s), cache "
            f"{DEFAULT_TTL_SECONDS:g}s:",
            flush=True,
        )
        print(summary("no rotation", baseline, base_s, base_s), flush=True)

        alternating = scenario.prepare(
            pg,
            moto,
            database="wide",
            role="app_a",
            secret_name="alternating",
            load=False,
        )
        pg.create_login_role("app_clone", scenario.new_password())
        for name, login, users in (
            ("single user", single, ("app",)),
            ("alternating users", alternating, ("app_a", "app_clone")),
        ):
            rotator = Rotator(
                pg=pg,
                client=login.secrets_client(),
                secret_arn=login.secret_arn,
                database="wide",
                users=users,
                window_seconds=args.window,
            )
            rotator.start(args.rotate_every)
            try:
                manifests, seconds = await run_phase(
                    client,
                    queue,
                    ConnectionDescription.model_validate(login.connection()),
                    runs=args.runs,
                    output=output,
                )
            finally:
                rotations = rotator.stop()
            print(
                summary(name, manifests, seconds, base_s) + f"  rotations {rotations}",
                flush=True,
            )

        tiny = scenario.prepare(
            pg, moto, database="tiny", role="tiny", secret_name="tiny", load=False
        )
        connection = ConnectionDescription.model_validate(tiny.connection())
        print(f"\n{args.workflows} concurrent workflows sharing one secret:")
        for label, ttl, single_flight in (
            ("with the cache", DEFAULT_TTL_SECONDS, True),
            ("without", 0, False),
        ):
            configure_shared_cache(ttl, single_flight=single_flight)
            reads, describes = await concurrent_calls(
                client, queue, connection, workflows=args.workflows
            )
            print(
                f"  {label:<15} GetSecretValue {reads:4d}  "
                f"DescribeSecret {describes:4d}",
                flush=True,
            )
        configure_shared_cache(DEFAULT_TTL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rotation")
    parser.add_argument("--tables", type=int, default=5_000)
    parser.add_argument("--columns", type=int, default=11)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--rotate-every", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--workflows", type=int, default=100)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # A rejected login is expected here; its traceback would drown the figures.
    logging.getLogger("temporalio").setLevel(logging.ERROR)
    install_signal_handlers()
    with Stack() as stack:
        asyncio.run(main_async(stack, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
