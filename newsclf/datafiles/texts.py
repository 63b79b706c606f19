"""Texts to classify, read in chunks from any layout :mod:`newsclf.datafiles.layout` opens,
with every column of the file kept."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from newsclf.datafiles.layout import Table, open_table
from newsclf.datafiles.records import json_text
from newsclf.errors import NoTextsError
from newsclf.tokenize import normalize


def open_texts(path: str, *, fmt: str | None = None, text_column=None,
               header: bool | None = None, encoding: str | None = None,
               sheet: str | None = None) -> Table:
    """Open a file of texts to classify (labels, if it has any, are an ordinary column)."""
    return open_table(path, labelled=False, fmt=fmt, header=header, text_column=text_column,
                      encoding=encoding, sheet=sheet)


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file of texts where detection is not wanted or not possible: the layout
    options of every command and function that reads one (``--format``, ``--header``,
    ``--text-column``, ``--sheet``, ``--encoding``; None: detected)."""

    fmt: str | None = None
    header: bool | None = None
    text_column: str | int | None = None
    sheet: str | None = None
    encoding: str | None = None

    def open(self, path: str) -> Table:
        return open_texts(path, **asdict(self))

    def as_arguments(self) -> dict:
        """The options as keyword arguments of the readers."""
        return asdict(self)


def text_chunks(table: Table, chunk_size: int = 10000):
    """Yield ``(frame, text_column)``: DataFrames of every column, unchanged, indexed by the
    line each row starts on, of ``chunk_size`` rows, and the name of the text column. Fields
    are strings, except in JSON lines, whose values are kept as parsed (numbers, true/false,
    None for null or a key left out, lists, dicts) for an output that writes them back as they
    were; :func:`column_texts` gives the texts to classify.

    A file without rows raises :class:`~newsclf.errors.NoTextsError` before anything is
    yielded; one whose texts are all blank (nothing left after
    :func:`~newsclf.tokenize.normalize`: ``echo "$EMPTY" | newsclf predict``) raises it after
    its last chunk, so a writer that commits only at the end (``predict_file``, Dask's parts)
    keeps what was there. Either is far more often a broken upstream step than zero texts to
    label."""
    layout = table.layout
    rows, seen_text = 0, False
    for frame in table.chunks(chunk_size):
        if frame.empty:
            raise NoTextsError(f"{layout.source}: no rows below the header; no texts in it"
                               if layout.header else
                               f"{layout.source}: empty file; no texts in it")
        rows += len(frame)
        seen_text = seen_text or any(normalize(json_text(text))
                                     for text in frame[layout.text_column])
        yield frame, layout.text_column
    if not seen_text:
        what = "key" if layout.format == "jsonl" else "column"
        raise NoTextsError(f"{layout.source}: the text of every row is blank ({rows} "
                           f"row{'s' * (rows > 1)}); no texts in it"
                           + ("" if len(layout.columns) == 1 else
                              f" (--text-column chooses another {what})"))


def read_texts(path: str, *, text_column=None, header: bool | None = None,
               encoding: str | None = None, sheet: str | None = None, log=None) -> list[str]:
    """Every text of a file, read as ``newsclf predict`` reads its input; ``log`` is told the
    layout found."""
    texts = []
    with open_texts(path, text_column=text_column, header=header, sheet=sheet,
                    encoding=encoding) as table:
        if log is not None:
            log(table.layout.describe())
        for frame, column in text_chunks(table):
            texts.extend(column_texts(frame[column]))
    return texts


def column_texts(values) -> list[str]:
    """The texts to classify in a chunk's text column: a JSON lines value that is not a string
    is classified as its text (:func:`~newsclf.datafiles.records.json_text`: ``123``, null an
    empty text)."""
    return list(map(json_text, values))


def iter_input_chunks(path: str, *, fmt: str | None = None, text_column=None,
                      header: bool | None = None, encoding: str | None = None,
                      sheet: str | None = None, chunk_size: int = 10000):
    """:func:`text_chunks` of a file opened with :func:`open_texts`, the text column holding
    the texts to classify (:func:`column_texts`: str, also where a JSON lines value is not)."""
    with open_texts(path, fmt=fmt, text_column=text_column, header=header, encoding=encoding,
                    sheet=sheet) as table:
        for frame, column in text_chunks(table, chunk_size):
            frame[column] = column_texts(frame[column])
            yield frame, column
