"""Prediction: the :class:`Predictor` that loads a model directory and labels texts."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.data import encode_texts
from newsclf.errors import ModelDirError
from newsclf.modeldir import ModelFiles, load_model_dir
from newsclf.tokenize import Tokenizer


class Predictor:
    """A trained model, ready to classify texts.

    >>> predictor = Predictor.from_dir("model")
    >>> predictor.predict(["央行宣布下调存款准备金率"])
    [{'label': '财经', 'score': 0.97}]
    """

    def __init__(self, files: ModelFiles):
        from newsclf.model import build_model, paddle

        self.files = files
        self.config = files.config
        self.vocab = files.vocab
        self.classes_ = np.array(files.labels, dtype=object)
        self.tokenizer = Tokenizer(self.config.tokenizer, files.user_dict)
        if self.tokenizer.n_features != files.n_features:
            raise ModelDirError(f"{files.path}: config.json says {files.n_features} features per "
                                f"token, the {self.config.tokenizer!r} tokenizer makes "
                                f"{self.tokenizer.n_features}")
        self.model = build_model(self.config, len(self.vocab), len(files.labels))
        expected = {k: list(v.shape) for k, v in self.model.state_dict().items()}
        found = {k: list(v.shape) for k, v in files.weights.items()}
        if expected != found:
            raise ModelDirError(f"{files.path}: the weights do not fit the model config.json "
                                "describes (names or shapes differ)")
        self.model.set_state_dict({k: paddle.to_tensor(v) for k, v in files.weights.items()})
        self.model.eval()

    @classmethod
    def from_dir(cls, path: str | Path) -> "Predictor":
        """Load a model directory written by ``newsclf train``."""
        return cls(load_model_dir(path))

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        return encode_texts(self.tokenizer, self.vocab, texts, self.config.max_len)

    def predict_logits(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        from newsclf.model import predict_logits

        texts = _as_list(texts)
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        return predict_logits(self.model, self.encode(texts), batch_size)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Class probabilities ``[n, n_classes]``, columns in the order of ``classes_``."""
        from newsclf.model import softmax

        return softmax(self.predict_logits(texts, batch_size))

    def predict(self, texts: Sequence[str], top_k: int | None = None, batch_size: int = 256):
        """For each text, in input order, ``{"label": name, "score": probability}``; with
        ``top_k=k``, a list of the k best such dicts, best first."""
        probabilities = self.predict_proba(texts, batch_size)
        k = 1 if top_k is None else max(1, min(int(top_k), len(self.classes_)))
        best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        rows = [[{"label": str(self.classes_[j]), "score": float(p[j])} for j in order]
                for p, order in zip(probabilities, best)]
        return [row[0] for row in rows] if top_k is None else rows


def _as_list(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
    return texts
