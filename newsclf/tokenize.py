"""Text normalization and tokenization (jieba words, characters, or both).

A tokenizer turns one text into a sequence of positions; each position carries one or more
feature strings that the vocabulary maps to ids:

- ``word``: one position per jieba word, feature ``w:<word>``;
- ``char``: one position per character, feature ``c:<char>``;
- ``mixed``: one position per character with three features: the character ``c:``, the
  character bigram starting there ``b:``, and the jieba word the character belongs to ``w:``.
  The model sums their embeddings, so every position sees its word and its local context.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.spec import FEATURES_PER_TOKEN, TOKENIZERS

_WHITESPACE = re.compile(r"\s+")
_END = "</s>"


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), lower-case, no control or zero-width characters,
    whitespace collapsed to single spaces and stripped."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    return _WHITESPACE.sub(" ", text).strip()


_jieba_by_dict: dict = {}


def _jieba(user_dict: str | None):
    """One initialized jieba tokenizer per user dictionary and process, loaded silently."""
    key = str(user_dict) if user_dict else None
    if key not in _jieba_by_dict:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        segmenter = jieba.Tokenizer()
        segmenter.initialize()
        if user_dict:
            path = Path(user_dict)
            if not path.is_file():
                raise NewsclfError(f"{path}: user dictionary not found")
            try:
                segmenter.load_userdict(str(path))
            except Exception as exc:  # jieba raises bare ValueErrors on bad lines
                raise NewsclfError(f"{path}: cannot load user dictionary ({exc}); "
                                   "expected lines 'word [freq] [tag]' in UTF-8") from None
        _jieba_by_dict[key] = segmenter
    return _jieba_by_dict[key]


# Characters a text can be cut before without changing how the part before the cut tokenizes:
# jieba segments the runs between them independently, and NFKC never joins them to a neighbour.
_CUT_BEFORE = frozenset(" \t\n\r\u3000，。！？；：、,!?;:")


def text_pieces(text: str, size: int):
    """Consecutive pieces of ``text`` of about ``size`` characters, each ending just before a
    cut character (see ``_CUT_BEFORE``) where one comes within ``size`` more characters; a run
    longer than that without one is cut where it reaches ``2 * size``."""
    start = 0
    while len(text) - start > size:
        end = start + size
        limit = min(len(text), start + 2 * size)
        while end < limit and text[end] not in _CUT_BEFORE:
            end += 1
        yield text[start:end]
        start = end
    if start < len(text) or start == 0:
        yield text[start:]


class Tokenizer:
    """Normalizes and tokenizes text in one of the modes ``word``, ``char`` or ``mixed``.

    With ``max_positions`` only as much of a long text is normalized and segmented as those
    positions need (pieces cut at punctuation or spaces, see :func:`text_pieces`), so a
    50-megabyte cell costs no more than a headline when the model keeps 64 positions."""

    def __init__(self, mode: str = "mixed", user_dict: str | None = None):
        if mode not in TOKENIZERS:
            raise NewsclfError(f"tokenizer must be word, char or mixed, not {mode!r}")
        self.mode = mode
        self.user_dict = user_dict
        self.n_features = FEATURES_PER_TOKEN[mode]

    def words(self, text: str) -> list[str]:
        """jieba words of the normalized text, spaces dropped."""
        return [w for w in _jieba(self.user_dict).lcut(normalize(text)) if not w.isspace()]

    def _units(self, text: str) -> list:
        """One entry per position: the word (``word``), the character (``char``), or the
        character and the word it belongs to (``mixed``)."""
        if self.mode == "word":
            return self.words(text)
        if self.mode == "char":
            return [ch for ch in normalize(text) if ch != " "]
        return [(ch, word) for word in self.words(text) for ch in word]

    def _units_of_pieces(self, text: str, max_positions: int):
        """Units of ``text`` piece by piece (at least ``max_positions + 1`` units per yield
        while the text lasts), so only what is needed is ever tokenized."""
        size = 4 * max_positions + 64
        for piece in text_pieces(text, size):
            yield self._units(piece)

    def _head_units(self, text: str, max_positions: int | None) -> list:
        if max_positions is None:
            return self._units(text)
        units = []
        for piece_units in self._units_of_pieces(text, max_positions):
            units.extend(piece_units)
            if len(units) > max_positions:  # one more: the last kept position's bigram
                break
        return units

    def tokenize(self, text: str, max_positions: int | None = None) -> list[str]:
        """The readable token of each position (at most ``max_positions``): words in ``word``
        mode, characters otherwise."""
        units = self._head_units(text, max_positions)[:max_positions]
        return [unit[0] for unit in units] if self.mode == "mixed" else units

    def features(self, text: str, max_positions: int | None = None) -> list[tuple[str, ...]]:
        """The feature strings of each position, at most ``max_positions`` (see the module
        docstring)."""
        units = self._head_units(text, max_positions)
        return self._features(units[:max_positions], units[max_positions:max_positions + 1]
                              if max_positions is not None else [])

    def iter_feature_windows(self, text: str, window: int):
        """The features of all of ``text`` as consecutive windows of ``window`` positions (the
        last may be shorter; an empty text gives one empty window), tokenized piece by piece so
        memory stays flat in the text's length."""
        pending = []
        for piece_units in self._units_of_pieces(text, window):
            pending.extend(piece_units)
            while len(pending) > window:
                yield self._features(pending[:window], pending[window:window + 1])
                del pending[:window]
        yield self._features(pending, [])

    def _features(self, units: list, following: list) -> list[tuple[str, ...]]:
        """Features of ``units``; ``following`` holds the unit after the last one, if any."""
        if self.mode == "word":
            return [("w:" + w,) for w in units]
        if self.mode == "char":
            return [("c:" + ch,) for ch in units]
        nexts = [ch for ch, _ in units[1:]] + [following[0][0] if following else _END]
        return [("c:" + ch, "b:" + ch + nxt, "w:" + word)
                for (ch, word), nxt in zip(units, nexts)]
