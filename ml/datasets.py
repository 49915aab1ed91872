"""From a model and its windows to labelled, prepared examples (train, validation, test).

The model subclass says what to query and how to label and prepare; this module
pulls the windows through the cache, calls the subclass (turning its exceptions
into one clear error naming the method), checks the labels, and keys every
example set by what decides its content, so processed data can be cached.
"""

from __future__ import annotations

import inspect
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import xxhash

from ml.data.cache import Cache, cache_key
from ml.data.fetch import Pulled, pull_window
from ml.data.sources import Source
from ml.data.windows import Split, TimeWindow, resolve_windows
from ml.errors import RtmlError
from ml.frameworks.base import Examples
from ml.model import Model, ModelError

log = logging.getLogger(__name__)
T = TypeVar("T")

# The share of the train window (its latest rows) held out for early stopping.
VALIDATION_FRACTION = 0.1


@dataclass(frozen=True)
class Windows:
    split: Split
    train: Pulled
    test: Pulled


def pull_windows(
    model: Model,
    source: Source,
    *,
    cache: Cache | None,
    cache_open_windows: bool = False,
    today: date | None = None,
) -> Windows:
    """The model's train and test rows, as its query returns them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = resolve_windows(model.config.windows, today)
    for warning in caught:
        log.warning("warning: %s", warning.message)
    pulled = {}
    for label, window in (("train", split.train), ("test", split.test)):
        sql = call_model(model, "query", model.query, window)
        started = time.perf_counter()
        pulled[label] = pull_window(
            source,
            sql,
            window,
            time_column=split.time_column,
            cache=cache,
            label=label,
            cache_open_windows=cache_open_windows,
            today=today,
        )
        origin = "cache" if pulled[label].from_cache else source.description
        log.info(
            "%s window %s: %s rows from %s (%.1f s)",
            label,
            window,
            f"{len(pulled[label].frame):,}",
            origin,
            time.perf_counter() - started,
        )
    return Windows(split, pulled["train"], pulled["test"])


def examples(model: Model, name: str, pulled: Pulled, rows: pd.DataFrame | None = None) -> Examples:
    """Prepared, labelled examples from pulled rows (or a slice of them)."""
    raw = pulled.frame if rows is None else rows
    prepared = call_model(model, "prepare", model.prepare, raw)
    if not isinstance(prepared, pd.DataFrame) or len(prepared) != len(raw):
        raise ModelError(
            f"{type(model).__name__}.prepare() must return a DataFrame with one row per input "
            f"row; got {type(prepared).__name__} of length {len(prepared)} for {len(raw)} rows",
            hint="add columns in prepare(); filter rows in the query instead",
        )
    labels = check_labels(
        call_model(model, "label", model.label, prepared), model.config.task, name, model
    )
    weight = call_model(model, "weight", model.weight, prepared)
    weights = None if weight is None else np.asarray(weight, dtype=np.float64)
    key = cache_key(
        data=pulled.key,
        part=name,
        rows=len(raw),
        model_code=_source_hash(type(model)),
        labels=xxhash.xxh3_128_hexdigest(labels.tobytes()),
        weights=None if weights is None else xxhash.xxh3_128_hexdigest(weights.tobytes()),
    )
    return Examples(name, prepared.reset_index(drop=True), labels, weights, key)


@dataclass(frozen=True)
class ExampleSets:
    """What a framework fits and is judged on: train, early-stopping validation, test."""

    train: Examples
    validation: Examples | None
    test: Examples

    def rows(self) -> dict[str, int]:
        counts = {"train": len(self.train), "test": len(self.test)}
        if self.validation is not None:
            counts["validation"] = len(self.validation)
        return counts


def example_sets(model: Model, windows: Windows, *, hold_out_validation: bool) -> ExampleSets:
    """Prepared, labelled train and test examples; with ``hold_out_validation``, the latest
    part of the train window becomes the validation set (for early stopping)."""
    validation: Examples | None = None
    if hold_out_validation:
        fit_rows, tail = time_tail(windows.train, windows.split.time_column, VALIDATION_FRACTION)
        train = examples(model, "train", windows.train, fit_rows)
        validation = examples(model, "validation", windows.train, tail)
    else:
        train = examples(model, "train", windows.train)
    return ExampleSets(train, validation, examples(model, "test", windows.test))


def time_tail(
    pulled: Pulled, time_column: str, fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a window's rows into (earlier, latest ``fraction``) by time: the latest rows are
    the validation set for early stopping, as close to the test window as the train data gets."""
    frame = pulled.frame
    order = np.argsort(frame[time_column].to_numpy(), kind="stable")
    cut = int(round(len(frame) * (1 - fraction)))
    return frame.iloc[order[:cut]], frame.iloc[order[cut:]]


def check_labels(values: Any, task: str, part: str, model: Model) -> np.ndarray:
    try:
        labels = np.asarray(pd.Series(values).astype("float64"), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"the {part} labels are not numbers ({exc})",
            hint=f"{type(model).__name__}.label() must return 0/1 or numbers",
        ) from exc
    missing = int(np.isnan(labels).sum())
    if missing:
        raise ModelError(
            f"{missing:,} of {len(labels):,} {part} labels are missing",
            hint="fill or filter them in the query or in label()",
        )
    if task == "binary":
        bad = labels[(labels != 0.0) & (labels != 1.0)]
        if bad.size:
            examples = sorted(set(bad.tolist()))[:5]
            raise ModelError(
                f"the {part} labels of a binary model must be 0 or 1; found {examples}",
                hint="set data.label.positive in the config, or return 0/1 from label()",
            )
    return labels


def call_model(model: Model, method: str, function: Callable[..., T], *args: Any) -> T:
    """Call a subclass method; its exceptions become one ModelError naming it."""
    try:
        return function(*args)
    except RtmlError:
        raise
    except Exception as exc:
        where = f"{type(model).__name__}.{method}()"
        raise ModelError(
            f"{where} raised {type(exc).__name__}: {exc}",
            hint=f"fix {where} in {type(model).__module__}",
        ) from exc


def _source_hash(cls: type) -> str:
    """A hash of the model class's code, so a changed prepare()/label() misses the cache."""
    parts = []
    for klass in cls.__mro__:
        if klass.__module__.startswith("builtins"):
            continue
        try:
            parts.append(inspect.getsource(klass))
        except (OSError, TypeError):
            parts.append(f"{klass.__module__}.{klass.__qualname__}")
    return xxhash.xxh3_64_hexdigest("\n".join(parts).encode())


def window_params(split: Split) -> dict[str, str]:
    def iso(window: TimeWindow) -> tuple[str, str]:
        return window.start.isoformat(), window.end.isoformat()

    (train_start, train_end), (test_start, test_end) = iso(split.train), iso(split.test)
    return {
        "time_column": split.time_column,
        "train_start": train_start,
        "train_end": train_end,
        "test_start": test_start,
        "test_end": test_end,
    }
