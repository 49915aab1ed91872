"""Feature selection (``rtml select``): an Optuna study over feature combinations.

:func:`select_features` runs it; :mod:`ml.selection.space` says what a trial may
choose, :mod:`ml.selection.columns` builds each feature's columns once,
:mod:`ml.selection.trials` trains one choice as a nested MLflow run,
:mod:`ml.selection.study` and :mod:`ml.selection.workers` run the study in one or
more processes, and :mod:`ml.selection.report` logs the outcome and writes the
selected config.
"""

from ml.selection.report import SelectResult
from ml.selection.runner import SelectOptions, select_features
from ml.selection.space import SelectionError

__all__ = ["SelectOptions", "SelectResult", "SelectionError", "select_features"]
