"""rtml select against bare xgboost.train, and 1 against 2 workers, in one run.

Run: .venv/bin/python bench/select_bench.py [--businesses 20000] [--combinations 12]

Builds a demo marketplace in a temporary folder and a lender_match config whose
selection lists fixed combinations of feature groups, so every variant trains the
same set. With the cache warm:

  per trial   rtml select, one worker (SQLite storage): each trial's wall time (Optuna's
              start to complete: suggest, repeat check, nested MLflow run, assembling the
              columns, xgboost training with early stopping, scoring, metrics), against
              bare QuantileDMatrix + xgboost.train + inplace_predict on the same column
              subset with the same params, validation rows and early stopping. The
              rounds trained must agree. Reported without the first trial (which builds
              each feature's columns once) and with it.
  workers     rtml select on a fresh Postgres database with 1 worker (XGBoost on every
              core), 1 worker with one XGBoost thread, and 2 workers (one thread each):
              the trial phase (first trial start to last trial end) and the whole command.

Postgres: $RTML_BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres) is
used to create and drop the benchmark's databases.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import psycopg2
import xgboost as xgb
from optuna.trial import TrialState
from psycopg2 import sql

from ml.config import load_config
from ml.data.cache import Cache
from ml.data.urls import parse_db_url
from ml.demo import DemoSpec, load_demo_data
from ml.features.xgb import native_layout
from ml.frameworks.xgboost import XGBoostFramework
from ml.selection import SelectOptions, select_features
from ml.selection.space import SearchSpace
from ml.selection.study import open_storage
from ml.selection.workers import trial_data

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("RTML_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
GROUPS = ("credit", "revenue", "tenure", "industry", "lender", "amount")


def write_config(folder: Path, db: str, combinations: int, nthread: int | None) -> Path:
    raw: dict[str, Any] = json.loads((ROOT / "configs/lender_match/v1.json").read_text())
    raw["source"] = {"url": db}
    if nthread is not None:
        raw["xgboost"]["params"]["nthread"] = nthread
    # A fixed, varied set: every group left out once, pairs left out, and all features.
    dropped = [(), *((g,) for g in GROUPS), *itertools.combinations(GROUPS, 2)]
    raw["selection"] = {
        "groups": raw["selection"]["groups"],
        "combinations": [[g for g in GROUPS if g not in d] for d in dropped[:combinations]],
    }
    path = folder / "configs" / "lender_match"
    path.mkdir(parents=True, exist_ok=True)
    (path / "v1.json").write_text(json.dumps(raw))
    return folder / "configs"


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"rtml_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(ADMIN_URL, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def trials_of(study_name: str, storage: Any) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=study_name, storage=storage)
    return [t for t in study.trials if t.state == TrialState.COMPLETE]


def seconds(trial: optuna.trial.FrozenTrial) -> float:
    assert trial.datetime_complete and trial.datetime_start
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def phase(trials: list[optuna.trial.FrozenTrial]) -> float:
    start = min(t.datetime_start for t in trials if t.datetime_start)
    end = max(t.datetime_complete for t in trials if t.datetime_complete)
    return (end - start).total_seconds()


def bare_seconds(configs: Path, trials: list[optuna.trial.FrozenTrial]) -> list[tuple[float, int]]:
    """Bare xgboost on each trial's column subset: (seconds, rounds trained)."""
    from ml.data.sources import open_source, source_url
    from ml.datasets import pull_windows
    from ml.model import create_model

    config = load_config(configs / "lender_match" / "v1.json")
    model = create_model(config)
    with open_source(source_url(config.source), progress=False) as source:
        windows = pull_windows(model, source, cache=Cache())
    data = trial_data(model, windows, "xgboost", "gbtree")
    space = SearchSpace(config)
    sets = data.sets
    assert sets.validation is not None
    results = []
    for trial in trials:
        subset = space.subset(space.choice(trial.params))
        assert subset is not None
        matrices = data.store.matrices(subset)  # the same columns the trial used
        pipeline = data.store.pipeline(subset)
        params = XGBoostFramework(subset, "gbtree", pipeline).params()
        names, types = native_layout(pipeline)  # categorical codes declared, as any user would
        layout = {"feature_names": names, "feature_types": types, "enable_categorical": True}
        started = time.perf_counter()
        dtrain = xgb.QuantileDMatrix(matrices["train"], label=sets.train.labels, **layout)
        dvalid = xgb.QuantileDMatrix(
            matrices["validation"], label=sets.validation.labels, ref=dtrain, **layout
        )
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=config.xgboost.num_boost_round,
            evals=[(dtrain, "train"), (dvalid, "validation")],
            early_stopping_rounds=config.xgboost.early_stopping_rounds,
            verbose_eval=False,
        )
        booster[: booster.best_iteration + 1].inplace_predict(matrices["test"])
        results.append((time.perf_counter() - started, booster.num_boosted_rounds()))
    return results


def run_select(configs: Path, storage: str, workers: int) -> tuple[float, str]:
    started = time.perf_counter()
    result = select_features(
        "lender_match",
        "v1",
        SelectOptions(
            workers=workers, storage=storage, configs_dir=configs, progress=False, seed=0
        ),
    )
    return time.perf_counter() - started, result.study


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--businesses", type=int, default=20_000)
    parser.add_argument("--combinations", type=int, default=12)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="rtml-select-bench-") as scratch:
        folder = Path(scratch)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
        os.environ["RTML_CACHE_DIR"] = str(folder / "cache")
        db = f"sqlite:///{folder}/demo.db"
        load_demo_data(parse_db_url(db), DemoSpec(businesses=args.businesses))
        print(f"demo marketplace: {args.businesses:,} businesses; {args.combinations} combinations")

        # Per-trial overhead: one worker, warm cache (a first run fills it).
        configs = write_config(folder / "a", db, args.combinations, nthread=None)
        run_select(configs, f"sqlite:///{folder}/warm.db", 1)
        storage = f"sqlite:///{folder}/optuna.db"
        _, study = run_select(configs, storage, 1)
        trials = sorted(trials_of(study, storage), key=lambda t: t.number)
        bare = bare_seconds(configs, trials)
        for trial, (_, rounds) in zip(trials, bare, strict=True):
            trained = trial.user_attrs["rtml.metrics"]["fit_rounds_trained"]
            assert trained == rounds, f"trial {trial.number}: {trained} rounds vs bare {rounds}"
        ours = [seconds(t) for t in trials]
        theirs = [s for s, _ in bare]
        print("\nper trial (s)      rtml select   bare xgboost   ratio")
        for label, skip in (("mean, w/o first", 1), ("mean, all", 0)):
            mine, bare_part = ours[skip:], theirs[skip:]
            print(
                f"  {label:<16} {sum(mine) / len(mine):>11.2f}   "
                f"{sum(bare_part) / len(bare_part):>12.2f}   {sum(mine) / sum(bare_part):.2f}"
            )
        print(f"  study phase      {phase(trials):>11.1f} s for {len(trials)} trials")

        # Workers on Postgres storage.
        print("\nworkers (Postgres)          trial phase   whole command")
        timings = {}
        for label, workers, nthread in (
            ("1 worker, all cores", 1, None),
            ("1 worker, 1 thread", 1, 1),
            ("2 workers, 1 thread each", 2, None),
        ):
            configs = write_config(
                folder / label.replace(" ", "_").replace(",", ""), db, args.combinations, nthread
            )
            with postgres_database() as url:
                wall, study = run_select(configs, url, workers)
                trials = trials_of(study, open_storage(url))
                assert len(trials) == args.combinations
                timings[label] = (phase(trials), wall)
            print(f"  {label:<26} {timings[label][0]:>9.1f} s   {wall:>11.1f} s")
        two = timings["2 workers, 1 thread each"]
        for label in ("1 worker, all cores", "1 worker, 1 thread"):
            one = timings[label]
            print(
                f"  2 workers vs {label:<20} {one[0] / two[0]:.2f}x trial phase, "
                f"{one[1] / two[1]:.2f}x command"
            )


if __name__ == "__main__":
    main()
