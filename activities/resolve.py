"""The resolve activity: read the secret and substitute values for key names.

Reads go through the worker-wide cache. After a rejected login the activity
asks the store which versions exist and picks one not yet rejected in the
step (AWSPENDING during a rotation), bypassing the cache for that question.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import application_error
from activities.models import Resolution, ResolveRequest
from credentials.cache import CachedProvider, shared_cache
from credentials.errors import CredentialError
from credentials.providers import provider_for
from credentials.resolution import resolve
from credentials.rotation import resolve_after_rejection


@activity.defn(name="resolve_credentials")
def resolve_credentials(request: ResolveRequest) -> Resolution:
    """Idempotent: reading a secret has no side effect, so retries are safe."""
    connection = request.connection
    rejected = request.rejected_version_ids
    try:
        provider = CachedProvider(provider_for(connection.source), shared_cache())
        if not rejected:
            credential = resolve(connection, provider=provider)
            stage = None
            can_change = True
        else:
            attempt = resolve_after_rejection(connection, rejected, provider)
            credential, stage = attempt.credential, attempt.stage
            can_change = attempt.can_change
    except CredentialError as err:
        activity.logger.warning(
            "resolution failed for step %s: %s (%s)", request.step, err.kind, err
        )
        # `from None`: the provider's own exception stays out of the failure.
        raise application_error(err) from None
    except Exception as exc:
        # An error credflow did not map: its text may quote a request header or
        # a value read from the secret, so only its type goes out.
        kind = type(exc).__name__
        activity.logger.warning(
            "resolution failed for step %s with an unexpected %s", request.step, kind
        )
        raise ApplicationError(
            f"resolution failed with an unexpected {kind} (its text is left out, "
            "as it may hold a secret value): run `credflow check` on the "
            "connection description",
            type=kind,
        ) from None

    if credential is None:
        activity.logger.info(
            "step %s: no secret version left to try (rejected: %s)",
            request.step,
            ", ".join(rejected),
        )
    else:
        activity.logger.info(
            "resolved credentials for step %s from %s (source %s, version %s%s%s)",
            request.step,
            credential.secret_arn or "(typed in)",
            credential.source,
            credential.version_id,
            f", by stage {stage}" if stage else "",
            ", cached" if provider.from_cache else "",
        )
    return Resolution(
        credential=credential,
        stage=stage,
        can_change=can_change,
        from_cache=provider.from_cache,
        get_secret_value_calls=provider.calls.reads,
        describe_secret_calls=provider.calls.describes,
    )
