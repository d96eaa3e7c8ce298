"""Keep secret values out of log lines, whatever logged them.

Every secret value this process seals or unseals is remembered (in memory,
where the worker holds it anyway), and a logging filter masks any of them in a
formatted line, its arguments and its traceback. Typed errors already avoid
secrets; this catches what third-party code might log.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict

MASK = "**********"
# Short values would mask ordinary words; a real secret is longer than this.
MIN_LENGTH = 6
# Limitation: a bound, so a worker with very many distinct secrets forgets the
# oldest spellings; typed errors never hold secrets in the first place.
_MAX_REMEMBERED = 1024

_values: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()

# Libraries that log request and response bodies at DEBUG, where a secret's
# value travels: kept at INFO or above whatever the root level is.
NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def _spellings(value: str) -> set[str]:
    """The value as text, and as reprs and JSON print it (escaped newlines...)."""
    return {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value.encode("utf-8", "backslashreplace"))[2:-1],
    }


def remember(value: str | None) -> None:
    if not value or len(value) < MIN_LENGTH:
        return
    with _lock:
        for spelling in _spellings(value):
            _values[spelling] = None
            _values.move_to_end(spelling)
        while len(_values) > _MAX_REMEMBERED:
            _values.popitem(last=False)


def redact(text: str) -> str:
    with _lock:
        values = list(_values)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks remembered secret values in a record before any handler emits it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of `logger` (the root logger by default)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    for name in NOISY_LOGGERS:
        noisy = logging.getLogger(name)
        if noisy.getEffectiveLevel() < logging.INFO:
            noisy.setLevel(logging.INFO)
