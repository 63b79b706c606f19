"""Which layout a data file has, and opening it as a table: its format, whether its first row
names the columns, and which columns hold the text and the label.

The rules (the same for training, evaluation and prediction):

- **Format** from the extension: ``.csv`` CSV (fields separated by commas, or by tabs or
  semicolons when those, not commas, cut the first lines into the same fields), ``.tsv`` TSV,
  ``.xlsx`` Excel, ``.jsonl`` / ``.ndjson`` / ``.json`` JSON lines. Any other extension
  (``.txt``, none): fastText if most lines start with ``__label__``, JSON lines if the first
  line is a JSON object, TSV if at least 90% of the lines hold a tab, CSV if the first line is
  a comma-separated row holding a usual column name (below), else one text per line, which has
  no header row and no column to choose. ``fmt`` overrides.
- **Header row** (CSV, TSV, Excel): there is one if the first row holds a column name given by
  ``text_column``/``label_column`` or a usual one (``text``, ``title``, ``标题``, ``label``,
  ``category``, ``类别``, ...). Otherwise there is none, unless the first row looks like one
  (a label seen nowhere else in the first rows while the others repeat; in a one-column table,
  a name such as ``news_summary`` or ``新闻全文`` above Chinese texts): that is refused as
  ambiguous. ``header`` overrides.
- **Columns** by name or by position from 1. Without a choice: the usual names; with two
  columns, the one holding labels is the one whose values repeat (or are whole numbers; in a
  file of fewer than ten rows, the much shorter one, else the second) and the other holds the
  text; anything else is refused with the flag that settles it.
"""

from __future__ import annotations

import csv
import functools
import itertools
import os
import re
import stat
from collections import Counter, deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

from newsclf.datafiles import records as rec
from newsclf.datafiles.decoding import (Decoder, byte_blocks, decoded_lines, encoding_name,
                                        open_binary_input)
from newsclf.errors import DataError, NoTextsError

FORMATS = ("csv", "tsv", "xlsx", "jsonl", "fasttext", "lines")
FORMAT_NAMES = {"csv": "CSV", "tsv": "TSV", "xlsx": "Excel", "jsonl": "JSON lines",
                "fasttext": "fastText (__label__NAME text)", "lines": "one text per line"}
_FORMAT_ALIASES = {"txt": "lines", "text": "lines", "json": "jsonl", "ndjson": "jsonl",
                   "excel": "xlsx"}
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".jsonl": "jsonl",
               ".ndjson": "jsonl", ".json": "jsonl"}
_TABLE_FORMATS = ("csv", "tsv", "xlsx")

# the characters of the usual Chinese column names that traditional characters write otherwise
_TRADITIONAL = str.maketrans("标题闻内类别签称语资讯", "標題聞內類別籤稱語資訊")


def _with_traditional(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names``, each followed by its form in traditional characters (``标题``, ``標題``)."""
    return tuple(dict.fromkeys(form for name in names for form in (name, name.translate(
        _TRADITIONAL))))


TEXT_NAMES = _with_traditional(("text", "title", "headline", "content", "sentence", "body",
                                "标题", "新闻标题", "内容", "正文", "文本"))
LABEL_NAMES = _with_traditional(("label", "category", "class", "topic", "类别", "标签", "分类",
                                 "类型", "主题"))
_USUAL_NAMES = set(TEXT_NAMES + LABEL_NAMES)


def _as_names(fields) -> set[str]:
    """Fields read as column names: stripped and in lower case, as names are compared."""
    return {field.strip().lower() for field in fields}


SAMPLE_ROWS = 1000  # rows read ahead to detect the layout
_FEW_ROWS = 10      # fewer rows than this: repeats say little, so lengths decide the label column

Record = rec.Record


def format_named(name: str) -> str:
    """A format name (or one of its usual aliases, e.g. ``txt``) as one of :data:`FORMATS`."""
    value = _FORMAT_ALIASES.get(name.lower(), name.lower())
    if value not in FORMATS:
        raise DataError(f"unknown data format {name!r}; use one of {', '.join(FORMATS)}")
    return value


def column_choice(value) -> str | int | None:
    """A column given by name (text) or by position from 1 (a whole number, or text of digits
    when no column has that name)."""
    if value is None or isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise DataError(f"column positions start at 1, not {value}")
        return value
    raise DataError(f"a column is a name or a position from 1, not {value!r}")


def _position(choice) -> int | None:
    """The position a column choice means when no column has it as its name."""
    if isinstance(choice, int):
        return choice
    if isinstance(choice, str) and choice.strip().isdecimal() and int(choice) >= 1:
        return int(choice)
    return None


@dataclass(frozen=True)
class Layout:
    """How a file was read: its format, columns (names from the header row, or given by role:
    ``text``, ``label``, ``columnN``), the text and label columns, header row, encoding."""

    source: str
    format: str
    columns: tuple[str, ...]
    text_index: int
    label_index: int | None
    header: bool | None = None  # None: the format has no header row
    encoding: str | None = None  # None: not a text file (Excel)
    sheet: str | None = None
    delimiter: str = ","  # CSV only
    skipped_rows: int = 0  # rows above the table left out (--skip-rows)

    @property
    def text_column(self) -> str:
        return self.columns[self.text_index]

    @property
    def label_column(self) -> str | None:
        return None if self.label_index is None else self.columns[self.label_index]

    def describe(self) -> str:
        """One line saying how the file is read, e.g. ``train.tsv: read as TSV without a header
        row, label<TAB>text, UTF-8``."""
        parts = [FORMAT_NAMES[self.format] + (f" sheet {self.sheet!r}" if self.sheet else "")]
        if self.format == "csv" and self.delimiter != ",":
            parts[0] += f" separated by {_DELIMITER_NAMES[self.delimiter]}"
        if self.header is not None:
            parts[0] += " with a header row" if self.header else " without a header row"
        if self.skipped_rows:
            unit = "row" if self.format == "xlsx" else "line"
            parts[0] += f" below its first {self.skipped_rows} {unit}{'s' * (self.skipped_rows > 1)}"
        if self.format in _TABLE_FORMATS or self.format == "jsonl":
            parts.append(self._columns_described())
        if self.encoding:
            parts.append(self.encoding)
        return f"{self.source}: read as {', '.join(parts)}"

    def _columns_described(self) -> str:
        roles = {index: role for index, role in ((self.text_index, "text"),
                                                 (self.label_index, "label")) if index is not None}
        if not self.header and self.format != "jsonl":
            if len(self.columns) <= 2 and len(roles) == len(self.columns):
                separator = {"csv": self.delimiter.replace("\t", "<TAB>"),
                             "tsv": "<TAB>"}.get(self.format, " | ")
                return separator.join(roles[i] for i in range(len(self.columns)))
            return ", ".join(f"{role} in column {i + 1}" for i, role in roles.items())
        key = "key" if self.format == "jsonl" else "column"
        return ", ".join(f"{role} {key} {self.columns[i]!r}" for i, role in roles.items())


class Table:
    """An open data file: its :class:`Layout`, an estimate of its rows (for progress bars,
    counted only when asked for: readers that need no estimate do not read the file twice),
    and its rows as ``(line, fields)`` with one field per column: text, except in JSON lines
    opened to label, whose values are kept as parsed (numbers, true/false, None for null or a
    key left out, lists, dicts). Close it (or use ``with``)."""

    def __init__(self, layout: Layout, rows: Iterator[Record], count_rows, closer):
        self.layout, self.rows = layout, rows
        self._count_rows, self._closer = count_rows, closer

    @functools.cached_property
    def expected_rows(self) -> int | None:
        """About how many rows the file has (None when that cannot be known in advance)."""
        count = self._count_rows()
        return None if count is None else max(0, count - bool(self.layout.header))

    def close(self) -> None:
        self._closer()

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def chunks(self, size: int):
        """The rows as DataFrames of their fields (every column, indexed by line; object
        dtype) of ``size`` rows; one empty frame for a file without rows."""
        import pandas as pd

        columns = list(self.layout.columns)
        produced = False
        while True:
            batch = list(itertools.islice(self.rows, size))
            if not batch and produced:
                return
            produced = True
            lines = [line for line, _ in batch]
            yield pd.DataFrame([fields for _, fields in batch], columns=columns, index=lines,
                               dtype=object)
            if len(batch) < size:
                return


@dataclass(frozen=True)
class ReadOptions:
    """How to read a data file where detection is not wanted or not possible: the layout options
    of every command and function that reads one (``--format``, ``--header``,
    ``--text-column``, ``--sheet``, ``--encoding``, ``--skip-rows``; None: detected)."""

    fmt: str | None = None
    header: bool | None = None
    text_column: str | int | None = None
    sheet: str | None = None
    encoding: str | None = None
    skip_rows: int = 0

    def open(self, path: str | Path) -> "Table":
        """Open a file of texts to classify (labels, if it has any, are an ordinary column)."""
        return open_table(path, labelled=False, **self.as_arguments())

    def as_arguments(self) -> dict:
        """The options as keyword arguments of the readers."""
        return asdict(self)


@dataclass(frozen=True)
class _Request:
    """What the caller of :func:`open_table` asked for, as the detection functions use it."""

    source: str
    labelled: bool
    fmt: str | None
    header: bool | None
    text_choice: str | int | None
    label_choice: str | int | None
    sheet: str | None
    skip_rows: int


def open_table(path: str | Path, *, labelled: bool, fmt: str | None = None,
               header: bool | None = None, text_column=None, label_column=None,
               encoding: str | None = None, sheet: str | None = None,
               skip_rows: int = 0) -> Table:
    """Open a data file with the layout rules of the module docstring. ``labelled``: the file
    must have a label column (training and evaluation data); the other arguments are
    :class:`ReadOptions`' and ``label_column``."""
    options = ReadOptions(fmt, header, text_column, sheet, encoding, skip_rows)
    source = str(path)
    fmt = format_named(options.fmt) if options.fmt else _EXTENSIONS.get(Path(source).suffix.lower())
    if Path(source).suffix.lower() == ".xls" and fmt is None:
        raise DataError(f"{source}: an old binary Excel file; save it as .xlsx (or as CSV)")
    skip_rows = options.skip_rows
    if isinstance(skip_rows, bool) or not isinstance(skip_rows, int) or skip_rows < 0:
        raise DataError(f"--skip-rows must be a whole number of rows, 0 or more, not {skip_rows!r}")
    request = _Request(source, labelled, fmt, options.header, column_choice(options.text_column),
                       column_choice(label_column), options.sheet, skip_rows)
    if fmt == "xlsx":
        return _open_sheet_table(request)
    # a layout option that cannot apply to the one file of texts is refused; labelled data
    # comes in several files (training, dev) that the same options are given for
    if options.sheet is not None and not labelled:
        raise DataError(f"--sheet: {'<stdin>' if source == '-' else source} is not an Excel "
                        "workbook (.xlsx); leave out --sheet")
    handle, source = open_binary_input(source)
    request = replace(request, source=source)
    try:
        decoder = Decoder(source, options.encoding)
        lines = itertools.islice(decoded_lines(byte_blocks(handle), decoder), skip_rows, None)
        head = list(itertools.islice(lines, SAMPLE_ROWS))
        lines = itertools.chain(head, lines)
        if fmt is None:
            request = replace(request, fmt=_sniff_format(head, [
                choice for choice in (request.text_choice, request.label_choice)
                if isinstance(choice, str)]))
        if request.header and request.fmt in ("jsonl", "fasttext", "lines") and (
                fmt or not labelled):
            raise DataError(f"--header: {source} is read as {FORMAT_NAMES[request.fmt]}, which "
                            "has no header row; remove its first line, or pass --format csv or "
                            "--format tsv if it is a table")
        layout, rows = _text_table(request, lines, head, encoding_name(decoder))
    except BaseException:
        handle.close()
        raise
    return Table(layout, rows, lambda: _count_lines(path, skip_rows), handle.close)


def _count_lines(path, skipped: int = 0) -> int | None:
    """The lines of a regular file below the ``skipped`` ones, for the progress bar; None for
    standard input, a pipe or a device (reading it again would take the rows from the
    reader)."""
    if str(path) == "-" or not stat.S_ISREG(os.stat(path).st_mode):
        return None
    count = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            count += block.count(b"\n")
    return max(0, count - skipped)


def _sniff_format(head: Sequence[str], names: Sequence[str] = ()) -> str:
    """The format of a file whose extension does not say it, from its first lines; ``names``
    are the columns asked for by name."""
    lines = [line for line in head if line.strip()]
    if not lines:
        return "lines"
    if sum(line.startswith(rec.FASTTEXT_PREFIX) for line in lines) * 2 > len(lines):
        return "fasttext"
    if rec.looks_like_jsonl(lines[0]):
        return "jsonl"
    if sum("\t" in line for line in lines) >= 0.9 * len(lines):
        return "tsv"
    try:
        with rec.unlimited_fields():
            rows = list(csv.reader(lines))
    except csv.Error:
        return "lines"
    named = _USUAL_NAMES | _as_names(names)
    if len(rows[0]) > 1 and _as_names(rows[0]) & named and sum(
            len(row) == len(rows[0]) for row in rows[1:]) >= 0.9 * (len(rows) - 1):
        return "csv"  # a CSV with a header row (e.g. on standard input): not texts to label
    return "lines"


def _no_labels(source: str, head: Sequence[str], first_line: int = 1) -> DataError:
    untabbed = [number for number, line in enumerate(head, first_line)
                if line.strip() and "\t" not in line]
    if 0 < len(untabbed) < sum(1 for line in head if line.strip()):
        return DataError(f"{source}:{untabbed[0]}: no tab, and {len(untabbed)} of the first "
                         f"{len(head)} lines have none; each line must be 'text<TAB>label' (or "
                         "'label<TAB>text'), or pass --format")
    return DataError(f"{source}: read as one text per line, so it has no labels; labelled data is "
                     "text<TAB>label lines, a CSV, Excel or JSON lines file with a label column, "
                     "or fastText's '__label__NAME text' lines (--format sets the format)")


def _text_table(request: _Request, lines, head, encoding):
    source, fmt, labelled = request.source, request.fmt, request.labelled
    first_line = request.skip_rows + 1
    if fmt == "lines":
        if labelled:
            raise _no_labels(source, head, first_line)
        first = next((line.strip() for line in head if line.strip()), "")
        if first.lower() in _USUAL_NAMES:
            raise DataError(f"{source}: its first line ({first!r}) is a column name, and a file "
                            "of one text per line has no header row: remove that line, or pass "
                            "--format csv")
        text_choice = request.text_choice
        if text_choice is not None and str(text_choice).strip().lower() != "text" \
                and _position(text_choice) != 1:
            raise DataError(f"--text-column: {source} is read as one text per line, a single "
                            f"column, so there is no column {text_choice!r}; leave out "
                            "--text-column, or pass --format csv or --format tsv if it is a "
                            "table")
        return _layout(request, ("text",), 0, None, encoding=encoding), \
            rec.text_line_records(lines, first_line)
    if fmt == "fasttext":
        return _layout(request, rec.FASTTEXT_COLUMNS, 1, 0, encoding=encoding), \
            rec.fasttext_records(lines, source, labelled, first_line)
    if fmt == "jsonl":
        columns, records = rec.jsonl_records(lines, source, first_line)
        if not columns:
            raise _empty(source, labelled)
        text_index, label_index = _named_columns(request, columns, [], "key")
        if labelled:  # texts and labels; a file to label keeps its values for the output
            records = ((line, [rec.json_text(value) for value in values])
                       for line, values in records)
        return _layout(request, tuple(columns), text_index, label_index,
                       encoding=encoding), records
    if fmt == "tsv":
        records, delimiter = rec.tsv_records(lines, source, first_line), ","
    else:
        named = [choice for choice in (request.text_choice, request.label_choice)
                 if isinstance(choice, str)]
        delimiter = _csv_delimiter(head, named)
        records = rec.csv_records(lines, source, delimiter, first_line)
    return _table(request, records, encoding=encoding, delimiter=delimiter)


def _layout(request: _Request, columns, text_index, label_index, **found) -> Layout:
    return Layout(request.source, request.fmt, tuple(columns), text_index, label_index,
                  skipped_rows=request.skip_rows, **found)


_DELIMITER_NAMES = {",": "commas", "\t": "tabs", ";": "semicolons"}


def _csv_delimiter(head: Sequence[str], named: Sequence[str] = ()) -> str:
    """The field separator of a CSV file: the first of comma, tab and semicolon that cuts the
    first line into the ``named`` columns (the ones the user chose by name), exactly or as
    names are compared; else the first that cuts it into two fields or more, either usual
    column names or as many fields as it cuts at least 90% of the first lines into (a
    spreadsheet saved with another separator under the name ``.csv``); a comma if none does."""
    lines = [line for line in head if line.strip()]
    cut = {}
    for delimiter in _DELIMITER_NAMES:
        try:
            with rec.unlimited_fields():
                cut[delimiter] = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
    for fits in (lambda names, first: set(names) <= set(first),
                 lambda names, first: _as_names(names) <= _as_names(first)):
        for delimiter, rows in cut.items():
            if named and rows and fits(named, rows[0]):
                return delimiter
    for delimiter, rows in cut.items():
        if len(rows) < 2 or len(rows[0]) < 2:
            continue
        if _as_names(rows[0]) & _USUAL_NAMES or sum(
                len(row) == len(rows[0]) for row in rows[1:]) >= 0.9 * (len(rows) - 1):
            return delimiter
    return ","


def _open_sheet_table(request: _Request) -> Table:
    from newsclf.datafiles.excel import FormulaCells, open_sheet, sheet_records

    source, sheet = request.source, request.sheet
    workbook, worksheet = open_sheet(source, sheet)
    others = [name for name in workbook.sheetnames if name != worksheet.title]

    def naming_the_sheets(exc: DataError) -> DataError:
        """``exc``, saying which sheet was read when the first was taken by default."""
        if sheet is None and others:
            return DataError(f"{exc} (read sheet {worksheet.title!r}; the workbook also has "
                             f"{', '.join(map(repr, others))}: --sheet picks one)")
        return exc

    def checked(rows):  # a row's problem is found while the rows stream
        try:
            yield from rows
        except DataError as exc:
            raise naming_the_sheets(exc) from None

    try:
        rows_in_dimension = worksheet.max_row  # from the file's own note, which may be wrong
        worksheet.reset_dimensions()  # so every row and column is read, whatever the note says
        read_as_empty: deque = deque()
        records = sheet_records(worksheet, request.skip_rows + 1, read_as_empty)
        if sheet is None and others:
            records = _refuse_a_note(records, source, worksheet.title)
        layout, rows = _table(request, records, sheet=worksheet.title)
        formulas = FormulaCells(source, worksheet.title)
        rows = formulas.refused(rows, [index for index in (layout.text_index, layout.label_index)
                                       if index is not None], read_as_empty)
    except DataError as exc:
        workbook.close()
        raise naming_the_sheets(exc) from None
    except BaseException:
        workbook.close()
        raise

    def close():
        formulas.close()
        workbook.close()

    return Table(layout, checked(rows), lambda: None if rows_in_dimension is None else max(
        0, rows_in_dimension - request.skip_rows), close)


_NOTE_CELLS = 2  # a first sheet of this many filled cells or fewer is a note, not a table


def _refuse_a_note(records, source: str, title: str):
    """The rows of a workbook's first sheet, read when no sheet was chosen, unless they are a
    note of one or two cells (a title, "see the next sheet") under no usual column name
    (``标题``, ``text``...): labelling that would be a
    silent mistake, refused with the other sheets named (by the caller)."""
    head = list(itertools.islice(records, _NOTE_CELLS + 1))
    filled = sum(sum(bool(field.strip()) for field in fields) for _, fields in head)
    if 0 < filled <= _NOTE_CELLS and not _as_names(head[0][1]) & _USUAL_NAMES:
        raise DataError(f"{source}: sheet {title!r} holds only {filled} filled "
                        f"cell{'s' * (filled > 1)}, a note rather than a table")
    return itertools.chain(head, records)


def _empty(source: str, labelled: bool, sheet: str | None = None) -> DataError:
    where, what = (source, "file") if sheet is None else (f"{source} (sheet {sheet!r})", "sheet")
    return DataError(f"{where}: no examples (the {what} is empty)") if labelled \
        else NoTextsError(f"{where}: empty {what}; no texts in it")


def _table(request: _Request, records, *, encoding=None, sheet=None, delimiter=","):
    """The layout and rows of a CSV, TSV or Excel table (see the module docstring)."""
    source, fmt, labelled = request.source, request.fmt, request.labelled
    sample = list(itertools.islice(records, SAMPLE_ROWS))
    if not sample:
        raise _empty(source, labelled, sheet)
    first_line, first = sample[0]
    choices = (request.text_choice, request.label_choice)
    named = [choice for choice in choices if isinstance(choice, str) and _position(choice) is None]
    header = request.header
    if header is None:
        names = _as_names(first)
        header = bool(_as_names(named) & names or names & _USUAL_NAMES)
    if header:
        _refuse_repeated_names(first, source, first_line)
        columns = list(first)
        data = sample[1:]
        text_index, label_index = _named_columns(request, columns, data, "column",
                                                 request.header is not None)
    else:
        named = [c for c in choices if c is not None and _position(c) is None]
        if named:
            raise DataError(f"{source}: without a header row, columns are chosen by position "
                            f"from 1 (e.g. --text-column 2), not by name "
                            f"({', '.join(map(repr, named))})")
        data = sample
        width = _headerless_width(fmt, data)
        text_index, label_index = _positional_columns(request, width, data)
        if request.header is None and label_index is not None:
            _refuse_header_lookalike(data, label_index, source, first_line, width)
        elif request.header is None and width == 1:
            _refuse_text_header_lookalike(data, source, first_line)
        columns = [f"column{i + 1}" for i in range(width)]
        columns[text_index] = "text"
        if label_index is not None:
            columns[label_index] = "label"
    layout = _layout(request, columns, text_index, label_index, header=header,
                     encoding=encoding, sheet=sheet, delimiter=delimiter)
    width = len(columns)
    joined = text_index if fmt == "tsv" and width == 2 else None
    rows = _fitted(itertools.chain(data, records), width, source, fmt,
                   tuple(columns) if header else None, joined, delimiter)
    return layout, rows


def _refuse_repeated_names(names: Sequence[str], source: str, line: int) -> None:
    counts = Counter(names)
    repeated = [name for name in counts if name and counts[name] > 1]
    if repeated:
        raise DataError(f"{source}:{line}: column name(s) {', '.join(map(repr, repeated))} "
                        "appear more than once in the header; give every column its own name")


def column_list(header: Sequence[str], shown: int = 10, width: int = 30) -> str:
    """The column names for a message, each cut to ``width`` characters."""
    names = [repr(name if len(name) <= width else name[:width] + "…") for name in header[:shown]]
    return ", ".join(names) + (f", ... ({len(header)} columns)" if len(header) > shown else "")


def _named_columns(request: _Request, columns, data, key, header_given=True):
    """Text and label column indexes in a file whose columns have names."""
    source, labelled = request.source, request.labelled
    text_choice, label_choice = request.text_choice, request.label_choice
    flags = ("--text-column", "--label-column")

    def by_choice(choice, role):  # digits are a position, unless a column has them as its name
        if (choice not in columns or not header_given) and _position(choice) is not None:
            choice = _position(choice)
        if isinstance(choice, int):
            if choice > len(columns):
                raise DataError(f"{source}: no {key} {choice}; it has {len(columns)} "
                                f"({column_list(columns)})")
            return choice - 1
        matches = [i for i, name in enumerate(columns) if name == choice] or \
                  [i for i, name in enumerate(columns) if name.strip().lower() == choice.lower()]
        if not matches:
            from_one = " (positions start at 1)" if choice.strip() == "0" else ""
            raise DataError(f"{source}: no {key} {choice!r} for the {role}; the {key}s are "
                            f"{column_list(columns)}{from_one}")
        return matches[0]

    def usual(names, role, flag, exclude=None):
        for name in names:  # the first usual name wins, e.g. "text" over "title"
            matches = [i for i, column in enumerate(columns)
                       if column.strip().lower() == name and i != exclude]
            if matches:
                others = [columns[i] for i, column in enumerate(columns) if i not in matches
                          and i != exclude and column.strip().lower() in names]
                if others:
                    raise DataError(f"{source}: {key}s {columns[matches[0]]!r} and "
                                    f"{others[0]!r} could both hold the {role}; pass {flag} NAME")
                return matches[0]
        return None

    text_index = by_choice(text_choice, "text") if text_choice is not None else \
        usual(TEXT_NAMES, "text", flags[0])
    label_index = None
    if label_choice is not None:
        label_index = by_choice(label_choice, "label")
    elif labelled or len(columns) == 2:
        label_index = usual(LABEL_NAMES, "label", flags[1], exclude=text_index)
    if len(columns) == 2 and key == "column":
        if text_index is None and label_index is not None:
            text_index = 1 - label_index
        elif text_index is None:
            label_side = _label_side(data)
            if label_side is not None:
                text_index, label_index = 1 - label_side, label_side
        elif label_index is None and labelled:
            label_index = 1 - text_index
    if text_index is None:
        if len(columns) == 1 and not labelled:
            return 0, None
        raise DataError(f"{source}: no {key} named like a text ({', '.join(TEXT_NAMES[:4])}, "
                        f"...); its {key}s are {column_list(columns)}; pass {flags[0]} NAME")
    if labelled and label_index is None:
        raise DataError(f"{source}: no {key} named like a label ({', '.join(LABEL_NAMES[:4])}, "
                        f"...); its {key}s are {column_list(columns)}; pass {flags[1]} NAME")
    if label_index == text_index:
        raise DataError(f"{source}: the text and the label cannot be the same {key} "
                        f"({columns[text_index]!r})")
    return text_index, label_index


def _headerless_width(fmt: str, data: Sequence[Record]) -> int:
    """Columns of a file without a header row: the usual field count of its first rows (a TSV
    of two columns may have tabs inside its text)."""
    counts = Counter(len(fields) for _, fields in data)
    if fmt == "tsv" and 2 in counts and min(counts) >= 2:
        return 2
    return counts.most_common(1)[0][0]


def _positional_columns(request: _Request, width, data):
    """Text and label column indexes in a file without a header row (its columns chosen by
    position)."""
    source, labelled = request.source, request.labelled
    text_choice, label_choice = _position(request.text_choice), _position(request.label_choice)
    for choice in (text_choice, label_choice):
        if choice is not None and choice > width:
            raise DataError(f"{source}: no column {choice}; the rows have {width} "
                            f"field{'s' * (width != 1)}")
    text_index = None if text_choice is None else text_choice - 1
    label_index = None if label_choice is None else label_choice - 1
    if width == 1:
        if labelled:
            raise DataError(f"{source}: one column and no header row, so no labels; labelled "
                            "data has a text and a label on each row (e.g. text<TAB>label)")
        return 0, None
    if width == 2:
        if text_index is None and label_index is None:
            label_index = _label_side(data)
            if label_index is None and len(data) < _FEW_ROWS:
                label_index = 1  # too few rows to tell: the usual text<TAB>label
            elif label_index is None:
                flag = "--label-column" if labelled else "--text-column"
                raise DataError(f"{source}: cannot tell which of its 2 columns holds the "
                                f"labels and which the text; pass {flag} 1 or {flag} 2 "
                                "(positions from 1)")
        if text_index is None:
            text_index = 1 - label_index
        if label_index is None and labelled:
            label_index = 1 - text_index
    elif text_index is None or (labelled and label_index is None):
        wanted = "--text-column N --label-column M" if labelled else "--text-column N"
        raise DataError(f"{source}: {width} columns and no header row; say which hold the text"
                        f"{' and the label' * labelled}: {wanted} (positions from 1), or their "
                        "names if the first row names the columns")
    if text_index == label_index:
        raise DataError(f"{source}: the text and the label cannot be the same column "
                        f"({text_index + 1})")
    return text_index, label_index


def _label_side(data: Sequence[Record]) -> int | None:
    """Which of two columns holds labels (0 or 1), or None when it is not clear: the column of
    whole numbers beside text; else the short column whose values repeat (at most half as many
    distinct values as the other); in a file of fewer than ten rows, the column at most half as
    long as the other (and, if neither is, the second). Empty values (errors reported later,
    with their line) are left out."""
    columns = [[fields[i].strip() for _, fields in data if len(fields) > 1 and fields[i].strip()]
               for i in (0, -1)]  # a TSV text may hold tabs: its label is the first or last field
    if not columns[0] or not columns[1]:
        return None
    numeric = [all(value.isdecimal() for value in column) for column in columns]
    if numeric[0] != numeric[1]:
        return numeric.index(True)
    distinct = [len(set(column)) for column in columns]
    mean_length = [sum(map(len, column)) / len(column) for column in columns]
    short = [max(map(len, column)) <= 30 for column in columns]
    few_rows = len(data) < _FEW_ROWS
    sides = [i for i in (0, 1) if short[i] and (
        mean_length[i] * 2 <= mean_length[1 - i] if few_rows
        else distinct[i] * 2 <= distinct[1 - i])]
    return sides[0] if len(sides) == 1 else None


def _refuse_header_lookalike(data, label_index, source, line, width) -> None:
    """A first row whose label is seen nowhere else in the first rows, where the other labels
    repeat, is probably a header with unusual names: ambiguous, so refused."""
    if len(data) < _FEW_ROWS:
        return
    labels = [fields[label_index].strip() for _, fields in data if len(fields) == width]
    counts = Counter(labels)
    if counts[labels[0]] == 1 and len(counts) * 2 <= len(labels):
        names = ", ".join(repr(field) for field in data[0][1])
        raise DataError(f"{source}:{line}: the first row ({names}) looks like a header row: pass "
                        "--header to read it as column names, or --no-header to read it as data")


def _refuse_text_header_lookalike(data, source, line) -> None:
    """A one-column table whose first row reads as a column name, not as news, while the rows
    below it are Chinese texts: an identifier (``news_summary``, ``News Text``) or a short
    Chinese name ending in a word such names end in (``新闻全文``, ``摘要``). Probably a
    header of an unusual name: ambiguous, so refused rather than labelled as a text. A short
    or Latin headline (``中国女排夺冠``, ``5G``) is read as one."""
    first, below = data[0][1][0].strip(), [fields[0].strip() for _, fields in data[1:]]
    if not below or sum(map(_has_chinese, below)) < 0.9 * len(below):
        return
    if _IDENTIFIER.fullmatch(first) or (len(first) <= 8 and first.endswith(_NAME_ENDINGS)):
        raise DataError(f"{source}:{line}: the first row ({column_list([first])}) looks like "
                        "a column name: "
                        "pass --header to read it as one, or --no-header to read it as a text")


# what the first row of a one-column table is when it names the column
_IDENTIFIER = re.compile(r"[A-Za-z][a-z0-9]*(?:[_\- ][A-Za-z][a-z0-9]*)*")
_NAME_ENDINGS = _with_traditional(("内容", "标题", "正文", "文本", "摘要", "新闻", "全文", "名称",
                                   "题目", "句子", "语料", "文章", "资讯"))


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def _fitted(records, width, source, fmt, header, joined, delimiter=","):
    """Rows with ``width`` fields. A two-column TSV keeps tabs inside its text column
    (``joined``): the other column is cut at the first or last tab. Excel rows may end early
    (empty cells); other rows must have one field per column. A row that repeats the header
    (files joined one after another) is refused."""
    kind = FORMAT_NAMES[fmt] if fmt != "xlsx" else "Excel sheet"
    header_names = _as_names(header) if header is not None else set()
    for line, fields in records:
        if len(fields) != width:
            if joined is not None and len(fields) > width:
                fields = (["\t".join(fields[:-1]), fields[-1]] if joined == 0
                          else [fields[0], "\t".join(fields[1:])])
            elif fmt == "xlsx" and len(fields) < width:
                fields = fields + [""] * (width - len(fields))
            else:
                raise _field_count_error(source, kind, line, len(fields), width, header,
                                         delimiter)
        if header_names and tuple(field.lstrip("\ufeff") for field in fields) == header and (
                fields[0].startswith("\ufeff") or header_names & _USUAL_NAMES):
            raise DataError(f"{source}:{line}: this row repeats the header row (files joined "
                            "one after another?); remove it")
        yield line, fields


def _field_count_error(source, kind, line, count, expected, header,
                       delimiter=",") -> DataError:
    if kind == "TSV" and expected == 2 and count == 1:
        return DataError(f"{source}:{line}: no tab; each line must be 'text<TAB>label' (or "
                         "'label<TAB>text')")
    if count < expected:
        fix = "give every row one field per column (empty fields too)"
    elif kind == "CSV":
        fix = f"put a field that contains {_DELIMITER_NAMES[delimiter]} in double quotes"
    elif kind == "TSV":
        fix = "a TSV field cannot contain a tab: remove it, or save the file as CSV"
    else:
        fix = "remove the cells beyond the header's columns"
    having = "the header has" if header is not None else "the first rows have"
    return DataError(f"{source}: malformed {kind} at line {line}: {count} field"
                     f"{'s' * (count != 1)}, but {having} {expected}; {fix}")
