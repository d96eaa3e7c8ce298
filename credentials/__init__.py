"""Credential model, secret-store providers and key-reference substitution.

Nothing in this package knows about Temporal: it resolves a connection
description into a credential and raises typed errors when it cannot.
"""

from credentials.errors import CredentialError
from credentials.models import (
    AuthType,
    ConnectionDescription,
    CredentialSource,
    ResolvedCredential,
)
from credentials.resolution import resolve

__all__ = [
    "AuthType",
    "ConnectionDescription",
    "CredentialError",
    "CredentialSource",
    "ResolvedCredential",
    "resolve",
]
