"""What the person running ``rtml select`` sees: a line per finished trial and a bar."""

from __future__ import annotations

import sys
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from ml.selection.space import BUCKETS_PARAM, COMBINATION_PARAM, GROUP_PARAM, SearchSpace
from ml.selection.study import DONE
from ml.selection.trials import DUPLICATE_ATTR, FEATURES_ATTR


class TrialPrinter:
    """One line per finished trial, and a bar over the study's target."""

    def __init__(self, space: SearchSpace, target: int, progress: bool) -> None:
        self.space = space
        self.seen: set[int] = set()
        self.bar = tqdm(
            total=target, desc="select", unit="trial", disable=not progress, leave=False
        )

    def skip_finished(self, study: optuna.Study) -> None:
        """Count the trials a study already holds (a rerun) without a line for each."""
        done = study.get_trials(deepcopy=False, states=(*DONE, TrialState.FAIL))
        self.seen.update(t.number for t in done)
        self.bar.update(sum(t.state in DONE for t in done))

    def update(self, study: optuna.Study) -> None:
        finished = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state in (*DONE, TrialState.FAIL) and t.number not in self.seen
        ]
        for trial in sorted(finished, key=lambda t: t.number):
            self.seen.add(trial.number)
            tqdm.write(self.line(trial), file=sys.stderr)
            if trial.state in DONE:
                self.bar.update(1)

    def line(self, trial: FrozenTrial) -> str:
        head = f"trial {trial.number:>3}"
        if trial.state == TrialState.PRUNED:
            return f"{head}  pruned: the choice leaves no feature"
        if trial.state == TrialState.FAIL:
            return f"{head}  failed or interrupted (a rerun runs it again)"
        duplicate = trial.user_attrs.get(DUPLICATE_ATTR)
        value = f"{self.space.metric} {trial.value:.4f}"
        if duplicate is not None:
            return f"{head}  {value}  same features as trial {duplicate}: not retrained"
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else 0.0
        )
        features = len(trial.user_attrs.get(FEATURES_ATTR, []))
        choice = describe_params(trial.params)
        return f"{head}  {value}  {choice}, {features} features ({seconds:.1f} s)"

    def close(self) -> None:
        self.bar.close()


def describe_params(params: dict[str, Any]) -> str:
    """'business+fit, credit_score quantiles=5' from a trial's params."""
    if COMBINATION_PARAM in params:
        return str(params[COMBINATION_PARAM])
    groups = [
        k.removeprefix(GROUP_PARAM) for k, v in params.items() if k.startswith(GROUP_PARAM) and v
    ]
    return ", ".join(["+".join(groups) or "ungrouped only", *bucket_choices(params)])


def bucket_choices(params: dict[str, Any]) -> list[str]:
    """'credit_score quantiles=5' for each searched bucket choice in a trial's params."""
    return [
        f"{k.removeprefix(BUCKETS_PARAM)} {v}"
        for k, v in params.items()
        if k.startswith(BUCKETS_PARAM)
    ]
