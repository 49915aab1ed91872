"""Rank one entity's candidates: fetch, apply request overrides, prepare, score, order.

All candidates are scored in one predict call (design decision 3). The response
carries, per item, the feature values the model used after defaults and which of
them a default filled, so the website (and whoever debugs it) sees why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ml.data.sources import Columns
from ml.errors import QueryValueError
from ml.features.explain import feature_values
from ml.features.fitted import FeatureError
from ml.model import ModelError
from serving.bodies import RankRequest
from serving.errors import InvalidInput, NotFound, ServingError
from serving.online import OnlineSources
from serving.pool import LoadedVersion
from serving.settings import Settings


def rank(
    loaded: LoadedVersion,
    request: RankRequest,
    sources: OnlineSources,
    settings: Settings,
) -> list[dict[str, Any]]:
    """The ranked items for ``request.entity_id`` (best first, at most ``top_k``)."""
    try:
        columns = sources.candidates(loaded, request.entity_id)
    except QueryValueError as exc:
        raise InvalidInput(
            f"the database refused entity_id {request.entity_id!r}: {exc.message}",
            hint="check the id's type (a number or a string, as the model's entities use)",
            field="entity_id",
        ) from exc
    item_column = loaded.model.item_column or ""
    ids = _ids(loaded, columns, item_column)
    if not ids:
        raise NotFound(f"no candidates for entity {request.entity_id!r}", field="entity_id")
    if request.candidates is not None:
        columns, ids = _only(columns, ids, request.candidates)
    if len(ids) > settings.max_candidates:
        raise ServingError(
            f"the candidates query returned {len(ids)} rows, more than the limit "
            f"{settings.max_candidates}",
            hint="raise RTML_MAX_CANDIDATES or narrow the model's candidates query",
        )
    for name, value in request.features.items():
        columns[name] = [value] * len(ids)
    try:
        prepared, scores = loaded.score(columns)
    except (FeatureError, ModelError) as exc:
        if not request.features:
            raise  # the database's own rows failed: our problem, logged as a 500
        raise InvalidInput(
            f"the request's feature values cannot be scored: {exc}", field="features"
        ) from exc
    order = np.argsort(-scores, kind="stable")[: request.top_k or len(ids)]
    # Feature values only for the rows returned.
    returned = {name: values[order] for name, values in prepared.items()}
    used, defaulted = feature_values(loaded.pipeline, returned)
    return [
        {
            "id": _json_id(ids[i]),
            "score": float(scores[i]),
            "rank": position + 1,
            "features": used[position],
            "defaulted": defaulted[position],
        }
        for position, i in enumerate(order)
    ]


def _ids(loaded: LoadedVersion, columns: Columns, item_column: str) -> list[Any]:
    if item_column not in columns:
        raise ServingError(
            f"the candidates query of {loaded.name} returns no column {item_column!r} "
            "(data.item_column)",
            hint="select the item id in data.candidates_query",
        )
    return columns[item_column]


def _only(columns: Columns, ids: list[Any], wanted: list[Any]) -> tuple[Columns, list[Any]]:
    """Keep the rows whose item id is among ``wanted`` (compared as text: 7 == "7")."""
    keep_ids = {str(w) for w in wanted}
    keep = [i for i, item in enumerate(ids) if str(item) in keep_ids]
    if not keep:
        raise NotFound(
            "none of the requested candidates is a candidate of this entity", field="candidates"
        )
    return {name: [values[i] for i in keep] for name, values in columns.items()}, [
        ids[i] for i in keep
    ]


def _json_id(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value if isinstance(value, (str, int, float)) or value is None else str(value)
