"""rtml serve against MLflow's and a bare handler's serving of the same model, in one run.

Run: .venv/bin/python bench/serve_bench.py [--quick] [--duration 10] [--businesses 20000]

1. Open Inference Protocol. One XGBoost model (300 trees, depth 6, 30 numeric
   features, no custom prepare) trained and registered through ``rtml train`` on a
   synthetic SQLite table, then served three ways with 2 workers each:
     rtml   ``rtml serve`` -> POST /v2/models/<name>/versions/<v>/infer
     bare   Flask + gunicorn (2 sync workers, bench/serve_bare_app.py): json.loads,
            one float32 matrix, ``Booster.inplace_predict`` on the pulled UBJ file
     MLflow ``mlflow models serve -m models:/<name>/<v> --env-manager local --workers 2``
            (uvicorn) -> POST /invocations with ``dataframe_split``
   Every request carries the same 50 rows. rtml and bare must return identical
   scores (and MLflow the same within float noise) before anything is timed.
2. Ranking. Demo marketplace in a fresh Postgres database; lender_match trained
   from it with XGBoost gbtree and VW logistic; POST /models/lender_match/versions/
   <v>/rank with a random entity_id per request, each fetching the business's
   candidates with the config's candidates_query (cut to --candidates rows; the demo
   catalogue has ~100 products), scored by XGBoost, a VW daemon, and VW in process.

Load comes from wrk (apt-get install wrk; Lua scripts for the bodies): req/s at 8
connections, p50/p99 latency at 1 connection, after a warm-up. Everything lives in
a temporary folder and database; every server is stopped at the end, also on error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: rtml, gunicorn, mlflow, uvicorn
PG_ADMIN = os.environ.get("RTML_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKERS = 2
FEATURES = [f"f{i:02d}" for i in range(30)]
XGB_MODEL = "serve_bench_xgb"
ROWS = 50
TOP_K = 10
STOP_TIMEOUT_S = 20.0
READY_TIMEOUT_S = 180.0

TARGETS = {
    "mlflow": "at 8 connections rtml >= 10x MLflow's req/s",
    "bare": "at 8 connections rtml >= 0.9x the bare handler's req/s",
    "p99": "at 1 connection rtml p99 <= 6 ms",
    "rank_p99": "rank p99 <= 10 ms at 1 connection",
    "rank_rps": "rank >= 250 req/s at 8 connections",
}

# --- wrk ------------------------------------------------------------------------------

WRK_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""
WRK_POST = (
    r"""
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
"""
    + WRK_DONE
)
WRK_RANK = (
    r"""
local lo, hi = tonumber(os.getenv("BENCH_ID_LO")), tonumber(os.getenv("BENCH_ID_HI"))
local top_k = os.getenv("BENCH_TOP_K")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end
function request()
  local body = string.format('{"entity_id":%d,"top_k":%s}', math.random(lo, hi), top_k)
  return wrk.format(nil, nil, nil, body)
end
"""
    + WRK_DONE
)


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int


def wrk(url: str, script: Path, connections: int, seconds: float, env: dict[str, str]) -> Load:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    done = subprocess.run(
        [*command, "-s", str(script), url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    found = re.search(r"^WRKJSON (.*)$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    s = json.loads(found.group(1))
    if s["errors"] or not s["requests"]:
        raise RuntimeError(f"wrk against {url}: {s['errors']} errors\n{done.stdout}")
    return Load(
        s["requests"] / (s["duration_us"] / 1e6),
        s["p50_us"] / 1e3,
        s["p99_us"] / 1e3,
        s["requests"],
    )


# --- processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process below ``root``, also those in other sessions."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            started = _start_time(child)
            if started is not None:
                found.append((child, started))
                todo.append(child)
    return found


@dataclass
class Server:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM to the process group, bounded waits, then SIGKILL; leftovers by pid."""
        below = descendants(self.proc.pid)  # VW daemons run in sessions of their own
        if self.proc.poll() is None:
            with _quiet():
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with _quiet():
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

        def survivors() -> list[int]:  # same pid and start time: not a reused pid
            return [pid for pid, started in below if _start_time(pid) == started]

        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in survivors():
                with _quiet():
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while survivors() and time.monotonic() < deadline:
                time.sleep(0.1)
        if survivors():
            print(f"warning: {self.name}: still alive: {survivors()}", file=sys.stderr)


def _quiet() -> suppress:
    return suppress(ProcessLookupError, PermissionError)


@dataclass
class Servers:
    """Every server the bench starts; ``stop_all`` runs in main's ``finally``."""

    folder: Path
    env: dict[str, str]
    started: list[Server] = field(default_factory=list)

    def start(
        self, name: str, command: list[str], port: int, env: dict[str, str] | None = None
    ) -> Server:
        log = self.folder / f"{name.replace(' ', '_')}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group to stop
            )
        server = Server(name, f"http://127.0.0.1:{port}", proc, log)
        self.started.append(server)
        return server

    def wait_ready(self, server: Server, path: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(server.base + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{server.name} not ready in {READY_TIMEOUT_S:.0f} s: {server.log}")

    def stop(self, server: Server) -> None:
        server.stop()
        self.started.remove(server)

    def stop_all(self) -> None:
        for server in reversed(self.started):
            server.stop()
        self.started.clear()


def rtml_serve(port: int, store: Path, models: str, *extra: str) -> list[str]:
    command = [str(BIN / "rtml"), "serve", "--port", str(port), "--workers", str(WORKERS)]
    return [*command, "--models", models, "--store", str(store), *extra]


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: {exc.code} {exc.read()[:2000]!r}") from exc


def rtml_train(model: str, env: dict[str, str], *args: str) -> str:
    """Train and register through the CLI; the registered version."""
    done = subprocess.run(
        [str(BIN / "rtml"), "train", model, "--register", "-q", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    found = re.search(rf"registered\s+{model} version (\d+)", done.stdout)
    if done.returncode or not found:
        raise RuntimeError(f"rtml train {model} failed:\n{done.stdout}\n{done.stderr}")
    return found.group(1)


# --- 1. Open Inference Protocol -------------------------------------------------------


def synthetic_model(folder: Path, rows: int) -> Path:
    """A SQLite table of 30 numeric features (2% missing) and a nonlinear label; its config."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, len(FEATURES)))
    x[rng.random(x.shape) < 0.02] = np.nan
    z = np.nan_to_num(x) @ rng.normal(size=len(FEATURES)) * 0.5
    z += np.sin(np.nan_to_num(x[:, 0]) * 3) + np.nan_to_num(x[:, 1] * x[:, 2])
    label = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(int)
    day = np.datetime64("2025-01-01") + np.sort(rng.integers(0, 365, rows)).astype("m8[D]")
    db = folder / "synthetic.db"
    with sqlite3.connect(db) as con:
        columns = ", ".join(f"{name} REAL" for name in FEATURES)
        con.execute(f"CREATE TABLE examples (id INTEGER PRIMARY KEY, ts TIMESTAMP, {columns}, y)")
        con.executemany(
            f"INSERT INTO examples VALUES ({', '.join('?' * (len(FEATURES) + 3))})",
            (
                (
                    i,
                    f"{day[i]} 00:00:00",
                    *(None if np.isnan(v) else float(v) for v in x[i]),
                    int(label[i]),
                )
                for i in range(rows)
            ),
        )
    config = {
        "config_version": 1,
        "name": XGB_MODEL,
        "description": "bench/serve_bench.py: 30 numeric features, no custom prepare.",
        "task": "binary",
        "model_class": "ml.model:Model",
        "source": {"url": f"sqlite:///{db}"},
        "windows": {
            "time_column": "ts",
            "train": {"start": "2025-01-01", "end": "2025-10-01"},
            "test": {"start": "2025-10-01", "end": "2026-01-01"},
        },
        "data": {
            "query": f"SELECT ts, {', '.join(FEATURES)}, y FROM examples "
            "WHERE ts >= :start AND ts < :end ORDER BY id",
            "label": {"column": "y"},
        },
        "features": [{"name": name, "type": "numeric"} for name in FEATURES],
        "xgboost": {
            "params": {"eta": 0.1, "max_depth": 6},
            "num_boost_round": 300,
            "early_stopping_rounds": None,  # exactly 300 trees
        },
    }
    configs = folder / "configs"
    (configs / XGB_MODEL).mkdir(parents=True)
    (configs / XGB_MODEL / "v1.json").write_text(json.dumps(config, indent=1))
    return configs


def payloads(folder: Path) -> tuple[Path, Path, np.ndarray]:
    """The same 50 rows as an Open Inference Protocol body and as MLflow's dataframe_split."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(ROWS, len(FEATURES))).round(6)
    x[rng.random(x.shape) < 0.02] = np.nan
    columns = {
        name: [None if np.isnan(v) else float(v) for v in x[:, i]]
        for i, name in enumerate(FEATURES)
    }
    ts = ["2025-11-01 00:00:00"] * ROWS  # the time column is in the model's signature
    tensors = [{"name": "ts", "shape": [ROWS], "datatype": "BYTES", "data": ts}]
    tensors += [
        {"name": name, "shape": [ROWS], "datatype": "FP64", "data": values}
        for name, values in columns.items()
    ]
    infer = folder / "infer.json"
    infer.write_text(json.dumps({"inputs": tensors}))
    names = ["ts", *FEATURES]
    data = [list(row) for row in zip(ts, *columns.values(), strict=True)]
    split = folder / "mlflow.json"
    split.write_text(json.dumps({"dataframe_split": {"columns": names, "data": data}}))
    return infer, split, x


def bench_infer(args: argparse.Namespace, folder: Path, servers: Servers) -> dict[str, Any]:
    started = time.perf_counter()
    configs = synthetic_model(folder, args.rows)
    version = rtml_train(XGB_MODEL, servers.env, "--configs-dir", str(configs))
    print(f"  trained {XGB_MODEL} v{version} ({time.perf_counter() - started:.0f} s)", flush=True)
    store = folder / "store-infer"
    ports = {name: free_port() for name in ("rtml", "bare", "bare_orjson", "mlflow")}
    rtml = servers.start(
        "rtml infer",
        rtml_serve(ports["rtml"], store, f"{XGB_MODEL}/{version}"),
        ports["rtml"],
    )
    mlflow = servers.start(
        "mlflow serve",
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{XGB_MODEL}/{version}",
            "--env-manager",
            "local",
            "--workers",
            str(WORKERS),
            "-p",
            str(ports["mlflow"]),
        ],
        ports["mlflow"],
    )
    servers.wait_ready(rtml, "/v2/health/ready")
    booster = store / "models" / XGB_MODEL / version / "model/artifacts/rtml/framework/model.ubj"

    def bare_server(label: str, port: int, json_library: str) -> Server:
        command = [
            str(BIN / "gunicorn"), "--workers", str(WORKERS), "--worker-class", args.worker_class,
            "--threads", "1", "--bind", f"127.0.0.1:{port}",
            "--pythonpath", str(ROOT / "bench"), "serve_bare_app:app",
        ]  # fmt: skip
        env = {"SERVE_BARE_MODEL": str(booster), "SERVE_BARE_JSON": json_library}
        return servers.start(label, command, port, env=env)

    bare = bare_server("bare flask", ports["bare"], "json")
    # The same handler reading the body with orjson, as rtml does: what the JSON library
    # alone is worth, so the rtml / bare ratio can be read both ways.
    bare_orjson = bare_server("bare flask + orjson", ports["bare_orjson"], "orjson")
    servers.wait_ready(bare_orjson, "/ready")
    servers.wait_ready(bare, "/ready")
    servers.wait_ready(mlflow, "/ping")

    infer_body, split_body, x = payloads(folder)
    urls = {
        "rtml": f"{rtml.base}/v2/models/{XGB_MODEL}/versions/{version}/infer",
        "bare": f"{bare.base}/infer",
        "bare_orjson": f"{bare_orjson.base}/infer",
        "mlflow": f"{mlflow.base}/invocations",
    }
    bodies = {
        "rtml": infer_body,
        "bare": infer_body,
        "bare_orjson": infer_body,
        "mlflow": split_body,
    }
    scores = {}
    for name, url in urls.items():
        answer = post(url, bodies[name].read_bytes())
        data = answer["predictions"] if name == "mlflow" else answer["outputs"][0]["data"]
        scores[name] = np.asarray(data, dtype=np.float64)
    assert scores["rtml"].shape == (ROWS,), scores["rtml"].shape
    assert np.array_equal(scores["rtml"], scores["bare"]), "rtml and bare scores differ"
    assert np.allclose(scores["rtml"], scores["mlflow"], rtol=0, atol=1e-6), "MLflow differs"
    print(
        f"  scores agree: rtml == bare (exactly), MLflow within 1e-6; {ROWS} rows, "
        f"{np.isnan(x).sum()} missing values, body {infer_body.stat().st_size:,} bytes "
        f"(MLflow {split_body.stat().st_size:,})",
        flush=True,
    )

    script = folder / "post.lua"
    script.write_text(WRK_POST)
    results: dict[str, dict[str, Load]] = {name: {} for name in urls}
    for name in urls:  # warm each server: first-request costs, allocator, caches
        wrk(urls[name], script, 8, args.warmup, {"BENCH_BODY": str(bodies[name])})
    for connections in (8, 1):
        for name in urls:
            results[name][f"c{connections}"] = wrk(
                urls[name], script, connections, args.duration, {"BENCH_BODY": str(bodies[name])}
            )
            load = results[name][f"c{connections}"]
            print(
                f"  {name:11} c={connections}: {load.rps:8.1f} req/s  p50 {load.p50_ms:6.2f} ms"
                f"  p99 {load.p99_ms:6.2f} ms",
                flush=True,
            )
    for server in (rtml, bare, bare_orjson, mlflow):
        servers.stop(server)
    return {"version": version, "results": results}


# --- 2. Ranking -----------------------------------------------------------------------


@contextmanager
def scratch_database() -> Iterator[str]:
    import psycopg2
    from psycopg2 import sql

    name = f"rtml_serve_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(PG_ADMIN, connect_timeout=5)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()


def analyze(database: str) -> None:
    """Planner statistics, as autovacuum would gather them (it is off on this machine).

    Without them Postgres answers the candidates query's correlated subquery (the
    business's latest requested amount) by scanning applications backwards by date:
    ~17 ms for 2,000 businesses instead of 0.4 ms, growing with the table.
    """
    import psycopg2

    connection = psycopg2.connect(database, connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    finally:
        connection.close()


def candidates_query(limit: int) -> str:
    config = json.loads((ROOT / "configs/lender_match/v1.json").read_text())
    query = config["data"]["candidates_query"]
    return f"{query} LIMIT {limit}" if limit else query


def bench_rank(
    args: argparse.Namespace, folder: Path, servers: Servers, database: str
) -> dict[str, Any]:
    from ml.data.urls import parse_db_url
    from ml.demo import DemoSpec, load_demo_data

    started = time.perf_counter()
    load_demo_data(parse_db_url(database), DemoSpec(businesses=args.businesses), progress=False)
    if args.analyze:
        analyze(database)
    sets = [
        "--set",
        f"source.url={database}",
        "--set",
        f"data.candidates_query={candidates_query(args.candidates)}",
    ]
    xgb_v = rtml_train("lender_match", servers.env, "--framework", "xgboost", *sets)
    vw_v = rtml_train(
        "lender_match", servers.env, "--framework", "vw", "--algorithm", "logistic", *sets
    )
    print(
        f"  demo data ({args.businesses:,} businesses) in Postgres, lender_match xgboost "
        f"v{xgb_v}, vw v{vw_v} ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    ports = [free_port(), free_port()]
    daemon = servers.start(
        "rtml rank daemon",
        rtml_serve(ports[0], folder / "store-rank", f"lender_match/{xgb_v},lender_match/{vw_v}"),
        ports[0],
    )
    inprocess = servers.start(
        "rtml rank inprocess",
        rtml_serve(
            ports[1],
            folder / "store-rank-inprocess",
            f"lender_match/{vw_v}",
            "--vw-mode",
            "inprocess",
        ),
        ports[1],
    )
    servers.wait_ready(daemon, "/v2/health/ready")
    servers.wait_ready(inprocess, "/v2/health/ready")
    urls = {
        "XGBoost": f"{daemon.base}/models/lender_match/versions/{xgb_v}/rank",
        "VW daemon": f"{daemon.base}/models/lender_match/versions/{vw_v}/rank",
        "VW in process": f"{inprocess.base}/models/lender_match/versions/{vw_v}/rank",
    }
    # Checks: every scorer answers; the count of candidates; daemon == in process.
    probe = json.dumps({"entity_id": 1}).encode()
    items = {name: post(url, probe)["items"] for name, url in urls.items()}
    counts = {name: len(found) for name, found in items.items()}
    assert len(set(counts.values())) == 1, counts
    daemon_scores, inprocess_scores = (
        {item["id"]: item["score"] for item in items[name]}
        for name in ("VW daemon", "VW in process")
    )
    assert daemon_scores.keys() == inprocess_scores.keys()
    assert all(abs(daemon_scores[k] - inprocess_scores[k]) < 1e-4 for k in daemon_scores), (
        "the VW daemon and VW in process score differently"
    )
    print(
        f"  {counts['XGBoost']} candidates per business; VW daemon and in process agree", flush=True
    )

    script = folder / "rank.lua"
    script.write_text(WRK_RANK)
    env = {"BENCH_ID_LO": "1", "BENCH_ID_HI": str(args.businesses), "BENCH_TOP_K": str(TOP_K)}
    results: dict[str, dict[str, Load]] = {name: {} for name in urls}
    for url in urls.values():
        wrk(url, script, 8, args.warmup, env)
    for connections in (8, 1):
        for name, url in urls.items():
            load = results[name][f"c{connections}"] = wrk(
                url, script, connections, args.duration, env
            )
            print(
                f"  {name:13} c={connections}: {load.rps:8.1f} req/s  p50 {load.p50_ms:6.2f} ms"
                f"  p99 {load.p99_ms:6.2f} ms",
                flush=True,
            )
    for server in (daemon, inprocess):
        servers.stop(server)
    return {"candidates": counts["XGBoost"], "results": results}


# --- report ---------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    args: argparse.Namespace, infer: dict[str, Any] | None, rank: dict[str, Any] | None
) -> None:
    print(
        f"\nServing bench: {os.cpu_count()} cores, {WORKERS} workers per server, wrk 1 thread, "
        f"{args.duration:g} s per measurement after {args.warmup:g} s warm-up; load average "
        f"{args.load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n"
    )
    if infer:
        r = infer["results"]
        print(f"1. POST {ROWS} rows, XGBoost 300 trees depth 6, 30 numeric features\n")
        print("| server | req/s, 8 conn. | p50, 1 conn. | p99, 1 conn. | req/s, 1 conn. |")
        print("|---|---|---|---|---|")
        kind = f"gunicorn, {WORKERS} {args.worker_class} workers"
        labels = {
            "rtml": f"rtml `/v2/models/<m>/versions/<v>/infer` ({kind}; body read by orjson)",
            "bare": f"bare Flask handler ({kind}, `json.loads`, `inplace_predict`)",
            "bare_orjson": f"the same bare handler reading the body with orjson ({kind})",
            "mlflow": f"`mlflow models serve --workers {WORKERS}` (uvicorn), `/invocations`",
        }
        for name, label in labels.items():
            c8, c1 = r[name]["c8"], r[name]["c1"]
            print(
                f"| {label} | {c8.rps:,.0f} | {c1.p50_ms:.2f} ms | {c1.p99_ms:.2f} ms "
                f"| {c1.rps:,.0f} |"
            )
        vs_mlflow = r["rtml"]["c8"].rps / r["mlflow"]["c8"].rps
        vs_bare = r["rtml"]["c8"].rps / r["bare"]["c8"].rps
        p99 = r["rtml"]["c1"].p99_ms
        print()
        print(
            f"  rtml / MLflow req/s  {vs_mlflow:5.2f}x  target: {TARGETS['mlflow']}"
            f"  {verdict(vs_mlflow >= 10)}"
        )
        print(
            f"  rtml / bare req/s    {vs_bare:5.2f}x  target: {TARGETS['bare']}"
            f"  {verdict(vs_bare >= 0.9)}"
        )
        print(f"  rtml p99 1 conn.  {p99:5.2f} ms  target: {TARGETS['p99']}  {verdict(p99 <= 6)}")
        vs_orjson = r["rtml"]["c8"].rps / r["bare_orjson"]["c8"].rps
        print(f"  (rtml / bare handler with orjson req/s {vs_orjson:.2f}x)")
        print(
            f"  (1 connection: rtml p50 {r['rtml']['c1'].p50_ms / r['bare']['c1'].p50_ms:.2f}x "
            f"bare's, MLflow's p50 {r['mlflow']['c1'].p50_ms / r['rtml']['c1'].p50_ms:.1f}x "
            "rtml's)\n"
        )
    if rank:
        r = rank["results"]
        print(
            f"2. POST /models/lender_match/versions/<v>/rank, top_k {TOP_K}, random entity of "
            f"{args.businesses:,}, Postgres fetch of {rank['candidates']} candidates\n"
        )
        print(
            "| scorer | p50, 1 conn. | p99, 1 conn. | req/s, 8 conn. | p99 <= 10 ms "
            "| >= 250 req/s |"
        )
        print("|---|---|---|---|---|---|")
        for name, loads in r.items():
            c8, c1 = loads["c8"], loads["c1"]
            print(
                f"| {name} | {c1.p50_ms:.2f} ms | {c1.p99_ms:.2f} ms | {c8.rps:,.0f} "
                f"| {verdict(c1.p99_ms <= 10)} | {verdict(c8.rps >= 250)} |"
            )
        print(f"\n  targets: {TARGETS['rank_p99']}; {TARGETS['rank_rps']}")
        if not args.analyze:
            print("  (demo tables without planner statistics: --no-analyze)")


# --- main -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--duration", type=float, help="seconds per measurement (default 10)")
    parser.add_argument("--businesses", type=int, help="demo businesses (default 20000)")
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic training rows")
    parser.add_argument(
        "--candidates",
        type=int,
        default=50,
        help="cut the candidates query to N rows (0: as shipped, ~100)",
    )
    parser.add_argument("--parts", default="infer,rank", help="infer, rank or both")
    parser.add_argument(
        "--worker-class",
        default="sync",
        choices=("sync", "gthread"),
        help="gunicorn worker class of rtml and the bare handler alike (default: rtml's)",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="leave the demo tables without planner statistics (ANALYZE)",
    )
    args = parser.parse_args()
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.warmup = 1.0 if args.quick else 3.0
    args.businesses = args.businesses or (2_000 if args.quick else 20_000)
    if args.quick:
        args.rows = min(args.rows, 5_000)
    parts = set(args.parts.split(","))
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    # SIGTERM unwinds like Ctrl-C, so the finally below stops every server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    with tempfile.TemporaryDirectory(prefix="rtml-serve-bench-") as scratch:
        folder = Path(scratch)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RTML_", "MLFLOW_"))}
        env |= {
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
            "RTML_CACHE_DIR": str(folder / "cache"),
            "RTML_WORKER_CLASS": args.worker_class,
            "PATH": f"{BIN}:{env.get('PATH', '')}",  # mlflow serve looks uvicorn up on PATH
        }
        os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
        servers = Servers(folder, env)
        infer = rank = None
        try:
            if "infer" in parts:
                print("1. Open Inference Protocol: rtml, bare Flask, MLflow", flush=True)
                infer = bench_infer(args, folder, servers)
            if "rank" in parts:
                print("2. Ranking from Postgres: XGBoost, VW daemon, VW in process", flush=True)
                with scratch_database() as database:
                    try:
                        rank = bench_rank(args, folder, servers, database)
                    finally:
                        servers.stop_all()  # before the database is dropped
        finally:
            servers.stop_all()
        report(args, infer, rank)


if __name__ == "__main__":
    main()
