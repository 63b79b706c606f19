"""Scores of predicted class ids against true ones: plain numbers from numpy and scikit-learn.

Every score covers *all* ``n_classes`` classes of the model (``labels=range(n_classes)``,
``zero_division=0``): a class the data lacks still has a row and column in the confusion counts
(support 0) and counts as F1 0 in the macro-F1. scikit-learn loads on first use.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from newsclf.errors import NewsclfError


def label_ids(classes: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Class indices of the class names ``labels``; unknown names or no labels raise
    :class:`NewsclfError`. Labels are compared as text, as class names are (a model trained
    on the labels 0, 10, 20 names its classes "0", "10", "20")."""
    if len(labels) == 0:
        raise NewsclfError("nothing to evaluate: no labelled texts given")
    labels = [label if isinstance(label, str) else str(label) for label in labels]
    index = {name: i for i, name in enumerate(classes)}
    unknown = {}
    for label in labels:
        if label not in index:
            unknown[label] = unknown.get(label, 0) + 1
    if unknown:
        names = sorted(unknown, key=str)
        shown = ", ".join(repr(name) for name in names[:10])
        if len(names) > 10:
            shown += f" and {len(names) - 10} more"
        rows = sum(unknown.values())
        raise NewsclfError(
            f"label(s) {shown} in {rows} of {len(labels)} row(s) are not classes of the model; "
            f"its classes are: {', '.join(classes)}; evaluate on data labelled with these names")
    return np.array([index[label] for label in labels], dtype=np.int64)


def _every_class(n_classes: int) -> list[int]:
    return list(range(n_classes))


def accuracy_and_macro_f1(y_true: np.ndarray, y_pred: np.ndarray,
                          n_classes: int) -> tuple[float, float]:
    """Share of correct predictions, and the unweighted mean of the F1 of every class."""
    from sklearn.metrics import accuracy_score, f1_score

    accuracy = float(accuracy_score(y_true, y_pred))
    macro_f1 = float(f1_score(y_true, y_pred, labels=_every_class(n_classes), average="macro",
                              zero_division=0))
    return accuracy, macro_f1


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean of the F1 of every class weighted by its support."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=_every_class(n_classes), average="weighted",
                          zero_division=0))


def per_class_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of each class, in class order."""
    from sklearn.metrics import precision_recall_fscore_support

    return precision_recall_fscore_support(y_true, y_pred, labels=_every_class(n_classes),
                                           zero_division=0)


def classification_report_text(y_true: np.ndarray, y_pred: np.ndarray,
                               class_names: Sequence[str]) -> str:
    """scikit-learn's classification report, one line per class (4 decimals)."""
    from sklearn.metrics import classification_report

    return classification_report(y_true, y_pred, labels=_every_class(len(class_names)),
                                 target_names=list(class_names), zero_division=0, digits=4)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]`` (int64, ``n_classes`` x ``n_classes``)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_pred, labels=_every_class(n_classes)).astype(np.int64)


def row_shares(counts: np.ndarray) -> np.ndarray:
    """Confusion counts divided by their row totals: where each true class's texts went. A class
    absent from the data has a row of 0."""
    counts = np.asarray(counts)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros(counts.shape, dtype=np.float64),
                     where=totals > 0)


def most_confused(counts: np.ndarray, top: int) -> list[tuple[int, int, int]]:
    """Up to ``top`` (true class, predicted class, count) of the off-diagonal confusion cells
    with errors, most errors first; ties in class order."""
    n_classes = len(counts)
    cells = sorted((-int(counts[t, p]), t, p) for t in range(n_classes)
                   for p in range(n_classes) if t != p and counts[t, p] > 0)
    return [(t, p, -negated) for negated, t, p in cells[:max(0, top)]]


def mistakes_most_confident_first(y_true: np.ndarray, y_pred: np.ndarray,
                                  probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the wrongly predicted rows, most confident first (ties keep input order),
    and the probability each of them gave its predicted class (NaN, and last, for a row
    without a prediction: class id -1)."""
    scores = probabilities[np.arange(len(y_pred)), y_pred].astype(np.float64)
    scores[y_pred < 0] = np.nan
    wrong = np.flatnonzero(y_true != y_pred)
    wrong = wrong[np.argsort(-scores[wrong], kind="stable")]
    return wrong, scores[wrong]
