"""Evaluation: scores, confusion matrix and reports for a predictor on labelled texts.

>>> result = evaluate(predictor, texts, labels)
>>> print(result.summary())
>>> result.save("eval_dev")  # metrics.json, confusion_matrix.csv/.png, misclassified.csv, ...

Every number comes from scikit-learn over *all* of the model's classes (``labels=range(n)``,
``zero_division=0``), so a class the data lacks still has a row and column in the confusion
matrix (support 0) and counts as F1 0 in the macro-F1. Paddle is never imported here; matplotlib,
pandas and scikit-learn load on first use.
"""

from __future__ import annotations

import functools
import io
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.errors import NewsclfError

METRICS_JSON = "metrics.json"
REPORT_TXT = "classification_report.txt"
CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_NORMALIZED_CSV = "confusion_matrix_normalized.csv"
MISCLASSIFIED_CSV = "misclassified.csv"
CONFUSION_PNG = "confusion_matrix.png"
MATRIX_CORNER = "true\\predicted"  # header of the first column of the confusion-matrix CSVs

CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
                "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "SimHei",
                "Microsoft YaHei", "PingFang SC", "Heiti SC", "Hiragino Sans GB",
                "Noto Sans CJK TC", "Droid Sans Fallback", "AR PL UMing CN", "Arial Unicode MS")
_CJK_FILE_HINT = re.compile(
    r"cjk|wqy|zenhei|microhei|simhei|simsun|simkai|msyh|yahei|pingfang|heiti|hiragino|"
    r"sourcehan|source-han|notosans(sc|tc|hk|jp|kr)|notoserif(sc|tc|jp|kr)|droidsansfallback|"
    r"uming|ukai|arphic|arialuni|arial unicode|fallback", re.IGNORECASE)
_PROBE = "财经体育中文"  # a font must have all of these glyphs to count as CJK


class MissingFontWarning(UserWarning):
    """No installed font can draw the class names; the plot shows class numbers instead."""


_warned_missing_font = False
_THIS_FILE = __file__


@functools.lru_cache(maxsize=256)
def _has_glyphs(path: str, chars: str = _PROBE) -> bool:
    """Whether the font file has a real glyph for each character. Fonts that map everything to
    one placeholder (matplotlib's "Last Resort" draws boxes) do not count."""
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(str(path))
        if "last resort" in (font.family_name or "").lower():
            return False
        glyphs = [font.get_char_index(ord(c)) for c in dict.fromkeys(chars)]
    except Exception:  # unreadable, unsupported or vanished font file
        return False
    return all(glyphs) and (len(glyphs) < 3 or len(set(glyphs)) > 1)


@functools.lru_cache(maxsize=None)
def find_cjk_font() -> str | None:
    """Path of an installed font file that draws Chinese, or None. Looked up once per process.

    Tries well-known CJK families in matplotlib's font list, then any listed font whose file name
    hints CJK, then font files in the system font directories that matplotlib's (possibly stale)
    cache does not know yet. Every candidate must really have the glyphs.
    """
    from matplotlib import font_manager

    entries = [e for e in font_manager.fontManager.ttflist if os.path.isfile(e.fname)]

    def regular_first(entry):
        return (entry.style != "normal", abs(_weight(entry.weight) - 400), entry.fname)

    for family in CJK_FAMILIES:
        for entry in sorted((e for e in entries if e.name.lower() == family.lower()),
                            key=regular_first):
            if _has_glyphs(entry.fname):
                return entry.fname
    hinted = sorted((e for e in entries if _CJK_FILE_HINT.search(os.path.basename(e.fname))),
                    key=regular_first)
    for entry in hinted:
        if _has_glyphs(entry.fname):
            return entry.fname
    known = {os.path.realpath(e.fname) for e in entries}
    try:
        unseen = [p for p in font_manager.findSystemFonts()
                  if os.path.realpath(p) not in known]
    except Exception:
        unseen = []
    unseen.sort(key=lambda p: (not _CJK_FILE_HINT.search(os.path.basename(p)),
                               bool(re.search(r"bold|light|thin|black|heavy|italic", p, re.I)), p))
    for path in unseen[:300]:
        if _has_glyphs(path):
            return path
    return None


def _weight(weight) -> int:
    if isinstance(weight, (int, float)):
        return int(weight)
    from matplotlib.font_manager import weight_dict

    return int(weight_dict.get(str(weight).lower(), 400))


def _warn_missing_font(reason: str) -> None:
    global _warned_missing_font
    if _warned_missing_font:
        return
    _warned_missing_font = True
    frame, level = sys._getframe(), 1  # point the warning at the first caller outside this module
    while frame is not None and frame.f_code.co_filename == _THIS_FILE:
        frame, level = frame.f_back, level + 1
    warnings.warn(
        f"{reason}: the confusion-matrix plot labels classes as 'class 0', 'class 1', ... in the "
        "order of the rows of confusion_matrix.csv. To show the names, install a CJK font "
        "(Debian/Ubuntu: apt-get install fonts-noto-cjk, or fonts-wqy-zenhei), then delete "
        "matplotlib's font cache (~/.cache/matplotlib) if the font is still not found",
        MissingFontWarning, stacklevel=level)


def _plot_labels(classes: Sequence[str]):
    """Tick labels and the font to draw them with (None: matplotlib's default)."""
    names = [str(c) for c in classes]
    if all(name.isascii() for name in names):
        return names, None
    path = find_cjk_font()
    if path is None:
        _warn_missing_font("no CJK font found")
    else:
        needed = "".join(sorted({c for name in names for c in name if not c.isascii()}))
        if _has_glyphs(path, needed):
            return names, path
        _warn_missing_font(f"the CJK font {path} lacks glyphs used in the class names")
    return [f"class {i}" for i in range(len(names))], None


_CELL = 0.72  # inches per confusion-matrix cell, up to the size cap


def _figsize(n_classes: int) -> tuple[float, float]:
    side = min(40.0, max(4.0, _CELL * n_classes + 1.2))
    return side + 1.8, side + 0.9


def _cell_inches(n_classes: int) -> float:
    return (_figsize(n_classes)[1] - 2.1) / max(1, n_classes)


class EvaluationResult:
    """Scores of a classifier on labelled texts (build with :func:`evaluate` or
    :meth:`from_predictions`).

    Attributes: ``accuracy``, ``macro_f1``, ``weighted_f1``, ``n``, ``classes`` (the model's class
    order), ``per_class`` (name -> precision, recall, f1, support), ``confusion_matrix`` (counts;
    index = true class, columns = predicted class, every model class present),
    ``confusion_matrix_normalized`` (rows sum to 1; a class absent from the data has a row of 0),
    ``misclassified`` (text, true_label, pred_label, pred_score of every wrong row, most confident
    first; the index is the row's position in the input).
    """

    def __init__(self, classes, texts, y_true, y_pred, probabilities):
        import pandas as pd
        from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score,
                                     precision_recall_fscore_support)

        self.classes = [str(c) for c in classes]
        self.texts = list(texts)
        self.y_true = np.asarray(y_true, dtype=np.int64)
        self.y_pred = np.asarray(y_pred, dtype=np.int64)
        self.probabilities = probabilities
        labels = list(range(len(self.classes)))
        self.n = int(len(self.y_true))
        self.accuracy = float(accuracy_score(self.y_true, self.y_pred))
        self.macro_f1 = float(f1_score(self.y_true, self.y_pred, labels=labels, average="macro",
                                       zero_division=0))
        self.weighted_f1 = float(f1_score(self.y_true, self.y_pred, labels=labels,
                                          average="weighted", zero_division=0))
        precision, recall, f1, support = precision_recall_fscore_support(
            self.y_true, self.y_pred, labels=labels, zero_division=0)
        self.per_class = {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(self.classes, precision, recall, f1, support)}

        counts = confusion_matrix(self.y_true, self.y_pred, labels=labels)
        index = pd.Index(self.classes, name="true")
        columns = pd.Index(self.classes, name="predicted")
        self.confusion_matrix = pd.DataFrame(counts.astype(np.int64), index=index, columns=columns)
        totals = counts.sum(axis=1, keepdims=True)
        normalized = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=np.float64),
                               where=totals > 0)
        self.confusion_matrix_normalized = pd.DataFrame(normalized, index=index.copy(),
                                                        columns=columns.copy())

        scores = probabilities[np.arange(self.n), self.y_pred].astype(np.float64)
        wrong = np.flatnonzero(self.y_true != self.y_pred)
        wrong = wrong[np.argsort(-scores[wrong], kind="stable")]
        names = np.array(self.classes, dtype=object)
        self.misclassified = pd.DataFrame(
            {"text": [self.texts[i] for i in wrong], "true_label": names[self.y_true[wrong]],
             "pred_label": names[self.y_pred[wrong]], "pred_score": scores[wrong]},
            index=pd.Index(wrong, name="row"))
        self.misclassified["true_label"] = self.misclassified["true_label"].astype(str)
        self.misclassified["pred_label"] = self.misclassified["pred_label"].astype(str)
        self.misclassified["text"] = self.misclassified["text"].astype(str)

    @classmethod
    def from_predictions(cls, classes: Sequence[str], texts: Sequence[str] | None,
                         true_labels: Sequence[str], probabilities) -> "EvaluationResult":
        """Score given class probabilities ``[n, n_classes]`` (columns in ``classes`` order)
        against true class names; the prediction is the most probable class. ``texts`` may be
        None (the misclassified table then has empty texts)."""
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
        return cls(classes, texts, y_true, probabilities.argmax(axis=1), probabilities)

    def __repr__(self) -> str:
        return (f"EvaluationResult(n={self.n}, accuracy={self.accuracy:.4f}, "
                f"macro_f1={self.macro_f1:.4f}, classes={len(self.classes)})")

    def to_dict(self) -> dict:
        """The scores as plain JSON-ready values (the content of ``metrics.json``)."""
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "weighted_f1": self.weighted_f1, "n": self.n,
                "per_class": {name: dict(values) for name, values in self.per_class.items()}}

    def report(self) -> str:
        """scikit-learn's classification report, one line per model class."""
        from sklearn.metrics import classification_report

        return classification_report(self.y_true, self.y_pred,
                                     labels=list(range(len(self.classes))),
                                     target_names=self.classes, zero_division=0, digits=4)

    def summary(self, top: int = 3) -> str:
        """A few lines: accuracy, macro-F1, the weakest classes and the most confused pairs."""
        correct = int(np.trace(self.confusion_matrix.to_numpy()))
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
        counts = self.confusion_matrix.to_numpy()
        pairs = sorted(((-int(counts[t, p]), t, p) for t in range(len(self.classes))
                        for p in range(len(self.classes)) if t != p and counts[t, p] > 0))
        if pairs:
            lines.append("most confused (true → predicted): " + ", ".join(
                f"{self.classes[t]} → {self.classes[p]}: {-c}" for c, t, p in pairs[:max(0, top)]))
        else:
            lines.append("most confused (true → predicted): none, no errors")
        absent = [name for name, v in self.per_class.items() if v["support"] == 0]
        if absent:
            lines.append(f"not in the data (support 0, F1 counted as 0 in macro-F1): "
                         f"{', '.join(absent)}")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Draw the confusion matrix as an annotated heatmap; returns the matplotlib Axes.

        Without ``ax`` a new pyplot figure sized to the number of classes is made (shows inline
        in Jupyter). Class names need a CJK font (see :func:`find_cjk_font`); without one the
        axes show ``class N`` (row N of ``confusion_matrix``) and a warning says how to install
        one."""
        if ax is None:
            import matplotlib.pyplot as plt

            figure, ax = plt.subplots(figsize=_figsize(len(self.classes)))
            self._draw(ax)
            figure.tight_layout()
        else:
            self._draw(ax)
        return ax

    def _draw(self, ax) -> None:
        from matplotlib import colormaps
        from matplotlib.font_manager import FontProperties

        k = len(self.classes)
        labels, font_path = _plot_labels(self.classes)
        counts = self.confusion_matrix.to_numpy()
        shares = self.confusion_matrix_normalized.to_numpy()
        cmap = colormaps["Blues"]
        image = ax.imshow(shares, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest",
                          aspect="equal")
        colorbar = ax.figure.colorbar(image, cax=ax.inset_axes([1.03, 0.0, 0.035, 1.0]))
        colorbar.set_label("share of the true class (row)")

        scale = min(1.0, _cell_inches(k) / _CELL)  # below 1 only past the figure-size cap
        tick_size = max(5.0, 11 * scale)
        label_font = FontProperties(fname=font_path, size=tick_size) if font_path else None
        longest = max(len(label) for label in labels)
        wide = any(not label.isascii() for label in labels)
        rotate = k > 4 and (longest * (2 if wide else 1)) > 6
        ax.set_xticks(range(k), labels, fontproperties=label_font, fontsize=tick_size,
                      rotation=45 if rotate else 0, ha="right" if rotate else "center",
                      rotation_mode="anchor")
        ax.set_yticks(range(k), labels, fontproperties=label_font, fontsize=tick_size)
        ax.set_xticks(np.arange(-0.5, k, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.0)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("predicted", fontsize=12)
        ax.set_ylabel("true", fontsize=12)
        ax.set_title(f"confusion matrix: accuracy {self.accuracy:.4f}, "
                     f"macro-F1 {self.macro_f1:.4f} (n={self.n})", fontsize=12, pad=14)

        if scale >= 0.45:
            size = 10 * scale
            with_share = scale >= 0.7
            for t in range(k):
                for p in range(k):
                    count = int(counts[t, p])
                    if count == 0:
                        text, colour = "0", "#9a9a9a"
                    else:
                        text = f"{count}\n{shares[t, p]:.1%}" if with_share else str(count)
                        red, green, blue, _ = cmap(shares[t, p])
                        luminance = 0.299 * red + 0.587 * green + 0.114 * blue
                        colour = "white" if luminance < 0.5 else "#202020"
                    ax.text(p, t, text, ha="center", va="center", color=colour, fontsize=size,
                            linespacing=1.15)

    def plot_png(self, dpi: int = 150) -> bytes:
        """The confusion-matrix heatmap as PNG bytes (Agg; no pyplot, no window)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=_figsize(len(self.classes)))
        FigureCanvasAgg(figure)
        self._draw(figure.add_subplot())
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.2)
        return buffer.getvalue()

    def save(self, directory: str | Path) -> Path:
        """Write the evaluation files into ``directory`` (made if missing; files replaced
        atomically): metrics.json, classification_report.txt, confusion_matrix.csv,
        confusion_matrix_normalized.csv, misclassified.csv (UTF-8 with BOM, for Excel) and
        confusion_matrix.png. Returns the directory."""
        from newsclf.modeldir import write_atomic, write_json

        directory = Path(directory)
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


def label_ids(classes: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Class indices of the class names ``labels``; unknown names or no labels raise
    :class:`NewsclfError`."""
    if len(labels) == 0:
        raise NewsclfError("nothing to evaluate: no labelled texts given")
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


def evaluate(predictor, texts: Sequence[str], labels: Sequence[str],
             batch_size: int = 256) -> EvaluationResult:
    """Classify ``texts`` with ``predictor`` (one pass of ``predict_proba``) and score the
    predictions against the true class names ``labels``."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    labels = [labels] if isinstance(labels, str) else list(labels)
    if not texts and not labels:
        raise NewsclfError("nothing to evaluate: no labelled texts given")
    if len(texts) != len(labels):
        raise NewsclfError(f"{len(texts)} texts but {len(labels)} labels; give one label per text")
    classes = [str(c) for c in predictor.classes_]
    label_ids(classes, labels)  # fail on unknown labels before spending time on predictions
    probabilities = predictor.predict_proba(texts, batch_size=batch_size)
    return EvaluationResult.from_predictions(classes, texts, labels, probabilities)
