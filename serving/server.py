"""``rtml serve``: the agent prepares the host, then gunicorn serves the Flask app.

The gunicorn master is this process. Before forking workers it pulls the model
versions, starts the VW daemons (and supervises them: a daemon that dies is
restarted on its port) and writes the host manifest. Each worker then builds the
app (:func:`serving.app.create_app`), which loads the manifest's versions. Sync
workers, one thread each: XGBoost scores with one thread per worker, so the worker
count is the parallelism (about one per core).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from serving.agent import prepare_host
from serving.app import create_app
from serving.auth import KeyRing
from serving.manifest import Manifest
from serving.settings import Settings
from serving.vw_daemon import DaemonSupervisor

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0


class _Gunicorn(BaseApplication):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        for key, value in {
            "bind": f"{s.host}:{s.port}",
            "workers": s.workers,
            "worker_class": s.worker_class,
            "threads": 1,
            "timeout": s.worker_timeout_s,
            "graceful_timeout": 10,
            "loglevel": s.log_level,
            "proc_name": "rtml-serve",
        }.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.settings)


def serve(settings: Settings, on_ready: Callable[[str], None] | None = None) -> None:
    """Prepare the host and serve until stopped (SIGTERM/SIGINT); daemons stop with it."""
    keys = KeyRing.load(settings.api_keys, settings.api_keys_file)  # a bad key file fails now
    supervisor = DaemonSupervisor()
    try:
        manifest = prepare_host(settings, supervisor)
        _report(settings, manifest, keys)
        if on_ready is not None:
            base = f"http://{settings.host}:{settings.port}"
            threading.Thread(target=_when_ready, args=(base, on_ready), daemon=True).start()
        _Gunicorn(settings).run()
    finally:
        # Workers are forks of this process and leave through this block too; only the
        # master stops the daemons (the supervisor ignores the call in a worker).
        supervisor.stop_all()


def _report(settings: Settings, manifest: Manifest, keys: KeyRing) -> None:
    for model in manifest.models.values():
        for version in model.versions.values():
            aliases = [a for a, v in model.aliases.items() if v == version.version]
            daemon = f", VW daemon on port {version.vw_port}" if version.vw_port else ""
            log.info(
                "serving %s version %s %s (%s %s%s)",
                model.name,
                version.version,
                " ".join("@" + a for a in aliases),
                version.framework,
                version.algorithm,
                daemon,
            )
        if model.traffic:
            log.info("%s traffic: %s", model.name, model.traffic)
    ports = sorted(
        v.vw_port for m in manifest.models.values() for v in m.versions.values() if v.vw_port
    )
    if ports:
        # VW's daemon has no option to bind one interface: it listens on all of them, and
        # it checks no API key. Another host must not reach it.
        log.warning(
            "VW daemons listen on every interface (ports %s; VW cannot bind loopback only): "
            "block them from other hosts with a firewall, or use RTML_VW_MODE=inprocess",
            ", ".join(map(str, ports)),
        )
    if keys.is_open:
        log.warning(
            "no API keys configured (RTML_API_KEYS / RTML_API_KEYS_FILE): the API is open to "
            "anyone who can reach %s:%s",
            settings.host,
            settings.port,
        )


def _when_ready(base: str, callback: Callable[[str], None]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _ready(base):
        if time.monotonic() > deadline:
            log.warning("the service did not become ready within %.0f s", READY_TIMEOUT_S)
            return
        time.sleep(0.2)
    try:
        callback(base)
    except Exception as exc:  # noqa: BLE001 - an example must never take the server down
        log.warning("the example request failed: %s", exc)


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
