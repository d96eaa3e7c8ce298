"""`credflow run` checks a connection description before it starts anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from credentials.sealing import generate_key_text

ROOT = Path(__file__).resolve().parents[1]
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-login-AbCdEf"
GOOD = {
    "secret_arn": ARN,
    "username": "postgres_user",
    "password": "postgres_password",
    "host": "127.0.0.1",
    "database": "pagila",
}


def run_file(path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "CREDFLOW_KEYS": generate_key_text("k1"),
        # Nothing listens here: a run that got past the checks would fail to
        # connect instead of printing the check's message.
        "CREDFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "run", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run(tmp_path, description: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "connection.json"
    path.write_text(json.dumps(description))
    return run_file(path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"region": "eu-west-1"}, "contradicts the secret ARN"),
        ({"auth_type": "kerberos"}, "auth type 'kerberos' is not one of"),
        ({"source": "vault"}, "credential source 'vault' is not supported"),
        ({"secret_arn": "arn:aws:secretsmanager:x"}, "is malformed"),
        ({"host": ""}, "missing host"),
        ({"secert_arn": ARN}, "did you mean 'secret_arn'?"),
        ({"port": "five"}, "port: Input should be a valid integer"),
    ],
)
def test_run_reports_a_bad_description_before_starting(tmp_path, change, expected):
    done = run(tmp_path, {**GOOD, **change})

    assert done.returncode == 1
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert "127.0.0.1:1" not in done.stderr  # it never tried to connect


def test_a_password_in_a_malformed_description_is_not_echoed(tmp_path):
    done = run(tmp_path, {**GOOD, "password": ["hunter2-SECRET-in-a-list"]})

    assert done.returncode == 1
    assert "password: Input should be a valid string" in done.stderr
    assert "hunter2-SECRET" not in done.stderr + done.stdout


def test_check_stops_at_an_unsupported_source(tmp_path):
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({**GOOD, "source": "vault"}))
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[0].startswith("FAIL  connection description")
    assert "credential source 'vault' is not supported" in lines[0]
    assert "unexpected" not in done.stdout


def test_run_says_when_temporal_cannot_be_reached(tmp_path):
    done = run(tmp_path, GOOD)

    assert done.returncode == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_description_with_a_byte_order_mark_reads_and_other_bytes_are_refused(
    tmp_path,
):
    with_bom = tmp_path / "bom.json"
    with_bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({**GOOD, "region": "x"}).encode())
    done = run_file(with_bom)
    assert "not a region name" in done.stderr or "contradicts" in done.stderr

    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe\x00")
    done = run_file(garbage)
    assert done.returncode == 1
    assert "is not UTF-8 text" in done.stderr
    assert "Traceback" not in done.stderr


def test_codec_server_on_a_port_it_cannot_use_says_so():
    env = {**os.environ, "CREDFLOW_KEYS": generate_key_text("k1")}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "codec-server", "--port", "70000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot listen on 127.0.0.1:70000" in done.stderr
    assert "Traceback" not in done.stderr
