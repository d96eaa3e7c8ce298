"""The SQL extraction workflow: resolve credentials, then run each query step.

Resolution runs right before every query activity, so a password rotated in
the secret store is picked up by the next step. A step whose login is rejected
resolves again and repeats, a bounded number of times with backoff.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.errors import CREDENTIAL_EXPIRED, LOGIN_REJECTED
    from activities.models import (
        STEPS,
        Resolution,
        ResolveRequest,
        StepRequest,
        StepResult,
    )
    from workflows import policies
    from workflows.models import (
        ExtractionManifest,
        ExtractionRequest,
        LoginRetry,
        StepRecord,
    )

CREDENTIALS_REJECTED = "CredentialsRejected"
# What a rejected login records when the values were typed in (no version).
TYPED_IN = "(typed in)"
# Every kind the manifest counts, listed with 0 when a filter matches none.
OBJECT_KINDS = (
    "databases",
    "schemas",
    "table",
    "partition",
    "partitioned table",
    "view",
    "materialized view",
    "foreign table",
    "domain",
    "enum",
    "range",
    "columns",
)


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
    def resume(self, workflow_id: str | None = None) -> None:
        """Let a run held by `pause_after_step` go on."""
        # The run's own id, sent encrypted, proves the sender holds the key
        # ring: a signal from anyone else arrives empty and changes nothing.
        if workflow_id == workflow.info().workflow_id:
            self._resumed = True
        else:
            workflow.logger.warning("ignored a resume signal without the run's id")

    @workflow.query
    def progress(self) -> list[StepRecord]:
        """The steps finished so far."""
        return list(self._records)

    @workflow.query
    def current_step(self) -> str | None:
        return self._current

    @workflow.run
    async def run(self, request: ExtractionRequest | None) -> ExtractionManifest:
        if request is None:
            # The workers' codec empties a payload that is not encrypted.
            raise ApplicationError(
                "the workflow input is not encrypted with the workers' key ring: "
                "start extractions with a client that holds CREDFLOW_KEYS",
                type="UnencryptedInput",
                non_retryable=True,
            )
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

        objects = dict.fromkeys(OBJECT_KINDS, 0)
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
            steps_re_resolved=sum(r.resolutions > 1 for r in self._records),
            failed_logins=sum(r.failed_logins for r in self._records),
            get_secret_value_calls=sum(r.get_secret_value_calls for r in self._records),
            describe_secret_calls=sum(r.describe_secret_calls for r in self._records),
        )

    async def _resolve(
        self, request: ExtractionRequest, step: str, rejected: list[str]
    ) -> Resolution:
        try:
            return await workflow.execute_activity(
                "resolve_credentials",
                ResolveRequest(
                    connection=request.connection,
                    step=step,
                    rejected_version_ids=rejected,
                ),
                result_type=Resolution,
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
        resolutions = logins = waits = 0
        reads = describes = 0
        deadline: datetime | None = None

        while True:
            resolution = await self._resolve(request, step, rejected)
            resolutions += 1
            reads += resolution.get_secret_value_calls
            describes += resolution.describe_secret_calls
            credential = resolution.credential

            if credential is None:
                # Every version the secret offers was rejected in this step:
                # wait for a new one rather than try a rejected one again.
                assert deadline is not None  # only after a rejection
                left = (deadline - workflow.now()).total_seconds()
                if not resolution.can_change:
                    raise self._disagree(request, step, rejected, "cannot change")
                if left <= 0:
                    raise self._disagree(request, step, rejected, "waited")
                waits += 1
                pause = min(self._backoff(retry, waits), timedelta(seconds=left))
                workflow.logger.info(
                    "step %s: no untried secret version yet, asking again in %.1fs",
                    step,
                    pause.total_seconds(),
                )
                await workflow.sleep(pause)
                continue

            logins += 1
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
                if cause is not None and cause.type == CREDENTIAL_EXPIRED:
                    # An IAM token that expired before the login: a new
                    # resolution makes a new one from the same secret version.
                    if logins >= retry.max_attempts:
                        raise self._disagree(
                            request, step, rejected, "attempts"
                        ) from None
                    continue
                if cause is None or cause.type != LOGIN_REJECTED:
                    # Fail the run with the step's own words and error type
                    # (a time-out included), not a bare "activity failed".
                    failure = cause or err.cause or err
                    raise ApplicationError(
                        f"step {step} failed: {getattr(failure, 'message', failure)}",
                        type=cause.type if cause else type(failure).__name__,
                        non_retryable=True,
                    ) from err
                rejected.append(credential.version_id or TYPED_IN)
                if deadline is None:
                    deadline = workflow.now() + timedelta(
                        seconds=retry.max_wait_seconds
                    )
                workflow.logger.warning(
                    "step %s: login rejected with secret version %s (login %d/%d)",
                    step,
                    credential.version_id,
                    logins,
                    retry.max_attempts,
                )
                if logins >= retry.max_attempts:
                    raise self._disagree(request, step, rejected, "attempts") from None
                # No wait here: another version (AWSPENDING during a rotation)
                # may already be there, and waiting would only slow the step.
                continue

            record = StepRecord(
                step=step,
                count=result.count,
                files=result.files,
                counts_by_kind=result.counts_by_kind,
                secret_version_id=result.secret_version_id,
                resolutions=resolutions,
                rejected_version_ids=rejected,
                secret_version_stage=resolution.stage,
                failed_logins=len(rejected),
                get_secret_value_calls=reads,
                describe_secret_calls=describes,
                seconds=result.seconds,
            )
            return record, result

    @staticmethod
    def _disagree(
        request: ExtractionRequest, step: str, rejected: list[str], why: str
    ) -> ApplicationError:
        retry = request.login_retry
        reasons = {
            "attempts": f"after {len(rejected)} rejected logins (login_retry."
            "max_attempts, the bound that keeps the account clear of lockout)",
            "waited": f"and no version it had not tried appeared within "
            f"{retry.max_wait_seconds:g}s (login_retry.max_wait_seconds)",
            "cannot change": "and no other version can appear (the values are "
            "typed in, or the connection pins a version id)",
        }
        tried = ", ".join(dict.fromkeys(rejected))
        secret = request.connection.secret_arn or "(typed in)"
        return ApplicationError(
            f"the secret and the database disagree for step {step}: the database "
            f"rejected the login with every secret version tried ({tried}) of "
            f"{secret}, {reasons[why]}. Check that the password in the secret "
            "matches the database user's password, that a rotation reached the "
            "database (its setSecret step) and is not stuck, and that the user may "
            "log in to this database",
            {"rejected_version_ids": list(dict.fromkeys(rejected))},
            type=CREDENTIALS_REJECTED,
            non_retryable=True,
        )

    @staticmethod
    def _backoff(retry: LoginRetry, attempt: int) -> timedelta:
        base = min(
            retry.max_seconds, retry.initial_seconds * retry.multiplier ** (attempt - 1)
        )
        # Half fixed, half jitter, from the workflow's deterministic random
        # source: many waiting steps spread out but none retries at once.
        return timedelta(seconds=base * (0.5 + workflow.random().random() / 2))
