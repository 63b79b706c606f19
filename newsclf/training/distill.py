"""Distillation: one student encoder that learns what the ensemble predicts, so the model
directory predicts with one encoder instead of all the members.

The teacher is the members (their best epochs' weights) averaging their class probabilities.
The student has a member's architecture, starts from the first member's weights (a later
round's student: from its teacher's) on large training sets and from its own random
initialization on small ones (:func:`student_start`),
draws its randomness from its own seed, and trains with the members' loop
(:func:`~newsclf.training.loop.train_member`: schedule, early stopping on dev, checkpoint in
``checkpoint/student``) on the training texts and the unlabelled texts given, if any. Each
batch is first varied (:func:`~newsclf.training.student.vary_batch`: in ``distill_splice`` of
the texts the tail is replaced by another text's, then tokens become ``[UNK]`` at
``distill_token_dropout``). The teacher scores the varied texts before their token dropout,
so the student learns the teacher's function on many more inputs than the training texts
themselves, and to tell from fewer tokens what the teacher tells from all of them
(:class:`~newsclf.training.student.StudentObjective`): with 5,000 labelled THUCNews headlines
and 39,973 unlabelled ones, a student whose teacher saw the texts after the token dropout too
reached 0.8492 dev accuracy, this one 0.8537 (same teacher, 0.8455; 45,000 labelled headlines
alone: 0.9066 and 0.9072). Its loss is the KL divergence from the
teacher's probabilities at ``distill_temperature`` (times its square, as the gradients shrink
with it), and, on labelled texts left whole, ``distill_alpha`` of the smoothed label's
cross-entropy. On ``--resume`` the teacher is rebuilt from the members' checkpoints and the
student continues from its own; the variations come from each epoch's seed.

On THUCNews dev (45,000 headlines, seeds 1-3) a student trained this way came within 0.05-0.27
points of its ensemble, where one learning the teacher's probabilities on the training texts
alone was no better than an ordinary encoder (benchmarks/RESULTS.md).

With ``distill_rounds`` above 1 (the default with unlabelled texts), students train one after
the other, each the next one's teacher (checkpoints ``student``, ``student-2``, ...; each round
its own seed), and the one with the best dev macro-F1 is kept. The first student reads the
entries found only in the unlabelled texts through what the members say of the texts around
them; the second learns them from a teacher that knows them. On THUCNews dev with 1,000
labelled and 43,989 unlabelled headlines (seed 1): 0.7538 after one round, 0.7694 after two
(TF-IDF + LinearSVC on the labelled texts: 0.7553). On the 1,000 labelled headlines alone a
second round lost a point (0.7429, then 0.7329): hence the default of one round without
unlabelled texts.

The model directory keeps the student unless, on dev data, its accuracy is more than
:data:`MAX_ACCURACY_LOSS` below the ensemble's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from newsclf.config import EPOCH_RANGE, TEXTS_PER_STUDENT, TrainConfig
from newsclf.errors import DataError, NewsclfError
from newsclf.training.distributed import Parallel
from newsclf.training.loop import MemberResult, RunSetup, train_member

MAX_ACCURACY_LOSS = 0.005  # dev accuracy the student may lose against the ensemble it replaces


def unlabeled_text_list(texts, source: str) -> list[str]:
    """The unlabelled texts to distil on, blank ones skipped; none left is an error."""
    from newsclf.arguments import as_text_list

    kept = [text for text in as_text_list(texts, source) if text.strip()]
    if not kept:
        raise DataError(f"{source}: no unlabelled texts (blank ones are skipped); give some, "
                        "one per line or in the text column, or leave out --unlabeled")
    return kept


def check_unlabeled_allowed(config) -> None:
    """Unlabelled texts train the student only: refuse them when there is none."""
    fix = ("set --ensemble-size 2 or more" if config.ensemble_size == 1 else
           "leave out --no-distill (distill=False)" if not config.distill else None)
    if fix:
        raise NewsclfError("unlabelled texts (--unlabeled) are learned only by the student "
                           f"distilled from an ensemble: {fix}, or leave out --unlabeled")


def student_config(config: TrainConfig, automatic, n_texts: int) -> TrainConfig:
    """The student's settings: the run's, with the ``automatic`` ones chosen for the ``n_texts``
    it learns from (labelled and unlabelled) and :data:`~newsclf.config.TEXTS_PER_STUDENT`,
    except an automatic patience: the student does not stop early. Its best dev epoch is kept
    either way, and the varied batches keep teaching after a plateau: on 15,000 THUCNews
    headlines a student stopped after epoch 10 of 24 at 0.8777 dev accuracy, while the same run
    through all 24 reached 0.8825 (epoch 18)."""
    automatic = [name for name in automatic if name in ("epochs", "patience")]
    if not automatic:
        return config
    chosen = dataclasses.replace(config, **dict.fromkeys(automatic)).for_training_size(
        n_texts, TEXTS_PER_STUDENT)
    if "patience" in automatic:
        chosen = dataclasses.replace(chosen, patience=chosen.epochs)
    return chosen


def student_start(config: TrainConfig) -> str:
    """Where the student of members trained with ``config`` starts: ``"member 1"`` (the first
    member's weights) when the members went over the training texts at most
    ``EPOCH_RANGE[0]`` times, as on large sets, else ``"random"``. Members that went over a
    small set many times know it by heart, a poor start. On THUCNews dev, from member 1 rather
    than a random start: 45,000 headlines (4 epochs) 0.9090 against 0.9078 (one teacher);
    15,000 (12 epochs) -0.42, 5,000 (36) -0.39 and 1,000 (100) -0.95, one seed each
    (benchmarks/RESULTS.md)."""
    return "member 1" if config.epochs <= EPOCH_RANGE[0] else "random"


def train_students(setup: RunSetup, members: list[MemberResult], unlabeled_ids: list, report,
                   parallel: Parallel) -> list[MemberResult]:
    """Train ``distill_rounds`` students one after the other on the training texts and
    ``unlabeled_ids``: the first learns from ``members``, each later one from the student
    before it. Returns each round's best epoch's weights and dev probabilities."""
    students = []
    for round_number in range(1, setup.student_settings.distill_rounds + 1):
        teachers = members if round_number == 1 else students[-1:]
        students.append(train_student(setup, teachers, unlabeled_ids, report, parallel,
                                      round_number))
    return students


def train_student(setup: RunSetup, teachers: list[MemberResult], unlabeled_ids: list, report,
                  parallel: Parallel, round_number: int = 1) -> MemberResult:
    """Train the student of round ``round_number``, whose teacher is ``teachers`` (the
    members, or the student of the round before), on the training texts and
    ``unlabeled_ids``; returns its best epoch's weights and dev probabilities."""
    config = setup.student_settings
    rounds = config.distill_rounds
    teacher = (f"the {len(teachers)} members" if round_number == 1 else
               f"the round {round_number - 1} student")
    report("log", f"distilling {teacher} into one student encoder"
                  + (f" (round {round_number} of {rounds})" if rounds > 1 else "")
                  + f": {len(setup.train_ids)} labelled and {len(unlabeled_ids)} unlabelled "
                  f"texts, {config.epochs} epochs")
    labels = np.concatenate([setup.y_train, np.full(len(unlabeled_ids), -1, dtype=np.int64)])
    student = dataclasses.replace(
        setup, config=config, train_ids=setup.train_ids + unlabeled_ids, y_train=labels,
        teacher=[teacher.weights for teacher in teachers],
        initial_weights=(teachers[0].weights if student_start(setup.config) == "member 1"
                         else None),
        initial_embedding=setup.initial_embedding if round_number == 1 else None,
        run_identity={**setup.run_identity, "n_unlabeled": len(unlabeled_ids)})
    return train_member(config.ensemble_size + round_number - 1, student, report, parallel)


def best_round(students: list[MemberResult]) -> MemberResult:
    """The student the model keeps: the last round's, unless an earlier round's did better
    on dev (macro-F1 of its best epoch, as epochs are chosen); the last without dev data."""
    def score(student: MemberResult):
        return student.history[student.best_epoch - 1].get("dev_macro_f1")

    if score(students[-1]) is None:
        return students[-1]
    return max(reversed(students), key=score)


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
    # rounded: accuracies are fractions of the dev set, and exactly the limit still passes
    if round(ensemble_accuracy - student_accuracy, 9) <= MAX_ACCURACY_LOSS:
        log(f"{verdict}: the model predicts with the student")
        return True
    log(f"{verdict}, more than {MAX_ACCURACY_LOSS * 100:g} points below: the model predicts with "
        "the ensemble")
    return False
