"""Summary statistics of every feature and its train-vs-test shift (PSI): ``rtml train --stats``.

Why: a model is only as good as the agreement between the window it learned from and the
window it is judged on (and, later, live traffic). A per-feature summary makes broken
queries (a column suddenly all missing, a unit change) visible before anyone reads a metric,
and the Population Stability Index puts one number on how far each feature moved.

Each numeric column is sorted once per window; quantiles, the exact distinct count, the zero
count and the PSI bin counts are all read off that sorted copy (cheaper than separate
quantile, unique and histogram passes). Categorical columns are counted once with a hash
table (``value_counts``). Features run on a thread pool: numpy's sort and pandas/Arrow
counting release the GIL, so cores are used without copying data between processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml.errors import RtmlError
from ml.stats_report import FeatureStats, Stage, StatsReport

__all__ = [
    "FeatureStats",
    "Kind",
    "StatsError",
    "StatsReport",
    "column_stats",
    "compute_stats",
    "psi",
]

Kind = Literal["numeric", "categorical"]
Values = pd.Series | np.ndarray

# Floor for a bin's share, so a bin empty on one side gives a large but finite PSI term.
PSI_EPSILON = 1e-4
_QUANTILES = np.array([0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0])
# XGBoost feature types ('q' quantitative, 'c' categorical) and our own names.
_KINDS: dict[str, Kind] = {
    "q": "numeric",
    "c": "categorical",
    "numeric": "numeric",
    "categorical": "categorical",
}


class StatsError(RtmlError):
    """The data handed to the statistics step does not match the features it should describe."""


@dataclass(frozen=True)
class _Sorted:
    """A numeric window: its non-missing values sorted, plus the row and missing counts."""

    values: np.ndarray
    rows: int
    missing: int


@dataclass(frozen=True)
class _Levels:
    """A categorical window: level counts (descending, ties in order of first appearance)."""

    counts: pd.Series
    rows: int
    missing: int


def _floats(values: Values, name: str) -> np.ndarray:
    """The column as a float array (float32 kept as is: sorting it is faster, stats use f64)."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind == "f":
        return arr if arr.dtype.itemsize >= 4 else arr.astype(np.float32)
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    try:  # object or extension dtypes (nullable Int64, Decimal, None for missing ...)
        return pd.Series(arr).to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise StatsError(
            f"feature {name!r} is declared numeric but holds {arr.dtype} values ({exc})",
            hint="declare it categorical, or cast it to a number in prepare()",
        ) from exc


def _sorted(values: Values, name: str = "values") -> _Sorted:
    arr = _floats(values, name)
    missing_mask = np.isnan(arr)
    missing = int(np.count_nonzero(missing_mask))
    # Boolean indexing and np.sort both copy, so sort the compressed copy in place.
    valid = arr[~missing_mask] if missing else arr.copy()
    valid.sort()
    return _Sorted(valid, int(arr.size), missing)


def _levels(values: Values) -> _Levels:
    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    counts = series.value_counts(dropna=True, sort=True)
    if isinstance(counts.index, pd.CategoricalIndex):  # unused categories count 0: drop them
        counts = counts[counts.to_numpy() > 0]
        counts.index = counts.index.astype(object)
    rows = len(series)
    return _Levels(counts, rows, rows - int(counts.sum()))


def _quantiles(s: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """numpy's default ('linear') quantiles of a sorted array, interpolated in float64."""
    pos = qs * (s.size - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, s.size - 1)
    a = s[lo].astype(np.float64)
    b = s[hi].astype(np.float64)
    frac = pos - lo
    with np.errstate(invalid="ignore"):
        out = a + (b - a) * frac
    # Exact hits and equal neighbours need no interpolation (and inf - inf would give NaN).
    return np.where((frac == 0) | (a == b), a, out)


def _number(x: float | np.floating) -> float | None:
    """JSON has no NaN or infinity: report them as null."""
    value = float(x)
    return value if np.isfinite(value) else None


def _pct(part: int, rows: int) -> float | None:
    return 100.0 * part / rows if rows else None


def _scalar(value: Any) -> Any:
    """A level as a JSON value; integral floats (XGBoost category codes) become ints."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return int(value) if value.is_integer() else _number(value)
    return value if isinstance(value, str | int | bool) else str(value)


def _numeric_stats(col: _Sorted) -> dict[str, Any]:
    s, rows = col.values, col.rows
    out: dict[str, Any] = {"count": rows, "missing": col.missing}
    out["missing_pct"] = _pct(col.missing, rows)
    if s.size == 0:
        out.update(dict.fromkeys(["mean", "std", "min", "p01", "p25", "p50", "p75", "p99", "max"]))
        out.update(distinct=0, zeros_pct=_pct(0, rows))
        return out
    with np.errstate(invalid="ignore", over="ignore"):
        mean, std = s.mean(dtype=np.float64), s.std(dtype=np.float64)
    q = _quantiles(s, _QUANTILES)
    out.update(mean=_number(mean), std=_number(std))
    for key, value in zip(["min", "p01", "p25", "p50", "p75", "p99", "max"], q, strict=True):
        out[key] = _number(value)
    out["distinct"] = int(np.count_nonzero(s[1:] != s[:-1])) + 1
    zeros = int(np.searchsorted(s, 0, side="right") - np.searchsorted(s, 0, side="left"))
    out["zeros_pct"] = _pct(zeros, rows)
    return out


def _categorical_stats(col: _Levels, top: int) -> dict[str, Any]:
    head = col.counts.iloc[:top]
    return {
        "count": col.rows,
        "missing": col.missing,
        "missing_pct": _pct(col.missing, col.rows),
        "distinct": len(col.counts),
        "top": [[_scalar(v), int(c), _pct(int(c), col.rows)] for v, c in head.items()],
    }


def column_stats(values: Values, kind: Kind, top: int = 5) -> dict[str, Any]:
    """Summary of one column; every value is JSON-ready (NaN and infinities become None).

    ``count`` is all rows, missing ones included, and every ``*_pct`` (missing, zeros, top
    values) is a percentage of those rows, so missing_pct + zeros_pct + ... add up.
    Numeric: mean and population std (ddof=0, as numpy), numpy's linear quantiles, the exact
    distinct count. Categorical: distinct levels and the ``top`` most frequent as
    ``[value, count, pct]``, ties in order of first appearance.
    """
    if _kind(kind) == "numeric":
        return _numeric_stats(_sorted(values))
    return _categorical_stats(_levels(values), top)


def _psi_from_counts(expected: np.ndarray, rows_e: int, actual: np.ndarray, rows_a: int) -> float:
    if rows_e == 0 or rows_a == 0:
        return float("nan")  # no distribution to compare
    e = np.maximum(expected / rows_e, PSI_EPSILON)
    a = np.maximum(actual / rows_a, PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def _bin_counts(col: _Sorted, edges: np.ndarray) -> np.ndarray:
    """Counts per bin [e_k, e_k+1) plus a last bin for missing values."""
    cuts = np.searchsorted(col.values, edges, side="left")
    bounds = np.concatenate(([0], cuts, [col.values.size]))
    return np.append(np.diff(bounds), col.missing)


def _numeric_psi(train: _Sorted, test: _Sorted, bins: int) -> float:
    edges = np.empty(0)
    if train.values.size:
        inner = _quantiles(train.values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        # In the columns' own dtype: float64 edges would make numpy copy a float32 column.
        dtype = np.result_type(train.values, test.values)
        edges = np.unique(inner[~np.isnan(inner)]).astype(dtype)
    return _psi_from_counts(
        _bin_counts(train, edges), train.rows, _bin_counts(test, edges), test.rows
    )


def _categorical_psi(train: _Levels, test: _Levels) -> float:
    known = test.counts.reindex(train.counts.index, fill_value=0).to_numpy()
    other = int(test.counts.sum()) - int(known.sum())  # levels the train window never saw
    expected = np.concatenate((train.counts.to_numpy(), [0, train.missing]))
    actual = np.concatenate((known, [other, test.missing]))
    return _psi_from_counts(expected, train.rows, actual, test.rows)


def psi(train: Values, test: Values, kind: Kind, bins: int = 10) -> float:
    """Population Stability Index of ``test`` against ``train``: sum((a - e) * ln(a / e)).

    e and a are the shares of train and test rows per bin. Numeric bins are cut at the train
    deciles (``bins`` quantiles, duplicates merged, so heavy ties give fewer bins);
    categorical bins are the train levels plus one "other" bin for levels train never saw.
    Missing values are a bin of their own in both cases, so a feature that starts going
    missing shows up as shift. Shares are floored at ``PSI_EPSILON`` (1e-4) so empty bins keep
    the result finite. NaN only when a window has no rows at all.

    Usual reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 significant shift.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if _kind(kind) == "categorical":
        return _categorical_psi(_levels(train), _levels(test))
    return _numeric_psi(_sorted(train), _sorted(test), bins)


def _kind(kind: str) -> Kind:
    try:
        return _KINDS[kind]
    except KeyError:
        raise StatsError(
            f"unknown feature kind {kind!r}",
            hint="use 'numeric' or 'categorical' (XGBoost feature types: 'q' or 'c')",
        ) from None


_Job = tuple[str, Stage, Kind, Values, Values]  # name, stage, kind, train column, test column


def _feature(job: _Job, threshold: float, top: int) -> FeatureStats:
    name, stage, kind, train, test = job
    if kind == "numeric":
        tr, te = _sorted(train, name), _sorted(test, name)
        stats = _numeric_stats(tr), _numeric_stats(te)
        value = _numeric_psi(tr, te, bins=10)
    else:
        lt, le = _levels(train), _levels(test)
        stats = _categorical_stats(lt, top), _categorical_stats(le, top)
        value = _categorical_psi(lt, le)
    score = _number(value)
    shifted = score is not None and score >= threshold
    return FeatureStats(name, stage, kind, stats[0], stats[1], score, shifted)


def _raw_columns(frame: pd.DataFrame, names: Mapping[str, str], window: str) -> None:
    absent = [name for name in names if name not in frame.columns]
    duplicated = set(frame.columns[frame.columns.duplicated()])
    doubled = [name for name in names if name in duplicated]
    if doubled:
        raise StatsError(f"raw column(s) {', '.join(map(repr, doubled))} appear twice in {window}")
    if absent:
        present = ", ".join(map(str, frame.columns[:20])) or "none"
        raise StatsError(
            f"raw column(s) {', '.join(map(repr, absent))} not in the {window} window",
            hint=f"columns present: {present}; check the query and prepare()",
        )


def _transformed(
    train: np.ndarray | None,
    test: np.ndarray | None,
    names: list[str] | None,
    kinds: list[str] | None,
) -> list[tuple[str, Kind, np.ndarray, np.ndarray]]:
    if train is None and test is None:
        return []
    if train is None or test is None:
        raise StatsError("transformed statistics need both the train and the test matrix")
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise StatsError(
            f"transformed matrices must be 2-D and equally wide, got {train.shape} and {test.shape}"
        )
    width = train.shape[1]
    names = names if names is not None else [f"f{j}" for j in range(width)]  # XGBoost's default
    kinds = kinds if kinds is not None else ["q"] * width
    if len(names) != width or len(kinds) != width:
        raise StatsError(
            f"transformed matrices have {width} columns, got {len(names)} names, {len(kinds)} kinds"
        )
    return [
        (n, _kind(k), train[:, j], test[:, j])
        for j, (n, k) in enumerate(zip(names, kinds, strict=True))
    ]


def compute_stats(
    train: pd.DataFrame,
    test: pd.DataFrame,
    raw: Mapping[str, Kind],
    transformed_train: np.ndarray | None = None,
    transformed_test: np.ndarray | None = None,
    transformed_names: list[str] | None = None,
    transformed_kinds: list[str] | None = None,
    psi_threshold: float = 0.25,
    *,
    top: int = 5,
    workers: int | None = None,
) -> StatsReport:
    """Stats and PSI of each raw column (by name) and each transformed matrix column.

    Transformed matrices are in XGBoost layout (float32, NaN = missing); ``transformed_kinds``
    holds XGBoost feature types ('q' numeric, 'c' category code). Names default to f0, f1 ...
    and kinds to 'q'. A feature is flagged shifted when its PSI >= ``psi_threshold``.
    ``workers`` threads (default: one per CPU) share the features.
    """
    kinds = {name: _kind(kind) for name, kind in raw.items()}
    _raw_columns(train, kinds, "train")
    _raw_columns(test, kinds, "test")
    jobs: list[_Job] = [
        (name, "raw", kind, train[name], test[name]) for name, kind in kinds.items()
    ]
    cols = _transformed(transformed_train, transformed_test, transformed_names, transformed_kinds)
    jobs += [(name, "transformed", kind, tr, te) for name, kind, tr, te in cols]
    threads = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        features = list(pool.map(lambda job: _feature(job, psi_threshold, top), jobs))
    rows = {"train": len(train), "test": len(test)}
    return StatsReport(features=features, psi_threshold=psi_threshold, rows=rows)
