"""What every request handler of a worker shares: settings, models, sources, keys."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, request

from serving.auth import KeyRing
from serving.bodies import parse_json
from serving.online import OnlineSources
from serving.pool import ModelPool
from serving.settings import Settings

EXTENSION = "rtml"


@dataclass
class ServingState:
    settings: Settings
    pool: ModelPool
    sources: OnlineSources
    keys: KeyRing
    started_at: str


def current() -> ServingState:
    state: ServingState = current_app.extensions[EXTENSION]
    return state


def authorize(model: str | None) -> ServingState:
    """The state, after checking the request's API key may use ``model``."""
    state = current()
    g.api_key = state.keys.authorize(request.headers.get("Authorization"), model)
    return state


def json_body() -> object:
    """The request's JSON body; 413 past the size limit, 400 if it is not JSON."""
    return parse_json(request.get_data(cache=False))
