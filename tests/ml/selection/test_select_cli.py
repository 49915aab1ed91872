"""rtml select from the command line: bad input exits 2 with a clear message; Ctrl-C keeps
finished trials and leaves no run RUNNING; the rerun continues the study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from entrypoints.cli import cli
from tests.ml.selection.conftest import lender_match_raw

WriteConfig = Callable[..., Path]
RTML = str(Path(sys.executable).parent / "rtml")


def _select(configs: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["select", "lender_match", "--configs-dir", str(configs), "--quiet", *args]
    )


def _small(db: str, **selection: Any) -> dict[str, Any]:
    raw = lender_match_raw(db)
    raw["selection"] = {"groups": {"lender": ["lender_id", "state"]}, "trials": 2, **selection}
    return raw


@pytest.mark.parametrize(
    ("selection", "args", "expected"),
    [
        (
            {"groups": {"noise": ["noise_a"]}},
            [],
            "selection.groups.noise[0]: unknown feature 'noise_a'",
        ),
        ({"groups": {}}, [], "selection: the search space is empty"),
        (
            {},
            ["--storage", "postgresql://postgres@127.0.0.1:1/optuna"],
            "cannot use the Optuna storage postgresql://postgres@127.0.0.1:1/optuna",
        ),
        (
            {},
            ["--storage", "sqlite:////tmp/rtml-never.db", "--workers", "2"],
            "2 workers cannot share SQLite storage",
        ),
        ({}, ["--storage", "redis://localhost"], "cannot use the Optuna storage redis://"),
        (
            {},
            ["--storage", "postgresql://postgres:s3cret@127.0.0.1:1/optuna"],
            "cannot use the Optuna storage postgresql://postgres:***@127.0.0.1:1/optuna",
        ),
        ({}, ["--framework", "vw", "--algorithm", "gbtree"], "vw has no algorithm 'gbtree'"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    selection: dict[str, Any],
    args: list[str],
    expected: str,
    tracking: MlflowClient,
    write_config: WriteConfig,
    tmp_path: Path,
) -> None:
    raw = _small(f"sqlite:///{tmp_path}/none.db", **selection)
    if not selection.get("groups", True):
        raw["selection"]["groups"] = {}
    started = time.monotonic()
    result = _select(write_config(raw), "--storage", f"sqlite:///{tmp_path}/o.db", *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output and "s3cret" not in result.output
    assert time.monotonic() - started < 30  # an unreachable server is not waited on for long
    # Refused before anything started: no MLflow run at all.
    assert tracking.search_experiments(filter_string="name = 'lender_match'") == []


def test_a_config_without_selection_is_refused(
    tracking: MlflowClient, write_config: WriteConfig, tmp_path: Path
) -> None:
    raw = lender_match_raw(f"sqlite:///{tmp_path}/none.db")
    del raw["selection"]
    result = _select(write_config(raw))
    assert result.exit_code == 2
    assert "config 'lender_match' has no 'selection' section" in result.output


@pytest.mark.slow
def test_a_study_with_a_different_search_space_is_refused(
    selection_db: str, tracking: MlflowClient, write_config: WriteConfig, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    configs = write_config(_small(selection_db))
    first = _select(configs, "--storage", storage, "--study", "mine", "--trials", "1")
    assert first.exit_code == 0, first.output
    write_config(_small(selection_db, groups={"lender": ["lender_id"], "geo": ["state"]}))
    second = _select(configs, "--storage", storage, "--study", "mine")
    assert second.exit_code == 2, second.output
    assert "study 'mine' exists with a different search space (groups: was" in second.output
    assert "optuna delete-study --study-name mine" in second.output
    # Refused before any data is pulled: no run for the refused attempt.
    statuses = [r.info.status for r in tracking.search_runs(["1"], max_results=100)]
    assert statuses == ["FINISHED", "FINISHED"]  # the first attempt's parent and its trial
    # Without --study, the changed space gets a study of its own.
    third = _select(configs, "--storage", storage)
    assert third.exit_code == 0, third.output


@pytest.mark.slow
@pytest.mark.integration
def test_ctrl_c_keeps_finished_trials_and_a_rerun_finishes_the_study(
    selection_db: str, write_config: WriteConfig, tmp_path: Path
) -> None:
    raw = lender_match_raw(selection_db)
    raw["selection"] = {
        "groups": {
            "credit": ["credit_score"],
            "amount": ["requested_amount"],
            "lender": ["lender_id"],
        },
        "trials": 8,
    }
    configs = write_config(raw)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "RTML_CACHE_DIR": str(tmp_path / "c")}
    command = [RTML, "select", "lender_match", "--configs-dir", str(configs), "--storage", storage]
    command += ["--study", "interrupted", "--quiet"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                study = optuna.load_study(study_name="interrupted", storage=storage)
                if any(t.state == TrialState.COMPLETE for t in study.trials):
                    break
            except KeyError:
                pass
            time.sleep(0.1)
        assert process.poll() is None, "select ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode != 0

    client = MlflowClient(tracking_uri)
    runs = client.search_runs(["1"], max_results=100)
    assert "RUNNING" not in {r.info.status for r in runs}
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED", stderr.decode()[-2000:]
    study = optuna.load_study(study_name="interrupted", storage=storage)
    finished = {t.number: t.value for t in study.trials if t.state == TrialState.COMPLETE}
    assert finished
    assert TrialState.RUNNING not in {t.state for t in study.trials}

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    study = optuna.load_study(study_name="interrupted", storage=storage)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 8
    assert {t.number: t.value for t in done if t.number in finished} == finished
    runs = client.search_runs(["1"], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.info.status for r in parents) == ["FINISHED", "KILLED"]
    assert "RUNNING" not in {r.info.status for r in runs}


@pytest.mark.slow
def test_an_empty_study_made_elsewhere_with_the_other_direction_is_refused(
    selection_db: str, tracking: MlflowClient, write_config: WriteConfig, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    optuna.create_study(study_name="theirs", storage=storage, direction="minimize")
    result = _select(write_config(_small(selection_db)), "--storage", storage, "--study", "theirs")
    assert result.exit_code == 2, result.output
    assert "study 'theirs' exists and it minimizes, but selection.direction is 'maximize'" in (
        result.output
    )
