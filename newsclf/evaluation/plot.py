"""Drawing a confusion matrix: an annotated heatmap (matplotlib) with the class names as tick
labels.

The drawing functions take the confusion counts and the class names; matplotlib loads on first
use. Chinese class names are drawn with the CJK font newsclf ships (see
:mod:`newsclf.evaluation.fonts`), or a system CJK font for characters it lacks. When no font
draws them the axes show ``class N`` instead (row N of the counts) and one
:class:`MissingFontWarning` per process says so in one line.
"""

from __future__ import annotations

import io
import warnings
from typing import Sequence

import numpy as np

from newsclf.evaluation.fonts import (MissingFontWarning, find_cjk_font, find_system_cjk_font,
                                      font_properties, has_glyphs, import_font_manager)
from newsclf.evaluation.metrics import row_shares

__all__ = ["draw_confusion_matrix", "plot_confusion_matrix", "confusion_matrix_png",
           "find_cjk_font", "MissingFontWarning"]

_warned_missing_font = False


def _warn_missing_font(reason: str) -> None:
    global _warned_missing_font
    if _warned_missing_font:
        return
    _warned_missing_font = True
    # A fixed location without a source line: Python's default display is then this one line,
    # where it would otherwise quote whichever line of the caller drew the plot.
    warnings.warn_explicit(
        f"{reason}; the confusion-matrix plot labels classes 'class N' (N: row of "
        "confusion_matrix.csv)", MissingFontWarning, filename="newsclf", lineno=0, module=__name__)


def _tick_labels(class_names: Sequence[str], size: float):
    """Tick labels and the FontProperties to draw them with (None: matplotlib's default)."""
    names = [str(c) for c in class_names]
    if all(name.isascii() for name in names):
        return names, None
    path = find_cjk_font()
    if path is None:
        _warn_missing_font("no CJK font found (newsclf's font file is missing: reinstall "
                           "newsclf, or install a CJK font such as fonts-noto-cjk)")
        return [f"class {i}" for i in range(len(names))], None
    needed = "".join(sorted({c for name in names for c in name
                             if not c.isascii() and not c.isspace()}))
    if not has_glyphs(path, needed):
        lacking = "".join(c for c in needed if not has_glyphs(path, c))
        path = find_system_cjk_font(needed)
        if path is None:
            _warn_missing_font(f"no CJK font draws the characters {lacking} of the class names "
                               "(install one that does, such as fonts-noto-cjk)")
            return [f"class {i}" for i in range(len(names))], None
    return names, font_properties(path, size)


_CELL = 0.72  # inches per confusion-matrix cell, up to the size cap


def _figsize(n_classes: int) -> tuple[float, float]:
    side = min(40.0, max(4.0, _CELL * n_classes + 1.2))
    return side + 1.8, side + 0.9


def _cell_inches(n_classes: int) -> float:
    return (_figsize(n_classes)[1] - 2.1) / max(1, n_classes)


def draw_confusion_matrix(ax, counts: np.ndarray, class_names: Sequence[str],
                          title: str = "confusion matrix") -> None:
    """Draw ``counts`` (``[true, predicted]``, rows and columns in ``class_names`` order) on
    ``ax``: cells coloured by the share of their row, annotated with count and share while they
    are large enough to read. A last column beyond the classes (the texts given no label) is
    not drawn but counts in its row's total."""
    import_font_manager()
    from matplotlib import colormaps

    k = len(class_names)
    counts = np.asarray(counts)
    shares = row_shares(counts)[:, :k]
    cmap = colormaps["Blues"]
    image = ax.imshow(shares, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest",
                      aspect="equal")
    colorbar = ax.figure.colorbar(image, cax=ax.inset_axes([1.03, 0.0, 0.035, 1.0]))
    colorbar.set_label("share of the true class (row)")

    scale = min(1.0, _cell_inches(k) / _CELL)  # below 1 only past the figure-size cap
    tick_size = max(5.0, 11 * scale)
    labels, label_font = _tick_labels(class_names, tick_size)
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
    ax.set_title(title, fontsize=12, pad=14)

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


def plot_confusion_matrix(counts: np.ndarray, class_names: Sequence[str],
                          title: str = "confusion matrix", ax=None):
    """Draw the confusion matrix on ``ax``, or on a new pyplot figure sized to the number of
    classes (shows inline in Jupyter); returns the matplotlib Axes."""
    if ax is None:
        import_font_manager()
        import matplotlib.pyplot as plt

        figure, ax = plt.subplots(figsize=_figsize(len(class_names)))
        draw_confusion_matrix(ax, counts, class_names, title)
        figure.tight_layout()
    else:
        draw_confusion_matrix(ax, counts, class_names, title)
    return ax


def confusion_matrix_png(counts: np.ndarray, class_names: Sequence[str],
                         title: str = "confusion matrix", dpi: int = 150) -> bytes:
    """The confusion-matrix heatmap as PNG bytes (Agg; no pyplot, no window)."""
    import_font_manager()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_figsize(len(class_names)))
    FigureCanvasAgg(figure)
    draw_confusion_matrix(figure.add_subplot(), counts, class_names, title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.2)
    return buffer.getvalue()
