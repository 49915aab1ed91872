"""The class a model subclasses: how its data is fetched, labelled, prepared and judged.

Everything has a default from the config (``data.query``, ``data.label``,
``data.candidates_query``), so the smallest model is a config plus::

    class LenderMatch(Model):
        pass

and a model with logic overrides only what it needs::

    class FundedAmount(Model):
        def label(self, rows):
            return rows["funded_amount"].fillna(0.0)

        def derive(self, columns):
            return {"debt_to_revenue": columns["existing_debt"] / columns["annual_revenue"]}

``derive`` (numpy arrays in, new numpy arrays out) runs on training rows, through
the default ``prepare``, and on one request's rows in serving, straight on the
arrays with no DataFrame (design decision 1), so it must be a pure function of the
rows it is given (plus what :meth:`model_state` learned from the training window).
A model that needs pandas overrides ``prepare`` instead; serving then builds a
DataFrame per request, which costs about a millisecond.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.config.models import ModelConfig
from ml.data.windows import TimeWindow
from ml.errors import RtmlError


class ModelError(RtmlError):
    """A model subclass or its config cannot do what training or serving asks."""


@dataclass
class Evaluation:
    """What a custom evaluation adds to a run: metrics, tables and figures."""

    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # name -> matplotlib Figure, logged as <name>.png
    figures: dict[str, Any] = field(default_factory=dict)


class FrameColumns(Mapping[str, np.ndarray]):
    """A DataFrame's columns as numpy arrays, converted when read (for :meth:`Model.derive`)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __getitem__(self, name: str) -> np.ndarray:
        return self.frame[name].to_numpy()

    def __iter__(self) -> Iterator[str]:
        return iter(map(str, self.frame.columns))

    def __len__(self) -> int:
        return len(self.frame.columns)


class Model:
    """Base class of every model; subclass it in ``ml/models/<name>.py`` (or anywhere)."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    # --- training data -----------------------------------------------------------------

    def query(self, window: TimeWindow) -> str:
        """SQL returning the rows of ``window``; rtml passes ``:start`` and ``:end``."""
        if self.config.data.query is None:
            raise ModelError(
                f"{self.config.name} has no training query",
                hint="set data.query in the config or override query() in the model class",
            )
        return self.config.data.query

    def label(self, rows: pd.DataFrame) -> pd.Series:
        """The outcome per row: 0/1 for binary tasks, a number for regression."""
        spec = self.config.data.label
        if spec is None:
            raise ModelError(
                f"{self.config.name} has no label",
                hint="set data.label.column in the config or override label() in the model class",
            )
        if spec.column not in rows.columns:
            raise ModelError(
                f"the label column {spec.column!r} (data.label.column) is not in the rows",
                hint="select it in the training query",
            )
        values = rows[spec.column]
        if self.config.task == "binary" and spec.positive is not None:
            return values.isin(spec.positive).astype("float64")
        return values

    def weight(self, rows: pd.DataFrame) -> pd.Series | None:
        """Optional example weights (None: every row counts once)."""
        return None

    def derive(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """New columns computed from the raw ones, vectorised: name -> array, one value per row.

        ``columns`` maps each raw column to a numpy array (numbers as float64 or int64,
        text as an object array, missing as NaN or None). The default :meth:`prepare`
        adds what this returns to the training rows; serving calls it on a request's
        arrays directly.
        """
        return {}

    def prepare(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The rows with the derived columns added; runs identically in training and serving."""
        derived = self.derive(FrameColumns(rows))
        return rows.assign(**derived) if derived else rows

    def model_state(self, train: pd.DataFrame) -> dict[str, Any]:
        """JSON values learned from the (prepared) training rows, saved with the model."""
        return {}

    # --- serving ------------------------------------------------------------------------

    @property
    def entity_column(self) -> str | None:
        return self.config.data.entity_column

    @property
    def item_column(self) -> str | None:
        return self.config.data.item_column

    def candidates_query(self) -> str:
        """SQL returning one entity's candidate rows; rtml passes ``:entity_id``."""
        if self.config.data.candidates_query is None:
            raise ModelError(
                f"{self.config.name} has no candidates query",
                hint="set data.candidates_query in the config or override candidates_query()",
            )
        return self.config.data.candidates_query

    # --- evaluation ---------------------------------------------------------------------

    def evaluate(
        self, part: str, rows: pd.DataFrame, labels: np.ndarray, scores: np.ndarray
    ) -> Evaluation:
        """Custom evaluations on ``part`` ("train" or "test"): extra metrics, tables, plots."""
        return Evaluation()


def load_model_class(config: ModelConfig) -> type[Model]:
    """The subclass named by ``config.model_class`` ('package.module:ClassName')."""
    module_name, class_name = config.model_class.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"cannot import {module_name} (model_class of {config.name}): {exc}",
            hint="check model_class in the config and that the module is on the Python path",
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ModelError(
            f"{config.model_class} is not a subclass of ml.model.Model",
            hint="model_class must name a class deriving from ml.model.Model",
        )
    return cls


def create_model(config: ModelConfig) -> Model:
    return load_model_class(config)(config)
