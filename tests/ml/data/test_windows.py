"""Time windows resolve to the dates a data scientist expects."""

from __future__ import annotations

from datetime import date

import pytest

from ml.config.models import Windows
from ml.data.windows import TimeWindow, resolve_windows


def test_absolute_windows_are_taken_as_given() -> None:
    windows = Windows.model_validate(
        {
            "time_column": "t",
            "train": {"start": "2025-01-01", "end": "2025-07-01"},
            "test": {"start": "2025-07-01", "end": "2025-08-01"},
        }
    )
    split = resolve_windows(windows)
    assert split.train == TimeWindow(date(2025, 1, 1), date(2025, 7, 1))
    assert split.test.days == 31 and split.time_column == "t"


def test_relative_windows_count_back_from_as_of() -> None:
    windows = Windows.model_validate(
        {"time_column": "t", "relative": {"test_days": 90, "train_days": 540, "gap_days": 1}}
    )
    split = resolve_windows(windows, today=date(2026, 12, 4))
    assert split.test == TimeWindow(date(2026, 9, 5), date(2026, 12, 4))
    assert split.train.end == date(2026, 9, 4) and split.train.days == 540
    assert split.train.is_closed(date(2026, 12, 4)) and not split.test.is_closed(date(2026, 12, 3))


def test_overlapping_windows_warn() -> None:
    windows = Windows.model_validate(
        {
            "time_column": "t",
            "train": {"start": "2025-01-01", "end": "2025-08-01"},
            "test": {"start": "2025-07-01", "end": "2025-09-01"},
        }
    )
    with pytest.warns(UserWarning, match="overlaps test window"):
        resolve_windows(windows)
