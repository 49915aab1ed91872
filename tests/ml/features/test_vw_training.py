"""VW reads rtml's lines, and a cross-only feature gets no linear weight in the trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import vowpalwabbit

from ml.features import FeaturePipeline, vw_lines, write_vw_file
from tests.ml.features.conftest import make_config, make_frame


def test_cross_only_feature_has_no_linear_weight(tmp_path: Path) -> None:
    train = make_frame(3000, seed=6)
    # The label depends on region only through its interaction with kind.
    label = ((train["region"] == "north") == (train["kind"] == "x")).astype(int)
    fitted = FeaturePipeline(make_config()).fit(train)
    data = tmp_path / "train.vw"
    write_vw_file(str(data), vw_lines(fitted, train, labels=label))
    assert sum(1 for _ in data.open()) == len(train)

    readable = tmp_path / "weights.txt"
    workspace = vowpalwabbit.Workspace(
        f"--loss_function logistic --link logistic --quiet -d {data} --invert_hash {readable}"
    )
    workspace.finish()
    weights = [line.split(":")[0] for line in readable.read_text().splitlines() if "^" in line]
    region_linear = [w for w in weights if w.startswith("r^") or "^region=" in w]
    region_crossed = [w for w in weights if w.startswith("x^region_x_kind=")]
    assert region_linear == []
    assert len(region_crossed) >= 4  # north/south x x/y (and other pairs seen)
    assert any(w.startswith("c^city=") for w in weights)  # ordinary features do get weights


def test_vw_learns_from_the_lines(tmp_path: Path) -> None:
    train, test = make_frame(4000, seed=7), make_frame(1000, seed=8)

    def label(frame):  # noqa: ANN001, ANN202 - tiny local helper
        return (frame["score"] >= 700).astype(int)  # 700 is a bucket edge: learnable exactly

    fitted = FeaturePipeline(make_config()).fit(train)
    model = tmp_path / "model.vw"
    data = tmp_path / "train.vw"
    write_vw_file(str(data), vw_lines(fitted, train, labels=label(train)))
    vowpalwabbit.Workspace(
        f"--loss_function logistic --quiet --passes 5 -c -k "
        f"--cache_file {tmp_path / 'c'} -d {data} -f {model}"
    ).finish()
    scorer = vowpalwabbit.Workspace(f"-t -i {model} --link logistic --quiet")
    scores = np.array([scorer.predict(line) for line in vw_lines(fitted, test).to_pylist()])
    scorer.finish()
    accuracy = ((scores > 0.5) == label(test).to_numpy()).mean()
    assert accuracy > 0.97
