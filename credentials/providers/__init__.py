"""The provider factory: one provider per credential source."""

from __future__ import annotations

from collections.abc import Callable

from credentials.errors import UnsupportedSourceError
from credentials.models import CredentialSource
from credentials.providers.base import Provider, SecretValue

_factories: dict[str, Callable[[], Provider]] = {}
_instances: dict[str, Provider] = {}


def register(source: str, factory: Callable[[], Provider]) -> None:
    """Register (or replace) the provider factory for a credential source."""
    _factories[source] = factory
    _instances.pop(source, None)


def provider_for(source: str) -> Provider:
    """The provider for `source`, built once per process and then shared."""
    if source not in _factories:
        raise UnsupportedSourceError(
            f"credential source {source!r} is not supported: use one of "
            f"{', '.join(repr(s) for s in sorted(_factories))}"
        )
    if source not in _instances:
        _instances[source] = _factories[source]()
    return _instances[source]


def _direct() -> Provider:
    from credentials.providers.direct import DirectProvider

    return DirectProvider()


def _aws() -> Provider:
    from credentials.providers.aws import AwsSecretsManagerProvider

    return AwsSecretsManagerProvider()


register(CredentialSource.DIRECT.value, _direct)
register(CredentialSource.AWS_SECRETS_MANAGER.value, _aws)

__all__ = ["Provider", "SecretValue", "provider_for", "register"]
