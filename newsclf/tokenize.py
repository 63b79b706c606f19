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


class Tokenizer:
    """Normalizes and tokenizes text in one of the modes ``word``, ``char`` or ``mixed``."""

    def __init__(self, mode: str = "mixed", user_dict: str | None = None):
        if mode not in ("word", "char", "mixed"):
            raise NewsclfError(f"tokenizer must be word, char or mixed, not {mode!r}")
        self.mode = mode
        self.user_dict = user_dict
        self.n_features = 3 if mode == "mixed" else 1

    def words(self, text: str) -> list[str]:
        """jieba words of the normalized text, spaces dropped."""
        return [w for w in _jieba(self.user_dict).lcut(normalize(text)) if not w.isspace()]

    def tokenize(self, text: str) -> list[str]:
        """The readable token of each position: words in ``word`` mode, characters otherwise."""
        if self.mode == "word":
            return self.words(text)
        return [ch for ch in normalize(text) if ch != " "]

    def features(self, text: str) -> list[tuple[str, ...]]:
        """The feature strings of each position (see the module docstring)."""
        if self.mode == "word":
            return [("w:" + w,) for w in self.words(text)]
        if self.mode == "char":
            return [("c:" + ch,) for ch in normalize(text) if ch != " "]
        positions = []
        for word in self.words(text):
            for ch in word:
                positions.append((ch, word))
        result = []
        for i, (ch, word) in enumerate(positions):
            following = positions[i + 1][0] if i + 1 < len(positions) else _END
            result.append(("c:" + ch, "b:" + ch + following, "w:" + word))
        return result
