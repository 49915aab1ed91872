"""XGBoost: boosted trees (native categoricals) or linear models (one-hot, gblinear).

- ``gbtree``: the dense float32 matrix of :func:`ml.features.xgb.to_native`, with
  categorical codes declared as such; ``hist`` trees. Binary -> ``binary:logistic``,
  regression -> ``reg:squarederror``.
- ``logistic`` / ``linear``: ``gblinear`` on the one-hot CSR matrix (gblinear has no
  categorical support), with ``binary:logistic`` / ``reg:squarederror``.

Early stopping watches the validation examples (the runner holds out the end of the
train window) and the saved booster keeps only the rounds up to the best one, so
predictions everywhere (evaluation, MLflow pyfunc, serving) use the best iteration.
The model is saved as UBJSON, XGBoost's own format; no pickle.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xgboost as xgb
from tqdm.auto import tqdm

from ml.data.fetch import cached_arrays, processed_key
from ml.features.encode import Frame
from ml.features.xgb import native_layout, onehot_names, to_native, to_onehot
from ml.frameworks.base import Examples, FitContext, FrameworkError, Matrix, MatrixFramework
from ml.interrupts import stop_requested

log = logging.getLogger(__name__)

MODEL_FILE = "model.ubj"
OBJECTIVES = {
    ("binary", "gbtree"): "binary:logistic",
    ("binary", "logistic"): "binary:logistic",
    ("binary", "linear"): "reg:squarederror",
    ("regression", "gbtree"): "reg:squarederror",
    ("regression", "linear"): "reg:squarederror",
}
EVAL_METRICS = {"binary:logistic": "logloss", "reg:squarederror": "rmse"}
# Tree-shape params a config tuned for gbtree carries; gblinear ignores them (and warns).
TREE_PARAMS = {
    "max_depth",
    "min_child_weight",
    "subsample",
    "colsample_bytree",
    "colsample_bylevel",
    "colsample_bynode",
    "gamma",
    "min_split_loss",
    "max_delta_step",
    "tree_method",
    "grow_policy",
    "max_leaves",
    "max_bin",
    "max_cat_to_onehot",
    "max_cat_threshold",
    "num_parallel_tree",
    "sampling_method",
    "interaction_constraints",
    "monotone_constraints",
}


class XGBoostFramework(MatrixFramework):
    name = "xgboost"
    algorithms = {
        "gbtree": "gradient-boosted trees (native categorical splits)",
        "logistic": "logistic regression (gblinear, binary:logistic)",
        "linear": "linear regression (gblinear, squared error)",
    }
    task_algorithms = {
        "binary": ("gbtree", "logistic", "linear"),
        "regression": ("gbtree", "linear"),
    }
    uses_validation = True

    booster: xgb.Booster | None = None
    _info: dict[str, Any]
    _fitted_matrix: tuple[str, np.ndarray | sp.csr_matrix] | None = None

    @property
    def _linear(self) -> bool:
        return self.algorithm != "gbtree"

    def params(self) -> dict[str, Any]:
        objective = OBJECTIVES[(self.config.task, self.algorithm)]
        params: dict[str, Any] = {
            "objective": objective,
            "eval_metric": EVAL_METRICS[objective],
            "booster": "gblinear" if self._linear else "gbtree",
            "nthread": 0,  # all cores
        }
        if not self._linear:
            params["tree_method"] = "hist"
        params.update(
            (key, value)
            for key, value in self.config.xgboost.params.items()
            if not (self._linear and key in TREE_PARAMS)
        )
        return params

    # --- matrices ---------------------------------------------------------------------

    def matrix(self, rows: Frame) -> np.ndarray | sp.csr_matrix:
        """The model's input for prepared rows: native dense (trees) or one-hot CSR (linear)."""
        return to_onehot(self.pipeline, rows) if self._linear else to_native(self.pipeline, rows)

    def _examples_matrix(
        self, examples: Examples, context: FitContext
    ) -> np.ndarray | sp.csr_matrix:
        """The matrix for a whole example set, from the cache when it holds it."""

        def build() -> dict[str, np.ndarray]:
            matrix = self.matrix(examples.rows)
            if sp.issparse(matrix):
                csr = sp.csr_matrix(matrix)
                shape = np.array(csr.shape, dtype=np.int64)
                return {
                    "data": csr.data,
                    "indices": csr.indices,
                    "indptr": csr.indptr,
                    "shape": shape,
                }
            return {"dense": np.asarray(matrix)}

        layout = "onehot" if self._linear else "native"
        if not examples.key:
            arrays = build()
        else:
            key = processed_key(
                examples.key,
                self.pipeline.fingerprint(),
                self.name,
                layout=layout,
                part=examples.name,
            )
            arrays, _ = cached_arrays(
                context.cache, key, build, description=f"{examples.name} {layout} XGBoost matrix"
            )
        if "dense" in arrays:
            return arrays["dense"]
        shape = tuple(int(n) for n in arrays["shape"])
        return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)

    def _dmatrix(
        self, matrix: np.ndarray | sp.csr_matrix, examples: Examples, ref: xgb.DMatrix | None = None
    ) -> xgb.DMatrix:
        names, types = (
            (onehot_names(self.pipeline), None) if self._linear else native_layout(self.pipeline)
        )
        common: dict[str, Any] = {
            "label": examples.labels,
            "weight": examples.weights,
            "feature_names": names,
            "feature_types": types,
            "enable_categorical": not self._linear,
        }
        if self._linear:
            return xgb.DMatrix(matrix, **common)
        # QuantileDMatrix sketches once and stores bins, not floats: faster hist training.
        return xgb.QuantileDMatrix(matrix, ref=ref, **common)

    # --- training -----------------------------------------------------------------------

    def fit(self, train: Examples, validation: Examples | None, context: FitContext) -> None:
        matrix = self._examples_matrix(train, context)
        # Kept for scoring the train window right after fitting, instead of reading and
        # verifying the cache entry (or transforming the rows) a second time.
        self._fitted_matrix = (train.key, matrix) if train.key else None
        validation_matrix = None
        if validation is not None and len(validation):
            validation_matrix = self._examples_matrix(validation, context)
        self.fit_matrices(train, matrix, validation, validation_matrix, context.progress)

    def fit_matrices(
        self,
        train: Examples,
        train_matrix: Matrix,
        validation: Examples | None,
        validation_matrix: Matrix | None,
        progress: bool,
    ) -> None:
        options = self.config.xgboost
        dtrain = self._dmatrix(train_matrix, train)
        evals = [(dtrain, "train")]
        if validation is not None and validation_matrix is not None and len(validation):
            evals.append((self._dmatrix(validation_matrix, validation, dtrain), "validation"))
        stopping = options.early_stopping_rounds if len(evals) > 1 else None
        started = time.perf_counter()
        with _RoundProgress(options.num_boost_round, progress) as bar:
            try:
                booster = xgb.train(
                    self.params(),
                    dtrain,
                    num_boost_round=options.num_boost_round,
                    evals=evals,
                    early_stopping_rounds=stopping,
                    verbose_eval=False,
                    callbacks=[bar],
                )
            except xgb.core.XGBoostError as exc:
                raise FrameworkError(
                    f"XGBoost could not train: {str(exc).splitlines()[0]}",
                    hint="check xgboost.params in the config",
                ) from exc
        rounds = booster.num_boosted_rounds()
        best = booster.best_iteration if stopping else rounds - 1
        if stopping and not self._linear and best + 1 < rounds:
            booster = booster[: best + 1]  # keep the best iteration, as the saved model
        self.booster = booster
        self._info = {
            "rounds_trained": rounds,
            "best_iteration": best,
            "train_seconds": round(time.perf_counter() - started, 3),
        }

    def info(self) -> dict[str, Any]:
        return dict(getattr(self, "_info", {}))

    # --- prediction ---------------------------------------------------------------------

    def _booster(self) -> xgb.Booster:
        if self.booster is None:
            raise FrameworkError("the XGBoost model is not trained or loaded")
        return self.booster

    def predict(self, rows: Frame) -> np.ndarray:
        return self.score_matrix(self.matrix(rows))

    def predict_examples(self, examples: Examples, context: FitContext) -> np.ndarray:
        kept = self._fitted_matrix
        if kept is not None and kept[0] == examples.key:
            return self.score_matrix(kept[1])
        return self.score_matrix(self._examples_matrix(examples, context))

    def score_matrix(self, matrix: Matrix) -> np.ndarray:
        booster = self._booster()
        if self._linear:
            # gblinear has no inplace_predict; its DMatrix over a sparse one-hot is cheap.
            names = onehot_names(self.pipeline)
            scores = booster.predict(xgb.DMatrix(matrix, feature_names=names))
        else:
            # Trees: no DMatrix on the serving path, one call for all rows.
            scores = booster.inplace_predict(matrix)
        return np.asarray(scores, dtype=np.float64)

    def close(self) -> None:
        self._fitted_matrix = None

    # --- saving -------------------------------------------------------------------------

    def save_model(self, directory: Path) -> dict[str, Any]:
        self._booster().save_model(str(directory / MODEL_FILE))
        return {"model_file": MODEL_FILE, **self.info()}

    def load_model(self, directory: Path, saved: dict[str, Any]) -> None:
        booster = xgb.Booster()
        booster.load_model(str(directory / saved.get("model_file", MODEL_FILE)))
        booster.set_param({"nthread": 1})  # serving: one thread per worker (design)
        self.booster = booster
        self._info = {k: v for k, v in saved.items() if k != "model_file"}

    def importance(self) -> dict[str, float]:
        booster = self._booster()
        if self._linear:
            # gblinear: the coefficient per one-hot column (signed).
            weights = booster.get_score(importance_type="weight")
            return {name: float(np.ravel(value)[0]) for name, value in weights.items()}
        gains = booster.get_score(importance_type="total_gain")
        return {name: float(value) for name, value in gains.items()}  # type: ignore[arg-type]


class _RoundProgress(xgb.callback.TrainingCallback):
    """A tqdm bar over boosting rounds, showing the latest validation metric."""

    def __init__(self, total: int, enabled: bool) -> None:
        super().__init__()
        self.bar = tqdm(total=total, desc="xgboost", unit="round", disable=not enabled, leave=False)

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        self.bar.update(1)
        if stop_requested():
            return True  # Ctrl-C: stop here; the caller turns it into KeyboardInterrupt
        if evals_log:
            last = list(evals_log.get("validation", evals_log.get("train", {})).items())
            if last:
                metric, values = last[-1]
                self.bar.set_postfix({metric: f"{values[-1]:.4f}"}, refresh=False)
        return False

    def __enter__(self) -> _RoundProgress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.bar.close()
