"""Cutting decoded text into records, one parser per text format: each yields
``(line the record starts on, fields)`` and skips blank lines, except the one-text-per-line format,
where every line is a text (a blank one is an empty text). Fields are text, except in JSON lines,
whose values are kept as parsed (:func:`json_text` gives their text).

Header rows, column counts and which column is which are :mod:`newsclf.datafiles.layout`'s
concern; JSON lines and fastText lines get their columns here because the format fixes them.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import re
import shlex
from pathlib import Path
from typing import Iterable, Iterator

from newsclf.errors import DataError

Record = tuple[int, list[str]]

_NO_FIELD_LIMIT = 2**31 - 1  # a cell may hold a whole book
FASTTEXT_PREFIX = "__label__"


def csv_records(lines: Iterable[str], source: str, delimiter: str = ",",
                first_line: int = 1) -> Iterator[Record]:
    """CSV: fields separated by ``delimiter``; quoted fields may hold it, quotes (doubled) and
    line breaks. ``first_line``: the number of the file's line that ``lines`` start with (here
    and in the other readers)."""
    return _records(csv.reader(lines, delimiter=delimiter, strict=True), source, "CSV",
                    first_line)


def tsv_records(lines: Iterable[str], source: str, first_line: int = 1) -> Iterator[Record]:
    """TSV: tabs; quotes are text."""
    return _records(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), source, "TSV",
                    first_line)


@contextlib.contextmanager
def unlimited_fields():
    """Lift the csv module's field size limit (131,072 characters; it is process-wide, so it is
    restored after each use)."""
    limit = csv.field_size_limit(_NO_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _records(reader, source: str, kind: str, first_line: int) -> Iterator[Record]:
    end = skipped = first_line - 1
    while True:
        try:
            with unlimited_fields():
                fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = ("a double quote opened here is never closed"
                       if "unexpected end of data" in str(exc) else exc)
            raise DataError(f"{source}: malformed {kind} at line {end + 1}: {problem}; put fields "
                            "that contain commas, quotes or line breaks in double quotes, "
                            "doubling the quotes inside") from None
        start, end = end + 1, skipped + reader.line_num
        if fields:
            yield start, fields


def text_line_records(lines: Iterable[str], first_line: int = 1) -> Iterator[Record]:
    """One text per line (line endings removed); blank lines are empty texts."""
    return ((number, [line.rstrip("\r\n")]) for number, line in enumerate(lines, first_line))


FASTTEXT_COLUMNS = ("label", "text")


def fasttext_records(lines: Iterable[str], source: str, one_label: bool,
                     first_line: int = 1) -> Iterator[Record]:
    """fastText's ``__label__NAME text`` lines as ``[label, text]`` (labels and text separated
    by any whitespace, as fastText reads them). Several labels on a line are joined with
    spaces, or refused with ``one_label`` (a classifier gives each text one)."""
    for number, line in enumerate(lines, first_line):
        rest = line.strip()
        if not rest:
            continue
        labels = []
        while (found := _FASTTEXT_LABEL.match(rest)) is not None:
            labels.append(found[1])
            rest = rest[found.end():]
        if one_label and len(labels) > 1:
            raise DataError(f"{source}:{number}: {len(labels)} labels ({', '.join(labels)}); "
                            "newsclf gives each text one label: keep one __label__ per line")
        yield number, [" ".join(labels), rest]


_FASTTEXT_LABEL = re.compile(re.escape(FASTTEXT_PREFIX) + r"(\S*)(?:\s+|$)")


def jsonl_records(lines: Iterable[str], source: str,
                  first_line: int = 1) -> tuple[list[str], Iterator[Record]]:
    """JSON lines: one object per line. The columns are the first object's keys, in order; a
    later object may leave keys out (None, as null) but not add new ones. The fields are the
    values as parsed (str, int, float, bool, None, list, dict), for prediction to write back as
    they were; :func:`json_text` gives their text. Returns ``(columns, records)``."""
    objects = _json_objects(lines, source, first_line)
    first = next(objects, None)
    if first is None:
        return [], iter(())
    columns = list(first[1])
    if not columns:  # the first object names the keys: "{}" names none
        raise DataError(f"{source}:{first[0]}: an object with no keys; the first line's keys are "
                        "the file's, e.g. {\"text\": \"...\", \"label\": \"...\"}")

    def records():
        number, value = first
        yield number, [value.get(key) for key in columns]
        known = set(columns)
        for number, value in objects:
            extra = [key for key in value if key not in known]
            if extra:
                raise DataError(f"{source}:{number}: key(s) {', '.join(map(repr, extra))} not in "
                                f"the first line's keys ({', '.join(map(repr, columns))}); give "
                                "every line the same keys")
            yield number, [value.get(key) for key in columns]

    return columns, records()


def _json_objects(lines: Iterable[str], source: str,
                  first_line: int) -> Iterator[tuple[int, dict]]:
    first = True
    for number, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        if first and line.lstrip().startswith("["):
            raise _json_array_error(source, number)
        first = False
        repeated = []
        try:
            value = json.loads(line, object_pairs_hook=functools.partial(_object_noting_repeats,
                                                                         repeated))
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}:{number}: not valid JSON ({exc.msg}); each line of a JSON "
                            "lines file must be one object, e.g. {\"text\": \"...\", \"label\": "
                            "\"...\"}") from None
        if not isinstance(value, dict):
            raise DataError(f"{source}:{number}: a JSON {type(value).__name__}, not an object; "
                            "each line must be one object, e.g. {\"text\": \"...\"}")
        if repeated[-1] is not None:  # the line's object is the last one completed
            raise DataError(f"{source}:{number}: the key {repeated[-1]!r} appears more than once, "
                            "and only one of its values could be kept; give each key once")
        if _SURROGATE_ESCAPE.search(line) and not _encodable(value):
            raise DataError(f"{source}:{number}: a \\uD800-\\uDFFF escape without its pair (half "
                            "of a character written as UTF-16), which no text can hold; write "
                            "the character itself, or both halves of its pair")
        yield number, value


def _json_array_error(source: str, number: int) -> DataError:
    """A JSON array where JSON lines were expected (a file of JSON, pretty-printed or not)."""
    if source == "<stdin>":
        convert = "pipe it through jq -c '.[]'"
    else:
        target = Path(source).with_suffix(".jsonl")
        if target == Path(source):  # a shell truncates the output before jq reads the input
            target = target.with_name(f"{target.stem}-lines.jsonl")
        convert = f"jq -c '.[]' {shlex.quote(source)} > {shlex.quote(str(target))}"
    return DataError(f"{source}:{number}: a JSON array; newsclf reads JSON lines, one object per "
                     f"line: convert it ({convert})")


# "\ud83d\ude00" is one character; either escape alone is no character (Python keeps it as a
# lone surrogate, which no UTF-8 output can write)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _encodable(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _object_noting_repeats(repeated: list, pairs: list) -> dict:
    """A JSON object as a dict (a key given twice keeps its last value, as ``json.loads`` does);
    appends to ``repeated`` the first key it repeats, or None. Objects inside it come first."""
    value = dict(pairs)
    seen: set = set()
    repeated.append(next((key for key, _ in pairs if key in seen or seen.add(key)), None)
                    if len(value) != len(pairs) else None)
    return value


def json_text(value) -> str:
    """A JSON value as a text field: a string as it is, null empty, any other value as JSON
    (``7``, ``0.1``, ``true``, ``["a"]``; unicode kept). Texts to classify, labelled data and
    every output but JSON lines take JSON lines values this way."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


_JSON_OBJECT_START = re.compile(r"\s*\{")


def looks_like_jsonl(line: str) -> bool:
    if not _JSON_OBJECT_START.match(line):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False
