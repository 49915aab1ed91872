"""The Open Inference Protocol (KServe v2) for raw rows, and the health endpoints.

``POST /v2/models/<name>[/versions/<v>]/infer`` takes one tensor per input column
(``shape`` ``[rows]`` or ``[rows, 1]``; numbers, or ``BYTES`` for text) and returns
one ``score`` tensor. Rows are the model's raw input columns (its MLflow signature),
so scores equal ``mlflow.pyfunc.load_model(...).predict(rows)``. Unversioned calls
use the ``@champion`` version (else the alias with the largest traffic share, else
the newest version served).
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

import ml
from ml.features.fitted import FeatureError
from ml.model import ModelError
from serving.errors import InvalidInput, NotFound, Unavailable
from serving.infer_body import parse_infer
from serving.pool import LoadedModel, LoadedVersion
from serving.state import authorize, current, json_body

blueprint = Blueprint("inference", __name__)


@blueprint.get("/v2/health/live")
def live() -> ResponseReturnValue:
    return jsonify({"live": True})


@blueprint.get("/v2/health/ready")
def ready() -> ResponseReturnValue:
    if not current().pool.table.models:
        raise Unavailable("no model is loaded")
    return jsonify({"ready": True})


@blueprint.get("/v2")
def server_metadata() -> ResponseReturnValue:
    return jsonify({"name": "rtml", "version": ml.__version__, "extensions": []})


@blueprint.get("/v2/models/<name>")
def model_metadata(name: str) -> ResponseReturnValue:
    model = authorize(name).pool.table.model(name)
    return jsonify(_metadata(model, default_version(model)))


@blueprint.get("/v2/models/<name>/versions/<version>")
def version_metadata(name: str, version: str) -> ResponseReturnValue:
    model = authorize(name).pool.table.model(name)
    return jsonify(_metadata(model, model.version(version)))


@blueprint.get("/v2/models/<name>/ready")
def model_ready(name: str) -> ResponseReturnValue:
    model = authorize(name).pool.table.model(name)
    return jsonify({"name": name, "ready": True, "version": default_version(model).version})


@blueprint.get("/v2/models/<name>/versions/<version>/ready")
def version_ready(name: str, version: str) -> ResponseReturnValue:
    loaded = authorize(name).pool.table.model(name).version(version)
    return jsonify({"name": name, "version": loaded.version, "ready": True})


@blueprint.post("/v2/models/<name>/infer")
def infer_default(name: str) -> ResponseReturnValue:
    model = authorize(name).pool.table.model(name)
    return _infer(default_version(model))


@blueprint.post("/v2/models/<name>/versions/<version>/infer")
def infer_version(name: str, version: str) -> ResponseReturnValue:
    return _infer(authorize(name).pool.table.model(name).version(version))


def default_version(model: LoadedModel) -> LoadedVersion:
    if "champion" in model.aliases:
        return model.version(model.aliases["champion"])
    if model.traffic:
        alias = max(sorted(model.traffic), key=lambda a: model.traffic[a])
        return model.version(model.aliases[alias])
    if not model.versions:
        raise NotFound(f"model {model.name!r} has no version on this host")
    return model.versions[max(model.versions, key=int)]


def _infer(loaded: LoadedVersion) -> ResponseReturnValue:
    settings = current().settings
    request = parse_infer(json_body(), settings, loaded.input_types)
    try:
        _, scores = loaded.score(request.columns)
    except (FeatureError, ModelError) as exc:
        raise InvalidInput(f"the inputs cannot be scored: {exc}", field="inputs") from exc
    body = {
        "model_name": loaded.name,
        "model_version": loaded.version,
        "outputs": [
            {
                "name": "score",
                "shape": [len(scores)],
                "datatype": "FP64",
                "data": scores.tolist(),
            }
        ],
    }
    if request.id is not None:
        body["id"] = request.id
    return jsonify(body)


def _metadata(model: LoadedModel, loaded: LoadedVersion) -> dict[str, object]:
    return {
        "name": model.name,
        "versions": sorted(model.versions, key=int),
        "platform": f"rtml-{loaded.framework_name}",
        "inputs": [
            {"name": c["name"], "datatype": _datatype(c.get("type", "")), "shape": [-1]}
            for c in loaded.inputs
        ],
        "outputs": [{"name": "score", "datatype": "FP64", "shape": [-1]}],
    }


def _datatype(mlflow_type: str) -> str:
    return {
        "long": "INT64",
        "integer": "INT32",
        "double": "FP64",
        "float": "FP32",
        "boolean": "BOOL",
    }.get(mlflow_type, "BYTES")
