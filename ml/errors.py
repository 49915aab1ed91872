"""The exceptions rtml raises for problems a user can fix.

Every error a person can act on derives from :class:`RtmlError`. It carries a
one-line message (what went wrong and where) and an optional hint (how to fix
it). The CLI prints both and exits with ``exit_code``; the HTTP layer maps the
serving subclasses to status codes. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class RtmlError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the hint (and any other attributes) when an error crosses a process boundary.
        return (self.__class__, (self.message,), self.__dict__)


class DataSourceError(RtmlError):
    """A database could not be reached or queried."""


class QueryValueError(DataSourceError):
    """The database refused a bound value (e.g. text where the column is a number): the
    caller's input is wrong, not the database."""
