"""Continuous rotation: extractions of a wide catalog while the password rotates
every second, in both strategies. Every run completes and finds what a run
without rotation finds."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from rotator import Rotator, create_wide_catalog

from services import scenario

pytestmark = pytest.mark.integration

TABLES = 2000
COLUMNS = 8
ROTATE_EVERY = 1.0
WINDOW = 0.3
RUN_FOR = 12.0
MAX_RUNS = 20
PARALLEL = 2
COMPARED = ("schemas", "types", "tables", "columns")


@pytest.fixture(scope="module")
def wide(pg) -> str:
    database = f"wide_{uuid.uuid4().hex[:8]}"
    create_wide_catalog(pg, database, tables=TABLES, columns=COLUMNS)
    return database


def contents(manifest) -> dict[str, list[str]]:
    """The rows each compared step wrote, in a stable order."""
    rows: dict[str, list[str]] = {}
    for step in manifest.steps:
        if step.step in COMPARED:
            lines = []
            for name in step.files:
                with open(name, encoding="utf-8") as handle:
                    lines.extend(handle)
            rows[step.step] = sorted(lines)
    return rows


async def extract_while_rotating(runner, login, rotator) -> list:
    connection = login.connection()
    filters = {"include": ["wide"]}
    baseline = await (await runner.start(connection, filters=filters)).result()
    expected = contents(baseline)
    assert len(expected["columns"]) == TABLES * COLUMNS

    manifests = []
    rotator.start(ROTATE_EVERY)
    try:
        deadline = time.monotonic() + RUN_FOR
        while time.monotonic() < deadline and len(manifests) < MAX_RUNS:
            handles = [
                await runner.start(connection, filters=filters) for _ in range(PARALLEL)
            ]
            manifests += await asyncio.wait_for(
                asyncio.gather(*(h.result() for h in handles)), timeout=120
            )
    finally:
        rotations = rotator.stop()

    assert rotations >= RUN_FOR / ROTATE_EVERY / 2
    for manifest in manifests:
        assert contents(manifest) == expected
        for step in manifest.steps:
            # Lockout safety: no version is tried twice in one step.
            assert len(set(step.rejected_version_ids)) == step.failed_logins
    failed = sum(m.failed_logins for m in manifests)
    versions = {s.secret_version_id for m in manifests for s in m.steps}
    print(
        f"{rotator.strategy}: {len(manifests)} runs, {rotations} rotations, "
        f"{len(versions)} versions used, {failed} failed logins, "
        f"{sum(m.steps_re_resolved for m in manifests)} steps re-resolved"
    )
    # The runs did straddle rotations, and logged in with many versions.
    assert len(versions) >= 3
    return manifests


async def test_continuous_single_user_rotation_fails_no_extraction(
    runner, pg, moto, wide
):
    suffix = uuid.uuid4().hex[:8]
    login = scenario.prepare(
        pg,
        moto,
        database=wide,
        role=f"single_{suffix}",
        secret_name=f"single-{suffix}",
        load=False,
    )
    rotator = Rotator(
        pg=pg,
        client=login.secrets_client(),
        secret_arn=login.secret_arn,
        database=wide,
        users=(login.role,),
        window_seconds=WINDOW,
    )
    await extract_while_rotating(runner, login, rotator)


async def test_continuous_alternating_user_rotation_fails_no_extraction(
    runner, pg, moto, wide
):
    suffix = uuid.uuid4().hex[:8]
    login = scenario.prepare(
        pg,
        moto,
        database=wide,
        role=f"app_{suffix}",
        secret_name=f"alternating-{suffix}",
        load=False,
    )
    clone = f"app_clone_{suffix}"
    pg.create_login_role(clone, scenario.new_password())
    rotator = Rotator(
        pg=pg,
        client=login.secrets_client(),
        secret_arn=login.secret_arn,
        database=wide,
        users=(login.role, clone),
        window_seconds=WINDOW,
    )
    manifests = await extract_while_rotating(runner, login, rotator)
    # Runs started under both users' versions.
    first_versions = {m.steps[0].secret_version_id for m in manifests}
    assert len(first_versions) >= 2
