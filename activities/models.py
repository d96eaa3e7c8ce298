"""Inputs and outputs of the activities: small, and never holding rows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from credentials.models import ConnectionDescription, ResolvedCredential

# The steps of an extraction, in order; each is one query activity.
STEPS = ("preflight", "databases", "schemas", "types", "tables", "columns")


class SchemaFilters(BaseModel):
    """Regular expressions matched against whole schema names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    include_system_schemas: bool = False


class ResolveRequest(BaseModel):
    connection: ConnectionDescription
    step: str | None = None
    # Versions the database already rejected during this step, so resolution
    # can look for a fresher one instead of handing the same one back.
    rejected_version_ids: list[str] = Field(default_factory=list)


class Resolution(BaseModel):
    """What the resolve activity found: a credential to try, and what it cost.

    `credential` is None when every version the secret offers was already
    rejected during the step; `can_change` then says whether waiting for a new
    version can help (not for values typed in or a version pinned by id).
    """

    credential: ResolvedCredential | None = None
    # The stage the version was chosen by (AWSCURRENT, AWSPENDING), if any.
    stage: str | None = None
    can_change: bool = True
    from_cache: bool = False
    get_secret_value_calls: int = 0
    describe_secret_calls: int = 0


class StepRequest(BaseModel):
    step: str
    credential: ResolvedCredential
    filters: SchemaFilters = Field(default_factory=SchemaFilters)
    output_dir: str
    run_name: str


class StepResult(BaseModel):
    step: str
    count: int
    files: list[str] = Field(default_factory=list)
    counts_by_kind: dict[str, int] = Field(default_factory=dict)
    server_version: str | None = None
    login_user: str | None = None
    secret_version_id: str | None = None
    seconds: float = 0.0
