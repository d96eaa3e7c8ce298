"""Recorded histories replay on today's workflow code, with the worker's converter.

A change to the workflow that would break running executions makes these fail.
When the change is intended, record the histories again (see the README).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from credentials.sealing import KeyRing
from worker import data_converter, workflow_runner
from workflows import ALL_WORKFLOWS, SqlExtractionWorkflow
from workflows.models import ExtractionManifest, ExtractionRequest

HISTORIES = Path(__file__).resolve().parent / "histories"
SCENARIOS = ["clean", "rotation", "rejected-login", "bad-key-name"]


def history(name: str) -> WorkflowHistory:
    path = HISTORIES / f"{name}.json"
    return WorkflowHistory.from_json(f"replay-{name}", path.read_text())


@pytest.fixture(scope="module")
def converter():
    return data_converter(KeyRing.parse((HISTORIES / "KEYS").read_text()))


@pytest.mark.parametrize("name", SCENARIOS)
async def test_recorded_history_replays(name, converter):
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history(name))
    assert result.replay_failure is None


def test_every_scenario_has_a_recorded_history():
    recorded = sorted(p.stem for p in HISTORIES.glob("*.json"))
    assert recorded == sorted(SCENARIOS)


@workflow.defn(name="SqlExtraction", sandboxed=False)
class TimerFirstExtraction(SqlExtractionWorkflow):
    """The workflow with a timer before its first step: an incompatible change."""

    @workflow.run
    async def run(self, request: ExtractionRequest) -> ExtractionManifest:
        await workflow.sleep(1)
        return await super().run(request)


async def test_an_incompatible_change_fails_replay(converter):
    replayer = Replayer(workflows=[TimerFirstExtraction], data_converter=converter)
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history("clean"))


async def test_a_seal_that_does_not_open_fails_the_task_not_the_process(converter):
    # Recorded when every secret field shared one seal purpose: its credential
    # fields no longer unseal. That must be a failed workflow task, never the
    # native crypto code aborting the worker from inside the sandbox.
    legacy = Path(__file__).resolve().parent / "legacy" / "clean-generic-seal.json"
    replayer = Replayer(
        workflows=ALL_WORKFLOWS,
        data_converter=converter,
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json("replay-clean", legacy.read_text()),
        raise_on_replay_failure=False,
    )
    assert result.replay_failure is not None
    assert "SealingError" in repr(result.replay_failure)
