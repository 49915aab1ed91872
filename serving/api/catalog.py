"""``GET /models`` (what this host serves) and ``GET /openapi.json`` (the API's contract)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from flask.typing import ResponseReturnValue

from serving.openapi import openapi_document
from serving.state import authorize, current

blueprint = Blueprint("catalog", __name__)


@blueprint.get("/models")
def models() -> ResponseReturnValue:
    state = authorize(None)
    table = state.pool.table
    key = g.api_key  # a key limited to some models sees only those
    visible = [m for m in table.models.values() if key is None or key.may_use(m.name)]
    return jsonify(
        {
            "manifest_written_at": table.manifest_written_at,
            "started_at": state.started_at,
            "models": [
                {
                    "name": model.name,
                    "aliases": model.aliases,
                    "traffic": model.traffic,
                    "versions": [
                        {
                            "version": v.version,
                            "aliases": v.aliases,
                            "run_id": v.run_id,
                            "framework": v.framework_name,
                            "algorithm": v.algorithm,
                            "scorer": v.scorer,
                            "model_updated_at": v.updated_at,
                            "loaded_at": v.loaded_at,
                        }
                        for v in sorted(model.versions.values(), key=lambda v: int(v.version))
                    ],
                }
                for model in sorted(visible, key=lambda m: m.name)
            ],
        }
    )


@blueprint.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document(current().settings))
