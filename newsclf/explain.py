"""Attention inspection: which tokens a prediction rests on, and what every head attends to.

This module owns everything about looking inside a trained model for one text (or a few):

>>> explanation = explain(predictor, "央行宣布下调存款准备金率")
>>> explanation.label, explanation.score          # the same as predictor.predict gives
>>> explanation.tokens                            # the readable token of each model position
>>> explanation.attentions.shape                  # [layers, heads, length, length]
>>> explanation.importance                        # one score per token, summing to 1
>>> print(explanation.to_terminal())              # prediction + tokens shaded / ranked
>>> Path("why.html").write_text(explanation.to_html(), encoding="utf-8")

Attention weights are the softmax weights of each encoder layer and head, exactly as the model
computes them (``NewsClassifier.forward(ids, return_attention=True)``): each query row sums to 1
over the real tokens and padding keys get exactly 0. They come from the dynamic graph
(``predictor.model``); the label, score and probabilities come from ``predictor.predict_proba``,
so they are the ones ``predict`` shows even when it runs on the Paddle Inference export (the
same weights; the export does not return attention).

**Token importance is attention rollout** (Abnar & Zuidema, 2020, "Quantifying Attention Flow
in Transformers"): per layer, the attention is averaged over heads, the residual connection is
accounted for as ``0.5 * A + 0.5 * I`` (rows renormalized), and the layers are multiplied from the
first to the last, giving ``R[i, j]``: how much of position ``i``'s final representation flows
from input token ``j``. The classifier reads a pooled vector, so the importance of token ``j`` is:

- ``pooling="mean"`` (and ``"max"``, ``"mean_max"``, ``"attention"``): the mean of ``R[i, j]``
  over the real query positions ``i`` (mean pooling averages those positions; for the others,
  which pick per-dimension maxima or weight positions by a learned score, this mean is an
  approximation);
- ``pooling="cls"``: the ``[CLS]`` row ``R[0, j]``.

Scores are non-negative and sum to 1 over the text's tokens. Rollout tells where the
information the classifier sees comes from; it is not a gradient, so it does not say whether a
token pushed towards or away from the predicted class.

**Ensembles** (``ensemble_size > 1``) report every member's heads side by side: layer ``l`` has
``ensemble_size * n_heads`` heads, member 0's first; rollout averages them like any heads.

**[CLS] models.** With ``pooling="cls"`` the model prepends a learned ``[CLS]`` position, so its
attention matrices have ``length + 1`` rows and columns, ``[CLS]`` first. Per-token outputs
(``tokens``, ``attentions``, ``importance``) drop that row and column, so they line up with the
text's tokens; ``Explanation.model_attentions`` keeps the matrices as the model computed them
(with ``[CLS]``), and ``Explanation.offset`` is 1. Rows of ``attentions`` then sum to 1 minus the
weight the query gives ``[CLS]``.

Paddle is imported only when a model runs.
"""

from __future__ import annotations

import html
import os
import sys
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from newsclf.errors import NewsclfError

UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
IMPORTANCE_METHOD = "attention rollout (Abnar & Zuidema 2020), heads averaged, residual 0.5"

# xterm-256 background colours from pale to strong, for shading tokens by importance
_ANSI_SHADES = (231, 230, 229, 223, 222, 216, 215, 209, 203, 196)


@dataclass(eq=False)
class Explanation:
    """Why the model labels ``text`` as it does (build with :func:`explain`).

    Attributes:
        text: the input text, unchanged.
        tokens: the readable token of each model position (after truncation to ``max_len``):
            jieba words for the ``word`` tokenizer, characters for ``char``/``mixed``; an empty
            text is the single position ``[UNK]``.
        label, score: the predicted class and its probability, exactly as
            ``Predictor.predict`` gives them.
        probabilities: class name -> probability, in the model's class order (from
            ``Predictor.predict_proba``).
        attentions: ``[layers, heads, length, length]`` attention weights over the tokens
            (query rows, key columns), ``length = len(tokens)``.
        importance: ``[length]`` attention-rollout importance of each token, >= 0, sums to 1.
        model_attentions: the attention as the model computed it; the same as ``attentions``
            unless the model pools a ``[CLS]`` position, which is then row/column 0.
        offset: 1 for ``[CLS]`` models (position of token ``i`` in ``model_attentions`` is
            ``i + 1``), else 0.
        tokenizer: the tokenizer mode (``word``, ``char`` or ``mixed``).
        method: how ``importance`` was computed.
    """

    text: str
    tokens: list
    label: str
    score: float
    probabilities: dict
    attentions: np.ndarray
    importance: np.ndarray
    model_attentions: np.ndarray = field(repr=False, default=None)
    offset: int = 0
    tokenizer: str = "mixed"
    method: str = IMPORTANCE_METHOD

    def __post_init__(self):
        if self.model_attentions is None:
            self.model_attentions = self.attentions

    def __repr__(self) -> str:
        layers, heads = self.attentions.shape[:2]
        return (f"Explanation(label={self.label!r}, score={self.score:.4f}, "
                f"tokens={len(self.tokens)}, layers={layers}, heads={heads})")

    def top_tokens(self, n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` most important ``(token, importance)`` pairs, most important first
        (ties keep text order)."""
        order = np.argsort(-self.importance, kind="stable")[:max(0, int(n))]
        return [(self.tokens[i], float(self.importance[i])) for i in order]

    def prediction_line(self, others: int = 2) -> str:
        ranked = sorted(self.probabilities.items(), key=lambda item: -item[1])
        line = f"{self.label} {self.score:.3f}"
        rest = [f"{name} {p:.3f}" for name, p in ranked if name != self.label][:max(0, others)]
        return line + (f"  (then {', '.join(rest)})" if rest else "")

    def to_terminal(self, color: bool | None = None, top: int = 10) -> str:
        """Text for a terminal: the prediction line, then the tokens.

        With ``color`` (default: when standard output is a terminal and ``NO_COLOR`` is unset)
        the whole token sequence is shown with ANSI backgrounds shaded by importance, followed by
        the ``top`` most important tokens; without colour only the ranked list
        ``token  0.123``. Tokens are normalized text (no control characters), so the output is
        safe to print whatever the input contained."""
        if color is None:
            color = _stdout_is_terminal()
        lines = [f"prediction: {self.prediction_line()}"]
        if color:
            peak = float(self.importance.max()) if len(self.importance) else 0.0
            separator = " " if self.tokenizer == "word" else ""
            shaded = []
            for token, weight in zip(self.tokens, self.importance):
                level = 0 if peak <= 0 else int(round(weight / peak * (len(_ANSI_SHADES) - 1)))
                shaded.append(f"\x1b[48;5;{_ANSI_SHADES[level]}m\x1b[38;5;16m{token}\x1b[0m")
            lines.append("tokens (darker = more important): " + separator.join(shaded))
        ranked = self.top_tokens(top)
        if ranked:
            lines.append(f"most important tokens ({self.method.split(' (')[0]}):")
            width = max(_display_width(token) for token, _ in ranked)
            for token, weight in ranked:
                lines.append(f"  {token}{' ' * (width - _display_width(token))}  {weight:.3f}")
        return "\n".join(lines)

    def to_html(self, top: int = 10) -> str:
        """A self-contained HTML page (UTF-8, inline CSS, no scripts or external resources):
        the prediction, the tokens highlighted by importance, the ``top`` most important
        tokens and the class probabilities."""
        esc = html.escape
        peak = float(self.importance.max()) if len(self.importance) else 0.0
        separator = " " if self.tokenizer == "word" else ""
        spans = []
        for i, (token, weight) in enumerate(zip(self.tokens, self.importance)):
            alpha = 0.0 if peak <= 0 else weight / peak
            spans.append(f'<span class="tok" style="background: rgba(220, 38, 38, {alpha:.3f})" '
                         f'title="#{i}: {weight:.4f}">{esc(token)}</span>')
        rows = []
        for name, p in sorted(self.probabilities.items(), key=lambda item: -item[1]):
            mark = ' class="best"' if name == self.label else ""
            rows.append(f'<tr{mark}><td>{esc(str(name))}</td><td class="num">{p:.4f}</td>'
                        f'<td class="bar"><div style="width: {100 * p:.1f}%"></div></td></tr>')
        top = "".join(f"<li>{esc(token)} <span class=\"num\">{weight:.3f}</span></li>"
                      for token, weight in self.top_tokens(top))
        return f"""<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>newsclf: {esc(self.label)} {self.score:.3f}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Zen Hei",
       sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #222; }}
h1 {{ font-size: 1.3em; }}
.text {{ color: #555; }}
.tokens {{ font-size: 1.6em; line-height: 1.9; margin: 1em 0; }}
.tok {{ padding: 0.1em 0.05em; border-radius: 0.15em; }}
.legend {{ font-size: 0.85em; color: #666; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ padding: 0.2em 0.8em; text-align: left; }}
tr.best {{ font-weight: bold; }}
.num {{ font-variant-numeric: tabular-nums; text-align: right; }}
td.bar {{ width: 12em; }}
td.bar div {{ height: 0.8em; background: #3b82f6; }}
ol {{ columns: 2; }}
</style>
</head>
<body>
<h1>Prediction: {esc(self.label)} <span class="num">({self.score:.3f})</span></h1>
<p class="text">{esc(self.text)}</p>
<div class="tokens">{separator.join(spans)}</div>
<p class="legend">Darker red = more important to the pooled representation the classifier
reads ({esc(self.method)}); hover a token for its score.</p>
<h2>Most important tokens</h2>
<ol>{top}</ol>
<h2>Class probabilities</h2>
<table>
<tr><th>class</th><th>probability</th><th></th></tr>
{chr(10).join(rows)}
</table>
</body>
</html>
"""


@dataclass(eq=False)
class BatchExplanation:
    """The result of :func:`explain_batch`: one :class:`Explanation` per text (cropped to the
    text's own length) and the raw padded attention of the batch.

    Attributes:
        explanations: one per input text, in input order.
        padded_attentions: ``[batch, layers, heads, L, L]``, the attention of the padded batch
            as the model computed it (``L`` = longest text, + 1 for ``[CLS]`` models).
        mask: ``[batch, L]``, True on real positions (and ``[CLS]``), False on padding.
        offset: 1 for ``[CLS]`` models, else 0.
    """

    explanations: list
    padded_attentions: np.ndarray
    mask: np.ndarray
    offset: int = 0

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, index):
        return self.explanations[index]

    def __iter__(self):
        return iter(self.explanations)


def explain(predictor, text: str) -> Explanation:
    """Explain the prediction for one text: tokens, attention of every layer and head, and
    attention-rollout importance of each token (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"text is {type(text).__name__}, not str")
    return explain_batch(predictor, [text]).explanations[0]


def explain_batch(predictor, texts: Sequence[str]) -> BatchExplanation:
    """Run ``texts`` through the model as one padded batch and explain each.

    Each explanation's attention is cropped to its own text's positions (padding rows and
    columns removed); ``padded_attentions`` keeps the whole batch so the padding mask can be
    checked: every row sums to 1 over real positions and is exactly 0 on padding. Meant for a
    handful of texts (one batch, ``[batch, layers, heads, L, L]`` floats in memory)."""
    from newsclf.data import pad_batch, padding_mask
    from newsclf.runtime import configure_paddle

    paddle = configure_paddle()

    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
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
    model = predictor.model
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            _, attentions = model(paddle.to_tensor(batch), return_attention=True)
    finally:
        if was_training:
            model.train()
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
        explanations.append(Explanation(
            text=text, tokens=tokens[i], label=classes[best], score=float(probabilities[i, best]),
            probabilities={name: float(p) for name, p in zip(classes, probabilities[i])},
            attentions=full[:, :, offset:, offset:], importance=rollout_importance(full, offset),
            model_attentions=full, offset=offset, tokenizer=predictor.tokenizer.mode))
    return BatchExplanation(explanations, padded, mask, offset)


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


def _stdout_is_terminal() -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
