"""`rtml train` end to end on a small demo marketplace: every framework × algorithm, the
MLflow run it leaves, pyfunc parity, and the errors that must not leave a run RUNNING."""

from __future__ import annotations

import textwrap
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from sklearn.metrics import r2_score, roc_auc_score

from entrypoints.cli import cli
from ml.config import load_model_config
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from tests.conftest import demo_sqlite

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--set", "xgboost.num_boost_round=40"]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_sqlite(tmp_path_factory, businesses=1500, seed=7)


def _train(*args: str) -> object:
    return CliRunner().invoke(cli, ["train", *args, "--quiet"], catch_exceptions=False)


def _only_run(client: MlflowClient, model: str):  # type: ignore[no-untyped-def]
    experiment = client.get_experiment_by_name(model)
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    return run


def _test_rows(model: str, db: str) -> pd.DataFrame:
    config = load_model_config(model)
    window = config.windows.test
    assert window is not None and config.data.query is not None
    with open_source(parse_db_url(db)) as source:
        return source.query(
            config.data.query, {"start": window.start.isoformat(), "end": window.end.isoformat()}
        )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("model", "framework", "algorithm"),
    [
        ("lender_match", "xgboost", "gbtree"),
        ("lender_match", "xgboost", "logistic"),
        ("lender_match", "xgboost", "linear"),
        ("lender_match", "vw", "logistic"),
        ("lender_match", "vw", "linear"),
        ("funded_amount", "xgboost", "gbtree"),
        ("funded_amount", "xgboost", "linear"),
        ("funded_amount", "vw", "linear"),
    ],
)
def test_train_logs_a_complete_run_whose_pyfunc_scores_like_rtml(
    demo_db: str, tracking: MlflowClient, model: str, framework: str, algorithm: str
) -> None:
    result = _train(
        model,
        "--framework",
        framework,
        "--algorithm",
        algorithm,
        "--set",
        f"source.url={demo_db}",
        *FAST,
    )
    assert result.exit_code == 0, result.output
    run = _only_run(tracking, model)
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert (params["framework"], params["algorithm"], params["config_version"]) == (
        framework,
        algorithm,
        "v1",
    )
    assert params["train_start"] == "2024-12-01" and "config.features.credit_score.type" in params
    assert int(tags["rows.test"]) > 1000
    artifacts = {a.path for a in tracking.list_artifacts(run.info.run_id)}
    assert {"config.json", "pipeline.json", "plots", "evaluation"} <= artifacts
    plots = {a.path for a in tracking.list_artifacts(run.info.run_id, "plots")}
    assert "plots/importance.png" in plots

    # Models-from-code: the logged model is code plus plain data files, nothing pickled.
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model"))
    files = {path.name for path in local.rglob("*") if path.is_file()}
    assert {"model.ubj" if framework == "xgboost" else "model.vw", "pipeline.json"} <= files
    assert not [name for name in files if name.endswith((".pkl", ".pickle", ".cloudpickle"))]

    rows = _test_rows(model, demo_db)
    label = "approved" if model == "lender_match" else "funded_amount"
    scores = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(
        rows.drop(columns=[label])
    )
    if model == "lender_match":
        assert {"plots/roc_test.png", "plots/pr_test.png"} <= plots
        assert metrics["test_auc"] > 0.75 and metrics["test_precision_at_1"] > 0.5
        # The pyfunc (serving path, raw rows) reproduces the metric rtml logged (bulk path).
        assert roc_auc_score(rows[label], scores) == pytest.approx(metrics["test_auc"], abs=1e-6)
    else:
        assert "plots/predicted_vs_actual_test.png" in plots
        assert metrics["test_r2"] > 0.5
        assert r2_score(rows[label], scores) == pytest.approx(metrics["test_r2"], abs=1e-6)
    assert "test_auc" in result.output or "test_r2" in result.output


@pytest.mark.integration
def test_stats_and_register(demo_db: str, tracking: MlflowClient) -> None:
    result = _train(
        "lender_match", "--stats", "--register", "--set", f"source.url={demo_db}", *FAST
    )
    assert result.exit_code == 0, result.output
    run = _only_run(tracking, "lender_match")
    stats = {a.path for a in tracking.list_artifacts(run.info.run_id, "stats")}
    assert stats == {"stats/feature_stats.json", "stats/feature_stats.html"}
    (version,) = tracking.search_model_versions("name='lender_match'")
    assert version.run_id == run.info.run_id
    assert version.tags["config_version"] == "v1" and version.tags["framework"] == "xgboost"
    assert float(version.tags["test_auc"]) == pytest.approx(run.data.metrics["test_auc"], rel=1e-5)
    assert "registered           lender_match version 1" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--framework", "vw", "--algorithm", "gbtree"], "vw has no algorithm 'gbtree'"),
        (["--algorithm", "boosted"], "choose one of: gbtree"),
    ],
)
def test_bad_choices_exit_2_before_any_run(
    tracking: MlflowClient, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, ["train", "lender_match", *args])
    assert result.exit_code == 2 and message in result.output
    assert tracking.get_experiment_by_name("lender_match") is None


def test_regression_refuses_logistic(tracking: MlflowClient) -> None:
    result = CliRunner().invoke(cli, ["train", "funded_amount", "--algorithm", "logistic"])
    assert result.exit_code == 2
    assert "cannot train a regression model" in result.output and "gbtree, linear" in result.output


def test_unknown_model_suggests_a_name(tracking: MlflowClient) -> None:
    result = CliRunner().invoke(cli, ["train", "lender_mach"])
    assert result.exit_code == 2 and "did you mean 'lender_match'" in result.output


BROKEN_MODEL = textwrap.dedent(
    """
    from ml.models.lender_match import LenderMatch

    class Broken(LenderMatch):
        def prepare(self, rows):
            raise KeyError("no_such_column")
    """
)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model_class=broken_model:Broken"], "Broken.prepare() raised KeyError"),
        (["data.label.column=requested_amount", "data.label.positive=null"], "must be 0 or 1"),
    ],
)
def test_failures_end_the_run_failed_with_the_error(
    demo_db: str,
    tracking: MlflowClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overrides: list[str],
    message: str,
) -> None:
    (tmp_path / "broken_model.py").write_text(BROKEN_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    sets = [arg for item in overrides for arg in ("--set", item)]
    result = CliRunner().invoke(
        cli, ["train", "lender_match", "--set", f"source.url={demo_db}", *sets, "--quiet"]
    )
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output
    run = _only_run(tracking, "lender_match")
    assert run.info.status == "FAILED" and message in run.data.tags["rtml.error"]
    assert tracking.search_registered_models() == []


@pytest.mark.integration
def test_empty_test_window_is_a_clear_error(demo_db: str, tracking: MlflowClient) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "lender_match",
            "--set",
            f"source.url={demo_db}",
            "--set",
            "windows.test.start=2030-01-01",
            "--set",
            "windows.test.end=2030-02-01",
        ],
    )
    assert result.exit_code == 2 and "returned no rows" in result.output
    assert _only_run(tracking, "lender_match").info.status == "FAILED"


INTERRUPTED_MODEL = textwrap.dedent(
    """
    from ml.models.lender_match import LenderMatch

    class Interrupted(LenderMatch):
        def prepare(self, rows):
            raise KeyboardInterrupt
    """
)


@pytest.mark.integration
def test_ctrl_c_ends_the_run_killed(
    demo_db: str, tracking: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.training import TrainOptions, train_model

    (tmp_path / "interrupted_model.py").write_text(INTERRUPTED_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load_model_config(
        "lender_match",
        overrides=[f"source.url={demo_db}", "model_class=interrupted_model:Interrupted"],
    )
    with pytest.raises(KeyboardInterrupt):
        train_model(config, "v1", TrainOptions("xgboost", "gbtree", progress=False))
    assert _only_run(tracking, "lender_match").info.status == "KILLED"
