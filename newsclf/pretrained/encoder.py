"""multilingual-e5-small as a Paddle network: BERT embeddings (piece + position + token type
0, layer norm), newsclf's own post-LN encoder layers (:class:`~newsclf.model.layers.EncoderLayer`)
and mean pooling over each text's pieces, ``<s>`` and ``</s>`` included, L2-normalized: the
sentence vector e5 defines. :class:`E5` ties it to its tokenizer and weights.

The network holds the embedding rows of the pieces it was built for only (a vocabulary of
250,037 pieces is 384 MB in float32; a corpus of headlines uses a tenth of them).
"""

from __future__ import annotations

import numpy as np

from newsclf.model.layers import EncoderLayer, configure_paddle
from newsclf.pretrained.e5file import E5File, bundled_e5_path
from newsclf.pretrained.sentencepiece import METASPACE, UnigramTokenizer

paddle = configure_paddle()
import paddle.nn as nn  # noqa: E402

QUERY_PREFIX = "query: "  # e5 reads a text to classify as a query


class PretrainedEncoder(nn.Layer):
    """A BERT-family encoder over ``n_rows`` piece embeddings; returns per-token states."""

    def __init__(self, n_rows: int, sizes, dropout: float = 0.0):
        super().__init__()
        self.word_embeddings = nn.Embedding(n_rows, sizes.hidden)
        self.position_embeddings = nn.Embedding(sizes.max_positions, sizes.hidden)
        self.token_type = self.create_parameter([sizes.hidden])
        self.embedding_norm = nn.LayerNorm(sizes.hidden, epsilon=sizes.layer_norm_eps)
        self.embedding_dropout = nn.Dropout(dropout)
        self.layers = nn.LayerList([
            EncoderLayer(sizes.hidden, sizes.heads, sizes.feed_forward, dropout=dropout,
                         attn_dropout=dropout, pre_ln=False, relative=False,
                         layer_norm_eps=sizes.layer_norm_eps)
            for _ in range(sizes.layers)])

    def embed(self, rows):
        """The layer-norm'd embeddings of ``rows`` ``[batch, length]``."""
        positions = paddle.arange(rows.shape[1]).unsqueeze(0)
        x = self.word_embeddings(rows) + self.position_embeddings(positions) + self.token_type
        return self.embedding_dropout(self.embedding_norm(x))

    def forward(self, rows, mask, first_layer: int = 0, states=None, last_layer=None):
        """Token states after the last layer (or before ``last_layer``), ``[batch, length,
        hidden]``; ``mask`` ``[batch, length]`` is True on real tokens. From ``first_layer`` on
        ``states`` (the states after layer ``first_layer - 1``) when given."""
        x = self.embed(rows) if states is None else states
        keep = mask.unsqueeze([1, 2])
        for layer in self.layers[first_layer:last_layer]:
            x, _ = layer(x, keep)
        return x


class PooledLayers(nn.Layer):
    """The encoder layers of a :class:`PretrainedEncoder` from embedded pieces and their mask
    to mean-pooled states: the part of e5 that runs on ONNX Runtime (:mod:`.onnx`)."""

    def __init__(self, encoder: PretrainedEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, embedded, mask):
        return mean_pool(self.encoder(None, mask, states=embedded), mask)


def mean_pool(states, mask):
    """The mean of each text's token states over its real tokens."""
    weights = mask.astype(states.dtype).unsqueeze(-1)
    return (states * weights).sum(axis=1) / weights.sum(axis=1)


def state_dict_from_e5(e5: E5File, rows: np.ndarray) -> dict:
    """The :class:`PretrainedEncoder` weights of ``e5`` for the embedding rows ``rows``."""
    weights = {"word_embeddings.weight": e5.tensor("emb.word", rows=rows),
               "position_embeddings.weight": e5.tensor("emb.pos"),
               "token_type": e5.tensor("emb.type")[0],
               "embedding_norm.weight": e5.tensor("emb.ln.w"),
               "embedding_norm.bias": e5.tensor("emb.ln.b")}
    parts = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
             "ao": "self_attn.out_proj", "fi": "linear1", "fo": "linear2"}
    norms = {"aln": "norm1", "oln": "norm2"}
    for layer in range(e5.sizes.layers):
        for short, name in parts.items():
            # e5 keeps [out, in] matrices, paddle.nn.Linear [in, out]
            weights[f"layers.{layer}.{name}.weight"] = e5.tensor(f"l{layer}.{short}.w").T.copy()
            weights[f"layers.{layer}.{name}.bias"] = e5.tensor(f"l{layer}.{short}.b")
        for short, name in norms.items():
            weights[f"layers.{layer}.{name}.weight"] = e5.tensor(f"l{layer}.{short}.w")
            weights[f"layers.{layer}.{name}.bias"] = e5.tensor(f"l{layer}.{short}.b")
    return weights


class E5:
    """multilingual-e5-small: its tokenizer and, built on demand for the pieces of the texts
    it is given, its Paddle network. ``path``: a packed e5 file (default: the bundled one)."""

    name = "multilingual-e5-small"

    def __init__(self, path=None):
        self.file = E5File(path or bundled_e5_path())
        self.sizes = self.file.sizes
        self.tokenizer = UnigramTokenizer(self.file.pieces)
        self.max_content = self.sizes.max_positions - 2

    def piece_ids(self, text: str) -> list[int]:
        """``<s>``, the pieces of ``query: text`` (the first 510), ``</s>``."""
        pieces = self.file.pieces
        content = self.tokenizer.content_ids(QUERY_PREFIX + text)[:self.max_content]
        return [pieces.bos, *content, pieces.eos]

    def network(self, piece_lists: list, dropout: float = 0.0):
        """The network for texts of ``piece_lists``, and the map from piece id to its row."""
        return network_of(self.sizes, lambda rows: state_dict_from_e5(self.file, rows),
                          piece_lists, self.file.pieces.pad, dropout)

    def identity(self) -> str:
        """What tells this encoder from another (part of the teacher cache's key)."""
        return f"{self.file.path.name}:{self.file.path.stat().st_size}"

    @property
    def filler(self) -> int:
        """The piece of a lone word start, which says nothing of a text's content."""
        return self.tokenizer.piece_id(METASPACE)

    def content_ids(self, text: str) -> list[int]:
        """The pieces of ``text`` alone (no ``<s>``, ``</s>`` or query prefix)."""
        return self.tokenizer.content_ids(text)

    def input_embeddings(self, rows: np.ndarray) -> np.ndarray:
        """The piece embeddings of ``rows`` ``[len(rows), hidden]``."""
        return self.file.tensor("emb.word", rows=rows)

    def sentence_vectors(self, texts: list[str], batch_size: int = 64, progress=None,
                         engine: str = "auto", threads: int | None = None) -> np.ndarray:
        """e5's sentence vectors of ``texts`` ``[n, hidden]``, L2-normalized, as the bundled
        engine computes them for texts of up to 510 pieces (longer ones are cut, where the
        engine averages windows). ``progress`` is called with each batch's size. The encoder
        layers run on ONNX Runtime (``engine="auto"``, when it and paddle2onnx are there) or
        on the Paddle network (``"paddle"``, and when ONNX Runtime's first batch differs from
        it); ``threads``: ONNX Runtime's (default: the cores this process may use)."""
        piece_lists = [self.piece_ids(text) for text in texts]
        network, row_of = self.network(piece_lists)
        out = run_layers(PooledLayers(network), network, piece_lists, row_of, self.sizes.hidden,
                         batch_size, progress, engine, threads)
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-6)


def run_layers(layers: nn.Layer, network: PretrainedEncoder, piece_lists: list, row_of: dict,
               width: int, batch_size: int = 64, progress=None, engine: str = "auto",
               threads: int | None = None) -> np.ndarray:
    """``layers`` (from ``network``'s embedded pieces and their mask to ``width`` numbers per
    text) on the texts of ``piece_lists``, ``[n, width]``: on ONNX Runtime or on Paddle, as
    :meth:`E5.sentence_vectors` says."""
    from newsclf.pretrained.onnx import onnx_layers
    from newsclf.workers import available_cores

    if engine not in ("auto", "paddle"):
        raise ValueError(f"engine must be 'auto' or 'paddle', not {engine!r}")
    layers.eval()
    runtime = (onnx_layers(layers, network.word_embeddings.weight.shape[1],
                           threads or available_cores()) if engine == "auto" else None)
    out = np.zeros((len(piece_lists), width), dtype=np.float32)
    for number, (index, rows, mask) in enumerate(batches(piece_lists, row_of, batch_size)):
        with paddle.no_grad():
            embedded = network.embed(paddle.to_tensor(rows))
            result = runtime(embedded.numpy(), mask) if runtime is not None else None
            if result is None or number == 0:  # the first batch checks the converted graph
                on_paddle = layers(embedded, paddle.to_tensor(mask)).numpy()
                if result is None or not _same_vectors(result, on_paddle):
                    runtime, result = None, on_paddle
        out[index] = result
        if progress is not None:
            progress(len(index))
    return out


def network_of(sizes, weights_of_rows, piece_lists: list, pad: int, dropout: float = 0.0):
    """A :class:`PretrainedEncoder` of ``sizes`` holding the embedding rows of the pieces of
    ``piece_lists`` (and ``pad``), its weights ``weights_of_rows(rows)``; and the map from piece
    id to its row."""
    rows = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids in piece_lists]
                                    + [[pad]]))
    network = PretrainedEncoder(len(rows), sizes, dropout)
    load_strictly(network, weights_of_rows(rows))
    network.eval()
    return network, {int(piece): row for row, piece in enumerate(rows)}


def _same_vectors(ours: np.ndarray, reference: np.ndarray) -> bool:
    """Whether pooled states point the same way (cosine >= 0.9999 for every row)."""
    cosine = (ours * reference).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)).clip(min=1e-12)
    return bool(np.all(cosine >= 0.9999))


def load_strictly(network: nn.Layer, weights: dict) -> None:
    """Set every parameter of ``network`` from ``weights`` (numpy arrays by state-dict name),
    refusing a missing, extra or misshapen one (Paddle would skip it with a warning and leave
    its random initialization)."""
    expected = {name: tuple(value.shape) for name, value in network.state_dict().items()}
    given = {name: tuple(value.shape) for name, value in weights.items()}
    if expected != given:
        wrong = sorted(set(expected.items()) ^ set(given.items()))
        raise ValueError(f"pretrained weights do not fit the network: {wrong[:4]}")
    network.set_state_dict({name: paddle.to_tensor(value) for name, value in weights.items()})


def batches(piece_lists: list, row_of: dict, batch_size: int):
    """Batches of similar length: (indices, rows ``[batch, length]``, mask), in length order."""
    order = np.argsort([len(ids) for ids in piece_lists], kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        length = max(len(piece_lists[i]) for i in index)
        rows = np.zeros((len(index), length), dtype=np.int64)
        mask = np.zeros((len(index), length), dtype=bool)
        for k, i in enumerate(index):
            ids = piece_lists[i]
            rows[k, :len(ids)] = [row_of[piece] for piece in ids]
            mask[k, :len(ids)] = True
        yield index, rows, mask
