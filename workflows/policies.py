"""Retry policies and timeouts of the extraction's activities."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Resolution errors that no retry can fix: they need the user to change something.
NON_RETRYABLE_RESOLUTION_ERRORS = [
    "InvalidConnectionError",
    "UnsupportedSourceError",
    "MalformedArnError",
    "RegionMismatchError",
    "SecretNotFoundError",
    "VersionNotFoundError",
    "SecretAccessDeniedError",
    "SecretScheduledForDeletionError",
    "KmsDecryptionError",
    "AwsIdentityError",
    "SecretFormatError",
    "KeyNameError",
    "CredentialValueError",
    "SecretStoreClientError",
    "SealingError",
    "KeyRingError",
    "CredentialError",
]

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
