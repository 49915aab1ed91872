"""``POST /models/<name>/rank`` (routed A/B) and ``/models/<name>/versions/<v>/rank``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from flask.typing import ResponseReturnValue

from serving.bodies import parse_rank
from serving.errors import NotFound
from serving.pool import LoadedVersion
from serving.ranking import rank
from serving.routing import choose_alias
from serving.state import ServingState, authorize, json_body

blueprint = Blueprint("ranking", __name__)


@blueprint.post("/models/<name>/rank")
def rank_routed(name: str) -> ResponseReturnValue:
    state = authorize(name)
    model = state.pool.table.model(name)
    body = json_body()
    # Routing needs the entity id; the full check happens against the chosen version.
    entity_id = body.get("entity_id") if isinstance(body, dict) else None
    alias = choose_alias(name, entity_id, model.traffic)
    if alias is None:
        raise NotFound(
            f"model {name!r} has no traffic split on this host",
            hint="set one with rtml traffic, or call /models/<name>/versions/<version>/rank",
        )
    return _respond(state, model.version(model.aliases[alias]), alias, body)


@blueprint.post("/models/<name>/versions/<version>/rank")
def rank_pinned(name: str, version: str) -> ResponseReturnValue:
    state = authorize(name)
    loaded = state.pool.table.model(name).version(version)
    alias = loaded.aliases[0] if loaded.aliases else None
    return _respond(state, loaded, alias, json_body())


def _respond(
    state: ServingState, loaded: LoadedVersion, alias: str | None, body: Any
) -> ResponseReturnValue:
    request = parse_rank(body, state.settings, loaded.input_types)
    items = rank(loaded, request, state.sources, state.settings)
    return jsonify(
        {
            "model": loaded.name,
            "version": loaded.version,
            "alias": alias,
            "run_id": loaded.run_id,
            "model_updated_at": loaded.updated_at,
            "request_id": g.request_id,
            "entity_id": request.entity_id,
            "items": items,
        }
    )
