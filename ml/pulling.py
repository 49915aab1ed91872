"""``rtml pull MODEL@ALIAS DEST``: what a new serving host downloads, verified to load.

DEST receives ``model/`` (the MLflow pyfunc: code, bundle, XGBoost or VW model file),
``config.json`` (the resolved config) and ``version.json`` (name, version, aliases,
run, source). Everything is downloaded into a temporary folder next to DEST, loaded
and scored on the model's own input example, and only then renamed into place, so
DEST never holds a half-downloaded or broken model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from ml.registry import RegistryError, model_version, registered_model, registry_client


def pull_version(name: str, ref: str, dest: Path) -> dict[str, Any]:
    client = registry_client()
    model = registered_model(client, name)
    version = model_version(client, name, ref)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version.version}", dst_path=str(staging / "model")
            )
            if version.run_id:
                client.download_artifacts(version.run_id, "config.json", str(staging))
        except (MlflowException, OSError) as exc:
            raise RegistryError(
                f"cannot download {name} version {version.version}: {str(exc).splitlines()[0]}",
                hint="check the artifact store (S3 bucket and credentials) the server uses",
            ) from exc
        rows = _verify(staging / "model")
        info = {
            "model": name,
            "version": str(version.version),
            "aliases": sorted(
                a for a, v in model.aliases.items() if str(v) == str(version.version)
            ),
            "run_id": version.run_id,
            "source": version.source,
            "created_at": _iso(version.creation_timestamp),
            "updated_at": _iso(version.last_updated_timestamp or version.creation_timestamp),
            "tags": dict(version.tags),
            "verified_rows": rows,
        }
        (staging / "version.json").write_text(json.dumps(info, indent=1))
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
        return info
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _iso(millis: int | None) -> str:
    """A registry timestamp (ms since the epoch) as ISO 8601 UTC."""
    return datetime.fromtimestamp((millis or 0) / 1000, tz=UTC).isoformat(timespec="seconds")


def _verify(model_dir: Path) -> int:
    """Load the pyfunc and score its input example; returns the rows scored."""
    try:
        loaded = mlflow.pyfunc.load_model(str(model_dir))
        example = loaded.input_example
        if example is None:
            return 0
        frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
        scores = loaded.predict(frame)
    except Exception as exc:  # noqa: BLE001 - any failure means this model must not be used
        raise RegistryError(
            f"the downloaded model does not load and score: {type(exc).__name__}: {exc}",
            hint="check that this host has the same rtml and library versions",
        ) from exc
    if len(scores) != len(frame):
        raise RegistryError(f"the model returned {len(scores)} scores for {len(frame)} rows")
    return len(frame)
