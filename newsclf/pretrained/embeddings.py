"""Student embeddings that start knowing something: each vocabulary entry (a character, bigram
or jieba word) as the mean of a pretrained encoder's input embeddings of its pieces, projected
on the entries' first ``d_model`` principal components and scaled like the network's own
initialization."""

from __future__ import annotations

import numpy as np


def entry_vectors(encoder, tokens: list[str], d_model: int) -> np.ndarray:
    """``[len(tokens), d_model]`` initial embeddings for vocabulary ``tokens`` (``c:``, ``b:``
    or ``w:`` and the entry's text; the first two, ``[PAD]`` and ``[UNK]``, get zeros) from
    ``encoder`` (:class:`~.encoder.E5` or :class:`~.hf.HFEncoder`)."""
    pieces = []
    for token in tokens[2:]:
        ids = encoder.content_ids(token.split(":", 1)[-1])
        pieces.append([piece for piece in ids if piece != encoder.filler] or ids)
    rows = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in pieces]))
    table = encoder.input_embeddings(rows)
    row_of = {int(piece): row for row, piece in enumerate(rows)}
    mean = table.mean(axis=0) if len(table) else np.zeros(encoder.sizes.hidden, np.float32)
    vectors = np.stack([table[[row_of[piece] for piece in ids]].mean(axis=0) if ids else mean
                        for ids in pieces])
    vectors -= vectors.mean(axis=0)
    _, _, components = np.linalg.svd(vectors, full_matrices=False)
    # fewer components than d_model when the entries or e5's width are fewer: zeros after them
    projected = vectors @ components[:d_model].T
    # rows of the network's initialization, Normal(0, d_model ** -0.5), have norm about 1
    projected /= max(float(np.linalg.norm(projected, axis=1).mean()), 1e-12)
    out = np.zeros((len(tokens), d_model), dtype=np.float32)
    out[2:, :projected.shape[1]] = projected
    return out
