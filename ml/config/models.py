"""The model config: pydantic models of ``configs/<model>/<version>.json``.

Every field carries a description; ``rtml config schema`` turns these models into
``configs/schema.json``. Single-field rules (types, ranges, unknown keys) live
here; rules that relate fields to each other live in :mod:`ml.config.checks`, so
each problem can be reported at its own JSON path.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

CONFIG_VERSION = 1
LEARNED_NUMERIC = ("min", "max", "median", "mean")
LEARNED_CATEGORICAL = ("mode",)
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _number_string_or_null(value: Any) -> Any:
    # Checked up front so a wrong type is one clear error, not one per union member.
    if (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int | float) and not isinstance(value, bool))
    ):
        return value
    raise ValueError(f"expected a number, a string or null, found {value!r}")


DefaultValue = Annotated[float | str | None, BeforeValidator(_number_string_or_null)]


class Buckets(StrictModel):
    """Bucket boundaries, given or learned; give exactly one of ``edges`` and ``quantiles``."""

    edges: list[float] | None = Field(
        None,
        description="Explicit, strictly increasing boundaries. Value v falls in bucket i when "
        "edges[i-1] <= v < edges[i]; below the first edge is bucket 0.",
    )
    quantiles: int | None = Field(
        None,
        ge=2,
        le=1000,
        description="Learn boundaries at this many quantiles of the training window "
        "(duplicates collapse, so skewed columns may get fewer buckets).",
    )


class Feature(StrictModel):
    """One model input, computed from one raw column."""

    name: str = Field(pattern=NAME_PATTERN, description="Feature name, unique in the config.")
    column: str | None = Field(
        None, description="Raw column the feature reads; defaults to the feature's name."
    )
    type: Literal["numeric", "categorical"] = Field(description="How the raw values are read.")
    default: DefaultValue = Field(
        None,
        description="Value used where the raw value is missing. A constant, or a statistic "
        "learned from the training window: 'min', 'max', 'median', 'mean' (numeric) or "
        "'mode' (categorical). null keeps missing values missing (NaN for XGBoost, absent "
        "for VW; a categorical gets its own '__missing__' level).",
    )
    buckets: Buckets | None = Field(
        None, description="Numeric only: replace the value by its bucket (one indicator each)."
    )
    cross_only: bool = Field(
        False,
        description="Use the feature only inside crosses, never on its own (no linear weight "
        "in VW, no column of its own for XGBoost).",
    )
    namespace: str | None = Field(
        None,
        description="VW namespace of the feature. Namespaces are told apart by their first "
        "letter. Defaults to 'n' for numeric and 'c' for categorical features.",
    )
    max_levels: int = Field(
        1000,
        ge=1,
        description="Categorical only: keep at most this many of the most frequent training "
        "levels; the rest become 'other'.",
    )
    min_count: int = Field(
        1, ge=1, description="Categorical only: levels seen fewer times in training are 'other'."
    )

    @property
    def source_column(self) -> str:
        return self.column or self.name


class Cross(StrictModel):
    """A quadratic feature: the product of two features.

    numeric x numeric gives their product; a bucketed or categorical side gives one
    indicator per pair of levels seen in training (numeric x categorical: the
    numeric value per level).
    """

    features: list[str] = Field(
        min_length=2, max_length=2, description="The names of the two features to cross."
    )
    name: str | None = Field(
        None, pattern=NAME_PATTERN, description="Name of the cross; defaults to 'a_x_b'."
    )
    namespace: str = Field("x", description="VW namespace the crossed features are written to.")
    max_levels: int = Field(
        10_000, ge=1, description="Keep at most this many of the most frequent training pairs."
    )

    @property
    def cross_name(self) -> str:
        return self.name or "_x_".join(self.features)


class Source(StrictModel):
    """Where the data comes from; give exactly one of ``url`` and ``dsn_env``."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL without a password (e.g. sqlite:///var/demo.db, "
        "postgresql://reader@db/lending, snowflake://...). Put URLs with credentials in an "
        "environment variable and name it in dsn_env.",
    )
    dsn_env: str | None = Field(
        None, description="Name of the environment variable that holds the URL."
    )


class Window(StrictModel):
    start: date = Field(description="First day included (YYYY-MM-DD).")
    end: date = Field(description="First day not included (YYYY-MM-DD).")


class RelativeWindows(StrictModel):
    """Windows counted back from a day, for daily retraining."""

    as_of: str = Field(
        "today", description="'today' or a day YYYY-MM-DD: the test window ends there."
    )
    test_days: int = Field(ge=1, description="Length of the test window in days.")
    train_days: int = Field(ge=1, description="Length of the train window before it, in days.")
    gap_days: int = Field(0, ge=0, description="Days left out between train and test windows.")


class Windows(StrictModel):
    """Train/test split by time: absolute ``train`` and ``test``, or ``relative``."""

    time_column: str = Field(description="Column whose value places a row in a window.")
    train: Window | None = Field(None, description="Absolute training window.")
    test: Window | None = Field(None, description="Absolute test window.")
    relative: RelativeWindows | None = Field(None, description="Windows relative to a day.")


class XGBoostOptions(StrictModel):
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Booster parameters passed to xgboost.train (eta, max_depth, ...). The "
        "objective follows from the task and the --algorithm flag.",
    )
    num_boost_round: int = Field(200, ge=1, description="Maximum boosting rounds.")
    early_stopping_rounds: int | None = Field(
        20, ge=1, description="Stop when the test metric has not improved for this many rounds."
    )


class VWOptions(StrictModel):
    flags: list[str] = Field(
        default_factory=list,
        description="Extra VW command-line arguments, e.g. ['--l2', '1e-6', '-b', '24']. "
        "Data, model and daemon flags are set by rtml and refused here.",
    )
    passes: int = Field(1, ge=1, description="Passes over the training data.")


class Label(StrictModel):
    """What the model predicts, read from one column of the training rows."""

    column: str = Field(description="Column holding the outcome (or the regression target).")
    positive: list[Any] | None = Field(
        None,
        description="binary only: the values that count as positive (e.g. [1], ['approved']); "
        "default: the column must hold 0/1 or true/false.",
    )


class Data(StrictModel):
    """How the model's rows are fetched: the training query and, for serving, candidates.

    A model subclass may compute any of these in code instead (``query()``,
    ``label()``, ``candidates_query()``); the config is the default.
    """

    query: str | None = Field(
        None,
        description="SQL returning the training rows of one window: use :start and :end, "
        "e.g. WHERE submitted_at >= :start AND submitted_at < :end.",
    )
    label: Label | None = Field(None, description="The outcome column.")
    entity_column: str | None = Field(
        None,
        description="Column identifying who a prediction is for (e.g. business_id): ranking "
        "metrics group by it and the service takes it as entity_id.",
    )
    item_column: str | None = Field(
        None, description="Column identifying what is ranked for an entity (e.g. product_id)."
    )
    candidates_query: str | None = Field(
        None,
        description="SQL returning one entity's candidate rows at serving time, with the "
        "same columns as the training query (before prepare); use :entity_id.",
    )


class Promotion(StrictModel):
    """How a new version is promoted by ``rtml retrain`` and gated by ``--if-better``."""

    policy: Literal["challenger", "champion_if_better"] = Field(
        "challenger",
        description="challenger: a retrained version becomes @challenger and people decide; "
        "champion_if_better: it becomes @champion when it beats the champion on the same "
        "recent test window by the margin, else @challenger.",
    )
    margin: float = Field(
        0.0,
        ge=0,
        description="How much better (test AUC for binary, R² for regression, on the "
        "candidate's test window) a candidate must be to replace the champion.",
    )
    framework: str = Field("xgboost", description="What rtml retrain trains with.")
    algorithm: str | None = Field(
        None, description="rtml retrain's algorithm; default: the framework's first for the task."
    )


class Selection(StrictModel):
    """Feature selection for ``rtml select``: which features may be left out, and how to judge.

    Features are grouped; a combination uses some groups (features in no group are
    always used). Either list ``combinations`` to evaluate each once, or leave it out to
    search every group in/out (plus, optionally, alternative ``buckets``) with Optuna.
    """

    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Group name -> the features it holds. A feature is in at most one group; "
        "features in no group are in every combination.",
    )
    combinations: list[list[str]] | None = Field(
        None,
        description="Explicit combinations, each a list of group names; each is evaluated "
        "once. Leave out to search the space of every group in or out.",
    )
    buckets: dict[str, list[Buckets | None]] = Field(
        default_factory=dict,
        description="Search only: alternative buckets per numeric feature (null = the raw "
        "value). The feature's configured buckets are always a choice too.",
    )
    metric: str | None = Field(
        None,
        description="What to optimise: a test-window metric rtml train logs, e.g. test_auc, "
        "test_log_loss, test_precision_at_1, test_r2, or a test_ metric of the model's "
        "evaluate(). Default: test_auc (binary) or test_r2 (regression).",
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None,
        description="Default: minimize for losses and errors (log_loss, rmse, mae), "
        "maximize otherwise.",
    )
    trials: int | None = Field(
        None,
        ge=1,
        description="Trials the study should hold when done (a rerun continues up to this). "
        "Default: 30, or the number of combinations.",
    )
    timeout_seconds: float | None = Field(
        None, gt=0, description="Stop starting new trials after this many seconds."
    )


class ModelConfig(StrictModel):
    """A model version: data, features, and framework options."""

    config_version: int = Field(
        CONFIG_VERSION, ge=1, description="Format version of this file; older ones are upgraded."
    )
    name: str = Field(pattern=NAME_PATTERN, description="Model name (the configs/ folder name).")
    description: str = Field("", description="What the model predicts, for people.")
    task: Literal["binary", "regression"] = Field(description="binary (AUC) or regression (R²).")
    model_class: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="Import path of the model's Python subclass, 'package.module:ClassName'.",
    )
    source: Source = Field(description="The database the data comes from.")
    data: Data = Field(default_factory=Data, description="Queries and the label column.")
    windows: Windows = Field(description="Train and test time windows.")
    features: list[Feature] = Field(min_length=1, description="The model's features.")
    crosses: list[Cross] = Field(default_factory=list, description="Quadratic features.")
    xgboost: XGBoostOptions = Field(default_factory=XGBoostOptions, description="XGBoost options.")
    vw: VWOptions = Field(default_factory=VWOptions, description="Vowpal Wabbit options.")
    promotion: Promotion = Field(
        default_factory=Promotion, description="Retraining's promotion policy and gate margin."
    )
    selection: Selection | None = Field(
        None, description="Feature groups and the search that rtml select runs over them."
    )
    overrides: list[str] = Field(
        default_factory=list,
        description="Set by rtml: the --set overrides applied to produce this resolved config.",
    )

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)
