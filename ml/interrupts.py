"""Ctrl-C that survives native code.

XGBoost builds a ``QuantileDMatrix`` by calling back into Python; a KeyboardInterrupt
raised inside that callback comes out as an ``XGBoostError`` ("Check failed:
accumulated_rows ..."), so a run interrupted there would be recorded FAILED instead of
KILLED. :func:`watch_interrupts` notes every SIGINT, and :func:`as_interrupt` turns
whatever error follows one back into the KeyboardInterrupt it was.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_received = threading.Event()


@contextmanager
def watch_interrupts() -> Iterator[None]:
    """Within the block, SIGINT is noted and then handled as before (KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return
    _received.clear()
    previous = signal.getsignal(signal.SIGINT)

    def note(signum: int, frame: FrameType | None) -> None:
        _received.set()
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def as_interrupt(exc: BaseException) -> BaseException:
    """``exc``, or a KeyboardInterrupt when Ctrl-C arrived and a library reported it as its
    own error."""
    if _received.is_set() and not isinstance(exc, KeyboardInterrupt):
        interrupt = KeyboardInterrupt()
        interrupt.__cause__ = exc
        return interrupt
    return exc
