"""Pull a time window's rows through the cache, and cache what is computed from them.

    cache = Cache()                                   # or None for --no-cache
    pulled = pull_window(source, sql, split.train, time_column="submitted_at",
                         cache=cache, label="train")
    pulled.frame, pulled.key, pulled.from_cache

The model's query receives the window as ``:start`` and ``:end`` (ISO dates, text,
which every database compares with its timestamp column) and must keep only rows
with ``start <= time_column < end``. The result is checked before anything is
cached: an empty window, a missing or non-timestamp time column and rows outside
the window are errors that say what to fix.

A window that ends after today can still gain rows, so it is only cached when the
caller asks (``cache_open_windows``); a rerun would otherwise train on stale data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.data.cache import Cache, CacheError, Entry, cache_key
from ml.data.sources import Params, Source
from ml.data.windows import TimeWindow
from ml.errors import DataSourceError

log = logging.getLogger(__name__)

QUERIES = "queries"
PROCESSED = "processed"
FRAME_FILE = "rows.arrow"


@dataclass(frozen=True)
class Pulled:
    frame: pd.DataFrame
    key: str  # what the rows are: source identity + query + parameters
    from_cache: bool


def query_key(source: Source, sql: str, params: Params) -> str:
    return cache_key(kind=QUERIES, source=source.identity, sql=sql, params=dict(params))


def pull_window(
    source: Source,
    sql: str,
    window: TimeWindow,
    *,
    time_column: str,
    cache: Cache | None,
    label: str,
    params: Params | None = None,
    cache_open_windows: bool = False,
    today: date | None = None,
) -> Pulled:
    """The rows of ``sql`` for ``window``, from the cache when it holds them."""
    values = {"start": window.start.isoformat(), "end": window.end.isoformat(), **(params or {})}
    key = query_key(source, sql, values)
    what = f"{label} window {window}"
    closed = window.is_closed(today or date.today())
    use_cache = cache is not None and (closed or cache_open_windows)
    if cache is not None and not use_cache:
        log.info("cache: not caching the %s: it ends after today, so its rows can change", what)
    if use_cache and cache is not None:
        hit = cache.load(QUERIES, key, _read_frame)
        if hit is not None:
            entry, frame = hit
            log.info(
                "cache: reused %s: %s rows saved %s (%s)",
                what,
                f"{len(frame):,}",
                entry.created,
                entry.path,
            )
            return Pulled(frame, key, from_cache=True)
    frame = source.query(sql, values)
    check_window_frame(frame, window, time_column, what=what, source=source)
    if use_cache and cache is not None:
        try:
            cache.store(
                QUERIES,
                key,
                {FRAME_FILE: lambda path: write_frame(frame, path)},
                description=f"{what} from {source.identity}",
                info={"rows": len(frame), "columns": list(map(str, frame.columns))},
            )
        except CacheError as exc:  # the rows are good; only the next run loses the shortcut
            log.warning("cache: %s", exc)
    return Pulled(frame, key, from_cache=False)


def check_window_frame(
    frame: pd.DataFrame, window: TimeWindow, time_column: str, *, what: str, source: Source
) -> None:
    """Raise a :class:`DataSourceError` that says what to fix if the rows cannot be a window."""
    where = f"the {what} query on {source.description}"
    if frame.empty:
        raise DataSourceError(
            f"{where} returned no rows",
            hint="check the window dates in the config and that the table has data for them",
        )
    if time_column not in frame.columns:
        raise DataSourceError(
            f"{where} returned no column {time_column!r} (windows.time_column); "
            f"it returned {', '.join(map(str, frame.columns[:12]))}",
            hint="select the time column in the query or fix windows.time_column",
        )
    times = frame[time_column]
    if times.dtype.kind != "M":
        raise DataSourceError(
            f"{where} returned {time_column!r} as {times.dtype}, not a timestamp",
            hint=f"cast it in the query, e.g. CAST({time_column} AS TIMESTAMP)",
        )
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    if times.dt.tz is not None:
        start, end = start.tz_localize(times.dt.tz), end.tz_localize(times.dt.tz)
    outside = int(((times < start) | (times >= end)).sum())
    if outside:
        raise DataSourceError(
            f"{where} returned {outside:,} rows with {time_column} outside {window}",
            hint=f"filter with WHERE {time_column} >= :start AND {time_column} < :end",
        )


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """The rows as an Arrow IPC file (Feather v2), uncompressed.

    Chosen over Parquet for a local cache because a hit then costs a memory map
    and a copy, not a decode: 0.5-0.7 s vs under 0.1 s for 2M rows x 30 columns
    (BENCHMARKS.md). pandas.read_feather, pyarrow, DuckDB and polars all open it.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1 << 20)


def _read_frame(entry: Entry) -> pd.DataFrame:
    return read_frame(entry.file(FRAME_FILE))


def read_frame(path: Path) -> pd.DataFrame:
    """Rows that :func:`write_frame` wrote."""
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    # to_pandas copies numbers into pandas' own (writable) blocks; text stays Arrow-backed.
    return table.to_pandas()


# --- processed data: what a framework builds from a window's rows -------------------------


def processed_key(data_key: str, pipeline_fingerprint: str, framework: str, **extra: Any) -> str:
    """Key of data a framework derived from the rows ``data_key`` with a fitted pipeline."""
    return cache_key(
        kind=PROCESSED,
        data=data_key,
        pipeline=pipeline_fingerprint,
        framework=framework,
        **extra,
    )


def cached_arrays(
    cache: Cache | None,
    key: str,
    build: Callable[[], Mapping[str, np.ndarray]],
    *,
    description: str,
) -> tuple[dict[str, np.ndarray], bool]:
    """Named numeric arrays (e.g. the XGBoost matrix and labels) from the cache or ``build``.

    Returns the arrays and whether they came from the cache. Saved as ``.npy`` without
    pickle, so only plain numeric arrays are accepted.
    """
    if cache is not None:
        hit = cache.load(PROCESSED, key, _read_arrays)
        if hit is not None:
            log.info("cache: reused %s (%s)", description, hit[0].path)
            return hit[1], True
    arrays = {name: np.asarray(values) for name, values in build().items()}
    if cache is not None:
        cache.store(
            PROCESSED,
            key,
            {f"{name}.npy": _array_writer(values) for name, values in arrays.items()},
            description=description,
            info={name: list(values.shape) for name, values in arrays.items()},
        )
    return arrays, False


def cached_file(
    cache: Cache | None,
    key: str,
    name: str,
    build: Callable[[Path], None],
    *,
    description: str,
    scratch: Path,
) -> tuple[Path, bool]:
    """A file (e.g. VW examples) from the cache, or written by ``build(path)``.

    Without a cache the file is built under ``scratch``. The returned path must be
    treated as read-only: it may be the cache's own copy.
    """
    if cache is not None:
        hit = cache.load(PROCESSED, key, lambda entry: entry.file(name))
        if hit is not None:
            log.info("cache: reused %s (%s)", description, hit[0].path)
            return hit[1], True
        entry = cache.store(PROCESSED, key, {name: build}, description=description)
        return entry.file(name), False
    path = scratch / name
    build(path)
    return path, False


def _array_writer(values: np.ndarray) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as handle:
            np.save(handle, values, allow_pickle=False)

    return write


def _read_arrays(entry: Entry) -> dict[str, np.ndarray]:
    return {
        name.removesuffix(".npy"): np.load(entry.file(name), allow_pickle=False)
        for name in entry.meta["files"]
    }
