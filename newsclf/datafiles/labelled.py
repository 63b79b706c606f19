"""Labelled data (texts and their class names) for training and evaluation, read from any
layout :mod:`newsclf.datafiles.layout` opens, and class-names files."""

from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from newsclf.datafiles.decoding import read_file_text
from newsclf.datafiles.layout import Layout, open_table
from newsclf.errors import DataError


class NumericLabelsWarning(UserWarning):
    """Every label is a whole number and no class names were given: the classes are named by
    the numbers themselves."""


class LookalikeLabelsWarning(UserWarning):
    """Labels that differ only in case, full/half width or leading zeros: separate classes,
    most often by mistake."""


@dataclass
class LabelledData:
    texts: list[str]
    labels: list[str]
    source: str
    layout: Layout | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def summary(self) -> str:
        """Where the data came from, how it was read, and its size, in one line."""
        classes = len(set(self.labels))
        return (f"{self.layout.describe() if self.layout else self.source}: {len(self)} "
                f"example{'s' * (len(self) != 1)}, {classes} class{'es' * (classes != 1)}")


def read_labelled(path: str | Path, class_names: Sequence[str] | None = None, *,
                  fmt: str | None = None, text_column=None, label_column=None,
                  header: bool | None = None, encoding: str | None = None,
                  sheet: str | None = None, skip_rows: int = 0) -> LabelledData:
    """Read texts and their class names from a labelled file of any layout (see
    :mod:`newsclf.datafiles.layout`; the arguments override what is detected).

    With ``class_names``, integer labels are ids into it and name labels must be in it. Without
    it, labels that are all whole numbers give a :class:`NumericLabelsWarning`.
    """
    with open_table(path, labelled=True, fmt=fmt, header=header, text_column=text_column,
                    label_column=label_column, encoding=encoding, sheet=sheet,
                    skip_rows=skip_rows) as table:
        layout = table.layout
        texts, labels = [], []
        for line, fields in table.rows:
            text, label = fields[layout.text_index], _clean_label(fields[layout.label_index])
            where = f"{layout.source}:{line}"
            if not label:
                if not text.strip():
                    continue  # a blank row
                raise DataError(f"{where}: empty label")
            if not text.strip():
                raise DataError(f"{where}: empty text" + (
                    f" in column {layout.text_column!r}" if layout.header else ""))
            if class_names is not None:
                label = _resolve_label(label, class_names, where)
            texts.append(text)
            labels.append(label)
    if not texts:
        raise DataError(f"{layout.source}: no rows below the header" if layout.header
                        else f"{layout.source}: no examples found")
    if class_names is None and named_by_numbers(labels):
        shown = sorted(set(labels), key=int)
        warnings.warn(
            f"{layout.source}: every label is a whole number ({', '.join(shown[:4])}"
            f"{', ...' if len(shown) > 4 else ''}) and no class names were given, so the classes "
            "are named by those numbers; pass --classes FILE (one name per line, line N = id N) "
            "to name them", NumericLabelsWarning, stacklevel=2)
    lookalikes = _lookalike_labels(labels)
    if lookalikes:
        shown = "; ".join(" / ".join(map(repr, group)) for group in lookalikes[:3])
        warnings.warn(
            f"{layout.source}: labels that differ only in case, width or leading zeros are "
            f"separate classes: {shown}{'; ...' if len(lookalikes) > 3 else ''}; write each "
            "class one way if they are one", LookalikeLabelsWarning, stacklevel=2)
    return LabelledData(texts, labels, layout.source, layout)


def named_by_numbers(labels) -> bool:
    """Whether every label is a whole number (``0``, ``10``, ...): classes named by ids."""
    return all(str(label).isdecimal() for label in labels)


def _lookalike_labels(labels: list[str]) -> list[list[str]]:
    """Groups of distinct labels equal after NFKC, lower-casing and, for numbers, their value
    (``ＡＢ``/``AB``, ``Sports``/``sports``, ``1``/``01``)."""
    groups: dict = {}
    for label in sorted(set(labels)):
        groups.setdefault(_lookalike_key(label), []).append(label)
    return [group for group in groups.values() if len(group) > 1]


def _lookalike_key(label: str) -> str:
    key = unicodedata.normalize("NFKC", label).lower()
    return str(int(key)) if key.isdecimal() else key


def _clean_label(label: str) -> str:
    """A label (or a class name of a class-names file) without surrounding spaces and invisible
    formatting characters (Unicode category Cf: zero-width spaces and joiners, direction marks,
    soft hyphens, BOMs), which would otherwise make ``股票`` and ``股票\u200b`` two classes."""
    if not label.isascii():
        label = "".join(ch for ch in label if unicodedata.category(ch) != "Cf")
    return label.strip()


def _resolve_label(label: str, class_names: Sequence[str], where: str) -> str:
    if label in class_names:
        return label
    if label.isdecimal():
        index = int(label)
        if index < len(class_names):
            return class_names[index]
        raise DataError(f"{where}: label id {index} is out of range; the class-names file has "
                        f"{len(class_names)} classes (ids 0-{len(class_names) - 1})")
    lookalikes = [name for name in class_names if _lookalike_key(name) == _lookalike_key(label)]
    raise DataError(f"{where}: label {label!r} is not a known class"
                    + (f" ({' / '.join(map(repr, lookalikes))} differs in case or width)"
                       if lookalikes else "")
                    + f"; known: {', '.join(class_names)}")


class ClassNames(list):
    """The class names of a class-names file, in its order, and the file they came from
    (``source``), so that a class can be named with its line."""

    def __init__(self, names, source: str):
        super().__init__(names)
        self.source = source


def read_class_names(path: str | Path, encoding: str | None = None) -> ClassNames:
    """One class name per line; line N (from 0) is label id N. Names are cleaned as labels are
    (surrounding spaces and invisible characters removed), so a name and a label that look the
    same are the same class."""
    lines = read_file_text(path, encoding).split("\n")
    while lines and not _clean_label(lines[-1]):
        lines.pop()
    if not lines:
        raise DataError(f"{path}: class-names file is empty; write one class name per line")
    return _checked_class_names(lines, str(path), lambda number: f"{path}:{number}", "lines")


def class_names_of(names, source: str = "classes") -> list[str]:
    """A list of class names given in Python (position N is label id N), checked and cleaned
    as :func:`read_class_names` checks a file's lines."""
    names = list(names)
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise DataError(f"{source}[{index}] is {type(name).__name__}, not str; give the "
                            "class names as strings")
    if not names:
        raise DataError(f"{source}: no class names")
    return list(_checked_class_names(names, source, lambda number: f"{source}[{number - 1}]",
                                     "positions"))


def _checked_class_names(lines: list[str], source: str, where, what: str) -> ClassNames:
    """Cleaned names of ``lines``, refusing an empty or repeated one (``where(N)`` names the
    N-th, from 1)."""
    names = [_clean_label(line) for line in lines]
    first_line: dict = {}
    for number, name in enumerate(names, 1):
        if not name:
            raise DataError(f"{where(number)}: empty class name")
        if name in first_line:
            first = first_line[name]
            cleaned = (", once spaces and invisible characters are removed"
                       if lines[first - 1] != lines[number - 1] else "")
            shown = (f"{what} {first} and {number}" if what == "lines"
                     else f"{what} {first - 1} and {number - 1}")
            raise DataError(f"{where(number)}: class {name!r} is listed twice ({shown}"
                            f"{cleaned}); list each class once")
        first_line[name] = number
    return ClassNames(names, source)
