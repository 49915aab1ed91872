"""The host agent: registry -> local model store -> VW daemons -> host manifest.

Design decision 8. Here it runs once when ``rtml serve`` starts, in the gunicorn
master before any worker exists; the hot-swap issue turns it into a long-running
process of its own that also reacts to registry changes. Versions are immutable in
the registry, so a version already in the store (complete and verified by
:func:`ml.pulling.pull_version`) is reused, not downloaded again.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from mlflow.tracking import MlflowClient

from ml.pulling import pull_version
from ml.pyfunc import FRAMEWORK_DIR
from ml.registry import (
    RegistryError,
    model_version,
    parse_reference,
    registered_model,
    registry_client,
    traffic,
)
from ml.tracking import use_tracking
from serving.manifest import Manifest, ModelEntry, VersionEntry, bundle_dir, write_manifest
from serving.settings import Settings
from serving.vw_daemon import DEFAULT_CHILDREN, DaemonSupervisor, VWDaemon

log = logging.getLogger(__name__)

VW_MODEL_FILE = "model.vw"


def wanted_versions(client: MlflowClient, refs: tuple[str, ...]) -> dict[str, set[str]]:
    """``MODEL@ALIAS`` / ``MODEL/VERSION`` references -> versions per model.

    With no references: every registered model's aliased versions.
    """
    wanted: dict[str, set[str]] = {}
    if refs:
        for text in refs:
            name, ref = parse_reference(text)
            version = model_version(client, name, ref)
            wanted.setdefault(name, set()).add(str(version.version))
        return wanted
    for model in client.search_registered_models():
        if model.aliases:
            wanted[model.name] = {str(v) for v in model.aliases.values()}
    if not wanted:
        raise RegistryError(
            f"no registered model has an aliased version in {use_tracking()}",
            hint="promote one with rtml promote MODEL VERSION champion, "
            "or name versions with --models MODEL/VERSION",
        )
    return wanted


def prepare_host(settings: Settings, supervisor: DaemonSupervisor | None) -> Manifest:
    """Pull the wanted versions, start their VW daemons, write and return the manifest.

    Pulling verifies each version by loading and scoring it, which starts XGBoost's
    OpenMP threads; a process that forks gunicorn workers afterwards deadlocks them
    (OpenMP is not fork-safe). So the pulling runs in a fresh (spawned) process.
    """
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as child:
        models = child.submit(pull_models, settings).result()
    for name, model in models.items():
        if settings.vw_mode_for(name) != "daemon":
            continue
        for version, entry in list(model.versions.items()):
            if entry.framework == "vw":
                model.versions[version] = _with_daemon(entry, supervisor, settings.workers)
    manifest = Manifest(
        models=models, written_at=datetime.now(UTC).isoformat(), registry=use_tracking()
    )
    write_manifest(settings.store, manifest)
    return manifest


def pull_models(settings: Settings) -> dict[str, ModelEntry]:
    """The wanted versions in the local store (downloaded if new), with aliases and split."""
    _log_to_stderr()
    client = registry_client()
    models: dict[str, ModelEntry] = {}
    for name, versions in sorted(wanted_versions(client, settings.models).items()):
        registered = registered_model(client, name)
        entries = {v: _local_version(settings.store, name, v) for v in sorted(versions, key=int)}
        aliases = {a: str(v) for a, v in registered.aliases.items() if str(v) in entries}
        split = {a: w for a, w in traffic(registered).items() if a in aliases and w > 0}
        if split and sum(split.values()) != 100:
            log.warning(
                "%s: the traffic split %s names aliases this host does not serve; "
                "the rest is spread over those it does",
                name,
                split,
            )
        models[name] = ModelEntry(name, entries, aliases, split)
    return models


def _log_to_stderr() -> None:
    """A spawned child starts with no logging setup: show the agent's progress lines."""
    if not log.handlers and not logging.getLogger("serving").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("serving").addHandler(handler)
        logging.getLogger("serving").setLevel(logging.INFO)
        logging.getLogger("mlflow").setLevel(logging.WARNING)


def _local_version(store: Path, name: str, version: str) -> VersionEntry:
    dest = store / "models" / name / version
    info_file = dest / "version.json"
    if info_file.exists():
        log.info("%s version %s: already in %s", name, version, dest)
        info = json.loads(info_file.read_text())
    else:
        log.info("%s version %s: downloading into %s", name, version, dest)
        info = pull_version(name, version, dest)
    tags = info.get("tags", {})
    return VersionEntry(
        version=version,
        path=str(dest.resolve()),
        run_id=info.get("run_id"),
        framework=tags.get("framework", "?"),
        algorithm=tags.get("algorithm", "?"),
        updated_at=info.get("updated_at", ""),
    )


def _with_daemon(
    entry: VersionEntry, supervisor: DaemonSupervisor | None, workers: int
) -> VersionEntry:
    if supervisor is None:
        raise RegistryError("VW daemons need the serving agent's supervisor")
    model_file = bundle_dir(entry.path) / FRAMEWORK_DIR / VW_MODEL_FILE
    # Each worker's persistent connection holds one daemon child; leave room for
    # connections of workers gunicorn is replacing.
    daemon = VWDaemon(model_file, num_children=max(DEFAULT_CHILDREN, 2 * workers))
    supervisor.add(daemon)  # starts it and restarts it whenever it dies
    return VersionEntry(**{**entry.__dict__, "vw_port": daemon.port})
