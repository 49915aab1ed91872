"""Demo data: generation speed, bulk-load speed against pandas.to_sql, and memory at scale.

Run: .venv/bin/python bench/demo_data_bench.py [--businesses 100000] [--pg URL] [--scale 1000000]

1. Generates the demo data for --businesses in memory (businesses/s).
2. Loads the same frames into SQLite and Postgres twice, with rtml's loader
   (`replace_tables`: COPY on Postgres, executemany on SQLite) and with the
   plain peer `DataFrame.to_sql`, and prints rows/s and the ratio.
3. With --scale N, runs `rtml demo-data --businesses N` into SQLite in a child
   process and reports its wall time and peak RSS (memory must stay bounded).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd
import psycopg2
from psycopg2 import sql

from ml.data.bulk import replace_tables
from ml.data.urls import create_engine, parse_db_url
from ml.demo import schema
from ml.demo.generator import DemoSpec, iter_blocks, make_catalog


def generate(businesses: int) -> tuple[dict[str, pd.DataFrame], float]:
    started = time.perf_counter()
    catalog = make_catalog(42)
    blocks = list(iter_blocks(DemoSpec(businesses=businesses), catalog))
    frames = {
        "lenders": catalog.lenders,
        "loan_products": catalog.products,
        "businesses": pd.concat([b.businesses for b in blocks], ignore_index=True),
        "applications": pd.concat([b.applications for b in blocks], ignore_index=True),
        "outcomes": pd.concat([b.outcomes for b in blocks], ignore_index=True),
    }
    return frames, time.perf_counter() - started


def load_rtml(url: str, frames: dict[str, pd.DataFrame]) -> float:
    engine = create_engine(parse_db_url(url))
    started = time.perf_counter()
    with replace_tables(engine, schema.DATA_TABLES) as loader:
        for name, frame in frames.items():
            loader.append(schema.metadata.tables[name], frame)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def load_pandas(url: str, frames: dict[str, pd.DataFrame]) -> float:
    engine = create_engine(parse_db_url(url))
    started = time.perf_counter()
    with engine.begin() as connection:
        for name, frame in frames.items():
            frame.to_sql(
                f"peer_{name}", connection, if_exists="replace", index=False, chunksize=50_000
            )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def scratch_postgres(admin_url: str) -> tuple[str, str]:
    name = f"rtml_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()
    return name, f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_postgres(admin_url: str, name: str) -> None:
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    admin.cursor().execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )
    admin.close()


def scale_run(businesses: int, folder: Path) -> None:
    """Time `rtml demo-data` at scale in a child; GNU time reports the child's own peak RSS
    (resource.getrusage would count the pages this big parent shares with it at fork)."""
    rtml = Path(sys.executable).parent / "rtml"
    db = f"sqlite:///{folder}/scale.db"
    report = folder / "time.txt"
    command = [str(rtml), "demo-data", "--db", db, "--businesses", str(businesses), "-q"]
    started = time.perf_counter()
    subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(report), *command],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    peak_mib = int(report.read_text().split()[-1]) / 1024
    print(
        f"scale: rtml demo-data --businesses {businesses:,} into SQLite: {elapsed:.1f}s, "
        f"{businesses / elapsed:,.0f} businesses/s, peak RSS {peak_mib:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--businesses", type=int, default=100_000)
    parser.add_argument(
        "--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin URL"
    )
    parser.add_argument(
        "--scale", type=int, default=0, help="also run demo-data at this size in a child"
    )
    args = parser.parse_args()

    frames, gen_s = generate(args.businesses)
    rows = sum(len(f) for f in frames.values())
    print(
        f"generate: {args.businesses:,} businesses, {rows:,} rows in {gen_s:.2f}s "
        f"({args.businesses / gen_s:,.0f} businesses/s, {rows / gen_s:,.0f} rows/s)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{tmp}/bench.db"
        pg_name, pg_url = scratch_postgres(args.pg)
        try:
            for label, url in (("sqlite", sqlite_url), ("postgres", pg_url)):
                ours = load_rtml(url, frames)
                peer = load_pandas(url, frames)
                print(
                    f"load {label:<8}: rtml {rows / ours:>10,.0f} rows/s ({ours:.2f}s)   "
                    f"pandas.to_sql {rows / peer:>10,.0f} rows/s ({peer:.2f}s)   "
                    f"ratio {peer / ours:.1f}x"
                )
        finally:
            drop_postgres(args.pg, pg_name)
        if args.scale:
            scale_run(args.scale, Path(tmp))


if __name__ == "__main__":
    main()
