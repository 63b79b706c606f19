"""What an explanation holds: the tokens, the attention of every layer and head, and each
token's importance, for one text (:class:`Explanation`) or a batch (:class:`BatchExplanation`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SIGNED_METHODS = ("occlusion", "integrated-gradients")
ROLLOUT_DESCRIPTION = "attention rollout (Abnar & Zuidema 2020), heads averaged, residual 0.5"


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
            ``label`` and negative when it argues against it (docs/explanations.md).
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
        """Text for a terminal: the prediction line, then the tokens shaded and ranked
        (:func:`newsclf.explain.render.terminal_text`)."""
        from newsclf.explain.render import terminal_text

        return terminal_text(self, color, top)

    def to_html(self, top: int = 10) -> str:
        """A self-contained HTML page of the explanation
        (:func:`newsclf.explain.render.html_page`)."""
        from newsclf.explain.render import html_page

        return html_page(self, top)


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
