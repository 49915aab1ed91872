"""The loaded-model table of a web worker, swappable in one assignment.

A worker loads every version the manifest lists (config, fitted pipeline, the model
subclass, the framework's model, warmed with one prediction) into a
:class:`ModelTable`. Requests read ``pool.table`` once and use that table to the end,
so replacing ``pool.table`` with a new one (the hot-swap issue) never changes a
model under a running request.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from ml.config.loading import load_config
from ml.config.models import ModelConfig
from ml.features.encode import Frame
from ml.features.fitted import FittedPipeline
from ml.frameworks import load_framework
from ml.model import Model, create_model
from ml.pyfunc import CONFIG_FILE, FRAMEWORK_DIR, PIPELINE_FILE
from serving.columns import as_arrays
from serving.errors import NotFound
from serving.manifest import Manifest, ModelEntry, VersionEntry, bundle_dir
from serving.vw_client import DaemonPredictor, VWDaemonClient

log = logging.getLogger(__name__)


class Predictor(Protocol):
    def predict(self, rows: Frame) -> np.ndarray: ...


@dataclass
class LoadedVersion:
    name: str
    version: str
    run_id: str | None
    updated_at: str
    loaded_at: str
    framework_name: str
    algorithm: str
    scorer: str  # "xgboost", "vw-daemon", "vw-inprocess": how scores are computed
    config: ModelConfig
    pipeline: FittedPipeline
    model: Model
    predictor: Predictor
    inputs: list[dict[str, Any]]  # the MLflow signature's input columns
    aliases: list[str] = field(default_factory=list)

    @cached_property
    def input_types(self) -> dict[str, str]:
        """Raw input column -> its MLflow type ("double", "long", "string", ...)."""
        return {column["name"]: column.get("type", "") for column in self.inputs}

    @property
    def array_path(self) -> bool:
        """True when the model derives its columns in ``derive`` (``prepare`` not overridden):
        a request's rows then stay plain arrays, with no DataFrame built."""
        return type(self.model).prepare is Model.prepare

    def score(self, rows: Frame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(prepared columns, scores): the model's derived columns, then one predict call.

        For a request's tens of rows the pipeline reads plain arrays several times faster
        than DataFrame columns, so prepared rows go on as arrays either way.
        """
        if self.array_path:
            arrays = as_arrays(rows)
            arrays.update(self.model.derive(arrays))
        else:
            frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
            arrays = as_arrays(self.model.prepare(frame))
        return arrays, self.predictor.predict(arrays)


@dataclass
class LoadedModel:
    name: str
    versions: dict[str, LoadedVersion]
    aliases: dict[str, str]  # alias -> version
    traffic: dict[str, int]  # alias -> weight

    def version(self, version: str) -> LoadedVersion:
        found = self.versions.get(version)
        if found is None:
            served = ", ".join(sorted(self.versions, key=int)) or "none"
            raise NotFound(
                f"model {self.name!r} has no version {version!r} on this host",
                hint=f"versions served: {served}; GET /models lists them",
            )
        return found


@dataclass
class ModelTable:
    models: dict[str, LoadedModel]
    manifest_written_at: str = ""

    def model(self, name: str) -> LoadedModel:
        found = self.models.get(name)
        if found is None:
            raise NotFound(
                f"no model {name!r} on this host",
                hint=f"models served: {', '.join(sorted(self.models)) or 'none'}",
            )
        return found


class ModelPool:
    """Holds the current table; a swap is one reference assignment (atomic in Python)."""

    def __init__(self, table: ModelTable) -> None:
        self.table = table

    def swap(self, table: ModelTable) -> ModelTable:
        old, self.table = self.table, table
        return old


def load_table(manifest: Manifest, vw_inprocess: frozenset[str] = frozenset()) -> ModelTable:
    """Load and warm every version in the manifest."""
    models = {}
    for name, entry in manifest.models.items():
        versions = {
            v: load_version(name, item, entry, vw_inprocess) for v, item in entry.versions.items()
        }
        models[name] = LoadedModel(name, versions, dict(entry.aliases), dict(entry.traffic))
    return ModelTable(models, manifest.written_at)


def load_version(
    name: str, item: VersionEntry, entry: ModelEntry, vw_inprocess: frozenset[str]
) -> LoadedVersion:
    started = time.perf_counter()
    bundle = bundle_dir(item.path)
    config = load_config(bundle / CONFIG_FILE)
    pipeline = FittedPipeline.from_json((bundle / PIPELINE_FILE).read_text())
    framework = load_framework(bundle / FRAMEWORK_DIR, config, pipeline)
    predictor: Predictor = framework
    scorer = framework.name
    if framework.name == "vw":
        if item.vw_port is not None and name not in vw_inprocess:
            # A short wait for a restarting daemon (about 0.5 s): a sync worker waiting
            # longer would hold the whole host's capacity while the daemon is down.
            client = VWDaemonClient("127.0.0.1", item.vw_port, wait_for_restart=3.0)
            predictor = DaemonPredictor(framework, client)
            scorer = "vw-daemon"
        else:
            scorer = "vw-inprocess"
    loaded = LoadedVersion(
        name=name,
        version=item.version,
        run_id=item.run_id,
        updated_at=item.updated_at,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        framework_name=framework.name,
        algorithm=item.algorithm,
        scorer=scorer,
        config=config,
        pipeline=pipeline,
        model=create_model(config),
        predictor=predictor,
        inputs=signature_inputs(Path(item.path) / "model"),
        aliases=sorted(a for a, v in entry.aliases.items() if v == item.version),
    )
    _warm(loaded, Path(item.path) / "model")
    log.info(
        "loaded %s version %s (%s) in %.2f s",
        name,
        item.version,
        scorer,
        time.perf_counter() - started,
    )
    return loaded


def signature_inputs(model_dir: Path) -> list[dict[str, Any]]:
    """The input columns of the logged MLflow signature: [{name, type, required}]."""
    try:
        meta = yaml.safe_load((model_dir / "MLmodel").read_text())
        return list(json.loads(meta["signature"]["inputs"]))
    except (OSError, KeyError, TypeError, ValueError):
        return []


def _warm(loaded: LoadedVersion, model_dir: Path) -> None:
    """Score the model's own input example once: first-call costs are paid before traffic."""
    example = model_dir / "input_example.json"
    if not example.exists():
        return
    data = json.loads(example.read_text())
    frame = pd.DataFrame(data["data"], columns=data["columns"])
    loaded.score(frame)
