"""rtml train against hand-written training on the same data, in one run.

Run: .venv/bin/python bench/train_bench.py [--businesses 150000]

Builds a demo marketplace (about 10 applications per business; the lender_match
train window holds ~70% of them), trains lender_match once with each framework to
fill the cache, then measures with the cache warm, as a data scientist iterating:

  XGBoost  rtml train_model (gbtree, cached data and matrix), split into fit+evaluate
           and MLflow logging, against xgboost.train with the same params, the same
           early-stopping validation rows and the same float32 matrices, plus predict
           and AUC on the test window. Test AUCs must agree within 0.002.
  VW       rtml's VW fit (cached example file) against VW's own command line
           (python -m vowpalwabbit -d file ...) with the same arguments on that file.

Everything lives in a temporary folder (demo database, MLflow store, cache).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xgboost as xgb
from sklearn.metrics import roc_auc_score

from ml.config import load_model_config
from ml.data.cache import Cache
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.datasets import VALIDATION_FRACTION, examples, pull_windows, time_tail
from ml.demo import DemoSpec, load_demo_data
from ml.features import FeaturePipeline
from ml.features.vw import vw_lines, write_vw_file
from ml.features.xgb import native_layout, to_native
from ml.frameworks.xgboost import XGBoostFramework
from ml.model import create_model
from ml.training import TrainOptions, train_model


def xgboost_baseline(config, cache: Cache) -> tuple[float, float, int, int]:  # type: ignore[no-untyped-def]
    """Seconds and test AUC of plain xgboost.train on rtml's matrices (built untimed)."""
    model = create_model(config)
    with open_source(parse_db_url(config.source.url)) as source:
        windows = pull_windows(model, source, cache=cache)
    fit_rows, tail = time_tail(windows.train, windows.split.time_column, VALIDATION_FRACTION)
    train = examples(model, "train", windows.train, fit_rows)
    valid = examples(model, "validation", windows.train, tail)
    test = examples(model, "test", windows.test)
    pipeline = FeaturePipeline(config).fit(train.rows)
    names, types = native_layout(pipeline)
    x_train, x_valid, x_test = (to_native(pipeline, part.rows) for part in (train, valid, test))
    params = XGBoostFramework(config, "gbtree", pipeline).params()

    started = time.perf_counter()
    common = {"feature_names": names, "feature_types": types, "enable_categorical": True}
    dtrain = xgb.QuantileDMatrix(x_train, label=train.labels, **common)
    dvalid = xgb.QuantileDMatrix(x_valid, label=valid.labels, ref=dtrain, **common)
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=config.xgboost.num_boost_round,
        evals=[(dtrain, "train"), (dvalid, "validation")],
        early_stopping_rounds=config.xgboost.early_stopping_rounds,
        verbose_eval=False,
    )
    booster = booster[: booster.best_iteration + 1]
    auc = roc_auc_score(test.labels, booster.inplace_predict(x_test))
    seconds = time.perf_counter() - started
    return seconds, float(auc), len(train), x_train.shape[1]


def vw_cli_seconds(config, cache: Cache, folder: Path) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """VW's own command line on the same training examples rtml writes."""
    model = create_model(config)
    with open_source(parse_db_url(config.source.url)) as source:
        windows = pull_windows(model, source, cache=cache)
    train = examples(model, "train", windows.train)
    pipeline = FeaturePipeline(config).fit(train.rows)
    data = folder / "train.vw"
    write_vw_file(str(data), vw_lines(pipeline, train.rows, labels=train.labels))
    args = [
        "-d",
        str(data),
        "-f",
        str(folder / "cli.vw"),
        "-c",
        "--cache_file",
        str(folder / "cli.cache"),
        "-k",
        "--quiet",
        "--loss_function",
        "logistic",
        "--link",
        "logistic",
        "--passes",
        str(config.vw.passes),
        "--holdout_off",
        *config.vw.flags,
    ]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vowpalwabbit", *args], check=True)
    return time.perf_counter() - started, len(train)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--businesses", type=int, default=150_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtml-train-bench-") as scratch:
        folder = Path(scratch)
        db = f"sqlite:///{folder}/demo.db"
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
        load_demo_data(parse_db_url(db), DemoSpec(businesses=args.businesses), progress=False)
        config = load_model_config("lender_match", overrides=[f"source.url={db}"])
        cache = Cache(folder / "cache")

        def rtml(framework: str, algorithm: str):  # type: ignore[no-untyped-def]
            options = TrainOptions(framework, algorithm, cache=cache, progress=False)
            return train_model(config, "v1", options)

        rtml("xgboost", "gbtree")  # warm the caches: data, matrices, example files
        rtml("vw", "logistic")

        ours = min(
            (rtml("xgboost", "gbtree") for _ in range(args.repeats)),
            key=lambda r: r.seconds["total_seconds"],
        )
        peer_s, peer_auc, rows, columns = min(
            (xgboost_baseline(config, cache) for _ in range(args.repeats)), key=lambda r: r[0]
        )
        t = ours.seconds
        core = t["fit_seconds"] + t["predict_seconds"]
        print(
            f"XGBoost gbtree: {rows:,} training rows x {columns} columns "
            f"(+ {ours.rows['validation']:,} validation, {ours.rows['test']:,} test)"
        )
        print(f"  rtml fit + predict (cached data)      {core:7.2f} s")
        print(f"  rtml data (cache hit)                 {t['data_seconds']:7.2f} s")
        print(f"  rtml MLflow logging (plots, model)    {t['mlflow_seconds']:7.2f} s")
        print(f"  rtml train total                      {t['total_seconds']:7.2f} s")
        print(f"  plain xgboost.train + predict         {peer_s:7.2f} s")
        print(
            f"  ratio without MLflow: {(t['total_seconds'] - t['mlflow_seconds']) / peer_s:.2f}"
            f"   with MLflow: {t['total_seconds'] / peer_s:.2f}"
        )
        print(
            f"  test AUC rtml {ours.metrics['test_auc']:.4f}  plain {peer_auc:.4f}  "
            f"difference {abs(ours.metrics['test_auc'] - peer_auc):.4f}"
        )

        vw_ours = min(
            (rtml("vw", "logistic") for _ in range(args.repeats)),
            key=lambda r: r.seconds["fit_seconds"],
        )
        cli_s, vw_rows = min(
            (vw_cli_seconds(config, cache, folder) for _ in range(args.repeats)), key=lambda r: r[0]
        )
        vw_fit = vw_ours.metrics["fit_train_seconds"]
        print(f"VW logistic: {vw_rows:,} examples, {config.vw.passes} passes")
        print(f"  rtml VW training (cached example file) {vw_fit:7.2f} s")
        print(f"  python -m vowpalwabbit, same file/args {cli_s:7.2f} s")
        print(
            f"  ratio: {vw_fit / cli_s:.2f}   (rtml fit step incl. file lookup: "
            f"{vw_ours.seconds['fit_seconds']:.2f} s; test AUC {vw_ours.metrics['test_auc']:.4f})"
        )


if __name__ == "__main__":
    main()
