"""Each training setting is described once, in :class:`~newsclf.config.TrainConfig`: the help of
``newsclf train --help`` and the settings table of the documentation come from it, so they
cannot drift apart."""

import re
from dataclasses import fields

import pytest

from newsclf.cli import main
from newsclf.config import AUTOMATIC, TrainConfig, setting_help

from conftest import ROOT

SETTINGS_PAGE = ROOT / "docs" / "training.md"
TABLE_HEADER = "| setting | default | meaning |"
NAMES = [f.name for f in fields(TrainConfig)]


def settings_table() -> dict[str, tuple[str, str]]:
    """The rows of the settings table: setting name -> (default cell, meaning cell)."""
    lines = SETTINGS_PAGE.read_text(encoding="utf-8").splitlines()
    assert lines.count(TABLE_HEADER) == 1, f"{SETTINGS_PAGE.name}: one settings table expected"
    start = lines.index(TABLE_HEADER) + 2  # after the header and the |---| line
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        assert len(cells) == 3, f"{SETTINGS_PAGE.name}: a row of 3 cells expected: {line}"
        name = re.fullmatch(r"`(\w+)`", cells[0])
        assert name, f"{SETTINGS_PAGE.name}: one `setting` per row expected: {line}"
        assert name.group(1) not in rows, f"{SETTINGS_PAGE.name}: {name.group(1)} listed twice"
        rows[name.group(1)] = cells[1], cells[2]
    return rows


def default_cell(name: str) -> str:
    """How the table shows a setting's default."""
    value = getattr(TrainConfig(), name)
    if value is None:
        return "automatic" if name in AUTOMATIC else "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str):
        return f"`{value}`"
    return str(value)


def words(text: str) -> str:
    """``text`` without its whitespace (argparse wraps the help across lines)."""
    return "".join(text.split())


@pytest.mark.parametrize("name", NAMES)
def test_every_setting_has_a_help(name):
    text = setting_help(name)
    assert isinstance(text, str) and text.strip() == text and len(text) > 10


def test_train_help_shows_every_setting(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    options = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", out))
    shown = words(out)
    defaults = TrainConfig()
    for name in NAMES:
        flag = "--" + name.replace("_", "-")
        assert flag in options, f"{flag} missing from 'newsclf train --help'"
        if isinstance(getattr(defaults, name), bool):
            assert f"--no-{flag[2:]}" in options, f"--no-{flag[2:]} missing"
        described = setting_help(name)
        if getattr(defaults, name) is not None:
            described += f" (default: {getattr(defaults, name)})"
        assert words(described) in shown, f"{flag}: its help is not TrainConfig's"


def test_settings_table_lists_every_setting_with_its_default_and_help():
    rows = settings_table()
    assert list(rows) == NAMES, (f"{SETTINGS_PAGE.name}: the settings table should list "
                                 f"TrainConfig's settings in its order: {', '.join(NAMES)}")
    for name, (default, meaning) in rows.items():
        assert default == default_cell(name), f"{name}: default {default!r} in the table"
        # the table may set words in `code`; the words are the help's
        assert meaning.replace("`", "").replace(r"\|", "|") == setting_help(name), (
            f"{name}: the table's meaning differs from its help in TrainConfig:\n"
            f"{setting_help(name)}")
