"""The attribution methods: attention rollout, occlusion and integrated gradients of a trained
model's prediction, and :func:`explain_batch`, which runs them (how each is computed:
docs/explanations.md). Paddle is imported only when a model runs."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Sequence

import numpy as np

from newsclf.arguments import check_count
from newsclf.errors import NewsclfError
from newsclf.explain.result import BatchExplanation, Explanation
from newsclf.spec import EXPLAIN_METHODS as METHODS, IG_STEPS

UNK_TOKEN = "[UNK]"
# occlusion scores its variants in batches of at most this many positions (bounds memory for
# models with a long max_len; a default model's variants fit in one batch)
_POSITIONS_PER_BATCH = 16384


def check_method(method, steps=IG_STEPS) -> None:
    """Refuse an unknown ``method`` or a ``steps`` that is not a whole number >= 1, in one
    line."""
    if not isinstance(method, str) or method not in METHODS:
        raise NewsclfError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    check_count(steps, "steps")


def explain(predictor, text: str, *, method: str = "rollout",
            steps: int = IG_STEPS) -> Explanation:
    """Explain the prediction for one text: tokens, attention of every layer and head, and the
    importance of each token by ``method`` (``"rollout"``, ``"occlusion"`` or
    ``"integrated-gradients"`` with ``steps`` intervals; see docs/explanations.md)."""
    if not isinstance(text, str):
        raise TypeError(f"text is {type(text).__name__}, not str")
    return explain_batch(predictor, [text], method=method, steps=steps).explanations[0]


def explain_batch(predictor, texts: Sequence[str], *, method: str = "rollout",
                  steps: int = IG_STEPS) -> BatchExplanation:
    """Run ``texts`` through the model as one padded batch and explain each (``method`` and
    ``steps`` as for :func:`explain`).

    Each explanation's attention is cropped to its own text's positions (padding rows and
    columns removed); ``padded_attentions`` keeps the whole batch so the padding mask can be
    checked: every row sums to 1 over real positions and is exactly 0 on padding. Meant for a
    handful of texts (one batch, ``[batch, layers, heads, L, L]`` floats in memory); occlusion
    and integrated gradients then run one more batch per text."""
    from newsclf.arguments import as_text_list
    from newsclf.data import pad_batch, padding_mask
    from newsclf.runtime import configure_paddle

    check_method(method, steps)
    paddle = configure_paddle()

    texts = as_text_list(texts)
    if not texts:
        raise NewsclfError("no texts to explain; give at least one")
    max_len = predictor.spec.max_len
    encoded = predictor.encode(texts)
    tokens = [_tokens(predictor.tokenizer, text, max_len) for text in texts]
    for i, (ids, names) in enumerate(zip(encoded, tokens)):
        if len(ids) != len(names):
            raise RuntimeError(f"texts[{i}]: the tokenizer gave {len(names)} readable tokens "
                               f"for {len(ids)} model positions; please report this bug")
    batch = pad_batch(encoded)
    with _eval_mode(predictor.model) as model, paddle.no_grad():
        _, attentions = model(paddle.to_tensor(batch), return_attention=True)
    # the numbers users see: predict_proba's (it may run on the inference export)
    probabilities, problems = predictor.classify(texts)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    for i, problem in enumerate(problems):
        if problem:
            where = "the text" if len(texts) == 1 else f"texts[{i}]"
            raise NewsclfError(f"nothing to explain in {where}: {problem}; the model gives it "
                               "no label")
    # [layers, batch, heads, L, L] -> [batch, layers, heads, L, L]
    padded = np.stack([a.numpy() for a in attentions], axis=1)
    offset = 1 if predictor.spec.pooling == "cls" else 0
    mask = padding_mask(batch)
    if offset:
        mask = np.concatenate([np.ones((len(texts), 1), dtype=bool), mask], axis=1)
    classes = [str(c) for c in predictor.classes_]
    explanations = []
    for i, text in enumerate(texts):
        n = len(encoded[i]) + offset
        full = padded[i, :, :, :n, :n]
        best = int(np.argmax(probabilities[i]))
        details = {}
        if method == "rollout":
            importance = rollout_importance(full, offset)
        elif method == "occlusion":
            importance = occlusion_importance(predictor, encoded[i], best)
        else:
            importance, baseline, _ = integrated_gradients(predictor, encoded[i], best, steps)
            details = {"steps": int(steps), "baseline_score": baseline}
        explanations.append(Explanation(
            text=text, tokens=tokens[i], label=classes[best], score=float(probabilities[i, best]),
            probabilities={name: float(p) for name, p in zip(classes, probabilities[i])},
            attentions=full[:, :, offset:, offset:], importance=importance,
            model_attentions=full, offset=offset, tokenizer=predictor.tokenizer.mode,
            method=method, **details))
    return BatchExplanation(explanations, padded, mask, offset)


@contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()


def delete_positions(ids: np.ndarray, positions: Iterable[int]) -> np.ndarray:
    """``ids`` ``[length, n_features]`` (one text, as ``Predictor.encode`` gives it) without
    the rows at ``positions`` (model positions of tokens, 0-based; ``[CLS]`` is not among them):
    the later positions move up, the other rows are unchanged."""
    ids = np.asarray(ids)
    positions = np.unique(np.asarray(list(positions), dtype=np.int64))
    if len(positions) and (positions[0] < 0 or positions[-1] >= len(ids)):
        raise IndexError(f"positions {positions.tolist()} outside the text's {len(ids)} "
                         "positions")
    return np.delete(ids, positions, axis=0)


def model_probabilities(predictor, encoded: Sequence[np.ndarray]) -> np.ndarray:
    """Class probabilities ``[n, n_classes]`` (float64) of encoded id sequences from the
    dynamic graph (``predictor.model``, eval mode), padded into as few batches as memory
    allows. A sequence with no known token (or no position at all) gets equal probabilities,
    as ``Predictor.predict_proba`` gives a text with nothing to classify."""
    from newsclf.data import pad_batch
    from newsclf.model.inference import softmax
    from newsclf.runtime import configure_paddle
    from newsclf.vocab import UNK_ID

    paddle = configure_paddle()
    n_classes = len(predictor.classes_)
    out = np.full((len(encoded), n_classes), 1.0 / n_classes)
    known = [i for i, ids in enumerate(encoded) if len(ids) and (np.asarray(ids) != UNK_ID).any()]
    if not known:
        return out
    longest = max(len(encoded[i]) for i in known)
    rows = max(1, _POSITIONS_PER_BATCH // longest)
    with _eval_mode(predictor.model) as model, paddle.no_grad():
        for start in range(0, len(known), rows):
            chunk = known[start:start + rows]
            scores = model(paddle.to_tensor(pad_batch([encoded[i] for i in chunk]))).numpy()
            out[chunk] = softmax(scores.astype(np.float64))
    return out


def occlusion_importance(predictor, ids: np.ndarray, target: int) -> np.ndarray:
    """Leave-one-out importance ``[length]`` of each position of one encoded text for class
    index ``target``: ``p(target | ids) - p(target | ids without the position)``, the text and
    its variants scored together (docs/explanations.md)."""
    variants = [ids] + [delete_positions(ids, [j]) for j in range(len(ids))]
    p = model_probabilities(predictor, variants)[:, target]
    return p[0] - p[1:]


def integrated_gradients(predictor, ids: np.ndarray, target: int,
                         steps: int = IG_STEPS) -> tuple[np.ndarray, float, float]:
    """Integrated gradients ``[length]`` of ``p(target)`` for one encoded text with respect to
    each position's token-embedding scale, from the all-zero baseline to 1, by the trapezoid
    rule over ``steps`` intervals (``steps + 1`` points, one batch). Returns the attributions,
    ``p(target)`` at the baseline and at the input (the dynamic graph's; the attributions add
    up to about their difference)."""
    from newsclf.runtime import configure_paddle

    paddle = configure_paddle()
    import paddle.nn.functional as F

    steps = check_count(steps, "steps")
    ids = np.asarray(ids)
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] /= 2
    model = predictor.model
    # Paddle 3.3's CPU layer_norm backward gives a wrong input gradient unless the gradient of
    # the norm's weight is computed too: ask for the layer norms' weights (and drop theirs)
    norms = [layer.weight for layer in model.sublayers()
             if isinstance(layer, paddle.nn.LayerNorm) and layer.weight is not None]
    frozen = [weight for weight in norms if weight.stop_gradient]
    with _eval_mode(model), paddle.enable_grad():
        try:
            for weight in frozen:
                weight.stop_gradient = False
            scale = paddle.to_tensor(
                np.repeat(alphas[:, None], len(ids), axis=1).astype(np.float32),
                stop_gradient=False)
            batch = paddle.to_tensor(np.repeat(ids[None].astype(np.int64), steps + 1, axis=0))
            p = F.softmax(model(batch, token_scale=scale), axis=-1)[:, target]
            gradients = paddle.grad([p.sum()], [scale] + norms)[0]
        finally:
            for weight in frozen:
                weight.stop_gradient = True
    p = p.numpy().astype(np.float64)
    attributions = weights @ gradients.numpy().astype(np.float64)
    return attributions, float(p[0]), float(p[-1])


def _tokens(tokenizer, text: str, max_len: int) -> list[str]:
    tokens = tokenizer.tokenize(text, max_len)
    return tokens if tokens else [UNK_TOKEN]


def attention_rollout(attentions: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout ``[length, length]`` of one text's attention
    ``[layers, heads, length, length]`` (no padding): heads averaged, ``residual * I`` added for
    the skip connection, rows renormalized, layers multiplied first to last."""
    attentions = np.asarray(attentions, dtype=np.float64)
    length = attentions.shape[-1]
    rollout = np.eye(length)
    for layer in attentions:
        mixed = (1.0 - residual) * layer.mean(axis=0) + residual * np.eye(length)
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rollout = mixed @ rollout
    return rollout


def rollout_importance(attentions: np.ndarray, offset: int = 0) -> np.ndarray:
    """Per-token importance from one text's attention ``[layers, heads, n, n]`` (no padding):
    the rollout row of ``[CLS]`` (``offset=1``, its own column dropped) or the mean rollout row
    over all positions (the other poolings); non-negative, sums to 1."""
    rollout = attention_rollout(attentions)
    scores = rollout[0, offset:] if offset else rollout.mean(axis=0)
    scores = np.clip(scores, 0.0, None)
    total = scores.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(len(scores), 1.0 / len(scores))
    return scores / total
