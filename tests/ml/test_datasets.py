"""From pulled rows to examples: labels checked, subclass errors named, keys that change
with what decides the content, the validation tail taken by time."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.config import load_model_config
from ml.data.fetch import Pulled
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.datasets import check_labels, examples, pull_windows, time_tail
from ml.demo import DemoSpec, load_demo_data
from ml.model import Model, ModelError, create_model


def _pulled(frame: pd.DataFrame, key: str = "k") -> Pulled:
    return Pulled(frame, key, from_cache=False)


def test_binary_labels_must_be_zero_or_one() -> None:
    model = create_model(load_model_config("lender_match"))
    assert check_labels([0, 1, True], "binary", "train", model).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ModelError, match=r"must be 0 or 1; found \[2\.0\]"):
        check_labels([0, 1, 2], "binary", "train", model)
    with pytest.raises(ModelError, match="1 of 3 test labels are missing"):
        check_labels([0.0, None, 1.0], "regression", "test", model)


def test_a_raising_subclass_method_is_named() -> None:
    class Broken(Model):
        def label(self, rows: pd.DataFrame) -> pd.Series:
            return rows["nope"]

    model = Broken(load_model_config("lender_match"))
    frame = pd.DataFrame({"approved": [0, 1]})
    with pytest.raises(ModelError, match=r"Broken.label\(\) raised KeyError") as caught:
        examples(model, "train", _pulled(frame))
    assert "fix Broken.label()" in str(caught.value)


def test_example_keys_follow_rows_labels_and_code() -> None:
    config = load_model_config("lender_match")

    class Plain(Model):
        pass

    class Flipped(Model):
        def label(self, rows: pd.DataFrame) -> pd.Series:
            return 1 - rows["approved"]

    frame = pd.DataFrame({"approved": [0, 1, 1]})
    base = examples(Plain(config), "train", _pulled(frame)).key
    assert base == examples(Plain(config), "train", _pulled(frame)).key
    assert base != examples(Plain(config), "test", _pulled(frame)).key
    assert base != examples(Plain(config), "train", _pulled(frame, key="other")).key
    assert base != examples(Flipped(config), "train", _pulled(frame)).key


def test_validation_tail_is_the_latest_rows() -> None:
    times = pd.to_datetime(["2025-01-05", "2025-01-01", "2025-01-09", "2025-01-03"] * 5)
    frame = pd.DataFrame({"t": times, "i": np.arange(20)})
    early, late = time_tail(_pulled(frame), "t", 0.25)
    assert len(early) == 15 and len(late) == 5
    assert early["t"].max() <= late["t"].min()


def test_overlapping_windows_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    load_demo_data(parse_db_url(url), DemoSpec(businesses=100), progress=False)
    config = load_model_config(
        "lender_match",
        overrides=[f"source.url={url}", "windows.test.start=2026-03-01"],
    )
    with caplog.at_level(logging.WARNING), open_source(parse_db_url(url)) as source:
        windows = pull_windows(create_model(config), source, cache=None, today=date(2026, 12, 4))
    assert "overlaps test window" in caplog.text
    assert len(windows.train.frame) and len(windows.test.frame)
