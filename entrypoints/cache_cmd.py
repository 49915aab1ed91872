"""``rtml cache``: see and clear the local cache of query results and processed data."""

from __future__ import annotations

import click

from ml.data.cache import Cache
from ml.data.fetch import PROCESSED, QUERIES

KINDS = click.Choice([QUERIES, PROCESSED])


@click.group("cache")
def cache_group() -> None:
    """The local development cache ($RTML_CACHE_DIR, default var/cache).

    Query results are kept as Arrow IPC files (pandas.read_feather opens them),
    keyed by the source (host and database), the query text and its parameters;
    processed data (the training matrix, VW examples) by the rows it came from,
    the fitted pipeline and the framework.
    Entries are verified by checksum before use; a corrupt one is fetched again.
    """


@cache_group.command("list")
@click.option("--kind", type=KINDS, help="Only this kind of entry.")
def list_entries(kind: str | None) -> None:
    """Show what is cached, newest first."""
    cache = Cache()
    entries = list(cache.entries(kind))
    if not entries:
        click.echo(f"The cache at {cache.root} is empty.")
        return
    for entry in entries:
        rows = entry.meta.get("info", {}).get("rows")
        size = f"{rows:>10,} rows" if isinstance(rows, int) else " " * 15
        click.echo(
            f"{entry.created}  {entry.kind:<9} {_megabytes(entry.bytes):>9}  {size}  "
            f"{entry.description}"
        )
    total = sum(entry.bytes for entry in entries)
    click.echo(f"{len(entries)} entries, {_megabytes(total)} in {cache.root}")


@cache_group.command("clear")
@click.option("--kind", type=KINDS, help="Only this kind of entry.")
def clear(kind: str | None) -> None:
    """Delete cached entries (all, or one kind). The next run fetches again."""
    cache = Cache()
    count, size = cache.clear(kind)
    click.echo(f"Removed {count} entries ({_megabytes(size)}) from {cache.root}.")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"
