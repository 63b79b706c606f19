"""Texts to classify, read in chunks from any layout :mod:`newsclf.datafiles.layout` opens,
with every column of the file kept."""

from __future__ import annotations

from newsclf.datafiles.layout import ReadOptions, Table
from newsclf.datafiles.records import json_text
from newsclf.errors import NoTextsError
from newsclf.tokenize import normalize


def open_texts(path: str, *, fmt: str | None = None, text_column=None,
               header: bool | None = None, encoding: str | None = None,
               sheet: str | None = None, skip_rows: int = 0) -> Table:
    """Open a file of texts to classify (labels, if it has any, are an ordinary column)."""
    return ReadOptions(fmt, header, text_column, sheet, encoding, skip_rows).open(path)


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
               encoding: str | None = None, sheet: str | None = None, skip_rows: int = 0,
               log=None) -> list[str]:
    """Every text of a file, read as ``newsclf predict`` reads its input; ``log`` is told the
    layout found."""
    texts = []
    with open_texts(path, text_column=text_column, header=header, sheet=sheet,
                    encoding=encoding, skip_rows=skip_rows) as table:
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
                      sheet: str | None = None, skip_rows: int = 0, chunk_size: int = 10000):
    """:func:`text_chunks` of a file opened with :func:`open_texts`, the text column holding
    the texts to classify (:func:`column_texts`: str, also where a JSON lines value is not)."""
    with open_texts(path, fmt=fmt, text_column=text_column, header=header, encoding=encoding,
                    sheet=sheet, skip_rows=skip_rows) as table:
        for frame, column in text_chunks(table, chunk_size):
            frame[column] = column_texts(frame[column])
            yield frame, column
