"""Train/test time windows: the config's absolute or relative windows as concrete dates.

A window is half-open, [start, end): a row belongs to it when
``start <= time_column < end``. Relative windows count back from ``as_of``
(``today`` for daily retraining): the test window is the last ``test_days``
before it, the train window the ``train_days`` before that, ``gap_days`` apart.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date, timedelta

from ml.config.models import Windows


@dataclass(frozen=True)
class TimeWindow:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def overlaps(self, other: TimeWindow) -> bool:
        return self.start < other.end and other.start < self.end

    def is_closed(self, today: date) -> bool:
        """True when the window ends before today, so its rows can no longer change."""
        return self.end <= today

    def __str__(self) -> str:
        return f"[{self.start}, {self.end})"


@dataclass(frozen=True)
class Split:
    time_column: str
    train: TimeWindow
    test: TimeWindow


def resolve_windows(windows: Windows, today: date | None = None) -> Split:
    """The concrete train and test windows of a (validated) config."""
    today = today or date.today()
    if windows.relative is not None:
        relative = windows.relative
        as_of = today if relative.as_of == "today" else date.fromisoformat(relative.as_of)
        test = TimeWindow(as_of - timedelta(days=relative.test_days), as_of)
        train_end = test.start - timedelta(days=relative.gap_days)
        train = TimeWindow(train_end - timedelta(days=relative.train_days), train_end)
    else:
        assert windows.train is not None and windows.test is not None  # checked by the config
        train = TimeWindow(windows.train.start, windows.train.end)
        test = TimeWindow(windows.test.start, windows.test.end)
    if train.overlaps(test):
        warnings.warn(
            f"train window {train} overlaps test window {test}: test metrics will be optimistic",
            stacklevel=2,
        )
    return Split(windows.time_column, train, test)
