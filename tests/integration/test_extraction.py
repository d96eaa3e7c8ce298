"""The extraction workflow end to end on Temporal, moto and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from workflows import SqlExtractionWorkflow

from .waiting import login_rejections, paused, wait_until

pytestmark = pytest.mark.integration

PAGILA_PUBLIC = {
    "table": 14,
    "partition": 55,
    "partitioned table": 1,
    "view": 7,
    "materialized view": 1,
    "domain": 2,
    "enum": 1,
    "columns": 461,
    "schemas": 1,
}


def read_jsonl(files: list[str]) -> list[dict]:
    rows = []
    for name in files:
        with open(name, encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle)
    return rows


async def test_pagila_extraction_finds_every_object_of_public(runner, pagila):
    handle = await runner.start(pagila.connection(), filters={"include": ["public"]})
    manifest = await handle.result()

    assert manifest.objects["table"] + manifest.objects["partition"] == 69
    assert {k: manifest.objects[k] for k in PAGILA_PUBLIC} == PAGILA_PUBLIC
    assert manifest.server_version.startswith("15.")
    steps = {s.step: s for s in manifest.steps}
    assert list(steps) == [
        "preflight",
        "databases",
        "schemas",
        "types",
        "tables",
        "columns",
    ]

    # The files hold exactly what the manifest counted, one folder per kind.
    tables = read_jsonl(steps["tables"].files)
    assert len(tables) == 78
    kinds = {t["name"]: t["kind"] for t in tables}
    assert kinds["payment"] == "partitioned table"
    assert kinds["payment_p2022_01"] == "partition"
    assert kinds["rental_by_category"] == "materialized view"
    assert kinds["actor_info"] == "view"
    partition = next(t for t in tables if t["name"] == "payment_p2022_01")
    assert partition["parent_name"] == "payment"
    assert "FOR VALUES FROM" in partition["partition_bound"]

    columns = read_jsonl(steps["columns"].files)
    assert len(columns) == 461
    actor_id = next(
        c for c in columns if c["table_name"] == "actor" and c["name"] == "actor_id"
    )
    assert actor_id["position"] == 1
    assert actor_id["data_type"] == "integer"
    assert actor_id["nullable"] is False
    assert actor_id["default"].startswith("nextval(")

    types = {t["name"]: t for t in read_jsonl(steps["types"].files)}
    assert types["bıgınt"]["kind"] == "domain"
    assert types["bıgınt"]["base_type"] == "bigint"
    assert types["mpaa_rating"]["labels"] == ["G", "PG", "PG-13", "R", "NC-17"]

    for record in manifest.steps:
        for name in record.files:
            path = Path(name)
            assert path.parent.name == record.step
            assert path.name.endswith(".jsonl")
        # Every step resolved once and used the one secret version there is.
        assert record.secret_version_id == pagila.current_version()
        assert record.resolutions == 1
    leftovers = list(Path(runner.output_dir).rglob("*.tmp"))
    assert leftovers == []


async def test_password_with_url_special_characters_logs_in(runner, fresh_login):
    fresh_login.set_database_password("p@ss:w/rd#%?&=")
    fresh_login.put_secret("p@ss:w/rd#%?&=")

    handle = await runner.start(fresh_login.connection())
    manifest = await handle.result()

    assert manifest.steps[0].step == "preflight"
    assert manifest.steps[0].count == 1


async def test_a_repeated_run_rewrites_its_files_without_duplicates(runner, pagila):
    first = await (await runner.start(pagila.connection(), run_name="same")).result()
    second = await (await runner.start(pagila.connection(), run_name="same")).result()

    for a, b in zip(first.steps[1:], second.steps[1:], strict=True):
        assert a.files == b.files
        assert len(read_jsonl(b.files)) == b.count > 0
    columns = Path(runner.output_dir) / "same" / "columns"
    assert sorted(p.name for p in columns.iterdir()) == ["part-00000.jsonl"]


async def test_a_rotation_between_steps_is_used_by_the_next_step(runner, fresh_login):
    before = fresh_login.current_version()
    handle = await runner.start(fresh_login.connection(), pause_after_step="schemas")
    await paused(handle)

    after = fresh_login.rotate()
    await handle.signal(SqlExtractionWorkflow.resume, handle.id)
    manifest = await handle.result()

    versions = {s.step: s.secret_version_id for s in manifest.steps}
    assert versions == {
        "preflight": before,
        "databases": before,
        "schemas": before,
        "types": after,
        "tables": after,
        "columns": after,
    }
    steps = {s.step: s for s in manifest.steps}
    assert all(steps[s].resolutions == 1 for s in ("preflight", "databases"))
    # The worker's cache may still hold the old version for the first step
    # after the rotation: that costs one rejected login, never more.
    assert steps["types"].rejected_version_ids in ([], [before])
    assert all(steps[s].resolutions == 1 for s in ("tables", "columns"))


async def test_a_rejected_login_resolves_again_and_succeeds(runner, fresh_login):
    old_version = fresh_login.current_version()
    handle = await runner.start(
        fresh_login.connection(),
        pause_after_step="schemas",
        login_retry={"initial_seconds": 1.0, "max_attempts": 10},
    )
    await paused(handle)

    # The database changes first; the secret follows a moment later.
    new_password = "rotated-" + fresh_login.password
    fresh_login.set_database_password(new_password)
    await handle.signal(SqlExtractionWorkflow.resume, handle.id)

    async def rejected() -> bool:
        return await login_rejections(handle) >= 1

    await wait_until(rejected, timeout=30, what="the types step to be rejected")
    new_version = fresh_login.put_secret(new_password)
    manifest = await handle.result()

    types = next(s for s in manifest.steps if s.step == "types")
    assert types.secret_version_id == new_version
    assert types.resolutions >= 2
    assert set(types.rejected_version_ids) == {old_version}
    assert manifest.objects["columns"] == 461


async def test_credentials_that_stay_wrong_fail_with_a_clear_message(
    runner, fresh_login
):
    version = fresh_login.current_version()
    fresh_login.set_database_password("changed-behind-the-secrets-back")

    handle = await runner.start(
        fresh_login.connection(),
        login_retry={
            "initial_seconds": 0.1,
            "max_seconds": 0.2,
            "max_attempts": 3,
            "max_wait_seconds": 1.0,
        },
    )
    with pytest.raises(WorkflowFailureError) as caught:
        await asyncio.wait_for(handle.result(), timeout=60)

    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CredentialsRejected"
    assert "the secret and the database disagree" in cause.message
    assert version in cause.message
    assert "changed-behind-the-secrets-back" not in cause.message
    assert fresh_login.password not in cause.message
    # The one version there is was tried once: never again in the same step.
    assert await login_rejections(handle) == 1
