"""Chinese in plots on a machine without any system CJK font: the font newsclf ships draws the
class names, matplotlib meets it at plot time only, and nothing about fonts reaches stderr.

A machine without CJK fonts is simulated in a subprocess: a fresh matplotlib cache directory,
and matplotlib's font list cut down to the fonts matplotlib itself ships, with the system font
directories reporting no files.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, SAMPLE, run_cli

CLASSES = ["财经", "体育", "科技", "娱乐"]

NO_SYSTEM_FONTS = """
import os
import matplotlib
matplotlib.use("Agg")
from matplotlib import font_manager

matplotlib_own = os.path.realpath(matplotlib.get_data_path())
font_manager.fontManager.ttflist = [
    entry for entry in font_manager.fontManager.ttflist
    if os.path.realpath(entry.fname).startswith(matplotlib_own)]
font_manager.fontManager._findfont_cached.cache_clear()
font_manager.findSystemFonts = lambda *args, **kwargs: []
"""

DRAW = """
import json
import warnings

import numpy as np
from matplotlib import font_manager

from newsclf.evaluation import EvaluationResult, fonts

if HIDE_NEWSCLF_FONT:
    fonts.BUNDLED_FONT = os.path.join(os.path.dirname(fonts.BUNDLED_FONT), "absent.otf")
classes = CLASSES
result = EvaluationResult.from_predictions(classes, None, classes, np.eye(len(classes)))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ax = result.plot()
    ax.figure.canvas.draw()
    png = result.plot_png()
labels = ax.get_xticklabels() + ax.get_yticklabels()
print(json.dumps({
    "system_cjk_font": fonts.find_system_cjk_font(),
    "xticks": [label.get_text() for label in ax.get_xticklabels()],
    "yticks": [label.get_text() for label in ax.get_yticklabels()],
    "families": [label.get_fontproperties().get_family() for label in labels],
    "files": [font_manager.findfont(label.get_fontproperties()) for label in labels],
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    "png_bytes": len(png),
}, ensure_ascii=False))
"""


def _python(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mplconfig"),
                   "XDG_DATA_HOME": str(tmp_path / "no-user-fonts"), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=environment, timeout=300)


def _draw_without_system_fonts(tmp_path, hide_newsclf_font=False) -> dict:
    code = (NO_SYSTEM_FONTS + f"CLASSES = {CLASSES!r}\nHIDE_NEWSCLF_FONT = {hide_newsclf_font}\n"
            + DRAW)
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_class_names_are_drawn_with_the_shipped_font_without_system_fonts(tmp_path):
    from matplotlib.ft2font import FT2Font

    from newsclf.evaluation.fonts import BUNDLED_FONT

    drawn = _draw_without_system_fonts(tmp_path)
    assert drawn["system_cjk_font"] is None  # the simulation hides every system CJK font
    assert drawn["xticks"] == CLASSES and drawn["yticks"] == CLASSES
    assert all(family == ["Noto Sans SC GB2312"] for family in drawn["families"]), drawn
    assert {os.path.realpath(path) for path in drawn["files"]} == {os.path.realpath(BUNDLED_FONT)}
    font = FT2Font(BUNDLED_FONT)
    assert all(font.get_char_index(ord(c)) for c in "".join(CLASSES))
    assert drawn["warnings"] == []  # neither MissingFontWarning nor missing-glyph warnings
    assert drawn["png_bytes"] > 10_000


def test_without_the_shipped_font_the_same_machine_falls_back_to_class_numbers(tmp_path):
    # the check above is only worth something if the simulated machine really has no CJK font
    drawn = _draw_without_system_fonts(tmp_path, hide_newsclf_font=True)
    assert drawn["xticks"] == [f"class {i}" for i in range(len(CLASSES))]
    missing = [w for w in drawn["warnings"] if w.startswith("MissingFontWarning")]
    assert len(missing) == 1 and "no CJK font" in missing[0], drawn["warnings"]


def test_characters_beyond_the_shipped_font_use_a_system_font_that_has_them(monkeypatch):
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib import font_manager

    from newsclf.evaluation import EvaluationResult, MissingFontWarning
    from newsclf.evaluation import plot as evaluation_plot
    from newsclf.evaluation.fonts import BUNDLED_FONT, find_system_cjk_font, has_glyphs

    classes = ["财经", "龘"]  # 龘 is not in GB2312
    assert not has_glyphs(BUNDLED_FONT, "龘")
    monkeypatch.setattr(evaluation_plot, "_warned_missing_font", False)
    system_font = find_system_cjk_font("龘")
    result = EvaluationResult.from_predictions(classes, None, classes, np.eye(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax = result.plot()
        ax.figure.canvas.draw()
    labels = ax.get_xticklabels()
    plt.close("all")
    if system_font is None:
        assert [label.get_text() for label in labels] == ["class 0", "class 1"]
        assert [w for w in caught if issubclass(w.category, MissingFontWarning)]
    else:
        assert [label.get_text() for label in labels] == classes
        drawn_with = font_manager.findfont(labels[0].get_fontproperties())
        assert os.path.realpath(drawn_with) == os.path.realpath(system_font)
        assert not caught, [str(w.message) for w in caught]


def test_the_shipped_font_covers_gb2312_and_carries_its_licence():
    from matplotlib.ft2font import FT2Font

    from newsclf.evaluation.fonts import BUNDLED_FONT

    hanzi = [bytes([high, low]).decode("gb2312") for high in range(0xB0, 0xF8)
             for low in range(0xA1, 0xFF) if not (high == 0xD7 and low > 0xF9)]
    assert len(hanzi) == 6763
    font = FT2Font(BUNDLED_FONT)
    assert font.family_name == "Noto Sans SC GB2312"
    punctuation = list("ABCxyz019,.;:!?，。：；！？（）《》")
    assert all(font.get_char_index(ord(c)) for c in hanzi + punctuation)
    assert os.path.getsize(BUNDLED_FONT) < 3_000_000
    licence = os.path.join(os.path.dirname(BUNDLED_FONT), "OFL.txt")
    with open(licence, encoding="utf-8") as handle:
        text = handle.read()
    assert "SIL OPEN FONT LICENSE Version 1.1" in text and "Adobe" in text


def test_matplotlib_is_not_imported_until_a_plot_is_drawn(tmp_path):
    result = _python("import sys, newsclf, newsclf.evaluation, newsclf.evaluation.fonts\n"
                     "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))",
                     tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_building_the_font_cache_logs_nothing_to_a_root_logger_at_info(tmp_path):
    # Paddle sends INFO records to stderr through the root logger; a fresh cache directory makes
    # matplotlib build its font cache (and log that it did) on first use
    code = textwrap.dedent(f"""
        import logging
        logging.basicConfig(level=logging.INFO,
                            format="[%(levelname)s] %(filename)s:%(lineno)s - %(message)s")
        import numpy as np
        from newsclf.evaluation import EvaluationResult
        classes = {CLASSES!r}
        result = EvaluationResult.from_predictions(classes, None, classes, np.eye(len(classes)))
        result.plot_png()
        logging.getLogger("check").info("logging still works")
        print(logging.getLogger("matplotlib.font_manager").level)
    """)
    result = _python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "font_manager" not in result.stderr and "fontManager" not in result.stderr
    assert "logging still works" in result.stderr
    assert result.stdout.strip() == "0"  # the font manager's logger is left as it was


@pytest.mark.slow
def test_training_writes_the_png_without_font_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mplconfig"))  # a first run after install
    out = tmp_path / "model"
    result = run_cli("train", "--train", SAMPLE / "train.tsv", "--dev", SAMPLE / "dev.tsv",
                     "--output", out, "--epochs", "1", "--ensemble-size", "1", "--no-export",
                     "--no-progress", timeout=300, in_process=False)
    assert result.returncode == 0, result.stderr
    assert (out / "eval_dev" / "confusion_matrix.png").is_file()
    for fragment in ("MissingFontWarning", "Warning", "font_manager", "fontManager", "findfont",
                     "Glyph"):
        assert fragment not in result.stderr, result.stderr
