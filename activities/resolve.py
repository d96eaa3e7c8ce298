"""The resolve activity: read the secret and substitute values for key names."""

from __future__ import annotations

from temporalio import activity

from activities.errors import application_error
from activities.models import ResolveRequest
from credentials.errors import CredentialError
from credentials.models import ResolvedCredential
from credentials.resolution import resolve


@activity.defn(name="resolve_credentials")
def resolve_credentials(request: ResolveRequest) -> ResolvedCredential:
    """Idempotent: reading a secret has no side effect, so retries are safe."""
    connection = request.connection
    try:
        credential = resolve(connection)
    except CredentialError as err:
        activity.logger.warning(
            "resolution failed for step %s: %s (%s)", request.step, err.kind, err
        )
        # `from None`: the provider's own exception stays out of the failure.
        raise application_error(err) from None

    activity.logger.info(
        "resolved credentials for step %s from %s (source %s, version %s)",
        request.step,
        credential.secret_arn or "(typed in)",
        credential.source,
        credential.version_id,
    )
    return credential
