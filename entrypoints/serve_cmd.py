"""``rtml serve`` (the prediction service) and ``rtml api-key`` (a key for it)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import click

from serving.auth import hash_key, new_key
from serving.manifest import read_manifest
from serving.settings import Settings, parse_vw_modes, settings_from_env, split_list


@click.command("serve")
@click.option("--host", help="Interface to listen on. Env: RTML_HOST. [default: 127.0.0.1]")
@click.option("--port", type=int, help="Port. Env: RTML_PORT. [default: 8000]")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="gunicorn worker processes, one request at a time each; about one per core. "
    "Env: RTML_WORKERS. [default: 2]",
)
@click.option(
    "--models",
    help="What to serve, comma-separated MODEL@ALIAS or MODEL/VERSION, e.g. "
    "lender_match@champion,lender_match@challenger. Default: every registered model's "
    "aliased versions. Env: RTML_MODELS.",
)
@click.option(
    "--vw-mode",
    help="How VW models score: 'daemon' (a VW daemon per version, default) or 'inprocess' "
    "(pyvw in each worker); per model as MODEL=MODE. Env: RTML_VW_MODE.",
)
@click.option(
    "--store",
    type=click.Path(path_type=Path, file_okay=False),
    help="Local model store and host manifest. Env: RTML_STORE. [default: var/serving]",
)
@click.option(
    "--api-keys-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File of API key hashes (lines from rtml api-key). Env: RTML_API_KEYS_FILE; plain "
    "keys: RTML_API_KEYS.",
)
@click.option(
    "--example",
    is_flag=True,
    help="Once ready, send one example rank request and print it, its response and a curl "
    "line to try (what make demo shows).",
)
def serve_cmd(
    host: str | None,
    port: int | None,
    workers: int | None,
    models: str | None,
    vw_mode: str | None,
    store: Path | None,
    api_keys_file: Path | None,
    example: bool,
) -> None:
    """Serve registered models over HTTP until stopped (Ctrl-C).

    Pulls the versions from the MLflow registry (MLFLOW_TRACKING_URI) into the local
    store, starts a VW daemon per VW version, and runs gunicorn. Endpoints: POST
    /models/NAME/rank (A/B routed by the model's traffic split, sticky per entity),
    POST /models/NAME/versions/V/rank, the Open Inference Protocol under /v2, GET
    /models and GET /openapi.json. Limits: RTML_MAX_BODY_BYTES, RTML_MAX_TOP_K,
    RTML_MAX_CANDIDATES, RTML_MAX_INFER_ROWS, RTML_QUERY_TIMEOUT_MS.
    """
    from serving.server import serve

    settings = settings_from_env().with_overrides(
        host=host,
        port=port,
        workers=workers,
        models=split_list(models) if models is not None else None,
        store=store,
        api_keys_file=api_keys_file,
    )
    if vw_mode is not None:
        default, per_model = parse_vw_modes(vw_mode)
        settings = settings.with_overrides(vw_mode=default, vw_modes=per_model)
    serve(settings, on_ready=(lambda base: _example(settings, base)) if example else None)


@click.command("api-key")
@click.option("--models", help="Comma-separated models the key may use; default: all.")
def api_key(models: str | None) -> None:
    """Make a new API key and the line that allows it in an API key file.

    Give the key to the client; append the line to the file named by
    RTML_API_KEYS_FILE (it holds only the key's SHA-256, never the key).
    """
    key = new_key()
    allowed = ",".join(split_list(models)) if models else ""
    click.echo(f"key:  {key}")
    click.echo(f"line: {hash_key(key)} {allowed}".rstrip())


def _example(settings: Settings, base: str) -> None:
    """One rank request for an entity of the first model's input example."""
    manifest = read_manifest(settings.store)
    name, entry = next(iter(sorted(manifest.models.items())))
    version = next(iter(entry.versions.values()))
    example = json.loads((Path(version.path) / "model" / "input_example.json").read_text())
    config = json.loads((Path(version.path) / "config.json").read_text())
    entity_column = config["data"]["entity_column"]
    row = dict(zip(example["columns"], example["data"][0], strict=True))
    body = {"entity_id": row[entity_column], "top_k": 3}
    url = f"{base}/models/{name}/rank"
    headers = {"Content-Type": "application/json"}
    if settings.api_keys:
        headers["Authorization"] = f"Bearer {settings.api_keys[0]}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    # Keep the printout short: four of the features that differ between the items.
    items = answer["items"]
    varying = [k for k in items[0]["features"] if len({str(i["features"][k]) for i in items}) > 1]
    for item in items:
        item["features"] = {k: item["features"][k] for k in varying[:4]} | {"...": "..."}
    click.echo(f"\nExample: POST {url}\n{json.dumps(body)}\n")
    click.echo(json.dumps(answer, indent=1))
    auth = ' -H "Authorization: Bearer $KEY"' if settings.api_keys else ""
    click.echo(
        f"\nTry it:\n  curl -s {url} -H 'Content-Type: application/json'{auth} "
        f"-d '{json.dumps(body)}'\n\nThe service runs on {base} until Ctrl-C.",
    )
