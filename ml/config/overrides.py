"""``--set path=value`` overrides, applied to the raw JSON before validation.

Paths are dotted; list items are addressed by name (``features.annual_revenue.default``),
by ``a_x_b`` for unnamed crosses, or by index. Values are JSON (``3``, ``true``,
``[1, 2]``, ``{"quantiles": 10}``); anything that is not JSON is taken as a string,
so ``--set features.x.default=mean`` works without quotes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel

from ml.config.errors import ConfigIssue, did_you_mean, item_label, model_at


def parse_override(text: str) -> tuple[str, Any]:
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ValueError(f"expected PATH=VALUE, found {text!r}")
    try:
        return path.strip(), json.loads(value)
    except json.JSONDecodeError:
        return path.strip(), value


def apply_overrides(
    raw: dict[str, Any], overrides: list[str], root: type[BaseModel]
) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """A copy of ``raw`` with the overrides applied, and the problems found with them."""
    result = copy.deepcopy(raw)
    issues = []
    for text in overrides:
        try:
            path, value = parse_override(text)
            _set(result, path, value, root)
        except ValueError as exc:
            issues.append(ConfigIssue(f"--set {text}", str(exc)))
    return result, issues


def _set(raw: dict[str, Any], path: str, value: Any, root: type[BaseModel]) -> None:
    keys = path.split(".")
    node: Any = raw
    loc: list[int | str] = []
    for depth, key in enumerate(keys):
        last = depth == len(keys) - 1
        if isinstance(node, list):
            index = _list_index(node, key, path)
            if index is None:  # a new named item, e.g. features.new_one={"type": "numeric"}
                if not (last and isinstance(value, dict)):
                    raise ValueError(_no_item(node, key, path))
                node.append({"name": key, **value})
                return
            loc.append(index)
            if last:
                node[index] = value
                return
            node = node[index]
        elif isinstance(node, dict):
            _check_key(root, loc, key, path, node)
            loc.append(key)
            if last:
                node[key] = value
                return
            if key not in node or node[key] is None:
                node[key] = [] if _is_list_field(root, loc) else {}
            node = node[key]
        else:
            raise ValueError(f"path {path!r}: {'.'.join(keys[:depth])!r} is a value, not an object")


def _list_index(items: list[Any], key: str, path: str) -> int | None:
    for index, item in enumerate(items):
        if item_label(item) == key:
            return index
    if key.isdigit():
        if int(key) >= len(items):
            raise ValueError(f"path {path!r}: index {key} is past the end ({len(items)} items)")
        return int(key)
    return None


def _no_item(items: list[Any], key: str, path: str) -> str:
    labels = [label for label in map(item_label, items) if label]
    return f"path {path!r}: no item named {key!r} ({did_you_mean(key, labels)})"


def _check_key(
    root: type[BaseModel], loc: list[int | str], key: str, path: str, node: dict[str, Any]
) -> None:
    model = model_at(root, loc)
    if model is None:  # a free-form mapping such as xgboost.params
        return
    if key not in model.model_fields:
        raise ValueError(
            f"path {path!r}: unknown key {key!r} ({did_you_mean(key, model.model_fields)})"
        )


def _is_list_field(root: type[BaseModel], loc: list[int | str]) -> bool:
    parent = model_at(root, loc[:-1])
    if parent is None:
        return False
    annotation = str(parent.model_fields[str(loc[-1])].annotation)
    return annotation.startswith("list[")
