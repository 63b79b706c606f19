"""The Transformer-encoder classifier (a ``paddle.nn.Layer``).

ids ``[batch, length, n_features]`` -> summed feature embeddings + positional encoding ->
``paddle.nn.TransformerEncoder`` with a padding mask -> pooling over real tokens only ->
dropout -> linear classifier. Padding is any position whose first feature id is ``[PAD]`` (0).
With ``ensemble_size > 1`` the model is an :class:`EnsembleClassifier`: that many such encoders,
each from its own initialization, whose class probabilities are averaged.
"""

from __future__ import annotations

import math
import os
import warnings

os.environ.setdefault("GLOG_minloglevel", "2")
# Paddle's strided-view kernels make matmul on transposed tensors (every attention head) 10-30x
# slower on CPU; contiguous kernels are what this model needs.
os.environ.setdefault("FLAGS_use_stride_kernel", "0")


def _keep_freed_memory_in_process() -> None:
    """Paddle's CPU tensors come from malloc; glibc serves blocks over 128 KiB with fresh mmaps,
    so every activation costs page faults (half the run time of this model). Raising glibc's
    mmap and trim thresholds lets freed blocks be reused."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave the allocator alone
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    mallopt(m_trim_threshold, 512 * 1024 * 1024)


_keep_freed_memory_in_process()
with warnings.catch_warnings():  # Paddle warns about ccache on import; irrelevant to users
    warnings.simplefilter("ignore")
    import paddle
    import paddle.nn as nn
    import paddle.nn.functional as F

import numpy as np

from newsclf.vocab import PAD_ID


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
    def __init__(self, vocab_size: int, n_classes: int, *, d_model: int = 128, n_heads: int = 4,
                 n_layers: int = 2, d_ff: int = 256, dropout: float = 0.1,
                 attn_dropout: float = 0.1, emb_dropout: float = 0.1, pre_ln: bool = False,
                 pooling: str = "mean", position: str = "sinusoidal", max_len: int = 64):
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


def build_model(config, vocab_size: int, n_classes: int):
    """The classifier a :class:`~newsclf.config.TrainConfig` describes: a
    :class:`NewsClassifier`, or an :class:`EnsembleClassifier` of ``config.ensemble_size``
    of them."""
    def member():
        return NewsClassifier(
            vocab_size, n_classes, d_model=config.d_model, n_heads=config.n_heads,
            n_layers=config.n_layers, d_ff=config.d_ff, dropout=config.dropout,
            attn_dropout=config.attn_dropout, emb_dropout=config.emb_dropout,
            pre_ln=config.pre_ln, pooling=config.pooling, position=config.position,
            max_len=config.max_len)

    if config.ensemble_size == 1:
        return member()
    return EnsembleClassifier([member() for _ in range(config.ensemble_size)])


def predict_logits(model, encoded, batch_size: int = 256) -> np.ndarray:
    """Logits ``[n, n_classes]`` for encoded texts, in input order; batches texts of similar
    length together so little is spent on padding. ``model`` is a :class:`NewsClassifier` or
    any callable mapping an int64 batch ``[batch, length, n_features]`` to logits."""
    from newsclf.data import length_sorted_batches, pad_batch

    if isinstance(model, nn.Layer):
        was_training = model.training
        model.eval()
        try:
            with paddle.no_grad():
                return predict_logits(lambda ids: model(paddle.to_tensor(ids)).numpy(),
                                      encoded, batch_size)
        finally:
            if was_training:
                model.train()
    out = None
    for index in length_sorted_batches([len(ids) for ids in encoded], batch_size):
        logits = model(pad_batch([encoded[i] for i in index]))
        if out is None:
            out = np.empty((len(encoded), logits.shape[1]), dtype=np.float32)
        out[index] = logits
    return out


def export_static(model: NewsClassifier, prefix: str, n_features: int) -> None:
    """Save the model as a static graph (``prefix.json`` + ``prefix.pdiparams``) for Paddle
    Inference; batch size and length stay dynamic."""
    from paddle.static import InputSpec

    model.eval()
    static = paddle.jit.to_static(
        model, input_spec=[InputSpec([None, None, n_features], "int64", name="ids")],
        full_graph=True)
    paddle.jit.save(static, prefix)


class InferenceEngine:
    """A Paddle Inference predictor on an exported graph (oneDNN on CPU): a callable from an
    int64 batch to logits, several times faster than the dynamic graph."""

    def __init__(self, prefix: str, threads: int = 1):
        import paddle.inference as inference

        config = inference.Config(prefix + ".json", prefix + ".pdiparams")
        config.disable_gpu()
        config.enable_mkldnn()
        config.set_cpu_math_library_num_threads(threads)
        config.disable_glog_info()
        config.switch_ir_optim(True)
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        self.input.reshape(list(ids.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(ids))
        self.predictor.run()
        return self.output.copy_to_cpu()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of a numpy array of logits."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def weights_of(model: nn.Layer) -> dict:
    """The model's parameters as numpy arrays (a copy), by state-dict name."""
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}
