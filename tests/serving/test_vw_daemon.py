"""VW daemons on models trained on the demo marketplace: daemon scores equal in-process
scores to the printed precision, concurrent clients get their own scores, a killed daemon
is restarted and the request retried, stop() leaves no process, bad models fail clearly."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.config import load_model_config
from ml.data.sources import open_source
from ml.data.urls import parse_db_url
from ml.features import FeaturePipeline
from ml.features.vw import vw_lines
from ml.frameworks import Examples, load_framework
from ml.frameworks.vw import MODEL_FILE, VWFramework
from ml.model import create_model
from serving.vw_client import DaemonPredictor, VWDaemonClient, VWDaemonUnavailable
from serving.vw_daemon import DaemonSupervisor, VWDaemon, VWDaemonError
from tests.conftest import demo_sqlite
from tests.ml.frameworks.test_vw import train_vw, with_vw

pytestmark = pytest.mark.integration

# The daemon prints 6 decimals of VW's float32 score (see serving/vw_daemon.py).
PRINTED = 5e-7


@dataclass
class Trained:
    framework: VWFramework  # loaded from the saved files, as serving loads it
    model_file: Path
    rows: pd.DataFrame  # prepared test-window rows
    expected: np.ndarray  # in-process (pyvw) scores of rows

    @property
    def scale(self) -> float:
        return self.framework._target[1]


def _trained(db: str, name: str, algorithm: str, folder: Path) -> Trained:
    config = with_vw(load_model_config(name), passes=1)
    model, windows, query = create_model(config), config.windows, config.data.query
    assert windows.train is not None and windows.test is not None and query is not None
    with open_source(parse_db_url(db)) as source:
        train, test = (
            model.prepare(
                source.query(query, {"start": w.start.isoformat(), "end": w.end.isoformat()})
            )
            for w in (windows.train, windows.test)
        )
    pipeline = FeaturePipeline(config).fit(train)
    examples = Examples("train", train, model.label(train).to_numpy(np.float64))
    train_vw(config, pipeline, examples, folder / "work", algorithm).save(folder / "model")
    framework = load_framework(folder / "model", config, pipeline)
    assert isinstance(framework, VWFramework)
    return Trained(framework, folder / "model" / MODEL_FILE, test, framework.predict(test))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_sqlite(tmp_path_factory, businesses=800, seed=3)


@pytest.fixture(scope="module")
def binary(demo_db: str, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _trained(demo_db, "lender_match", "logistic", tmp_path_factory.mktemp("binary"))


@pytest.fixture(scope="module")
def regression(demo_db: str, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _trained(demo_db, "funded_amount", "linear", tmp_path_factory.mktemp("regression"))


@pytest.fixture
def daemon(binary: Trained) -> Iterator[VWDaemon]:
    with VWDaemon(binary.model_file, num_children=20) as started:
        yield started


def group_members(group: int) -> list[int]:
    """Processes (not zombies) of a process group, from /proc (psutil is not installed)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == group and state not in "ZX":
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("which", ["binary", "regression"])
def test_daemon_scores_equal_in_process_scores(which: str, request: pytest.FixtureRequest) -> None:
    trained: Trained = request.getfixturevalue(which)
    # Twice the test window: the binary model's lines take several writes (MAX_LINES_PER_WRITE).
    rows = pd.concat([trained.rows, trained.rows], ignore_index=True)
    expected = np.concatenate([trained.expected, trained.expected])
    with (
        VWDaemon(trained.model_file) as daemon,
        VWDaemonClient("127.0.0.1", daemon.port or 0) as client,
    ):
        scores = DaemonPredictor(trained.framework, client).predict(rows)
        # Lines that carry labels and tags of their own score the same: the client re-tags.
        lines = vw_lines(trained.framework.pipeline, trained.rows.head(50)).to_pylist()
        tagged = vw_lines(
            trained.framework.pipeline,
            trained.rows.head(50),
            labels=np.ones(50),
            tags=[f"r{49 - i}" for i in range(50)],  # would mismatch every row if kept
            task="regression",
        ).to_pylist()
        assert client.predict_lines(tagged) == client.predict_lines(lines)
        assert client.predict_lines([]) == []
    np.testing.assert_allclose(scores, expected, rtol=0, atol=PRINTED * trained.scale * 1.001)
    if which == "binary":  # the printed value is exactly VW's score rounded to 6 decimals
        assert trained.scale == 1.0 and ((scores > 0) & (scores < 1)).all()
        np.testing.assert_array_equal(scores, np.round(expected, 6))
    else:
        assert trained.scale > 1000  # dollars: the 6 decimals are of the standardised score


def test_concurrent_clients_get_their_own_scores(binary: Trained, daemon: VWDaemon) -> None:
    shared = VWDaemonClient("127.0.0.1", daemon.port or 0)  # one connection per thread
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        own = VWDaemonClient("127.0.0.1", daemon.port or 0)
        try:
            for i in range(40):
                client = own if i % 2 else shared
                picked = rng.choice(len(binary.rows), size=int(rng.integers(1, 60)))
                scores = DaemonPredictor(binary.framework, client).predict(binary.rows.iloc[picked])
                np.testing.assert_allclose(scores, binary.expected[picked], atol=PRINTED)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    shared.close()
    assert not errors, errors[0]
    assert not any(thread.is_alive() for thread in threads)


def test_a_killed_daemon_is_restarted_and_the_request_retried(
    binary: Trained, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor = DaemonSupervisor(interval=0.1)
    daemon = supervisor.add(VWDaemon(binary.model_file))
    port, first_pid = daemon.port, daemon.pid
    assert port is not None and first_pid is not None
    done, errors, answered = threading.Event(), [], [0]

    def work() -> None:
        with VWDaemonClient("127.0.0.1", port, wait_for_restart=10.0) as client:
            predictor = DaemonPredictor(binary.framework, client)
            while not done.is_set():
                try:
                    scores = predictor.predict(binary.rows.head(200))
                    np.testing.assert_allclose(scores, binary.expected[:200], atol=PRINTED)
                    answered[0] += 1
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=work) for _ in range(4)]
    try:
        with caplog.at_level(logging.INFO, logger="serving"):
            for thread in threads:
                thread.start()
            assert wait_until(lambda: answered[0] > 20)
            os.killpg(first_pid, signal.SIGKILL)  # the whole daemon, mid-requests
            assert wait_until(lambda: daemon.pid != first_pid and daemon.alive())
            before = answered[0]
            assert wait_until(lambda: answered[0] > before + 20)
            done.set()
            for thread in threads:
                thread.join(timeout=15)
        assert not errors, errors[0]
        assert daemon.port == port and not group_members(first_pid)
        assert f"VW daemon for {binary.model_file} (port {port}) died with exit code -9" in (
            caplog.text
        )
        # Open connections broke under requests (not only refused new ones), then succeeded.
        assert re.search(
            r"(closed the connection|reset by peer|Broken pipe); retrying once", caplog.text
        )

        # The parent alone killed (OOM killer): its children keep the port until the
        # supervisor restarts the daemon, which first kills the orphans.
        second_pid = daemon.pid
        assert second_pid is not None
        orphans = [pid for pid in group_members(second_pid) if pid != second_pid]
        os.kill(second_pid, signal.SIGKILL)
        assert wait_until(lambda: daemon.pid != second_pid and daemon.alive())
        assert orphans and not set(orphans) & set(group_members(second_pid))
        with VWDaemonClient("127.0.0.1", port) as client:
            assert client.predict_lines(["|"])
    finally:
        done.set()
        last_pid = daemon.pid
        supervisor.stop_all()
    assert not daemon.alive() and last_pid and not group_members(last_pid)


def test_stop_leaves_no_process_behind(binary: Trained) -> None:
    daemon = VWDaemon(binary.model_file, num_children=3)
    daemon.start()
    group = daemon.pid
    assert group is not None
    members = group_members(group)
    assert len(members) == 4  # the parent and --num_children children
    with VWDaemonClient("127.0.0.1", daemon.port or 0) as client:  # a child busy on it
        client.predict_lines(["|"])
        daemon.stop()
        assert not group_members(group)
        assert not [pid for pid in members if running(pid)]  # zombies wait for init's reaping
        assert daemon.ensure_running() is False  # stopped on purpose: stays down
        with pytest.raises(VWDaemonUnavailable):
            VWDaemonClient("127.0.0.1", daemon.port or 0, wait_for_restart=0.2).predict_lines(["|"])


def test_a_bad_model_file_fails_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "model.vw"
    bad.write_bytes(b"not a VW model\n")
    daemon = VWDaemon(bad)
    with pytest.raises(VWDaemonError) as caught:
        daemon.start()
    assert caught.value.message == (
        f"the VW daemon for {bad} exited with code 1 while starting: "
        "RuntimeError: Bad model format."
    )
    assert "VW's stderr is in" in str(caught.value.hint)
    assert not daemon.alive()
    daemon.stop()  # removes the log the hint names
    missing = VWDaemon(tmp_path / "missing.vw")
    with pytest.raises(VWDaemonError, match="can't open: .*No such file or directory"):
        missing.start()
    missing.stop()


def test_client_errors_are_unavailable() -> None:
    with socket.socket() as silent:  # listens, never answers: connect works, replies never
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        client = VWDaemonClient("127.0.0.1", port, timeout=0.2)
        with pytest.raises(VWDaemonUnavailable, match="gave no answer within 0.2 s"):
            client.predict_lines(["|a x"])
        client.close()
    started = time.monotonic()
    with pytest.raises(
        VWDaemonUnavailable, match="failed twice .*not back within 0.3 s: .*Connection refused"
    ):
        VWDaemonClient("127.0.0.1", port, wait_for_restart=0.3).predict_lines(["|a x"])
    assert time.monotonic() - started < 2
    with pytest.raises(ValueError, match="line break"):
        VWDaemonClient("127.0.0.1", port).predict_lines(["|a x\n|a y"])
