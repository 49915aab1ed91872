"""The bare peer of rtml's ``/v2/.../infer`` in ``bench/serve_bench.py``.

The least a Flask handler can do to serve the same XGBoost booster: parse the JSON
body, build one float32 matrix from the columns the booster was trained on, call
``Booster.inplace_predict`` (one thread, as rtml's workers) and return the scores in
the Open Inference Protocol's shape. No validation, no pipeline, no request ids.

Run under gunicorn (sync workers); the booster file comes from the environment:

    SERVE_BARE_MODEL=.../model.ubj gunicorn -w 2 -k sync --pythonpath bench serve_bare_app:app
"""

from __future__ import annotations

import json
import os

import numpy as np
import orjson
import xgboost as xgb
from flask import Flask, Response, request


def create_app(model_file: str) -> Flask:
    booster = xgb.Booster()
    booster.load_model(model_file)
    booster.set_param({"nthread": 1})
    features = list(booster.feature_names or [])
    app = Flask("serve_bare")
    # SERVE_BARE_JSON=orjson reads bodies as rtml does; the default is the json module.
    loads = orjson.loads if os.environ.get("SERVE_BARE_JSON") == "orjson" else json.loads

    @app.post("/infer")
    def infer() -> Response:
        body = loads(request.get_data())
        columns = {tensor["name"]: tensor["data"] for tensor in body["inputs"]}
        # One row per column, transposed: column-major, as the columns arrive.
        matrix = np.array([columns[name] for name in features], dtype=np.float32).T
        scores = booster.inplace_predict(matrix)
        output = {"name": "score", "shape": [len(scores)], "datatype": "FP64"}
        output["data"] = scores.astype(np.float64).tolist()
        return Response(json.dumps({"outputs": [output]}), mimetype="application/json")

    @app.get("/ready")
    def ready() -> Response:
        return Response('{"ready":true}', mimetype="application/json")

    return app


app = create_app(os.environ["SERVE_BARE_MODEL"]) if "SERVE_BARE_MODEL" in os.environ else None
