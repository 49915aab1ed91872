"""The VW framework: trains on demo data, predicts the same in bulk and per request,
saves as VW's model file, caches its example file and reports weights by feature."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml.config import ModelConfig, load_model_config, resolve
from ml.config.models import VWOptions
from ml.data.cache import Cache
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.demo import DemoSpec, load_demo_data
from ml.demo.queries import APPLICATIONS_IN_WINDOW
from ml.features import FeatureError, FeaturePipeline, FittedPipeline
from ml.frameworks import (
    Examples,
    FitContext,
    Framework,
    FrameworkError,
    create_framework,
    load_framework,
)
from ml.model import create_model


@pytest.fixture(scope="module")
def config() -> ModelConfig:
    return with_vw(load_model_config("lender_match"), flags=["--l2", "1e-7", "-b", "22"], passes=3)


@pytest.fixture(scope="module")
def demo(
    config: ModelConfig, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prepared rows (the model's prepare() adds the fit features) of the two windows."""
    url = parse_db_url(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
    load_demo_data(url, DemoSpec(businesses=1000, seed=1), progress=False)
    source, model = open_source(url), create_model(config)
    train = source.query(APPLICATIONS_IN_WINDOW, {"start": "2025-01-01", "end": "2026-01-01"})
    test = source.query(APPLICATIONS_IN_WINDOW, {"start": "2026-01-01", "end": "2026-07-01"})
    return model.prepare(train), model.prepare(test)


@pytest.fixture(scope="module")
def pipeline(config: ModelConfig, demo: tuple[pd.DataFrame, pd.DataFrame]) -> FittedPipeline:
    return FeaturePipeline(config).fit(demo[0])


def examples(name: str, rows: pd.DataFrame, key: str = "") -> Examples:
    return Examples(name, rows, rows["approved"].to_numpy(np.float64), key=key)


def with_vw(config: ModelConfig, **vw: Any) -> ModelConfig:
    return config.model_copy(update={"vw": VWOptions(**{**config.vw.model_dump(), **vw})})


def train_vw(
    config: ModelConfig,
    pipeline: FittedPipeline,
    train: Examples,
    workdir: Path,
    algorithm: str = "logistic",
    cache: Cache | None = None,
) -> Framework:
    framework = create_framework("vw", algorithm, config, pipeline)
    framework.fit(train, None, FitContext(cache, workdir, progress=False))
    return framework


ARGS = {  # holdout off: rtml evaluates on the test window, so VW may train on every example
    "logistic": "--loss_function logistic --link logistic --passes 3 --holdout_off --l2 1e-7 -b 22",
    "linear": "--passes 3 --holdout_off --l2 1e-7 -b 22",
}


@pytest.mark.parametrize("algorithm", ["logistic", "linear"])
def test_learns_the_demo_data_and_bulk_scores_equal_request_scores(
    algorithm: str,
    config: ModelConfig,
    pipeline: FittedPipeline,
    demo: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    train, test = examples("train", demo[0]), examples("test", demo[1])
    framework = train_vw(config, pipeline, train, tmp_path, algorithm)
    assert (tmp_path / "vw" / "train.cache").exists()  # passes=3 read VW's cache file
    bulk = framework.predict_examples(test, FitContext(None, tmp_path))
    assert roc_auc_score(test.labels, bulk) > 0.7
    request = framework.predict(test.rows)
    np.testing.assert_allclose(bulk, request, rtol=1e-6, atol=0)
    if algorithm == "logistic":
        assert ((bulk > 0) & (bulk < 1)).all()
    else:  # scores around 0 are below the file's 6 decimals: they must have been redone
        assert (np.abs(bulk) < 0.5).any()
    assert framework.info()["examples"] == len(train)
    assert framework.params() == {"args": ARGS[algorithm], "passes": 3}
    framework.close()


def test_saved_model_loads_into_a_fresh_framework(
    config: ModelConfig,
    pipeline: FittedPipeline,
    demo: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    framework = train_vw(config, pipeline, examples("train", demo[0]), tmp_path / "work")
    framework.save(tmp_path / "model")
    assert (tmp_path / "model" / "model.vw").read_bytes()[:4] != b"\x80\x04"  # not a pickle
    loaded = load_framework(tmp_path / "model", config, pipeline)
    rows = demo[1].head(50)
    np.testing.assert_array_equal(loaded.predict(rows), framework.predict(rows))
    assert loaded.info()["passes"] == 3
    assert set(loaded.importance()) == set(framework.importance())


def test_passes_change_the_model(
    config: ModelConfig,
    pipeline: FittedPipeline,
    demo: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    train, rows = examples("train", demo[0]), demo[1].head(100)
    one = train_vw(with_vw(config, passes=1), pipeline, train, tmp_path / "one")
    assert not (tmp_path / "one" / "vw" / "train.cache").exists()
    three = train_vw(config, pipeline, train, tmp_path / "three")
    assert np.abs(one.predict(rows) - three.predict(rows)).max() > 1e-3


def test_example_file_is_cached_by_its_key(
    config: ModelConfig,
    pipeline: FittedPipeline,
    demo: tuple[pd.DataFrame, pd.DataFrame],
    tmp_path: Path,
) -> None:
    cache, once = Cache(tmp_path / "cache"), with_vw(config, passes=1)
    train = examples("train", demo[0], key="rows-key")
    first = train_vw(once, pipeline, train, tmp_path / "a", cache=cache)
    second = train_vw(once, pipeline, train, tmp_path / "b", cache=cache)
    assert [e.description for e in cache.entries()] == ["train VW examples"]
    assert (first.info()["examples_file_cached"], second.info()["examples_file_cached"]) == (
        False,
        True,
    )
    rows = demo[1].head(20)
    np.testing.assert_array_equal(first.predict(rows), second.predict(rows))
    relabeled = Examples("train", train.rows, 1 - train.labels, key="rows-key")
    train_vw(once, pipeline, relabeled, tmp_path / "c", cache=cache)
    assert len(list(cache.entries())) == 2  # other labels, other file


def synthetic_config(task: str = "binary") -> ModelConfig:
    return resolve(
        {
            "name": "synthetic",
            "task": task,
            "model_class": "tests.toy:Toy",
            "source": {"url": "sqlite:///toy.db"},
            "windows": {"time_column": "t", "relative": {"test_days": 10, "train_days": 30}},
            "features": [
                {"name": "signal", "type": "numeric", "namespace": "n"},
                {"name": "noise", "type": "numeric", "namespace": "n"},
                {"name": "colour", "type": "categorical", "namespace": "c"},
                {"name": "size", "type": "numeric", "buckets": {"edges": [0]}, "namespace": "s"},
            ],
            "crosses": [{"features": ["colour", "size"]}],
            "vw": {"passes": 2},
        },
        "synthetic.json",
    )


def synthetic_rows(n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "signal": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "size": rng.normal(size=n),
        }
    )


def test_importance_names_the_feature_that_decides_the_label(tmp_path: Path) -> None:
    config, rows = synthetic_config(), synthetic_rows()
    pipeline = FeaturePipeline(config).fit(rows)
    train = Examples("train", rows, (rows["signal"] > 0).to_numpy(np.float64))
    framework = train_vw(config, pipeline, train, tmp_path)
    importance = framework.importance()
    assert set(importance) == {"signal", "noise", "colour", "size", "colour_x_size"}
    assert max(importance, key=lambda name: abs(importance[name])) == "signal"
    assert importance["signal"] > 0  # more signal, more positives
    tokens = framework.token_weights()
    assert set(tokens["colour"]) == {"c^colour=red", "c^colour=green", "c^colour=blue",
                                     "c^colour=__other__"}  # fmt: skip
    assert tokens["colour"]["c^colour=__other__"] == 0.0  # never seen in training


def test_regression_task_refuses_logistic() -> None:
    config = synthetic_config("regression")
    pipeline = FeaturePipeline(config).fit(synthetic_rows(100))
    with pytest.raises(FrameworkError, match="cannot train a regression model"):
        create_framework("vw", "logistic", config, pipeline)


def test_errors_are_clear(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config, rows = synthetic_config(), synthetic_rows(200)
    pipeline = FeaturePipeline(config).fit(rows)
    labels = (rows["signal"] > 0).to_numpy(np.float64)
    context = FitContext(None, tmp_path)
    bad = with_vw(config, flags=["--no_such_flag"])
    with pytest.raises(FrameworkError, match="VW could not train: unrecognised option"):
        create_framework("vw", "logistic", bad, pipeline).fit(
            Examples("train", rows, labels), None, context
        )
    for algorithm, flags in [
        ("logistic", ["--loss_function", "hinge"]),
        ("linear", ["--passes", "3"]),  # vw.passes decides, with VW's cache file
        ("linear", ["-d", "other.vw"]),
    ]:
        clash = create_framework("vw", algorithm, with_vw(config, flags=flags), pipeline)
        with pytest.raises(FrameworkError, match=f"vw.flags sets {flags[0]}, which rtml sets"):
            clash.params()
    quantile = with_vw(config, flags=["--loss_function", "quantile"])  # linear: the user's loss
    assert (
        create_framework("vw", "linear", quantile, pipeline)
        .params()["args"]
        .endswith("--loss_function quantile")
    )
    framework = create_framework("vw", "logistic", config, pipeline)
    with pytest.raises(FeatureError, match="binary labels must be 0 or 1"):
        framework.fit(Examples("train", rows, labels * 2), None, context)
    with pytest.raises(FrameworkError, match="not trained"):
        framework.predict(rows)
    with caplog.at_level(logging.INFO, logger="ml.frameworks.vw"):
        framework.fit(Examples("train", rows, labels), None, context)
    assert "200 examples, 2 passes" in caplog.text
