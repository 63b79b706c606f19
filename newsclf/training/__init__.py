"""Training: from labelled texts to a model directory.

- :mod:`.run`: :func:`train`, one whole run (classes, vocabulary, members, student, the model
  directory, metrics, dev evaluation, export);
- :mod:`.loop`: one encoder's epochs (schedule, batches, seeds, early stopping);
- :mod:`.checkpoint`: saving and restoring a run after its last finished epoch;
- :mod:`.report`: what a run shows and records while it trains (one line per epoch for the
  whole ensemble, the progress bar, ``train_log.jsonl``);
- :mod:`.ensemble`: ensemble members in worker processes;
- :mod:`.distill`: the student encoder distilled from the ensemble, and whether it replaces it;
- :mod:`.student`: what the student learns from (varied batches, its loss against the teacher);
- :mod:`.distributed`: data-parallel training under ``paddle.distributed.launch``;
- :mod:`.lock`: one run at a time per output directory.
"""

from newsclf.training.run import TrainResult, resolve_classes, train

__all__ = ["train", "TrainResult", "resolve_classes"]
