"""What a training framework does, whatever the library behind it.

A framework turns prepared rows into a trained model through the fitted feature
pipeline (the same one serving uses), predicts for new rows, saves itself as plain
files (no pickle) and loads back. One module per framework; heavy imports stay in
it. ``ml.frameworks.get_framework`` finds them by name.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.config.models import ModelConfig
from ml.data.cache import Cache
from ml.errors import RtmlError
from ml.features.encode import Frame
from ml.features.fitted import FittedPipeline

FRAMEWORK_FILE = "framework.json"
Matrix: TypeAlias = np.ndarray | sp.csr_matrix


class FrameworkError(RtmlError):
    """An unknown framework or algorithm, or a pair the task cannot use."""


@dataclass(frozen=True)
class Examples:
    """Prepared rows with their labels: one side (train, validation, test) of the data."""

    name: str  # "train", "validation", "test": for messages and cache descriptions
    rows: pd.DataFrame  # after the model's prepare()
    labels: np.ndarray  # float64; 0/1 for binary tasks
    weights: np.ndarray | None = None
    # What the rows are (the data key of the pull and the split); "" means do not cache
    # what a framework derives from them.
    key: str = ""

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class FitContext:
    """What a framework may use while fitting besides the data."""

    cache: Cache | None  # processed data (matrices, VW example files) is cached here
    workdir: Path  # scratch space for this run, removed afterwards
    progress: bool = True  # show progress bars


class Framework(ABC):
    """A trainable model in one library, for one algorithm."""

    name: ClassVar[str]
    # algorithm name -> one line for --help and error messages
    algorithms: ClassVar[Mapping[str, str]]
    # the algorithms each task may use
    task_algorithms: ClassVar[Mapping[str, tuple[str, ...]]]
    # True: fit() wants validation examples (early stopping); the runner then holds out
    # the latest part of the train window for it
    uses_validation: ClassVar[bool] = False

    def __init__(self, config: ModelConfig, algorithm: str, pipeline: FittedPipeline) -> None:
        self.config = config
        self.algorithm = algorithm
        self.pipeline = pipeline

    @abstractmethod
    def fit(self, train: Examples, validation: Examples | None, context: FitContext) -> None:
        """Train on ``train``; ``validation`` (if any) may drive early stopping."""

    @abstractmethod
    def predict(self, rows: Frame) -> np.ndarray:
        """Scores for prepared rows (a DataFrame or a column mapping): probabilities for
        binary tasks with a logistic link, raw predictions otherwise."""

    def predict_examples(self, examples: Examples, context: FitContext) -> np.ndarray:
        """Scores for a whole evaluation set; frameworks override this with a bulk path."""
        return self.predict(examples.rows)

    @abstractmethod
    def save_model(self, directory: Path) -> dict[str, Any]:
        """Write the trained model's files into ``directory``; return what load needs."""

    @abstractmethod
    def load_model(self, directory: Path, saved: dict[str, Any]) -> None:
        """Load what :meth:`save_model` wrote."""

    @abstractmethod
    def importance(self) -> dict[str, float]:
        """Feature importance by feature name (gain for XGBoost, weights for VW)."""

    def params(self) -> dict[str, Any]:
        """The effective training parameters, for MLflow."""
        return {}

    def info(self) -> dict[str, Any]:
        """Facts learned while fitting (best iteration, passes run), for MLflow."""
        return {}

    def close(self) -> None:  # noqa: B027 - most frameworks hold nothing to release
        pass

    # --- saving as data, not code -----------------------------------------------------

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        saved = self.save_model(directory)
        meta = {"framework": self.name, "algorithm": self.algorithm, "saved": saved}
        (directory / FRAMEWORK_FILE).write_text(json.dumps(meta, indent=1))


class MatrixFramework(Framework):
    """A framework that learns from a matrix with one column block per feature and cross.

    Feature selection builds each block once and hands a trial the columns of its
    features, in the order :meth:`matrix` would lay them out, instead of transforming
    the rows again for every combination.
    """

    @abstractmethod
    def matrix(self, rows: Frame) -> Matrix:
        """The model's input for prepared rows."""

    @abstractmethod
    def fit_matrices(
        self,
        train: Examples,
        train_matrix: Matrix,
        validation: Examples | None,
        validation_matrix: Matrix | None,
        progress: bool,
    ) -> None:
        """Train on ready-made matrices (labels and weights from the examples)."""

    @abstractmethod
    def score_matrix(self, matrix: Matrix) -> np.ndarray:
        """Scores for a matrix laid out as :meth:`matrix` lays it out."""


def read_framework_meta(directory: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((directory / FRAMEWORK_FILE).read_text())
    except FileNotFoundError as exc:
        raise FrameworkError(
            f"{directory} holds no {FRAMEWORK_FILE}", hint="is it a model saved by rtml?"
        ) from exc
    return meta
