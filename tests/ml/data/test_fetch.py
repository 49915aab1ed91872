"""Pulling windows through the cache: hits, misses, open windows, and errors before caching."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.config import load_model_config
from ml.data.cache import Cache
from ml.data.fetch import QUERIES, cached_arrays, cached_file, processed_key, pull_window
from ml.data.sources import SqlAlchemySource
from ml.data.urls import parse_db_url
from ml.data.windows import TimeWindow
from ml.demo import DemoSpec, load_demo_data
from ml.demo.queries import APPLICATIONS_IN_WINDOW
from ml.errors import DataSourceError
from ml.features import FeaturePipeline
from ml.model import create_model

WINDOW = TimeWindow(date(2025, 6, 1), date(2025, 9, 1))
TODAY = date(2026, 12, 4)


@pytest.fixture
def source(tmp_path: Path) -> SqlAlchemySource:
    url = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    load_demo_data(url, DemoSpec(businesses=300, seed=5), progress=False)
    return SqlAlchemySource(url)


def _pull(source: SqlAlchemySource, cache: Cache | None, **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict = {"time_column": "submitted_at", "label": "train", "today": TODAY}
    options.update(kwargs)
    sql = options.pop("sql", APPLICATIONS_IN_WINDOW)
    window = options.pop("window", WINDOW)
    return pull_window(source, sql, window, cache=cache, **options)


def test_second_pull_is_a_hit_with_the_same_frame(
    source: SqlAlchemySource, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(tmp_path / "cache")
    first = _pull(source, cache)
    assert not first.from_cache and len(first.frame) > 100
    with caplog.at_level(logging.INFO, logger="ml.data.fetch"):
        second = _pull(source, cache)
    assert second.from_cache and second.key == first.key
    assert "reused train window [2025-06-01, 2025-09-01)" in caplog.text
    pd.testing.assert_frame_equal(first.frame, second.frame)  # values and dtypes
    assert second.frame["submitted_at"].dtype.kind == "M"


def test_changed_query_params_or_data_miss(source: SqlAlchemySource, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    base = _pull(source, cache)
    other_sql = _pull(source, cache, sql=APPLICATIONS_IN_WINDOW.replace("a.business_id,", ""))
    other_window = _pull(source, cache, window=TimeWindow(date(2025, 6, 1), date(2025, 8, 1)))
    assert not other_sql.from_cache and not other_window.from_cache
    assert len({base.key, other_sql.key, other_window.key}) == 3
    load_demo_data(source.url, DemoSpec(businesses=301, seed=5), progress=False)  # new data
    assert not _pull(source, cache).from_cache


def test_no_cache_leaves_the_cache_alone(source: SqlAlchemySource, tmp_path: Path) -> None:
    assert not _pull(source, None).from_cache
    assert not _pull(source, None).from_cache
    assert not (tmp_path / "cache").exists()


def test_open_windows_are_cached_only_when_asked(source: SqlAlchemySource, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    today = date(2025, 8, 15)  # inside the window: rows can still arrive
    assert not _pull(source, cache, today=today).from_cache
    assert not _pull(source, cache, today=today).from_cache
    assert list(cache.entries()) == []
    _pull(source, cache, today=today, cache_open_windows=True)
    assert _pull(source, cache, today=today, cache_open_windows=True).from_cache


def test_corrupt_entry_is_fetched_again(source: SqlAlchemySource, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    first = _pull(source, cache)
    (entry,) = cache.entries(QUERIES)
    cached = entry.file("rows.arrow")
    cached.write_bytes(cached.read_bytes()[: cached.stat().st_size // 2])
    again = _pull(source, cache)
    assert not again.from_cache
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert _pull(source, cache).from_cache


@pytest.mark.parametrize(
    ("sql", "window", "message"),
    [
        (
            APPLICATIONS_IN_WINDOW,
            TimeWindow(date(2031, 1, 1), date(2031, 2, 1)),
            "returned no rows",
        ),
        (
            "SELECT application_id FROM applications WHERE submitted_at >= :start AND submitted_at < :end",
            WINDOW,
            "no column 'submitted_at'",
        ),
        (
            "SELECT application_id, 'soon' AS submitted_at FROM applications",
            WINDOW,
            "not a timestamp",
        ),
        (
            "SELECT application_id, submitted_at FROM applications",
            WINDOW,
            "outside [2025-06-01, 2025-09-01)",
        ),
    ],
)
def test_bad_windows_are_clear_errors_and_not_cached(
    source: SqlAlchemySource, tmp_path: Path, sql: str, window: TimeWindow, message: str
) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(
        DataSourceError, match=message.replace("[", r"\[").replace(")", r"\)")
    ) as caught:
        _pull(source, cache, sql=sql, window=window)
    assert "sqlite database" in str(caught.value)
    assert list(cache.entries()) == []


def test_processed_data_is_keyed_by_pipeline_and_framework(
    source: SqlAlchemySource, tmp_path: Path
) -> None:
    cache = Cache(tmp_path / "cache")
    rows = _pull(source, cache)
    config = load_model_config("lender_match")
    tweaked = load_model_config(
        "lender_match", overrides=["features.credit_score.buckets.quantiles=4"]
    )
    prepared = create_model(config).prepare(rows.frame)
    fitted = FeaturePipeline(config).fit(prepared)
    other = FeaturePipeline(tweaked).fit(prepared)
    assert fitted.fingerprint() != other.fingerprint()
    built: list[str] = []

    def build() -> dict[str, np.ndarray]:
        built.append("matrix")
        return {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([0, 1, 1])}

    key = processed_key(rows.key, fitted.fingerprint(), "xgboost")
    arrays, hit = cached_arrays(cache, key, build, description="train matrix")
    again, hit_again = cached_arrays(cache, key, build, description="train matrix")
    assert (hit, hit_again) == (False, True) and built == ["matrix"]
    np.testing.assert_array_equal(arrays["x"], again["x"])
    assert again["x"].dtype == np.float32
    for changed in (
        processed_key(rows.key, other.fingerprint(), "xgboost"),
        processed_key(rows.key, fitted.fingerprint(), "vw"),
    ):
        assert cached_arrays(cache, changed, build, description="m")[1] is False

    def write_lines(path: Path) -> None:
        path.write_text("1 |f a\n-1 |f b\n")

    vw_key = processed_key(rows.key, fitted.fingerprint(), "vw", passes=2)
    path, hit = cached_file(
        cache, vw_key, "train.vw", write_lines, description="vw", scratch=tmp_path
    )
    path2, hit2 = cached_file(
        cache, vw_key, "train.vw", write_lines, description="vw", scratch=tmp_path
    )
    assert (hit, hit2) == (False, True) and path2.read_text() == "1 |f a\n-1 |f b\n"
