"""Real server processes for integration tests: moto's S3 and an MLflow tracking server.

Each context manager starts the server on a free loopback port, waits (bounded) until it
answers HTTP, and always stops it on exit, also when the block raises. A server runs in
its own process group, so the workers it forks (MLflow starts uvicorn as a child) are
stopped with it: SIGTERM to the group, SIGKILL after a grace period.

    with moto_s3_server() as s3:
        s3.create_bucket("artifacts")
        with mlflow_server(
            tmp_path, artifacts_destination="s3://artifacts/mlartifacts", env=s3.env
        ) as server:
            mlflow.set_tracking_uri(server.uri)
            ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.2
LOG_TAIL_CHARS = 4000

# Dummy credentials and switches that keep boto3 away from real AWS: with these set it
# never reads a developer's ~/.aws profile for keys, and never waits on the EC2
# instance-metadata endpoint (a one-second timeout per try off EC2).
_AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server; ``env`` points MLflow and boto3 at it."""

    endpoint_url: str
    env: Mapping[str, str]

    def client(self) -> Any:
        """A boto3 S3 client for this server (typed Any: boto3 ships no stubs here)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=self.env["AWS_SESSION_TOKEN"],
        )

    def create_bucket(self, name: str) -> None:
        # us-east-1 is the one region where S3 rejects an explicit LocationConstraint.
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (follows pagination)."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server``; give ``env`` to client processes."""

    uri: str
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def free_port(host: str = HOST) -> int:
    """A port the OS just handed out on ``host``.

    Another process could take it before the server binds it; the start-up loop then
    sees the server exit and reports its log, which names the address in use.
    """
    with contextlib.closing(socket.socket()) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_s3_server(timeout_s: float = START_TIMEOUT_S) -> Iterator[S3Server]:
    """Run ``moto_server`` (all of moto's services, S3 included) until the block ends."""
    port = free_port()
    endpoint = f"http://{HOST}:{port}"
    env = {
        **_AWS_TEST_ENV,
        # MLflow's S3 artifact repository reads this; boto3 >= 1.28 reads the second.
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
    }
    command = [_venv_script("moto_server"), "-H", HOST, "-p", str(port)]
    # werkzeug logs every request: a pipe nobody reads would fill up and stall moto.
    with (
        tempfile.TemporaryFile() as log,
        _running(
            command,
            env={**os.environ, **_AWS_TEST_ENV},
            log=log,
            ready=lambda: _http_status(f"{endpoint}/") is not None,
            what=f"moto_server on {endpoint}",
            timeout_s=timeout_s,
        ),
    ):
        yield S3Server(endpoint_url=endpoint, env=env)


@contextlib.contextmanager
def mlflow_server(
    tmp_path: Path,
    *,
    backend_uri: str | None = None,
    artifacts_destination: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[MlflowServer]:
    """Run ``mlflow server`` with proxied artifacts until the block ends.

    ``backend_uri`` defaults to SQLite in ``tmp_path`` (a bare ``postgresql://`` URL gets
    the psycopg2 driver); ``artifacts_destination`` to
    ``tmp_path/artifacts``; ``env`` is added to the server's environment (e.g. an
    ``S3Server.env`` so the server, not the client, writes to S3). The server's output
    goes to ``MlflowServer.log`` in ``tmp_path``.
    """
    port = free_port()
    uri = f"http://{HOST}:{port}"
    backend = backend_uri or f"sqlite:///{tmp_path / 'mlflow.db'}"
    if backend.startswith(("postgresql://", "postgres://")):
        # psycopg2 is the driver rtml ships; SQLAlchemy 2.1 would otherwise pick psycopg 3.
        backend = "postgresql+psycopg2://" + backend.split("://", 1)[1]
    destination = artifacts_destination or (tmp_path / "artifacts").as_uri()
    command = [
        _venv_script("mlflow"),
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--backend-store-uri",
        backend,
        # Serving artifacts is the default in MLflow 3; said explicitly because clients
        # then need no storage credentials, which the tests rely on.
        "--serve-artifacts",
        "--artifacts-destination",
        destination,
        # One uvicorn worker: no supervisor process, and a start-up in a few seconds.
        "--workers",
        "1",
    ]
    server_env = {
        **os.environ,
        # The huey job runner (scorers, trace archival) is one more process tree and
        # nothing here uses it; a caller's ``env`` can turn it back on.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **(env or {}),
    }
    # A client setting in this process must not leak into the server.
    server_env.pop("MLFLOW_TRACKING_URI", None)
    log_path = tmp_path / f"mlflow-server-{port}.log"
    # Appending and readable: the start-up check reads the tail while the server writes.
    with (
        log_path.open("a+b") as log,
        _running(
            command,
            env=server_env,
            log=log,
            ready=lambda: _http_status(f"{uri}/health") == 200,
            what=f"mlflow server on {uri}",
            timeout_s=timeout_s,
            # Anything resolved against the working directory (./mlruns, ./mlartifacts)
            # lands in tmp_path, never in the repository.
            cwd=tmp_path,
        ),
    ):
        yield MlflowServer(uri=uri, log=log_path, env={"MLFLOW_TRACKING_URI": uri})


@contextlib.contextmanager
def _running(
    command: list[str],
    *,
    env: Mapping[str, str],
    log: IO[bytes],
    ready: Callable[[], bool],
    what: str,
    timeout_s: float,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait until ``ready()`` or fail with its log, stop it on exit."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        # Its own process group, so stopping it reaches the workers it forks.
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with code {process.returncode}"
                    if process.returncode is not None
                    else f"not answering after {timeout_s:.0f} s"
                )
                raise RuntimeError(f"{what} did not start ({state}); log tail:\n{_tail(log)}")
            time.sleep(POLL_INTERVAL_S)
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it after STOP_TIMEOUT_S, and reap the leader."""
    group = process.pid  # start_new_session made the leader's pid the group id
    _signal_group(group, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _signal_group(group, signal.SIGKILL)
        process.wait()
    # The leader can exit before a child that ignored or missed SIGTERM; sweep the group.
    _signal_group(group, signal.SIGKILL)


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _http_status(url: str) -> int | None:
    """The HTTP status ``url`` answers with, or None if nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def _tail(log: IO[bytes], chars: int = LOG_TAIL_CHARS) -> str:
    # pread leaves the file offset alone: the server shares it and may still be writing.
    size = os.fstat(log.fileno()).st_size
    start = max(0, size - 4 * chars)  # bytes, enough for ``chars`` of multi-byte text
    return os.pread(log.fileno(), size - start, start).decode(errors="replace")[-chars:]


def _venv_script(name: str) -> str:
    # The venv's scripts sit next to its python; fall back to PATH.
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed in {Path(sys.executable).parent}")
    return found


@dataclass(frozen=True)
class RtmlServer:
    """A running ``rtml serve``: its base URL, log, and the gunicorn master's pid."""

    url: str
    log: Path
    pid: int

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def rtml_server(
    tmp_path: Path,
    *args: str,
    env: Mapping[str, str],
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[RtmlServer]:
    """Run ``rtml serve --port <free> ARGS`` (gunicorn, VW daemons) until the block ends.

    ``env`` carries MLFLOW_TRACKING_URI and RTML_* settings; the store defaults to
    ``tmp_path/store``. Ready once /v2/health/ready answers 200.
    """
    port = free_port()
    url = f"http://{HOST}:{port}"
    log_path = tmp_path / f"rtml-serve-{port}.log"
    server_env = {"RTML_STORE": str(tmp_path / "store"), **os.environ, **env}
    command = [_venv_script("rtml"), "serve", "--port", str(port), *args]
    with (
        log_path.open("a+b") as log,
        _running(
            command,
            env=server_env,
            log=log,
            ready=lambda: _http_status(f"{url}/v2/health/ready") == 200,
            what=f"rtml serve on {url}",
            timeout_s=timeout_s,
        ) as process,
    ):
        yield RtmlServer(url=url, log=log_path, pid=process.pid)
