"""Running trials: in this process, or in K worker processes that share the study.

The parent pulls the data once and hands the rows to its workers as Arrow files in
a scratch folder (memory-mapped, no database query per worker). Workers are
spawned, not forked: a fork after XGBoost or OpenMP started threads can deadlock.
Each worker runs its share of the remaining trials, so together they run exactly
what was asked; a Ctrl-C reaches every worker, which ends its trial KILLED.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial

from ml.config import load_config
from ml.data.cache import Cache
from ml.data.fetch import Pulled, read_frame, write_frame
from ml.data.windows import Split, TimeWindow
from ml.datasets import Windows, call_model, example_sets
from ml.errors import RtmlError
from ml.frameworks import framework_class
from ml.frameworks.base import MatrixFramework
from ml.interrupts import InterruptWatch
from ml.model import Model, create_model
from ml.selection.columns import ColumnStore
from ml.selection.space import SearchSpace, SelectionError
from ml.selection.study import DONE, make_sampler, open_storage
from ml.selection.trials import (
    Objective,
    TrialData,
    TrialRuns,
    TrialSetup,
)
from ml.training import holds_out_validation

log = logging.getLogger(__name__)

POLL_S = 0.5
STOP_WAIT_S = 60  # how long a worker may take to end its trial after Ctrl-C


def trial_data(model: Model, windows: Windows, framework: str, algorithm: str) -> TrialData:
    """Examples and the column store, built once per process."""
    sets = example_sets(
        model, windows, hold_out_validation=holds_out_validation(framework, model.config)
    )
    state = call_model(model, "model_state", model.model_state, sets.train.rows)
    cls = framework_class(framework)
    matrices = None
    if issubclass(cls, MatrixFramework):
        parts = {"train": sets.train.rows, "test": sets.test.rows}
        if sets.validation is not None:
            parts["validation"] = sets.validation.rows
        matrices = (cls, algorithm, parts)
    store = ColumnStore(model.config, sets.train.rows, state, matrices)
    return TrialData(model, windows, sets, store)


# --- handing the pulled rows to worker processes ---------------------------------------------


def write_windows(windows: Windows, folder: Path) -> None:
    split = windows.split
    meta = {
        "time_column": split.time_column,
        "train": [split.train.start.isoformat(), split.train.end.isoformat(), windows.train.key],
        "test": [split.test.start.isoformat(), split.test.end.isoformat(), windows.test.key],
    }
    write_frame(windows.train.frame, folder / "train.arrow")
    write_frame(windows.test.frame, folder / "test.arrow")
    (folder / "windows.json").write_text(json.dumps(meta))


def read_windows(folder: Path) -> Windows:
    meta = json.loads((folder / "windows.json").read_text())
    parts = {}
    for part in ("train", "test"):
        start, end, key = meta[part]
        window = TimeWindow(date.fromisoformat(start), date.fromisoformat(end))
        parts[part] = (window, Pulled(read_frame(folder / f"{part}.arrow"), key, from_cache=True))
    split = Split(meta["time_column"], parts["train"][0], parts["test"][0])
    return Windows(split, parts["train"][1], parts["test"][1])


# --- one worker's loop --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    """What a worker process needs to join the study (plain values: it crosses processes)."""

    index: int
    config_path: str
    handoff: str
    storage_url: str
    study_name: str
    trials: int  # this worker's share
    target: int  # finished trials the study should hold
    timeout: float | None
    seed: int | None
    framework: str
    algorithm: str
    nthread: int
    cache_root: str | None
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


def run_trials(
    job: WorkerJob,
    space: SearchSpace,
    data: TrialData,
    study: optuna.Study,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    in_worker: bool = False,
) -> None:
    """Run ``job.trials`` trials (fewer when the study reaches its target or time runs out)."""
    setup = TrialSetup(
        job.framework,
        job.algorithm,
        job.nthread,
        Cache(Path(job.cache_root)) if job.cache_root else None,
    )
    runs = TrialRuns(
        job.tracking_uri,
        job.experiment_id,
        job.parent_run_id,
        job.study_name,
        job.framework,
        job.algorithm,
    )
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
        # Hosts that share the study stop when it holds the target, whoever ran the trials.
        MaxTrialsCallback(job.target, states=DONE),
    ]
    if on_trial is not None:
        callbacks.append(on_trial)
    # Graceful: the first Ctrl-C stops the trial at its next boosting round and ends its run
    # KILLED; in a worker, the signal its parent forwards is then ignored.
    with InterruptWatch(graceful=True, once=in_worker) as interrupts:

        def stop_after_interrupt(study: optuna.Study, _: FrozenTrial) -> None:
            if interrupts.received:
                study.stop()

        study.optimize(
            Objective(space, data, setup, runs, interrupts),
            n_trials=job.trials,
            timeout=job.timeout,
            callbacks=[*callbacks, stop_after_interrupt],
            gc_after_trial=False,
        )
        interrupts.check()  # stopped for Ctrl-C: say so to the caller


def worker_main(job: WorkerJob, errors: Queue[Any]) -> None:
    """A spawned worker: rebuild the data from the handoff, join the study, run its share."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures reach the parent instead
    try:
        config = load_config(Path(job.config_path))
        space = SearchSpace(config)
        data = trial_data(
            create_model(config), read_windows(Path(job.handoff)), job.framework, job.algorithm
        )
        sampler = make_sampler(
            space, job.target, None if job.seed is None else job.seed + job.index
        )
        study = optuna.load_study(
            study_name=job.study_name, storage=open_storage(job.storage_url), sampler=sampler
        )
        run_trials(job, space, data, study, in_worker=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except BaseException as exc:
        errors.put(_portable(exc))
        sys.exit(1)


def _portable(exc: BaseException) -> BaseException:
    """The error itself when it survives the trip to the parent, else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any unpicklable error is reported as text
        return RtmlError(f"a worker failed: {type(exc).__name__}: {exc}")


def run_workers(
    jobs: list[WorkerJob], study: optuna.Study, on_poll: Callable[[optuna.Study], None]
) -> None:
    """Start a process per job, report progress until they end, stop them all on Ctrl-C or
    on the first worker error (which is then raised here)."""
    context = multiprocessing.get_context("spawn")
    errors: Queue[Any] = context.Queue()
    processes: list[BaseProcess] = []
    try:
        for job in jobs:
            process = context.Process(
                target=worker_main, args=(job, errors), name=f"rtml-select-{job.index}"
            )
            process.start()
            processes.append(process)
        while any(p.is_alive() for p in processes):
            on_poll(study)
            if not errors.empty():
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    _stop(processes)
    on_poll(study)
    if not errors.empty():
        raise errors.get()
    failed = [(p.name, p.exitcode) for p in processes if p.exitcode not in (0, None)]
    if failed:
        raise SelectionError(
            f"worker {failed[0][0]} exited with code {failed[0][1]}",
            hint="its finished trials are kept: rerun the same command to continue",
        )


def _stop(processes: list[BaseProcess]) -> None:
    """Ask live workers to stop as on Ctrl-C (their trial ends KILLED), then make sure."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_WAIT_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
