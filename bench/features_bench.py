"""Feature pipeline speed: rtml vs a plain pandas implementation of the same transforms.

Run: .venv/bin/python bench/features_bench.py [--rows 1000000] [--reps 2000]

Data: 30 raw features (10 numeric with NaNs and learned defaults, 10 bucketed:
5 explicit + 5 learned deciles, 10 categoricals of 5-50 levels) and 10 crosses
(3 numeric x numeric, 3 bucket x bucket, 2 bucket x categorical, 2 categorical x
categorical). Reports rows/s for the XGBoost matrix and the VW lines, the
pandas peer's rows/s and the ratio, and the latency of one request's 50 rows.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ml.config import ModelConfig, resolve
from ml.features import FeaturePipeline, FittedPipeline, transform, vw_lines, write_vw_file
from ml.features.fitted import CategoricalState, NumericState

N_NUM, N_BUCKET, N_CAT = 10, 10, 10


def make_config() -> ModelConfig:
    features: list[dict[str, Any]] = []
    features += [
        {
            "name": f"n{i}",
            "type": "numeric",
            "default": "median" if i % 2 else None,
            "namespace": "n",
        }
        for i in range(N_NUM)
    ]
    for i in range(N_BUCKET):
        buckets = {"edges": [-1.0, -0.3, 0.0, 0.3, 1.0]} if i < 5 else {"quantiles": 10}
        features.append(
            {
                "name": f"b{i}",
                "type": "numeric",
                "default": "mean",
                "buckets": buckets,
                "namespace": "b",
            }
        )
    features += [{"name": f"c{i}", "type": "categorical", "namespace": "c"} for i in range(N_CAT)]
    crosses = [{"features": [f"n{i}", f"n{i + 1}"]} for i in range(3)]
    crosses += [{"features": [f"b{i}", f"b{i + 5}"]} for i in range(3)]
    crosses += [{"features": [f"b{i + 3}", f"c{i}"]} for i in range(2)]
    crosses += [{"features": [f"c{i + 2}", f"c{i + 6}"]} for i in range(2)]
    raw = {
        "name": "bench",
        "task": "binary",
        "model_class": "bench:Bench",
        "source": {"url": "sqlite:///x.db"},
        "windows": {"time_column": "t", "relative": {"test_days": 1, "train_days": 1}},
        "features": features,
        "crosses": crosses,
    }
    return resolve(raw, "bench")


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i in range(N_NUM):
        values = rng.lognormal(3, 1, rows)
        values[rng.random(rows) < 0.1] = np.nan
        data[f"n{i}"] = values
    for i in range(N_BUCKET):
        data[f"b{i}"] = rng.normal(0, 1, rows)
    for i in range(N_CAT):
        levels = np.array([f"level_{j}" for j in range(5 + 5 * i)])
        data[f"c{i}"] = pd.Series(levels[rng.integers(0, len(levels), rows)], dtype="str")
    return pd.DataFrame(data)


def pandas_peer(fitted: FittedPipeline, frame: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """The same transforms written the usual pandas way (fillna, pd.cut, Categorical, str ops)."""
    encoded: dict[str, pd.Series] = {}
    for state in fitted.features:
        col = frame[state.column]
        if isinstance(state, CategoricalState):
            codes = pd.Categorical(col, categories=state.levels).codes
            encoded[state.name] = pd.Series(np.where(codes < 0, len(state.levels), codes))
        else:
            assert isinstance(state, NumericState)
            col = col.replace([np.inf, -np.inf], np.nan)
            if state.default is not None:
                col = col.fillna(state.default)
            if state.edges is not None:
                bins = [-np.inf, *state.edges, np.inf]
                col = pd.Series(pd.cut(col, bins, right=False, labels=False)).fillna(
                    len(state.edges) + 1
                )
            encoded[state.name] = col
    columns = dict(encoded)
    tokens = []
    for state in fitted.features:
        series = encoded[state.name]
        if isinstance(state, NumericState) and state.edges is None:
            tokens.append(f"{state.name}:" + series.astype(str))
        else:
            tokens.append(f"{state.name}=" + series.astype(int).astype(str))
    for cross in fitted.crosses:
        left, right = encoded[cross.left], encoded[cross.right]
        if cross.pairs is None:
            columns[cross.name] = left * right
            tokens.append(f"{cross.name}:" + columns[cross.name].astype(str))
        else:
            pair = left.astype(int).astype(str) + "&" + right.astype(int).astype(str)
            kept = [f"{a}&{b}" for a, b in cross.pairs]
            codes = pd.Categorical(pair, categories=kept).codes
            columns[cross.name] = pd.Series(np.where(codes < 0, len(kept), codes))
            tokens.append(f"{cross.name}=" + pair)
    matrix = pd.DataFrame(columns).to_numpy(dtype=np.float32)
    lines = "1 |f " + tokens[0].str.cat(tokens[1:], sep=" ")
    return matrix, lines


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def latency_us(fn: Callable[[], Any], reps: int) -> tuple[float, float]:
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args()

    config = make_config()
    frame = make_frame(args.rows)
    fit_s = timed(lambda: FeaturePipeline(config).fit(frame))
    fitted = FeaturePipeline(config).fit(frame)
    labels = np.zeros(args.rows)
    xgb_s = timed(lambda: transform(fitted, frame))
    vw_s = timed(lambda: vw_lines(fitted, frame, labels=labels))
    with tempfile.NamedTemporaryFile(suffix=".vw") as out:
        vw_file_s = timed(lambda: write_vw_file(out.name, vw_lines(fitted, frame, labels=labels)))
    peer_s = timed(lambda: pandas_peer(fitted, frame))
    width = transform(fitted, frame.iloc[:1]).shape[1]
    rows = args.rows
    print(f"{rows:,} rows x 30 raw features, 10 crosses -> {width} XGBoost columns")
    print(f"fit (learn defaults, deciles, levels, pairs): {fit_s:.2f}s")
    print(f"XGBoost matrix: {rows / xgb_s:>12,.0f} rows/s ({xgb_s:.2f}s)")
    print(
        f"VW lines:       {rows / vw_s:>12,.0f} rows/s ({vw_s:.2f}s); "
        f"to a file: {rows / vw_file_s:,.0f} rows/s"
    )
    print(
        f"pandas peer (matrix + lines): {rows / peer_s:,.0f} rows/s ({peer_s:.2f}s); "
        f"ratio rtml (matrix + lines) / peer: {peer_s / (xgb_s + vw_s):.1f}x"
    )

    request = frame.iloc[:50].reset_index(drop=True)
    as_lists = {name: request[name].tolist() for name in request.columns}
    for label, rows_in in (("DataFrame", request), ("dict of lists", as_lists)):
        p50, p99 = latency_us(lambda r=rows_in: transform(fitted, r), args.reps)
        print(f"one request, 50 rows ({label}): XGBoost matrix p50 {p50:.0f} us, p99 {p99:.0f} us")
    p50, p99 = latency_us(lambda: vw_lines(fitted, request), args.reps)
    print(f"one request, 50 rows (DataFrame): VW lines p50 {p50:.0f} us, p99 {p99:.0f} us")
    p50, p99 = latency_us(lambda: pandas_peer(fitted, request), max(args.reps // 10, 10))
    print(f"one request, 50 rows: pandas peer p50 {p50:.0f} us, p99 {p99:.0f} us")


if __name__ == "__main__":
    main()
