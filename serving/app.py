"""The Flask app factory: ``create_app(settings)`` (design.md conventions).

A worker reads the host manifest the agent wrote, loads and warms every listed
version, and serves them. Tests pass a ready :class:`ModelTable` instead.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime

from flask import Flask, Response, g, request

from serving.api import catalog, inference, ranking
from serving.auth import KeyRing
from serving.errors import register_error_handlers
from serving.manifest import read_manifest
from serving.online import OnlineSources
from serving.pool import ModelPool, ModelTable, load_table
from serving.settings import Settings
from serving.state import EXTENSION, ServingState

log = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(settings: Settings, table: ModelTable | None = None) -> Flask:
    if table is None:
        manifest = read_manifest(settings.store)
        inprocess = frozenset(
            name for name in manifest.models if settings.vw_mode_for(name) == "inprocess"
        )
        table = load_table(manifest, inprocess)
    app = Flask("rtml")
    # "/v2/models//ready" must be a JSON 404, not a redirect to another URL.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented order
    app.json.compact = True  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = ServingState(
        settings=settings,
        pool=ModelPool(table),
        sources=OnlineSources(settings.query_timeout_ms, settings.online_urls),
        keys=KeyRing.load(settings.api_keys, settings.api_keys_file),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    for blueprint in (ranking.blueprint, inference.blueprint, catalog.blueprint):
        app.register_blueprint(blueprint)
    register_error_handlers(app)

    @app.before_request
    def _request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        return response

    return app
