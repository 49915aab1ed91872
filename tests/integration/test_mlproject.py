"""The MLproject entry points run through `mlflow run`, as a data scientist would."""

from __future__ import annotations

import os
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
    done = subprocess.run(
        [
            f"{bin_dir}/mlflow",
            "run",
            str(ROOT),
            "-e",
            "demo_data",
            "--env-manager",
            "local",
            "-P",
            f"db=sqlite:///{tmp_path}/demo.db",
            "-P",
            "businesses=200",
            "-P",
            "seed=5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Wrote demo data" in done.stdout
    mlflow.set_tracking_uri(tracking)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert [run.info.status for run in runs] == ["FINISHED"]
    assert runs[0].data.params["businesses"] == "200"
