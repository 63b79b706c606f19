"""Reading labelled data (TSV, CSV; UTF-8, UTF-8-BOM, GBK/GB18030) and batching encoded texts.

Formats, by file extension (``fmt`` overrides):

- ``.tsv`` / ``.txt``: ``text<TAB>label`` per line, no header (a first line ``text<TAB>label``
  is skipped). The label is a class name, or an integer id when a class-names file (one name
  per line, line N = id N) is given.
- ``.csv``: a header row; the text and label columns are chosen by name.
"""

from __future__ import annotations

import codecs
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from newsclf.errors import DataError
from newsclf.vocab import PAD_ID


@dataclass
class LabelledData:
    texts: list[str]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def detect_encoding(head: bytes, source: str, complete: bool = False) -> str:
    """The encoding of a file from its first bytes (or all of them, ``complete``): UTF-8 with
    a BOM, else UTF-8, else GB18030 (a superset of GBK). NUL bytes mean binary or UTF-16."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{source}:{_line_of(head, nul)}: contains NUL bytes; this looks like a "
                        "binary or UTF-16 file; save it as UTF-8 text")
    first_error = None
    for encoding in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=complete)
            return encoding
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    raise DataError(f"{source}:{_line_of(head, first_error.start)}: cannot decode as UTF-8 or "
                    "GBK/GB18030; pass --encoding with the file's encoding")


def _check_encoding_name(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; try utf-8, utf-8-sig or gb18030") from None


def decode_bytes(raw: bytes, path: str, encoding: str | None = None) -> str:
    """Decode a whole file with the given encoding, or the detected one (``None``/``auto``).
    Errors name the file and line."""
    if encoding in (None, "auto"):
        encoding = detect_encoding(raw, path, complete=True)
    else:
        _check_encoding_name(encoding)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{_line_of(raw, exc.start)}: not valid {encoding} "
                        f"(byte {raw[exc.start]:#04x}); check the file's encoding") from None
    return text.removeprefix("\ufeff")


def read_file_text(path: str | Path, encoding: str | None = None) -> str:
    """The decoded text of a file (``-``: standard input)."""
    handle, source = open_binary_input(str(path))
    with handle:
        raw = handle.read()
    return decode_bytes(raw, source, encoding)


def read_class_names(path: str | Path, encoding: str | None = None) -> list[str]:
    """One class name per line; line N (from 0) is label id N."""
    names = [line.strip() for line in read_file_text(path, encoding).split("\n")]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DataError(f"{path}: class-names file is empty; write one class name per line")
    for number, name in enumerate(names, 1):
        if not name:
            raise DataError(f"{path}:{number}: empty class name")
        if names.index(name) != number - 1:
            raise DataError(f"{path}:{number}: class {name!r} is listed twice")
    return names


def detect_format(path: str | Path) -> str:
    return "csv" if Path(path).suffix.lower() == ".csv" else "tsv"


def read_labelled(path: str | Path, class_names: Sequence[str] | None = None, *,
                  fmt: str | None = None, text_column: str = "text", label_column: str = "label",
                  encoding: str | None = None) -> LabelledData:
    """Read texts and their class names from a TSV or CSV file (see the module docstring).

    With ``class_names``, integer labels are ids into it and name labels must be in it.
    """
    fmt = fmt or detect_format(path)
    text = read_file_text(path, encoding)
    if fmt == "csv":
        rows = _csv_rows(text, str(path), text_column, label_column)
    elif fmt == "tsv":
        rows = _tsv_rows(text, str(path))
    else:
        raise DataError(f"unknown data format {fmt!r}; use tsv or csv")
    texts, labels = [], []
    for line, row_text, label in rows:
        if not label:
            raise DataError(f"{path}:{line}: empty label")
        if class_names is not None:
            label = _resolve_label(label, class_names, f"{path}:{line}")
        texts.append(row_text)
        labels.append(label)
    if not texts:
        raise DataError(f"{path}: no examples found; expected lines 'text<TAB>label'"
                        if fmt == "tsv" else f"{path}: no rows below the header")
    return LabelledData(texts, labels, str(path))


def _resolve_label(label: str, class_names: Sequence[str], where: str) -> str:
    if label in class_names:
        return label
    if label.isdigit():
        index = int(label)
        if index < len(class_names):
            return class_names[index]
        raise DataError(f"{where}: label id {index} is out of range; the class-names file has "
                        f"{len(class_names)} classes (ids 0-{len(class_names) - 1})")
    raise DataError(f"{where}: label {label!r} is not a known class; known: "
                    f"{', '.join(class_names)}")


def _tsv_rows(text: str, path: str) -> Iterator[tuple[int, str, str]]:
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataError(f"{path}:{number}: no tab; each line must be 'text<TAB>label'")
        row_text, label = line.rsplit("\t", 1)
        if number == 1 and row_text.strip().lower() == "text" and label.strip().lower() == "label":
            continue
        if not row_text.strip():
            raise DataError(f"{path}:{number}: empty text before the tab")
        yield number, row_text, label.strip()


def _csv_rows(text: str, path: str, text_column: str, label_column: str):
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty CSV file; expected a header and rows") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed CSV ({str(exc).strip()})") from None
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column {', '.join(map(repr, missing))}; columns are "
                        f"{', '.join(map(repr, frame.columns))} (use --text-column/--label-column)")
    for index, (row_text, label) in enumerate(zip(frame[text_column], frame[label_column])):
        if not row_text.strip():
            raise DataError(f"{path}:{index + 2}: empty text in column {text_column!r}")
        yield index + 2, row_text, label.strip()


def pad_batch(encoded: Sequence[np.ndarray]) -> np.ndarray:
    """Stack encoded texts ``[length_i, n_features]`` into ``[batch, longest, n_features]``,
    padded with ``[PAD]``; the padding mask is ``ids[:, :, 0] != PAD_ID``."""
    longest = max(len(ids) for ids in encoded)
    batch = np.full((len(encoded), longest, encoded[0].shape[1]), PAD_ID, dtype=np.int64)
    for row, ids in enumerate(encoded):
        batch[row, :len(ids)] = ids
    return batch


def padding_mask(batch: np.ndarray) -> np.ndarray:
    """True where a position holds a token, False on padding: ``[batch, length]``."""
    return batch[:, :, 0] != PAD_ID


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches of texts of similar length (less padding), covering every index once."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def encode_texts(tokenizer, vocab, texts: Sequence[str], max_len: int) -> list[np.ndarray]:
    """Tokenize and encode each text to ids ``[length, n_features]`` (see :mod:`newsclf.vocab`)."""
    return [vocab.encode(tokenizer.features(text), max_len, tokenizer.n_features)
            for text in texts]


# --- streaming unlabelled input for prediction ---------------------------------------------

PREDICT_FORMATS = ("csv", "tsv", "txt")


def detect_predict_format(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return {".tsv": "tsv", ".txt": "txt"}.get(suffix, "csv")


def open_binary_input(path: str):
    """A buffered binary stream for a path, or standard input for ``-``."""
    if path == "-":
        return io.BufferedReader(sys.stdin.buffer, buffer_size=1 << 16), "<stdin>"
    try:
        return open(path, "rb"), path
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def iter_input_chunks(path: str, *, fmt: str | None = None, text_column: str = "text",
                      encoding: str | None = None, chunk_size: int = 10000):
    """Read texts to classify in chunks of ``chunk_size`` rows, keeping every input column.

    Yields ``(frame, text_column)``: a DataFrame of strings (all columns, unchanged) and the name
    of the text column. Formats: ``csv`` (header; comma), ``tsv`` (header; tab, no quoting),
    ``txt`` (one text per line, column ``text``). Encoding detected unless given.
    """
    import pandas as pd

    fmt = fmt or detect_predict_format(path)
    if fmt not in PREDICT_FORMATS:
        raise DataError(f"unknown input format {fmt!r}; use {', '.join(PREDICT_FORMATS)}")
    raw, source = open_binary_input(path)
    with raw:
        head = raw.peek(1 << 16)[: 1 << 16] if hasattr(raw, "peek") else b""
        if encoding in (None, "auto"):
            encoding = detect_encoding(head, source)
        else:
            _check_encoding_name(encoding)
        text_stream = io.TextIOWrapper(raw, encoding=encoding, newline="")
        row = 0
        try:
            if fmt == "txt":
                lines = []
                for line in text_stream:
                    lines.append(line.rstrip("\r\n"))
                    if len(lines) == chunk_size:
                        yield pd.DataFrame({"text": lines}, dtype=object), "text"
                        row += len(lines)
                        lines = []
                if lines or row == 0:
                    yield pd.DataFrame({"text": lines}, dtype=object), "text"
                return
            options = dict(dtype=str, keep_default_na=False, chunksize=chunk_size)
            if fmt == "tsv":
                options.update(sep="\t", quoting=3)  # csv.QUOTE_NONE: quotes are text
            try:
                reader = pd.read_csv(text_stream, **options)
            except pd.errors.EmptyDataError:
                raise DataError(f"{source}: empty file; expected a header row and texts") from None
            with reader:
                for frame in reader:
                    if text_column not in frame.columns:
                        raise DataError(
                            f"{source}: no column {text_column!r}; columns are "
                            f"{', '.join(map(repr, frame.columns))} (use --text-column)")
                    yield frame.fillna(""), text_column
                    row += len(frame)
            if row == 0:
                raise DataError(f"{source}: no rows below the header; nothing to classify")
        except UnicodeDecodeError:
            raise DataError(f"{source}: not valid {encoding} after row {row + 1}; pass --encoding "
                            "with the file's encoding") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{source}: malformed {fmt.upper()} ({str(exc).strip()})") from None
