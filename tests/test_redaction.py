"""Log redaction and the worker's refusal to start without a key ring."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from credentials.redaction import MASK, RedactingFilter, install_log_redaction, remember

ROOT = Path(__file__).resolve().parents[1]


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_remembered_values_are_masked_in_messages_arguments_and_tracebacks():
    secret = "redact-me-7f3a9c"
    remember(secret)
    logger = logging.getLogger("test.redaction")
    capture = Capture()
    capture.addFilter(RedactingFilter())
    logger.addHandler(capture)
    try:
        logger.warning("connecting with %s", secret)
        logger.warning(f"inline {secret}")
        try:
            raise RuntimeError(f"driver said {secret}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(capture)

    text = "\n".join(capture.lines)
    assert secret not in text
    assert text.count(MASK) == 3
    assert "connecting with **********" in text
    assert "RuntimeError: driver said **********" in text


def test_short_values_are_not_remembered():
    remember("abc")
    logger = logging.getLogger("test.redaction.short")
    capture = Capture()
    capture.addFilter(RedactingFilter())
    logger.addHandler(capture)
    logger.warning("abc is a word")
    logger.removeHandler(capture)
    assert capture.lines == ["abc is a word"]


def test_libraries_that_log_bodies_are_kept_above_debug():
    logging.getLogger("botocore").setLevel(logging.NOTSET)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        install_log_redaction()
        assert logging.getLogger("botocore").getEffectiveLevel() >= logging.INFO
        assert logging.getLogger("urllib3").getEffectiveLevel() >= logging.INFO
    finally:
        logging.getLogger().setLevel(logging.WARNING)


def test_a_worker_without_a_key_ring_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_KEYS")}
    done = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env={**env, "CREDFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "refusing to start: no key ring" in done.stderr
    assert "CREDFLOW_KEYS" in done.stderr
    assert "Traceback" not in done.stderr


def test_escaped_spellings_of_a_value_are_masked_too():
    secret = "token-with-newline-\n-and-quote-'-end"
    remember(secret)
    logger = logging.getLogger("test.redaction.escaped")
    capture = Capture()
    capture.addFilter(RedactingFilter())
    logger.addHandler(capture)
    logger.warning("header %r", secret.encode())
    logger.warning("value %r", secret)
    logger.removeHandler(capture)

    text = "\n".join(capture.lines)
    assert "token-with-newline" not in text
    assert text.count(MASK) == 2


def test_a_worker_with_a_bad_cache_lifetime_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDFLOW_")}
    env["CREDFLOW_KEYS"] = "k1:" + "A" * 43 + "="
    env["CREDFLOW_SECRET_CACHE_SECONDS"] = "ten"
    done = subprocess.run(
        [sys.executable, "worker.py"],
        cwd=ROOT,
        env={**env, "CREDFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "CREDFLOW_SECRET_CACHE_SECONDS must be a number of seconds" in done.stderr
    assert "Traceback" not in done.stderr
