"""What a model's training minimizes, batch by batch: an objective varies each padded batch of
training texts as the model is to see it (``vary``), then gives the model's loss on it
(``loss``). An ordinary model or ensemble member learns the labels (:class:`LabelObjective`);
the distilled student learns its teacher's probabilities
(:class:`~newsclf.training.student.StudentObjective`)."""

from __future__ import annotations

import numpy as np

from newsclf.data import drop_tokens


class LabelObjective:
    """The smoothed label's cross-entropy, on texts whose tokens become ``[UNK]`` at
    ``token_dropout``."""

    def __init__(self, setup):
        self.config, self.labels = setup.config, setup.y_train

    def vary(self, ids: np.ndarray, rng: np.random.RandomState):
        drop_tokens(ids, rng, self.config.token_dropout)

    def loss(self, logits, index: np.ndarray, varied):
        import paddle
        import paddle.nn.functional as F

        return F.cross_entropy(logits, paddle.to_tensor(self.labels[index]),
                               label_smoothing=self.config.label_smoothing)
