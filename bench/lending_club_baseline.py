"""Plain XGBoost on the Lending Club table: the comparison point for rtml's test AUC.

Run: .venv/bin/rtml demo-data --dataset lending_club
     .venv/bin/python bench/lending_club_baseline.py [--db var/demo.db]

What a person would write without rtml: read table ``lending_club`` from the SQLite
file with pandas, split by ``issued_at`` at the windows of configs/lending_club/v1.json
(read as plain JSON, so both see the same rows), give XGBoost every raw column (numbers
as they are, text as pandas categories with ``enable_categorical=True``), train with
fixed parameters, stop early on the last 10% of the training window, and print the
test AUC. ``issued_at`` is synthetic (row order spread over 2016 Q1), so this is a
deterministic ~80/20 split by row order.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "lending_club" / "v1.json"
NOT_FEATURES = ("loan_id", "issued_at", "class", "bad")
PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "eta": 0.05,
    "max_depth": 4,
    "subsample": 0.8,
    "min_child_weight": 5,
    "tree_method": "hist",
    "seed": 0,
    "nthread": 4,  # fixed, so the AUC does not depend on the machine's core count
}
ROUNDS = 300
EARLY_STOPPING = 30
VALID_FRACTION = 0.10


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) formula; ties count half."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def load(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as connection:
        frame = pd.read_sql_query("SELECT * FROM lending_club ORDER BY loan_id", connection)
    frame["issued_at"] = pd.to_datetime(frame["issued_at"])
    return frame


def matrix(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    features = frame.drop(columns=list(NOT_FEATURES))
    for name, levels in categories.items():
        # The training window's levels: a level unseen in training is missing (NaN).
        features[name] = pd.Categorical(features[name], categories=levels)
    return features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("var/demo.db"), help="SQLite file")
    args = parser.parse_args()
    windows = json.loads(CONFIG.read_text())["windows"]
    frame = load(args.db)
    times = frame["issued_at"]
    train = frame[(times >= windows["train"]["start"]) & (times < windows["train"]["end"])]
    test = frame[(times >= windows["test"]["start"]) & (times < windows["test"]["end"])]
    cut = int(len(train) * (1 - VALID_FRACTION))
    fit, valid = train.iloc[:cut], train.iloc[cut:]

    # Text columns (dtype str in pandas 3, object before): everything not numeric.
    numeric = frame.select_dtypes("number").columns
    text = [n for n in frame.columns if n not in NOT_FEATURES and n not in numeric]
    categories = {name: sorted(fit[name].unique()) for name in text}

    def dmatrix(part: pd.DataFrame) -> xgb.DMatrix:
        return xgb.DMatrix(matrix(part, categories), label=part["bad"], enable_categorical=True)

    started = time.perf_counter()
    booster = xgb.train(
        PARAMS,
        dmatrix(fit),
        num_boost_round=ROUNDS,
        evals=[(dmatrix(valid), "valid")],
        early_stopping_rounds=EARLY_STOPPING,
        verbose_eval=False,
    )
    seconds = time.perf_counter() - started
    best = booster.best_iteration
    scores = booster.predict(dmatrix(test), iteration_range=(0, best + 1))
    print(
        f"lending_club: train {len(train):,} rows ({len(fit):,} fit + {len(valid):,} "
        f"early-stopping tail), test {len(test):,} rows; bad rate train {train['bad'].mean():.1%}, "
        f"test {test['bad'].mean():.1%}"
    )
    print(
        f"plain XGBoost ({len(categories)} categorical + "
        f"{frame.shape[1] - len(NOT_FEATURES) - len(categories)} numeric raw columns, "
        f"eta {PARAMS['eta']}, max_depth {PARAMS['max_depth']}): best round {best + 1} of "
        f"{ROUNDS}, valid AUC {booster.best_score:.4f}, fitted in {seconds:.2f}s"
    )
    print(f"test AUC {auc(test['bad'].to_numpy(), scores):.4f}")


if __name__ == "__main__":
    main()
