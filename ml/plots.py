"""Evaluation plots the training runner saves as PNGs in the MLflow run.

Figures are built from :class:`matplotlib.figure.Figure` directly, never through
pyplot: no global figure registry, no GUI backend, safe in worker threads and on
headless hosts, and nothing leaks if the caller forgets to close a figure. Each
function returns the figure (``mlflow.log_figure`` accepts it) and :func:`save_png`
writes one to disk. Curves over a million rows are thinned to at most
``MAX_CURVE_POINTS`` and scatters to ``MAX_SCATTER_POINTS`` so plotting stays fast
and the PNGs small; the metric in each legend or title is computed on all rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    r2_score,
    roc_auc_score,
    roc_curve,
)

from ml.evaluation import calibration_table, check_binary, check_regression

MAX_CURVE_POINTS = 2000
MAX_SCATTER_POINTS = 20_000
FIGSIZE = (8.0, 6.0)  # inches at 100 dpi: 800x600 pixels
DPI = 100
LABEL_MAX_CHARS = 40  # long crossed-feature names would squeeze the bars to nothing


def save_png(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``figure`` as a PNG at ``path`` (parents created) and free its memory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png", dpi=DPI)
    figure.clear()
    return target


def _figure() -> Figure:
    return Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")


def _suffixed(title: str, suffix: str) -> str:
    return f"{title} ({suffix})" if suffix else title


def _thin_curve(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most MAX_CURVE_POINTS points, evenly spaced along the curve's length.

    Spacing by arc length rather than by index keeps the steep corner of a good ROC
    curve, where thousands of thresholds would otherwise crowd into a few pixels
    (or be thinned away entirely).
    """
    if x.size <= MAX_CURVE_POINTS:
        return x, y
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    wanted = np.linspace(0.0, length[-1], MAX_CURVE_POINTS)
    keep = np.unique(np.searchsorted(length, wanted).clip(0, x.size - 1))
    return x[keep], y[keep]


def _sample(size: int) -> np.ndarray:
    """Deterministic row subset for scatters: a fixed seed, so reruns give identical PNGs."""
    if size <= MAX_SCATTER_POINTS:
        return np.arange(size)
    return np.sort(np.random.default_rng(0).choice(size, MAX_SCATTER_POINTS, replace=False))


def roc_curve_figure(
    labels: npt.ArrayLike, scores: npt.ArrayLike, title_suffix: str = ""
) -> Figure:
    """ROC curve with its AUC and the chance diagonal."""
    y, s = check_binary(labels, scores, window=title_suffix or None)
    fpr, tpr, _ = roc_curve(y, s)
    fpr, tpr = _thin_curve(fpr, tpr)
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(fpr, tpr, lw=2, label=f"model (AUC = {roc_auc_score(y, s):.4f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance (AUC = 0.5)")
    _unit_axes(ax, "false positive rate", "true positive rate")
    ax.set_title(_suffixed("ROC curve", title_suffix))
    ax.legend(loc="lower right")
    return figure


def precision_recall_figure(
    labels: npt.ArrayLike, scores: npt.ArrayLike, title_suffix: str = ""
) -> Figure:
    """Precision-recall curve with average precision; the base rate is what chance achieves."""
    y, s = check_binary(labels, scores, window=title_suffix or None)
    precision, recall, _ = precision_recall_curve(y, s)
    recall, precision = _thin_curve(recall, precision)
    base_rate = float(y.mean())
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(recall, precision, lw=2, label=f"model (AP = {average_precision_score(y, s):.4f})")
    ax.axhline(base_rate, ls="--", color="grey", label=f"base rate = {base_rate:.4f}")
    _unit_axes(ax, "recall", "precision")
    ax.set_title(_suffixed("Precision-recall curve", title_suffix))
    ax.legend(loc="upper right")
    return figure


def calibration_figure(
    labels: npt.ArrayLike, scores: npt.ArrayLike, bins: int = 10, title_suffix: str = ""
) -> Figure:
    """Reliability diagram (observed rate per score bin) above a histogram of the scores.

    The histogram shows where the scores actually fall, which says how much each
    point of the diagram matters.
    """
    window = title_suffix or None
    table = calibration_table(labels, scores, bins=bins, window=window)
    _, s = check_binary(labels, scores, window=window)
    figure = _figure()
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    top.plot(table["mean_score"], table["positive_rate"], marker="o", lw=2, label="model")
    _unit_axes(top, "", "observed positive rate")
    top.set_title(_suffixed(f"Calibration ({len(table)} quantile bins)", title_suffix))
    top.legend(loc="upper left")
    bottom.hist(s, bins=50, range=(0.0, 1.0), color="tab:blue", alpha=0.7)
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("rows")
    return figure


def importance_figure(importance: dict[str, float], title: str, top: int = 30) -> Figure:
    """Horizontal bars of the ``top`` features by absolute value, largest at the top.

    Signed values are kept (VW weights can be negative) and coloured by sign, so a
    strong negative weight ranks as high as a strong positive one.
    """
    figure = _figure()
    ax = figure.add_subplot()
    ax.set_title(title)
    items = sorted(importance.items(), key=lambda item: abs(item[1]), reverse=True)[:top]
    if not items:
        ax.text(0.5, 0.5, "no feature importances", ha="center", va="center")
        ax.set_axis_off()
        return figure
    names = [_short(name) for name, _ in items][::-1]
    values = np.array([value for _, value in items][::-1], dtype=np.float64)
    colors = np.where(values < 0, "tab:red", "tab:blue")
    ax.barh(np.arange(len(values)), values, color=colors)
    ax.set_yticks(np.arange(len(values)), names, fontsize=8 if len(values) > 15 else 10)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel("importance" + (" (red: negative)" if (values < 0).any() else ""))
    ax.set_ylabel("feature")
    return figure


def predicted_vs_actual_figure(
    targets: npt.ArrayLike, predictions: npt.ArrayLike, title_suffix: str = ""
) -> Figure:
    """Scatter of prediction against target with the y = x line; R² (all rows) in the title."""
    t, p = check_regression(targets, predictions, window=title_suffix or None)
    title = _suffixed(f"Predicted vs actual (R² = {r2_score(t, p):.4f})", title_suffix)
    figure, ax = _scatter(t, p, "actual", "predicted", title)
    low, high = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    ax.plot([low, high], [low, high], ls="--", color="grey", label="y = x")
    ax.legend(loc="upper left")
    return figure


def residuals_figure(
    targets: npt.ArrayLike, predictions: npt.ArrayLike, title_suffix: str = ""
) -> Figure:
    """Residual (actual - predicted) against prediction: curvature or a funnel shows misfit."""
    t, p = check_regression(targets, predictions, window=title_suffix or None)
    title = _suffixed("Residuals", title_suffix)
    figure, ax = _scatter(p, t - p, "predicted", "residual (actual - predicted)", title)
    ax.axhline(0.0, ls="--", color="grey")
    ax.legend(loc="upper left")
    return figure


def _scatter(
    x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, title: str
) -> tuple[Figure, Any]:
    """A scatter of (a deterministic sample of) the points, labelled and titled."""
    rows = _sample(x.size)
    figure = _figure()
    ax = figure.add_subplot()
    ax.scatter(x[rows], y[rows], s=4, alpha=0.3, label=_shown(rows.size, x.size))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return figure, ax


def _unit_axes(ax: Axes, xlabel: str, ylabel: str) -> None:
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _shown(shown: int, total: int) -> str:
    return f"{total:,} rows" if shown == total else f"{shown:,} of {total:,} rows (random sample)"


def _short(name: str) -> str:
    return name if len(name) <= LABEL_MAX_CHARS else name[: LABEL_MAX_CHARS - 1] + "…"
