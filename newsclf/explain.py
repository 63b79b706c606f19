"""Why the model labels a text as it does: token attributions, and what every head attends to.

This module owns everything about looking inside a trained model for one text (or a few):

>>> explanation = explain(predictor, "央行宣布下调存款准备金率")
>>> explanation.label, explanation.score          # the same as predictor.predict gives
>>> explanation.tokens                            # the readable token of each model position
>>> explanation.attentions.shape                  # [layers, heads, length, length]
>>> explanation.importance                        # one score per token, summing to 1
>>> print(explanation.to_terminal())              # prediction + tokens shaded / ranked
>>> Path("why.html").write_text(explanation.to_html(), encoding="utf-8")
>>> explain(predictor, text, method="occlusion").importance   # signed: + for the label, - against

Attention weights are the softmax weights of each encoder layer and head, exactly as the model
computes them (``NewsClassifier.forward(ids, return_attention=True)``): each query row sums to 1
over the real tokens and padding keys get exactly 0. They come from the dynamic graph
(``predictor.model``); the label, score and probabilities come from ``predictor.predict_proba``,
so they are the ones ``predict`` shows even when it runs on the Paddle Inference export (the
same weights; the export does not return attention). Every method below gives the attention
matrices; ``method`` only decides what ``Explanation.importance`` holds.

**Attention rollout** (``method="rollout"``, the default; Abnar & Zuidema, 2020, "Quantifying
Attention Flow in Transformers"): per layer, the attention is averaged over heads, the residual
connection is accounted for as ``0.5 * A + 0.5 * I`` (rows renormalized), and the layers are
multiplied from the first to the last, giving ``R[i, j]``: how much of position ``i``'s final
representation flows from input token ``j``. The classifier reads a pooled vector, so the
importance of token ``j`` is:

- ``pooling="mean"`` (and ``"max"``, ``"mean_max"``, ``"attention"``): the mean of ``R[i, j]``
  over the real query positions ``i`` (mean pooling averages those positions; for the others,
  which pick per-dimension maxima or weight positions by a learned score, this mean is an
  approximation);
- ``pooling="cls"``: the ``[CLS]`` row ``R[0, j]``.

Rollout scores are non-negative and sum to 1 over the text's tokens. Rollout tells where the
information the classifier sees comes from; it is not a gradient, so it does not say whether a
token pushed towards or away from the predicted class. The two other methods do: their scores
are **signed**, positive when the token supports the predicted class, negative when it argues
against it. Both explain the predicted class's probability ``p(label)`` (the softmax of the
network's output; for an ensemble, the members' mean probability), computed on the dynamic
graph in eval mode (no dropout).

**Occlusion** (``method="occlusion"``, leave one out): for each model position ``j`` the
text's ids without that position are scored; ``importance[j] = p(label | ids) - p(label | ids
without position j)``. The position is deleted from the sequence, not replaced by ``[PAD]``
or ``[UNK]``: the sequence gets one shorter and the later tokens move up one place. Positive:
the label's probability falls without the token (it supported the label); negative: it rises
(the token argued against the label); 0: no effect. The scores do not add up to anything in
particular (tokens act together). The other positions keep their ids: with the ``mixed``
tokenizer a neighbour's bigram and word features still name the deleted character, since it
is the model's input that loses a position, not the text that is tokenized again. A sequence
with no known token left (e.g. a one-token text without its token) gets equal probabilities,
as ``predict`` gives a text with nothing to classify. The ``n`` leave-one-out variants of a
text and the text itself are scored in one batch.

**Integrated gradients** (``method="integrated-gradients"``; Sundararajan, Taly & Yan, 2017,
"Axiomatic Attribution for Deep Networks"): each position's summed token embedding is
multiplied by a scale ``s[j]`` before the positional encoding is added (the network's
``token_scale``). The input is ``s = 1`` everywhere; the **baseline** is ``s = 0``
everywhere, i.e. all token embeddings zero, positional encodings (and ``[CLS]``) kept.
``importance[j]`` is the integral over ``alpha`` from 0 to 1 of ``d p(label) / d s[j]`` at
``s = alpha`` (every position), by the trapezoid rule over ``steps`` equal intervals (default
:data:`IG_STEPS` = 32; ``steps + 1`` points, scored with their gradients in one batch). The
scores add up to ``p(label | input) - p(label | baseline)`` (completeness), up to the
trapezoid rule's error, which shrinks with the square of ``steps``;
``Explanation.baseline_score`` is ``p(label | baseline)``. Positive: bringing the token's
embedding in from nothing raised the label's probability along that path (it supports the
label); negative: it lowered it (argues against).

**Ensembles** (``ensemble_size > 1``) report every member's heads side by side: layer ``l`` has
``ensemble_size * n_heads`` heads, member 0's first; rollout averages them like any heads.
Occlusion deletes the position for every member, integrated gradients scale every member's
embeddings alike; both explain the ensemble's mean probability.

**[CLS] models.** With ``pooling="cls"`` the model prepends a learned ``[CLS]`` position, so its
attention matrices have ``length + 1`` rows and columns, ``[CLS]`` first. Per-token outputs
(``tokens``, ``attentions``, ``importance``) drop that row and column, so they line up with the
text's tokens; ``Explanation.model_attentions`` keeps the matrices as the model computed them
(with ``[CLS]``), and ``Explanation.offset`` is 1. Rows of ``attentions`` then sum to 1 minus the
weight the query gives ``[CLS]``. ``[CLS]`` is not a token: occlusion never deletes it and
integrated gradients never scale it.

Paddle is imported only when a model runs.
"""

from __future__ import annotations

import html
import os
import sys
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from newsclf.arguments import check_count
from newsclf.errors import NewsclfError
from newsclf.spec import EXPLAIN_METHODS as METHODS, IG_STEPS

UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SIGNED_METHODS = ("occlusion", "integrated-gradients")
ROLLOUT_DESCRIPTION = "attention rollout (Abnar & Zuidema 2020), heads averaged, residual 0.5"

# xterm-256 background colours from pale to strong, for shading tokens by importance
_ANSI_SHADES = (231, 230, 229, 223, 222, 216, 215, 209, 203, 196)
# the same for signed scores: green for the predicted label, red against it
_ANSI_FOR = (231, 194, 157, 120, 83, 46)
_ANSI_AGAINST = (231, 224, 217, 210, 203, 196)
_HTML_FOR, _HTML_AGAINST, _HTML_ROLLOUT = "22, 163, 74", "220, 38, 38", "220, 38, 38"
# occlusion scores its variants in batches of at most this many positions (bounds memory for
# models with a long max_len; a default model's variants fit in one batch)
_POSITIONS_PER_BATCH = 16384


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
        importance: ``[length]`` score of each token by ``method``: for ``"rollout"`` the
            attention-rollout importance, >= 0, summing to 1; for ``"occlusion"`` and
            ``"integrated-gradients"`` a signed score, positive when the token supports
            ``label`` and negative when it argues against it (see the module docstring).
        model_attentions: the attention as the model computed it; the same as ``attentions``
            unless the model pools a ``[CLS]`` position, which is then row/column 0.
        offset: 1 for ``[CLS]`` models (position of token ``i`` in ``model_attentions`` is
            ``i + 1``), else 0.
        tokenizer: the tokenizer mode (``word``, ``char`` or ``mixed``).
        method: how ``importance`` was computed: ``"rollout"``, ``"occlusion"`` or
            ``"integrated-gradients"`` (:attr:`description` says it in words).
        steps: integrated gradients only: the number of trapezoid intervals.
        baseline_score: integrated gradients only: the label's probability at the baseline
            (no token embeddings); ``importance`` adds up to about the label's probability for
            the text minus this.
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
    method: str = "rollout"
    steps: int | None = None
    baseline_score: float | None = None

    def __post_init__(self):
        if self.model_attentions is None:
            self.model_attentions = self.attentions

    def __repr__(self) -> str:
        layers, heads = self.attentions.shape[:2]
        return (f"Explanation(label={self.label!r}, score={self.score:.4f}, "
                f"tokens={len(self.tokens)}, layers={layers}, heads={heads}, "
                f"method={self.method!r})")

    @property
    def signed(self) -> bool:
        """Whether ``importance`` is signed (+ for the label, - against it)."""
        return self.method in SIGNED_METHODS

    @property
    def description(self) -> str:
        """What the numbers in ``importance`` are, in one line."""
        if self.method == "occlusion":
            return (f"occlusion: how much p({self.label}) drops when the token is deleted from "
                    "the model's input (+ supports the label, - argues against it)")
        if self.method == "integrated-gradients":
            return (f"integrated gradients of p({self.label}) over {self.steps} steps from a "
                    f"baseline without token embeddings (p({self.label}) there: "
                    f"{self.baseline_score:.3f}); they add up to "
                    f"{float(self.importance.sum()):+.3f}, the rise from the baseline to the "
                    "text (+ supports the label, - argues against it)")
        return ROLLOUT_DESCRIPTION

    def top_positions(self, n: int = 10) -> np.ndarray:
        """The model positions of the ``n`` highest scores, highest first (ties keep text
        order); for signed methods these support the label most."""
        return np.argsort(-self.importance, kind="stable")[:max(0, int(n))]

    def top_tokens(self, n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` highest-scoring ``(token, importance)`` pairs, highest first (ties keep text
        order)."""
        return [(self.tokens[i], float(self.importance[i])) for i in self.top_positions(n)]

    def tokens_for(self, n: int = 10) -> list[tuple[str, float]]:
        """Up to ``n`` tokens with a positive score, highest first."""
        return [(token, weight) for token, weight in self.top_tokens(n) if weight > 0]

    def tokens_against(self, n: int = 10) -> list[tuple[str, float]]:
        """Up to ``n`` tokens with a negative score (they argue against the label), most
        negative first; none for rollout."""
        order = np.argsort(self.importance, kind="stable")[:max(0, int(n))]
        return [(self.tokens[i], float(self.importance[i])) for i in order
                if self.importance[i] < 0]

    def prediction_line(self, others: int = 2) -> str:
        ranked = sorted(self.probabilities.items(), key=lambda item: -item[1])
        line = f"{self.label} {self.score:.3f}"
        rest = [f"{name} {p:.3f}" for name, p in ranked if name != self.label][:max(0, others)]
        return line + (f"  (then {', '.join(rest)})" if rest else "")

    def to_terminal(self, color: bool | None = None, top: int = 10) -> str:
        """Text for a terminal: the prediction line, then the tokens.

        With ``color`` (default: when standard output is a terminal and ``NO_COLOR`` is unset)
        the whole token sequence is shown with ANSI backgrounds shaded by importance (signed
        methods: green for the label, red against it, darker = stronger), followed by the
        ranked tokens; without colour only the ranked tokens. Rollout ranks the ``top`` most
        important as ``token  0.123``; signed methods say what the numbers are, then list up to
        ``top`` tokens for the label (``token  +0.123``, strongest first) and up to ``top``
        against it (``token  -0.045``). Tokens are normalized text (no control characters), so
        the output is safe to print whatever the input contained."""
        if color is None:
            color = _stdout_is_terminal()
        lines = [f"prediction: {self.prediction_line()}"]
        separator = " " if self.tokenizer == "word" else ""
        if color:
            peak = float(np.abs(self.importance).max()) if len(self.importance) else 0.0
            shaded = []
            for token, weight in zip(self.tokens, self.importance):
                shades = _ANSI_SHADES if not self.signed else (
                    _ANSI_FOR if weight > 0 else _ANSI_AGAINST)
                level = 0 if peak <= 0 else int(round(abs(weight) / peak * (len(shades) - 1)))
                shaded.append(f"\x1b[48;5;{shades[level]}m\x1b[38;5;16m{token}\x1b[0m")
            legend = (f"green = for {self.label}, red = against; darker = stronger"
                      if self.signed else "darker = more important")
            lines.append(f"tokens ({legend}): " + separator.join(shaded))
        if not self.signed:
            ranked = self.top_tokens(top)
            if ranked:
                lines.append(f"most important tokens ({self.description.split(' (')[0]}):")
                lines += _ranked_lines(ranked, "{:.3f}")
            return "\n".join(lines)
        lines.append(f"importance: {self.description}")
        supporting, opposing = self.tokens_for(top), self.tokens_against(top)
        width = max((_display_width(token) for token, _ in supporting + opposing), default=0)
        for name, ranked in ((f"for {self.label}", supporting),
                             (f"against {self.label}", opposing)):
            lines.append(f"{name}:" if ranked else f"{name}: none")
            lines += _ranked_lines(ranked, "{:+.3f}", width)
        return "\n".join(lines)

    def to_html(self, top: int = 10) -> str:
        """A self-contained HTML page (UTF-8, inline CSS, no scripts or external resources):
        the prediction, the tokens highlighted by importance (signed methods: green for the
        label, red against it), a legend saying what the numbers are, the ``top`` most
        important tokens (signed methods: up to ``top`` for and up to ``top`` against the
        label) and the class probabilities."""
        esc = html.escape
        peak = float(np.abs(self.importance).max()) if len(self.importance) else 0.0
        separator = " " if self.tokenizer == "word" else ""
        number = "{:+.4f}" if self.signed else "{:.4f}"
        spans = []
        for i, (token, weight) in enumerate(zip(self.tokens, self.importance)):
            alpha = 0.0 if peak <= 0 else abs(weight) / peak
            colour = _HTML_ROLLOUT if not self.signed else (
                _HTML_FOR if weight > 0 else _HTML_AGAINST)
            spans.append(f'<span class="tok" style="background: rgba({colour}, {alpha:.3f})" '
                         f'title="#{i}: {number.format(weight)}">{esc(token)}</span>')
        rows = []
        for name, p in sorted(self.probabilities.items(), key=lambda item: -item[1]):
            mark = ' class="best"' if name == self.label else ""
            rows.append(f'<tr{mark}><td>{esc(str(name))}</td><td class="num">{p:.4f}</td>'
                        f'<td class="bar"><div style="width: {100 * p:.1f}%"></div></td></tr>')
        label = esc(self.label)
        if self.signed:
            legend = (f'<span class="tok" style="background: rgba({_HTML_FOR}, 0.6)">Green</span>'
                      f' = the token supports {label}, <span class="tok" style="background: '
                      f'rgba({_HTML_AGAINST}, 0.6)">red</span> = it argues against it; darker = '
                      f"stronger. The numbers are {esc(self.description)}. Hover a token for its "
                      "score.")
            ranked = (f"<h2>Tokens for {label}</h2>\n"
                      f"{_html_list(self.tokens_for(top), 'for', '{:+.3f}')}\n"
                      f"<h2>Tokens against {label}</h2>\n"
                      f"{_html_list(self.tokens_against(top), 'against', '{:+.3f}')}")
        else:
            legend = ("Darker red = more important to the pooled representation the classifier\n"
                      f"reads ({esc(self.description)}); hover a token for its score.")
            ranked = "<h2>Most important tokens</h2>\n" + _html_list(self.top_tokens(top))
        return f"""<!DOCTYPE html>
<html lang="zh">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>newsclf: {label} {self.score:.3f}</title>
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
<h1>Prediction: {label} <span class="num">({self.score:.3f})</span></h1>
<p class="text">{esc(self.text)}</p>
<div class="tokens">{separator.join(spans)}</div>
<p class="legend">{legend}</p>
{ranked}
<h2>Class probabilities</h2>
<table>
<tr><th>class</th><th>probability</th><th></th></tr>
{chr(10).join(rows)}
</table>
</body>
</html>
"""


def _ranked_lines(ranked, number: str, width: int | None = None) -> list[str]:
    if width is None:
        width = max((_display_width(token) for token, _ in ranked), default=0)
    return [f"  {token}{' ' * (width - _display_width(token))}  {number.format(weight)}"
            for token, weight in ranked]


def _html_list(ranked, css_class: str | None = None, number: str = "{:.3f}") -> str:
    if not ranked:
        return '<p class="legend">none</p>'
    attribute = f' class="{css_class}"' if css_class else ""
    items = "".join(f'<li>{html.escape(token)} <span class="num">{number.format(weight)}'
                    "</span></li>" for token, weight in ranked)
    return f"<ol{attribute}>{items}</ol>"


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
    ``"integrated-gradients"`` with ``steps`` intervals; see the module docstring)."""
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
    its variants scored together (see the module docstring)."""
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


def _stdout_is_terminal() -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)
