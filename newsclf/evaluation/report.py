"""The evaluation report of a classifier on labelled texts: :class:`EvaluationResult` with its
pandas tables, text summary, plot and saved files.

The numbers come from :mod:`newsclf.evaluation.metrics` and the drawing from
:mod:`newsclf.evaluation.plot`; pandas loads when a result is built.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.errors import NewsclfError
from newsclf.evaluation.metrics import (accuracy_and_macro_f1, classification_report_text,
                                        confusion_counts, label_ids,
                                        mistakes_most_confident_first, most_confused,
                                        per_class_scores, row_shares, weighted_f1)
from newsclf.evaluation.plot import confusion_matrix_png, plot_confusion_matrix
from newsclf.files import first_few, folder_content, not_newsclfs
from newsclf.layouts import (CHECKPOINT_DIR, CONFUSION_CSV, CONFUSION_NORMALIZED_CSV,  # noqa: F401
                             CONFUSION_PNG, EVAL_REPORTS_PREFIX, EXPORT_DIR, MISCLASSIFIED_CSV,
                             REPORT_FILES, REPORT_LAYOUT, REPORT_TXT, is_model_dir)
from newsclf.layouts import REPORT_METRICS_JSON as METRICS_JSON

# the keys that tell a saved report's metrics.json (they are all in EvaluationResult.to_dict)
REPORT_METRICS = {"accuracy", "macro_f1", "weighted_f1", "n", "per_class"}
MATRIX_CORNER = "true\\predicted"  # header of the first column of the confusion-matrix CSVs
# the prediction of a text the model has nothing to classify by (an empty text, or no token it
# knows): counted as an error, in its own confusion-matrix column
NO_LABEL = "(no label)"


def check_report_dir(directory: Path, data: str | Path | None = None) -> None:
    """Refuse a folder reports may not be written into: a model directory (they would replace
    its own metrics.json), or its export or checkpoint folders (or a folder inside them), which
    newsclf replaces whole; a file; a folder holding anything but an earlier report (the user's
    files would be replaced or mixed with the report); and the folder of the evaluated ``data``
    file when the report would replace it."""
    directory = Path(directory)
    fix = (f"write them to another folder (by default a folder inside the model: "
           f"{EVAL_REPORTS_PREFIX}<data>)")
    if is_model_dir(directory):
        raise NewsclfError(f"{directory}: is a newsclf model directory, and the reports would "
                           f"replace its own metrics.json; {fix}")
    resolved = directory.resolve()
    model = next((parent for parent in resolved.parents if is_model_dir(parent)), None)
    if model is not None:
        folder = resolved.relative_to(model).parts[0]
        if folder in (EXPORT_DIR, CHECKPOINT_DIR) or folder.startswith(f".{EXPORT_DIR}-"):
            raise NewsclfError(f"{directory}: is inside the {folder} folder of the model in "
                               f"{model}, which newsclf replaces whole; {fix}")
    if directory.exists() and not directory.is_dir():
        raise NewsclfError(f"{directory}: is a file; give a folder for the reports")
    if data is not None and Path(data).name in REPORT_FILES \
            and Path(data).resolve().parent == resolved:
        raise NewsclfError(f"{directory}: the report's {Path(data).name} would replace the data "
                           "being evaluated; give another --output folder")
    if directory.is_dir():
        _refuse_foreign_files(directory)


def _refuse_foreign_files(directory: Path) -> None:
    """Refuse a non-empty folder unless it holds an earlier report and nothing else: report
    files only, its metrics.json one that :meth:`EvaluationResult.save` wrote."""
    try:
        entries = folder_content(os.listdir(directory))
    except OSError as exc:
        raise NewsclfError(f"{directory}: cannot read the folder ({exc.strerror}); choose a "
                           "folder you can read and write") from None
    if not entries:
        return
    foreign = not_newsclfs(directory, entries, REPORT_LAYOUT)
    reason = None
    if foreign:
        reason = f"holds files that are not an evaluation report ({first_few(foreign)})"
    elif not _is_report_metrics(directory / METRICS_JSON):
        reason = f"holds {first_few(entries)} but no {METRICS_JSON} of an evaluation report"
    if reason:
        raise NewsclfError(f"{directory}: {reason}; write the reports to a new or empty folder "
                           "(or one holding an earlier report, which they replace)")


def _is_report_metrics(path: Path) -> bool:
    """Whether ``path`` holds the metrics.json of a saved report (:meth:`EvaluationResult.to_dict`)."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and REPORT_METRICS <= values.keys()


class EvaluationResult:
    """Scores of a classifier on labelled texts (build with :func:`newsclf.evaluation.evaluate`
    or :meth:`from_predictions`).

    Attributes: ``accuracy``, ``macro_f1``, ``weighted_f1``, ``n``, ``classes`` (the model's class
    order), ``per_class`` (name -> precision, recall, f1, support), ``confusion_matrix`` (counts;
    index = true class, columns = predicted class, every model class present),
    ``confusion_matrix_normalized`` (rows sum to 1; a class absent from the data has a row of 0),
    ``misclassified`` (text, true_label, pred_label, pred_score of every wrong row, most confident
    first; the index is the row's position in the input), ``no_label`` (how many texts the model
    had nothing to classify by: they count as errors, have the prediction ``"(no label)"`` and,
    when there are any, their own last column in the confusion matrices).
    """

    def __init__(self, classes, texts, y_true, y_pred, probabilities):
        import pandas as pd

        self.classes = [str(c) for c in classes]
        self.texts = list(texts)
        self.y_true = np.asarray(y_true, dtype=np.int64)
        self.y_pred = np.asarray(y_pred, dtype=np.int64)
        self.probabilities = probabilities
        n_classes = len(self.classes)
        self.n = int(len(self.y_true))
        self.accuracy, self.macro_f1 = accuracy_and_macro_f1(self.y_true, self.y_pred, n_classes)
        self.weighted_f1 = weighted_f1(self.y_true, self.y_pred, n_classes)
        precision, recall, f1, support = per_class_scores(self.y_true, self.y_pred, n_classes)
        self.per_class = {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(self.classes, precision, recall, f1, support)}

        unlabelled = self.y_pred < 0
        self.no_label = int(unlabelled.sum())
        counts = confusion_counts(self.y_true, self.y_pred, n_classes)
        predicted = list(self.classes)
        if self.no_label:
            counts = np.column_stack([counts, np.bincount(self.y_true[unlabelled],
                                                          minlength=n_classes)])
            predicted.append(NO_LABEL)
        index = pd.Index(self.classes, name="true")
        columns = pd.Index(predicted, name="predicted")
        self.confusion_matrix = pd.DataFrame(counts, index=index, columns=columns)
        self.confusion_matrix_normalized = pd.DataFrame(row_shares(counts), index=index.copy(),
                                                        columns=columns.copy())

        wrong, scores = mistakes_most_confident_first(self.y_true, self.y_pred, probabilities)
        names = np.array(self.classes + [NO_LABEL], dtype=object)  # y_pred -1: NO_LABEL
        self.misclassified = pd.DataFrame(
            {"text": [self.texts[i] for i in wrong], "true_label": names[self.y_true[wrong]],
             "pred_label": names[self.y_pred[wrong]], "pred_score": scores},
            index=pd.Index(wrong, name="row"))
        self.misclassified["true_label"] = self.misclassified["true_label"].astype(str)
        self.misclassified["pred_label"] = self.misclassified["pred_label"].astype(str)
        self.misclassified["text"] = self.misclassified["text"].astype(str)

    @classmethod
    def from_predictions(cls, classes: Sequence[str], texts: Sequence[str] | None,
                         true_labels: Sequence[str], probabilities,
                         no_label=None) -> "EvaluationResult":
        """Score given class probabilities ``[n, n_classes]`` (columns in ``classes`` order)
        against true class names; the prediction is the most probable class, except for the
        rows ``no_label`` marks (a boolean per row: the model had nothing to classify the text
        by), which count as errors. ``texts`` may be None (the misclassified table then has
        empty texts)."""
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise ValueError("classes must be distinct")
        true_labels = list(true_labels)
        y_true = label_ids(classes, true_labels)
        texts = [""] * len(true_labels) if texts is None else list(texts)
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if len(texts) != len(true_labels):
            raise NewsclfError(f"{len(texts)} texts but {len(true_labels)} labels; give one "
                               "label per text")
        if probabilities.shape != (len(true_labels), len(classes)):
            raise ValueError(f"probabilities have shape {probabilities.shape}, expected "
                             f"{(len(true_labels), len(classes))} (texts x classes)")
        y_pred = probabilities.argmax(axis=1)
        if no_label is not None:
            y_pred[np.asarray(no_label, dtype=bool)] = -1
        return cls(classes, texts, y_true, y_pred, probabilities)

    def __repr__(self) -> str:
        return (f"EvaluationResult(n={self.n}, accuracy={self.accuracy:.4f}, "
                f"macro_f1={self.macro_f1:.4f}, classes={len(self.classes)})")

    def to_dict(self) -> dict:
        """The scores as plain JSON-ready values (the content of ``metrics.json``)."""
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "weighted_f1": self.weighted_f1, "n": self.n, "no_label": self.no_label,
                "per_class": {name: dict(values) for name, values in self.per_class.items()}}

    def report(self) -> str:
        """scikit-learn's classification report, one line per model class (with texts given no
        label, scikit-learn's "micro avg" row covers the others only: a last line gives the
        accuracy over all of them)."""
        text = classification_report_text(self.y_true, self.y_pred, self.classes)
        if self.no_label:
            text += (f"\n{self.no_label} of {self.n} texts got no label (counted as errors): "
                     f"accuracy {self.accuracy:.4f}\n")
        return text

    def summary(self, top: int = 3) -> str:
        """A few lines: accuracy, macro-F1, the weakest classes and the most confused pairs."""
        counts = self._class_counts()
        correct = int(np.trace(counts))
        lines = [f"accuracy {self.accuracy:.4f} ({correct}/{self.n}), "
                 f"macro-F1 {self.macro_f1:.4f}, weighted-F1 {self.weighted_f1:.4f}"]
        present = [(v["f1"], i, name) for i, (name, v) in enumerate(self.per_class.items())
                   if v["support"] > 0 and v["f1"] < 1]
        weakest = sorted(present)[:max(0, top)]
        if weakest:
            lines.append("weakest classes (F1): " +
                         ", ".join(f"{name} {f1:.4f}" for f1, _, name in weakest))
        else:
            lines.append("weakest classes (F1): none, every class in the data has F1 1")
        confused = most_confused(counts, top)
        if confused:
            lines.append("most confused (true → predicted): " + ", ".join(
                f"{self.classes[t]} → {self.classes[p]}: {count}" for t, p, count in confused))
        else:
            lines.append("most confused (true → predicted): none" + (
                " between classes" if self.no_label else ", no errors"))
        if self.no_label:
            lines.append(f"no label: {self.no_label} text(s) with nothing to classify them by "
                         "(empty, or no token the model knows), counted as errors")
        absent = [name for name, v in self.per_class.items() if v["support"] == 0]
        if absent:
            lines.append(f"not in the data (support 0, F1 counted as 0 in macro-F1): "
                         f"{', '.join(absent)}")
        return "\n".join(lines)

    def _class_counts(self) -> np.ndarray:
        """The confusion counts between the model's classes (no ``(no label)`` column)."""
        return self.confusion_matrix.to_numpy()[:, :len(self.classes)]

    def _plot_title(self) -> str:
        return (f"confusion matrix: accuracy {self.accuracy:.4f}, "
                f"macro-F1 {self.macro_f1:.4f} (n={self.n})")

    def plot(self, ax=None):
        """Draw the confusion matrix as an annotated heatmap; returns the matplotlib Axes.

        Without ``ax`` a new pyplot figure sized to the number of classes is made (shows inline
        in Jupyter). Chinese class names are drawn with the CJK font newsclf ships (see
        :mod:`newsclf.evaluation.fonts`); when no font has their characters the axes show
        ``class N`` (row N of ``confusion_matrix``) and a one-line warning says so."""
        return plot_confusion_matrix(self.confusion_matrix.to_numpy(), self.classes,
                                     self._plot_title(), ax=ax)

    def plot_png(self, dpi: int = 150) -> bytes:
        """The confusion-matrix heatmap as PNG bytes (Agg; no pyplot, no window)."""
        return confusion_matrix_png(self.confusion_matrix.to_numpy(), self.classes,
                                    self._plot_title(), dpi=dpi)

    def save(self, directory: str | Path) -> Path:
        """Write the evaluation files into ``directory`` (made if missing; files replaced
        atomically): metrics.json, classification_report.txt, confusion_matrix.csv,
        confusion_matrix_normalized.csv, misclassified.csv (UTF-8 with BOM, for Excel) and
        confusion_matrix.png. Returns the directory."""
        from newsclf.files import write_atomic, write_json

        directory = Path(directory)
        check_report_dir(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NewsclfError(f"{directory}: cannot create the output directory "
                               f"({exc.strerror})") from None

        def csv_bytes(frame, **options) -> bytes:
            return frame.to_csv(lineterminator="\n", **options).encode("utf-8-sig")

        write_json(directory / METRICS_JSON, self.to_dict())
        write_atomic(directory / REPORT_TXT, self.report())
        write_atomic(directory / CONFUSION_CSV,
                     csv_bytes(self.confusion_matrix, index_label=MATRIX_CORNER))
        write_atomic(directory / CONFUSION_NORMALIZED_CSV,
                     csv_bytes(self.confusion_matrix_normalized.round(6),
                               index_label=MATRIX_CORNER))
        write_atomic(directory / MISCLASSIFIED_CSV, csv_bytes(self.misclassified, index=False))
        write_atomic(directory / CONFUSION_PNG, self.plot_png())
        return directory
