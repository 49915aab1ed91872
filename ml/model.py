"""The class a model subclasses: how its data is fetched, labelled, prepared and judged.

Everything has a default from the config (``data.query``, ``data.label``,
``data.candidates_query``), so the smallest model is a config plus::

    class LenderMatch(Model):
        pass

and a model with logic overrides only what it needs::

    class FundedAmount(Model):
        def label(self, rows):
            return rows["funded_amount"].fillna(0.0)

        def prepare(self, rows):
            rows = rows.copy()
            rows["debt_to_revenue"] = rows["existing_debt"] / rows["annual_revenue"]
            return rows

``prepare`` runs on training rows and on one request's rows in serving alike
(design decision 1), so it must be a pure function of the rows it is given (plus
what :meth:`model_state` learned from the training window).
"""

from __future__ import annotations

import importlib
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

    def prepare(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Derive columns from raw ones; runs identically in training and serving."""
        return rows

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
