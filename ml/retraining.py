"""``rtml retrain``: train on the most recent windows, register, gate, set the alias.

The windows end at ``as_of`` (today for the daily timer): a config with relative
windows keeps its lengths; one with absolute windows keeps their lengths and gap,
moved to end at ``as_of``. The new version becomes @champion when there is none,
or when the model's policy is ``champion_if_better`` and it beats the champion on
the same recent window; else @challenger. Any failure before the alias is set changes no alias.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ml.config import find_config, load_config
from ml.config.models import ModelConfig
from ml.data.cache import Cache
from ml.frameworks import framework_class
from ml.gate import GateResult, compare
from ml.registry import set_alias
from ml.training import TrainOptions, TrainResult, train_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainResult:
    trained: TrainResult
    version: str
    gate: GateResult
    alias: str


def recent_windows(config: ModelConfig, as_of: date) -> list[str]:
    """``--set`` overrides that move the config's windows to end at ``as_of``."""
    windows = config.windows
    if windows.relative is not None:
        return [f"windows.relative.as_of={as_of.isoformat()}"]
    assert windows.train is not None and windows.test is not None  # checked by the config
    relative = {
        "as_of": as_of.isoformat(),
        "test_days": (windows.test.end - windows.test.start).days,
        "train_days": (windows.train.end - windows.train.start).days,
        "gap_days": max((windows.test.start - windows.train.end).days, 0),
    }
    return ["windows.train=null", "windows.test=null", f"windows.relative={json.dumps(relative)}"]


def retrain(
    name: str,
    *,
    version: str | None = None,
    configs_dir: Path = Path("configs"),
    as_of: date | None = None,
    cache: Cache | None = None,
    progress: bool = True,
) -> RetrainResult:
    day = as_of or date.today()
    path = find_config(name, version, configs_dir)
    config = load_config(path, recent_windows(load_config(path), day))
    policy = config.promotion
    algorithm = (
        policy.algorithm or framework_class(policy.framework).task_algorithms[config.task][0]
    )
    trained = train_model(
        config,
        path.stem,
        TrainOptions(
            framework=policy.framework,
            algorithm=algorithm,
            cache=cache,
            register=True,
            progress=progress,
            today=day,
        ),
    )
    assert trained.registered_version is not None  # register=True
    gate = compare(name, trained.registered_version, today=day)
    # A model without a champion serves nothing: its first version takes the role.
    promote = gate.champion is None or (policy.policy == "champion_if_better" and gate.passed)
    alias = "champion" if promote else "challenger"
    set_alias(name, trained.registered_version, alias)
    return RetrainResult(trained, trained.registered_version, gate, alias)
