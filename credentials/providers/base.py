"""What every secret-store provider returns and the interface it implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from credentials.models import ConnectionDescription


@dataclass(frozen=True, repr=False)
class SecretValue:
    """The key/value pairs read from a secret, with the facts of that read."""

    values: dict[str, Any]
    label: str
    arn: str | None = None
    version_id: str | None = None
    version_stages: tuple[str, ...] = ()
    read_at: datetime | None = None
    expires_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # Values are secret: only the facts of the read may be shown.
        return (
            f"SecretValue(label={self.label!r}, version_id={self.version_id!r}, "
            f"keys={sorted(self.values)!r})"
        )


class Provider(Protocol):
    """Reads the secret a connection description points at."""

    def read(
        self,
        connection: ConnectionDescription,
        *,
        version_id: str | None = None,
        version_stage: str | None = None,
    ) -> SecretValue: ...
