"""The workflow's input and the manifest it returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from activities.models import SchemaFilters
from credentials.models import ConnectionDescription


class LoginRetry(BaseModel):
    """How a step that fails to log in is re-resolved and repeated.

    After a rejected login the step resolves again at once and tries any
    version not yet rejected in the step. When there is none, it waits with
    capped, jittered backoff for a new version, for at most `max_wait_seconds`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Logins tried per step, rejected ones included: the lockout bound.
    max_attempts: int = Field(default=5, ge=1, le=100)
    # Above zero: a zero backoff would ask the store again in a tight loop.
    initial_seconds: float = Field(default=1.0, gt=0)
    max_seconds: float = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    # How long a step waits in all for a version it has not tried yet.
    max_wait_seconds: float = Field(default=120.0, ge=0)


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
    # The stage the successful version was chosen by after a rejection.
    secret_version_stage: str | None = None
    failed_logins: int = 0
    get_secret_value_calls: int = 0
    describe_secret_calls: int = 0
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
    # Rotation: steps that resolved more than once, logins the database
    # rejected, and what resolution cost in calls to Secrets Manager.
    steps_re_resolved: int = 0
    failed_logins: int = 0
    get_secret_value_calls: int = 0
    describe_secret_calls: int = 0
