"""Config problems, each reported at its JSON path with what was expected and found.

``features.annual_revenue.default: 'average' is not a learned statistic (use one of
min, max, median, mean, or a number)``: paths address list items by their name, the
way ``--set`` does, so a message can be pasted back as an override.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ml.errors import RtmlError


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.path or '(top level)'}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(RtmlError):
    """One or more problems in a model config."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        head = f"invalid config {source}"
        if len(issues) == 1:
            super().__init__(f"{head}: {issues[0]}")
        else:
            lines = "\n".join(f"  - {issue}" for issue in issues)
            super().__init__(f"{head}: {len(issues)} problems\n{lines}")


def closest(name: str, candidates: typing.Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: typing.Iterable[str]) -> str:
    options = sorted(candidates)
    match = closest(name, options)
    listing = ", ".join(options)
    return f"did you mean {match!r}? valid: {listing}" if match else f"valid: {listing}"


def json_path(loc: typing.Sequence[int | str], raw: Any) -> str:
    """``('features', 2, 'default')`` -> ``features.annual_revenue.default``."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and key < len(node) else None
            label = item_label(item)
            if label:
                parts.append(label)
            elif parts:
                parts[-1] += f"[{key}]"
            else:
                parts.append(f"[{key}]")
            node = item
        else:
            parts.append(key)
            node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts)


def item_label(item: Any) -> str | None:
    """How a list item is addressed: its name, or for an unnamed cross 'a_x_b'."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("name"), str):
        return str(item["name"])
    pair = item.get("features")
    if isinstance(pair, list) and len(pair) == 2 and all(isinstance(f, str) for f in pair):
        return "_x_".join(pair)
    return None


def model_at(model: type[BaseModel], loc: typing.Sequence[int | str]) -> type[BaseModel] | None:
    """The pydantic model class found at ``loc`` below ``model`` (None for free-form parts)."""
    current: type[BaseModel] | None = model
    annotation: Any = None
    for key in loc:
        if isinstance(key, int):
            annotation = _list_item(annotation)
        else:
            if current is None or key not in current.model_fields:
                return None
            annotation = current.model_fields[key].annotation
        current = _model_in(annotation)
    return current


def from_validation_error(
    source: str, error: ValidationError, raw: Any, root: type[BaseModel]
) -> ConfigError:
    issues = []
    for detail in error.errors(include_url=False):
        loc = tuple(detail["loc"])
        kind = detail["type"]
        if kind == "extra_forbidden":
            parent = model_at(root, loc[:-1])
            valid = parent.model_fields if parent else {}
            issues.append(
                ConfigIssue(
                    json_path(loc[:-1], raw) if loc[:-1] else "",
                    f"unknown key {loc[-1]!r}",
                    did_you_mean(str(loc[-1]), valid),
                )
            )
        elif kind == "missing":
            issues.append(
                ConfigIssue(json_path(loc[:-1], raw), f"missing required key {loc[-1]!r}")
            )
        else:
            message = detail["msg"].removeprefix("Value error, ")
            message = message.replace("Input should be", "expected", 1)
            found = detail.get("input")
            if "found" not in message:
                message = f"{message[0].lower()}{message[1:]}, found {found!r}"
            issues.append(ConfigIssue(json_path(loc, raw), message))
    return ConfigError(source, issues)


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _unwrap(arg)]
    return [annotation]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for option in _unwrap(annotation):
        if isinstance(option, type) and issubclass(option, BaseModel):
            return option
    return None


def _list_item(annotation: Any) -> Any:
    for option in _unwrap(annotation):
        if typing.get_origin(option) is list:
            return typing.get_args(option)[0]
    return None
