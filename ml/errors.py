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
        # Keep the hint (and any other attributes) when an error crosses a process boundary,
        # whatever the subclass's constructor takes.
        return (_rebuild, (self.__class__, self.args, self.__dict__))


def _rebuild(cls: type[RtmlError], args: tuple[object, ...], state: dict[str, object]) -> RtmlError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class DataSourceError(RtmlError):
    """A database could not be reached or queried."""


class DataSourceUnavailable(DataSourceError):
    """The database is down, unreachable, overloaded or dropped the connection: retrying
    later may work (serving answers 503 with Retry-After)."""


class QueryTimeout(DataSourceUnavailable):
    """The query ran past its statement timeout."""


class QueryValueError(DataSourceError):
    """The database refused a bound value (e.g. text where the column is a number): the
    caller's input is wrong, not the database."""
