"""Drawing a confusion matrix: an annotated heatmap (matplotlib), and the CJK font its Chinese
class names need.

The drawing functions take the confusion counts and the class names; matplotlib loads on first
use. Without a font that draws the class names the axes show ``class N`` instead (row N of the
counts) and one :class:`MissingFontWarning` per process says how to install a font.
"""

from __future__ import annotations

import functools
import io
import os
import re
import sys
import warnings
from typing import Sequence

import numpy as np

from newsclf.evaluation.metrics import row_shares

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
_PACKAGE_DIR = os.path.dirname(__file__)


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
    # point the warning at the first caller outside this package (e.g. a notebook's result.plot())
    frame, level = sys._getframe(), 1
    while frame is not None and os.path.dirname(frame.f_code.co_filename) == _PACKAGE_DIR:
        frame, level = frame.f_back, level + 1
    warnings.warn(
        f"{reason}: the confusion-matrix plot labels classes as 'class 0', 'class 1', ... in the "
        "order of the rows of confusion_matrix.csv. To show the names, install a CJK font "
        "(Debian/Ubuntu: apt-get install fonts-noto-cjk, or fonts-wqy-zenhei), then delete "
        "matplotlib's font cache (~/.cache/matplotlib) if the font is still not found",
        MissingFontWarning, stacklevel=level)


def _tick_labels(class_names: Sequence[str]):
    """Tick labels and the font to draw them with (None: matplotlib's default)."""
    names = [str(c) for c in class_names]
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


def draw_confusion_matrix(ax, counts: np.ndarray, class_names: Sequence[str],
                          title: str = "confusion matrix") -> None:
    """Draw ``counts`` (``[true, predicted]``, rows and columns in ``class_names`` order) on
    ``ax``: cells coloured by the share of their row, annotated with count and share while they
    are large enough to read."""
    from matplotlib import colormaps
    from matplotlib.font_manager import FontProperties

    k = len(class_names)
    labels, font_path = _tick_labels(class_names)
    counts = np.asarray(counts)
    shares = row_shares(counts)
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_figsize(len(class_names)))
    FigureCanvasAgg(figure)
    draw_confusion_matrix(figure.add_subplot(), counts, class_names, title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.2)
    return buffer.getvalue()
