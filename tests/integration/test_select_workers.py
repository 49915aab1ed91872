"""rtml select with worker processes sharing one study on the machine's Postgres."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from ml.selection import SelectOptions, select_features
from ml.selection.study import open_storage
from ml.selection.trials import DUPLICATE_ATTR, RUN_ATTR, WORKER_ATTR
from tests.conftest import demo_sqlite

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_sqlite(tmp_path_factory, businesses=1500, seed=21)


def _configs(tmp_path: Path, db: str, **selection: Any) -> Path:
    """The demo config on ``db`` with ``selection`` settings, in <tmp>/configs; returns it."""
    raw = json.loads((ROOT / "configs" / "lender_match" / "v1.json").read_text())
    raw["source"] = {"url": db}
    raw["xgboost"]["num_boost_round"] = 60
    raw["selection"].update(selection)
    folder = tmp_path / "configs" / "lender_match"
    folder.mkdir(parents=True)
    (folder / "v1.json").write_text(json.dumps(raw))
    return tmp_path / "configs"


@pytest.mark.integration
@pytest.mark.slow
def test_two_workers_share_a_study_and_run_exactly_the_requested_trials(
    small_db: str, postgres_url: str, tracking: MlflowClient, tmp_path: Path
) -> None:
    # 6 groups and a bucket choice: 256 combinations, so TPE samples (with the constant liar).
    configs = _configs(tmp_path, small_db, trials=7)

    result = select_features(
        "lender_match",
        None,
        SelectOptions(
            workers=2,
            storage=postgres_url,
            configs_dir=configs,
            progress=False,
            seed=3,
        ),
    )
    study = optuna.load_study(study_name=result.study, storage=open_storage(postgres_url))
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.COMPLETE] + states[TrialState.PRUNED] == 7
    assert len(study.trials) == 7  # nothing extra, nothing failed or left running
    workers = Counter(
        t.user_attrs[WORKER_ATTR] for t in study.trials if WORKER_ATTR in t.user_attrs
    )
    assert len(workers) == 2, workers  # both processes ran trials
    assert sorted(workers.values()) in ([3, 4], [2, 5], [1, 6])

    # Each trained trial is a finished run nested under the one parent; nothing RUNNING.
    trained = [t for t in study.trials if RUN_ATTR in t.user_attrs]
    assert (
        len(trained)
        == 7 - sum(DUPLICATE_ATTR in t.user_attrs for t in study.trials) - states[TrialState.PRUNED]
    )
    experiment = tracking.get_experiment_by_name("lender_match")
    runs = tracking.search_runs([experiment.experiment_id], max_results=100)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result.run_id]
    assert {r.info.run_id for r in children} == {t.user_attrs[RUN_ATTR] for t in trained}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert result.config_path.exists()


@pytest.mark.integration
@pytest.mark.slow
def test_a_worker_error_stops_the_study_with_a_clear_message(
    small_db: str, postgres_url: str, tracking: MlflowClient, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from entrypoints.cli import cli

    configs = _configs(tmp_path, small_db, metric="test_nope")  # no trial can report it
    result = CliRunner().invoke(
        cli,
        ["select", "lender_match", "--configs-dir", str(configs), "--quiet"]
        + ["--workers", "2", "--storage", postgres_url, "--trials", "4"],
    )
    assert result.exit_code == 2, result.output
    assert "selection.metric 'test_nope' is not among the trial's metrics" in result.output
    experiment = tracking.get_experiment_by_name("lender_match")
    runs = tracking.search_runs([experiment.experiment_id], max_results=100)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
    assert "RUNNING" not in {r.info.status for r in runs}


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_stops_every_worker_and_leaves_nothing_running(
    small_db: str, postgres_url: str, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    configs = _configs(tmp_path, small_db, trials=40)
    tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "RTML_CACHE_DIR": str(tmp_path / "c")}
    command = [str(Path(sys.executable).parent / "rtml"), "select", "lender_match", "--quiet"]
    command += ["--configs-dir", str(configs), "--workers", "2"]
    command += ["--storage", postgres_url, "--study", "stopped"]
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches every process.
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, start_new_session=True)
    storage = open_storage(postgres_url)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                study = optuna.load_study(study_name="stopped", storage=storage)
                if sum(t.state == TrialState.COMPLETE for t in study.trials) >= 2:
                    break
            except KeyError:
                pass
            time.sleep(0.2)
        assert process.poll() is None, "select ended before it could be interrupted"
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode != 0
    assert "Traceback" not in stderr.decode(), stderr.decode()[-3000:]
    study = optuna.load_study(study_name="stopped", storage=storage)
    assert TrialState.RUNNING not in {t.state for t in study.trials}
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) >= 2
    client = MlflowClient(tracking_uri)
    runs = client.search_runs(["1"], max_results=200)
    assert "RUNNING" not in {r.info.status for r in runs}
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED"
