"""The host manifest: which model versions this host serves, where they are on disk,
their aliases, the A/B split and the VW daemon ports (design decision 8).

The agent writes it; web workers only read it and the local store. It is replaced
atomically (write a temporary file, then ``os.replace``), so a reader sees the old
manifest or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ml.errors import RtmlError
from ml.pyfunc import BUNDLE

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


def bundle_dir(version_path: str | Path) -> Path:
    """Where a pulled version keeps rtml's bundle (config, pipeline, framework files)."""
    return Path(version_path) / "model" / "artifacts" / BUNDLE


class ManifestError(RtmlError):
    """The manifest is missing or cannot be read."""


@dataclass(frozen=True)
class VersionEntry:
    version: str
    path: str  # the pulled version: model/ (the MLflow pyfunc), config.json, version.json
    run_id: str | None
    framework: str
    algorithm: str
    updated_at: str  # ISO 8601, the registry's last update of this version
    vw_port: int | None = None  # the VW daemon serving it, when scored through a daemon


@dataclass(frozen=True)
class ModelEntry:
    name: str
    versions: dict[str, VersionEntry]
    aliases: dict[str, str]  # alias -> version (only versions in ``versions``)
    traffic: dict[str, int]  # alias -> weight, adding up to 100 (empty: no routed endpoint)


@dataclass(frozen=True)
class Manifest:
    models: dict[str, ModelEntry]
    written_at: str
    registry: str = ""  # the tracking URI the versions came from, for /models
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format_version") != FORMAT_VERSION:
            raise ManifestError(
                f"manifest format {data.get('format_version')!r} is not {FORMAT_VERSION}",
                hint="restart rtml serve so the agent writes a new one",
            )
        models = {
            name: ModelEntry(
                name=name,
                versions={v: VersionEntry(**e) for v, e in item["versions"].items()},
                aliases=dict(item["aliases"]),
                traffic={k: int(w) for k, w in item["traffic"].items()},
            )
            for name, item in data["models"].items()
        }
        return cls(
            models=models,
            written_at=data["written_at"],
            registry=data.get("registry", ""),
            extra=data.get("extra", {}),
        )


def write_manifest(store: Path, manifest: Manifest) -> Path:
    store.mkdir(parents=True, exist_ok=True)
    target = store / MANIFEST_FILE
    fd, temp = tempfile.mkstemp(prefix=".manifest.", dir=store)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(manifest.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def read_manifest(store: Path) -> Manifest:
    path = store / MANIFEST_FILE
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError as exc:
        raise ManifestError(
            f"no manifest at {path}", hint="start the service with rtml serve"
        ) from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}") from exc
