"""The :class:`Predictor`: a loaded model directory that labels texts, pipeline-style.

It runs on the model directory's inference export when that export is current (fast: ONNX
Runtime when installed, else Paddle Inference), else on the network itself (the dynamic graph). Everything that classifies texts in newsclf
(the estimator, file labelling, evaluation, explanations, the command line) goes through it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.arguments import as_text_list, check_count
from newsclf.data import encode_texts
from newsclf.errors import ModelDirError, NewsclfError
from newsclf.modeldir import ModelFiles, dev_metrics, load_model_dir
from newsclf.spec import BACKENDS, LONG_TEXT_MODES
from newsclf.tokenize import Tokenizer, normalize
from newsclf.vocab import has_known_token

EMPTY_TEXT, NO_KNOWN_TOKEN = "empty text", "no known token"
_WINDOWS_PER_CALL = 4096  # --long-text chunk: windows scored at once (bounds memory)


class Predictor:
    """A trained model, ready to classify texts.

    >>> predictor = Predictor.from_dir("model")
    >>> predictor.predict(["央行宣布下调存款准备金率"])
    [{'label': '财经', 'score': 0.97}]

    A text with nothing to classify gets no label: ``predict`` gives ``label`` and ``score``
    None and an ``error`` ("empty text" when nothing is left after normalization, "no known
    token" when none of its tokens is in the vocabulary), and ``predict_proba`` gives it equal
    probabilities (the model has no evidence); :meth:`classify` returns both at once.

    ``texts`` is a list, tuple, 1-D array or pandas Series of str, or one str (one text);
    bytes, a dict and a DataFrame are refused, saying what to pass (:func:`~newsclf.arguments.as_text_list`).
    Counts (``top_k``, ``batch_size``, ``threads``) are whole numbers of at least 1, numpy
    integers included (:func:`~newsclf.arguments.check_count`).

    Attributes: ``classes_`` (class names, the column order of ``predict_proba``), ``spec``
    (the :class:`~newsclf.spec.ModelSpec`: tokenizer, sizes, architecture), ``training_settings``
    (how the model was trained, as recorded), ``backend`` (``"onnx"``, ``"inference"`` or
    ``"dynamic"``), ``model`` (the Paddle network, loaded on first use), ``files`` (the checked
    directory contents).
    """

    def __init__(self, files: ModelFiles, backend: str = "auto", threads: int | None = None):
        self.files = files
        self.spec = files.spec
        self.vocab = files.vocab
        threads = check_count(threads, "threads", optional=True)
        self.classes_ = np.array(files.labels, dtype=object)
        self.tokenizer = Tokenizer(self.spec.tokenizer, files.user_dict)
        self._network = None
        self.backend, self._forward = _engine(files, backend,
                                              threads or min(4, os.cpu_count() or 1))
        if self._forward is None:
            self._forward = self.model

    @classmethod
    def from_dir(cls, path: str | Path, backend: str = "auto",
                 threads: int | None = None) -> "Predictor":
        """Load a model directory written by ``newsclf train`` (any release).

        ``backend="auto"`` runs on the directory's inference export when it has a current one:
        on ONNX Runtime when the export has an ONNX graph and ONNX Runtime is installed (it is
        by default; Paddle is then never imported), else on Paddle Inference; without a usable
        export, on the dynamic graph. ``"onnx"`` and ``"inference"`` require that engine,
        ``"dynamic"`` ignores the export. ``threads``: CPU threads of the engine, a whole number
        of at least 1 (default: the cores, at most 4)."""
        return cls(load_model_dir(path), backend, threads)

    @property
    def model(self):
        """The Paddle network (loaded on first use: the export's engines do not need it)."""
        if self._network is None:
            from newsclf.model.export import load_network

            self._network = load_network(self.files)
        return self._network

    @property
    def config(self):
        """The model description, :attr:`spec` (tokenizer, sizes, architecture). Before
        newsclf 0.2 this was the training configuration; those settings are now
        :attr:`training_settings`."""
        return self.spec

    @property
    def training_settings(self) -> dict:
        """The training settings recorded in the model directory (informative only)."""
        settings = self.files.training.get("settings")
        return dict(settings) if isinstance(settings, dict) else {}

    def __repr__(self) -> str:
        accuracy = dev_metrics(self.files).get("dev_accuracy")
        return (f"Predictor({str(self.files.path)!r}, classes={len(self.classes_)}, "
                f"tokenizer={self.spec.tokenizer!r}, ensemble_size={self.spec.ensemble_size}, "
                f"backend={self.backend!r}"
                + (f", dev_accuracy={accuracy:.4f})" if isinstance(accuracy, float) else ")"))

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, truncated to the model's ``max_len``."""
        return encode_texts(self.tokenizer, self.vocab, texts, self.spec.max_len)

    def classify(self, texts: Sequence[str], batch_size: int = 256,
                 long_text: str = "truncate") -> tuple[np.ndarray, list]:
        """Class probabilities ``[n, n_classes]`` and, per text, None or why it has no label
        (``"empty text"``, ``"no known token"``; its probabilities are then equal).
        ``long_text="chunk"`` classifies a text longer than ``max_len`` by all of it: windows
        of ``max_len`` positions, read piece by piece, their scores averaged with the first
        window counting as much as all the others together; ``"chunk-mean"`` counts every
        window the same (:data:`LONG_TEXT_RULES`, :func:`combine_windows`)."""
        from newsclf.model.inference import softmax

        texts = as_text_list(texts)
        check_prediction_options(long_text=long_text, batch_size=batch_size)
        scores = np.zeros((len(texts), len(self.classes_)), dtype=np.float32)
        if long_text == "truncate":
            known = self._truncated_scores(texts, batch_size, scores)
        else:
            known = self._chunked_scores(texts, batch_size, scores, LONG_TEXT_RULES[long_text])
        problems = [None if ok else (NO_KNOWN_TOKEN if has_content(text) else EMPTY_TEXT)
                    for text, ok in zip(texts, known)]
        scores[~known] = 0.0  # equal probabilities: no evidence
        return softmax(scores), problems

    def _truncated_scores(self, texts, batch_size: int, out: np.ndarray) -> np.ndarray:
        from newsclf.model.inference import predict_scores

        encoded = self.encode(texts)
        known = np.array([has_known_token(ids) for ids in encoded], dtype=bool)
        if known.any():
            out[known] = predict_scores(self._forward, [e for e, ok in zip(encoded, known) if ok],
                                        batch_size)
        return known

    def _chunked_scores(self, texts, batch_size: int, out: np.ndarray, rule: str) -> np.ndarray:
        known = np.zeros(len(texts), dtype=bool)
        for i, scores in enumerate(self.window_scores(texts, batch_size)):
            if len(scores):
                known[i] = True
                out[i] = combine_windows(scores, rule)
        return known

    def window_scores(self, texts: Sequence[str], batch_size: int = 256) -> list[np.ndarray]:
        """For each text, the scores ``[windows, n_classes]`` of its consecutive windows of
        ``max_len`` positions, in text order (what ``long_text="chunk"`` combines with
        :func:`combine_windows`). Windows without a known token carry no evidence and are left
        out: a text with none gets no rows."""
        from newsclf.model.inference import predict_scores

        texts = as_text_list(texts)
        check_prediction_options(batch_size=batch_size)
        size, n_features = self.spec.max_len, self.tokenizer.n_features
        windows_of = np.zeros(len(texts), dtype=np.int64)
        windows, scored = [], []

        def score_pending():
            if windows:
                scored.append(predict_scores(self._forward, windows, batch_size))
                windows.clear()

        for i, text in enumerate(texts):
            for features in self.tokenizer.iter_feature_windows(text, size):
                ids = self.vocab.encode(features, size, n_features)
                if has_known_token(ids):
                    windows.append(ids)
                    windows_of[i] += 1
                if len(windows) >= _WINDOWS_PER_CALL:
                    score_pending()
        score_pending()
        scores = (np.concatenate(scored) if scored
                  else np.zeros((0, len(self.classes_)), dtype=np.float32))
        return np.split(scores, np.cumsum(windows_of)[:-1])

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256,
                      long_text: str = "truncate") -> np.ndarray:
        """Class probabilities ``[n, n_classes]``, columns in the order of ``classes_`` (equal
        for a text with nothing to classify, see :meth:`classify`)."""
        return self.classify(texts, batch_size, long_text)[0]

    def predict_log_proba(self, texts: Sequence[str], batch_size: int = 256,
                          long_text: str = "truncate") -> np.ndarray:
        """Log class probabilities ``[n, n_classes]``, columns in the order of ``classes_``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(texts, batch_size, long_text))

    def predict(self, texts: Sequence[str], top_k: int | None = None, batch_size: int = 256,
                long_text: str = "truncate"):
        """For each text, in input order, ``{"label": name, "score": probability}``; with
        ``top_k=k``, a list of the k best such dicts, best first. A text with nothing to
        classify gets ``{"label": None, "score": None, "error": reason}`` (alone in its list
        with ``top_k``)."""
        if top_k is not None:
            check_prediction_options(top_k=top_k)
        probabilities, problems = self.classify(texts, batch_size, long_text)
        k = 1 if top_k is None else min(top_k, len(self.classes_))
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        rows = [[{"label": None, "score": None, "error": problem}] if problem else
                [{"label": str(self.classes_[j]), "score": float(p[j])} for j in order]
                for p, order, problem in zip(probabilities, best, problems)]
        return [row[0] for row in rows] if top_k is None else rows

    def explain(self, text: str, method: str = "rollout", steps: int | None = None):
        """Tokens, attention weights and each token's importance for one text: attention
        rollout, or signed by ``method="occlusion"`` or ``"integrated-gradients"`` (``steps``
        along the path); see :mod:`newsclf.explain`."""
        from newsclf.explain import IG_STEPS, explain

        return explain(self, text, method=method, steps=IG_STEPS if steps is None else steps)


# How long_text="chunk" combines the windows of a text, and the other rules it was measured
# against (benchmarks/long_text.py): name -> (averaged: "logits" or "probabilities", a window's
# weight: None for equal, "max_prob" for its top probability, "entropy" for exp(-entropy), the
# first window's weight: None for its own, "half" for as much as all the others together, a
# number for that many times its own).
WINDOW_RULES = {
    "logit_mean": ("logits", None, None),
    "prob_mean": ("probabilities", None, None),
    "max_prob": ("probabilities", "max_prob", None),
    "entropy": ("probabilities", "entropy", None),
    "lead_x3": ("probabilities", None, 3.0),
    "lead_half": ("probabilities", None, "half"),
    "lead_half_max_prob": ("probabilities", "max_prob", "half"),
    "lead_half_entropy": ("probabilities", "entropy", "half"),
    "lead_half_logit": ("logits", None, "half"),
}
CHUNK_RULE = "lead_half_logit"
# the rule of each long_text mode that reads every window
LONG_TEXT_RULES = {"chunk": CHUNK_RULE, "chunk-mean": "logit_mean"}


def combine_windows(scores, rule: str = CHUNK_RULE) -> np.ndarray:
    """One text's scores ``[n_classes]`` from those of its windows ``[windows, n_classes]``, in
    text order (:meth:`Predictor.window_scores`), by a rule of ``WINDOW_RULES``: a weighted
    mean of the windows' scores (logits), or the log of a weighted mean of their probabilities.
    The default, what ``long_text="chunk"`` does, is the mean of the scores with the first
    window counting as much as all the others together. One window gives its own scores, none
    gives zeros (equal probabilities)."""
    if rule not in WINDOW_RULES:
        raise NewsclfError(f"rule must be one of {', '.join(WINDOW_RULES)}, not {rule!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) <= 1:
        return (scores[0] if len(scores) else np.zeros(scores.shape[1])).astype(np.float32)
    averaged, weighting, lead = WINDOW_RULES[rule]
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    if weighting == "max_prob":
        weights = probabilities.max(axis=1)
    elif weighting == "entropy":
        weights = np.exp((probabilities * np.log(np.maximum(probabilities, 1e-300))).sum(axis=1))
    else:
        weights = np.ones(len(scores))
    if lead == "half":
        weights[0] = weights[1:].sum()
    elif lead is not None:
        weights[0] *= lead
    weights /= weights.sum()
    if averaged == "logits":
        return (weights @ scores).astype(np.float32)
    return np.log(weights @ probabilities).astype(np.float32)


def check_prediction_options(*, top_k=1, long_text: str = "truncate", batch_size=256,
                             backend: str = "auto") -> None:
    """Refuse prediction options nothing can run with, in one line each: ``top_k`` and
    ``batch_size`` whole numbers of at least 1 (:func:`~newsclf.arguments.check_count`),
    ``long_text`` and ``backend`` known names."""
    check_count(top_k, "top_k")
    if long_text not in LONG_TEXT_MODES:
        raise NewsclfError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, "
                           f"not {long_text!r}")
    check_count(batch_size, "batch_size")
    if backend not in BACKENDS:
        raise NewsclfError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


def choose_backend(files: ModelFiles, backend: str = "auto",
                   problems: tuple[str | None, str | None] | None = None) -> str:
    """The engine a model directory runs on for a requested ``backend`` (see
    :meth:`Predictor.from_dir`), decided without starting it; a required engine the directory
    cannot run is refused with what to do. ``problems``:
    :func:`~newsclf.model.export.export_problems` of ``files``, if already known."""
    check_prediction_options(backend=backend)
    if backend == "dynamic":
        return "dynamic"
    from newsclf.model.export import export_problems

    problem, problem_of_onnx = problems or export_problems(files)
    if backend in ("auto", "onnx"):
        if problem_of_onnx is None:
            return "onnx"
        if backend == "onnx":
            raise ModelDirError(f"{files.path}: cannot run on ONNX Runtime: " + (
                f"{problem}; run 'newsclf export --model {files.path}'" if problem
                else problem_of_onnx))
    if problem is None:
        return "inference"
    if backend == "inference":
        raise ModelDirError(f"{files.path}: {problem}; run 'newsclf export --model {files.path}'")
    return "dynamic"


def _engine(files: ModelFiles, backend: str, threads: int, retry: bool = True):
    """The chosen backend's name and its callable from an int64 batch to scores (None: the
    dynamic graph, the network itself). An engine that fails to start is chosen and started
    once more before its error stands."""
    try:
        return _started_engine(files, choose_backend(files, backend), threads)
    except NewsclfError:
        raise
    except Exception:
        if not retry:
            raise
        # `newsclf export` may have replaced the export between its check and its loading:
        # decide again on what the directory holds now
        return _engine(files, backend, threads, retry=False)


def _started_engine(files: ModelFiles, backend: str, threads: int):
    from newsclf.layouts import EXPORT_DIR, EXPORT_PREFIX, ONNX_FILE

    if backend == "onnx":
        from newsclf.model.inference import OnnxEngine

        return backend, OnnxEngine(str(files.path / EXPORT_DIR / ONNX_FILE), threads)
    if backend == "inference":
        from newsclf.model.inference import InferenceEngine

        return backend, InferenceEngine(str(files.path / EXPORT_DIR / EXPORT_PREFIX), threads)
    return backend, None


def has_content(text: str) -> bool:
    """Whether anything is left of ``text`` after normalization (fast for ordinary text:
    a letter or digit always survives)."""
    return any(ch.isalnum() for ch in text) or bool(normalize(text))
