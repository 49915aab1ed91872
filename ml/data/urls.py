"""Database URLs: parse what a user typed, describe it safely, connect with a clear error.

A user names a database as a SQLAlchemy URL (``postgresql://user:pw@host/db``,
``sqlite:///var/demo.db``) or, for the embedded default, a plain file path.
Passwords never leave this module: :func:`describe` is what messages use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from ml.errors import DataSourceError, DataSourceUnavailable

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")

# Embedded databases: the URL names a file on this machine.
FILE_DATABASES = ("sqlite", "duckdb")

# Seconds to wait for a network database before calling it unreachable.
CONNECT_TIMEOUT_S = 5


def parse_db_url(value: str) -> URL:
    """Turn ``value`` (a SQLAlchemy URL or a path to a SQLite file) into a URL."""
    text = value.strip()
    if not text:
        raise DataSourceError("empty database URL", hint="pass e.g. sqlite:///var/demo.db")
    if not _SCHEME.match(text):
        return URL.create("sqlite", database=str(Path(text)))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:  # ValueError: e.g. a port that is not a number
        raise DataSourceError(
            f"cannot parse database URL {redact(text)!r}",
            hint="expected dialect://user:password@host:port/database or sqlite:///path",
        ) from exc
    if url.drivername in ("postgres", "postgresql"):
        # psycopg2 is the driver rtml ships (SQLAlchemy 2.1 would otherwise pick psycopg 3);
        # "postgres" is the old Heroku spelling SQLAlchemy rejects.
        url = url.set(drivername="postgresql+psycopg2")
    return url


def redact(text: str) -> str:
    """``text`` with any ``user:password@`` password, or ``password=`` query value, as ``***``."""
    text = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
    return re.sub(r"([?&;]password=)[^&;\s]*", r"\1***", text, flags=re.IGNORECASE)


def describe(url: URL) -> str:
    """A human name for the database that never includes the password."""
    if url.get_backend_name() in FILE_DATABASES:
        return f"{url.get_backend_name()} database {url.database or ':memory:'}"
    where = url.host or "localhost"
    if url.port:
        where = f"{where}:{url.port}"
    who = f" as user {url.username!r}" if url.username else ""
    return f"{url.get_backend_name()} database {url.database!r} at {where}{who}"


def create_engine(url: URL, **kwargs: object) -> Engine:
    """A SQLAlchemy engine with a bounded connect timeout for network databases."""
    connect_args: dict[str, object] = {}
    backend = url.get_backend_name()
    if backend == "postgresql" or backend == "mysql":
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    elif backend in FILE_DATABASES and url.database and url.database != ":memory:":
        folder = Path(url.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataSourceError(
                f"cannot create folder {folder} for {describe(url)}: {exc.strerror}",
                hint="choose a writable path for the SQLite file",
            ) from exc
    try:
        engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise DataSourceError(
            f"no SQLAlchemy dialect or driver for {url.drivername!r} ({exc})",
            hint="use sqlite:///..., postgresql://... or install the dialect's package",
        ) from exc
    if backend == "sqlite":
        _make_sqlite_ddl_transactional(engine)
    return engine


def _make_sqlite_ddl_transactional(engine: Engine) -> None:
    """Let SQLite roll back CREATE/DROP with the rest of a transaction.

    Python's sqlite3 module commits before DDL on its own; SQLAlchemy's documented
    recipe turns that off and emits BEGIN itself, so replacing tables is atomic.
    """

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_commits(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def connection_error(url: URL, exc: BaseException) -> DataSourceUnavailable:
    """Translate a driver's connect failure into one line naming the database, not the password."""
    reason = _driver_reason(exc)
    if url.password:
        reason = reason.replace(str(url.password), "***")
    if url.get_backend_name() in FILE_DATABASES:
        hint = "check that the file's folder exists and is writable"
    else:
        hint = (
            "check that the server is running and reachable, and the host, port, "
            "database and credentials in the URL"
        )
    return DataSourceUnavailable(f"cannot connect to {describe(url)}: {reason}", hint=hint)


def write_error(url: URL, exc: BaseException, what: str) -> DataSourceError:
    """Connected, but writing ``what`` failed: say so (not "cannot connect"), and that the
    previous data is untouched (rtml writes in one transaction)."""
    reason = _driver_reason(exc)
    return DataSourceError(
        f"writing {what} to {describe(url)} failed: {reason}",
        hint="check the user may create tables there and the disk has room; "
        "the previous data is unchanged",
    )


def check_connection(engine: Engine) -> None:
    """Open and close one connection, raising :class:`DataSourceError` if that fails."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        raise connection_error(engine.url, exc) from exc


def _driver_reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    if not lines:
        return type(original).__name__
    # psycopg2 says 'connection to server at "h" (ip), port p failed: <reason>': keep the reason.
    reason = lines[0].split(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    return reason.rstrip(".")
