"""Registry commands on a real MLflow store: register, promote, traffic, status, the
gate that moves @champion only when the candidate is better on the same window, retrain,
pull, and the errors that must leave every alias where it was."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner, Result
from mlflow.tracking import MlflowClient

from entrypoints.cli import cli
from tests.conftest import demo_sqlite

ROOT = Path(__file__).resolve().parents[2]
WEAK = ["--set", "xgboost.num_boost_round=1", "--set", "xgboost.params.max_depth=1"]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_sqlite(tmp_path_factory, businesses=1200, seed=9)


def rtml(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def train(demo_db: str, *args: str) -> str:
    """Train and register lender_match; returns the new version."""
    result = rtml(
        "train",
        "lender_match",
        "--register",
        "-q",
        "--set",
        f"source.url={demo_db}",
        "--set",
        "xgboost.num_boost_round=40",
        *args,
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"registered\s+lender_match version (\d+)", result.output)
    assert match, result.output
    return match.group(1)


def aliases(client: MlflowClient) -> dict[str, str]:
    return {a: str(v) for a, v in client.get_registered_model("lender_match").aliases.items()}


@pytest.mark.integration
def test_gate_moves_champion_only_when_the_candidate_is_better(
    demo_db: str, tracking: MlflowClient
) -> None:
    weak = train(demo_db, *WEAK)
    assert rtml("promote", "lender_match", weak, "--alias", "champion").exit_code == 0
    strong = train(demo_db)
    worse = train(demo_db, *WEAK, "--set", "features.credit_score.buckets.quantiles=2")

    moved = rtml("promote", "lender_match", strong, "--alias", "champion", "--if-better")
    assert moved.exit_code == 0 and ": better" in moved.output, moved.output
    assert aliases(tracking)["champion"] == strong

    kept = rtml("promote", "lender_match", worse, "--alias", "champion", "--if-better")
    assert kept.exit_code == 0 and "not better" in kept.output and "stays" in kept.output
    assert aliases(tracking)["champion"] == strong

    # Both comparisons re-scored both versions on the candidate's test window, and were logged.
    gates = mlflow.search_runs(
        experiment_names=["lender_match"],
        filter_string="tags.`rtml.kind` = 'gate'",
        output_format="list",
    )
    assert len(gates) == 2 and all(g.data.params["window"].startswith("[2026-06-01") for g in gates)
    detail = json.loads(tracking.get_model_version("lender_match", worse).tags["rtml.gate.detail"])
    assert detail["champion"] == strong and detail["passed"] is False
    assert detail["candidate_score"] < detail["champion_score"]
    # A margin the candidate cannot clear keeps the champion too.
    margin = rtml(
        "promote", "lender_match", weak, "--alias", "champion", "--if-better", "--margin", "0.5"
    )
    assert "not better" in margin.output and aliases(tracking)["champion"] == strong


@pytest.mark.integration
def test_aliases_traffic_status_and_their_errors(demo_db: str, tracking: MlflowClient) -> None:
    first, second = train(demo_db), train(demo_db, "--framework", "vw")
    assert rtml("promote", "lender_match", first, "--alias", "champion").exit_code == 0
    staged = rtml("promote", "lender_match", second, "--stage", "Staging")
    assert staged.exit_code == 0 and "deprecates stages" in staged.output
    assert aliases(tracking) == {"champion": first, "challenger": second}

    assert rtml("traffic", "lender_match", "champion=90", "challenger=10").exit_code == 0
    tags = tracking.get_registered_model("lender_match").tags
    assert json.loads(tags["rtml.traffic"]) == {"champion": 90, "challenger": 10}
    for bad, message in [
        (["champion=90", "challenger=20"], "add up to 110, not 100"),
        (["champion=90", "shadow=10"], "no alias @shadow"),
        (["champion=ninety"], "ALIAS=PERCENT"),
    ]:
        result = CliRunner().invoke(cli, ["traffic", "lender_match", *bad])
        assert result.exit_code == 2 and message in result.output
    assert json.loads(tracking.get_registered_model("lender_match").tags["rtml.traffic"]) == {
        "champion": 90,
        "challenger": 10,
    }

    shown = rtml("status", "lender_match")
    assert "@champion 90%, @challenger 10%" in shown.output
    assert "xgboost gbtree" in shown.output and "vw logistic" in shown.output
    for args, message in [
        (["promote", "lender_mach", "1", "--alias", "champion"], "did you mean 'lender_match'"),
        (["promote", "lender_match", "99", "--alias", "champion"], "has no version 99"),
        (["promote", "lender_match", "shadow", "--alias", "champion"], "has no alias @shadow"),
        (["promote", "lender_match", first, "--alias", "latest"], "cannot be an alias"),
        (["register", "0123456789abcdef"], "no run '0123456789abcdef'"),
        (["pull", "lender_match@shadow", "out"], "has no alias @shadow"),
    ]:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert aliases(tracking) == {"champion": first, "challenger": second}


@pytest.mark.integration
def test_register_a_run_and_pull_it(demo_db: str, tracking: MlflowClient, tmp_path: Path) -> None:
    trained = rtml(
        "train",
        "lender_match",
        "-q",
        "--set",
        f"source.url={demo_db}",
        "--set",
        "xgboost.num_boost_round=20",
    )
    run_id = trained.output.split("run")[-1].split()[0]
    registered = rtml("register", run_id)
    assert registered.exit_code == 0 and "version 1" in registered.output
    tags = tracking.get_model_version("lender_match", "1").tags
    assert tags["framework"] == "xgboost" and tags["test_start"] == "2026-06-01"
    assert float(tags["test_auc"]) > 0.7 and tags["trained_at"].startswith("20")
    rtml("promote", "lender_match", "1", "--alias", "champion")

    pulled = rtml("pull", "lender_match@champion", str(tmp_path / "host"))
    assert pulled.exit_code == 0 and "scores its 5 example rows" in pulled.output
    info = json.loads((tmp_path / "host" / "version.json").read_text())
    assert info["version"] == "1" and info["aliases"] == ["champion"]
    config = json.loads((tmp_path / "host" / "config.json").read_text())
    assert config["name"] == "lender_match"
    assert (tmp_path / "host" / "model" / "MLmodel").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".host")]  # no staging left


@pytest.mark.integration
def test_retrain_registers_gates_and_sets_the_policy_alias(
    demo_db: str, tracking: MlflowClient, tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs" / "lender_match", configs / "lender_match")
    path = configs / "lender_match" / "v1.json"
    config = json.loads(path.read_text())
    config["source"]["url"] = demo_db
    config["xgboost"]["num_boost_round"] = 30
    config["promotion"] = {"policy": "champion_if_better", "margin": 0.0}
    path.write_text(json.dumps(config))

    first = rtml(
        "retrain", "lender_match", "--configs-dir", str(configs), "--as-of", "2026-12-01", "-q"
    )
    assert first.exit_code == 0, first.output
    assert "has no @champion" in first.output and aliases(tracking) == {"champion": "1"}
    version = tracking.get_model_version("lender_match", "1")
    assert (version.tags["test_start"], version.tags["test_end"]) == ("2026-06-01", "2026-12-01")

    # A retrain that fails (here: a query error) registers nothing and moves no alias.
    config["data"]["query"] = config["data"]["query"].replace("FROM applications", "FROM nope")
    path.write_text(json.dumps(config))
    failed = CliRunner().invoke(
        cli,
        ["retrain", "lender_match", "--configs-dir", str(configs), "--as-of", "2026-12-01", "-q"],
    )
    assert failed.exit_code == 2 and "no such table: nope" in failed.output
    assert aliases(tracking) == {"champion": "1"}
    assert len(tracking.search_model_versions("name='lender_match'")) == 1


def test_unreachable_tracking_server_is_a_quick_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["status", "lender_match"])
    assert result.exit_code == 2
    assert "cannot reach the MLflow tracking server at http://127.0.0.1:9" in result.output
    assert time.perf_counter() - started < 10
    mlflow.set_tracking_uri(None)
