"""The MLproject entry points run through `mlflow run`, as a data scientist would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.slow
def test_mlflow_run_demo_data_entry_point(tmp_path: Path) -> None:
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = _mlflow_run(
        "demo_data",
        [f"db=sqlite:///{tmp_path}/demo.db", "businesses=200", "seed=5"],
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Wrote demo data" in done.stdout
    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert [run.info.status for run in runs] == ["FINISHED"]
    assert runs[0].data.params["businesses"] == "200"


@pytest.mark.integration
@pytest.mark.slow
def test_mlflow_run_train_entry_point(tmp_path: Path) -> None:
    # retrain has no --set: give it a config folder whose source is this test's database.
    configs, tracking, env = _demo_project(tmp_path)
    done = _mlflow_run(
        "train",
        ["model=lender_match", "framework=vw", f"set=source.url=sqlite:///{tmp_path}/demo.db"],
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test_auc" in done.stdout
    mlflow.set_tracking_uri(tracking)
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert run.info.status == "FINISHED"
    params = run.data.params
    # MLflow logged the entry point's own algorithm='' (rtml's default); rtml adds what it chose.
    assert params["framework"] == "vw" and params["algorithm_resolved"] == "logistic"
    assert run.data.metrics["test_auc"] > 0.7

    # The retrain entry point: recent windows, register, gate (no champion yet), alias.
    retrained = _mlflow_run(
        "retrain",
        ["model=lender_match", "as_of=2026-12-01"],
        env={**env, "RTML_CONFIGS_DIR": str(configs)},
        timeout=600,
    )
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert "lender_match@champion -> version 1" in retrained.stdout
    version = mlflow.MlflowClient().get_model_version_by_alias("lender_match", "champion")
    assert version.tags["test_end"] == "2026-12-01"


@pytest.mark.integration
@pytest.mark.slow
def test_mlflow_run_select_entry_point(tmp_path: Path) -> None:
    configs, tracking, env = _demo_project(tmp_path)
    env["RTML_CONFIGS_DIR"] = str(configs)
    done = _mlflow_run(
        "select", ["trials=3", f"storage=sqlite:///{tmp_path}/optuna.db"], env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train it             rtml train lender_match --version v1-selected" in done.stdout
    assert (configs / "lender_match" / "v1-selected.json").exists()
    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (parent,) = parents  # the run MLflow made for the entry point is the parent
    assert parent.info.status == "FINISHED" and parent.data.params["trials"] == "3"
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len(runs) - 1 == int(parent.data.metrics["trials_trained"])


def _mlflow_run(
    entry: str, params: list[str], env: dict[str, str], timeout: int
) -> subprocess.CompletedProcess[str]:
    """`mlflow run` of this project's entry point with ``-P`` params, in the local env."""
    command = [str(Path(sys.executable).parent / "mlflow"), "run", str(ROOT), "-e", entry]
    command += ["--env-manager", "local"]
    for param in params:
        command += ["-P", param]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _demo_project(tmp_path: Path) -> tuple[Path, str, dict[str, str]]:
    """A small demo database, the lender_match configs reading it, a tracking store, and the
    environment `mlflow run` needs: (configs folder, tracking URI, env)."""
    from ml.data.urls import parse_db_url
    from ml.demo import DemoSpec, load_demo_data

    load_demo_data(parse_db_url(f"sqlite:///{tmp_path}/demo.db"), DemoSpec(businesses=600))
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs" / "lender_match", configs / "lender_match")
    config_path = configs / "lender_match" / "v1.json"
    config = json.loads(config_path.read_text())
    config["source"]["url"] = f"sqlite:///{tmp_path}/demo.db"
    config_path.write_text(json.dumps(config))
    tracking = f"sqlite:///{tmp_path}/mlflow.db"
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "RTML_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    return configs, tracking, env
