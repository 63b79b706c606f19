"""Batching encoded texts for the model (padding, masks, length-sorted batches, token dropout)
and encoding texts to ids. Reading data files is :mod:`newsclf.datafiles`; its main functions are re-exported
here."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from newsclf.datafiles import (LabelledData, decode_bytes, detect_encoding, iter_input_chunks,
                               read_class_names, read_file_text, read_labelled)
from newsclf.vocab import PAD_ID, UNK_ID

__all__ = ["LabelledData", "decode_bytes", "detect_encoding", "drop_tokens", "encode_texts",
           "iter_input_chunks", "length_sorted_batches", "pad_batch", "padding_mask",
           "read_class_names", "read_file_text", "read_labelled"]


def pad_batch(encoded: Sequence[np.ndarray]) -> np.ndarray:
    """Stack encoded texts ``[length_i, n_features]`` into ``[batch, longest, n_features]``,
    padded with ``[PAD]``; the padding mask is ``ids[:, :, 0] != PAD_ID``."""
    longest = max(len(ids) for ids in encoded)
    batch = np.full((len(encoded), longest, encoded[0].shape[1]), PAD_ID, dtype=np.int64)
    for row, ids in enumerate(encoded):
        batch[row, :len(ids)] = ids
    return batch


def drop_tokens(ids: np.ndarray, rng: np.random.RandomState, rate: float) -> None:
    """Turn each real token of the padded batch ``ids`` into ``[UNK]`` with probability
    ``rate``, in place (training's token dropout; no draw at rate 0)."""
    if rate:
        dropped = (rng.random_sample(ids.shape) < rate) & (ids != PAD_ID)
        ids[dropped] = UNK_ID


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
