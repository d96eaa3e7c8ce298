"""The SQL extraction workflow: resolve credentials, then run each query step.

Resolution runs right before every query activity, so a password rotated in
the secret store is picked up by the next step. A step whose login is rejected
resolves again and repeats, a bounded number of times with backoff.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.errors import LOGIN_REJECTED
    from activities.models import STEPS, ResolveRequest, StepRequest, StepResult
    from credentials.models import ResolvedCredential
    from workflows import policies
    from workflows.models import ExtractionManifest, ExtractionRequest, StepRecord

CREDENTIALS_REJECTED = "CredentialsRejected"


def _application_cause(err: ActivityError) -> ApplicationError | None:
    cause = err.cause
    return cause if isinstance(cause, ApplicationError) else None


@workflow.defn(name="SqlExtraction")
class SqlExtractionWorkflow:
    def __init__(self) -> None:
        self._records: list[StepRecord] = []
        self._resumed = False
        self._current: str | None = None

    @workflow.signal
    def resume(self) -> None:
        """Let a run held by `pause_after_step` go on."""
        self._resumed = True

    @workflow.query
    def progress(self) -> list[StepRecord]:
        """The steps finished so far."""
        return list(self._records)

    @workflow.query
    def current_step(self) -> str | None:
        return self._current

    @workflow.run
    async def run(self, request: ExtractionRequest) -> ExtractionManifest:
        info = workflow.info()
        started = workflow.now()
        run_name = request.run_name or info.workflow_id
        server_version = None

        for step in STEPS:
            self._current = step
            record, result = await self._run_step(step, request, run_name)
            self._records.append(record)
            server_version = result.server_version or server_version
            if request.pause_after_step == step:
                self._current = f"paused after {step}"
                workflow.logger.info("held after step %s until resumed", step)
                await workflow.wait_condition(lambda: self._resumed)
        self._current = None

        objects: dict[str, int] = {}
        for record in self._records:
            if record.step in ("types", "tables"):
                objects.update(record.counts_by_kind)
            elif record.step != "preflight":
                objects[record.step] = record.count
        return ExtractionManifest(
            workflow_id=info.workflow_id,
            run_name=run_name,
            output_dir=request.output_dir,
            server_version=server_version,
            started_at=started,
            finished_at=workflow.now(),
            steps=self._records,
            objects=objects,
            files=sum(len(r.files) for r in self._records),
        )

    async def _resolve(
        self, request: ExtractionRequest, step: str, rejected: list[str]
    ) -> ResolvedCredential:
        try:
            return await workflow.execute_activity(
                "resolve_credentials",
                ResolveRequest(
                    connection=request.connection,
                    step=step,
                    rejected_version_ids=rejected,
                ),
                result_type=ResolvedCredential,
                start_to_close_timeout=policies.RESOLVE_TIMEOUT,
                retry_policy=policies.RESOLVE_RETRY,
            )
        except ActivityError as err:
            cause = _application_cause(err)
            if cause is None:
                raise
            # Fail the run with resolution's own words, not "activity failed".
            raise ApplicationError(
                f"resolving credentials for step {step} failed: {cause.message}",
                type=cause.type,
                non_retryable=True,
            ) from err

    async def _run_step(
        self, step: str, request: ExtractionRequest, run_name: str
    ) -> tuple[StepRecord, StepResult]:
        retry = request.login_retry
        rejected: list[str] = []
        for attempt in range(1, retry.max_attempts + 1):
            credential = await self._resolve(request, step, rejected)
            try:
                result = await workflow.execute_activity(
                    f"extract_{step}",
                    StepRequest(
                        step=step,
                        credential=credential,
                        filters=request.filters,
                        output_dir=request.output_dir,
                        run_name=run_name,
                    ),
                    result_type=StepResult,
                    start_to_close_timeout=timedelta(
                        seconds=request.step_timeout_seconds
                    ),
                    heartbeat_timeout=policies.QUERY_HEARTBEAT,
                    retry_policy=policies.QUERY_RETRY,
                )
            except ActivityError as err:
                cause = _application_cause(err)
                if cause is None or cause.type != LOGIN_REJECTED:
                    raise
                rejected.append(credential.version_id or "(typed in)")
                workflow.logger.warning(
                    "step %s: login rejected with secret version %s (attempt %d/%d)",
                    step,
                    credential.version_id,
                    attempt,
                    retry.max_attempts,
                )
                if attempt < retry.max_attempts:
                    await workflow.sleep(self._backoff(retry, attempt))
                continue

            record = StepRecord(
                step=step,
                count=result.count,
                files=result.files,
                counts_by_kind=result.counts_by_kind,
                secret_version_id=result.secret_version_id,
                resolutions=attempt,
                rejected_version_ids=rejected,
                seconds=result.seconds,
            )
            return record, result

        raise ApplicationError(
            f"the database kept rejecting the login for step {step} after "
            f"{retry.max_attempts} resolutions (secret versions tried: "
            f"{', '.join(dict.fromkeys(rejected))}): check that the password in the "
            "secret matches the database user's password, that the user may log in "
            "to this database, and whether a rotation is stuck",
            type=CREDENTIALS_REJECTED,
            non_retryable=True,
        )

    @staticmethod
    def _backoff(retry, attempt: int) -> timedelta:
        base = min(
            retry.max_seconds, retry.initial_seconds * retry.multiplier ** (attempt - 1)
        )
        # Full jitter from the workflow's deterministic random source.
        return timedelta(seconds=base * (0.5 + workflow.random().random() / 2))
