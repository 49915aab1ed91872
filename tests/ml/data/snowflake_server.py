"""A real fakesnow HTTP server for tests, and a loader that fills it from DataFrames.

``fakesnow -s`` speaks Snowflake's REST protocol, backed by DuckDB, so the real
snowflake-connector-python talks to it over loopback as it would to Snowflake. All
sessions share one in-memory database; a session's database and schema are created
on login if missing.

    with fakesnow_server() as server:
        load_frames(server.url, {"businesses": frame})
        source = SnowflakeSource(make_url(server.url))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import snowflake.connector
from sqlalchemy.engine import URL, make_url

from ml.data.sources.snowflake import connect_kwargs

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
# Rows per INSERT statement: bounds one request's size and its number of bindings.
INSERT_BATCH = 1000
_PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class FakesnowServer:
    host: str
    port: int

    def url_for(self, database: str = "DB1", schema: str = "SCHEMA1") -> str:
        """A SnowflakeSource URL for ``database.schema`` on this server."""
        return (
            f"snowflake://fake:snow@fakesnow/{database}/{schema}"
            f"?host={self.host}&port={self.port}&protocol=http"
        )

    @property
    def url(self) -> str:
        return self.url_for()

    def connect(self, database: str = "DB1", schema: str = "SCHEMA1") -> Any:
        """A connector connection (qmark paramstyle) to ``database.schema``."""
        return snowflake.connector.connect(
            **connect_kwargs(make_url(self.url_for(database, schema)))
        )


@contextlib.contextmanager
def fakesnow_server(
    host: str = "127.0.0.1", timeout_s: float = START_TIMEOUT_S
) -> Iterator[FakesnowServer]:
    """Run ``fakesnow -s`` on a free port of ``host`` until the block ends."""
    port = _free_port(host)
    # uvicorn logs every request: a pipe nobody reads would fill up and stall the server.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [_fakesnow_command(), "-s", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not _answers(host, port):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(
                        f"fakesnow did not start on {host}:{port} "
                        f"(exit code {process.poll()}): {output}"
                    )
                time.sleep(0.1)
            yield FakesnowServer(host, port)
        finally:
            _stop(process)


def load_frames(target: str | URL | Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> None:
    """Create (or replace) one table per frame and insert its rows.

    ``target`` is a SnowflakeSource URL or ``snowflake.connector.connect`` arguments.
    Column types follow the dtypes: integers -> INTEGER, floats -> DOUBLE, booleans ->
    BOOLEAN, datetime64 -> TIMESTAMP_NTZ (tz-aware values in UTC), ``datetime.date``
    objects -> DATE, anything else -> VARCHAR. NaN, NA and NaT become NULL.
    Names are written as Snowflake stores unquoted ones (upper case). Rows go in as
    multi-row INSERTs with bound values.
    """
    if isinstance(target, Mapping):
        kwargs = {**target, "paramstyle": "qmark"}
    else:
        kwargs = connect_kwargs(make_url(target) if isinstance(target, str) else target)
    connection = snowflake.connector.connect(**kwargs)
    try:
        with connection.cursor() as cursor:
            for name, frame in tables.items():
                kinds = {column: _column_type(frame[column]) for column in frame.columns}
                table = _identifier(name)
                definition = ", ".join(f"{_identifier(c)} {kind}" for c, kind in kinds.items())
                cursor.execute(f"CREATE OR REPLACE TABLE {table} ({definition})")
                values = [_values(frame[column], kind) for column, kind in kinds.items()]
                records = list(zip(*values, strict=True))
                row = f"({', '.join('?' * len(kinds))})"
                # One multi-row INSERT per batch, values still bound server-side: fakesnow
                # runs an executemany row by row (about 4 ms a row), this about 1 ms a row.
                for start in range(0, len(records), INSERT_BATCH):
                    batch = records[start : start + INSERT_BATCH]
                    cursor.execute(
                        f"INSERT INTO {table} VALUES {', '.join([row] * len(batch))}",
                        [value for record in batch for value in record],
                    )
    finally:
        connection.close()


def _identifier(name: object) -> str:
    # Quoting the upper-cased name is what Snowflake does with an unquoted one, and
    # keeps names DuckDB reserves (AT, ...) usable under fakesnow.
    text = str(name)
    if _PLAIN_IDENTIFIER.match(text):
        text = text.upper()
    return '"' + text.replace('"', '""') + '"'


def _column_type(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "INTEGER"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "TIMESTAMP_NTZ"
    present = series.dropna()
    if (
        pd.api.types.is_object_dtype(dtype)
        and len(present)
        and all(type(v) is dt.date for v in present)
    ):
        return "DATE"
    return "VARCHAR"


def _values(series: pd.Series, kind: str) -> list[Any]:
    if kind == "TIMESTAMP_NTZ":
        # Sent as ISO text: the connector binds a datetime column that has NULLs as TEXT
        # holding epoch nanoseconds, which Snowflake parses but DuckDB (fakesnow) rejects,
        # and fakesnow turns TIMESTAMP_NTZ bindings into UTC-aware datetimes that DuckDB
        # shifts by the machine's time zone. Both read ISO text the same way.
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        series = series.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    elif kind == "DATE":
        series = series.map(lambda v: v.isoformat(), na_action="ignore")
    convert = {"BOOLEAN": bool, "INTEGER": int, "DOUBLE": float}.get(kind, str)
    return [None if pd.isna(v) else convert(v) for v in series.astype(object)]


def _fakesnow_command() -> str:
    # The venv's script sits next to its python; fall back to PATH.
    beside = Path(sys.executable).with_name("fakesnow")
    found = str(beside) if beside.exists() else shutil.which("fakesnow")
    if not found:
        raise RuntimeError("fakesnow is not installed (pip install 'fakesnow[server]')")
    return found


def _free_port(host: str) -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
