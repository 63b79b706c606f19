"""The SentencePiece Unigram tokenizer of XLM-R (multilingual-e5-small's), from the tables
of :mod:`.e5file`, computing exactly what the bundled engine's ``e5.c`` does.

A text is normalized code point by code point (the model's own map), runs of spaces become
one, a space is put in front unless one is there, spaces become the metaspace ``▁``; then the
Viterbi path picks the pieces with the highest total score, a character no piece covers
becoming ``<unk>`` with the lowest score less 10. Pieces are ids of the model's vocabulary.
"""

from __future__ import annotations

import re

import numpy as np

from newsclf.pretrained.e5file import PieceTables

METASPACE = "\u2581"
_UNKNOWN_PENALTY = 10.0
_SPACES = re.compile(" {2,}")


class UnigramTokenizer:
    def __init__(self, tables: PieceTables):
        self.tables = tables
        self._ids = {}
        for index, piece in enumerate(tables.pieces):
            if piece and index != tables.unk:
                self._ids.setdefault(piece, index)  # the engine finds a piece's first id
        self._scores = tables.scores.astype(np.float64).tolist()
        self._unknown_score = float(tables.scores.min()) - _UNKNOWN_PENALTY
        self._max_bytes = max(len(piece.encode("utf-8")) for piece in tables.pieces)
        self._normalize = str.maketrans(tables.normalization)

    def piece_id(self, piece: str) -> int | None:
        """The id of the piece spelled ``piece`` (metaspaces included), None if none is."""
        return self._ids.get(piece)

    def normalize(self, text: str) -> str:
        """The text as the pieces spell it: normalized, spaces collapsed, metaspaces."""
        text = _SPACES.sub(" ", text.translate(self._normalize))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def content_ids(self, text: str) -> list[int]:
        """The piece ids of ``text``, without the ``<s>`` and ``</s>`` around them."""
        chars = self.normalize(text)
        n = len(chars)
        ends = np.cumsum([0] + [len(c.encode("utf-8")) for c in chars]).tolist()
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        step = [(0, 0)] * (n + 1)  # (piece id or -1 for <unk>, start of that piece)
        ids, scores, max_bytes = self._ids, self._scores, self._max_bytes
        for start in range(n):
            here = best[start]
            if here <= -1e29:
                continue
            for end in range(start + 1, n + 1):
                if ends[end] - ends[start] > max_bytes:
                    break
                piece = ids.get(chars[start:end])
                if piece is not None and here + scores[piece] > best[end]:
                    best[end] = here + scores[piece]
                    step[end] = (piece, start)
            if here + self._unknown_score > best[start + 1]:
                best[start + 1] = here + self._unknown_score
                step[start + 1] = (-1, start)
        out = []
        position = n
        while position > 0:
            piece, position = step[position]
            out.append(self.tables.unk if piece < 0 else piece)
        return out[::-1]
