"""The Flask app as a gunicorn worker builds it, through ``app.test_client()``: ranking,
inference, routing, auth, limits and errors on the real registry, store and Postgres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from flask import Flask
from flask.testing import FlaskClient

from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from serving.auth import hash_key
from tests.serving.conftest import Served

pytestmark = pytest.mark.integration


@pytest.fixture
def app(served_app: Callable[..., Flask]) -> Flask:
    return served_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def candidate_rows(served: Served, entity_id: int) -> pd.DataFrame:
    """The entity's candidates as training reads data (bulk path), for the pyfunc."""
    config = mlflow.artifacts.load_dict("models:/lender_match/1/artifacts/rtml/config.json")
    with open_source(parse_db_url(served.database_url)) as source:
        rows = source.query(config["data"]["candidates_query"], {"entity_id": entity_id})
    # The candidates query selects NULL for the two columns that only label training rows;
    # the pyfunc's signature requires them, the model does not use them.
    rows = rows.assign(application_id=0, submitted_at=pd.Timestamp("2026-12-01"))
    # The signature was inferred from training rows (e.g. credit_score float64 there, as some
    # values are missing); MLflow enforces it strictly, so give the columns those types.
    pyfunc = mlflow.pyfunc.load_model("models:/lender_match/1")
    for column in pyfunc.metadata.get_input_schema().inputs:
        if column.type.name == "double":
            rows[column.name] = rows[column.name].astype("float64")
    return rows


def rank(client: FlaskClient, path: str, **body: Any) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.json
    return response.json


def test_rank_returns_ranked_items_with_metadata_and_features(client: FlaskClient) -> None:
    body = rank(client, "/models/lender_match/versions/1/rank", entity_id=3)
    assert (body["model"], body["version"], body["alias"]) == ("lender_match", "1", "champion")
    assert body["run_id"] and body["model_updated_at"].startswith("20") and body["request_id"]
    items = body["items"]
    assert len(items) > 10
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert [item["rank"] for item in items] == list(range(1, len(items) + 1))
    assert set(items[0]["features"]) >= {"credit_score", "credit_margin", "lender_id", "state"}
    assert len({item["id"] for item in items}) == len(items)


@pytest.mark.parametrize(("version", "tolerance"), [("1", 1e-7), ("2", 1e-6)])
def test_scores_equal_the_mlflow_pyfunc(
    client: FlaskClient, served_env: Served, version: str, tolerance: float
) -> None:
    """XGBoost exactly (float32); the VW daemon prints 6 decimals, hence 1e-6."""
    pyfunc = mlflow.pyfunc.load_model(f"models:/lender_match/{version}")
    for entity_id in (1, 77, 640):
        rows = candidate_rows(served_env, entity_id)
        expected = dict(zip(rows["product_id"], pyfunc.predict(rows), strict=True))
        items = rank(client, f"/models/lender_match/versions/{version}/rank", entity_id=entity_id)
        got = {item["id"]: item["score"] for item in items["items"]}
        assert got.keys() == expected.keys()
        assert max(abs(got[k] - expected[k]) for k in got) <= tolerance


def test_vw_in_process_scores_exactly_like_the_pyfunc(
    served_app: Callable[..., Flask], served_env: Served
) -> None:
    client = served_app(vw_mode="inprocess").test_client()
    body = rank(client, "/models/lender_match/versions/2/rank", entity_id=77)
    rows = candidate_rows(served_env, 77)
    expected = mlflow.pyfunc.load_model("models:/lender_match/2").predict(rows)
    by_id = dict(zip(rows["product_id"], expected, strict=True))
    assert all(
        item["score"] == pytest.approx(by_id[item["id"]], rel=1e-9) for item in body["items"]
    )
    assert client.get("/models").json["models"][0]["versions"][1]["scorer"] == "vw-inprocess"


def test_infer_scores_raw_rows_like_the_pyfunc(client: FlaskClient, served_env: Served) -> None:
    rows = candidate_rows(served_env, 12)
    meta = client.get("/v2/models/lender_match/versions/1").json
    inputs = []
    for column in meta["inputs"]:
        values = rows[column["name"]]
        if column["datatype"] == "BYTES":
            data: list[Any] = [None if pd.isna(v) else str(v) for v in values]
        else:
            data = [None if pd.isna(v) else float(v) for v in values]
        inputs.append(
            {
                "name": column["name"],
                "shape": [len(rows)],
                "datatype": column["datatype"],
                "data": data,
            }
        )
    response = client.post(
        "/v2/models/lender_match/versions/1/infer", json={"id": "r1", "inputs": inputs}
    )
    assert response.status_code == 200, response.json
    out = response.json
    assert (out["model_name"], out["model_version"], out["id"]) == ("lender_match", "1", "r1")
    expected = mlflow.pyfunc.load_model("models:/lender_match/1").predict(rows)
    np.testing.assert_allclose(out["outputs"][0]["data"], expected, rtol=0, atol=1e-7)
    # Unversioned: the @champion version.
    default = client.post("/v2/models/lender_match/infer", json={"inputs": inputs}).json
    assert default["model_version"] == "1"


def test_routing_is_sticky_per_entity_and_splits_traffic(client: FlaskClient) -> None:
    seen: dict[int, str] = {}
    for entity_id in range(1, 121):
        body = rank(client, "/models/lender_match/rank", entity_id=entity_id, top_k=1)
        seen[entity_id] = body["version"]
        assert body["alias"] == {"1": "champion", "2": "challenger"}[body["version"]]
    for entity_id in (5, 50, 100):  # the same entity always lands on the same version
        again = rank(client, "/models/lender_match/rank", entity_id=entity_id, top_k=1)
        assert again["version"] == seen[entity_id]
    share = sum(v == "2" for v in seen.values()) / len(seen)
    assert 0.3 < share < 0.7  # a 50/50 split


def test_top_k_candidates_and_feature_overrides(client: FlaskClient) -> None:
    path = "/models/lender_match/versions/1/rank"
    full = rank(client, path, entity_id=8)["items"]
    top = rank(client, path, entity_id=8, top_k=3)["items"]
    assert [i["id"] for i in top] == [i["id"] for i in full[:3]]
    wanted = [full[-1]["id"], full[0]["id"]]
    picked = rank(client, path, entity_id=8, candidates=wanted)["items"]
    assert [i["id"] for i in picked] == [full[0]["id"], full[-1]["id"]]
    # An override replaces the fetched value; null means missing, filled by the default.
    missing = rank(client, path, entity_id=8, features={"annual_revenue": None})["items"]
    assert all("annual_revenue" in item["defaulted"] for item in missing)
    assert "annual_revenue" not in full[0]["defaulted"]
    richer = rank(client, path, entity_id=8, features={"credit_score": 840.0})["items"]
    assert all(item["features"]["credit_score"] == 840.0 for item in richer)
    assert [i["score"] for i in richer] != [i["score"] for i in full]


def test_nan_and_infinity_in_inputs_count_as_missing(client: FlaskClient) -> None:
    path = "/models/lender_match/versions/1/rank"
    body = b'{"entity_id": 8, "features": {"annual_revenue": NaN, "existing_debt": Infinity}}'
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 200, response.json
    item = response.json["items"][0]
    assert {"annual_revenue", "existing_debt"} <= set(item["defaulted"])
    assert item["features"]["existing_debt"] == 0.0  # the config's constant default


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/models/nope/rank", {"entity_id": 1}, 404, None),
        ("/models/lender_match/versions/9/rank", {"entity_id": 1}, 404, None),
        ("/models/lender_match/versions/1/rank", {"entity_id": 987654}, 404, "entity_id"),
        ("/models/lender_match/versions/1/rank", {}, 422, "entity_id"),
        ("/models/lender_match/versions/1/rank", {"entity_id": [1]}, 422, "entity_id"),
        ("/models/lender_match/versions/1/rank", {"entity_id": 1, "top_k": 0}, 422, "top_k"),
        ("/models/lender_match/versions/1/rank", {"entity_id": 1, "top_k": 101}, 422, "top_k"),
        ("/models/lender_match/versions/1/rank", {"entity_id": 1, "x": 1}, 422, "x"),
        (
            "/models/lender_match/versions/1/rank",
            {"entity_id": 1, "features": {"credit_score": "high"}},
            422,
            "features.credit_score",
        ),
        (
            "/models/lender_match/versions/1/rank",
            {"entity_id": 1, "features": {"no_such_column": 1}},
            422,
            "features.no_such_column",
        ),
        (
            "/models/lender_match/versions/1/rank",
            {"entity_id": 1, "candidates": [99999]},
            404,
            "candidates",
        ),
        ("/models/lender_match/versions/1/rank", {"entity_id": 2**70}, 422, "entity_id"),
        ("/models/lender_match/versions/1/rank", {"entity_id": "abc"}, 422, "entity_id"),
        ("/v2/models/lender_match/versions/1/infer", {"inputs": []}, 422, "inputs"),
        (
            "/v2/models/lender_match/versions/1/infer",
            {"inputs": [{"name": "credit_score", "shape": [2], "datatype": "FP64", "data": [1.0]}]},
            422,
            "inputs[0].data",
        ),
        (
            "/v2/models/lender_match/versions/1/infer",
            {"inputs": [{"name": "credit_score", "shape": [1], "datatype": "FP64", "data": [700]}]},
            422,
            "inputs",
        ),
    ],
)
def test_client_mistakes_are_4xx_naming_the_field(
    client: FlaskClient, path: str, body: Any, status: int, field: str | None
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["message"] and response.json["request_id"]
    assert error.get("field") == field
    assert "127.0.0.1" not in response.text  # no database details for clients


def test_malformed_json_is_400_and_a_large_body_413(served_app: Callable[..., Flask]) -> None:
    client = served_app(max_body_bytes=2000).test_client()
    path = "/models/lender_match/versions/1/rank"
    bad = client.post(path, data=b'{"entity_id": ', content_type="application/json")
    assert bad.status_code == 400 and "malformed JSON" in bad.json["error"]["message"]
    big = client.post(path, json={"entity_id": 1, "features": {"state": "x" * 5000}})
    assert big.status_code == 413 and big.json["error"]["code"] == "payload_too_large"
    assert client.get(path).status_code == 405


def test_api_keys_401_403_and_open_health(served_app: Callable[..., Flask], tmp_path: Any) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(
        f"# rtml api keys\n{hash_key('scoped-key')} other_model\n{hash_key('all-key')}\n"
    )
    client = served_app(api_keys=("plain-key",), api_keys_file=key_file).test_client()
    path = "/models/lender_match/versions/1/rank"
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    missing = client.post(path, json={"entity_id": 1})
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.post(path, json={"entity_id": 1}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    scoped = client.post(
        path, json={"entity_id": 1}, headers={"Authorization": "Bearer scoped-key"}
    )
    assert scoped.status_code == 403
    for key in ("plain-key", "all-key"):
        ok = client.post(path, json={"entity_id": 1}, headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
    assert client.get("/models").status_code == 401


def test_models_metadata_and_openapi(client: FlaskClient) -> None:
    models = client.get("/models").json["models"]
    (model,) = models
    assert model["aliases"] == {"champion": "1", "challenger": "2"}
    assert model["traffic"] == {"champion": 50, "challenger": 50}
    scorers = {v["version"]: v["scorer"] for v in model["versions"]}
    assert scorers == {"1": "xgboost", "2": "vw-daemon"}
    assert all(v["loaded_at"] for v in model["versions"])
    meta = client.get("/v2/models/lender_match").json
    assert meta["versions"] == ["1", "2"] and meta["platform"] == "rtml-xgboost"
    assert {"name": "credit_score", "datatype": "FP64", "shape": [-1]} in meta["inputs"]
    assert client.get("/v2/models/lender_match/versions/2/ready").json["ready"] is True
    assert client.get("/v2/models/lender_match/versions/7/ready").status_code == 404
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    assert "/models/{name}/rank" in document["paths"]
    response = client.post(
        "/models/lender_match/versions/1/rank",
        json={"entity_id": 1},
        headers={"X-Request-ID": "abc-123"},
    )
    assert response.json["request_id"] == "abc-123" == response.headers["X-Request-ID"]


def test_infer_tensor_mismatches_are_422_naming_the_tensor(client: FlaskClient) -> None:
    def tensor(name: str, rows: int) -> dict[str, Any]:
        return {"name": name, "shape": [rows], "datatype": "FP64", "data": [1.0] * rows}

    path = "/v2/models/lender_match/versions/1/infer"
    uneven = client.post(
        path, json={"inputs": [tensor("credit_score", 2), tensor("max_amount", 3)]}
    )
    assert uneven.status_code == 422 and uneven.json["error"]["field"] == "inputs[1].shape"
    twice = client.post(path, json={"inputs": [tensor("max_amount", 2), tensor("max_amount", 2)]})
    assert twice.status_code == 422 and twice.json["error"]["field"] == "inputs[1].name"


def test_a_key_limited_to_some_models_lists_only_those(
    served_app: Callable[..., Flask], tmp_path: Any
) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"{hash_key('scoped')} other_model\n{hash_key('all')}\n")
    client = served_app(api_keys_file=key_file).test_client()
    scoped = client.get("/models", headers={"Authorization": "Bearer scoped"}).json["models"]
    everything = client.get("/models", headers={"Authorization": "Bearer all"}).json["models"]
    assert scoped == [] and [m["name"] for m in everything] == ["lender_match"]
