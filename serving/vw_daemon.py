"""VW daemons: one ``vw --daemon`` per model version, supervised, and a client that scores
all of a request's lines in one socket write.

The wheel ships no ``vw`` binary; ``python -m vowpalwabbit`` with the daemon flags is the
same program. What the daemon does (vowpalwabbit 9.11, measured):

- ``--foreground`` keeps the parent in front, but it still forks ``--num_children``
  children (VW's default 10) that each serve ONE connection at a time until the client
  closes it. A persistent connection therefore holds a child: more open clients than
  children and the extra ones wait unanswered (here: a timeout). Size ``num_children``
  to the web workers x threads, and close clients that are dropped.
- It listens on every interface (VW has no option to bind one) and checks no API key, so
  ``rtml serve`` warns at start: a firewall must keep other hosts off the daemon ports
  (or use ``RTML_VW_MODE=inprocess``).
- On SIGTERM the parent kills its children; on SIGKILL (OOM killer) it does not, and the
  orphans keep serving and keep the port (a restart then fails with "bind, errno =
  Address already in use"). So the daemon runs in its own process group and every
  stop or restart signals the whole group.
- Without ``--passes 1`` the children close each connection unanswered ("finished run,
  number of examples = 0"). ``--port_file`` is written before ``listen``, so readiness is
  a prediction that answers, not the file.

The client side (one write per request, tags, precision) is :mod:`serving.vw_client`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ml.errors import RtmlError
from serving.vw_client import VWDaemonClient, VWDaemonUnavailable

log = logging.getLogger(__name__)

DAEMON_ARGS = ["--daemon", "--foreground", "-t", "--quiet", "--passes", "1"]
DEFAULT_CHILDREN = 16  # concurrent connections per daemon (see the module docstring)
STOP_TIMEOUT = 5.0


class VWDaemonError(RtmlError):
    """A VW daemon could not be started."""


class VWDaemon:
    """One ``vw --daemon`` on a model file, in its own process group."""

    def __init__(
        self,
        model_file: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 15.0,
        num_children: int = DEFAULT_CHILDREN,
    ) -> None:
        self.model_file = Path(model_file)
        self.host = host
        self.startup_timeout = startup_timeout
        self.num_children = num_children
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_dir: Path | None = None  # VW's stderr and port file; stop() removes it
        self._log_offset = 0
        self._wanted = False  # start() sets it, stop() clears it: a stopped daemon stays down
        self._lock = threading.RLock()
        self.started_at = 0.0

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Spawn the daemon and return once it answers a prediction."""
        with self._lock:
            if self.alive():
                return
            self._wanted = True
            self._kill_group()  # orphans of a killed parent would hold the port
            self._wait_ready(self._spawn())
            self.started_at = time.monotonic()
            log.info("VW daemon for %s: pid %s, port %s", self.model_file, self.pid, self.port)

    def ensure_running(self) -> bool:
        """Restart the daemon (same port) if it died; True if it was restarted."""
        with self._lock:
            if not self._wanted or self.alive():
                return False
            self.start()
            return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the group (VW's parent also kills its children), SIGKILL after timeout."""
        with self._lock:
            self._wanted = False
            self._kill_group(signal.SIGTERM, timeout)
            self._proc = None
            if self._log_dir is not None:
                shutil.rmtree(self._log_dir, ignore_errors=True)
                self._log_dir = None

    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines VW wrote to stderr since the latest start."""
        if self._log_dir is None:
            return ""
        try:
            with (self._log_dir / "vw.log").open("rb") as handle:
                handle.seek(self._log_offset)
                text = handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def __enter__(self) -> VWDaemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- internals ----------------------------------------------------------------------

    def _spawn(self) -> Path:
        """Start VW's parent process; return the file VW writes its port to."""
        if self._log_dir is None or not self._log_dir.is_dir():
            self._log_dir = Path(tempfile.mkdtemp(prefix="rtml-vw-daemon-"))
        port_file = self._log_dir / "port"
        port_file.unlink(missing_ok=True)
        # Port 0: VW binds a free port itself (no race) and writes it to the port file.
        ports = ["--port", str(self._port or 0)]
        if self._port is None:
            ports += ["--port_file", str(port_file)]
        with (self._log_dir / "vw.log").open("ab") as stderr:
            self._log_offset = stderr.tell()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "vowpalwabbit", *DAEMON_ARGS, *ports,
                 "--num_children", str(self.num_children), "-i", str(self.model_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own process group: see stop()
            )  # fmt: skip
        return port_file

    def _wait_ready(self, port_file: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                self._fail(f"exited with code {self._proc.returncode} while starting")
            if self._port is None:
                with contextlib.suppress(OSError, ValueError):  # not written yet
                    self._port = int(port_file.read_text())
            if self._port is not None and _answers(self.host, self._port):
                return
            if time.monotonic() > deadline:
                self._kill_group()
                self._fail(f"did not answer within {self.startup_timeout:g} s")
            time.sleep(0.05)

    def _fail(self, what: str) -> None:
        said = self.stderr_tail()
        last = said.splitlines()[-1] if said else "VW wrote nothing to stderr"
        raise VWDaemonError(
            f"the VW daemon for {self.model_file} {what}: {last}",
            hint=f"VW's stderr is in {self._log_dir}/vw.log (until stop())",
        )

    def _kill_group(self, first: int = signal.SIGKILL, timeout: float = STOP_TIMEOUT) -> None:
        """Signal the whole process group, wait for the parent, then until the group is gone."""
        if self._proc is None:
            return
        group = self._proc.pid  # start_new_session: the group id is the parent's pid
        for sig in dict.fromkeys((first, signal.SIGKILL)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout)  # reaped: a zombie parent would keep the group alive
            if _group_gone(group, deadline=time.monotonic() + timeout):
                return
        log.warning("VW daemon group %s (%s) outlived SIGKILL", group, self.model_file)


def _group_gone(group: int, deadline: float) -> bool:
    while _group_alive(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _group_alive(group: int) -> bool:
    """True while a process of the group runs. Zombies do not count: they hold no port,
    and an init that reaps slowly (PID 1 here: every ~1.5 s) would stall every restart."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: kill(0) also sees zombies, but is all there is
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:  # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
                state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, ValueError):
                continue  # it just exited
            if int(pgrp) == group and state not in "ZX":
                return True
    return False


def _answers(host: str, port: int) -> bool:
    client = VWDaemonClient(host, port, timeout=1.0, wait_for_restart=0.0)
    try:
        client.predict_lines(["|"])
        return True
    except VWDaemonUnavailable:
        return False
    finally:
        client.close()


@dataclass
class _Watch:
    daemon: VWDaemon
    failures: int = 0  # consecutive quick deaths or failed restarts
    next_check: float = 0.0


class DaemonSupervisor:
    """Starts daemons and restarts the ones that die, from one background thread."""

    def __init__(
        self, interval: float = 0.5, max_backoff: float = 30.0, stable: float = 10.0
    ) -> None:
        self.interval = interval
        self.max_backoff = max_backoff
        self.stable = stable  # up this long, a daemon's past deaths are forgotten
        self._watches: list[_Watch] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Only the process that made the supervisor owns its daemons: a forked gunicorn
        # worker inherits this object, and its exit must not stop the host's daemons.
        self._owner = os.getpid()

    def add(self, daemon: VWDaemon) -> VWDaemon:
        """Start ``daemon`` (VWDaemonError if it cannot) and watch it from now on."""
        try:
            daemon.start()
        except BaseException:
            daemon.stop()  # its process group and log folder, whatever start() got to
            raise
        with self._lock:
            self._watches.append(_Watch(daemon))
            if self._thread is None:
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=self._run, name="vw-daemon-supervisor", daemon=True
                )
                self._thread.start()
        return daemon

    def remove(self, daemon: VWDaemon) -> None:
        with self._lock:
            self._watches = [w for w in self._watches if w.daemon is not daemon]
        daemon.stop()

    def check(self) -> list[VWDaemon]:
        """One round: restart the dead daemons that are due; return those restarted."""
        restarted = []
        now = time.monotonic()
        with self._lock:
            due = [w for w in self._watches if w.next_check <= now]
        for watch in due:
            daemon = watch.daemon
            if daemon.alive():
                if now - daemon.started_at > self.stable:
                    watch.failures = 0
                continue
            code = daemon.returncode
            if code is None:  # stopped on purpose, or never started
                continue
            quick = now - daemon.started_at < self.stable
            log.warning(
                "VW daemon for %s (port %s) died with exit code %s; restarting. stderr: %s",
                daemon.model_file, daemon.port, code, daemon.stderr_tail(2) or "-",
            )  # fmt: skip
            try:
                if daemon.ensure_running():
                    restarted.append(daemon)
                watch.failures = watch.failures + 1 if quick else 0
            except VWDaemonError as exc:
                log.error("VW daemon for %s did not restart: %s", daemon.model_file, exc)
                watch.failures += 1
            if watch.failures:  # dying again and again: wait longer before the next restart
                backoff = min(self.interval * 2**watch.failures, self.max_backoff)
                watch.next_check = time.monotonic() + backoff
        return restarted

    def stop_all(self) -> None:
        if os.getpid() != self._owner:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT + self.interval)
            self._thread = None
        with self._lock:
            watches, self._watches = self._watches, []
        for watch in watches:
            watch.daemon.stop()

    def __enter__(self) -> DaemonSupervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.check()
            except Exception:  # the watcher must outlive any one bad round
                log.exception("VW daemon supervisor round failed")
