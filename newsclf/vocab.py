"""Vocabulary: feature strings to ids, built from the training texts (and the unlabelled texts
given for distillation), saved as JSON.

Ids 0 and 1 are ``[PAD]`` and ``[UNK]``; the rest are ordered by frequency, then by string, so
the same data always gives the same vocabulary.
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import accumulate, chain, repeat
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from newsclf.errors import ModelDirError

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1


def has_known_token(ids: np.ndarray) -> bool:
    """Whether a text's ids hold an entry of the vocabulary, not only ``[UNK]``: without one a
    model has nothing to classify the text by."""
    return bool((ids != UNK_ID).any())


class Vocab:
    def __init__(self, tokens: Sequence[str]):
        if list(tokens[:2]) != [PAD, UNK]:
            raise ModelDirError("vocabulary must start with [PAD] and [UNK]")
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ModelDirError("vocabulary has duplicate entries")
        self._ids_by_prefix: dict = {"": self.index}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, feature_sequences: Iterable[Sequence[Sequence[str]]], min_freq: int = 1,
              max_size: int | None = None) -> "Vocab":
        """Count every feature of every position; keep those seen ``min_freq`` times or more,
        the ``max_size`` most frequent at most (specials not counted)."""
        counts: Counter = Counter()
        for positions in feature_sequences:
            for features in positions:
                counts.update(features)
        kept = sorted((item for item in counts.items() if item[1] >= min_freq),
                      key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            kept = kept[:max_size]
        return cls([PAD, UNK] + [token for token, _ in kept])

    def encode(self, positions: Sequence[Sequence[str]], max_len: int,
               n_features: int = 1) -> np.ndarray:
        """Ids ``[length, n_features]`` (int64), truncated to ``max_len`` positions; an empty
        text becomes one ``[UNK]`` position so no row is all padding."""
        columns = list(zip(*positions[:max_len])) or [()] * n_features
        return self.encode_keys([""] * len(columns), [columns])[0]

    def encode_keys(self, prefixes: Sequence[str],
                    texts: Sequence[Sequence[Sequence[str]]]) -> list[np.ndarray]:
        """:meth:`encode` for many texts at once, the feature strings of each text given by
        feature: for each of ``prefixes``, the keys of its positions (those it keeps), a feature
        string being the prefix and a key. Ids ``[length, len(prefixes)]`` per text (views of
        one array)."""
        # an empty text: one position whose keys (None) belong to no feature, so [UNK]
        texts = [keys if len(keys[0]) else [[None]] * len(prefixes) for keys in texts]
        ends = list(accumulate(len(keys[0]) for keys in texts))
        ids = np.empty((ends[-1] if ends else 0, len(prefixes)), dtype=np.int64)
        for feature, prefix in enumerate(prefixes):
            ids[:, feature] = np.fromiter(
                map(self._ids_by_key(prefix).get,
                    chain.from_iterable(keys[feature] for keys in texts), repeat(UNK_ID)),
                dtype=np.int64, count=len(ids))
        return [ids[start:end] for start, end in zip([0, *ends], ends)]

    def _ids_by_key(self, prefix: str) -> dict:
        """The ids of the features that start with ``prefix``, by the rest of the string (made
        once per prefix; smaller than :attr:`index`, and no string to build per lookup)."""
        if prefix not in self._ids_by_prefix:
            self._ids_by_prefix[prefix] = {token[len(prefix):]: i
                                           for token, i in self.index.items()
                                           if token.startswith(prefix)}
        return self._ids_by_prefix[prefix]

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"tokens": self.tokens}, ensure_ascii=False),
                              encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            tokens = data["tokens"]
        except FileNotFoundError:
            raise ModelDirError(f"{path}: vocabulary file is missing") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelDirError(f"{path}: vocabulary file is damaged ({exc})") from None
        return cls(tokens)
