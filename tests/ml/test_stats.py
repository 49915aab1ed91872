"""Feature statistics and PSI: numbers checked against numpy and hand computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.errors import RtmlError
from ml.stats import Kind, StatsError, StatsReport, column_stats, compute_stats, psi

NUMBERS = np.array([3.0, np.nan, 0.0, 1.5, -2.0, 0.0, np.nan, 10.0, 7.25, 3.0])


def test_numeric_stats_match_numpy() -> None:
    valid = NUMBERS[~np.isnan(NUMBERS)]
    stats = column_stats(NUMBERS, "numeric")
    assert stats["count"] == 10
    assert stats["missing"] == 2
    assert stats["missing_pct"] == pytest.approx(20.0)
    assert stats["mean"] == pytest.approx(valid.mean())
    assert stats["std"] == pytest.approx(valid.std())
    expected = np.quantile(valid, [0, 0.01, 0.25, 0.5, 0.75, 0.99, 1])
    got = [stats[k] for k in ("min", "p01", "p25", "p50", "p75", "p99", "max")]
    assert got == pytest.approx(list(expected))
    assert stats["distinct"] == 6
    assert stats["zeros_pct"] == pytest.approx(20.0)  # 2 zeros out of 10 rows


def test_float32_and_nullable_inputs_give_the_same_numbers() -> None:
    as32 = column_stats(NUMBERS.astype(np.float32), "numeric")
    as64 = column_stats(pd.Series(NUMBERS), "numeric")
    assert as32 == pytest.approx(as64)
    nullable = column_stats(pd.Series([1, None, 3, 0], dtype="Int64"), "numeric")
    assert nullable["missing"] == 1
    assert nullable["mean"] == pytest.approx(4 / 3)
    assert nullable["zeros_pct"] == pytest.approx(25.0)


def test_all_missing_and_infinite_values_stay_json_safe() -> None:
    empty = column_stats(np.array([np.nan, np.nan]), "numeric")
    assert empty["missing_pct"] == 100.0
    assert empty["mean"] is None
    assert empty["distinct"] == 0
    inf = column_stats(np.array([1.0, 2.0, np.inf]), "numeric")
    assert inf["p50"] == 2.0
    assert inf["max"] is None
    assert inf["mean"] is None
    json.dumps([empty, inf], allow_nan=False)


def test_numeric_declared_column_with_text_raises() -> None:
    with pytest.raises(StatsError, match="declared numeric"):
        column_stats(pd.Series(["a", "b"], dtype=object), "numeric")


def test_categorical_top_values_in_count_order_ties_by_first_appearance() -> None:
    values = pd.Series(["b", "a", None, "c", "a", "b", "d", "a"])
    stats = column_stats(values, "categorical", top=3)
    assert stats["count"] == 8
    assert stats["missing"] == 1
    assert stats["distinct"] == 4
    assert stats["top"] == [["a", 3, 37.5], ["b", 2, 25.0], ["c", 1, 12.5]]
    assert "mean" not in stats


def test_categorical_codes_and_unused_categories() -> None:
    codes = column_stats(np.array([2.0, 2.0, np.nan, 0.0], dtype=np.float32), "categorical")
    assert codes["top"] == [[2, 2, 50.0], [0, 1, 25.0]]
    assert codes["missing"] == 1
    cat = pd.Series(pd.Categorical(["x", "y", "x"], categories=["x", "y", "z"]))
    assert column_stats(cat, "categorical")["distinct"] == 2


def test_psi_of_identical_data_is_zero_and_same_distribution_is_small() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=5_000)
    assert psi(x, x, "numeric") == 0.0
    assert psi(x, rng.normal(size=5_000), "numeric") < 0.02
    levels = rng.choice(["a", "b", "c"], size=5_000)
    assert psi(levels, levels, "categorical") == 0.0


def test_psi_of_a_one_sigma_shift_is_significant() -> None:
    rng = np.random.default_rng(1)
    value = psi(rng.normal(0, 1, 20_000), rng.normal(1, 1, 20_000), "numeric")
    assert value > 0.25


def test_psi_stays_finite_with_empty_bins() -> None:
    train = np.linspace(0, 1, 100)
    value = psi(train, train + 10, "numeric")  # every test value beyond the last train bin
    assert math.isfinite(value)
    assert value > 1
    constant = np.zeros(50)  # all deciles equal: a single bin
    assert psi(constant, constant, "numeric") == 0.0
    assert math.isfinite(psi(constant, np.ones(50), "numeric"))


def test_missing_values_are_their_own_bin() -> None:
    train = np.arange(100.0)
    test = np.where(np.arange(100) % 2 == 0, np.arange(100.0), np.nan)
    assert psi(train, test, "numeric") > 0.25


def test_categorical_psi_by_hand() -> None:
    # shares a: 0.5 -> 0.25, b: 0.5 -> 0.75
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    value = psi(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"]), "categorical")
    assert value == pytest.approx(expected)
    assert value == pytest.approx(0.25 * math.log(3))


def test_unseen_levels_go_to_other_and_stay_finite() -> None:
    # a: 1.0 -> 0.5; "other" (z, y never seen in train): epsilon -> 0.5
    eps = 1e-4
    expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - eps) * math.log(0.5 / eps)
    value = psi(np.array(["a", "a"]), np.array(["a", "z", "y", "a"]), "categorical")
    assert value == pytest.approx(expected)


def test_psi_of_an_empty_window_is_nan() -> None:
    assert math.isnan(psi(np.array([]), np.array([1.0]), "numeric"))


def _windows(seed: int = 0, n: int = 4_000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.normal(40, 10, n),
                "income": rng.normal(shift, 1, n),
                "state": rng.choice(["CA", "NY", "TX"], size=n),
            }
        )

    return frame(0.0), frame(1.0)


RAW: dict[str, Kind] = {"age": "numeric", "income": "numeric", "state": "categorical"}


def _report() -> StatsReport:
    train, test = _windows()
    rng = np.random.default_rng(5)
    xtr = np.column_stack([rng.normal(size=len(train)), rng.integers(0, 4, len(train))]).astype(
        np.float32
    )
    xte = np.column_stack(
        [rng.normal(size=len(test)), rng.integers(2, 6, len(test))]  # codes 4, 5 unseen
    ).astype(np.float32)
    xte[:100, 0] = np.nan
    return compute_stats(
        train, test, RAW, xtr, xte, ["score", "bucket<3>"], ["q", "c"], psi_threshold=0.25
    )


def test_report_flags_exactly_the_shifted_features() -> None:
    report = _report()
    assert [(f.name, f.stage, f.kind) for f in report.features] == [
        ("age", "raw", "numeric"),
        ("income", "raw", "numeric"),
        ("state", "raw", "categorical"),
        ("score", "transformed", "numeric"),
        ("bucket<3>", "transformed", "categorical"),
    ]
    assert report.shifted() == ["income", "bucket<3>"]
    by_name = {f.name: f for f in report.features}
    assert by_name["age"].psi is not None and by_name["age"].psi < 0.1
    assert by_name["score"].test["missing"] == 100
    assert by_name["bucket<3>"].train["top"][0][0] in {0, 1, 2, 3}


def test_json_round_trips_without_nan_tokens() -> None:
    train = pd.DataFrame({"x": [np.nan, np.nan], "y": [np.inf, 1.0]})
    kinds: dict[str, Kind] = {"x": "numeric", "y": "numeric"}
    report = compute_stats(train, train, kinds)
    text = report.to_json()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["features"][0]["train"]["mean"] is None
    assert StatsReport.from_dict(data) == report
    full = _report()
    assert StatsReport.from_dict(json.loads(full.to_json())) == full


def test_html_is_self_contained_and_escaped() -> None:
    page = _report().to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "bucket&lt;3&gt;" in page
    assert "bucket<3>" not in page
    assert page.count('<tr class="shifted">') == 2
    assert "<script" not in page and "http" not in page and "<link" not in page
    assert page.count("<table>") == 2  # one per stage


def test_text_table_has_one_line_per_feature() -> None:
    report = _report()
    lines = report.table(width=100).splitlines()
    assert len(lines) == 2 + len(report.features)  # header, rule, features
    flagged = [line.split()[0] for line in lines[2:] if line.endswith("!")]
    assert flagged == ["income", "bucket<3>"]
    assert all(len(line) <= 100 for line in lines)


def test_a_missing_raw_column_is_named() -> None:
    train, test = _windows()
    with pytest.raises(StatsError, match="'tenure'.*train window") as caught:
        compute_stats(train, test, {**RAW, "tenure": "numeric"})
    assert isinstance(caught.value, RtmlError)
    with pytest.raises(StatsError, match="'state'.*test window"):
        compute_stats(train, test.drop(columns="state"), RAW)


def test_transformed_names_must_match_the_matrix() -> None:
    train, test = _windows()
    matrix = np.zeros((len(train), 2), dtype=np.float32)
    with pytest.raises(StatsError, match="2 columns"):
        compute_stats(train, test, RAW, matrix, matrix, ["only_one"], ["q"])
    with pytest.raises(StatsError, match="unknown feature kind"):
        compute_stats(train, test, RAW, matrix, matrix, ["a", "b"], ["q", "x"])


def test_save_writes_json_and_html(tmp_path: Path) -> None:
    as_json, as_html = _report().save(tmp_path)
    assert json.loads(as_json.read_text())["shifted"] == ["income", "bucket<3>"]
    assert as_html.read_text().endswith("</html>")


def test_numeric_psi_agrees_across_dtypes() -> None:
    rng = np.random.default_rng(3)
    train, test = rng.normal(0, 1, 2_000), rng.normal(0.3, 1, 2_000)
    as64 = psi(train, test, "numeric")
    assert psi(train.astype(np.float32), test, "numeric") == pytest.approx(as64, abs=1e-3)
    assert psi(pd.Series(train), pd.Series(test, dtype="Float64"), "numeric") == pytest.approx(as64)
    report = compute_stats(pd.DataFrame({"x": train}), pd.DataFrame({"x": test}), {"x": "numeric"})
    assert report.features[0].psi == pytest.approx(as64)
