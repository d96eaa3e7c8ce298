"""The workflow's input and the manifest it returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from activities.models import SchemaFilters
from credentials.models import ConnectionDescription


class LoginRetry(BaseModel):
    """How a step that fails to log in is re-resolved and repeated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=5, ge=1, le=100)
    initial_seconds: float = Field(default=1.0, ge=0)
    max_seconds: float = Field(default=30.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)


class ExtractionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connection: ConnectionDescription
    filters: SchemaFilters = Field(default_factory=SchemaFilters)
    output_dir: str = "output"
    # Folder under output_dir for this run's files; the workflow id by default.
    run_name: str | None = None
    login_retry: LoginRetry = Field(default_factory=LoginRetry)
    step_timeout_seconds: float = Field(default=1800, gt=0)
    # Hold after this step until the `resume` signal: a fixed point at which a
    # demo or an operator can change something (such as rotate the password).
    pause_after_step: str | None = None


class StepRecord(BaseModel):
    step: str
    count: int
    files: list[str] = Field(default_factory=list)
    counts_by_kind: dict[str, int] = Field(default_factory=dict)
    secret_version_id: str | None = None
    resolutions: int = 1
    rejected_version_ids: list[str] = Field(default_factory=list)
    seconds: float = 0.0


class ExtractionManifest(BaseModel):
    workflow_id: str
    run_name: str
    output_dir: str
    server_version: str | None = None
    started_at: datetime
    finished_at: datetime
    steps: list[StepRecord]
    objects: dict[str, int] = Field(default_factory=dict)
    files: int = 0
