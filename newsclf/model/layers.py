"""The network: the Transformer-encoder classifier as ``paddle.nn.Layer`` objects.

ids ``[batch, length, n_features]`` -> summed feature embeddings + positional encoding ->
``paddle.nn.TransformerEncoder`` with a padding mask -> pooling over real tokens only ->
dropout -> linear classifier. Padding is any position whose first feature id is ``[PAD]`` (0).
With ``ensemble_size > 1`` the model is an :class:`EnsembleClassifier`: that many such encoders,
each from its own initialization, whose class probabilities are averaged. Pooling and
positional encodings are chosen here (their names are listed in :mod:`newsclf.spec`).

Both networks return *scores*: ``softmax(scores)`` is the class probabilities (logits for one
encoder, log mean probabilities for an ensemble).
"""

from __future__ import annotations

import math

import numpy as np

from newsclf.runtime import configure_paddle
from newsclf.vocab import PAD_ID

paddle = configure_paddle()  # this module is the network: Paddle runs with newsclf's flags
import paddle.nn as nn  # noqa: E402
import paddle.nn.functional as F  # noqa: E402


def sinusoidal_encoding(length: int, d_model: int) -> np.ndarray:
    """The fixed positional encoding of Vaswani et al.: sin on even, cos on odd dimensions."""
    position = np.arange(length, dtype=np.float64)[:, None]
    rate = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.zeros((length, d_model), dtype=np.float64)
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate)[:, : d_model // 2]
    return table.astype(np.float32)


def attention_weights(layer: nn.TransformerEncoderLayer, x, attn_mask):
    """The softmax attention of one encoder layer for input ``x``: ``[batch, heads, q, k]``.

    Recomputed from the layer's own projections (Paddle's layer does not return them); masked
    keys get exactly zero weight."""
    attention = layer.self_attn
    if layer.normalize_before:
        x = layer.norm1(x)
    batch, length = x.shape[0], x.shape[1]

    def heads(projected):
        return projected.reshape([batch, length, attention.num_heads, attention.head_dim]) \
            .transpose([0, 2, 1, 3])

    q, k = heads(attention.q_proj(x)), heads(attention.k_proj(x))
    scores = paddle.matmul(q, k, transpose_y=True) * (attention.head_dim ** -0.5)
    keep = attn_mask.astype(scores.dtype)
    weights = F.softmax(scores + (keep - 1.0) * 1e9, axis=-1) * keep
    # Paddle's softmax clips exponents at -64, leaving ~1e-28 on masked keys: make them 0.
    return weights / weights.sum(axis=-1, keepdim=True)


class NewsClassifier(nn.Layer):
    """One encoder. The architecture arguments have no defaults on purpose: the one place that
    chooses them is :class:`~newsclf.config.TrainConfig` (or a saved model's spec)."""

    def __init__(self, vocab_size: int, n_classes: int, *, d_model: int, n_heads: int,
                 n_layers: int, d_ff: int, pre_ln: bool, pooling: str, position: str,
                 max_len: int, dropout: float = 0.0, attn_dropout: float = 0.0,
                 emb_dropout: float = 0.0):
        super().__init__()
        self.d_model, self.pooling, self.position = d_model, pooling, position
        self.embedding = nn.Embedding(
            vocab_size, d_model, padding_idx=PAD_ID,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Normal(std=d_model ** -0.5)))
        positions = max_len + 1  # room for the [CLS] position
        if position == "learned":
            self.position_embedding = nn.Embedding(positions, d_model)
        else:
            self.register_buffer("position_table",
                                 paddle.to_tensor(sinusoidal_encoding(positions, d_model)),
                                 persistable=False)
        if pooling == "cls":
            self.cls = self.create_parameter(
                [1, 1, d_model], default_initializer=nn.initializer.Normal(std=0.02))
        self.embedding_dropout = nn.Dropout(emb_dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=dropout,
                                           attn_dropout=attn_dropout, act_dropout=dropout,
                                           activation="gelu", normalize_before=pre_ln)
        self.encoder = nn.TransformerEncoder(layer, n_layers,
                                             norm=nn.LayerNorm(d_model) if pre_ln else None)
        if pooling == "attention":
            self.pool_query = nn.Linear(d_model, 1)
        self.head_dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * d_model if pooling == "mean_max" else d_model, n_classes)

    def forward(self, ids, return_attention: bool = False):
        """Logits ``[batch, n_classes]``; with ``return_attention`` also a list with one
        ``[batch, heads, length, length]`` attention tensor per layer."""
        mask = ids[:, :, 0] != PAD_ID                                   # [batch, length]
        x = self.embedding(ids).sum(axis=2) * math.sqrt(self.d_model)   # [batch, length, d]
        if self.pooling == "cls":
            x = paddle.concat([self.cls.expand([x.shape[0], 1, self.d_model]), x], axis=1)
            mask = paddle.concat([paddle.ones([mask.shape[0], 1], dtype="bool"), mask], axis=1)
        length = x.shape[1]
        if self.position == "learned":
            x = x + self.position_embedding(paddle.arange(length).unsqueeze(0))
        else:
            x = x + self.position_table[:length].unsqueeze(0)
        x = self.embedding_dropout(x)
        attn_mask = mask.unsqueeze([1, 2])                              # [batch, 1, 1, length]
        attentions = []
        for layer in self.encoder.layers:
            if return_attention:
                attentions.append(attention_weights(layer, x, attn_mask))
            x = layer(x, src_mask=attn_mask)
        if self.encoder.norm is not None:
            x = self.encoder.norm(x)
        logits = self.classifier(self.head_dropout(self.pool(x, mask)))
        return (logits, attentions) if return_attention else logits

    def pool(self, x, mask):
        """One vector per text from the real (unmasked) positions of ``x``."""
        if self.pooling == "cls":
            return x[:, 0]
        weights = mask.astype(x.dtype).unsqueeze(-1)                    # [batch, length, 1]
        if self.pooling == "attention":  # a learned score per position, softmax over real ones
            scores = self.pool_query(x) + (weights - 1.0) * 1e9
            weights = F.softmax(scores, axis=1) * weights
            return (x * weights).sum(axis=1) / weights.sum(axis=1)
        mean = (x * weights).sum(axis=1) / weights.sum(axis=1)
        if self.pooling == "mean":
            return mean
        maximum = (x + (weights - 1.0) * 1e9).max(axis=1)
        return maximum if self.pooling == "max" else paddle.concat([mean, maximum], axis=-1)


class EnsembleClassifier(nn.Layer):
    """Several :class:`NewsClassifier` members, each trained on its own (own seed: its own
    initialization, batch order and dropout). It predicts the mean of the members' class
    probabilities, returned as logits (their log), so softmax gives that mean."""

    def __init__(self, members: list):
        super().__init__()
        self.members = nn.LayerList(members)

    def forward(self, ids, return_attention: bool = False):
        """Logits ``[batch, n_classes]`` whose softmax is the members' mean probabilities. With
        ``return_attention`` also one ``[batch, members * heads, length, length]`` tensor per
        layer: the members' heads side by side."""
        outputs = [member(ids, return_attention=return_attention) for member in self.members]
        logits = [out[0] if return_attention else out for out in outputs]
        # a sum, not a mean: oneDNN's reduce-mean prints a diagnostic line on every call
        probabilities = paddle.add_n([F.softmax(x, axis=-1) for x in logits]) / len(logits)
        combined = paddle.log(probabilities.clip(min=1e-30))
        if not return_attention:
            return combined
        layers = zip(*(out[1] for out in outputs))
        return combined, [paddle.concat(list(layer), axis=1) for layer in layers]


def ensemble_weights(member_weights: list[dict]) -> dict:
    """The state dict of an :class:`EnsembleClassifier` from its members' state dicts."""
    return {f"members.{k}.{name}": value for k, weights in enumerate(member_weights)
            for name, value in weights.items()}


def build_network(spec, *, dropout: float = 0.0, attn_dropout: float = 0.0,
                  emb_dropout: float = 0.0):
    """The network a :class:`~newsclf.spec.ModelSpec` describes: a :class:`NewsClassifier`, or
    an :class:`EnsembleClassifier` of ``spec.ensemble_size`` of them. Dropout rates matter only
    for training (the defaults, 0, are what prediction uses)."""
    def member():
        return NewsClassifier(
            spec.vocab_size, spec.n_classes, d_model=spec.d_model, n_heads=spec.n_heads,
            n_layers=spec.n_layers, d_ff=spec.d_ff, dropout=dropout, attn_dropout=attn_dropout,
            emb_dropout=emb_dropout, pre_ln=spec.pre_ln, pooling=spec.pooling,
            position=spec.position, max_len=spec.max_len)

    if spec.ensemble_size == 1:
        return member()
    return EnsembleClassifier([member() for _ in range(spec.ensemble_size)])


def weights_of(model: nn.Layer) -> dict:
    """The model's parameters as numpy arrays (a copy), by state-dict name."""
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}
