"""The font plots draw Chinese with: newsclf's own CJK font, registered with matplotlib when a
plot first needs it, and installed system CJK fonts for characters it lacks.

newsclf ships a subset of Noto Sans SC in ``fonts/`` (the GB2312 characters, ASCII, Latin-1 and
common punctuation; SIL Open Font License, ``fonts/OFL.txt``) under the family name
``Noto Sans SC GB2312``. It comes first, so a plot looks the same on every machine whatever
fonts it has; a system CJK font is used only for text with characters outside the subset.
matplotlib loads on first use.

>>> font = cjk_font()                  # FontProperties for Chinese labels (None: no CJK font)
>>> ax.set_xticks(range(3), ["财经", "体育", "科技"], fontproperties=font)
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys

BUNDLED_FONT = os.path.join(os.path.dirname(__file__), "fonts", "NotoSansSCGB2312-Regular.otf")

# installed fonts that draw Chinese, tried in this order for what the bundled font lacks
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
    """No font can draw the class names; the plot shows class numbers instead."""


def import_font_manager():
    """``matplotlib.font_manager``, imported without its "generated new fontManager" line.

    matplotlib logs that line at INFO level when it builds its font cache (the first run after
    an install). Paddle sends INFO records of every logger to the terminal through the root
    logger, so the line would land between the training messages: the font manager's logger
    is held at WARNING while the module loads, and restored right after.
    """
    if "matplotlib.font_manager" not in sys.modules:
        logger = logging.getLogger("matplotlib.font_manager")
        level = logger.level
        logger.setLevel(max(level, logging.WARNING))
        try:
            import matplotlib.font_manager  # noqa: F401
        finally:
            logger.setLevel(level)
    from matplotlib import font_manager as module

    return module


@functools.lru_cache(maxsize=256)
def has_glyphs(path: str, chars: str = _PROBE) -> bool:
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


def bundled_font() -> str | None:
    """Path of the CJK font newsclf ships, or None when this installation lacks it."""
    return BUNDLED_FONT if os.path.isfile(BUNDLED_FONT) and has_glyphs(BUNDLED_FONT) else None


@functools.lru_cache(maxsize=None)
def find_cjk_font() -> str | None:
    """Path of a font file that draws Chinese, or None: the font newsclf ships, else an
    installed system CJK font (:func:`find_system_cjk_font`). Looked up once per process."""
    return bundled_font() or find_system_cjk_font()


@functools.lru_cache(maxsize=64)
def find_system_cjk_font(chars: str = _PROBE) -> str | None:
    """Path of an installed (system) font file with glyphs for every character of ``chars``,
    or None.

    Tries well-known CJK families in matplotlib's font list, then any listed font whose file name
    hints CJK, then font files in the system font directories that matplotlib's (possibly stale)
    cache does not know yet. Every candidate must really have the glyphs.
    """
    chars = "".join(dict.fromkeys(chars + _PROBE))
    fm = import_font_manager()
    entries = [e for e in fm.fontManager.ttflist
               if os.path.isfile(e.fname) and not _is_bundled(e.fname)]

    def regular_first(entry):
        return (entry.style != "normal", abs(_weight(entry.weight) - 400), entry.fname)

    for family in CJK_FAMILIES:
        for entry in sorted((e for e in entries if e.name.lower() == family.lower()),
                            key=regular_first):
            if has_glyphs(entry.fname, chars):
                return entry.fname
    hinted = sorted((e for e in entries if _CJK_FILE_HINT.search(os.path.basename(e.fname))),
                    key=regular_first)
    for entry in hinted:
        if has_glyphs(entry.fname, chars):
            return entry.fname
    known = {os.path.realpath(e.fname) for e in entries}
    try:
        unseen = [p for p in fm.findSystemFonts() if os.path.realpath(p) not in known]
    except Exception:
        unseen = []
    unseen.sort(key=lambda p: (not _CJK_FILE_HINT.search(os.path.basename(p)),
                               bool(re.search(r"bold|light|thin|black|heavy|italic", p, re.I)), p))
    for path in unseen[:300]:
        if has_glyphs(path, chars):
            return path
    return None


def font_for(text: str) -> str | None:
    """Path of the font to draw ``text`` with: :func:`find_cjk_font` when it has a glyph for
    every character (text without Chinese included: it has Latin letters too), else a system
    font that has them all, else None."""
    needed = "".join(sorted({c for c in text if not c.isascii() and not c.isspace()}))
    path = find_cjk_font()
    if not needed or (path is not None and has_glyphs(path, needed)):
        return path
    return find_system_cjk_font(needed)


def cjk_font(text: str = _PROBE, size: float | None = None):
    """matplotlib ``FontProperties`` that draw ``text`` (by default: Chinese), for
    ``fontproperties=``; None when no font has the glyphs (see :func:`font_for`)."""
    path = font_for(text)
    return None if path is None else font_properties(path, size)


def font_properties(path: str, size: float | None = None):
    """matplotlib ``FontProperties`` drawing with the font file ``path``, registered with
    matplotlib's font manager and named by its family (so the name also works in
    ``rcParams["font.family"]``)."""
    fm = import_font_manager()
    entry = register_font(path)
    properties = fm.FontProperties(family=entry.name, style=entry.style, weight=entry.weight,
                                   stretch=entry.stretch, size=size)
    try:
        resolved = fm.findfont(properties, fallback_to_default=False)
    except ValueError:
        resolved = None
    if resolved is None or not _same_file(resolved, path):
        # another listed font has the same family name and style: name the file itself
        properties = fm.FontProperties(fname=path, size=size)
    return properties


@functools.lru_cache(maxsize=None)
def register_font(path: str):
    """Add the font file to matplotlib's font manager (once per process; a font it already lists
    is left as it is) and return its entry there (family ``name``, ``style``, ``weight``)."""
    fm = import_font_manager()
    for entry in fm.fontManager.ttflist:
        if _same_file(entry.fname, path) and getattr(entry, "index", 0) == 0:
            return entry
    fm.fontManager.addfont(path)
    return fm.ttfFontProperty(fm.get_font(path))


def _same_file(a, b) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _is_bundled(path: str) -> bool:
    return _same_file(path, BUNDLED_FONT)


def _weight(weight) -> int:
    if isinstance(weight, (int, float)):
        return int(weight)
    from matplotlib.font_manager import weight_dict

    return int(weight_dict.get(str(weight).lower(), 400))
