"""Pulling a training frame from Postgres: rtml's COPY + Arrow path vs pandas.read_sql.

Run: .venv/bin/python bench/data_bench.py [--rows 2000000] [--pg ADMIN_URL]

Creates a scratch database with a table of --rows x 30 columns (10 integer, 10
float with NULLs, 5 text, 5 timestamp), pulls it with both in the same run and
prints rows/s and the ratio. The scratch database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import time
import uuid

import pandas as pd
import psycopg2
import sqlalchemy as sa
from psycopg2 import sql

from ml.data.sources import PostgresSource
from ml.data.urls import parse_db_url

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


def admin(url: str) -> psycopg2.extensions.connection:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"rtml_bench_{uuid.uuid4().hex[:8]}"
    admin(args.pg).cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{args.pg.rsplit('/', 1)[0]}/{name}"
    try:
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE wide ({', '.join(COLUMNS)})")
            cursor.execute(
                f"INSERT INTO wide SELECT {', '.join(FILL)} FROM generate_series(1, %s) AS g",
                (args.rows,),
            )
        query = "SELECT * FROM wide WHERE i0 >= :low"
        with PostgresSource(parse_db_url(url)) as source:
            started = time.perf_counter()
            ours = source.query(query, {"low": 0})
            ours_s = time.perf_counter() - started
        engine = sa.create_engine(parse_db_url(url))
        started = time.perf_counter()
        with engine.connect() as connection:
            peer = pd.read_sql_query(sa.text(query), connection, params={"low": 0})
        peer_s = time.perf_counter() - started
        engine.dispose()
        assert len(ours) == len(peer) == args.rows
        print(f"{args.rows:,} rows x {len(COLUMNS)} columns from Postgres")
        print(
            f"rtml PostgresSource (COPY + Arrow): {args.rows / ours_s:>10,.0f} rows/s "
            f"({ours_s:.2f}s)"
        )
        print(
            f"pandas.read_sql_query:              {args.rows / peer_s:>10,.0f} rows/s "
            f"({peer_s:.2f}s)"
        )
        print(f"ratio: {peer_s / ours_s:.2f}x")
    finally:
        admin(args.pg).cursor().execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


if __name__ == "__main__":
    main()
