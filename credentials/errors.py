"""Typed errors of credential resolution, one per failure class of the guide.

Every message says what was tried, what was found and what to check next. None
ever holds a secret value: only ARNs, regions, version ids and key names.
"""

from __future__ import annotations


class CredentialError(Exception):
    """Base of every resolution error; `retryable` says whether trying again helps."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def kind(self) -> str:
        return type(self).__name__


class InvalidConnectionError(CredentialError):
    """The connection description is incomplete or contradicts itself."""


class UnsupportedSourceError(InvalidConnectionError):
    """No provider is registered for the credential source."""


class MalformedArnError(CredentialError):
    """The secret ARN is not of the form Secrets Manager uses."""


class RegionMismatchError(CredentialError):
    """The region given contradicts the region inside the secret ARN."""


class SecretNotFoundError(CredentialError):
    """Secrets Manager has no such secret (or version) in the region searched."""


class SecretAccessDeniedError(CredentialError):
    """The AWS identity in use may not read the secret."""


class SecretScheduledForDeletionError(CredentialError):
    """The secret exists but is scheduled for deletion, so it cannot be read."""


class KmsDecryptionError(CredentialError):
    """Secrets Manager could not decrypt the secret with its KMS key."""


class SecretStoreThrottledError(CredentialError):
    """AWS throttled the request; retried with backoff."""

    retryable = True


class SecretStoreUnavailableError(CredentialError):
    """A network or service fault reaching the secret store; retried with backoff."""

    retryable = True


class AwsIdentityError(CredentialError):
    """No usable AWS credentials were found to call the secret store with."""


class InvalidAwsCredentialsError(AwsIdentityError):
    """AWS rejected the credentials in use: unknown key, bad signature, expired."""


class RoleAssumptionError(CredentialError):
    """STS refused to let the AWS identity in use assume the role given."""


class VersionReferenceError(InvalidConnectionError):
    """A version stage was given where a version id belongs, or the reverse."""


class SecretStoreClientError(CredentialError):
    """The AWS SDK failed before the service answered, for no network reason."""


class IamTokenError(CredentialError):
    """An RDS IAM authentication token could not be generated."""


class SecretFormatError(CredentialError):
    """The secret is not a JSON object whose values are strings or numbers."""


class KeyNameError(CredentialError):
    """A key name in the connection description is not in the secret."""


class CredentialValueError(CredentialError):
    """A value read for the login is empty, or holds a character it cannot carry."""


class DatabaseFieldError(KeyNameError):
    """Host, port or database asked of the secret is missing or unusable there."""


class VersionNotFoundError(SecretNotFoundError):
    """The version id or version stage asked for does not exist on the secret."""


class SealingError(CredentialError):
    """A sealed value cannot be sealed or unsealed with this process's key ring."""


class KeyRingError(CredentialError):
    """The key ring configuration is missing or malformed."""
