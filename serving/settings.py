"""Serving settings: ``RTML_*`` environment variables, overridden by ``rtml serve`` flags.

Everything about a model lives in its config; everything about a host (where to
listen, which models, keys, limits) lives here (design decision 10). Defaults are
safe for a public-facing service: bounded bodies, candidates, top_k and query time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ml.errors import RtmlError

VW_MODES = ("daemon", "inprocess")
WORKER_CLASSES = ("sync", "gthread")


class SettingsError(RtmlError):
    """A serving setting that cannot be used."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    # MODEL@ALIAS or MODEL/VERSION; empty: every registered model's aliased versions
    models: tuple[str, ...] = ()
    # The local model store: downloaded versions and the host manifest.
    store: Path = Path("var/serving")
    # Plain API keys (RTML_API_KEYS, comma-separated) and/or a file of key hashes.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    api_keys_file: Path | None = None
    max_body_bytes: int = 1 << 20
    max_top_k: int = 100
    max_candidates: int = 1000
    max_infer_rows: int = 10_000
    query_timeout_ms: int = 2000
    # "daemon" or "inprocess" for every VW model, with per-model exceptions
    vw_mode: str = "daemon"
    vw_modes: Mapping[str, str] = field(default_factory=dict)
    # Model -> database URL for its online queries, when serving reads another database
    # than training did (a read replica); default: the config's source.
    online_urls: Mapping[str, str] = field(default_factory=dict, repr=False)
    # gunicorn worker class. "sync": one request at a time, the kernel hands each new
    # connection to an idle worker (even load). "gthread" (threads=1): keeps client
    # connections alive, but a connection stays with its worker, so under concurrency one
    # worker can queue requests while another idles (measured: req/s halved in some runs).
    worker_class: str = "sync"
    worker_timeout_s: int = 30
    log_level: str = "info"

    def vw_mode_for(self, model: str) -> str:
        return self.vw_modes.get(model, self.vw_mode)

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with the given (not None) values, e.g. from command-line flags."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


_INTS = ("port", "workers", "max_body_bytes", "max_top_k", "max_candidates", "max_infer_rows",
         "query_timeout_ms", "worker_timeout_s")  # fmt: skip


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``RTML_<FIELD>`` variables (e.g. ``RTML_MAX_TOP_K=50``)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for item in fields(Settings):
        raw = env.get(f"RTML_{item.name.upper()}")
        if raw is None or raw.strip() == "":
            continue
        raw = raw.strip()
        if item.name in _INTS:
            values[item.name] = _positive_int(item.name, raw)
        elif item.name in ("models", "api_keys"):
            values[item.name] = split_list(raw)
        elif item.name in ("store", "api_keys_file"):
            values[item.name] = Path(raw)
        elif item.name == "vw_mode":
            values["vw_mode"], values["vw_modes"] = parse_vw_modes(raw)
        elif item.name == "worker_class":
            if raw not in WORKER_CLASSES:
                raise SettingsError(
                    f"RTML_WORKER_CLASS: unknown worker class {raw!r}",
                    hint=f"use one of {', '.join(WORKER_CLASSES)}",
                )
            values[item.name] = raw
        elif item.name == "online_urls":
            values["online_urls"] = parse_online_urls(raw)
        elif item.name != "vw_modes":
            values[item.name] = raw
    return Settings(**values)


def split_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def parse_vw_modes(raw: str) -> tuple[str, dict[str, str]]:
    """``daemon``, ``inprocess``, or ``daemon,lender_match=inprocess``: (default, per model)."""
    default, per_model = "daemon", {}
    for part in split_list(raw):
        name, _, mode = part.rpartition("=")
        if mode not in VW_MODES:
            raise SettingsError(
                f"RTML_VW_MODE: unknown mode {mode!r} in {part!r}",
                hint=f"use one of {', '.join(VW_MODES)}, or MODEL=MODE",
            )
        if name:
            per_model[name] = mode
        else:
            default = mode
    return default, per_model


def parse_online_urls(raw: str) -> dict[str, str]:
    """``model=URL`` pairs separated by spaces or semicolons (URLs may hold commas)."""
    urls = {}
    for part in raw.replace(";", " ").split():
        name, sep, url = part.partition("=")
        if not sep or not name or not url:
            raise SettingsError(
                f"RTML_ONLINE_URLS: expected MODEL=URL, got {part.split('://')[0]!r}...",
                hint="e.g. RTML_ONLINE_URLS='lender_match=postgresql://replica/db'",
            )
        urls[name] = url
    return urls


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value <= 0:
        raise SettingsError(
            f"RTML_{name.upper()} must be a positive integer, got {raw!r}",
            hint=f"e.g. RTML_{name.upper()}={getattr(Settings, name)}",
        )
    return value
