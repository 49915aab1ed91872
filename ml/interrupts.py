"""Ctrl-C that leaves runs and studies consistent, even around native code.

XGBoost builds a ``QuantileDMatrix`` by calling back into Python; a KeyboardInterrupt
raised inside such a callback is printed as a traceback and comes out as an
``XGBoostError``, so a run interrupted there would be recorded FAILED instead of
KILLED, and a second signal could cut short the cleanup that records it.

An :class:`InterruptWatch` notes SIGINT while it is active. Plain, it then raises
KeyboardInterrupt as usual, and :meth:`InterruptWatch.as_interrupt` turns a library's
error that followed one back into the KeyboardInterrupt it was. ``graceful``, the
first SIGINT only asks the work to stop (:func:`stop_requested`: XGBoost's training
loop checks it every round) and the caller raises KeyboardInterrupt at its next safe
point; a second SIGINT raises at once, unless ``once`` (worker processes, whose parent
forwards the signal the terminal already sent) makes it ignored.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

_graceful_watches: list[InterruptWatch] = []


def stop_requested() -> bool:
    """True when a graceful watch received Ctrl-C: long loops should wind down."""
    return any(watch.received for watch in _graceful_watches)


class InterruptWatch:
    def __init__(self, graceful: bool = False, once: bool = False) -> None:
        self.graceful = graceful
        self.once = once
        self.received = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> InterruptWatch:
        self.received = False
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers belong to the main thread
        self._previous = signal.getsignal(signal.SIGINT)
        if self._previous is signal.SIG_IGN:
            return self  # whoever started us wants Ctrl-C ignored; keep it so
        signal.signal(signal.SIGINT, self._note)
        self._installed = True
        if self.graceful:
            _graceful_watches.append(self)
        return self

    def _note(self, signum: int, frame: FrameType | None) -> None:
        first = not self.received
        self.received = True
        if self.graceful and first:
            return  # the work stops at its next safe point
        if self.once:
            return
        raise KeyboardInterrupt

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self in _graceful_watches:
            _graceful_watches.remove(self)
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def check(self) -> None:
        """At a safe point: raise the KeyboardInterrupt a graceful watch held back."""
        if self.received:
            raise KeyboardInterrupt

    def as_interrupt(self, exc: BaseException) -> BaseException:
        """``exc``, or a KeyboardInterrupt when Ctrl-C arrived and a library reported it as
        its own error."""
        if self.received and not isinstance(exc, KeyboardInterrupt):
            interrupt = KeyboardInterrupt()
            interrupt.__cause__ = exc
            return interrupt
        return exc
