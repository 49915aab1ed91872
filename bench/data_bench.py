"""Pulling a training frame from Postgres: rtml's COPY + Arrow path, pandas.read_sql, and
rtml's local cache (miss, then hit) on the same query.

Run: .venv/bin/python bench/data_bench.py [--rows 2000000] [--pg ADMIN_URL]

Creates a scratch database with a table of --rows x 30 columns (10 integer, 10
float with NULLs, 5 text, 5 timestamp) and pulls it four ways, each in its own
child process so each reports its own peak memory (ru_maxrss from wait4):

  rtml PostgresSource.query         the bulk path (COPY spooled to disk, Arrow CSV)
  pandas.read_sql_query             the peer, on the same query
  rtml pull_window, cache miss      the bulk path + checks + Parquet write to the cache
  rtml pull_window, cache hit       read back and verify the cached entry

and prints rows/s and ratios. The scratch database and cache are removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg2
from psycopg2 import sql

COLUMNS = (
    [f"i{k} bigint" for k in range(10)]
    + [f"f{k} double precision" for k in range(10)]
    + [f"s{k} text" for k in range(5)]
    + [f"t{k} timestamp" for k in range(5)]
)
FILL = (
    [f"mod(g * {k + 1}, 100003)" for k in range(10)]
    + [f"CASE WHEN mod(g, {k + 7}) = 0 THEN NULL ELSE g * 0.37 + {k} END" for k in range(10)]
    + [f"'level_' || mod(g, {5 * (k + 1)})" for k in range(5)]
    + [f"timestamp '2025-01-01' + mod(g, 86400) * interval '{k + 1} minute'" for k in range(5)]
)
QUERY = "SELECT * FROM wide WHERE t0 >= :start AND t0 < :end"
WINDOW = (date(2025, 1, 1), date(2025, 4, 1))  # holds every row; ends in the past: cacheable
PATHS = {
    "copy": "rtml PostgresSource.query (COPY + Arrow)",
    "read_sql": "pandas.read_sql_query",
    "miss": "rtml pull_window, cache miss (pull + store)",
    "hit": "rtml pull_window, cache hit (read + verify)",
}


def admin(url: str) -> psycopg2.extensions.connection:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def child(path: str, url: str, cache_dir: str) -> None:
    """One measured pull; prints its row count and seconds."""
    import pandas as pd
    import sqlalchemy as sa

    from ml.data.cache import Cache
    from ml.data.fetch import pull_window
    from ml.data.sources import PostgresSource
    from ml.data.urls import parse_db_url
    from ml.data.windows import TimeWindow

    params = {"start": WINDOW[0].isoformat(), "end": WINDOW[1].isoformat()}
    started = time.perf_counter()
    if path == "read_sql":
        engine = sa.create_engine(parse_db_url(url))
        with engine.connect() as connection:
            frame = pd.read_sql_query(sa.text(QUERY), connection, params=params)
    else:
        with PostgresSource(parse_db_url(url)) as source:
            if path == "copy":
                frame = source.query(QUERY, params)
            else:
                pulled = pull_window(
                    source,
                    QUERY,
                    TimeWindow(*WINDOW),
                    time_column="t0",
                    cache=Cache(Path(cache_dir)),
                    label="bench",
                )
                assert pulled.from_cache == (path == "hit"), path
                frame = pulled.frame
    print(len(frame), time.perf_counter() - started)


def measure(path: str, url: str, cache_dir: str) -> tuple[int, float, float]:
    """(rows, seconds, peak MiB) of one child process."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", path, url, cache_dir],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"{path} failed with status {status}")
    rows, seconds = output.split()
    return int(rows), float(seconds), usage.ru_maxrss / 1024


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"rtml_bench_{uuid.uuid4().hex[:8]}"
    admin(args.pg).cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{args.pg.rsplit('/', 1)[0]}/{name}"
    cache_dir = tempfile.mkdtemp(prefix="rtml-bench-cache-")
    try:
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE wide ({', '.join(COLUMNS)})")
            cursor.execute(
                f"INSERT INTO wide SELECT {', '.join(FILL)} FROM generate_series(1, %s) AS g",
                (args.rows,),
            )
            cursor.execute("ANALYZE wide")
        print(
            f"{args.rows:,} rows x {len(COLUMNS)} columns from Postgres, "
            "each path in its own process"
        )
        results = {}
        for path in PATHS:
            rows, seconds, peak = measure(path, url, cache_dir)
            assert rows == args.rows, (path, rows)
            results[path] = seconds
            print(
                f"{PATHS[path]:<46} {rows / seconds:>12,.0f} rows/s {seconds:>7.2f} s "
                f"peak {peak:>6,.0f} MiB"
            )
        size = sum(f.stat().st_size for f in Path(cache_dir).rglob("*") if f.is_file())
        print(f"cache entry on disk: {size / 2**20:,.0f} MiB")
        print(f"COPY path vs read_sql:        {results['read_sql'] / results['copy']:.2f}x")
        print(f"cache hit vs COPY pull:       {results['copy'] / results['hit']:.1f}x")
        print(f"cache hit vs read_sql pull:   {results['read_sql'] / results['hit']:.1f}x")
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        admin(args.pg).cursor().execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


if __name__ == "__main__":
    main()
