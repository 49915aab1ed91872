"""Open Inference Protocol (KServe v2) request bodies: one tensor per input column.

Checked like every body (:mod:`serving.bodies`): a 422 names the JSON path
(``inputs[2].data``). The common tensor, a named column of numbers, is recognised in
a few C-level checks (:func:`_plain_numbers`); anything else is checked field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.bodies import NUMERIC_TYPES, json_object, kind_of
from serving.errors import InvalidInput
from serving.settings import Settings

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
    body = json_object(body, INFER_FIELDS)
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"expected a string, got {kind_of(request_id)}", field="id")
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
        path = f"inputs[{i}]"
        found = _plain_numbers(tensor, settings, inputs)
        if found is not None:
            name, values = found
        else:
            name, values = _tensor(json_object(tensor, TENSOR_FIELDS, path), path, settings, inputs)
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


def _datatypes_for(mlflow_type: str) -> set[str]:
    """The tensor datatypes a signature column of this MLflow type accepts."""
    if mlflow_type in NUMERIC_TYPES:
        return NUMERIC_DATATYPES
    return {"BOOL"} if mlflow_type == "boolean" else {"BYTES"}


def _parameters(body: dict[str, Any], prefix: str) -> None:
    """``parameters`` is read by no model here, but it must be what the protocol says."""
    parameters = body.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput(
            f"expected an object, got {kind_of(parameters)}", field=f"{prefix}parameters"
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
    if expected is not None and datatype not in _datatypes_for(expected):
        want = {"boolean": "BOOL"}.get(expected, "BYTES")
        if expected in NUMERIC_TYPES:
            want = "a numeric datatype (FP64, INT64, ...)"
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
        raise InvalidInput(f"expected an array, got {kind_of(data)}", field=f"{path}.data")
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
