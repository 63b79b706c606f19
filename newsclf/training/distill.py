"""Distillation: one student encoder that learns what the ensemble predicts, so the model
directory predicts with one encoder instead of all the members.

The teacher is the members' mean class probabilities (their best epochs' weights) on the
training texts and on the unlabelled texts given, if any. The student has a member's
architecture and its own seed, and trains with the members' loop
(:func:`~newsclf.training.loop.train_member`: schedule, early stopping on dev, checkpoint in
``checkpoint/student``) towards ``alpha * smoothed label + (1 - alpha) * teacher`` on labelled
texts and the teacher alone on unlabelled ones. Cross-entropy is linear in its target, so that is
exactly ``alpha * CE(label, label_smoothing) + (1 - alpha) * CE(teacher)``. On ``--resume`` the
teacher is recomputed from the members' checkpoints, the same to the bit, and the student
continues from its own.

The model directory keeps the student unless, on dev data, its accuracy is more than
:data:`MAX_ACCURACY_LOSS` below the ensemble's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from newsclf.config import TrainConfig
from newsclf.errors import DataError, NewsclfError
from newsclf.training.distributed import Parallel
from newsclf.training.loop import MemberResult, RunSetup, train_member

MAX_ACCURACY_LOSS = 0.01  # dev accuracy the student may lose against the ensemble it replaces


def unlabeled_text_list(texts, source: str) -> list[str]:
    """The unlabelled texts to distil on, blank ones skipped; none left is an error."""
    from newsclf.predictor import as_text_list

    kept = [text for text in as_text_list(texts, source) if text.strip()]
    if not kept:
        raise DataError(f"{source}: no unlabelled texts (blank ones are skipped); give some, "
                        "one per line or in the text column, or leave out --unlabeled")
    return kept


def settle_distill(config: TrainConfig, unlabeled: bool) -> TrainConfig:
    """``config`` with ``distill`` decided: left unset (None) it is on exactly when there are
    unlabelled texts, as only a student learns from them; unlabelled texts without a student
    (one encoder, or ``distill=False``) are refused."""
    if config.distill is None:
        config = dataclasses.replace(config, distill=unlabeled)
    if unlabeled:
        check_unlabeled_allowed(config)
    return config


def check_unlabeled_allowed(config) -> None:
    """Unlabelled texts train the student only: refuse them when there is none."""
    fix = ("set --ensemble-size 2 or more" if config.ensemble_size == 1 else
           "leave out --no-distill (distill=False)" if not config.distill else None)
    if fix:
        raise NewsclfError("unlabelled texts (--unlabeled) are learned only by the student "
                           f"distilled from an ensemble: {fix}, or leave out --unlabeled")


def teacher_probabilities(members: list[MemberResult], setup: RunSetup, encoded: list,
                          parallel: Parallel) -> np.ndarray:
    """The members' mean class probabilities ``[n, n_classes]`` on encoded texts, each rank
    of a distributed run scoring its share."""
    from newsclf.model.inference import predict_scores, softmax
    from newsclf.model.layers import build_network
    from newsclf.runtime import configure_paddle

    paddle = configure_paddle()
    shard = encoded[parallel.rank::parallel.world]
    probabilities = []
    for member in members:
        network = build_network(setup.member_spec())
        network.set_state_dict({name: paddle.to_tensor(value)
                                for name, value in member.weights.items()})
        probabilities.append(softmax(predict_scores(network, shard)))
    return parallel.gather_rows(np.mean(probabilities, axis=0), len(encoded))


def student_targets(teacher: np.ndarray, labels: np.ndarray, alpha: float,
                    label_smoothing: float) -> np.ndarray:
    """The class distribution the student learns for each text: the first ``len(labels)``
    texts are labelled (``alpha`` on the smoothed label, the rest on the teacher), the others
    the teacher's alone."""
    n_classes = teacher.shape[1]
    smoothed = np.full((len(labels), n_classes), label_smoothing / n_classes, dtype=np.float32)
    smoothed[np.arange(len(labels)), labels] += 1.0 - label_smoothing
    targets = teacher.astype(np.float32)
    targets[:len(labels)] = alpha * smoothed + (1.0 - alpha) * targets[:len(labels)]
    return targets


def student_config(config: TrainConfig, automatic, n_texts: int) -> TrainConfig:
    """The student's settings: the run's, with the ``automatic`` ones chosen for the ``n_texts``
    it learns from (labelled and unlabelled), not for the labelled texts alone."""
    if not automatic:
        return config
    return dataclasses.replace(config, **dict.fromkeys(automatic)).for_training_size(n_texts)


def train_student(setup: RunSetup, members: list[MemberResult], unlabeled_ids: list, report,
                  parallel: Parallel) -> MemberResult:
    """Train the student of ``members`` on the training texts and ``unlabeled_ids``; returns
    its best epoch's weights and dev probabilities."""
    texts = setup.train_ids + unlabeled_ids
    config = setup.student_settings
    report("log", f"distilling the {len(members)} members into one student encoder: "
                  f"{len(setup.train_ids)} labelled and {len(unlabeled_ids)} unlabelled texts, "
                  f"alpha {config.distill_alpha}, {config.epochs} epochs")
    teacher = teacher_probabilities(members, setup, texts, parallel)
    student = dataclasses.replace(
        setup, config=config, train_ids=texts, y_train=None,
        targets=student_targets(teacher, setup.y_train, config.distill_alpha,
                                config.label_smoothing),
        run_identity={**setup.run_identity, "n_unlabeled": len(unlabeled_ids)})
    return train_member(config.ensemble_size, student, report, parallel)


def student_replaces_ensemble(student_accuracy: float | None,
                              ensemble_accuracy: float | None, log) -> bool:
    """Whether the model directory predicts with the student rather than the ensemble, said in
    one log line: yes unless its dev accuracy is more than :data:`MAX_ACCURACY_LOSS` below the
    ensemble's; yes without dev data (accuracies None)."""
    if ensemble_accuracy is None:
        log("no dev data to compare the student with the ensemble: the model predicts with the "
            "student")
        return True
    verdict = f"student dev accuracy {student_accuracy:.4f} (ensemble {ensemble_accuracy:.4f})"
    # rounded: accuracies are fractions of the dev set, and exactly 1 point less still passes
    if round(ensemble_accuracy - student_accuracy, 9) <= MAX_ACCURACY_LOSS:
        log(f"{verdict}: the model predicts with the student")
        return True
    log(f"{verdict}, more than {MAX_ACCURACY_LOSS * 100:g} point below: the model predicts with "
        "the ensemble")
    return False
