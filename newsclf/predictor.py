"""The :class:`Predictor`: a loaded model directory that labels texts, pipeline-style.

It runs on the model directory's Paddle Inference export when that export is current (fast),
else on the network itself (the dynamic graph). Everything that classifies texts in newsclf
(the estimator, file labelling, evaluation, explanations, the command line) goes through it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.data import encode_texts
from newsclf.errors import ModelDirError, NewsclfError
from newsclf.modeldir import ModelFiles, load_model_dir
from newsclf.tokenize import Tokenizer

LONG_TEXT_MODES = ("truncate", "chunk")
BACKENDS = ("auto", "inference", "dynamic")


class Predictor:
    """A trained model, ready to classify texts.

    >>> predictor = Predictor.from_dir("model")
    >>> predictor.predict(["央行宣布下调存款准备金率"])
    [{'label': '财经', 'score': 0.97}]

    Attributes: ``classes_`` (class names, the column order of ``predict_proba``), ``spec``
    (the :class:`~newsclf.spec.ModelSpec`: tokenizer, sizes, architecture), ``training_settings``
    (how the model was trained, as recorded), ``backend`` (``"inference"`` or ``"dynamic"``),
    ``model`` (the Paddle network), ``files`` (the checked directory contents).
    """

    def __init__(self, files: ModelFiles, backend: str = "auto", threads: int | None = None):
        from newsclf.model.export import EXPORT_DIR, EXPORT_PREFIX, export_problem, load_network

        if backend not in BACKENDS:
            raise NewsclfError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.files = files
        self.spec = files.spec
        self.vocab = files.vocab
        self.classes_ = np.array(files.labels, dtype=object)
        self.tokenizer = Tokenizer(self.spec.tokenizer, files.user_dict)
        self.model = load_network(files)
        self.backend, self._forward = "dynamic", self.model
        if backend != "dynamic":
            problem = export_problem(files)
            if problem is None:
                from newsclf.model.inference import InferenceEngine

                prefix = str(files.path / EXPORT_DIR / EXPORT_PREFIX)
                threads = threads or min(4, os.cpu_count() or 1)
                self.backend, self._forward = "inference", InferenceEngine(prefix, threads)
            elif backend == "inference":
                raise ModelDirError(f"{files.path}: {problem}; run 'newsclf export --model "
                                    f"{files.path}'")

    @classmethod
    def from_dir(cls, path: str | Path, backend: str = "auto",
                 threads: int | None = None) -> "Predictor":
        """Load a model directory written by ``newsclf train`` (any release). ``backend="auto"``
        runs on the Paddle Inference export when the directory has a current one, else on the
        dynamic graph; ``"inference"`` requires the export, ``"dynamic"`` ignores it.
        ``threads``: CPU threads of the inference engine (default: the cores, at most 4)."""
        return cls(load_model_dir(path), backend, threads)

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
        return (f"Predictor({str(self.files.path)!r}, classes={len(self.classes_)}, "
                f"tokenizer={self.spec.tokenizer!r}, ensemble_size={self.spec.ensemble_size}, "
                f"backend={self.backend!r})")

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, truncated to the model's ``max_len``."""
        return encode_texts(self.tokenizer, self.vocab, texts, self.spec.max_len)

    def _scores(self, texts, batch_size: int, long_text: str) -> np.ndarray:
        """Scores ``[n, n_classes]`` whose row softmax is each text's class probabilities.
        ``long_text="chunk"`` classifies a text longer than ``max_len`` by all of it: windows of
        ``max_len`` positions, scores averaged."""
        from newsclf.model.inference import predict_scores

        texts = _as_list(texts)
        if long_text not in LONG_TEXT_MODES:
            raise NewsclfError(f"long_text must be one of {', '.join(LONG_TEXT_MODES)}, "
                               f"not {long_text!r}")
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        if long_text == "truncate":
            return predict_scores(self._forward, self.encode(texts), batch_size)
        windows, owner = [], []
        size = self.spec.max_len
        for i, ids in enumerate(encode_texts(self.tokenizer, self.vocab, texts, sys.maxsize)):
            for start in range(0, len(ids), size):
                windows.append(ids[start:start + size])
                owner.append(i)
        window_scores = predict_scores(self._forward, windows, batch_size)
        owner = np.asarray(owner)
        totals = np.zeros((len(texts), window_scores.shape[1]), dtype=np.float64)
        np.add.at(totals, owner, window_scores)
        return (totals / np.bincount(owner, minlength=len(texts))[:, None]).astype(np.float32)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256,
                      long_text: str = "truncate") -> np.ndarray:
        """Class probabilities ``[n, n_classes]``, columns in the order of ``classes_``."""
        from newsclf.model.inference import softmax

        return softmax(self._scores(texts, batch_size, long_text))

    def predict_log_proba(self, texts: Sequence[str], batch_size: int = 256,
                          long_text: str = "truncate") -> np.ndarray:
        """Log class probabilities ``[n, n_classes]``, columns in the order of ``classes_``."""
        from newsclf.model.inference import log_softmax

        return log_softmax(self._scores(texts, batch_size, long_text))

    def predict(self, texts: Sequence[str], top_k: int | None = None, batch_size: int = 256,
                long_text: str = "truncate"):
        """For each text, in input order, ``{"label": name, "score": probability}``; with
        ``top_k=k``, a list of the k best such dicts, best first."""
        probabilities = self.predict_proba(texts, batch_size, long_text)
        k = 1 if top_k is None else max(1, min(int(top_k), len(self.classes_)))
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        rows = [[{"label": str(self.classes_[j]), "score": float(p[j])} for j in order]
                for p, order in zip(probabilities, best)]
        return [row[0] for row in rows] if top_k is None else rows

    def explain(self, text: str):
        """Tokens, attention weights and attention-rollout importance for one text (see
        :mod:`newsclf.explain`)."""
        from newsclf.explain import explain

        return explain(self, text)


def _as_list(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
    return texts
