"""The small parts of serving on their own: settings, sticky routing, API keys, manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.auth import KeyFileError, KeyRing, hash_key, new_key
from serving.errors import Forbidden, Unauthorized
from serving.manifest import (
    Manifest,
    ManifestError,
    ModelEntry,
    VersionEntry,
    read_manifest,
    write_manifest,
)
from serving.routing import choose_alias
from serving.settings import Settings, SettingsError, settings_from_env


def test_settings_from_the_environment_and_their_errors() -> None:
    settings = settings_from_env(
        {
            "RTML_PORT": "9000",
            "RTML_MODELS": "a@champion, b/3",
            "RTML_API_KEYS": "k1,k2",
            "RTML_VW_MODE": "daemon,lender_match=inprocess",
            "RTML_ONLINE_URLS": "lender_match=postgresql://replica/db;other=sqlite:///x.db",
            "RTML_MAX_TOP_K": "5",
        }
    )
    assert (settings.port, settings.models, settings.max_top_k) == (9000, ("a@champion", "b/3"), 5)
    assert settings.vw_mode_for("lender_match") == "inprocess"
    assert settings.vw_mode_for("other") == "daemon"
    assert settings.online_urls["other"] == "sqlite:///x.db"
    assert "k1" not in repr(settings) and "replica" not in repr(settings)  # secrets stay out
    assert settings.with_overrides(port=None, workers=4).workers == 4
    for bad in (
        {"RTML_PORT": "eighty"},
        {"RTML_VW_MODE": "fast"},
        {"RTML_ONLINE_URLS": "x"},
        {"RTML_WORKER_CLASS": "eventlet"},
    ):
        with pytest.raises(SettingsError):
            settings_from_env(bad)


def test_routing_is_deterministic_weighted_and_order_independent() -> None:
    split = {"champion": 90, "challenger": 10}
    chosen = [choose_alias("m", entity, split) for entity in range(5000)]
    assert chosen == [choose_alias("m", entity, split) for entity in range(5000)]
    assert chosen == [choose_alias("m", e, {"challenger": 10, "champion": 90}) for e in range(5000)]
    assert 0.08 < chosen.count("challenger") / len(chosen) < 0.12
    assert choose_alias("m", 1, {}) is None
    assert {choose_alias("m", e, {"champion": 100, "challenger": 0}) for e in range(99)} == {
        "champion"
    }
    # Another model splits the same entities independently.
    other = [choose_alias("n", entity, split) for entity in range(5000)]
    assert other != chosen


def test_api_keys_from_env_and_hash_file(tmp_path: Path) -> None:
    key = new_key()
    assert key.startswith("rtml_") and len(key) > 40
    key_file = tmp_path / "keys"
    key_file.write_text(f"{hash_key(key)} lender_match  # the website\n\n")
    ring = KeyRing.load(("plain",), key_file)
    ring.authorize("Bearer plain", "anything")
    ring.authorize(f"bearer {key}", "lender_match")
    with pytest.raises(Forbidden):
        ring.authorize(f"Bearer {key}", "other")
    for header in (None, "", "Bearer", "Basic abc", "Bearer wrong"):
        with pytest.raises(Unauthorized):
            ring.authorize(header, "lender_match")
    assert KeyRing.load((), None).is_open
    key_file.write_text("not-a-hash\n")
    with pytest.raises(KeyFileError, match="keys:1"):
        KeyRing.load((), key_file)
    with pytest.raises(KeyFileError, match="cannot read"):
        KeyRing.load((), tmp_path / "missing")


def test_manifest_round_trip_and_errors(tmp_path: Path) -> None:
    version = VersionEntry("1", "/srv/m/1", "run", "xgboost", "gbtree", "2026-12-01T00:00:00")
    manifest = Manifest(
        models={"m": ModelEntry("m", {"1": version}, {"champion": "1"}, {"champion": 100})},
        written_at="now",
    )
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp files left
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(tmp_path / "empty")
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ManifestError):
        read_manifest(tmp_path)


def test_default_settings_are_safe() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.max_body_bytes == 1 << 20 and settings.query_timeout_ms <= 5000
