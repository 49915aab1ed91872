"""Online feature fetch: one entity's candidate rows through the data layer.

Each worker keeps one pooled source per database URL, opened on first use (so the
service starts while a database is down) with the statement timeout from the
settings. Any database failure (down, slow past the timeout, connection dropped)
surfaces as ``DataSourceError``, which the error handler answers with 503 and
``Retry-After``; the pool replaces broken connections, so the next request after the
database returns succeeds without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ml.data.sources import Columns, Source, open_source, source_url
from ml.data.urls import parse_db_url
from serving.pool import LoadedVersion


class OnlineSources:
    """Sources by database, shared by every model version of a worker."""

    def __init__(
        self, statement_timeout_ms: int, online_urls: Mapping[str, str] | None = None
    ) -> None:
        self.statement_timeout_ms = statement_timeout_ms
        self.online_urls = dict(online_urls or {})
        self._sources: dict[str, Source] = {}  # by URL: versions on one database share a pool
        self._by_version: dict[tuple[str, str], Source] = {}  # the hot path's lookup
        self._lock = threading.Lock()

    def source_for(self, loaded: LoadedVersion) -> Source:
        found = self._by_version.get((loaded.name, loaded.version))
        if found is None:
            found = self._by_version[(loaded.name, loaded.version)] = self._open(loaded)
        return found

    def _open(self, loaded: LoadedVersion) -> Source:
        """The version's source: its URL is resolved (and the environment read) once."""
        override = self.online_urls.get(loaded.name)
        url = parse_db_url(override) if override else source_url(loaded.config.source)
        key = url.render_as_string(hide_password=False)
        source = self._sources.get(key)
        if source is None:
            with self._lock:
                source = self._sources.get(key)
                if source is None:
                    source = open_source(url, statement_timeout_ms=self.statement_timeout_ms)
                    self._sources[key] = source
        return source

    def candidates(self, loaded: LoadedVersion, entity_id: Any) -> Columns:
        """The entity's candidate rows (raw columns, before ``prepare``)."""
        sql = loaded.model.candidates_query()
        return self.source_for(loaded).rows(sql, {"entity_id": entity_id})

    def close(self) -> None:
        with self._lock:
            for source in self._sources.values():
                source.close()
            self._sources.clear()
            self._by_version.clear()
