"""Reading data files (labelled data for training and evaluation, texts to classify) and batching
encoded texts.

Every file goes through the same two checks, whoever reads it. Decoding (:class:`_Decoder`):
UTF-8, UTF-8 with a BOM or GBK/GB18030 is detected unless an encoding is given; a byte the
encoding cannot decode, or a file whose encoding changes part-way (UTF-8 rows, then GBK rows),
is refused with its line. Tables with a header row (:func:`_read_table`, CSV and TSV): every row
must have one field per header column, and no column name may appear twice.

Labelled data, by file extension (``fmt`` overrides):

- ``.tsv`` / ``.txt``: ``text<TAB>label`` per line, no header (a first line ``text<TAB>label``
  is skipped). The label is a class name, or an integer id when a class-names file (one name
  per line, line N = id N) is given.
- ``.csv``: a header row; the text and label columns are chosen by name.

Texts to classify (:func:`iter_input_chunks`): CSV or TSV with a header row naming the text
column, or ``.txt`` with one text per line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

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


# --- decoding ---------------------------------------------------------------------------------

BLOCK_SIZE = 1 << 16  # bytes read at a time; the first block decides the encoding
_ASCII = bytes(range(128))
_UTF8_CHINESE = re.compile(rb"[\xe4-\xe9][\x80-\xbf][\x80-\xbf]")  # a CJK character in UTF-8
_ENCODING_HINT = "try utf-8, utf-8-sig or gb18030"


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(head: bytes, source: str, complete: bool = False) -> str:
    """The encoding to read a file with, from its first bytes (or all of them, ``complete``):
    UTF-8 with a BOM, else UTF-8, else GB18030 (a superset of GBK). NUL bytes mean binary or
    UTF-16 and are refused.

    UTF-8 text followed by other bytes gives UTF-8, and bytes that are neither give GB18030:
    :class:`_Decoder` then names the line where the file mixes encodings or cannot be decoded."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{source}:{_line_of(head, nul)}: contains NUL bytes; this looks like a "
                        "binary or UTF-16 file; save it as UTF-8 text")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError as exc:
        return "gb18030" if head[:exc.start].isascii() else "utf-8"
    return "utf-8"


def _text_encoding(encoding: str) -> str:
    """``encoding`` if Python can decode text with it, else a DataError."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; {_ENCODING_HINT}") from None
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=encoding).detach()
    except LookupError:
        raise DataError(f"{encoding!r} is not a text encoding; {_ENCODING_HINT}") from None
    return encoding


def _ascii_compatible(encoding: str) -> bool:
    """Whether ASCII bytes mean ASCII characters (so a file can be cut into lines at ``\\n``)."""
    try:
        return _ASCII.decode(encoding) == _ASCII.decode("ascii")
    except UnicodeError:
        return False


class _Decoder:
    """Decodes one file block by block (whole lines at a time for ASCII-compatible encodings),
    refusing, with the line, bytes the encoding cannot decode and a change of encoding
    part-way through the file (UTF-8 then GBK text, or GBK then UTF-8 text when detecting)."""

    def __init__(self, source: str, encoding: str | None = None):
        self.source = source
        self.detecting = encoding in (None, "auto")
        self.name = None if self.detecting else _text_encoding(encoding)
        self.encoding = self.name
        self.lines_done = 0           # complete lines decoded so far
        self.non_ascii_seen = False   # whether the bytes decoded so far hold any non-ASCII text
        self._started = False
        self._text_started = False    # whether any text was returned (a BOM is dropped before)
        self._may_switch = False      # an all-ASCII start may still turn out to be GBK
        self._tail: list[bytes] = []  # the start of a line whose end has not arrived yet
        self._stream = None           # incremental decoder, for encodings that are not ASCII-like

    def decode(self, block: bytes, final: bool = False) -> str:
        """The text of ``block``'s complete lines (with ``final``, of everything left)."""
        if not self._started:
            block = self._start(block, final)
        if self._stream is not None:
            text = self._decode_stream(block, final)
        else:
            rest = b""
            if not final:
                end = block.rfind(b"\n") + 1
                if end == 0:
                    self._tail.append(block)
                    return ""
                block, rest = block[:end], block[end:]
            if self._tail:
                block = b"".join([*self._tail, block])
            self._tail = [rest] if rest else []
            text = self._decode_lines(block)
            self.lines_done += block.count(b"\n")
        if text and not self._text_started:
            self._text_started = True
            text = text.removeprefix("\ufeff")
        return text

    def _start(self, head: bytes, final: bool) -> bytes:
        self._started = True
        if self.detecting:
            self.encoding = detect_encoding(head, self.source, complete=final)
            self._may_switch = self.encoding == "utf-8"
        if codecs.lookup(self.encoding).name in ("utf-8", "utf-8-sig"):
            self.encoding = "utf-8"
            if head.startswith(codecs.BOM_UTF8):
                self.non_ascii_seen = True  # the BOM says UTF-8
        elif not _ascii_compatible(self.encoding):
            if b"\x00" in "\n".encode(self.encoding) and head and b"\x00" not in head:
                raise DataError(f"{self.source}: has no NUL bytes, so it is not {self.name}; "
                                "leave out --encoding to detect UTF-8 or GBK, or give the "
                                "file's real encoding")
            self._stream = codecs.getincrementaldecoder(self.encoding)()
        return head

    def _decode_stream(self, block: bytes, final: bool) -> str:
        try:
            text = self._stream.decode(block, final)
        except UnicodeError:
            raise DataError(f"{self.source}:{self.lines_done + 1}: not valid {self.name} (at or "
                            "after this line); check the file's encoding") from None
        self.lines_done += text.count("\n")
        return text

    def _decode_lines(self, raw: bytes) -> str:
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            if self._may_switch and not self.non_ascii_seen and raw[:exc.start].isascii():
                self.encoding, self._may_switch = "gb18030", False  # only ASCII before: GBK
                return self._decode_lines(raw)
            raise self._undecodable(raw, exc.start) from None
        if self.detecting and self.encoding == "gb18030":
            self._refuse_utf8_lines(raw)
        if not self.non_ascii_seen and not raw.isascii():
            self.non_ascii_seen, self._may_switch = True, False
        return text

    def _undecodable(self, raw: bytes, offset: int) -> DataError:
        start = raw.rfind(b"\n", 0, offset) + 1
        end = raw.find(b"\n", offset)
        line_bytes = raw[start:len(raw) if end < 0 else end]
        where = f"{self.source}:{self.lines_done + _line_of(raw, offset)}"
        if (self.encoding == "utf-8" and (self.non_ascii_seen or not raw[:offset].isascii())
                and _decodes(line_bytes, "gb18030")):
            return DataError(f"{where}: GBK text after UTF-8 text: the file mixes two encodings; "
                             "save all of it as UTF-8")
        if (self.detecting and self.encoding == "gb18030"
                and (self.non_ascii_seen or not raw[:start].isascii())
                and _decodes(line_bytes, "utf-8")):
            return self._utf8_after_gbk(where)
        if self.detecting:
            return DataError(f"{where}: cannot decode as UTF-8 or GBK/GB18030; pass --encoding "
                             "with the file's encoding")
        return DataError(f"{where}: not valid {self.name} (byte {raw[offset]:#04x}); check the "
                         "file's encoding")

    def _refuse_utf8_lines(self, raw: bytes) -> None:
        """In a file detected as GBK, refuse a line that is UTF-8 Chinese (it would be read as
        other characters): a line is checked when it holds a UTF-8 CJK byte pattern, and refused
        when all of it is valid UTF-8."""
        position = 0
        while (found := _UTF8_CHINESE.search(raw, position)) is not None:
            start = raw.rfind(b"\n", 0, found.start()) + 1
            end = raw.find(b"\n", found.end())
            end = len(raw) if end < 0 else end
            if _decodes(raw[start:end], "utf-8"):
                line = self.lines_done + _line_of(raw, start)
                raise self._utf8_after_gbk(f"{self.source}:{line}")
            position = end + 1

    @staticmethod
    def _utf8_after_gbk(where: str) -> DataError:
        return DataError(f"{where}: UTF-8 text after GBK text: the file mixes two encodings; save "
                         "all of it as UTF-8 (or pass --encoding gb18030 if this line is GBK)")


def decode_bytes(raw: bytes, path: str, encoding: str | None = None) -> str:
    """Decode a whole file with the given encoding, or the detected one (``None``/``auto``).
    Errors name the file and line."""
    return _Decoder(path, encoding).decode(raw, final=True)


def _decoded_lines(stream, decoder: _Decoder) -> Iterator[str]:
    """The lines of a binary stream, decoded, each with its line ending (``\\n``, ``\\r\\n`` or
    ``\\r``), read a block at a time."""
    while True:
        block = stream.read(BLOCK_SIZE)
        text = decoder.decode(block, final=not block)
        if text:
            yield from io.StringIO(text, newline="")
        if not block:
            return


def read_file_text(path: str | Path, encoding: str | None = None) -> str:
    """The decoded text of a file (``-``: standard input)."""
    handle, source = open_binary_input(str(path))
    with handle:
        raw = handle.read()
    return decode_bytes(raw, source, encoding)


# --- tables with a header row -----------------------------------------------------------------

_NO_FIELD_LIMIT = 2**31 - 1  # a cell may hold a whole book


def _field_count_error(source: str, kind: str, line: int, count: int, expected: int) -> DataError:
    if count < expected:
        fix = "give every row one field per column (empty fields too)"
    elif kind == "CSV":
        fix = "put a field that contains commas in double quotes"
    else:
        fix = "a TSV field cannot contain a tab: remove it, or save the file as CSV"
    return DataError(f"{source}: malformed {kind} at line {line}: {count} field"
                     f"{'s' * (count != 1)}, but the header has {expected}; {fix}")


def _records(reader, source: str, kind: str) -> Iterator[tuple[int, list[str]]]:
    """``(line it starts on, fields)`` for each non-blank record of a ``csv.reader``."""
    end = 0
    while True:
        limit = csv.field_size_limit(_NO_FIELD_LIMIT)
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = ("a double quote opened here is never closed"
                       if "unexpected end of data" in str(exc) else exc)
            raise DataError(f"{source}: malformed {kind} at line {end + 1}: {problem}; put fields "
                            "that contain commas, quotes or line breaks in double quotes, "
                            "doubling the quotes inside") from None
        finally:
            csv.field_size_limit(limit)
        start, end = end + 1, reader.line_num
        if fields:
            yield start, fields


def _read_table(lines: Iterable[str], source: str, fmt: str):
    """The header and rows of a CSV (commas; quoted fields may hold commas, quotes and line
    breaks) or TSV (tabs; quotes are text) file with a header row.

    Returns ``(header, rows)``, ``rows`` yielding ``(line, fields)`` with one field per column;
    ``(None, [])`` for a file without a non-blank line. Refuses a repeated column name (unnamed
    columns aside) and a row with more or fewer fields than the header, naming its line."""
    kind = fmt.upper()
    options = dict(delimiter="\t", quoting=csv.QUOTE_NONE) if fmt == "tsv" else {}
    records = _records(csv.reader(lines, strict=True, **options), source, kind)
    first = next(records, None)
    if first is None:
        return None, []
    header_line, header = first
    counts = Counter(header)
    repeated = [name for name in counts if name and counts[name] > 1]
    if repeated:
        raise DataError(f"{source}:{header_line}: column name(s) {', '.join(map(repr, repeated))} "
                        "appear more than once in the header; give every column its own name")

    def rows():
        for line, fields in records:
            if len(fields) != len(header):
                raise _field_count_error(source, kind, line, len(fields), len(header))
            yield line, fields

    return header, rows()


def _column_list(header: Sequence[str], shown: int = 10, width: int = 30) -> str:
    """The header's names for a message, each cut to ``width`` characters."""
    names = [repr(name if len(name) <= width else name[:width] + "…") for name in header[:shown]]
    return ", ".join(names) + (f", ... ({len(header)} columns)" if len(header) > shown else "")


# --- labelled data ----------------------------------------------------------------------------

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
    header, rows = _read_table(io.StringIO(text, newline=""), path, "csv")
    if header is None:
        raise DataError(f"{path}: empty CSV file; expected a header and rows")
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DataError(f"{path}: no column {', '.join(map(repr, missing))}; columns are "
                        f"{_column_list(header)} (use --text-column/--label-column)")
    text_index, label_index = header.index(text_column), header.index(label_column)
    for line, fields in rows:
        row_text, label = fields[text_index], fields[label_index]
        if not row_text.strip():
            raise DataError(f"{path}:{line}: empty text in column {text_column!r}")
        yield line, row_text, label.strip()


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


_ENCODE_BATCH = 256  # texts whose ids are looked up together (their feature keys held meanwhile)


def encode_texts(tokenizer, vocab, texts: Sequence[str], max_len: int) -> list[np.ndarray]:
    """Tokenize and encode each text to ids ``[length, n_features]`` (see :mod:`newsclf.vocab`)."""
    encoded = []
    for start in range(0, len(texts), _ENCODE_BATCH):
        batch = texts[start:start + _ENCODE_BATCH]
        keys = [tokenizer.feature_keys(text, max_len) for text in batch]
        encoded += vocab.encode_keys(tokenizer.feature_prefixes, keys)
    return encoded


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

    Yields ``(frame, text_column)``: a DataFrame of strings (all columns, unchanged, indexed by
    the line each row starts on) and the name of the text column. Formats: ``csv`` (header;
    comma), ``tsv`` (header; tab, no quoting), ``txt`` (one text per line, column ``text``).
    Encoding detected unless given. Decoding and the header and field-count checks are those of
    every data file (see the module docstring).
    """
    import pandas as pd

    fmt = fmt or detect_predict_format(path)
    if fmt not in PREDICT_FORMATS:
        raise DataError(f"unknown input format {fmt!r}; use {', '.join(PREDICT_FORMATS)}")
    raw, source = open_binary_input(path)
    with raw:
        lines = _decoded_lines(raw, _Decoder(source, encoding))
        if fmt == "txt":
            header, text_column = ["text"], "text"
            rows = ((number, [line.rstrip("\r\n")]) for number, line in enumerate(lines, 1))
        else:
            header, rows = _read_table(lines, source, fmt)
            if header is None:
                raise DataError(f"{source}: empty file; expected a header row and texts")
            if text_column not in header:
                raise DataError(
                    f"{source}: no column {text_column!r}; columns are {_column_list(header)}: a "
                    f"{fmt.upper()} file to label needs a header row naming its text column (add "
                    "one, or pass --text-column NAME), or use a .txt file with one text per line")
        chunk, lines_of_chunk, rows_read = [], [], 0
        for line, fields in rows:
            chunk.append(fields)
            lines_of_chunk.append(line)
            if len(chunk) == chunk_size:
                yield pd.DataFrame(chunk, columns=header, index=lines_of_chunk, dtype=object), \
                    text_column
                rows_read += len(chunk)
                chunk, lines_of_chunk = [], []
        if chunk or (rows_read == 0 and fmt == "txt"):
            yield pd.DataFrame(chunk, columns=header, index=lines_of_chunk, dtype=object), \
                text_column
        elif rows_read == 0:
            raise DataError(f"{source}: no rows below the header; nothing to classify")
