"""The pretrained teacher: e5's sentence vectors of the run's texts with a logistic-regression
head fitted on the labelled ones, whose class probabilities the student learns beside the
members' (:mod:`newsclf.training.student`).

The vectors are computed once per run and cached in the run directory
(``checkpoint/teacher/vectors.safetensors``, with the hash of the texts they belong to), so a
resumed run or a later distillation round reads them back. The head's regularization is picked
by cross-validation on the training texts; its dev score is reported, and the share of its
probabilities in the student's teacher is the one that does best on dev with the members'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from newsclf.files import sha256_texts, write_atomic
from newsclf.layouts import TEACHER_VECTORS as VECTORS_FILE
# the head's inverse regularization strengths tried (cross-validated on the training texts)
HEAD_C = (1.0, 4.0, 16.0, 64.0)
MIX_WEIGHTS = tuple(np.round(np.arange(0.0, 1.01, 0.1), 2))


@dataclass
class PretrainedTeacher:
    """The teacher's probabilities: of each student text (labelled then unlabelled), and of
    each dev text; ``weight`` its share beside the members' probabilities."""

    name: str
    train_probabilities: np.ndarray
    dev_probabilities: np.ndarray | None
    head_c: float
    weight: float = 1.0
    dev_scores: dict = field(default_factory=dict)


def cached_vectors(texts: list[str], folder: Path, compute) -> np.ndarray:
    """``compute(texts)``, or what an earlier call with the same texts saved in ``folder``."""
    from safetensors.numpy import load_file, save

    digest = sha256_texts(texts)
    path = folder / VECTORS_FILE
    if path.is_file():
        saved = load_file(path)
        if bytes(saved["texts_sha256"]).decode("ascii") == digest:
            return saved["vectors"]
    vectors = compute(texts)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, save({"vectors": np.ascontiguousarray(vectors, dtype=np.float32),
                             "texts_sha256": np.frombuffer(digest.encode("ascii"), np.uint8)}))
    return vectors


def fit_head(vectors: np.ndarray, labels: np.ndarray, seed: int):
    """A multinomial logistic regression on ``vectors``, its C picked by 3-fold
    cross-validation (accuracy) on the labelled texts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    folds = min(3, int(np.bincount(labels).min()))

    def head(c):
        return LogisticRegression(C=c, max_iter=2000, random_state=seed)

    if folds >= 2:
        scores = [cross_val_score(head(c), vectors, labels, cv=folds).mean() for c in HEAD_C]
        c = HEAD_C[int(np.argmax(scores))]
    else:
        c = HEAD_C[1]
    return head(c).fit(vectors, labels), c


def e5_teacher(texts: list[str], labels: np.ndarray, dev_texts: list[str] | None,
               n_classes: int, folder: Path, seed: int, log) -> PretrainedTeacher:
    """The e5 teacher of a run: ``texts`` are the student's (the ``len(labels)`` labelled ones
    first), ``folder`` the cache."""
    from newsclf.pretrained.encoder import E5
    from newsclf.runtime import math_threads

    e5 = E5()
    everything = list(texts) + list(dev_texts or [])
    log(f"pretrained teacher: multilingual-e5-small sentence vectors of {len(everything)} texts")

    def compute(chunk):
        with math_threads(2):
            return e5.sentence_vectors(chunk, batch_size=128, threads=2)

    vectors = cached_vectors(everything, folder, compute)
    head, c = fit_head(vectors[:len(labels)], labels, seed)
    probabilities = np.zeros((len(vectors), n_classes), dtype=np.float32)
    probabilities[:, head.classes_] = head.predict_proba(vectors)
    return PretrainedTeacher("multilingual-e5-small + logistic regression",
                             probabilities[:len(texts)],
                             probabilities[len(texts):] if dev_texts else None, c)


def best_mix(members_dev: np.ndarray, teacher_dev: np.ndarray, y_dev: np.ndarray) -> float:
    """The share of the pretrained teacher's dev probabilities in a mean with the members'
    that gives the best dev accuracy (the smaller share on ties)."""
    accuracies = [(((1 - w) * members_dev + w * teacher_dev).argmax(1) == y_dev).mean()
                  for w in MIX_WEIGHTS]
    return float(MIX_WEIGHTS[int(np.argmax(accuracies))])
