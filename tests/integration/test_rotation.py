"""Rotation underneath a running extraction: the window, the two strategies,
a secret ahead of its database, and lockout safety."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from rotator import Rotator
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from services import scenario
from workflows import SqlExtractionWorkflow

from .waiting import history_counts, paused, wait_until

pytestmark = pytest.mark.integration


def rotator_for(login: scenario.Scenario, *users: str) -> Rotator:
    return Rotator(
        pg=login.pg,
        client=login.secrets_client(),
        secret_arn=login.secret_arn,
        database=login.database,
        users=users or (login.role,),
    )


def assert_lockout_safe(manifest) -> None:
    for step in manifest.steps:
        assert len(step.rejected_version_ids) == len(set(step.rejected_version_ids))
        assert step.failed_logins == len(step.rejected_version_ids)


async def test_a_step_inside_the_rotation_window_goes_on_with_awspending(
    runner, fresh_login
):
    rotator = rotator_for(fresh_login)
    old = fresh_login.current_version()
    handle = await runner.start(fresh_login.connection(), pause_after_step="schemas")
    await paused(handle)

    # createSecret and setSecret: the database knows only the pending password,
    # and AWSCURRENT still points at the old one until finishSecret.
    token, user, password = rotator.create_secret()
    rotator.set_secret(user, password)
    await handle.signal(SqlExtractionWorkflow.resume, handle.id)
    manifest = await asyncio.wait_for(handle.result(), timeout=60)
    rotator.finish_secret(token)

    steps = {s.step: s for s in manifest.steps}
    assert steps["types"].rejected_version_ids == [old]
    assert steps["types"].secret_version_id == token
    assert steps["types"].secret_version_stage == "AWSPENDING"
    assert steps["types"].describe_secret_calls == 1
    # The steps after it log in with the pending version straight away.
    for name in ("tables", "columns"):
        assert steps[name].secret_version_id == token
        assert steps[name].resolutions == 1
    assert manifest.objects["columns"] == 461
    assert manifest.failed_logins == 1
    assert manifest.steps_re_resolved == 1
    # One rejected login, and no wait at all before the pending version.
    assert await history_counts(handle) == (1, 0)
    assert_lockout_safe(manifest)


async def test_alternating_users_switch_without_a_rejected_login(runner, pg, moto):
    suffix = uuid.uuid4().hex[:8]
    app = scenario.prepare(
        pg,
        moto,
        database="pagila",
        role=f"app_{suffix}",
        secret_name=f"alternating-{suffix}",
        load=False,
    )
    clone = f"app_clone_{suffix}"
    pg.create_login_role(clone, scenario.new_password())
    rotator = rotator_for(app, app.role, clone)
    first = app.current_version()

    handle = await runner.start(app.connection(), pause_after_step="schemas")
    await paused(handle)
    second = rotator.rotate()  # the secret now names the clone user
    await handle.signal(SqlExtractionWorkflow.resume, handle.id)
    manifest = await asyncio.wait_for(handle.result(), timeout=60)

    # The first user's password did not change, so the old version still
    # logs in while a cached value lasts; both versions are good.
    steps = {s.step: s for s in manifest.steps}
    assert steps["preflight"].secret_version_id == first
    assert {s.secret_version_id for s in manifest.steps} <= {first, second}
    assert manifest.failed_logins == 0
    assert manifest.objects["columns"] == 461

    # A rotation later changes the first user's password: a step that still
    # holds its version is rejected once and goes on with the clone's.
    handle = await runner.start(app.connection(), pause_after_step="preflight")
    await paused(handle, "preflight")
    third = rotator.rotate()
    await handle.signal(SqlExtractionWorkflow.resume, handle.id)
    manifest = await asyncio.wait_for(handle.result(), timeout=60)
    assert manifest.steps[-1].secret_version_id == third
    assert manifest.failed_logins <= 1
    assert_lockout_safe(manifest)


async def test_a_secret_ahead_of_its_database_goes_on_with_awsprevious(
    runner, fresh_login
):
    # The reverse order: the secret has the new password, the database not yet.
    previous = fresh_login.current_version()
    current = fresh_login.put_secret(scenario.new_password())
    handle = await runner.start(fresh_login.connection())
    manifest = await asyncio.wait_for(handle.result(), timeout=60)

    first = manifest.steps[0]
    assert first.secret_version_id == previous
    assert first.rejected_version_ids == [current]
    assert first.failed_logins == 1
    # The steps after it start with the version that worked: one rejection only.
    assert manifest.failed_logins == 1
    assert all(s.secret_version_id == previous for s in manifest.steps)
    rejected, timers = await history_counts(handle)
    assert (rejected, timers) == (1, 0)
    assert_lockout_safe(manifest)


async def test_a_secret_and_database_that_disagree_fail_after_the_time_allowed(
    runner, fresh_login
):
    # Neither the current nor the previous version holds the database's password.
    previous = fresh_login.current_version()
    current = fresh_login.put_secret(scenario.new_password())
    fresh_login.set_database_password(scenario.new_password())
    started = time.monotonic()
    handle = await runner.start(
        fresh_login.connection(),
        login_retry={
            "initial_seconds": 0.2,
            "max_seconds": 0.5,
            "max_wait_seconds": 2.0,
        },
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=60)
    took = time.monotonic() - started

    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CredentialsRejected"
    assert "the secret and the database disagree for step preflight" in cause.message
    assert current in cause.message and previous in cause.message
    assert "max_wait_seconds" in cause.message
    assert fresh_login.password not in cause.message
    # One login with each version there is, then only questions to the store,
    # with capped backoff, for the time allowed.
    rejected, timers = await history_counts(handle)
    assert rejected == 2
    assert timers >= 2
    assert 2.0 <= took < 30


async def test_a_step_waiting_on_a_secret_picks_up_the_version_that_fixes_it(
    runner, fresh_login
):
    good_password = scenario.new_password()
    fresh_login.put_secret(scenario.new_password())  # ahead of the database
    fresh_login.set_database_password(good_password)  # and both disagree
    handle = await runner.start(
        fresh_login.connection(),
        login_retry={"initial_seconds": 0.2, "max_seconds": 1.0},
    )

    async def both_rejected() -> bool:
        return (await history_counts(handle))[0] >= 2

    await wait_until(both_rejected, timeout=30, what="both versions rejected")
    fixed = fresh_login.put_secret(good_password)
    manifest = await asyncio.wait_for(handle.result(), timeout=60)

    assert manifest.steps[0].secret_version_id == fixed
    assert manifest.steps[0].failed_logins == 2
    assert manifest.failed_logins == 2
    assert_lockout_safe(manifest)


async def test_no_version_is_tried_twice_in_a_step(runner, fresh_login):
    rotator = rotator_for(fresh_login)
    current = fresh_login.current_version()
    # A pending version whose password never reached the database either.
    pending, _, _ = rotator.create_secret()
    fresh_login.set_database_password(scenario.new_password())

    handle = await runner.start(
        fresh_login.connection(),
        login_retry={
            "max_attempts": 10,
            "initial_seconds": 0.1,
            "max_seconds": 0.2,
            "max_wait_seconds": 1.5,
        },
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=60)

    cause = caught.value.cause
    assert cause.type == "CredentialsRejected"
    assert current in cause.message and pending in cause.message
    # Two versions, two failed logins, however many times it asked again.
    rejected, timers = await history_counts(handle)
    assert rejected == 2
    assert timers >= 2
