"""The XGBoost framework: early stopping keeps the best iteration, the bulk and request
paths score alike, and the saved UBJ model loads back to the same scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.config import ModelConfig, load_model_config
from ml.data.cache import Cache
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.demo import DemoSpec, load_demo_data
from ml.demo.queries import APPLICATIONS_IN_WINDOW
from ml.features import FeaturePipeline, FittedPipeline
from ml.frameworks import Examples, FitContext, create_framework, load_framework
from ml.model import create_model


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return load_model_config("lender_match")


@pytest.fixture(scope="module")
def parts(config: ModelConfig, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Examples]:
    url = parse_db_url(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
    load_demo_data(url, DemoSpec(businesses=1000, seed=2), progress=False)
    model = create_model(config)
    windows = {
        "train": ("2025-01-01", "2025-10-01"),
        "validation": ("2025-10-01", "2026-01-01"),
        "test": ("2026-01-01", "2026-07-01"),
    }
    with open_source(url) as source:
        frames = {
            name: model.prepare(source.query(APPLICATIONS_IN_WINDOW, {"start": s, "end": e}))
            for name, (s, e) in windows.items()
        }
    return {
        name: Examples(name, rows, rows["approved"].to_numpy(np.float64), key=f"k-{name}")
        for name, rows in frames.items()
    }


@pytest.fixture(scope="module")
def pipeline(config: ModelConfig, parts: dict[str, Examples]) -> FittedPipeline:
    return FeaturePipeline(config).fit(parts["train"].rows)


@pytest.mark.parametrize("algorithm", ["gbtree", "logistic", "linear"])
def test_fit_predict_save_load(
    config: ModelConfig,
    pipeline: FittedPipeline,
    parts: dict[str, Examples],
    tmp_path: Path,
    algorithm: str,
) -> None:
    framework = create_framework("xgboost", algorithm, config, pipeline)
    context = FitContext(Cache(tmp_path / "cache"), tmp_path, progress=False)
    framework.fit(parts["train"], parts["validation"], context)
    test = parts["test"]
    bulk = framework.predict_examples(test, context)
    # A small train set: the linear models overfit the crosses' thousands of levels more.
    assert roc_auc_score(test.labels, bulk) > (0.8 if algorithm == "gbtree" else 0.7)
    # The request path (raw column mapping, one call) scores exactly like the bulk path.
    sample = test.rows.head(50)
    as_mapping = {name: sample[name].tolist() for name in sample.columns}
    np.testing.assert_allclose(framework.predict(as_mapping), bulk[:50], rtol=1e-6)

    framework.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "model.ubj").stat().st_size > 0
    loaded = load_framework(tmp_path / "saved", config, pipeline)
    np.testing.assert_array_equal(loaded.predict(sample), framework.predict(sample))
    assert framework.importance()


def test_early_stopping_keeps_the_best_iteration(
    config: ModelConfig, pipeline: FittedPipeline, parts: dict[str, Examples], tmp_path: Path
) -> None:
    eager = load_model_config(
        "lender_match", overrides=["xgboost.num_boost_round=400", "xgboost.params.eta=0.3"]
    )
    framework = create_framework("xgboost", "gbtree", eager, pipeline)
    framework.fit(parts["train"], parts["validation"], FitContext(None, tmp_path, False))
    info = framework.info()
    # eta 0.3 on a small set overfits well before 400 rounds: training stopped early ...
    assert info["rounds_trained"] < 400
    # ... and the model keeps the rounds up to the best one, not the ones after it.
    booster = framework.booster
    assert booster is not None and booster.num_boosted_rounds() == info["best_iteration"] + 1


def test_matrix_is_cached_by_examples_and_pipeline(
    config: ModelConfig, pipeline: FittedPipeline, parts: dict[str, Examples], tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    framework = create_framework("xgboost", "gbtree", config, pipeline)
    framework.fit(parts["train"], None, FitContext(cache, tmp_path, False))
    entries = [e.description for e in cache.entries("processed")]
    assert entries == ["train native XGBoost matrix"]
    framework.fit(parts["train"], None, FitContext(cache, tmp_path, False))
    assert len(list(cache.entries("processed"))) == 1  # reused, not rebuilt
