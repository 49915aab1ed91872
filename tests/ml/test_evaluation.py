"""Evaluation metrics against sklearn and hand-computed examples; plots render to real PNGs."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

from ml import plots
from ml.errors import RtmlError
from ml.evaluation import (
    EvaluationError,
    binary_metrics,
    calibration_table,
    is_probability,
    regression_metrics,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def binary_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 5000
    scores = rng.random(n).round(2)  # rounding makes plenty of ties
    labels = (rng.random(n) < scores * 0.6).astype(int)
    groups = rng.integers(0, 400, n)
    return labels, scores, groups


def test_binary_metrics_match_sklearn(binary_data):
    labels, scores, _ = binary_data
    metrics = binary_metrics(labels, scores)
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(labels, scores))
    # sklearn 1.9 clips at float64 eps; we clip at 1e-15 (scores here include exact 0 and 1)
    clipped = np.clip(scores, 1e-15, 1 - 1e-15)
    assert metrics["log_loss"] == pytest.approx(log_loss(labels, clipped))
    assert metrics["brier"] == pytest.approx(brier_score_loss(labels, scores))
    assert metrics["positive_rate"] == pytest.approx(labels.mean())
    assert metrics["mean_score"] == pytest.approx(scores.mean())
    assert metrics["rows"] == 5000
    assert all(isinstance(value, float) for value in metrics.values())


def test_log_loss_clips_certain_wrong_predictions():
    metrics = binary_metrics([1, 0, 1, 0], [0.0, 1.0, 0.5, 0.5])
    clipped = np.clip([0.0, 1.0, 0.5, 0.5], 1e-15, 1 - 1e-15)
    assert np.isfinite(metrics["log_loss"])
    assert metrics["log_loss"] == pytest.approx(log_loss([1, 0, 1, 0], clipped))


def test_probability_metrics_omitted_for_margins(binary_data):
    labels, scores, _ = binary_data
    margins = (scores - 0.5) * 8  # a linear model's raw output, outside [0, 1]
    metrics = binary_metrics(labels, margins)
    assert "log_loss" not in metrics
    assert "brier" not in metrics
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert not is_probability(margins)
    assert is_probability(scores)


def test_ranking_metrics_by_hand_with_ties():
    # Entity "a": rows 0 and 2 tie at 0.9; original order puts the negative (row 0) first.
    # Entity "b": its positive scores highest. Entity "c" has no positive and is left out.
    groups = ["a", "b", "a", "c", "a", "b", "a"]
    scores = [0.9, 0.8, 0.9, 0.7, 0.5, 0.2, 0.1]
    labels = [0, 1, 1, 0, 1, 0, 0]
    metrics = binary_metrics(labels, scores, groups=groups, ks=(1, 3))
    # a ranked: 0(neg), 2(pos), 4(pos), 6(neg) -> p@1 0, r@1 0, p@3 2/3, r@3 1
    # b ranked: 1(pos), 5(neg)                  -> p@1 1, r@1 1, p@3 1/2 (2 rows shown), r@3 1
    assert metrics["precision_at_1"] == pytest.approx(0.5)
    assert metrics["recall_at_1"] == pytest.approx(0.5)
    assert metrics["precision_at_3"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert metrics["recall_at_3"] == pytest.approx(1.0)
    assert metrics["entities"] == 3
    assert metrics["entities_with_positive"] == 2
    assert "precision_at_5" not in metrics

    # Swapping the tied rows' order puts a's positive first: a's precision@1 becomes 1.
    swapped = binary_metrics([1, 1, 0, 0, 1, 0, 0], scores, groups=groups, ks=(1,))
    assert swapped["precision_at_1"] == pytest.approx(1.0)


def _reference_ranking(labels, scores, groups, k):
    """Slow, obvious per-entity loop to check the vectorised version against."""
    precisions, recalls = [], []
    frame = pd.DataFrame({"y": labels, "s": scores, "g": groups})
    for _, rows in frame.groupby("g", sort=False):
        if rows["y"].sum() == 0:
            continue
        top = rows.sort_values("s", ascending=False, kind="stable").head(k)
        precisions.append(top["y"].sum() / len(top))
        recalls.append(top["y"].sum() / rows["y"].sum())
    return np.mean(precisions), np.mean(recalls)


def test_ranking_metrics_match_a_per_entity_loop(binary_data):
    labels, scores, groups = binary_data
    entity_ids = np.array([f"business-{g}" for g in groups], dtype=object)
    metrics = binary_metrics(labels, scores, groups=entity_ids, ks=(1, 3, 5, 10))
    for k in (1, 3, 5, 10):
        precision, recall = _reference_ranking(labels, scores, groups, k)
        assert metrics[f"precision_at_{k}"] == pytest.approx(precision)
        assert metrics[f"recall_at_{k}"] == pytest.approx(recall)
    assert metrics["entities"] == len(np.unique(groups))


def test_metric_names_are_mlflow_safe(binary_data):
    labels, scores, groups = binary_data
    names = list(binary_metrics(labels, scores, groups=groups)) + list(
        regression_metrics([1.0, 2.0], [1.5, 2.5])
    )
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", name) for name in names)


@pytest.mark.parametrize(
    ("labels", "only"), [([0, 0, 0], "only negatives"), ([1, 1, 1], "only positives")]
)
def test_single_class_is_a_clear_error(labels, only):
    with pytest.raises(EvaluationError, match=f"the test window has {only}") as caught:
        binary_metrics(labels, [0.1, 0.2, 0.3], window="test")
    assert isinstance(caught.value, RtmlError)
    assert "label definition" in (caught.value.hint or "")


def test_nan_scores_are_counted_not_averaged():
    with pytest.raises(EvaluationError, match="contain 2 NaN and 1 infinite values out of 5"):
        binary_metrics([0, 1, 0, 1, 0], [0.1, np.nan, np.nan, np.inf, 0.5])
    with pytest.raises(EvaluationError, match="predictions .* contain 1 NaN"):
        regression_metrics([1.0, 2.0], [1.0, np.nan])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(EvaluationError, match="labels .* must be 0/1; 1 rows are not"):
        binary_metrics([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(EvaluationError, match="labels .* are not numeric"):
        binary_metrics(["yes", "no"], [0.1, 0.2])
    with pytest.raises(EvaluationError, match="lengths differ"):
        binary_metrics([0, 1, 1], [0.1, 0.2])
    with pytest.raises(EvaluationError, match="no rows"):
        regression_metrics([], [])
    with pytest.raises(EvaluationError, match="1 rows .* have no entity id"):
        binary_metrics([0, 1, 1], [0.1, 0.2, 0.3], groups=["a", None, "b"])
    with pytest.raises(EvaluationError, match="ks must be positive"):
        binary_metrics([0, 1], [0.1, 0.2], groups=["a", "a"], ks=(0,))


def test_regression_metrics_known_example():
    targets, predictions = [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]
    metrics = regression_metrics(targets, predictions)
    # squared errors 0,0,0,1; total sum of squares around 2.5 is 5
    assert metrics == pytest.approx(
        {
            "r2": 0.8,
            "rmse": 0.5,
            "mae": 0.25,
            "mean_target": 2.5,
            "mean_prediction": 2.75,
            "rows": 4.0,
        }
    )
    assert metrics["r2"] == pytest.approx(r2_score(targets, predictions))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(targets, predictions))


def test_calibration_table_quantile_bins():
    scores = np.arange(1, 11) / 10  # 0.1 .. 1.0
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 0, 1, 1])
    table = calibration_table(labels, scores, bins=2)
    assert list(table.columns) == ["bin", "count", "mean_score", "positive_rate"]
    assert table["count"].tolist() == [5, 5]
    assert table["mean_score"].tolist() == pytest.approx([0.3, 0.8])
    assert table["positive_rate"].tolist() == pytest.approx([0.2, 0.8])


def test_calibration_table_tied_scores_and_margins():
    table = calibration_table([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], bins=10)
    assert table["count"].tolist() == [4]
    assert table["positive_rate"].tolist() == [0.5]
    with pytest.raises(EvaluationError, match="not probabilities"):
        calibration_table([0, 1], [-1.0, 2.0])


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


@pytest.mark.parametrize(
    "make",
    [
        lambda y, s, t, p: plots.roc_curve_figure(y, s, title_suffix="test"),
        lambda y, s, t, p: plots.precision_recall_figure(y, s),
        lambda y, s, t, p: plots.calibration_figure(y, s, bins=10),
        lambda y, s, t, p: plots.importance_figure({"a": 2.0, "b": -3.0, "c": 0.5}, "weights"),
        lambda y, s, t, p: plots.importance_figure({}, "no weights"),
        lambda y, s, t, p: plots.predicted_vs_actual_figure(t, p),
        lambda y, s, t, p: plots.residuals_figure(t, p),
    ],
    ids=["roc", "pr", "calibration", "importance", "importance-empty", "pred-vs-actual", "resid"],
)
def test_plots_save_png(make, binary_data, tmp_path):
    labels, scores, _ = binary_data
    targets = np.linspace(0, 10, 30_000)  # more rows than a scatter keeps
    predictions = targets + np.sin(targets)
    figure = make(labels, scores, targets, predictions)
    assert isinstance(figure, Figure)
    assert figure.axes[0].get_title()
    path = plots.save_png(figure, tmp_path / "sub" / "plot.png")
    assert _png_size(path) == (800, 600)


def test_importance_figure_sorts_by_absolute_value_and_keeps_top():
    figure = plots.importance_figure({"small": 0.1, "neg": -5.0, "pos": 3.0, "tiny": 0.01}, "w", 3)
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels == ["small", "pos", "neg"]  # barh draws bottom-up: largest last


def test_curves_are_thinned_for_large_inputs():
    rng = np.random.default_rng(0)
    scores = rng.random(200_000)
    labels = (rng.random(200_000) < scores).astype(int)
    roc = plots.roc_curve_figure(labels, scores)
    assert len(roc.axes[0].lines[0].get_xdata()) <= plots.MAX_CURVE_POINTS
    pr = plots.precision_recall_figure(labels, scores)
    assert len(pr.axes[0].lines[0].get_xdata()) <= plots.MAX_CURVE_POINTS
    assert (
        f"AUC = {roc_auc_score(labels, scores):.4f}"
        in roc.axes[0].get_legend_handles_labels()[1][0]
    )


def test_plots_reject_single_class():
    with pytest.raises(EvaluationError, match="only negatives"):
        plots.roc_curve_figure([0, 0], [0.1, 0.2])
