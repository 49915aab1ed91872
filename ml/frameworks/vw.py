"""Vowpal Wabbit: linear models trained by VW's own parser on a file of example lines.

- ``logistic``: ``--loss_function logistic --link logistic``; labels 1/-1; scores are
  probabilities (the link is stored in the model file, so test mode applies it too).
- ``linear``: squared loss; binary labels are written as 1/-1, so scores are in that scale.

Training writes the examples once (:func:`ml.features.vw_lines`, cached by content)
and runs VW in a child process on that file. A child rather than an in-process
``Workspace``: the VW binding holds the GIL for the whole run (no other thread, e.g.
MLflow's, runs), Ctrl-C cannot interrupt it, and a VW crash would take rtml down;
the child costs ~0.2 s of start-up and trains exactly like the ``vw`` command line.
Several passes read VW's binary cache file (``-c -k``), rebuilt each run.

Serving-size prediction scores lines in-process; evaluation scores the whole file in
test mode. The model is VW's own model file; no pickle.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xxhash

from ml.config.checks import RESERVED_VW_FLAGS
from ml.data.fetch import cached_file, processed_key
from ml.features.encode import Frame
from ml.features.fitted import FittedPipeline
from ml.features.vw import sanitize, vw_lines, write_vw_file
from ml.frameworks.base import Examples, FitContext, Framework, FrameworkError

log = logging.getLogger(__name__)

MODEL_FILE = "model.vw"
TEST_ARGS = ["-t", "--quiet"]  # plus "-i <model>": the loss and link come from the model
# Any of these means the user chose VW's own holdout; otherwise rtml turns it off.
HOLDOUT_FLAGS = {"--holdout_off", "--holdout_period", "--holdout_after", "--early_terminate"}
LOGISTIC_FLAGS = ["--loss_function", "logistic", "--link", "logistic"]
LOSS_FLAGS = {"--loss_function", "--link"}
# VW clamps a logistic model's raw score to its label range [-50, 50] before the link.
LOGISTIC_CLAMP = 50.0
# VW writes predictions with 6 decimals (abs. error 5e-7): exact to 1e-6 only from 0.5 up.
PRECISE_FROM = 0.5

# The child: VW's command line with VW's error message (not a traceback) on failure.
_CHILD = """import sys
from vowpalwabbit import Workspace
try:
    Workspace(arg_list=sys.argv[1:]).finish()
except RuntimeError as exc:
    sys.stderr.write(str(exc))
    sys.exit(3)
"""


class VWFramework(Framework):
    name = "vw"
    algorithms = {
        "logistic": "logistic regression (--loss_function logistic --link logistic)",
        "linear": "linear regression (squared loss)",
    }
    task_algorithms = {"binary": ("logistic", "linear"), "regression": ("linear",)}

    _model: bytes | None = None
    _scorer_ws: Any = None
    _info: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._info = {}
        # Regression targets are learned standardised, y' = (y - shift) / scale, and scores
        # mapped back: VW's adaptive updates start from 0 and crawl towards targets in the
        # hundred thousands (test R² went from -0.68 to 0.9 on funded_amount).
        self._target = (0.0, 1.0)
        self._lock = threading.Lock()  # a VW workspace is not thread-safe

    # --- arguments ----------------------------------------------------------------------

    def _train_args(self) -> list[str]:
        """VW's training arguments without paths: the algorithm's, then the user's flags."""
        flags = list(self.config.vw.flags)
        names = {flag.split("=", 1)[0] for flag in flags}
        logistic = self.algorithm == "logistic"
        # Files are rtml's, passes are vw.passes, and a logistic model needs its loss and link.
        owned = RESERVED_VW_FLAGS | {"--passes"} | (LOSS_FLAGS if logistic else set())
        if clash := sorted(names & owned):
            raise FrameworkError(
                f"vw.flags sets {', '.join(clash)}, which rtml sets itself",
                hint="remove it: passes go in vw.passes; --algorithm logistic sets loss and link",
            )
        args = [*LOGISTIC_FLAGS] if logistic else []
        passes = self.config.vw.passes
        if passes > 1:
            args += ["--passes", str(passes)]
            # VW would hold out every 10th example to stop early on; rtml evaluates on its
            # own test window, so that holdout would only take 10% of the training data.
            if not names & HOLDOUT_FLAGS:
                args.append("--holdout_off")
        return [*args, *flags]

    def params(self) -> dict[str, Any]:
        return {"args": " ".join(self._train_args()), "passes": self.config.vw.passes}

    def info(self) -> dict[str, Any]:
        return dict(self._info)

    # --- training -----------------------------------------------------------------------

    def fit(self, train: Examples, validation: Examples | None, context: FitContext) -> None:
        # ``validation`` is unused: VW has no early stopping on a separate set.
        if not len(train):
            raise FrameworkError("no training examples", hint="check the train window")
        args = self._train_args()
        if self.config.task == "regression":
            scale = float(np.std(train.labels)) or 1.0
            self._target = (float(np.mean(train.labels)), scale)
            train = dataclasses.replace(train, labels=self._scaled(train.labels))
        data, cached = self._examples_file(train, context)
        folder = _folder(context)
        model = folder / "train_model.vw"
        paths = ["-d", str(data), "-f", str(model), "--quiet"]
        if self.config.vw.passes > 1:  # VW requires its cache file for several passes
            paths += ["-c", "--cache_file", str(folder / "train.cache"), "-k"]
        started = time.perf_counter()
        _run_vw([*paths, *args], "train")
        seconds = time.perf_counter() - started
        self._set_model(model.read_bytes())
        self._info = {
            "examples": len(train),
            "passes": self.config.vw.passes,
            "train_seconds": round(seconds, 3),
            "examples_file_cached": cached,
        }
        if context.progress:
            passes = self.config.vw.passes
            log.info(
                f"vw {self.algorithm}: {len(train):,} examples, {passes} passes, {seconds:.1f} s"
            )

    def _examples_file(self, examples: Examples, context: FitContext) -> tuple[Path, bool]:
        """The examples as a VW text file, from the cache when their key is known."""
        task: Literal["binary", "regression"] = (
            "binary" if self.config.task == "binary" else "regression"
        )

        def build(path: Path) -> None:
            rows, labels, weights = examples.rows, examples.labels, examples.weights
            write_vw_file(
                str(path), vw_lines(self.pipeline, rows, labels=labels, weights=weights, task=task)
            )

        cache = context.cache if examples.key else None
        # Labels and weights come from the model's code, not only from the rows: key by content.
        key = processed_key(
            examples.key,
            self.pipeline.fingerprint(),
            self.name,
            part=examples.name,
            task=task,
            labels=_digest(examples.labels),
            weights=None if examples.weights is None else _digest(examples.weights),
        )
        return cached_file(
            cache,
            key,
            f"{examples.name}.vw",
            build,
            description=f"{examples.name} VW examples",
            scratch=_folder(context),
        )

    # --- prediction ---------------------------------------------------------------------

    def _set_model(self, model: bytes) -> None:
        self.close()
        self._model = model

    def _model_bytes(self) -> bytes:
        if self._model is None:
            raise FrameworkError("the VW model is not trained or loaded")
        return self._model

    def _scorer(self) -> Any:
        """A test-only workspace on the model, made on first use and reused."""
        if self._scorer_ws is None:
            from vowpalwabbit import Workspace

            with tempfile.TemporaryDirectory(prefix="rtml-vw-") as folder:
                path = Path(folder) / MODEL_FILE
                path.write_bytes(self._model_bytes())
                try:  # VW reads the whole model here, so the file may go afterwards
                    self._scorer_ws = Workspace(arg_list=[*TEST_ARGS, "-i", str(path)])
                except RuntimeError as exc:
                    raise FrameworkError(f"VW could not load the model: {exc}") from exc
        return self._scorer_ws

    def predict(self, rows: Frame) -> np.ndarray:
        lines = vw_lines(self.pipeline, rows).to_pylist()
        with self._lock:
            scorer = self._scorer()
            # One parse+predict per line: fine for a request's tens of rows.
            raw = np.array([scorer.predict(line) for line in lines], dtype=np.float64)
        return self._unscaled(raw)

    def _scaled(self, labels: np.ndarray) -> np.ndarray:
        shift, scale = self._target
        return (labels - shift) / scale

    def _unscaled(self, scores: np.ndarray) -> np.ndarray:
        shift, scale = self._target
        return scores * scale + shift

    def predict_examples(self, examples: Examples, context: FitContext) -> np.ndarray:
        """All examples through VW's parser in test mode, made exact where the file is not.

        VW prints predictions with 6 decimals. Logistic scores are therefore rebuilt
        from the raw scores (``-r``): the link of a raw score rounded by 5e-7 is within
        5e-7 relative. Rows whose printed score still cannot carry 1e-6 relative
        precision (small linear scores, or a logistic score that disagrees with its
        rebuilt one) are scored again in-process, as :meth:`predict` does.
        """
        if not len(examples):
            return np.zeros(0, dtype=np.float64)
        # The file's labels are unused in test mode; scaled like training, so it is the same file.
        examples = dataclasses.replace(examples, labels=self._scaled(examples.labels))
        data, _ = self._examples_file(examples, context)
        folder = _folder(context)
        model, preds, raw = (folder / f"{examples.name}.{n}" for n in ("model", "p", "raw"))
        model.write_bytes(self._model_bytes())
        _run_vw([*TEST_ARGS, "-i", str(model), "-d", str(data), "-p", str(preds), "-r", str(raw)])
        printed = _read_scores(preds, len(examples))
        if self.algorithm == "logistic":
            clamped = np.clip(_read_scores(raw, len(examples)), -LOGISTIC_CLAMP, LOGISTIC_CLAMP)
            scores = 1.0 / (1.0 + np.exp(-clamped))
            redo = np.abs(scores - printed) > 1e-6
        else:
            scores = printed
            redo = np.abs(printed) < PRECISE_FROM
        scores = self._unscaled(scores)
        if redo.any():
            scores[redo] = self.predict(examples.rows.iloc[np.flatnonzero(redo)])
        return scores

    # --- saving -------------------------------------------------------------------------

    def save_model(self, directory: Path) -> dict[str, Any]:
        (directory / MODEL_FILE).write_bytes(self._model_bytes())
        shift, scale = self._target
        return {
            "model_file": MODEL_FILE,
            "args": " ".join(TEST_ARGS),
            "target_shift": shift,
            "target_scale": scale,
            **self.info(),
        }

    def load_model(self, directory: Path, saved: dict[str, Any]) -> None:
        self._set_model((directory / saved.get("model_file", MODEL_FILE)).read_bytes())
        self._target = (
            float(saved.get("target_shift", 0.0)),
            float(saved.get("target_scale", 1.0)),
        )
        own = ("model_file", "args", "target_shift", "target_scale")
        self._info = {k: v for k, v in saved.items() if k not in own}

    def close(self) -> None:
        if self._scorer_ws is not None:
            self._scorer_ws.finish()
            self._scorer_ws = None

    # --- weights ------------------------------------------------------------------------

    def token_weights(self) -> dict[str, dict[str, float]]:
        """Feature (or cross) name -> ``namespace^token`` -> its weight in the model.

        Indices come from the model's own hashing of the tokens the fitted pipeline can
        write, so nothing is retrained and no ``--invert_hash`` run is needed. Quadratic
        terms made by VW itself (``-q``, ``--interactions`` in vw.flags) are not listed.
        """
        result: dict[str, dict[str, float]] = {}
        with self._lock:
            ws = self._scorer()
            for name, namespace, tokens in _tokens(self.pipeline):
                space = ws.hash_space(namespace)
                result[name] = {
                    f"{namespace}^{token}": float(ws.get_weight(ws.hash_feature(token, space)))
                    for token in tokens
                }
        return result

    def importance(self) -> dict[str, float]:
        """The weight of largest magnitude among each feature's tokens, sign kept.

        A categorical feature has one weight per level; its strongest level says most
        about how much the feature can move a score. Numeric weights are per unit of
        the value, so they compare across features only for similar scales. Cross-only
        features have no weight of their own: they appear under their crosses' names.
        """
        return {
            name: max(weights.values(), key=abs, default=0.0)
            for name, weights in self.token_weights().items()
        }


def _tokens(pipeline: FittedPipeline) -> Iterator[tuple[str, str, list[str]]]:
    """(name, namespace, tokens) of every block as :func:`ml.features.vw.vw_lines` writes it:
    ``name`` for numbers (``name:value``), ``name=level`` per level otherwise."""
    compiled = pipeline.compiled

    def tokens(name: str, levels: list[str] | None) -> list[str]:
        return [f"{sanitize(name)}={sanitize(v)}" for v in levels] if levels else [sanitize(name)]

    for state in pipeline.features:
        if not state.cross_only:  # a plain number's vocabulary is []
            vocabulary = compiled.features[state.name].vocabulary
            yield state.name, sanitize(state.namespace), tokens(state.name, vocabulary)
    for cross in pipeline.crosses:
        left, right = (pipeline.feature(n) for n in (cross.left, cross.right))
        levels: list[str] | None = None
        if left.categorical_like and right.categorical_like:
            levels = compiled.crosses[cross.name].vocabulary
        elif left.categorical_like or right.categorical_like:  # the level names the slot
            levels = compiled.features[(left if left.categorical_like else right).name].vocabulary
        yield cross.name, sanitize(cross.namespace), tokens(cross.name, levels)


def _folder(context: FitContext) -> Path:
    folder = context.workdir / "vw"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _digest(values: np.ndarray) -> str:
    return xxhash.xxh3_128_hexdigest(np.ascontiguousarray(values, dtype=np.float64).tobytes())


def _run_vw(args: list[str], what: str = "predict") -> None:
    """VW's command line in a child process; its error message becomes a FrameworkError."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        last = done.stderr.strip().splitlines()[-1:] or [f"it exited with {done.returncode}"]
        raise FrameworkError(f"VW could not {what}: {last[0]}", hint="check vw.flags in the config")


def _read_scores(path: Path, expected: int) -> np.ndarray:
    scores = np.fromfile(path, dtype=np.float64, sep=" ")
    if scores.shape != (expected,):
        raise FrameworkError(f"VW wrote {scores.size} predictions for {expected} examples")
    return scores
