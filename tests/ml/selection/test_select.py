"""rtml select end to end on a small demo marketplace: real Optuna storage, real MLflow runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from ml.config import load_config
from ml.selection import SelectOptions, select_features
from ml.selection.trials import DUPLICATE_ATTR, FEATURES_ATTR
from ml.training import TrainOptions, train_model
from tests.ml.selection.conftest import NOISE, lender_match_raw, noisy_raw

WriteConfig = Callable[..., Path]


def _runs(client: MlflowClient) -> list[Any]:
    experiment = client.get_experiment_by_name("lender_match")
    return client.search_runs([experiment.experiment_id], max_results=1000)


def _children(client: MlflowClient, parent: str) -> list[Any]:
    return [r for r in _runs(client) if r.data.tags.get("mlflow.parentRunId") == parent]


@pytest.mark.slow
def test_noise_features_are_left_out(
    selection_db: str, tracking: MlflowClient, tmp_path: Path, write_config: WriteConfig
) -> None:
    configs = write_config(noisy_raw(selection_db))
    storage = f"sqlite:///{tmp_path}/optuna.db"
    result = select_features(
        "lender_match",
        "v1",
        SelectOptions(configs_dir=configs, storage=storage, progress=False),
    )
    # Three groups -> eight combinations; trials: 8, so every one is evaluated once.
    assert result.counts == {"complete": 8, "trained": 8, "duplicates": 0, "pruned": 0, "failed": 0}
    assert result.baseline_value is not None
    assert result.best_value >= result.baseline_value  # the acceptance point...
    assert result.best_value > result.baseline_value  # ...and here the noise measurably hurts
    assert not set(NOISE) & set(result.features)
    assert set(NOISE) <= set(result.dropped)
    assert result.best_params == {"group.credit": True, "group.amount": True, "group.noise": False}

    # The selected config is written next to the original and rtml train takes it as it is.
    assert result.config_path == configs / "lender_match" / "v1-selected.json"
    selected = load_config(result.config_path)
    assert [f.name for f in selected.features] == result.features
    trained = train_model(
        selected, "v1-selected", TrainOptions("xgboost", "gbtree", progress=False)
    )
    assert trained.metrics["test_auc"] == pytest.approx(result.best_value, abs=1e-9)

    # MLflow: one parent, a nested run per trained trial, every run finished.
    parent = tracking.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best_test_auc"] == result.best_value
    assert parent.data.metrics["baseline_test_auc"] == result.baseline_value
    assert parent.data.params["study"] == result.study
    children = _children(tracking, result.run_id)
    assert len(children) == 8 and {c.info.status for c in children} == {"FINISHED"}
    best_child = next(c for c in children if c.data.params["trial"] == str(result.best_trial))
    assert best_child.data.metrics["test_auc"] == result.best_value
    assert best_child.data.params["optuna.group.noise"] == "False"
    assert best_child.data.params["features"] == ",".join(result.features)
    artifacts = {a.path for a in tracking.list_artifacts(result.run_id, "plots")}
    assert {
        "plots/optimization_history.png",
        "plots/param_importances.png",
        "plots/group_effects.png",
    } <= artifacts
    best = json.loads(
        Path(tracking.download_artifacts(result.run_id, "selection/best.json")).read_text()
    )
    assert best["features"] == result.features and best["trial"] == result.best_trial
    effects = json.loads(
        Path(tracking.download_artifacts(result.run_id, "selection/group_effects.json")).read_text()
    )
    assert effects["noise"] < 0 < effects["credit"]


@pytest.mark.slow
def test_repeats_are_not_retrained_and_a_rerun_continues_the_study(
    selection_db: str, tracking: MlflowClient, tmp_path: Path, write_config: WriteConfig
) -> None:
    raw = lender_match_raw(selection_db)
    # state is cross-only, crossed only with lender_id: with lender out, geo in or out is
    # the same combination.
    raw["selection"] = {"groups": {"lender": ["lender_id"], "geo": ["state"]}, "trials": 4}
    configs = write_config(raw)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    options = SelectOptions(configs_dir=configs, storage=storage, progress=False, seed=1)

    first = select_features(
        "lender_match", "v1", SelectOptions(**{**options.__dict__, "trials": 2})
    )
    assert first.counts["complete"] == 2
    study = optuna.load_study(study_name=first.study, storage=storage)
    started = {t.number: t.datetime_start for t in study.trials}

    second = select_features("lender_match", "v1", options)  # same study, up to 4 trials
    assert second.study == first.study
    study = optuna.load_study(study_name=first.study, storage=storage)
    assert len(study.trials) == 4
    assert {t.number: t.datetime_start for t in study.trials[:2]} == started  # kept, not rerun
    params = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(params) == 4  # every choice once
    duplicates = [t for t in study.trials if DUPLICATE_ATTR in t.user_attrs]
    assert len(duplicates) == 1
    (repeat,) = duplicates
    original = study.trials[repeat.user_attrs[DUPLICATE_ATTR]]
    assert repeat.value == original.value
    assert repeat.user_attrs[FEATURES_ATTR] == original.user_attrs[FEATURES_ATTR]
    assert second.counts == {"complete": 4, "trained": 3, "duplicates": 1, "pruned": 0, "failed": 0}
    # Only trained trials have runs: 3 nested runs under two parents.
    children = _children(tracking, first.run_id) + _children(tracking, second.run_id)
    assert len(children) == 3

    # A third run has nothing left to do and reports the same best.
    third = select_features("lender_match", "v1", options)
    assert third.counts == second.counts and third.best_trial == second.best_trial


@pytest.mark.slow
def test_the_time_budget_stops_the_study_and_the_run_still_finishes(
    selection_db: str, tracking: MlflowClient, tmp_path: Path, write_config: WriteConfig
) -> None:
    raw = lender_match_raw(selection_db)
    raw["selection"] = {"groups": {"lender": ["lender_id"], "amount": ["requested_amount"]}}
    raw["selection"]["timeout_seconds"] = 0.001  # no new trial after the first
    configs = write_config(raw)
    result = select_features(
        "lender_match",
        "v1",
        SelectOptions(configs_dir=configs, storage=f"sqlite:///{tmp_path}/o.db", progress=False),
    )
    assert result.counts["complete"] == 1
    parent = tracking.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["timeout_seconds"] == "0.001"


@pytest.mark.slow
def test_vw_trials_train_on_their_own_example_files(
    selection_db: str, tracking: MlflowClient, tmp_path: Path, write_config: WriteConfig
) -> None:
    raw = lender_match_raw(selection_db)
    raw["selection"] = {"groups": {"lender": ["lender_id", "state"]}, "trials": 2}
    configs = write_config(raw)
    result = select_features(
        "lender_match",
        "v1",
        SelectOptions(
            framework="vw",
            configs_dir=configs,
            storage=f"sqlite:///{tmp_path}/o.db",
            progress=False,
        ),
    )
    assert result.counts == {"complete": 2, "trained": 2, "duplicates": 0, "pruned": 0, "failed": 0}
    children = _children(tracking, result.run_id)
    assert {c.data.params["framework"] for c in children} == {"vw"}
    with_lender = next(c for c in children if c.data.params["optuna.group.lender"] == "True")
    assert "state_x_lender_id" in with_lender.data.params["crosses"]
    assert all(c.data.metrics["test_auc"] > 0.7 for c in children)


@pytest.mark.slow
def test_listed_combinations_with_a_loss_to_minimise(
    selection_db: str, tracking: MlflowClient, tmp_path: Path, write_config: WriteConfig
) -> None:
    raw = lender_match_raw(selection_db)
    raw["selection"] = {
        "groups": {"credit": ["credit_score", "credit_margin"], "lender": ["lender_id", "state"]},
        "combinations": [["credit", "lender"], ["lender"], ["credit"]],
        "metric": "test_log_loss",
    }
    configs = write_config(raw)
    result = select_features(
        "lender_match",
        "v1",
        SelectOptions(configs_dir=configs, storage=f"sqlite:///{tmp_path}/o.db", progress=False),
    )
    assert result.direction == "minimize" and result.baseline_value is None
    children = _children(tracking, result.run_id)
    losses = {
        c.data.params["optuna.combination"]: c.data.metrics["test_log_loss"] for c in children
    }
    assert set(losses) == {"credit+lender", "lender", "credit"}
    assert result.best_value == min(losses.values())
    assert losses[result.best_params["combination"]] == result.best_value


@pytest.mark.slow
def test_a_winning_bucket_choice_is_what_rtml_train_trains(
    selection_db: str, tracking: MlflowClient, tmp_path: Path, write_config: WriteConfig
) -> None:
    raw = lender_match_raw(selection_db)
    raw["selection"] = {"buckets": {"credit_score": [{"quantiles": 3}, None]}}
    configs = write_config(raw)
    result = select_features(
        "lender_match",
        "v1",
        SelectOptions(configs_dir=configs, storage=f"sqlite:///{tmp_path}/o.db", progress=False),
    )
    assert result.counts["trained"] == 3  # quantiles=10 (configured), quantiles=3, none
    chosen = result.best_params["buckets.credit_score"]
    selected = load_config(result.config_path)
    expected = {"quantiles=10": 10, "quantiles=3": 3, "none": None}[chosen]
    buckets = selected.feature("credit_score").buckets
    assert (buckets.quantiles if buckets else None) == expected
    trained = train_model(
        selected, "v1-selected", TrainOptions("xgboost", "gbtree", progress=False)
    )
    assert trained.metrics["test_auc"] == pytest.approx(result.best_value, abs=1e-9)
