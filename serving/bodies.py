"""Request bodies: parsed and checked before any work, with errors that name the field.

Malformed JSON is a 400: not UTF-8, bad syntax, nested too deeply, an integer too
long to read, or a string with a lone UTF-16 surrogate escape (``"\\ud800"``: valid
JSON syntax but not text, which no database or model input can take). A body that is
JSON but not what the endpoint takes is a 422 naming the JSON path (``top_k``,
``features.credit_score``, ``inputs[2].data``). NaN and Infinity (which Python's JSON
reader accepts) count as missing values, as in training: the feature's default fills
them. ``null`` for an optional field means the field is absent.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.errors import BadRequest, InvalidInput
from serving.settings import Settings

INT64 = (-(2**63), 2**63 - 1)
MAX_ID_LENGTH = 256
MAX_OVERRIDES = 200
NUMERIC_TYPES = {"long", "integer", "double", "float"}


# A \uD800-\uDFFF escape. Strict UTF-8 decoding refuses encoded surrogates and JSON's
# reader pairs valid escapes into one character, so a body without such an escape
# holds no lone surrogate (and needs no walk).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_json(data: bytes) -> Any:
    if not data:
        raise BadRequest("the request has no body", hint="send a JSON object")
    try:
        # Not json.loads(bytes): it guesses UTF-16/32 and lets encoded surrogates through.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8: {exc.reason}") from exc
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise BadRequest("the JSON is nested too deeply") from exc
    except ValueError as exc:  # int() past sys.get_int_max_str_digits()
        raise BadRequest(
            "an integer in the JSON has too many digits",
            hint="send numbers that fit 64 bits (or a double)",
        ) from exc
    if _SURROGATE_ESCAPE.search(text):
        _reject_lone_surrogates(body)
    return body


def _reject_lone_surrogates(body: Any) -> None:
    """400 naming the first string (or key) that is not valid Unicode."""
    stack: list[tuple[Any, str]] = [(body, "$")]
    while stack:  # iterative: the body may be nested as deep as the JSON reader allows
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _unicode(key, path)
                stack.append((item, f"{path}.{key}" if path != "$" else key))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            _unicode(value, path)


def _unicode(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest(
            f"a string holds a lone UTF-16 surrogate ({text[exc.start]!a}): not valid Unicode",
            hint="escape characters outside the BMP as a surrogate pair, or send UTF-8",
            field=path,
        ) from exc


def _object(body: Any, allowed: set[str], path: str = "") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput(f"expected a JSON object, got {_kind(body)}", field=path or "$")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}",
            hint=f"fields: {', '.join(sorted(allowed))}",
            field=f"{path}{'.' if path else ''}{unknown[0]}",
        )
    return body


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def entity_id_value(value: Any, path: str) -> str | int:
    """A string or a 64-bit integer: what a database parameter can safely carry."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"expected a string or an integer, got {_kind(value)}", field=path)
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise InvalidInput("integer out of the 64-bit range", field=path)
    if isinstance(value, str) and not (0 < len(value) <= MAX_ID_LENGTH) or "\x00" in str(value):
        raise InvalidInput(f"expected 1 to {MAX_ID_LENGTH} characters, without NUL", field=path)
    return value


@dataclass(frozen=True)
class RankRequest:
    entity_id: str | int
    top_k: int | None = None
    candidates: list[str | int] | None = None
    features: dict[str, Any] = field(default_factory=dict)


RANK_FIELDS = {"entity_id", "top_k", "candidates", "features"}


def parse_rank(body: Any, settings: Settings, inputs: dict[str, str]) -> RankRequest:
    """``inputs``: the model's raw input columns and their MLflow types."""
    body = _object(body, RANK_FIELDS)
    if "entity_id" not in body:
        raise InvalidInput("missing field 'entity_id'", field="entity_id")
    entity_id = entity_id_value(body["entity_id"], "entity_id")
    top_k = body.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise InvalidInput(f"expected an integer, got {_kind(top_k)}", field="top_k")
        if not 1 <= top_k <= settings.max_top_k:
            raise InvalidInput(
                f"top_k must be between 1 and {settings.max_top_k}, got {top_k}", field="top_k"
            )
    candidates = body.get("candidates")
    if candidates is not None:
        if not isinstance(candidates, list) or not candidates:
            raise InvalidInput("expected a non-empty array of ids", field="candidates")
        if len(candidates) > settings.max_candidates:
            raise InvalidInput(
                f"at most {settings.max_candidates} candidates, got {len(candidates)}",
                field="candidates",
            )
        candidates = [entity_id_value(c, f"candidates[{i}]") for i, c in enumerate(candidates)]
    features = body.get("features")
    if features is None:
        features = {}
    if not isinstance(features, dict):
        raise InvalidInput(f"expected an object, got {_kind(features)}", field="features")
    if len(features) > MAX_OVERRIDES:
        raise InvalidInput(f"at most {MAX_OVERRIDES} feature values", field="features")
    checked = {name: _override(name, value, inputs) for name, value in features.items()}
    return RankRequest(entity_id, top_k, candidates, checked)


def _override(name: str, value: Any, inputs: dict[str, str]) -> Any:
    path = f"features.{name}"
    if name not in inputs:
        raise InvalidInput(
            f"the model has no input column {name!r}",
            hint=f"columns: {', '.join(sorted(inputs))}",
            field=path,
        )
    if value is None:
        return None
    kind = inputs[name]
    if kind in NUMERIC_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"expected a number or null, got {_kind(value)}", field=path)
        try:
            number = float(value)
        except OverflowError as exc:  # an integer literal beyond a double's range
            raise InvalidInput("a number is out of range", field=path) from exc
        return None if math.isnan(number) or math.isinf(number) else number
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"expected a boolean or null, got {_kind(value)}", field=path)
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"expected a string or null, got {_kind(value)}", field=path)
    return value


# --- Open Inference Protocol ----------------------------------------------------------

NUMERIC_DATATYPES = {
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64",
}  # fmt: skip
DATATYPES = NUMERIC_DATATYPES | {"BYTES"}
_TEXT_TYPES = {str, type(None)}
_BOOL_TYPES = {bool, type(None)}
_NUMBER_TYPES = {int, float, type(None)}
INFER_FIELDS = {"id", "parameters", "inputs", "outputs"}
TENSOR_FIELDS = {"name", "shape", "datatype", "data", "parameters"}


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    columns: dict[str, Any]  # name -> float64 array (numbers) or list (BYTES)
    rows: int


def parse_infer(body: Any, settings: Settings, inputs: dict[str, str]) -> InferRequest:
    body = _object(body, INFER_FIELDS)
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"expected a string, got {_kind(request_id)}", field="id")
    _parameters(body, "")
    outputs = body.get("outputs")
    if outputs is not None and (
        not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs)
    ):
        raise InvalidInput('expected an array of objects ({"name": ...})', field="outputs")
    tensors = body.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInput("expected a non-empty array of input tensors", field="inputs")
    columns: dict[str, Any] = {}
    rows: int | None = None
    for i, tensor in enumerate(tensors):
        found = _plain_numbers(tensor, settings, inputs)
        if found is not None:
            name, values = found
        else:
            path = f"inputs[{i}]"
            name, values = _tensor(_object(tensor, TENSOR_FIELDS, path), path, settings, inputs)
        if name in columns:
            raise InvalidInput(f"input {name!r} appears twice", field=f"{path}.name")
        if rows is not None and len(values) != rows:
            raise InvalidInput(
                f"input {name!r} has {len(values)} rows, the first input has {rows}",
                field=f"{path}.shape",
            )
        rows = len(values)
        columns[name] = values
    missing = [name for name in inputs if name not in columns]
    if missing:
        raise InvalidInput(
            f"missing input {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            hint=f"the model's inputs: {', '.join(inputs)}; GET /v2/models/<name> lists them",
            field="inputs",
        )
    return InferRequest(request_id, columns, rows or 0)


def _plain_numbers(
    tensor: Any, settings: Settings, inputs: dict[str, str]
) -> tuple[str, np.ndarray] | None:
    """The common tensor (a named column of numbers, shape [rows]) in a few C-level checks;
    None for anything else, which :func:`_tensor` then checks field by field. A tensor
    this accepts is one :func:`_tensor` accepts with the same result."""
    if type(tensor) is not dict or len(tensor) != 4:
        return None
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if not (
        type(name) is str
        and name
        and type(datatype) is str
        and datatype in NUMERIC_DATATYPES
        and datatype != "BOOL"
        and inputs.get(name, "double") in NUMERIC_TYPES
        and type(shape) is list
        and len(shape) == 1
        and type(data) is list
        and type(shape[0]) is int
        and shape[0] == len(data) <= settings.max_infer_rows
        and set(map(type, data)) <= _NUMBER_TYPES
    ):
        return None
    try:
        return name, np.array(data, dtype=np.float64)
    except OverflowError:
        return None  # the field-by-field check names it


def _parameters(body: dict[str, Any], prefix: str) -> None:
    """``parameters`` is read by no model here, but it must be what the protocol says."""
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput(
            f"expected an object, got {_kind(parameters)}", field=f"{prefix}parameters"
        )


def _tensor(
    tensor: dict[str, Any], path: str, settings: Settings, inputs: dict[str, str]
) -> tuple[str, Any]:
    for key in ("name", "shape", "datatype", "data"):
        if key not in tensor:
            raise InvalidInput(f"missing field {key!r}", field=f"{path}.{key}")
    name, shape, datatype, data = (tensor[k] for k in ("name", "shape", "datatype", "data"))
    _parameters(tensor, f"{path}.")
    if not isinstance(name, str) or not name:
        raise InvalidInput("expected a non-empty string", field=f"{path}.name")
    if not isinstance(datatype, str) or datatype not in DATATYPES:  # a list is unhashable
        raise InvalidInput(
            f"unknown datatype {datatype!r}",
            hint=f"one of {', '.join(sorted(DATATYPES))}",
            field=f"{path}.datatype",
        )
    expected = inputs.get(name)
    if expected is not None and (expected in NUMERIC_TYPES) != (datatype in NUMERIC_DATATYPES):
        want = "a numeric datatype (FP64, INT64, ...)" if expected in NUMERIC_TYPES else "BYTES"
        raise InvalidInput(
            f"input {name!r} is {expected} in the model's signature: expected {want}, "
            f"got {datatype}",
            field=f"{path}.datatype",
        )
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise InvalidInput("expected shape [rows] or [rows, 1]", field=f"{path}.shape")
    if shape[0] > settings.max_infer_rows:
        raise InvalidInput(
            f"at most {settings.max_infer_rows} rows per request, got {shape[0]}",
            field=f"{path}.shape",
        )
    if not isinstance(data, list):
        raise InvalidInput(f"expected an array, got {_kind(data)}", field=f"{path}.data")
    if data and isinstance(data[0], list):  # nested rows ([[1], [2]]) are allowed
        if not all(isinstance(row, list) and len(row) == 1 for row in data):
            raise InvalidInput("expected one value per row", field=f"{path}.data")
        data = [row[0] for row in data]
    if len(data) != shape[0]:
        raise InvalidInput(
            f"shape says {shape[0]} rows, data has {len(data)} values", field=f"{path}.data"
        )
    # The set of the values' exact types: one C-level pass (JSON gives only these types;
    # bool is its own type, so True is not taken for a number).
    kinds = set(map(type, data))
    if datatype == "BYTES":
        if not kinds <= _TEXT_TYPES:
            raise InvalidInput("BYTES data must be strings or null", field=f"{path}.data")
        return name, data
    if not kinds <= (_BOOL_TYPES if datatype == "BOOL" else _NUMBER_TYPES):
        raise InvalidInput(f"{datatype} data must be numbers or null", field=f"{path}.data")
    try:
        values = np.array(data, dtype=np.float64)  # None -> NaN: missing
    except OverflowError as exc:
        raise InvalidInput("a number is out of range", field=f"{path}.data") from exc
    return name, values
