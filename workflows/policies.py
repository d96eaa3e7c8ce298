"""Retry policies and timeouts of the extraction's activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from credentials.errors import CredentialError


def _no_retry_can_fix(base: type[CredentialError]) -> list[str]:
    """Every resolution error type that needs the user to change something.

    The resolve activity already marks these non-retryable; naming them in the
    policy as well keeps that true for an error raised some other way.
    """
    found, stack = set(), [base]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not cls.retryable:
            found.add(cls.__name__)
    return sorted(found)


NON_RETRYABLE_RESOLUTION_ERRORS = _no_retry_can_fix(CredentialError)

# Throttling and transient network or service faults: retried with backoff.
RESOLVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=NON_RETRYABLE_RESOLUTION_ERRORS,
)
RESOLVE_TIMEOUT = timedelta(seconds=60)

# A login rejection is handled by the workflow (resolve again, then repeat the
# step), so the activity itself must not retry it with the stale credential.
QUERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
    non_retryable_error_types=[
        "LoginRejected",
        "CredentialExpired",
        "DatabaseNotFound",
        "InvalidRunName",
        "InvalidSchemaFilter",
        "UnknownStep",
        "SealingError",
    ],
)
QUERY_HEARTBEAT = timedelta(minutes=2)
