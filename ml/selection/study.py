"""The Optuna side of ``rtml select``: storage, the study, its sampler, how many trials remain.

A study lives in an Optuna RDB storage: a local SQLite file by default
(``var/optuna.db``), or a database server (``--storage postgresql://...``) that
several worker processes or hosts share. The study remembers its search space and
setup (config, data, framework) as user attributes, so a rerun with the same name
continues it, and a rerun with anything different is refused rather than mixing
trial values that cannot be compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import warnings
from collections import Counter
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from sqlalchemy.exc import SQLAlchemyError

from ml.data.urls import parse_db_url, redact
from ml.errors import DataSourceError
from ml.selection.space import SearchSpace, SelectionError
from ml.selection.trials import WORKER_ATTR
from ml.tracking import LOCAL_STORE

SPACE_ATTR = "rtml.space"
BASELINE_ATTR = "rtml.baseline"
SETUP_ATTR = "rtml.setup"
# A worker that dies without a word (SIGKILL, a lost host) leaves its trial RUNNING; with a
# heartbeat, Optuna marks it FAIL after the grace period so the trial is run again.
HEARTBEAT_S = 30
GRACE_S = 120
CONNECT_TIMEOUT_S = 5
DONE = (TrialState.COMPLETE, TrialState.PRUNED)

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def storage_url(given: str | None) -> str:
    """``--storage``, or the local default ``sqlite:///var/optuna.db``."""
    if given:
        return given
    LOCAL_STORE.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(LOCAL_STORE / 'optuna.db').resolve()}"


def check_workers(url: str, workers: int) -> None:
    if workers < 1:
        raise SelectionError(f"--workers must be at least 1, got {workers}")
    if workers > 1 and url.startswith("sqlite"):
        raise SelectionError(
            f"{workers} workers cannot share SQLite storage ({redact(url)}): SQLite locks the "
            "whole file for each write, and Optuna advises a database server for parallel workers",
            hint="pass --storage postgresql://user@host/db (or run one worker)",
        )


def open_storage(url: str) -> RDBStorage:
    """Optuna's RDB storage at ``url``, checked by connecting; a clear error if it cannot be."""
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        engine_url = url
        if url.startswith("postgresql://"):
            # the driver rtml ships (SQLAlchemy 2.1 would pick psycopg 3), as the data layer does
            engine_url = parse_db_url(url).render_as_string(hide_password=False)
        return RDBStorage(
            engine_url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
        )
    except (SQLAlchemyError, ImportError, ValueError, RuntimeError, DataSourceError) as exc:
        # RuntimeError: a storage schema from another Optuna version
        raise SelectionError(
            f"cannot use the Optuna storage {redact(url)}: {_reason(exc)}",
            hint="check that the database server is running and the URL (a SQLAlchemy URL, "
            "e.g. postgresql://user@host/db or sqlite:///var/optuna.db)",
        ) from exc


def storage_error(exc: BaseException, url: str) -> SelectionError:
    """The storage failed during the study (e.g. the database restarted)."""
    return SelectionError(
        f"the Optuna storage {redact(url)} failed during the study: {_reason(exc)}",
        hint="finished trials are kept: rerun the same command to continue",
    )


def _reason(exc: BaseException) -> str:
    reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    reason = re.sub(r"^\([\w.]+\) ", "", reason)  # "(psycopg2.OperationalError) ..."
    return redact(reason)[:300]


def make_sampler(space: SearchSpace, trials: int, seed: int | None) -> optuna.samplers.BaseSampler:
    """Every choice once when the trials cover the space (or combinations are listed);
    otherwise TPE, with the constant liar so parallel workers spread out."""
    if space.explicit or space.size() <= trials:
        return optuna.samplers.BruteForceSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def default_study_name(prefix: str, space: SearchSpace, setup: dict[str, Any]) -> str:
    """``<model>-<version>-<framework>-<algorithm>-<digest>``: the digest changes with the
    space or the setup, so a changed config starts a new study instead of being refused."""
    canonical = json.dumps([space.describe(), setup], sort_keys=True)
    return f"{prefix}-{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


def open_study(
    storage: RDBStorage,
    name: str,
    space: SearchSpace,
    setup: dict[str, Any],
    sampler: optuna.samplers.BaseSampler,
) -> optuna.Study:
    """Load the study ``name`` (checking it is the same selection), or create it."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=space.direction,
        sampler=sampler,
        load_if_exists=True,  # a rerun, or another host starting at the same moment
    )
    if SPACE_ATTR not in study.user_attrs and not study.get_trials(deepcopy=False):
        # New (or created by a run that stopped before this step): make it ours.
        study.set_user_attr(SPACE_ATTR, space.describe())
        study.set_user_attr(SETUP_ATTR, setup)
        baseline = space.baseline_params()
        if baseline is not None:
            # "Every feature, as configured" first: the yardstick combinations are compared with.
            study.enqueue_trial(baseline, user_attrs={BASELINE_ATTR: True}, skip_if_exists=True)
    check_study(study, storage, space, setup)
    return study


def check_existing_study(storage: RDBStorage, name: str, space: SearchSpace) -> None:
    """Refuse a named study with another search space before any data is pulled."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return
    if SPACE_ATTR in study.user_attrs:
        check_study(study, storage, space, None)


def check_study(
    study: optuna.Study, storage: RDBStorage, space: SearchSpace, setup: dict[str, Any] | None
) -> None:
    """Raise unless ``study`` was made by rtml select for this space (and setup, if given)."""
    _check_same(study, study.study_name, storage, space.describe(), setup)


def _check_same(
    study: optuna.Study,
    name: str,
    storage: RDBStorage,
    described: dict[str, Any],
    setup: dict[str, Any] | None,
) -> None:
    attrs = study.user_attrs
    fix = (
        f"use --study NEW_NAME, or delete the old one: optuna delete-study --study-name {name} "
        f"--storage {redact(storage.url)}"
    )
    if SPACE_ATTR not in attrs:
        raise SelectionError(f"study {name!r} exists but was not made by rtml select", hint=fix)
    if study.direction.name.lower() != described["direction"]:
        raise SelectionError(
            f"study {name!r} exists and it {study.direction.name.lower()}s, but "
            f"selection.direction is {described['direction']!r}",
            hint=fix,
        )
    if attrs[SPACE_ATTR] != json.loads(json.dumps(described)):
        what = _first_difference(attrs[SPACE_ATTR], described)
        raise SelectionError(
            f"study {name!r} exists with a different search space ({what})", hint=fix
        )
    if setup is not None and attrs.get(SETUP_ATTR) != json.loads(json.dumps(setup)):
        what = _first_difference(attrs.get(SETUP_ATTR) or {}, setup)
        raise SelectionError(
            f"study {name!r} was run with a different setup ({what}); its trial values "
            "would not compare with new ones",
            hint=fix,
        )


def _first_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    for key in sorted(set(old) | set(new)):
        if json.dumps(old.get(key), sort_keys=True) != json.dumps(new.get(key), sort_keys=True):
            return f"{key}: was {_short(old.get(key))}, now {_short(new.get(key))}"
    return "no difference found"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def counts(study: optuna.Study) -> Counter[TrialState]:
    return Counter(t.state for t in study.get_trials(deepcopy=False))


def remaining_trials(study: optuna.Study, storage: RDBStorage, target: int) -> int:
    """Trials still to run for the study to hold ``target`` finished ones; trials other
    workers are running count as on their way, failed ones are run again."""
    optuna.storages.fail_stale_trials(study)  # silent workers, after the heartbeat's grace
    _fail_orphans(study, storage)
    states = counts(study)
    return max(0, target - sum(states[s] for s in DONE) - states[TrialState.RUNNING])


def _fail_orphans(study: optuna.Study, storage: RDBStorage) -> None:
    """Fail RUNNING trials of processes on this host that no longer exist (a killed
    worker), at once rather than after the heartbeat's grace period."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            # FrozenTrial has no public id; Optuna's own fail_stale_trials does the same.
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: leave it to the heartbeat
    return True


def retry_failed(study: optuna.Study) -> int:
    """Queue again the choices of failed (e.g. interrupted) trials that no other trial covers.

    A sampler counts a failed trial's params as visited (the brute-force one would never
    return to them), so a rerun would otherwise leave those combinations out.
    """
    trials = study.get_trials(deepcopy=False)
    covered = {_params_key(t.params) for t in trials if t.state != TrialState.FAIL}
    queued = 0
    for trial in trials:
        key = _params_key(trial.params)
        if trial.state == TrialState.FAIL and trial.params and key not in covered:
            attrs = {"rtml.retry_of": trial.number}
            if trial.user_attrs.get(BASELINE_ATTR):
                attrs[BASELINE_ATTR] = True
            study.enqueue_trial(dict(trial.params), user_attrs=attrs)
            covered.add(key)
            queued += 1
    return queued


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def shares(remaining: int, workers: int) -> list[int]:
    """Split the remaining trials between workers, so that together they run exactly that."""
    return [remaining // workers + (1 if i < remaining % workers else 0) for i in range(workers)]
