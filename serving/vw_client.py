"""The VW daemon client: all of a request's lines in one socket write, answers matched by tag.

:class:`DaemonPredictor` is :meth:`VWFramework.predict` through a daemon (same lines, link
and unscaling), so serving swaps it for the in-process path per model.

Precision: the daemon prints each prediction as ``{:.6f}`` (an integral value bare:
``1``, ``-1``), so a daemon score is within 5e-7 of VW's own float32 score, which is what
:meth:`VWFramework.predict` returns (measured: at most 4.99e-7 apart on the demo test
window; each is VW's score rounded to 6 decimals). A logistic probability p keeps a
relative precision of 5e-7 / p only (1e-4 reads as 0.000100; under 5e-7 it reads as 0);
a regression score is within 5e-7 x ``target_scale`` once unscaled. Full precision is
not available over the socket: raw predictions (``-r``) go only to a file, the socket
being VW's only prediction sink; the link cannot be overridden at load (``--link
identity`` on a logistic model: "Disagreeing option values for 'link'") and the model
header is checksummed ("Checksum is inconsistent" if edited), so rewriting it is refused too.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.features.encode import Frame
from ml.features.vw import vw_lines
from ml.frameworks.base import Framework
from ml.frameworks.vw import VWFramework
from serving.errors import Unavailable

log = logging.getLogger(__name__)

# Replies come back while the write goes on; past this many lines per write a client that
# only writes could fill both socket buffers and deadlock with the daemon.
MAX_LINES_PER_WRITE = 2048  # ~30 KB of replies: well inside a default socket buffer
PROBE_TAG = "rtml_probe"
PROBE = f"'{PROBE_TAG} |\n".encode()  # no features: scores the constant


class VWDaemonUnavailable(Unavailable):
    """A VW daemon did not answer (down, restarting, or too slow): a 503."""

    public_message = "the model's VW daemon is unavailable"  # host and port stay in the log


class _Broken(Exception):
    """The connection failed in a way a reconnect may fix."""


class VWDaemonClient:
    """Scores VW lines through a daemon: one persistent connection per thread.

    Connections are per thread (``threading.local``), so one client may be shared by a
    worker's threads. Each open connection holds one daemon child: :meth:`close` a client
    you drop. A request waits up to ``timeout`` for its answers; if the connection breaks
    (or is refused) it waits up to ``wait_for_restart`` for the daemon to answer a probe,
    then is sent once more. Either failing raises :class:`VWDaemonUnavailable` (a 503).
    """

    def __init__(
        self, host: str, port: int, timeout: float = 2.0, wait_for_restart: float = 10.0
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.wait_for_restart = wait_for_restart
        self._local = threading.local()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def predict_lines(self, lines: Sequence[str]) -> list[float]:
        """One score per line, in input order, matched to the lines by tag."""
        if not lines:
            return []
        chunks = [
            _payload(lines[i : i + MAX_LINES_PER_WRITE], i)
            for i in range(0, len(lines), MAX_LINES_PER_WRITE)
        ]
        scores: dict[str, float] = {}
        for payload, tags in chunks:
            scores.update(self._request(payload, tags))
        return [scores[f"r{i}"] for i in range(len(lines))]

    def close(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            sock.close()
        self._local.__dict__.clear()

    def __enter__(self) -> VWDaemonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, payload: bytes, tags: set[str]) -> dict[str, float]:
        try:
            try:
                return self._exchange(self._connection(), payload, tags)
            except _Broken as first:
                self._drop()
                log.info("VW daemon %s:%s: %s; retrying once", self.host, self.port, first)
                try:
                    return self._exchange(self._reconnect(), payload, tags)
                except _Broken as second:
                    self._drop()
                    raise self._unavailable(f"failed twice ({first}; then {second})") from second
        except TimeoutError as exc:
            self._drop()  # late replies must not be read as the next request's
            raise self._unavailable(f"gave no answer within {self.timeout:g} s") from exc

    def _exchange(self, sock: socket.socket, payload: bytes, tags: set[str]) -> dict[str, float]:
        """Write all lines at once, read until every tag is answered (TimeoutError if not)."""
        deadline = time.monotonic() + self.timeout
        scores: dict[str, float] = {}
        buffer = b""
        try:
            sock.settimeout(self.timeout)
            sock.sendall(payload)
            while len(scores) < len(tags):
                sock.settimeout(max(deadline - time.monotonic(), 1e-3))
                data = sock.recv(65536)
                if not data:
                    raise _Broken("the daemon closed the connection")
                *replies, buffer = (buffer + data).split(b"\n")
                for reply in replies:
                    tag, value = _parse(reply, tags)
                    scores[tag] = value
        except TimeoutError:
            raise
        except OSError as exc:
            raise _Broken(str(exc) or type(exc).__name__) from exc
        return scores

    def _connection(self) -> socket.socket:
        """This thread's connection, made on first use."""
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is not None and self._local.pid == os.getpid():  # not inherited by a fork
            return sock
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise _Broken(f"cannot connect: {exc}") from exc
        return self._keep(sock)

    def _reconnect(self) -> socket.socket:
        """A new connection once the daemon answers a probe, for up to wait_for_restart s.

        A connection alone is not enough: while a killed daemon's processes exit, its
        listening socket still accepts, then resets.
        """
        deadline = time.monotonic() + self.wait_for_restart
        while True:
            sock = None
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                self._exchange(sock, PROBE, {PROBE_TAG})
                return self._keep(sock)
            except (_Broken, OSError) as exc:
                if sock is not None:
                    sock.close()
                if time.monotonic() >= deadline:
                    raise _Broken(f"not back within {self.wait_for_restart:g} s: {exc}") from exc
            time.sleep(0.05)

    def _keep(self, sock: socket.socket) -> socket.socket:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.sock, self._local.pid = sock, os.getpid()
        with self._lock:
            self._open.add(sock)
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def _unavailable(self, what: str) -> VWDaemonUnavailable:
        return VWDaemonUnavailable(
            f"the VW daemon on {self.host}:{self.port} {what}",
            hint="it may be restarting; retry after a pause",
        )


def _parse(reply: bytes, tags: set[str]) -> tuple[str, float]:
    """``b"0.786174 r3"`` -> ("r3", 0.786174)."""
    value, _, tag = reply.decode(errors="replace").partition(" ")
    try:
        if tag in tags:
            return tag, float(value)
    except ValueError:
        pass
    raise _Broken(f"unexpected reply {reply[:80]!r}")


def _payload(lines: Sequence[str], start: int) -> tuple[bytes, set[str]]:
    tagged = [_tagged(line, start + i) for i, line in enumerate(lines)]
    return "".join(tagged).encode(), {f"r{start + i}" for i in range(len(lines))}


def _tagged(line: str, i: int) -> str:
    """``line`` with its tag set to ``'r<i>`` (a tag already there is replaced)."""
    if "\n" in line or "\r" in line:
        raise ValueError(f"a VW line holds a line break: {line[:80]!r}")
    header, bar, features = line.partition("|")
    # The header is "[label [weight]] ['tag]"; a quoted token is the tag. (VW's old form,
    # a tag glued to the "|", is not written by ml.features.vw.)
    kept = [token for token in header.split() if not token.startswith("'")]
    return " ".join([*kept, f"'r{i}"]) + f" {bar}{features}\n"


class DaemonPredictor:
    """:meth:`VWFramework.predict` through a daemon: same lines, same link and unscaling."""

    def __init__(self, framework: Framework, client: VWDaemonClient) -> None:
        if not isinstance(framework, VWFramework):  # loaders return the base type
            raise TypeError(f"a VW daemon scores VW models, not {framework.name}")
        self.framework = framework
        self.client = client

    def predict(self, rows: Frame) -> np.ndarray:
        lines: list[Any] = vw_lines(self.framework.pipeline, rows).to_pylist()
        raw = np.asarray(self.client.predict_lines(lines), dtype=np.float64)
        # The model file applies the link (logistic) in the daemon, as in-process.
        return self.framework._unscaled(raw)

    def close(self) -> None:
        self.client.close()
