"""Demo data: a synthetic small-business lending marketplace in any SQL database.

``load_demo_data(url, DemoSpec(...))`` generates the tables of :mod:`ml.demo.schema`
and replaces them in the target database in one transaction. The spec and the
fingerprints of what was written are stored in ``demo_meta``, so a rerun with
the same spec skips the work and ``verify_demo_data`` can check the database
still holds exactly that.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from tqdm import tqdm

from ml.data.bulk import replace_tables
from ml.data.urls import check_connection, create_engine, describe, write_error
from ml.demo import schema
from ml.demo.fingerprint import Fingerprint, TableHasher, read_fingerprints
from ml.demo.generator import GENERATOR_VERSION, DemoSpec, iter_blocks, make_catalog
from ml.errors import DataSourceError

__all__ = ["DemoResult", "DemoSpec", "load_demo_data", "verify_demo_data"]


@dataclass
class DemoResult:
    database: str  # describe(url): safe to print
    spec: DemoSpec
    reused: bool  # True when the database already held this spec's data
    fingerprints: dict[str, Fingerprint]
    approval_rate: float
    seconds: float = 0.0


def load_demo_data(
    url: URL, spec: DemoSpec, *, force: bool = False, progress: bool = True
) -> DemoResult:
    """Generate the demo tables into ``url`` unless it already holds them for ``spec``."""
    if spec.businesses < 1:
        raise DataSourceError(f"--businesses must be at least 1, got {spec.businesses}")
    engine = create_engine(url)
    try:
        check_connection(engine)  # unreachable: "cannot connect to ..."
        started = time.perf_counter()
        stored = None if force else _stored_result(engine, spec)
        if stored is not None:
            return stored
        result = _generate(engine, spec, progress)
        _analyze(engine)
        result.seconds = time.perf_counter() - started
        return result
    except DBAPIError as exc:  # connected, but reading or writing failed: say so, not "connect"
        raise write_error(url, exc, "demo data") from exc
    finally:
        engine.dispose()


def verify_demo_data(url: URL) -> tuple[DemoResult, dict[str, Fingerprint]]:
    """The stored result and the fingerprints re-read from the tables, for comparison."""
    engine = create_engine(url)
    try:
        check_connection(engine)
        stored = _stored_result(engine, spec=None)
        if stored is None:
            raise DataSourceError(
                f"{describe(url)} holds no demo data", hint="run `rtml demo-data` first"
            )
        return stored, read_fingerprints(engine, schema.DATA_TABLES)
    finally:
        engine.dispose()


def _generate(engine: sa.Engine, spec: DemoSpec, progress: bool) -> DemoResult:
    catalog = make_catalog(spec.seed)
    hashers = {t.name: TableHasher(t) for t in schema.DATA_TABLES}
    approved = 0
    tables = (*schema.DATA_TABLES, schema.demo_meta)
    bar = tqdm(
        total=spec.businesses,
        unit=" businesses",
        disable=not progress,
        file=sys.stderr,
        desc="demo data",
    )
    with bar, replace_tables(engine, tables) as loader:
        for name, frame in (("lenders", catalog.lenders), ("loan_products", catalog.products)):
            loader.append(schema.metadata.tables[name], frame)
            hashers[name].update(frame)
        for block in iter_blocks(spec, catalog):
            for name in ("businesses", "applications", "outcomes"):
                frame = getattr(block, name)
                loader.append(schema.metadata.tables[name], frame)
                hashers[name].update(frame)
            approved += int(block.outcomes["approved"].sum())
            bar.update(len(block.businesses))
        fingerprints = {name: h.result() for name, h in hashers.items()}
        result = DemoResult(
            database=describe(engine.url),
            spec=spec,
            reused=False,
            fingerprints=fingerprints,
            approval_rate=approved / max(fingerprints["outcomes"].rows, 1),
        )
        loader.append(schema.demo_meta, _meta_frame(result))
    return result


def _analyze(engine: sa.Engine) -> None:
    """Give the planner statistics of the new tables (Postgres does not collect them on its
    own until autovacuum runs; without them the serving query picks a slow plan)."""
    if engine.dialect.name in ("postgresql", "sqlite", "duckdb"):
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def _meta_frame(result: DemoResult) -> pd.DataFrame:
    meta = {
        "generator_version": GENERATOR_VERSION,
        "spec": json.dumps({**asdict(result.spec), "end_date": result.spec.end_date.isoformat()}),
        "fingerprints": json.dumps({k: asdict(v) for k, v in result.fingerprints.items()}),
        "approval_rate": repr(result.approval_rate),
    }
    return pd.DataFrame({"key": list(meta), "value": list(meta.values())})


def _stored_result(engine: sa.Engine, spec: DemoSpec | None) -> DemoResult | None:
    """What ``demo_meta`` says was generated, if it matches ``spec`` (any spec if None)."""
    if not sa.inspect(engine).has_table(schema.demo_meta.name):
        return None
    with engine.connect() as connection:
        meta = dict(
            connection.execute(sa.select(schema.demo_meta.c.key, schema.demo_meta.c.value)).all()
        )
    if meta.get("generator_version") != GENERATOR_VERSION:
        return None
    raw = json.loads(meta["spec"])
    stored_spec = DemoSpec(raw["businesses"], raw["seed"], date.fromisoformat(raw["end_date"]))
    if spec is not None and stored_spec != spec:
        return None
    fingerprints = {k: Fingerprint(**v) for k, v in json.loads(meta["fingerprints"]).items()}
    return DemoResult(
        database=describe(engine.url),
        spec=stored_spec,
        reused=True,
        fingerprints=fingerprints,
        approval_rate=float(meta["approval_rate"]),
    )
