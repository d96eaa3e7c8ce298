"""The `direct` source: the values were typed into the connection description."""

from __future__ import annotations

from datetime import UTC, datetime

from credentials.models import ConnectionDescription
from credentials.providers.base import SecretValue


class DirectProvider:
    """Presents the typed-in values as a secret whose keys are the field names."""

    def read(
        self,
        connection: ConnectionDescription,
        *,
        version_id: str | None = None,
        version_stage: str | None = None,
    ) -> SecretValue:
        values = {
            "username": connection.username or "",
            "password": (
                connection.password.get_secret_value() if connection.password else ""
            ),
        }
        return SecretValue(
            values=values, label="(typed in directly)", read_at=datetime.now(UTC)
        )
