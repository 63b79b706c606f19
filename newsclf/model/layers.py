"""The network: the Transformer-encoder classifier as ``paddle.nn.Layer`` objects.

ids ``[batch, length, n_features]`` -> summed feature embeddings + positional encoding ->
newsclf's own encoder layers (:class:`EncoderLayer`: multi-head self-attention that returns its
weights, with rotary or relative positions as options) -> pooling over real tokens only ->
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
from newsclf.spec import RELATIVE_DISTANCE
from newsclf.vocab import PAD_ID, UNK_ID

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


def rotary_tables(length: int, head_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The cosines and sines of rotary position encoding (Su et al., RoFormer), ``[length,
    head_dim]`` each: position ``m`` turns dimension pair ``(i, i + head_dim / 2)`` by the angle
    ``m * 10000 ** (-2i / head_dim)``."""
    rate = 10000.0 ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = np.arange(length, dtype=np.float64)[:, None] * rate[None, :]
    angles = np.concatenate([angles, angles], axis=1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rotate(x, cos, sin):
    """Rotary encoding of queries or keys ``x`` ``[batch, heads, length, head_dim]`` at the
    positions whose ``cos``/``sin`` rows are given (``[length, head_dim]``). The dot product of
    a rotated query at position ``m`` and a rotated key at ``n`` depends on ``n - m`` only."""
    half = x.shape[-1] // 2
    turned = paddle.concat([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + turned * sin


def relative_buckets(length: int, max_distance: int) -> np.ndarray:
    """The learned-bias index of every query-key pair of ``length`` positions, ``[query, key]``:
    the distance ``key - query`` clipped to ``[-max_distance, max_distance]`` (Shaw et al.,
    2018), shifted to start at 0."""
    positions = np.arange(length)
    distance = positions[None, :] - positions[:, None]
    return (np.clip(distance, -max_distance, max_distance) + max_distance).astype(np.int64)


class SelfAttention(nn.Layer):
    """Multi-head scaled dot-product self-attention with a padding mask that returns its weights.

    Its parameters and arithmetic are those of ``paddle.nn.MultiHeadAttention`` (so models
    trained with Paddle's layer load and predict the same); on top, queries and keys can be
    rotated (``rotary``) and the scores can get a learned bias per head and clipped distance
    (``relative``)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float, relative: bool):
        super().__init__()
        self.num_heads, self.head_dim, self.dropout = n_heads, d_model // n_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.relative_bias = nn.Embedding(
            2 * RELATIVE_DISTANCE + 1, n_heads,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0))) \
            if relative else None

    def scores(self, x, rotary=None, buckets=None):
        """The attention scores before the mask and softmax, and the values:
        ``[batch, heads, length, length]``, ``[batch, heads, length, head_dim]``."""
        def heads(projected):
            return projected.reshape([0, 0, self.num_heads, self.head_dim]) \
                .transpose([0, 2, 1, 3])

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        if rotary is not None:
            q, k = rotate(q, *rotary), rotate(k, *rotary)
        scores = paddle.matmul(q * (self.head_dim ** -0.5), k, transpose_y=True)
        if buckets is not None:
            scores = scores + self.relative_bias(buckets).transpose([2, 0, 1]).unsqueeze(0)
        return scores, v

    def forward(self, x, keep, rotary=None, buckets=None):
        """The attended ``x`` and the softmax weights ``[batch, heads, length, length]``;
        ``keep`` is ``[batch, 1, 1, length]``, False on padding keys."""
        scores, v = self.scores(x, rotary, buckets)
        weights = F.softmax(scores + (keep.astype(scores.dtype) - 1.0) * 1e9, axis=-1)
        dropped = F.dropout(weights, self.dropout, training=self.training,
                            mode="upscale_in_train") if self.dropout else weights
        out = paddle.matmul(dropped, v).transpose([0, 2, 1, 3])
        return self.out_proj(out.reshape([0, 0, self.num_heads * self.head_dim])), weights


class EncoderLayer(nn.Layer):
    """One Transformer encoder layer: self-attention and a GELU feed-forward block, each with a
    residual connection and layer norm (after it, or before it with ``pre_ln``). Parameter names
    and arithmetic match ``paddle.nn.TransformerEncoderLayer``; with post-LN, those of a BERT
    layer too (:mod:`newsclf.pretrained.encoder` builds one from them)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, dropout: float,
                 attn_dropout: float, pre_ln: bool, relative: bool,
                 layer_norm_eps: float = 1e-5):
        super().__init__()
        self.normalize_before = pre_ln
        self.self_attn = SelfAttention(d_model, n_heads, attn_dropout, relative)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.dropout = nn.Dropout(dropout, mode="upscale_in_train")
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, epsilon=layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, epsilon=layer_norm_eps)
        self.dropout1 = nn.Dropout(dropout, mode="upscale_in_train")
        self.dropout2 = nn.Dropout(dropout, mode="upscale_in_train")

    def forward(self, x, keep, rotary=None, buckets=None):
        """``x`` after this layer, and the layer's attention weights."""
        residual = x
        if self.normalize_before:
            x = self.norm1(x)
        attended, weights = self.self_attn(x, keep, rotary, buckets)
        x = residual + self.dropout1(attended)
        if not self.normalize_before:
            x = self.norm1(x)
        residual = x
        if self.normalize_before:
            x = self.norm2(x)
        x = residual + self.dropout2(self.linear2(self.dropout(F.gelu(self.linear1(x)))))
        if not self.normalize_before:
            x = self.norm2(x)
        return x, weights


class Encoder(nn.Layer):
    """A stack of :class:`EncoderLayer` and, for pre-LN stacks, a final layer norm (the state
    dict names of ``paddle.nn.TransformerEncoder``)."""

    def __init__(self, layers: list, norm=None):
        super().__init__()
        self.layers = nn.LayerList(layers)
        self.norm = norm


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
        elif position == "sinusoidal":
            self.register_buffer("position_table",
                                 paddle.to_tensor(sinusoidal_encoding(positions, d_model)),
                                 persistable=False)
        elif position == "relative":
            self.register_buffer(
                "relative_table", paddle.to_tensor(relative_buckets(positions, RELATIVE_DISTANCE)),
                persistable=False)
        elif position == "rotary":
            for name, table in zip(("rotary_cos", "rotary_sin"),
                                   rotary_tables(positions, d_model // n_heads)):
                self.register_buffer(name, paddle.to_tensor(table), persistable=False)
        if pooling == "cls":
            self.cls = self.create_parameter(
                [1, 1, d_model], default_initializer=nn.initializer.Normal(std=0.02))
        self.embedding_dropout = nn.Dropout(emb_dropout)
        self.encoder = Encoder(
            [EncoderLayer(d_model, n_heads, d_ff, dropout=dropout, attn_dropout=attn_dropout,
                          pre_ln=pre_ln, relative=position == "relative")
             for _ in range(n_layers)],
            norm=nn.LayerNorm(d_model) if pre_ln else None)
        if pooling == "attention":
            self.pool_query = nn.Linear(d_model, 1)
        self.head_dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * d_model if pooling == "mean_max" else d_model, n_classes)

    def forward(self, ids, return_attention: bool = False, token_scale=None):
        """Logits ``[batch, n_classes]``; with ``return_attention`` also a list with one
        ``[batch, heads, length, length]`` attention tensor per layer (each query's weights sum
        to 1 over real tokens; padding keys get exactly 0). ``token_scale`` ``[batch, length]``
        multiplies each position's token embedding (the path of integrated gradients)."""
        mask = ids[:, :, 0] != PAD_ID                                   # [batch, length]
        x = self.embedding(ids).sum(axis=2) * math.sqrt(self.d_model)   # [batch, length, d]
        if token_scale is not None:
            x = x * token_scale.unsqueeze(-1)
        if self.pooling == "cls":
            x = paddle.concat([self.cls.expand([x.shape[0], 1, self.d_model]), x], axis=1)
            mask = paddle.concat([paddle.ones([mask.shape[0], 1], dtype="bool"), mask], axis=1)
        length = x.shape[1]
        rotary = buckets = None
        if self.position == "learned":
            x = x + self.position_embedding(paddle.arange(length).unsqueeze(0))
        elif self.position == "sinusoidal":
            x = x + self.position_table[:length].unsqueeze(0)
        elif self.position == "rotary":
            rotary = self.rotary_cos[:length], self.rotary_sin[:length]
        else:
            buckets = self.relative_table[:length, :length]
        x = self.embedding_dropout(x)
        keep = mask.unsqueeze([1, 2])                                   # [batch, 1, 1, length]
        attentions = []
        for layer in self.encoder.layers:
            x, weights = layer(x, keep, rotary, buckets)
            if return_attention:
                # the softmax leaves ~1e-28 on masked keys (exponents clip at -64): make them 0
                weights = weights * keep.astype(weights.dtype)
                attentions.append(weights / weights.sum(axis=-1, keepdim=True))
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

    def forward(self, ids, return_attention: bool = False, token_scale=None):
        """Logits ``[batch, n_classes]`` whose softmax is the members' mean probabilities. With
        ``return_attention`` also one ``[batch, members * heads, length, length]`` tensor per
        layer: the members' heads side by side. ``token_scale`` goes to every member."""
        outputs = [member(ids, return_attention=return_attention, token_scale=token_scale)
                   for member in self.members]
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


def load_weights(model: nn.Layer, weights: dict) -> None:
    """Set the model's parameters from numpy arrays by state-dict name (the inverse of
    :func:`weights_of`)."""
    model.set_state_dict({name: paddle.to_tensor(value) for name, value in weights.items()})


def embedding_rows_as_unk(weights: dict, rows: np.ndarray) -> dict:
    """A single model's ``weights`` with the token embedding rows ``rows`` (a mask over the
    vocabulary) set to its ``[UNK]`` row, so the model reads those entries as ``[UNK]``."""
    embedding = weights["embedding.weight"].copy()
    embedding[rows] = embedding[UNK_ID]
    return {**weights, "embedding.weight": embedding}
