"""Generated requests from the service's own OpenAPI document, against the app a gunicorn
worker builds (real registry, model store, VW daemon and Postgres).

Schemathesis reads ``GET /openapi.json`` and makes requests for every operation: first its
coverage cases (each keyword's boundaries, each property negated on its own, a missing
body, undeclared media types and methods), then random valid and invalid ones (its
positive and negative generation modes). The test calls the WSGI app in process and
asserts, for every response:

- no 5xx: a client's mistake is never a server error (``not_a_server_error``);
- the status, content type, headers and body are ones the document declares for that
  operation (``status_code_conformance``, ``content_type_conformance``,
  ``response_headers_conformance``, ``response_schema_conformance``); an undeclared
  method gets 405 with ``Allow`` (``unsupported_method``);
- a request the document calls invalid is refused (``negative_data_rejection``), and on
  a served model with a 400, 401, 413 or 422 (never a 404 or 200: a body the document
  forbids must not reach the database), so the document is no stricter than the code;
- the body is strict JSON (no NaN or Infinity, which browsers' JSON.parse refuses).

To reach the deep code (the Postgres fetch, ``prepare``, scoring, ranking), most requests
name the served model (``lender_match``, versions 1 and 2), and many positive ones carry
bodies aimed at it: entity ids that exist (businesses 1..1200), product ids that are
candidates, feature overrides and Open Inference rows built from the model's real inputs,
sometimes spoiled with a hostile value. Unknown names, versions and ids still appear.
Generation is derandomized, so CI sends the same requests every run. Bodies no JSON
library writes (lone surrogates, 5000-digit integers, UTF-16) are sent as raw bytes by
``test_hostile_bodies_are_client_errors``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.serving.conftest import BUSINESSES

pytestmark = [
    pytest.mark.integration,
    # lender_match's prepare() on overrides near 1e308 (its ratios overflow to inf, then
    # count as missing): expected here, noise in the report.
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

MODEL = "lender_match"
VERSIONS = ("1", "2")
KEY = "k1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
]
# Generated examples per operation and generation mode (the keyed run takes a share).
EXAMPLES = {"body": 110, "path": 25, "plain": 3}
MIN_REQUESTS = 1000
NUMERIC = {"long", "integer", "double", "float"}
DATATYPES = {"long": "INT64", "integer": "INT32", "double": "FP64", "float": "FP32",
             "boolean": "BOOL"}  # fmt: skip
# Values no valid request holds: NUL, huge and tiny numbers, wrong types. (Lone surrogates
# break schemathesis's own validator: test_hostile_bodies_are_client_errors sends them.)
HOSTILE = st.sampled_from(
    ["\x00", "a\x00b", "", " ", "1e400", 2**64, -(2**63) - 1, 1e308, -1e308, 5e-324, True,
     [], {}, [1], {"a": 1}]
)  # fmt: skip


@dataclass
class Tally:
    """Requests made, by operation and status, and the distinct failures (one report each)."""

    requests: int = 0
    aimed: int = 0  # of them, built by this test rather than generated from the document
    seconds_in_app: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    by_operation: dict[str, dict[int, int]] = field(default_factory=dict)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def record(self, operation: str, status: int, seconds: float) -> None:
        self.requests += 1
        self.seconds_in_app += seconds
        self.statuses[status] = self.statuses.get(status, 0) + 1
        counts = self.by_operation.setdefault(operation, {})
        counts[status] = counts.get(status, 0) + 1

    def fail(self, operation: str, title: str, report: str) -> None:
        self.failures.setdefault((operation, title), report)

    def summary(self) -> str:
        lines = [
            f"{self.requests} requests ({self.aimed} of them aimed; "
            f"{self.seconds_in_app:.1f} s in the app), "
            f"statuses {dict(sorted(self.statuses.items()))}"
        ]
        lines += [f"  {op}: {dict(sorted(c.items()))}" for op, c in self.by_operation.items()]
        for (operation, title), detail in sorted(self.failures.items()):
            lines.append(f"\n=== {operation}: {title}\n{detail}")
        return "\n".join(lines)


class ServerLog(logging.Handler):
    """Keeps the last traceback the app logged, for the report of a 5xx."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.last = self.format(record)


@pytest.fixture
def server_log() -> Iterator[ServerLog]:
    handler = ServerLog()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("serving")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# --- bodies aimed at the scoring code ---------------------------------------------------


def typed_value(mlflow_type: str) -> st.SearchStrategy[Any]:
    """A value of the column's type (edges included) or null (missing)."""
    if mlflow_type in NUMERIC:
        right: st.SearchStrategy[Any] = st.one_of(
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
            st.sampled_from([0, -1, 1e308, -1e308, 5e-324, 2**53 + 1]),
        )
    elif mlflow_type == "boolean":
        right = st.booleans()
    else:
        right = st.text(max_size=30)
    return st.one_of(right, right, right, st.none())


def spoiled(valid: st.SearchStrategy[Any], spoil: Callable[[Any, Any, Any], Any]) -> Any:
    """Mostly ``valid`` as drawn; sometimes with a hostile value put in. (Hypothesis
    favours a range's low end, so the rarer branch takes the high one.)"""
    return st.tuples(valid, st.integers(0, 3), st.integers(0, 10**6), HOSTILE).map(
        lambda t: spoil(t[0], t[2], t[3]) if t[1] == 3 else t[0]
    )


def rank_body(inputs: dict[str, str], products: int) -> st.SearchStrategy[dict[str, Any]]:
    existing = st.integers(min_value=1, max_value=BUSINESSES)
    entity = st.one_of(
        existing, existing, existing, existing.map(str),
        st.sampled_from([0, -1, BUSINESSES + 1, 2**63 - 1, -(2**63), "x", " 1", "1" * 256]),
    )  # fmt: skip
    product = st.one_of(
        st.integers(min_value=1, max_value=products),
        st.integers(min_value=1, max_value=products).map(str),
        st.integers(min_value=-5, max_value=products + 5),
    )
    features = st.sets(st.sampled_from(sorted(inputs)), max_size=6).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {name: typed_value(inputs[name]) for name in sorted(chosen)}
        )
    )
    body = st.fixed_dictionaries(
        {"entity_id": entity},
        optional={
            "top_k": st.one_of(st.none(), st.integers(min_value=1, max_value=100)),
            "candidates": st.one_of(st.none(), st.lists(product, min_size=1, max_size=8)),
            "features": st.one_of(st.none(), features),
        },
    )

    def spoil(body: dict[str, Any], where: int, value: Any) -> dict[str, Any]:
        key = ["entity_id", "top_k", "candidates", "features"][where % 4]
        if key == "features":
            return {**body, "features": {sorted(inputs)[where % len(inputs)]: value}}
        return {**body, key: value}

    return spoiled(body, spoil)


def infer_body(inputs: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """Open Inference rows for every input of the model, in its datatypes: [rows] or
    [rows, 1], 0 to 5 rows, nulls as missing values."""
    names = list(inputs)

    def tensor(name: str, rows: int) -> st.SearchStrategy[dict[str, Any]]:
        values = st.lists(typed_value(inputs[name]), min_size=rows, max_size=rows)
        return st.tuples(values, st.booleans()).map(
            lambda pair: {
                "name": name,
                "shape": [rows, 1] if pair[1] else [rows],
                "datatype": DATATYPES.get(inputs[name], "BYTES"),
                "data": [[v] for v in pair[0]] if pair[1] else pair[0],
            }
        )

    body = (
        st.integers(min_value=0, max_value=5)
        .flatmap(lambda rows: st.tuples(*(tensor(name, rows) for name in names)))
        .map(lambda tensors: {"id": "fuzz", "inputs": list(tensors)})
    )

    def spoil(body: dict[str, Any], where: int, value: Any) -> dict[str, Any]:
        tensors = [dict(t) for t in body["inputs"]]
        target = tensors[where % len(tensors)]
        if target["data"] and where % 3:
            target["data"] = [value, *target["data"][1:]]
        else:
            target[["shape", "datatype", "name", "parameters"][where % 4]] = value
        return {**body, "inputs": tensors}

    return spoiled(body, spoil)


# --- the run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    app: Flask
    inputs: dict[str, str]  # the model's raw input columns and their MLflow types
    products: int
    keyed: bool


def served_target(app: Flask, keyed: bool) -> Target:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {KEY}"} if keyed else {}
    loaded = app.extensions["rtml"].pool.table.model(MODEL).version(VERSIONS[0])
    inputs = {column["name"]: column.get("type", "") for column in loaded.inputs}
    metadata = client.get(f"/v2/models/{MODEL}", headers=headers)
    assert metadata.status_code == 200, metadata.json
    assert [column["name"] for column in metadata.json["inputs"]] == list(inputs)
    ranked = client.post(f"/models/{MODEL}/versions/1/rank", json={"entity_id": 1}, headers=headers)
    assert ranked.status_code == 200, ranked.json
    products = max(int(item["id"]) for item in ranked.json["items"])
    return Target(app, inputs, products, keyed)


def path_choices(operation: Any) -> list[dict[str, str] | None]:
    """Fixed path parameters, weighted by repetition; None lets schemathesis generate them."""
    names = {parameter.name for parameter in operation.path_parameters}
    if names == {"name", "version"}:
        return [{"name": MODEL, "version": v} for v in VERSIONS] * 3 + [{"name": MODEL}, None]
    if names == {"name"}:
        return [{"name": MODEL}] * 4 + [None]
    return [None]


def served(fixed: dict[str, str] | None, operation: Any) -> bool:
    """Whether these path parameters name a served model (and version) in full."""
    return (
        fixed is not None
        and len(fixed) == len(operation.path_parameters)
        and fixed["name"] == MODEL
        and fixed.get("version", VERSIONS[0]) in VERSIONS
    )


def case_strategy(
    operation: Any, strict: Any, mode: GenerationMode, target: Target
) -> st.SearchStrategy:
    """``strict``: the same operation from the schema whose negative cases must get a
    400/401/413/422: on a served model a body the document forbids never reaches the
    database, so no 404 (nor 200) may answer it."""
    generated = st.sampled_from(
        [
            (strict if served(fixed, operation) else operation).as_strategy(
                generation_mode=mode, path_parameters=fixed
            )
            for fixed in path_choices(operation)
        ]
    ).flatmap(lambda strategy: strategy)
    if mode is not GenerationMode.POSITIVE or operation.method.upper() != "POST":
        return generated
    # Besides the document's own positive cases, bodies aimed at the scoring code: built
    # from the model's inputs, sometimes spoiled (still checked for no 5xx and documented
    # responses; without generation metadata, schemathesis does not judge them valid).
    aimed_body = (
        rank_body(target.inputs, target.products)
        if operation.path.endswith("/rank")
        else infer_body(target.inputs)
    )
    known = [fixed for fixed in path_choices(operation) if served(fixed, operation)]
    aimed = st.tuples(st.sampled_from(known), aimed_body).map(
        lambda pair: operation.Case(
            path_parameters=pair[0], body=pair[1], media_type="application/json"
        )
    )
    return st.integers(0, 2).flatmap(lambda i: generated if i == 2 else aimed)


AUTHORIZATION = [f"Bearer {KEY}"] * 6 + [None, "Bearer nope", "Basic azE6", "Bearer ", "k1"]


def strict_json(content: bytes) -> None:
    def refuse(constant: str) -> None:
        raise AssertionError(f"the response body holds {constant}: not JSON")

    json.loads(content, parse_constant=refuse)


def send(
    case: Any, authorization: str | None, label: str, tally: Tally, server_log: ServerLog
) -> None:
    """One request, its checks, and what it tells the tally."""
    headers = {"Authorization": authorization} if authorization else None
    server_log.last = ""
    started = time.perf_counter()
    try:
        response = case.call(headers=headers)
    except Exception as exc:  # the app raised past its error handler
        tally.fail(label, type(exc).__name__, f"{exc!r}\n{case.as_curl_command(headers)}")
        return
    tally.record(label, response.status_code, time.perf_counter() - started)
    tally.aimed += case.meta is None
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
        if response.content:
            strict_json(response.content)
    except (FailureGroup, AssertionError) as exc:
        failures = getattr(exc, "exceptions", [exc])
        title = "; ".join(sorted({getattr(f, "title", type(f).__name__) for f in failures}))
        detail = str(exc)
        if response.status_code >= 500 and server_log.last:
            detail += f"\nserver log:\n{server_log.last}"
        tally.fail(label, f"{title} ({response.status_code})", detail)


def run_coverage(
    operation: Any, schema: Any, target: Target, every: int, tally: Tally, server_log: ServerLog
) -> None:
    """Schemathesis's coverage cases: each keyword's boundaries, each property negated on
    its own, missing body, wrong media types, methods the path does not take. Sent to
    the served model (alternating versions), valid ones with an entity that exists.
    ``every``: send every n-th case only."""
    generation = schema.config.generation_for(operation=operation)
    cases = schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=generation
    )
    known = [fixed for fixed in path_choices(operation) if served(fixed, operation)]
    for i, case in enumerate(cases):
        if i % every:
            continue
        mode = case.meta.generation.mode
        if known:
            case.path_parameters = dict(known[i % len(known)])
        if mode.is_positive and isinstance(case.body, dict) and "entity_id" in case.body:
            case.body = {**case.body, "entity_id": 1 + (i * 37) % BUSINESSES}
        authorization = AUTHORIZATION[i % len(AUTHORIZATION)] if target.keyed else None
        send(case, authorization, f"{operation.label} [coverage {mode.value}]", tally, server_log)


def run_operation(
    operation: Any, strict: Any, mode: GenerationMode, target: Target, examples: int,
    tally: Tally, server_log: ServerLog,
) -> None:  # fmt: skip
    label = f"{operation.label} [{mode.value}]"
    auth = st.sampled_from(AUTHORIZATION) if target.keyed else st.just(None)

    @given(case=case_strategy(operation, strict, mode, target), authorization=auth)
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: Any, authorization: str | None) -> None:
        send(case, authorization, label, tally, server_log)

    with contextlib.suppress(Unsatisfiable):  # nothing to negate: no parameter, no body
        call()


REFUSED = ["400", "401", "413", "422"]  # a body refused before any lookup


def fuzz(target: Target, share: float, server_log: ServerLog) -> Tally:
    headers = {"Authorization": f"Bearer {KEY}"} if target.keyed else {}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", target.app, headers=headers)
    config = {"checks": {"negative_data_rejection": {"expected-statuses": REFUSED}}}
    strict_schema = schemathesis.openapi.from_wsgi(
        "/openapi.json", target.app, headers=headers, config=schemathesis.Config.from_dict(config)
    )
    strict = {result.ok().label: result.ok() for result in strict_schema.get_all_operations()}
    tally = Tally()
    for operation in strict.values():
        run_coverage(operation, strict_schema, target, 1 if share >= 1 else 3, tally, server_log)
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.body:
            kind = "body"
        elif operation.path_parameters:
            kind = "path"
        else:
            kind = "plain"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and kind != "body" and not target.keyed:
                continue  # nothing to negate but the credentials, and the service is open
            examples = max(1, round(EXAMPLES[kind] * share))
            run_operation(
                operation, strict[operation.label], mode, target, examples, tally, server_log
            )
    return tally


@pytest.mark.slow
def test_generated_requests_get_no_5xx_and_documented_responses(
    served_app: Callable[..., Flask], server_log: ServerLog
) -> None:
    tally = fuzz(served_target(served_app(), keyed=False), 1.0, server_log)
    print(f"open service: {tally.summary()}")
    assert not tally.failures, tally.summary()
    assert tally.requests - tally.aimed >= MIN_REQUESTS, tally.summary()
    # The deep code ran: many requests were scored, not all refused at the door.
    assert tally.statuses.get(200, 0) >= MIN_REQUESTS // 4, tally.summary()
    assert tally.statuses.get(422, 0) > 0 and tally.statuses.get(404, 0) > 0, tally.summary()


@pytest.mark.slow
def test_generated_requests_with_api_keys(
    served_app: Callable[..., Flask], server_log: ServerLog
) -> None:
    """With keys on: a key, none, or a wrong one (401, documented) on every operation."""
    tally = fuzz(served_target(served_app(api_keys=(KEY,)), keyed=True), 0.2, server_log)
    print(f"keyed service: {tally.summary()}")
    assert not tally.failures, tally.summary()
    assert tally.statuses.get(401, 0) > 0 and tally.statuses.get(200, 0) > 0, tally.summary()
    ranked = tally.by_operation["POST /models/{name}/versions/{version}/rank [positive]"]
    assert ranked.get(200, 0) > 0 and ranked.get(401, 0) > 0, tally.summary()


# --- bodies a generator does not send: raw bytes past what JSON libraries write --------

HOSTILE_BODIES = {
    "lone surrogate id": b'{"entity_id": "\\ud800"}',
    "lone surrogate key": b'{"entity_id": 1, "features": {"\\udc00": 1}}',
    "lone surrogate override": b'{"entity_id": 3, "features": {"industry": "a\\udbff"}}',
    "encoded surrogate": b'{"entity_id": "\xed\xa0\x80"}',
    "integer past the digit limit": b'{"entity_id": 1' + b"0" * 5000 + b"}",
    "override past a double": b'{"entity_id": 3, "features": {"credit_score": 1'
    + b"0" * 400
    + b"}}",
    "UTF-16": '{"entity_id": 3}'.encode("utf-16"),
    "Latin-1": b'{"entity_id": "\xe9"}',
    "nested too deep": b"[" * 100_000 + b"]" * 100_000,
    "empty": b"",
    "not JSON": b"entity_id=3",
    "falsy features": b'{"entity_id": 3, "features": 0}',
    "features as array": b'{"entity_id": 3, "features": []}',
}
HOSTILE_INFER = {
    "lone surrogate BYTES": {"name": "industry", "shape": [1], "datatype": "BYTES",
                             "data": ["\ud800"]},
    "parameters not an object": {"name": "industry", "shape": [1], "datatype": "BYTES",
                                 "data": ["x"], "parameters": 5},
    "datatype an array": {"name": "industry", "shape": [1], "datatype": [], "data": ["x"]},
    "datatype an object": {"name": "industry", "shape": [1], "datatype": {}, "data": ["x"]},
}  # fmt: skip


def test_hostile_bodies_are_client_errors(
    served_app: Callable[..., Flask], server_log: ServerLog
) -> None:
    app = served_app()
    client = app.test_client()
    for version in VERSIONS:
        loaded = app.extensions["rtml"].pool.table.model(MODEL).version(version)
        valid = [
            {"name": c["name"], "shape": [1], "datatype": DATATYPES.get(c["type"], "BYTES"),
             "data": [1 if c["type"] in NUMERIC else "x"]}
            for c in loaded.inputs
        ]  # fmt: skip
        rank, infer = f"/models/{MODEL}/versions/{version}/rank", f"/v2/models/{MODEL}/infer"
        requests = [(rank, label, body) for label, body in HOSTILE_BODIES.items()]
        for label, bad in HOSTILE_INFER.items():
            tensors = [bad if t["name"] == bad["name"] else t for t in valid]
            requests.append((infer, label, json.dumps({"inputs": tensors}).encode()))
        outputs = {"inputs": valid, "outputs": {}}
        requests.append((infer, "outputs not an array", json.dumps(outputs).encode()))
        for path, label, body in requests:
            server_log.last = ""
            response = client.post(path, data=body, content_type="application/json")
            assert response.status_code in (400, 422), (label, response.json, server_log.last)
            error = response.json["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str), label
        ranked = client.post(
            rank,
            json={"entity_id": 3, "features": {"credit_score": 1e308, "industry": "a\x00 |:b"}},
        )
        assert ranked.status_code == 200, ranked.json
        strict_json(ranked.data)
