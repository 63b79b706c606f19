"""What a distilled student learns from (see :mod:`.distill`): its training batches varied
(:func:`vary_batch`) and its loss against the teacher on them (:class:`StudentObjective`, an
objective of :mod:`.objectives`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from newsclf.data import drop_tokens
from newsclf.vocab import PAD_ID


def vary_batch(ids: np.ndarray, texts: list, rng: np.random.RandomState, splice: float,
               token_dropout: float) -> tuple[np.ndarray, np.ndarray]:
    """Vary a padded batch ``[batch, length, features]`` in place, as the student sees it:
    each text, with probability ``splice``, keeps its positions before a random point inside
    it and takes those after it from a random text of ``texts`` (the same positions of that
    one, cut to the batch's length); then each token becomes ``[UNK]`` with probability
    ``token_dropout``. Returns whether each text was spliced, and the batch as it was before
    the token dropout: what the teacher scores."""
    length = ids.shape[1]
    spliced = rng.random_sample(len(ids)) < splice
    for row in np.flatnonzero(spliced):
        size = int((ids[row, :, 0] != PAD_ID).sum())
        cut = rng.randint(1, max(2, size))
        tail = texts[rng.randint(len(texts))][cut:length]
        ids[row, cut:] = PAD_ID
        ids[row, cut:cut + len(tail)] = tail
    whole_tokens = ids.copy()
    drop_tokens(ids, rng, token_dropout)
    return spliced, whole_tokens


class StudentObjective:
    """The student's loss on one varied batch: the KL divergence from the teacher's class
    probabilities to the student's, both at ``distill_temperature``, times its square (the
    gradients shrink with it); on labelled texts left whole, ``distill_alpha`` of it is the
    smoothed label's cross-entropy instead. The teacher, the ensemble of ``members``' weights,
    scores the varied texts before their token dropout, so the student learns to tell from
    fewer tokens what the teacher tells from all of them."""

    def __init__(self, setup, members: list[dict]):
        from newsclf.model.layers import build_network, ensemble_weights, load_weights

        self.config = setup.config
        self.pretrained = setup.pretrained
        self.texts, self.labels = setup.train_ids, setup.y_train
        self.teacher = build_network(dataclasses.replace(setup.model_spec(),
                                                         ensemble_size=len(members)))
        load_weights(self.teacher, ensemble_weights(members) if len(members) > 1 else members[0])
        self.teacher.eval()

    def vary(self, ids: np.ndarray, rng: np.random.RandomState):
        """Vary the batch ``ids`` in place (:func:`vary_batch`); returns what :meth:`loss`
        needs of it: whether each text was spliced, and the batch the teacher scores."""
        return vary_batch(ids, self.texts, rng, self.config.distill_splice,
                          self.config.distill_token_dropout)

    def loss(self, logits, index: np.ndarray, varied):
        import paddle

        spliced, teacher_ids = varied
        return self(logits, paddle.to_tensor(teacher_ids), self.labels[index], ~spliced, index)

    def __call__(self, logits, teacher_ids, labels: np.ndarray, whole: np.ndarray,
                 index: np.ndarray | None = None):
        """The mean loss of the student's ``logits``; ``teacher_ids`` the batch the teacher
        scores, ``labels`` -1 for unlabelled texts, ``whole`` False for spliced texts (whose
        label no longer holds), ``index`` the texts' numbers (needed with a pretrained teacher)."""
        import paddle
        import paddle.nn.functional as F

        config, temperature = self.config, self.config.distill_temperature
        with paddle.no_grad():
            teacher = F.softmax(self.teacher(teacher_ids) / temperature, axis=-1)
            if self.pretrained is not None and self.pretrained.weight and whole.any():
                teacher = self._with_pretrained(teacher, index, whole, temperature)
        # the KL divergence: cross-entropy less the teacher's entropy (no gradient), so the
        # loss shown falls towards 0 as the student matches the teacher
        soft = (F.cross_entropy(logits / temperature, teacher, soft_label=True,
                                reduction="none").squeeze(-1)
                + (teacher * paddle.log(teacher.clip(min=1e-30))).sum(axis=-1)) * temperature ** 2
        use_label = (labels >= 0) & whole
        if not config.distill_alpha or not use_label.any():
            return soft.mean()
        hard = F.cross_entropy(logits, paddle.to_tensor(np.maximum(labels, 0)),
                               label_smoothing=config.label_smoothing,
                               reduction="none").squeeze(-1)
        alpha = paddle.to_tensor(np.where(use_label, config.distill_alpha, 0.0)
                                 .astype("float32"))
        return (alpha * hard + (1.0 - alpha) * soft).mean()

    def _with_pretrained(self, teacher, index: np.ndarray, whole: np.ndarray,
                         temperature: float):
        """The members' probabilities ``teacher`` mixed with the pretrained teacher's on the
        texts left whole (it scored those texts, not spliced ones), both at ``temperature``."""
        import paddle

        softened = np.log(self.pretrained.train_probabilities[index].clip(1e-30)) / temperature
        softened = np.exp(softened - softened.max(axis=1, keepdims=True))
        softened /= softened.sum(axis=1, keepdims=True)
        share = np.where(whole, self.pretrained.weight, 0.0).astype("float32")[:, None]
        return (teacher * paddle.to_tensor(1.0 - share)
                + paddle.to_tensor((share * softened).astype("float32")))
