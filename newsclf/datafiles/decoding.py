"""Decoding data files: UTF-8, UTF-8 with a BOM, GBK/GB18030 or Big5 detected unless an encoding
is given, read a block at a time; a byte the encoding cannot decode, or a file whose encoding
changes part-way (UTF-8 rows, then GBK rows), is refused with its line."""

from __future__ import annotations

import codecs
import functools
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from newsclf.errors import DataError

BLOCK_SIZE = 1 << 16  # bytes read at a time; the first block decides the encoding
_ASCII = bytes(range(128))
_UTF8_CHINESE = re.compile(rb"[\xe4-\xe9][\x80-\xbf][\x80-\xbf]")  # a CJK character in UTF-8
_ENCODING_HINT = "try utf-8, utf-8-sig, gb18030 or big5"
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Big5 text also decodes as GBK, into other characters: mostly rare ones, kana and symbols (and
# GBK text mostly decodes as Big5, into rare characters). A reading is scored by its share of
# everyday characters: those of the punctuation and first-level hanzi rows of the encoding's core
# table; a reading this much better than the other is the text's encoding.
_MARGIN = 0.25
# a line needs this many non-ASCII characters to say alone which it is: a name of two or three
# rare characters reads as everyday ones in the other encoding often enough (林瑄甯, 李祎)
_MIN_EVIDENCE = 8


@dataclass(frozen=True)
class _Legacy:
    """A legacy Chinese encoding newsclf detects."""

    short: str                  # in messages: "Big5 text after GBK text"
    name: str                   # in the line saying how a file was read
    table: str                  # the core table whose rows hold the everyday characters
    leads: tuple[int, ...]      # the lead bytes of those rows
    trails: tuple[int, ...]     # their trail bytes


_LEGACY_CHINESE = {
    "gb18030": _Legacy("GBK", "GBK/GB18030", "gb2312", (*range(0xA1, 0xA4), *range(0xB0, 0xF8)),
                       tuple(range(0xA1, 0xFF))),
    "big5hkscs": _Legacy("Big5", "Big5", "big5hkscs", tuple(range(0xA1, 0xC7)),
                         (*range(0x40, 0x7F), *range(0xA1, 0xFF)))}


@functools.cache
def _unusual(encoding: str) -> re.Pattern:
    """A pattern of the non-ASCII characters that are not everyday ones in ``encoding``."""
    legacy = _LEGACY_CHINESE[encoding]
    everyday = set()
    for lead in legacy.leads:
        for trail in legacy.trails:
            try:
                everyday.add(bytes((lead, trail)).decode(legacy.table))
            except UnicodeDecodeError:
                continue
    return re.compile("[^\\x00-\\x7f" + "".join(map(re.escape, sorted(everyday))) + "]")


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def legacy_chinese_encoding(raw: bytes) -> str:
    """GB18030 (a superset of GBK) or Big5 for Chinese text that is not UTF-8: the encoding of
    the first line of ``raw`` that reads as far more everyday characters in it than in the other
    (:func:`_reads_as`); for a file of short lines only, of all of them; else GB18030."""
    lines = raw.split(b"\n")
    for line in lines:
        verdict = _reads_as(line)
        if verdict is not None:
            return verdict
    return _reads_as(raw, minimum=1) or "gb18030"


def _reads_as(raw: bytes, minimum: int = _MIN_EVIDENCE) -> str | None:
    """GB18030 or Big5, the encoding in which ``raw`` reads as far more everyday characters
    than in the other (or the only one it decodes in); None when neither is clearly better or
    it holds fewer than ``minimum`` non-ASCII characters."""
    shares = {}
    for encoding in _LEGACY_CHINESE:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            shares[encoding] = -1.0
            continue
        characters = len(_NON_ASCII.findall(text))
        if characters < minimum:
            return None
        shares[encoding] = 1 - len(_unusual(encoding).findall(text)) / characters
    best, other = sorted(shares, key=shares.get, reverse=True)
    return best if shares[best] > shares[other] + _MARGIN else None


def detect_encoding(head: bytes, source: str, complete: bool = False) -> str:
    """The encoding to read a file with, from its first bytes (or all of them, ``complete``):
    UTF-8 with a BOM, else UTF-8, else GB18030 (a superset of GBK) or Big5
    (:func:`legacy_chinese_encoding`). NUL bytes mean binary or UTF-16 and are refused.

    UTF-8 text followed by other bytes gives UTF-8, and bytes that are neither give GB18030 or
    Big5: :class:`Decoder` then names the line where the file mixes encodings or cannot be
    decoded."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{source}:{_line_of(head, nul)}: contains NUL bytes; this looks like a "
                        "binary or UTF-16 file; save it as UTF-8 text (or, if it is UTF-16, "
                        "pass --encoding utf-16)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError as exc:
        # bytes of GBK (or Big5) often form a valid UTF-8 character or two by chance: UTF-8 is
        # only what whole lines before the one that fails hold
        return "utf-8" if _non_ascii_before_line(head, exc.start) else legacy_chinese_encoding(head)
    return "utf-8"


def _non_ascii_before_line(raw: bytes, offset: int) -> bool:
    """Whether the lines of ``raw`` before the one holding byte ``offset`` hold non-ASCII."""
    return not raw[:raw.rfind(b"\n", 0, offset) + 1].isascii()


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


class Decoder:
    """Decodes one file block by block (whole lines at a time for ASCII-compatible encodings),
    refusing, with the line, bytes the encoding cannot decode and a change of encoding
    part-way through the file (UTF-8 then GBK or Big5 text, or GBK or Big5 then UTF-8 text when
    detecting)."""

    def __init__(self, source: str, encoding: str | None = None):
        self.source = source
        self.detecting = encoding in (None, "auto")
        self.name = None if self.detecting else _text_encoding(encoding)
        self.encoding = self.name
        self.lines_done = 0           # complete lines decoded so far
        self.non_ascii_seen = False   # whether the bytes decoded so far hold any non-ASCII text
        self.had_bom = False
        self._started = False
        self._text_started = False    # whether any text was returned (a BOM is dropped before)
        self._may_switch = False      # an all-ASCII start may still turn out to be GBK or Big5
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
                self.non_ascii_seen = self.had_bom = True  # the BOM says UTF-8
        elif not _ascii_compatible(self.encoding):
            if b"\x00" in "\n".encode(self.encoding) and head and b"\x00" not in head:
                raise DataError(f"{self.source}: has no NUL bytes, so it is not {self.name}; "
                                "leave out --encoding to detect UTF-8, GBK or Big5, or give the "
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
            if (self._may_switch and not self.non_ascii_seen
                    and not _non_ascii_before_line(raw, exc.start)):
                # only ASCII before: GBK or Big5
                self.encoding = legacy_chinese_encoding(raw[raw.rfind(b"\n", 0, exc.start) + 1:])
                self._may_switch = False
                return self._decode_lines(raw)
            raise self._undecodable(raw, exc.start) from None
        if self.detecting and self.encoding in _LEGACY_CHINESE:
            self._refuse_utf8_lines(raw)
            self._refuse_other_legacy_lines(raw, text)
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
            legacy = _LEGACY_CHINESE[legacy_chinese_encoding(line_bytes)].short
            return DataError(f"{where}: {legacy} text after UTF-8 text: the file mixes two "
                             "encodings; save all of it as UTF-8")
        if (self.detecting and self.encoding in _LEGACY_CHINESE
                and (self.non_ascii_seen or not raw[:start].isascii())
                and _decodes(line_bytes, "utf-8")):
            return self._utf8_after_legacy(where)
        if self.detecting and self.encoding == "big5hkscs":
            return DataError(f"{where}: not Big5, the encoding of the lines before it (byte "
                             f"{raw[offset]:#04x}); the file may mix encodings: save all of it as "
                             "UTF-8, or pass --encoding with its encoding")
        if self.detecting:
            return DataError(f"{where}: cannot decode as UTF-8, GBK/GB18030 or Big5; pass "
                             "--encoding with the file's encoding")
        return DataError(f"{where}: not valid {self.name} (byte {raw[offset]:#04x}); check the "
                         "file's encoding")

    def _refuse_utf8_lines(self, raw: bytes) -> None:
        """In a file detected as GBK or Big5, refuse a line that is UTF-8 Chinese (it would be read as
        other characters): a line is checked when it holds a UTF-8 CJK byte pattern, and refused
        when all of it is valid UTF-8."""
        position = 0
        while (found := _UTF8_CHINESE.search(raw, position)) is not None:
            start = raw.rfind(b"\n", 0, found.start()) + 1
            end = raw.find(b"\n", found.end())
            end = len(raw) if end < 0 else end
            if _decodes(raw[start:end], "utf-8"):
                line = self.lines_done + _line_of(raw, start)
                raise self._utf8_after_legacy(f"{self.source}:{line}")
            position = end + 1

    def _refuse_other_legacy_lines(self, raw: bytes, text: str) -> None:
        """In a file detected as GBK (Big5), refuse a line that reads as Big5 (GBK) by
        :func:`_reads_as`: the file mixes the two. Only a line with enough non-ASCII characters,
        a quarter of them at least not everyday ones in the file's encoding, can."""
        unusual = _unusual(self.encoding)
        if not unusual.search(text):
            return
        # neither encoding has a newline byte inside a character: the lines correspond
        for number, (line, line_bytes) in enumerate(zip(text.split("\n"), raw.split(b"\n")), 1):
            if not unusual.search(line):
                continue
            characters = len(_NON_ASCII.findall(line))
            if (characters < _MIN_EVIDENCE
                    or len(unusual.findall(line)) < _MARGIN * characters):
                continue  # this reading cannot be far worse than the other
            other = _reads_as(line_bytes)
            if other not in (None, self.encoding):
                raise DataError(
                    f"{self.source}:{self.lines_done + number}: "
                    f"{_LEGACY_CHINESE[other].short} text after "
                    f"{_LEGACY_CHINESE[self.encoding].short} text: the file mixes two encodings; "
                    "save all of it as UTF-8")

    def _utf8_after_legacy(self, where: str) -> DataError:
        legacy = _LEGACY_CHINESE[self.encoding].short
        return DataError(f"{where}: UTF-8 text after {legacy} text: the file mixes two encodings; "
                         f"save all of it as UTF-8 (or pass --encoding {self.encoding} if this "
                         f"line is {legacy})")


def encoding_name(decoder: Decoder) -> str:
    """The encoding a decoder reads with, as a person would name it."""
    if decoder.encoding == "utf-8":
        return "UTF-8 with BOM" if decoder.had_bom else "UTF-8"
    legacy = _LEGACY_CHINESE.get(decoder.encoding)
    return decoder.encoding if legacy is None else legacy.name


def decode_bytes(raw: bytes, path: str, encoding: str | None = None) -> str:
    """Decode a whole file with the given encoding, or the detected one (``None``/``auto``).
    Errors name the file and line."""
    return Decoder(path, encoding).decode(raw, final=True)


def decoded_lines(blocks: Iterable[bytes], decoder: Decoder) -> Iterator[str]:
    """The lines of a file given as byte blocks (an empty block ends it), decoded, each with its
    line ending (``\\n``, ``\\r\\n`` or ``\\r``)."""
    for block in blocks:
        text = decoder.decode(block, final=not block)
        if text:
            yield from io.StringIO(text, newline="")
        if not block:
            return


def byte_blocks(stream) -> Iterator[bytes]:
    """A binary stream's bytes, ``BLOCK_SIZE`` at a time, ending with one empty block."""
    while True:
        block = stream.read(BLOCK_SIZE)
        yield block
        if not block:
            return


def read_file_text(path: str | Path, encoding: str | None = None) -> str:
    """The decoded text of a file (``-``: standard input)."""
    handle, source = open_binary_input(str(path))
    with handle:
        raw = handle.read()
    return decode_bytes(raw, source, encoding)


def open_binary_input(path: str):
    """A buffered binary stream for a path, or standard input for ``-``."""
    if path == "-":
        return io.BufferedReader(sys.stdin.buffer, buffer_size=1 << 16), "<stdin>"
    try:
        return open(path, "rb"), path
    except FileNotFoundError:
        pattern = any(ch in path for ch in "*?[")
        raise DataError(f"{path}: file not found" + (
            "; newsclf reads one file here and does not expand * or ?: name the file, or "
            "label every file the pattern matches with newsclf predict --scheduler local"
            if pattern else "")) from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None

