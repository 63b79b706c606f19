"""The scikit-learn estimator: :class:`TextClassifier`, newsclf's training and prediction behind
``fit``/``predict``, so pipelines, cross-validation and grid search work on news headlines.

Fitting runs :func:`newsclf.training.train` into a temporary model directory the estimator owns;
predicting runs the :class:`~newsclf.predictor.Predictor` loaded from it.

Labels: ``y`` is read as scikit-learn classifiers read it (``np.asarray``; numbers, strings or
booleans), ``classes_`` are its distinct values, sorted, and ``predict`` returns values of
``classes_``. The model directory names each class ``str(value)``, in the order of
``classes_``; :meth:`TextClassifier.save` also records non-string class values
(``estimator.json``), so :meth:`TextClassifier.load` gives back the same ``classes_``. A
directory trained by ``newsclf train`` loads with its class names as ``classes_``.
"""

from __future__ import annotations

import inspect
import json
import os
import secrets
import shutil
import tempfile
import warnings
import weakref
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from newsclf.config import TrainConfig
from newsclf.errors import ModelDirError, NewsclfError, TrainingDiverged

TRAINING_DEFAULTS = TrainConfig().to_dict()
# Options of a run that leave the trained model unchanged.
RUN_OPTIONS = {"workers": None, "verbose": False}
DEFAULTS = {**TRAINING_DEFAULTS, **RUN_OPTIONS}


class TextClassifier(ClassifierMixin, BaseEstimator):
    """A newsclf text classifier with the scikit-learn estimator interface.

    Settings are the training settings of :class:`~newsclf.config.TrainConfig` (same names
    and defaults) plus ``workers`` (processes training ensemble members at once; ``None``:
    one per member and core) and ``verbose`` (progress bar and log lines while fitting).

    >>> clf = TextClassifier(epochs=2).fit(texts, labels, eval_set=(dev_texts, dev_labels))
    >>> clf.predict(["央行宣布下调存款准备金率"])
    array(['财经'], dtype='<U2')

    Fitted attributes: ``classes_``, ``predictor_`` (the :class:`~newsclf.predictor.Predictor`
    every prediction goes through), ``metrics_`` (the training run's metrics).
    """

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown setting(s) {', '.join(unknown)}; "
                            f"valid settings: {', '.join(sorted(DEFAULTS))}")
        for name, default in DEFAULTS.items():
            setattr(self, name, settings.get(name, default))

    # scikit-learn reads parameter names and defaults from the signature of __init__
    # (get_params, clone, repr), so it lists every setting although __init__ takes **settings.
    __init__.__signature__ = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
           for name, default in DEFAULTS.items()])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, X, y, eval_set=None) -> "TextClassifier":
        """Train on texts ``X`` with labels ``y``. ``eval_set=(texts, labels)`` is the dev
        set: each epoch is evaluated on it, training stops early when its macro-F1 stops
        improving and the best epoch is kept; without it every epoch runs and the last is kept.
        Invalid settings raise :class:`~newsclf.errors.NewsclfError`."""
        from sklearn.utils.validation import check_consistent_length

        from newsclf.data import LabelledData
        from newsclf.training import train

        texts, labels = _texts(X, "X"), _labels(y, "y")
        check_consistent_length(texts, labels)
        config = self._train_config()
        classes = np.unique(labels)
        names = {value: str(value) for value in classes.tolist()}
        dev = None
        if eval_set is not None:
            try:
                dev_texts, dev_labels = eval_set
            except (TypeError, ValueError):
                raise TypeError("eval_set must be a pair (texts, labels)") from None
            dev_texts, dev_labels = _texts(dev_texts, "eval_set texts"), _labels(dev_labels,
                                                                                 "eval_set labels")
            check_consistent_length(dev_texts, dev_labels)
            dev = LabelledData(dev_texts, _names_of(dev_labels, names), "eval_set")
        training_data = LabelledData(texts, _names_of(labels, names), "X")
        try:
            predictor, workdir, result = _model_in_new_dir(lambda directory: train(
                config, training_data, dev, directory, class_names=list(names.values()),
                progress=bool(self.verbose), log=print if self.verbose else _quiet,
                workers=self.workers))
        except TrainingDiverged as exc:  # the run's directory is gone: just fit again
            raise TrainingDiverged(f"{exc.reason}, then fit again", exc.reason) from None
        self._adopt(predictor, classes, result.metrics, workdir)
        return self

    def _train_config(self) -> TrainConfig:
        # Parameter grids built with numpy hold numpy scalars; the settings are plain Python.
        values = {name: _plain(getattr(self, name)) for name in TRAINING_DEFAULTS}
        return TrainConfig.from_dict(values, source=type(self).__name__)

    def _adopt(self, predictor, classes: np.ndarray, metrics: dict,
               workdir: tempfile.TemporaryDirectory | None = None) -> None:
        """Make ``predictor`` this estimator's model. ``workdir``, the temporary directory it
        was loaded from, then lives until the next fit or this estimator's end; without it the
        model's directory belongs to someone else and is left alone."""
        previous_release = getattr(self, "_release_model_dir", None)
        self.predictor_, self.classes_, self.metrics_ = predictor, classes, metrics
        self._model_dir = Path(predictor.files.path)
        self._release_model_dir = weakref.finalize(self, workdir.cleanup) if workdir else None
        if previous_release is not None:
            previous_release()

    # --- prediction ------------------------------------------------------------------------

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``[n_texts, n_classes]``, columns in the order of ``classes_``.
        A text with nothing to classify (empty, or no token the model knows) gets equal
        probabilities, with a warning."""
        probabilities, problems = self._predictor().classify(_texts(X, "X"))
        unclassifiable = sum(problem is not None for problem in problems)
        if unclassifiable:
            warnings.warn(f"{unclassifiable} of {len(problems)} texts have nothing to classify "
                          "(empty, or no token the model knows): their probabilities are equal "
                          "and their predicted label is arbitrary", UserWarning, stacklevel=2)
        return probabilities

    def predict_log_proba(self, X) -> np.ndarray:
        """Log class probabilities ``[n_texts, n_classes]``, columns in ``classes_`` order."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each text, as values of ``classes_``."""
        probabilities = self.predict_proba(X)
        return self.classes_[np.argmax(probabilities, axis=1)]

    def _predictor(self):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        return self.predictor_

    # --- saving and loading ----------------------------------------------------------------

    def save(self, directory: str | Path, overwrite: bool = False) -> Path:
        """Write the fitted model as a model directory (``Predictor.from_dir``, ``newsclf
        predict --model`` and :meth:`load` read it). An existing non-empty ``directory`` is
        refused unless ``overwrite=True``, which replaces it if it holds a newsclf model."""
        from newsclf.files import write_json
        from newsclf.layouts import CLASS_VALUES_FILE, CONFIG
        from newsclf.training.lock import refuse_to_delete_foreign_files

        self._predictor()
        given = target = Path(directory)
        if target.is_symlink():  # the folder it points to is written, the link kept
            target = Path(os.path.realpath(target))
        if target.exists() and not target.is_dir():
            raise NewsclfError(f"{target}: exists and is not a directory")
        occupied = target.is_dir() and any(target.iterdir())
        if occupied and not overwrite:
            raise NewsclfError(f"{target}: exists and is not empty; choose another directory "
                               "or pass overwrite=True to replace the model in it")
        if occupied and not (target / CONFIG).is_file():
            raise NewsclfError(f"{target}: holds files but no newsclf model; not replacing it")
        if occupied and target.resolve() == self._model_dir.resolve():
            return given
        if occupied:
            refuse_to_delete_foreign_files(target, "saving")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.saving-{secrets.token_hex(4)}"
        try:
            _copy_tree(self._model_dir, staging)
            values = self.classes_.tolist()
            if not all(isinstance(value, str) for value in values):
                write_json(staging / CLASS_VALUES_FILE, {"classes": values})
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return given

    @classmethod
    def load(cls, directory: str | Path) -> "TextClassifier":
        """A fitted estimator predicting with the model directory ``directory``; its settings
        are the training settings recorded there (names this newsclf does not know are
        ignored, missing ones take their defaults). The directory must stay in place for
        :meth:`save` and pickling, which copy its files."""
        from newsclf.layouts import METRICS

        predictor = _load_predictor(directory)
        recorded = predictor.training_settings
        settings = {name: recorded[name] for name in TRAINING_DEFAULTS if name in recorded}
        # settings chosen for the training data stay to be chosen when refitted on other data
        automatic = predictor.files.training.get("automatic")
        if isinstance(automatic, list):
            settings.update(dict.fromkeys(name for name in automatic if name in TRAINING_DEFAULTS))
        # the dictionary the model was trained with, as kept in the directory
        settings["user_dict"] = predictor.files.user_dict
        estimator = cls(**settings)
        metrics_path = Path(predictor.files.path) / METRICS
        metrics = (json.loads(metrics_path.read_text(encoding="utf-8"))
                   if metrics_path.is_file() else {})
        estimator._adopt(predictor, _recorded_classes(predictor), metrics)
        return estimator

    # --- pickling --------------------------------------------------------------------------

    def __getstate__(self):
        """The settings and, when fitted, the model directory's files (a Paddle model does not
        pickle); unpickling writes them to a new directory owned by the new estimator."""
        state = dict(super().__getstate__())  # a copy: it can be the instance's own __dict__
        if "predictor_" in state:
            for name in ("predictor_", "_model_dir", "_release_model_dir"):
                del state[name]
            state["_model_files"] = {str(path.relative_to(self._model_dir)): path.read_bytes()
                                     for path in sorted(self._model_dir.rglob("*"))
                                     if path.is_file()}
        return state

    def __setstate__(self, state):
        model_files = state.pop("_model_files", None)
        super().__setstate__(state)
        if model_files is None:
            return

        def write_files(directory: Path) -> None:
            for name, content in model_files.items():
                (directory / name).parent.mkdir(parents=True, exist_ok=True)
                (directory / name).write_bytes(content)

        predictor, workdir, _ = _model_in_new_dir(write_files)
        self._adopt(predictor, self.classes_, self.metrics_, workdir)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a model directory as new files and folders, so they get this process's umask (not
    the private permissions of the temporary directory the model was trained in)."""
    target.mkdir()
    for path in sorted(source.rglob("*"), key=lambda p: len(p.parts)):
        if path.is_dir():
            (target / path.relative_to(source)).mkdir()
        else:
            shutil.copyfile(path, target / path.relative_to(source))


def _load_predictor(directory):
    from newsclf.predictor import Predictor

    return Predictor.from_dir(directory)


def _model_in_new_dir(write):
    """Run ``write(directory)`` on a new temporary directory and load the model it wrote there.
    Returns the predictor, the directory and what ``write`` returned; a failure removes the
    directory."""
    workdir = tempfile.TemporaryDirectory(prefix="newsclf-estimator-")
    try:
        written = write(Path(workdir.name))
        return _load_predictor(workdir.name), workdir, written
    except BaseException:
        workdir.cleanup()
        raise


def _texts(X, name: str) -> list:
    """``X`` as a list of texts: a list, 1-D array or pandas Series of str
    (:func:`~newsclf.arguments.as_text_list`, a single string refused)."""
    if hasattr(X, "columns"):
        raise TypeError(f"{name} is a table ({type(X).__name__}); pass its text column, "
                        f"e.g. {name}['text'], one text per sample")
    if getattr(X, "ndim", 1) != 1:
        raise ValueError(f"{name} must be one-dimensional (one text per sample), "
                         f"got shape {X.shape}")
    from newsclf.arguments import as_text_list

    return as_text_list(X, name, one_text=False)


def _labels(y, name: str) -> np.ndarray:
    import pandas as pd
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import column_or_1d

    # before column_or_1d, which turns NaN among strings into the string 'nan'
    missing = np.flatnonzero(pd.isna(np.asarray(y, dtype=object).ravel())).tolist()
    if missing:  # None or NaN: a missing label, not a class to learn ('nan')
        shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
        raise ValueError(f"{name}: {len(missing)} missing label{'s' * (len(missing) > 1)} "
                         f"(None or NaN) at position{'s' * (len(missing) > 1)} {shown}; drop "
                         "those rows or give them a label")
    labels = column_or_1d(y, warn=True)
    try:
        check_classification_targets(labels)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return labels


def _names_of(labels: np.ndarray, names: dict) -> list[str]:
    """The class name of each label; a label unknown to ``names`` keeps ``str(label)``, for
    training to refuse by name."""
    return [names.get(value, str(value)) for value in labels.tolist()]


def _recorded_classes(predictor) -> np.ndarray:
    """The class values :meth:`TextClassifier.save` recorded beside the model, else its class
    names."""
    from newsclf.layouts import CLASS_VALUES_FILE

    names = [str(name) for name in predictor.classes_]
    path = Path(predictor.files.path) / CLASS_VALUES_FILE
    if not path.is_file():
        return np.asarray(names)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["classes"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelDirError(f"{path}: damaged ({exc})") from None
    if not isinstance(values, list) or [str(value) for value in values] != names:
        raise ModelDirError(f"{path}: its classes do not match the model's class names")
    return np.asarray(values)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _quiet(message: str) -> None:
    pass
