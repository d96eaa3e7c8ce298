"""`credflow run` against a worker: progress, the manifest, and clean failures."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


async def credflow_run(
    temporal, runner, key_ring_text, tmp_path, description, *options: str
):
    path = tmp_path / "connection.json"
    path.write_text(json.dumps(description))
    env = {
        **os.environ,
        "CREDFLOW_TEMPORAL_ADDRESS": temporal.address,
        "CREDFLOW_TASK_QUEUE": runner.task_queue,
        "CREDFLOW_KEYS": key_ring_text,
    }
    command = [sys.executable, "-m", "cli.main", "run", str(path)]
    command += ["--output", str(tmp_path / "out"), *options]
    return await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_run_prints_the_manifest(
    temporal, runner, key_ring_text, pagila, tmp_path
):
    done = await credflow_run(
        temporal, runner, key_ring_text, tmp_path, pagila.connection()
    )

    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["objects"]["columns"] == 461
    assert "started workflow credflow-" in done.stderr
    assert Path(manifest["steps"][-1]["files"][0]).is_file()


async def test_a_failed_run_says_why_without_a_traceback(
    temporal, runner, key_ring_text, pagila, tmp_path
):
    description = pagila.connection(username="postgres_usr")
    done = await credflow_run(temporal, runner, key_ring_text, tmp_path, description)

    assert done.returncode == 1
    assert "the extraction failed: resolving credentials for step preflight" in (
        done.stderr
    )
    assert "did you mean 'postgres_user'?" in done.stderr
    assert "error type KeyNameError" in done.stderr
    assert "Traceback" not in done.stderr
    assert pagila.password not in done.stderr + done.stdout


async def test_run_filters_schemas(temporal, runner, key_ring_text, pagila, tmp_path):
    done = await credflow_run(
        temporal,
        runner,
        key_ring_text,
        tmp_path,
        pagila.connection(),
        "--include-system-schemas",
        "--include",
        "pg_.*|information_schema",
        "--exclude",
        "pg_toast.*",
        "--run-name",
        "system",
    )

    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    schemas_file = tmp_path / "out" / "system" / "schemas" / "part-00000.jsonl"
    names = {json.loads(line)["name"] for line in schemas_file.read_text().splitlines()}
    assert names == {"pg_catalog", "information_schema"}
    assert manifest["objects"]["schemas"] == 2
    assert manifest["objects"]["columns"] > 1000  # the catalog's own tables


async def test_run_refuses_a_bad_filter_before_starting(
    temporal, runner, key_ring_text, pagila, tmp_path
):
    done = await credflow_run(
        temporal, runner, key_ring_text, tmp_path, pagila.connection(), "--include", "("
    )

    assert done.returncode == 1
    assert "not a valid regular expression" in done.stderr
    assert "started workflow" not in done.stderr
