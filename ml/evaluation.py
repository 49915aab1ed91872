"""Metrics the training runner logs after scoring the train and test windows.

Every function returns plain ``{name: float}`` dicts whose names are MLflow-safe
(letters, digits, underscores) so the runner can prefix them (``test_auc``) and log
them as they are. Bad input (NaN scores, one label class, mismatched lengths) raises
:class:`EvaluationError` with a message that names the problem and a hint, because a
sklearn traceback deep inside a training run tells the user nothing about which
window or label definition to look at.

Everything is vectorised: the per-entity ranking metrics sort once with
``np.lexsort`` and aggregate with ``np.bincount``, so 1M rows over 200k entities
take well under a second.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score

from ml.errors import RtmlError

# Clipping keeps log loss finite when a model is certain and wrong (same bound sklearn used).
LOG_LOSS_EPS = 1e-15


class EvaluationError(RtmlError):
    """Scores or labels that cannot be evaluated (NaNs, one class, mismatched lengths)."""


def _where(window: str | None) -> str:
    return f"the {window} window" if window else "the evaluated data"


def _as_float(values: npt.ArrayLike, what: str, window: str | None) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"{what} in {_where(window)} are not numeric ({exc})") from None


def check_finite(values: npt.ArrayLike, what: str, window: str | None = None) -> np.ndarray:
    """Return ``values`` as a 1-d float64 array, refusing NaN/inf: they poison every metric."""
    array = _as_float(values, what, window)
    bad = ~np.isfinite(array)
    if bad.any():
        nans = int(np.isnan(array).sum())
        raise EvaluationError(
            f"{what} in {_where(window)} contain {nans:,} NaN and {int(bad.sum()) - nans:,} "
            f"infinite values out of {array.size:,}",
            hint="check the model's inputs for missing features and that prediction ran on "
            "every row",
        )
    return array


def _check_lengths(window: str | None, **arrays: np.ndarray) -> None:
    sizes = {name: len(array) for name, array in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise EvaluationError(f"lengths differ in {_where(window)}: {sizes}")
    if not next(iter(sizes.values())):
        raise EvaluationError(
            f"nothing to evaluate: {_where(window)} has no rows",
            hint="check the window dates and the source query",
        )


def check_binary(
    labels: npt.ArrayLike, scores: npt.ArrayLike, *, window: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and finite scores; return them as float64 arrays.

    Shared with :mod:`ml.plots` so a plot of a broken window fails the same clear way.
    """
    y = _as_float(labels, "labels", window)
    s = check_finite(scores, "scores", window)
    _check_lengths(window, labels=y, scores=s)
    not_binary = ~((y == 0) | (y == 1))
    if not_binary.any():
        examples = pd.unique(y[not_binary])[:5].tolist()
        raise EvaluationError(
            f"labels in {_where(window)} must be 0/1; {int(not_binary.sum()):,} rows are not "
            f"(e.g. {examples})",
            hint="a binary model's label() must return 0/1 without missing values",
        )
    positives = int(y.sum())
    if positives in (0, y.size):
        only = "negatives" if positives == 0 else "positives"
        raise EvaluationError(
            f"{_where(window)} has only {only} ({positives:,} positives in {y.size:,} rows); "
            "AUC and the other ranking metrics need both classes",
            hint="check the label definition, the window dates (too short a window may hold no "
            "events) and any filters in the model's query or prepare()",
        )
    return y, s


def is_probability(scores: npt.ArrayLike) -> bool:
    """True if every score lies in [0, 1]: only then are log loss, Brier and calibration meaningful.

    A linear VW model outputs raw margins, so the runner uses this to skip those.
    """
    s = np.asarray(scores, dtype=np.float64)
    return bool(s.size) and bool(s.min() >= 0.0) and bool(s.max() <= 1.0)


def binary_metrics(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    groups: npt.ArrayLike | None = None,
    ks: tuple[int, ...] = (1, 3, 5),
    *,
    window: str | None = None,
) -> dict[str, float]:
    """AUC, average precision, base rates and, with ``groups``, per-entity precision/recall@k.

    ``log_loss`` and ``brier`` appear only when every score is a probability in [0, 1];
    a margin-scored model (e.g. VW linear) simply lacks them rather than getting
    meaningless values. ``window`` (e.g. ``"test"``) only makes error messages specific.
    """
    y, s = check_binary(labels, scores, window=window)
    metrics: dict[str, float] = {
        "auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "positive_rate": float(y.mean()),
        "mean_score": float(s.mean()),
        "rows": float(y.size),
    }
    if is_probability(s):
        p = np.clip(s, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
        metrics["log_loss"] = float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
        metrics["brier"] = float(np.mean((s - y) ** 2))
    if groups is not None:
        metrics.update(ranking_metrics(y, s, groups, ks, window=window))
    return metrics


def ranking_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: npt.ArrayLike,
    ks: tuple[int, ...] = (1, 3, 5),
    *,
    window: str | None = None,
) -> dict[str, float]:
    """Precision@k and recall@k per entity, averaged over entities with at least one positive.

    Each entity's rows are ranked by score descending, ties kept in their original
    order (``np.lexsort`` is stable). Precision@k divides the hits by the number of
    rows actually shown, ``min(k, rows of the entity)``, so an entity with two
    candidates is not punished for lacking a fifth; recall@k divides by the entity's
    positives. Entities without positives have no defined recall and are left out of
    both averages (``entities_with_positive`` says how many remain).
    """
    if not ks or any(int(k) < 1 for k in ks):
        raise EvaluationError(f"ks must be positive integers; got {ks}")
    codes, uniques = pd.factorize(np.asarray(groups).ravel())
    _check_lengths(window, labels=labels, groups=codes)
    if (codes < 0).any():
        raise EvaluationError(
            f"{int((codes < 0).sum()):,} rows in {_where(window)} have no entity id",
            hint="the group column (e.g. business_id) must be filled on every row",
        )
    order = np.lexsort((-scores, codes))  # primary key: entity; then score descending
    sorted_codes = codes[order]
    sorted_labels = labels[order]
    n_entities = len(uniques)
    sizes = np.bincount(codes, minlength=n_entities)
    starts = np.cumsum(sizes) - sizes
    rank = np.arange(codes.size) - starts[sorted_codes]  # 0-based position within the entity
    positives = np.bincount(codes, weights=labels, minlength=n_entities)
    has_positive = positives > 0
    metrics: dict[str, float] = {
        "entities": float(n_entities),
        "entities_with_positive": float(has_positive.sum()),
    }
    for k in sorted({int(k) for k in ks}):
        hits = np.bincount(sorted_codes, weights=sorted_labels * (rank < k), minlength=n_entities)
        shown = np.minimum(sizes, k)
        metrics[f"precision_at_{k}"] = float((hits / shown)[has_positive].mean())
        metrics[f"recall_at_{k}"] = float((hits[has_positive] / positives[has_positive]).mean())
    return metrics


def calibration_table(
    labels: npt.ArrayLike, scores: npt.ArrayLike, bins: int = 10, *, window: str | None = None
) -> pd.DataFrame:
    """Observed positive rate per quantile bin of the score (a reliability table).

    Quantile edges give every bin about the same number of rows, so the sparse
    high-score tail is not judged on a handful of rows. Tied scores never straddle a
    bin edge, so heavily tied scores yield fewer (and uneven) bins; empty bins are
    dropped. Columns: ``bin, count, mean_score, positive_rate``.
    """
    y, s = check_binary(labels, scores, window=window)
    if not is_probability(s):
        raise EvaluationError(
            f"scores in {_where(window)} are not probabilities (range {s.min():g}..{s.max():g})",
            hint="calibration needs scores in [0, 1]; skip it for margin-scored models "
            "(see is_probability)",
        )
    if bins < 1:
        raise EvaluationError(f"bins must be at least 1; got {bins}")
    edges = np.unique(np.quantile(s, np.linspace(0.0, 1.0, bins + 1)))
    bin_of = np.searchsorted(edges[1:-1], s, side="right")
    n_bins = max(len(edges) - 1, 1)
    count = np.bincount(bin_of, minlength=n_bins)
    score_sum = np.bincount(bin_of, weights=s, minlength=n_bins)
    positive_sum = np.bincount(bin_of, weights=y, minlength=n_bins)
    kept = count > 0
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins)[kept],
            "count": count[kept],
            "mean_score": score_sum[kept] / count[kept],
            "positive_rate": positive_sum[kept] / count[kept],
        }
    )


def check_regression(
    targets: npt.ArrayLike, predictions: npt.ArrayLike, *, window: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate finite targets and predictions of equal, non-zero length; return float64 arrays."""
    t = check_finite(targets, "targets", window)
    p = check_finite(predictions, "predictions", window)
    _check_lengths(window, targets=t, predictions=p)
    return t, p


def regression_metrics(
    targets: npt.ArrayLike, predictions: npt.ArrayLike, *, window: str | None = None
) -> dict[str, float]:
    """R², RMSE, MAE and the means of target and prediction (a bias check at a glance)."""
    t, p = check_regression(targets, predictions, window=window)
    error = p - t
    return {
        "r2": float(r2_score(t, p)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mean_target": float(t.mean()),
        "mean_prediction": float(p.mean()),
        "rows": float(t.size),
    }
