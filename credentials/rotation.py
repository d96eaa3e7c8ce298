"""Which secret version to try after the database rejected a login.

During AWS's rotation the new version is staged as AWSPENDING and set in the
database before AWSCURRENT moves to it, so a login rejected with AWSCURRENT
tries AWSPENDING next. When the secret was updated before the database (the
reverse order), the database still holds the AWSPREVIOUS password, so that is
tried last. A version already rejected in the same step is never handed back:
each one costs at most one failed login, which keeps an account clear of
lockout.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from credentials.cache import CachedProvider
from credentials.models import (
    ConnectionDescription,
    CredentialSource,
    ResolvedCredential,
)
from credentials.resolution import resolve

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


@dataclass(frozen=True)
class Choice:
    version_id: str
    stage: str


@dataclass(frozen=True)
class NextAttempt:
    """The credential to try next, or None when no untried version exists yet.

    `can_change` is False when no other version can ever appear (values typed
    in, or a version pinned by id): waiting would be pointless.
    """

    credential: ResolvedCredential | None
    stage: str | None = None
    can_change: bool = True


def candidate_stages(pinned_stage: str | None) -> tuple[str, ...]:
    """The stages worth trying, in order, for a connection pinned to `pinned_stage`."""
    if pinned_stage in (None, CURRENT):
        return (CURRENT, PENDING, PREVIOUS)
    return (pinned_stage,)


def next_version(
    versions: Mapping[str, Sequence[str]],
    rejected: Collection[str],
    stages: Sequence[str] = (CURRENT, PENDING),
) -> Choice | None:
    """The first of `stages` whose version was not rejected; None if there is none."""
    for stage in stages:
        for version_id, version_stages in versions.items():
            if stage in version_stages and version_id not in rejected:
                return Choice(version_id, stage)
    return None


def resolve_after_rejection(
    connection: ConnectionDescription,
    rejected: Collection[str],
    provider: CachedProvider,
) -> NextAttempt:
    """Resolve a version not in `rejected`, asking the store which versions exist.

    The cache is bypassed for the question (DescribeSecret is never cached)
    and cleared of the rejected versions, so no other step is handed them.
    """
    if connection.source == CredentialSource.DIRECT or not provider.can_describe:
        return NextAttempt(None, can_change=False)
    if connection.version_id:
        return NextAttempt(None, can_change=False)

    provider.cache.forget_versions(rejected)
    description = provider.describe(connection)
    choice = next_version(
        description.versions, rejected, candidate_stages(connection.version_stage)
    )
    if choice is None:
        return NextAttempt(None)

    # Read the chosen version by id: a stage may move between the two calls,
    # and a version's value never changes.
    unpinned = connection.model_copy(update={"version_stage": None})
    credential = resolve(unpinned, version_id=choice.version_id, provider=provider)
    current = next_version(description.versions, (), (CURRENT,))
    if choice.stage != CURRENT and current and current.version_id in rejected:
        # Inside the rotation window (or while the database lags behind the
        # secret): the steps that follow try the version that worked first,
        # so the window costs one rejected login, not one per step.
        provider.stand_in(connection, stage=CURRENT, version_id=choice.version_id)
    return NextAttempt(credential, choice.stage)
