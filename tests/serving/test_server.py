"""The real thing: ``rtml serve`` (gunicorn master, workers, VW daemon) on a free port,
the machine's Postgres behind a cuttable proxy, a real MLflow registry. Covers what only
a real server shows: auth and limits over HTTP, a database that is slow or goes away and
comes back, and a VW daemon killed while requests run."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests

from tests.integration.servers import RtmlServer, mlflow_server, rtml_server
from tests.serving.conftest import Served
from tests.serving.proxy import TcpProxy, tcp_proxy

pytestmark = pytest.mark.integration

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
XGB = "/models/lender_match/versions/1/rank"
VW = "/models/lender_match/versions/2/rank"
TIMEOUT_MS = 400


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    with tcp_proxy(5432) as running:
        yield running


@pytest.fixture(scope="module")
def server(
    served: Served, proxy: TcpProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RtmlServer]:
    with contextlib.ExitStack() as stack:
        yield from _server(stack, served, proxy, tmp_path_factory)


def _server(
    stack: contextlib.ExitStack,
    served: Served,
    proxy: TcpProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RtmlServer]:
    database = served.database_url.rsplit("/", 1)[1]
    folder = tmp_path_factory.mktemp("server")
    # The registry behind a real MLflow tracking server, as serving hosts reach it.
    registry = stack.enter_context(mlflow_server(folder, backend_uri=served.tracking_uri))
    env = {
        **served.env,
        "MLFLOW_TRACKING_URI": registry.uri,
        "RTML_API_KEYS": KEY,
        "RTML_WORKERS": "2",
        "RTML_MAX_BODY_BYTES": "4096",
        "RTML_QUERY_TIMEOUT_MS": str(TIMEOUT_MS),
        "RTML_ONLINE_URLS": f"lender_match=postgresql://postgres@127.0.0.1:{proxy.port}/{database}",
    }
    yield stack.enter_context(rtml_server(folder, env=env))


def post(server: RtmlServer, path: str, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(f"{server.url}{path}", json=body, timeout=15, **kwargs)


def test_endpoints_auth_and_limits_over_http(server: RtmlServer) -> None:
    assert requests.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
    assert post(server, XGB, {"entity_id": 4}).status_code == 401
    assert (
        post(server, XGB, {"entity_id": 4}, headers={"Authorization": "Bearer x"}).status_code
        == 401
    )
    ranked = post(server, "/models/lender_match/rank", {"entity_id": 4, "top_k": 5}, headers=AUTH)
    assert ranked.status_code == 200, ranked.text
    assert len(ranked.json()["items"]) == 5 and ranked.json()["alias"] in ("champion", "challenger")
    big = post(server, XGB, {"entity_id": 4, "features": {"state": "x" * 8000}}, headers=AUTH)
    assert big.status_code == 413
    malformed = requests.post(
        f"{server.url}{XGB}", data=b"{", headers={**AUTH, "Content-Type": "application/json"},
        timeout=5,
    )  # fmt: skip
    assert malformed.status_code == 400
    models = requests.get(f"{server.url}/models", headers=AUTH, timeout=5).json()["models"]
    assert {v["scorer"] for v in models[0]["versions"]} == {"xgboost", "vw-daemon"}
    assert "API is open" not in server.log_tail(20000)


def test_a_slow_database_is_503_with_retry_after_then_recovers(
    server: RtmlServer, served: Served
) -> None:
    blocker = psycopg2.connect(served.database_url)
    try:
        with blocker.cursor() as cursor:  # holds the lock until rollback
            cursor.execute("LOCK TABLE loan_products IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        slow = post(server, XGB, {"entity_id": 6}, headers=AUTH)
        elapsed = time.monotonic() - started
        assert slow.status_code == 503, slow.text
        assert slow.headers["Retry-After"]
        assert "RTML_QUERY_TIMEOUT_MS" in slow.json()["error"]["message"]
        assert elapsed < 5 * TIMEOUT_MS / 1000
    finally:
        blocker.rollback()
        blocker.close()
    assert post(server, XGB, {"entity_id": 6}, headers=AUTH).status_code == 200


def test_a_database_that_goes_away_is_503_and_the_service_recovers(
    server: RtmlServer, proxy: TcpProxy
) -> None:
    # Both workers hold pooled connections before the cut.
    for entity_id in range(10, 16):
        assert post(server, XGB, {"entity_id": entity_id}, headers=AUTH).status_code == 200
    proxy.cut()
    try:
        down = [post(server, XGB, {"entity_id": 7}, headers=AUTH) for _ in range(4)]
        assert {r.status_code for r in down} == {503}
        assert all(r.headers.get("Retry-After") for r in down)
        # Where the database is (host, port, user) stays in the server's log.
        assert all("127.0.0.1" not in r.text and "postgres" not in r.text for r in down)
    finally:
        proxy.start()
    statuses = [post(server, XGB, {"entity_id": 7}, headers=AUTH).status_code for _ in range(6)]
    assert statuses[-4:] == [200] * 4, statuses  # no restart needed


def _children(server: RtmlServer) -> dict[int, bytes]:
    """The gunicorn master's child processes and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if int(status.split("PPid:")[1].split()[0]) == server.pid:
            found[int(entry.name)] = command
    return found


def _daemon_pid(server: RtmlServer) -> int:
    """The VW daemon's parent process: the master's child running vowpalwabbit."""
    daemons = [pid for pid, command in _children(server).items() if b"vowpalwabbit" in command]
    assert len(daemons) == 1, daemons
    return daemons[0]


def test_a_worker_that_exits_is_replaced_and_the_daemon_keeps_running(
    server: RtmlServer,
) -> None:
    daemon = _daemon_pid(server)
    workers = _workers(server)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGTERM)
    deadline = time.monotonic() + 30
    while workers[0] in _children(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    statuses = [post(server, VW, {"entity_id": e}, headers=AUTH).status_code for e in range(1, 31)]
    assert set(statuses) == {200}, statuses
    assert _daemon_pid(server) == daemon  # the worker's exit did not stop the host's daemon
    assert len(_workers(server)) == 2


def _workers(server: RtmlServer) -> list[int]:
    """gunicorn workers: forks of the master, so the same command line (rtml serve)."""
    return [pid for pid, command in _children(server).items() if b"serve\0" in command]


def test_a_killed_vw_daemon_is_restarted_and_requests_retried(server: RtmlServer) -> None:
    before = _daemon_pid(server)
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        entity_id = 20
        while not stop.is_set():
            statuses.append(post(server, VW, {"entity_id": entity_id}, headers=AUTH).status_code)
            entity_id += 1

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    os.kill(before, signal.SIGKILL)
    time.sleep(4.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    after = _daemon_pid(server)
    assert after != before
    assert statuses and set(statuses) == {200}, statuses
    assert "restart" in server.log_tail(20000).lower()


def test_an_open_server_warns_at_start(served: Served, tmp_path: Path) -> None:
    env = {**served.env, "RTML_WORKERS": "1"}
    with rtml_server(tmp_path, "--models", "lender_match@champion", env=env) as running:
        assert "the API is open" in running.log_tail(20000)
        ranked = post(running, "/models/lender_match/rank", {"entity_id": 3})
        assert ranked.status_code == 200 and ranked.json()["version"] == "1"
