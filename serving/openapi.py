"""The OpenAPI 3 document of the service, served at ``GET /openapi.json``.

Written by hand next to the code it describes, and checked against the real
service by a generated-request test (tests/serving/test_schema_fuzz.py): every
documented status and body shape must be what the service really returns.
"""

from __future__ import annotations

from typing import Any

import ml
from serving.bodies import INT64, MAX_ID_LENGTH, MAX_OVERRIDES
from serving.infer_body import DATATYPES
from serving.settings import Settings

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Malformed JSON: not UTF-8, bad syntax, nested too deeply, an integer with too "
        "many digits, or a string with a lone UTF-16 surrogate escape",
        401: "Missing or unknown API key",
        403: "The API key may not use this model",
        404: "Unknown model or version; for rank, also an entity with no candidates or "
        "none of the requested ones",
        405: "Method not allowed",
        413: "Body larger than the limit",
        422: "The body is JSON but not what the endpoint takes (or, for rank, an entity id "
        "the database cannot compare with its ids); error.field names where",
        503: "A database or VW daemon is down or slow; retry after Retry-After seconds",
    }
    headers = {
        401: {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
        503: {"Retry-After": {"schema": {"type": "integer", "minimum": 0}, "required": True}},
    }
    responses = {str(s): _json(_ref("Error"), text[s]) for s in statuses}
    for status, header in headers.items():
        if status in statuses:
            responses[str(status)]["headers"] = header
    return responses


ID = {
    "oneOf": [
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
            "pattern": "^[^\\u0000]*$",  # no NUL: no database takes it
        },
        {"type": "integer", "minimum": INT64[0], "maximum": INT64[1]},
    ]
}
# An empty name or version is another URL (a 404, or Werkzeug's redirect for "//").
NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "description": "A model this host serves (GET /models lists them); any other is a 404",
    "schema": {"type": "string", "minLength": 1},
}
VERSION = {
    "name": "version",
    "in": "path",
    "required": True,
    "description": "A registry version number this host serves; any other is a 404",
    "schema": {"type": "string", "minLength": 1},
}


def openapi_document(settings: Settings) -> dict[str, Any]:
    # With no key configured the service runs open: no credentials, and never 401/403.
    keyed = bool(settings.api_keys) or settings.api_keys_file is not None
    auth = (401, 403) if keyed else ()
    model_call = (*auth, 404)
    body_call = (400, *auth, 404, 413, 422)
    rank_body = {
        "required": True,
        "content": {JSON: {"schema": _ref("RankRequest")}},
    }
    infer_body = {"required": True, "content": {JSON: {"schema": _ref("InferRequest")}}}
    rank_responses = {
        "200": _json(_ref("RankResponse"), "The entity's candidates, best first"),
        **_errors(*body_call, 503),
    }
    infer_responses = {
        "200": _json(_ref("InferResponse"), "One score per row"),
        **_errors(*body_call, 503),
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "rtml prediction service",
            "version": ml.__version__,
            "description": "Ranked recommendations for one entity, and raw-row inference "
            "(Open Inference Protocol v2). Every response carries X-Request-ID (the "
            "request's own, if it sent a valid one). "
            + (
                "Send Authorization: Bearer <key>."
                if keyed
                else "This service runs open: no API key is configured."
            ),
        },
        "security": [{"bearer": []}] if keyed else [],
        "paths": {
            "/models/{name}/rank": {
                "post": {
                    "summary": "Rank an entity's candidates with the version its A/B split "
                    "picks (sticky per entity id)",
                    "parameters": [NAME],
                    "requestBody": rank_body,
                    "responses": rank_responses,
                }
            },
            "/models/{name}/versions/{version}/rank": {
                "post": {
                    "summary": "Rank with one version",
                    "parameters": [NAME, VERSION],
                    "requestBody": rank_body,
                    "responses": rank_responses,
                }
            },
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "Score raw rows with the @champion version (else the alias with the "
                    "largest traffic share, else the newest version)",
                    "parameters": [NAME],
                    "requestBody": infer_body,
                    "responses": infer_responses,
                }
            },
            "/v2/models/{name}/versions/{version}/infer": {
                "post": {
                    "summary": "Score raw rows with one version",
                    "parameters": [NAME, VERSION],
                    "requestBody": infer_body,
                    "responses": infer_responses,
                }
            },
            "/v2/models/{name}": {
                "get": {
                    "summary": "Model metadata (the @champion version's inputs)",
                    "parameters": [NAME],
                    "responses": {
                        "200": _json(_ref("ModelMetadata"), "Inputs and outputs"),
                        **_errors(*model_call),
                    },
                }
            },
            "/v2/models/{name}/versions/{version}": {
                "get": {
                    "summary": "Version metadata",
                    "parameters": [NAME, VERSION],
                    "responses": {
                        "200": _json(_ref("ModelMetadata"), "Inputs and outputs"),
                        **_errors(*model_call),
                    },
                }
            },
            "/v2/models/{name}/ready": {
                "get": {
                    "summary": "Whether the model is loaded",
                    "parameters": [NAME],
                    "responses": {
                        "200": _json(_ref("Ready"), "Loaded"),
                        **_errors(*model_call),
                    },
                }
            },
            "/v2/models/{name}/versions/{version}/ready": {
                "get": {
                    "summary": "Whether the version is loaded",
                    "parameters": [NAME, VERSION],
                    "responses": {
                        "200": _json(_ref("Ready"), "Loaded"),
                        **_errors(*model_call),
                    },
                }
            },
            "/v2/health/live": {
                "get": {
                    "summary": "The process answers",
                    "security": [],
                    "responses": {"200": _json(_ref("Live"), "Live")},
                }
            },
            "/v2/health/ready": {
                "get": {
                    "summary": "Models are loaded",
                    "security": [],
                    "responses": {"200": _json(_ref("Ready"), "Ready"), **_errors(503)},
                }
            },
            "/v2": {
                "get": {
                    "summary": "Server metadata",
                    "security": [],
                    "responses": {"200": _json(_ref("ServerMetadata"), "Server")},
                }
            },
            "/models": {
                "get": {
                    "summary": "What this host serves: versions, aliases, traffic, load times",
                    "responses": {
                        "200": _json(_ref("Models"), "Loaded models"),
                        **_errors(*auth[:1]),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3")},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(settings),
        },
    }


def _schemas(settings: Settings) -> dict[str, Any]:
    value = {"nullable": True, "oneOf": [{"type": "number"}, {"type": "string"},
                                         {"type": "boolean"}]}  # fmt: skip
    string_list = {"type": "array", "items": {"type": "string"}}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "hint": {"type": "string"},
                        "field": {"type": "string"},
                    },
                },
                "request_id": {"type": "string"},
            },
        },
        "RankRequest": {
            "type": "object",
            "required": ["entity_id"],
            "additionalProperties": False,
            "properties": {
                "entity_id": ID,
                "top_k": {
                    "type": "integer",
                    "nullable": True,
                    "minimum": 1,
                    "maximum": settings.max_top_k,
                    "description": "At most this many items (null or absent: all candidates)",
                },
                "candidates": {
                    "type": "array",
                    "nullable": True,
                    "description": "Rank only these of the entity's candidates (compared as "
                    'text: 7 matches "7"); a 404 if none of them is a candidate',
                    "items": ID,
                    "minItems": 1,
                    "maxItems": settings.max_candidates,
                },
                "features": {
                    "type": "object",
                    "nullable": True,
                    "description": "Raw input values that replace the fetched ones for every "
                    "candidate (null = missing: the feature's default applies). Keys are the "
                    "model's input columns (GET /v2/models/{name} lists them); a number for a "
                    "numeric column, a boolean for a boolean one, a string otherwise: anything "
                    "else is a 422",
                    "maxProperties": MAX_OVERRIDES,
                    "additionalProperties": value,
                },
            },
        },
        "RankResponse": {
            "type": "object",
            "required": [
                "model",
                "version",
                "alias",
                "run_id",
                "model_updated_at",
                "request_id",
                "items",
            ],  # fmt: skip
            "properties": {
                "model": {"type": "string"},
                "version": {"type": "string"},
                "alias": {"type": "string", "nullable": True},
                "run_id": {"type": "string", "nullable": True},
                "model_updated_at": {"type": "string"},
                "request_id": {"type": "string"},
                "entity_id": ID,
                "items": {"type": "array", "items": _ref("Item")},
            },
        },
        "Item": {
            "type": "object",
            "required": ["id", "score", "rank", "features", "defaulted"],
            "properties": {
                "id": {"nullable": True},
                "score": {"type": "number"},
                "rank": {"type": "integer", "minimum": 1},
                "features": {"type": "object", "additionalProperties": value},
                "defaulted": string_list,
            },
        },
        "Tensor": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "shape": {
                    "type": "array",
                    "description": "[rows] or [rows, 1]; rows equal in every input",
                    "items": {"type": "integer", "minimum": 0},
                    "minItems": 1,
                    "maxItems": 2,
                },
                "datatype": {
                    "type": "string",
                    "enum": sorted(DATATYPES),
                    "description": "BYTES for a text column, a numeric type otherwise",
                },
                "data": {
                    "type": "array",
                    "description": "One value (or [value]) per row: numbers (BOOL: booleans) "
                    "or, for BYTES, strings; null is a missing value",
                },
                "parameters": {"type": "object", "nullable": True},
            },
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "nullable": True},
                "parameters": {"type": "object", "nullable": True},
                "inputs": {
                    "type": "array",
                    "minItems": 1,
                    "items": _ref("Tensor"),
                    "description": "One tensor per input column of the model",
                },
                "outputs": {
                    "type": "array",
                    "nullable": True,
                    "items": {"type": "object"},
                    "description": "Ignored: the one output is always score",
                },
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": _ref("Tensor")},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "versions", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": string_list,
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"type": "object"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
            },
        },
        "Ready": {
            "type": "object",
            "required": ["ready"],
            "properties": {
                "ready": {"type": "boolean"},
                "name": {"type": "string"},
                "version": {"type": "string"},
            },  # fmt: skip
        },
        "Live": {
            "type": "object",
            "required": ["live"],
            "properties": {"live": {"type": "boolean"}},
        },
        "ServerMetadata": {
            "type": "object",
            "required": ["name", "version", "extensions"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": string_list,
            },
        },
        "Models": {
            "type": "object",
            "required": ["models"],
            "properties": {
                "manifest_written_at": {"type": "string"},
                "started_at": {"type": "string"},
                "models": {"type": "array", "items": {"type": "object"}},
            },
        },
    }
