"""A whole training run: from labelled texts to a checked model directory.

:func:`train` resolves the classes, claims and locks the output directory (which may refuse it,
or have the run write a staging directory that replaces the old model at the end; see
:mod:`.lock`), builds the vocabulary from the training texts (and the unlabelled ones), encodes
the data, trains the encoder (or the ensemble's members, in processes when several cores are
free, then the student distilled from them; see :mod:`.loop`, :mod:`.ensemble` and
:mod:`.distill`), writes the model directory, its metrics and dev evaluation, and ends with the
inference export.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.arguments import check_count
from newsclf.config import TrainConfig
from newsclf.data import LabelledData, encode_texts
from newsclf.errors import DataError, NewsclfError, TrainingDiverged
from newsclf.files import sha256_bytes, sha256_texts, write_json
from newsclf.layouts import CHECKPOINT_DIR, EVAL_DEV, METRICS, TRAIN_LOG
from newsclf.modeldir import save_model_dir
from newsclf.tokenize import Tokenizer, read_user_dictionary
from newsclf.training.checkpoint import checkpoint_settings
from newsclf.training.datachecks import data_warnings
from newsclf.training.distill import (best_round, check_unlabeled_allowed, student_config,
                                      student_replaces_ensemble, student_start, train_students,
                                      unlabeled_text_list)
from newsclf.training.distributed import Parallel
from newsclf.training.ensemble import train_members_in_processes
from newsclf.training.lock import OutputDirectory
from newsclf.training.loop import MemberResult, RunSetup, train_member
from newsclf.training.report import Reporter
from newsclf.vocab import PAD_ID, UNK_ID, Vocab, has_known_token


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict


def resolve_classes(train: LabelledData, dev: LabelledData | None,
                    class_names: Sequence[str] | None) -> list[str]:
    """The model's classes: the class-names file's order, else sorted training labels. Every
    class must have training texts, as in scikit-learn, whose classifiers learn the classes of
    ``y``: a class of the class names that none has is refused, as is a dev label none has."""
    if len(train) == 0:
        raise DataError(f"{train.source}: no training texts")
    if dev is not None and len(dev) == 0:
        raise DataError(f"{dev.source}: no dev texts; give labelled dev data or none")
    for data in (train, dev):
        blank = next((i for i, text in enumerate(data.texts) if not text.strip()), None) \
            if data is not None else None
        if blank is not None:
            raise DataError(f"{data.source}[{blank}]: empty text; every example needs one "
                            "(a file's empty text is refused the same way): drop it")
    seen = sorted(set(train.labels))
    classes = list(class_names) if class_names is not None else seen
    if len(seen) < 2:
        raise DataError(f"{train.source}: only one class ({seen[0]!r}) in the training data; "
                        "a classifier needs at least two")
    unknown = sorted(set(train.labels) - set(classes))
    if unknown:
        raise DataError(f"{train.source}: labels not in the class list: {', '.join(unknown)}")
    trained = set(seen)
    untrained = [(index, name) for index, name in enumerate(classes) if name not in trained]
    if untrained:
        source = getattr(class_names, "source", None)
        where = f"{source}:{untrained[0][0] + 1}" if source else "class_names"
        shown = ", ".join(f"{name!r}" + (f" (line {index + 1}, id {index})" if source else "")
                          for index, name in untrained)
        # ids name classes by their line: a line removed above the last renumbers those below
        renumbers = source and untrained[0][0] < len(classes) - len(untrained)
        raise DataError(f"{where}: no training text in {train.source} is labelled with class(es) "
                        f"{shown}, so the model could not learn them; remove them from "
                        f"{source or 'class_names'} or add training texts labelled with them"
                        + (" (if the labels are class ids, removing a line changes the ids of "
                           "the lines below it)" if renumbers else ""))
    if dev is not None:
        unseen = sorted(set(dev.labels) - set(seen))
        if unseen:
            raise DataError(f"{dev.source}: class(es) {', '.join(unseen)} never occur in the "
                            f"training data {train.source}; the model could not learn them")
    return classes


def train(config: TrainConfig, train_data: LabelledData, dev_data: LabelledData | None,
          output_dir: str | Path, class_names: Sequence[str] | None = None,
          progress: bool = True, log=print, resume: bool = False,
          export: bool = True, workers: int | None = None,
          overwrite: bool = False, unlabeled_texts: Sequence[str] | None = None,
          device: str = "cpu") -> TrainResult:
    """Train a model and write its directory to ``output_dir``; returns the best dev metrics.

    ``output_dir`` must be absent or empty, unless ``overwrite=True``: then a model (or an
    interrupted run) there is replaced by the new model once it is complete, and keeps loading
    until then. A folder of other files is always refused (:mod:`.lock` has the rules).
    Without ``dev_data`` every epoch runs and the last one is kept. After each epoch a
    checkpoint (weights, optimizer, schedule, progress) goes to ``output_dir/checkpoint``;
    ``resume=True`` continues from it and ends exactly where an uninterrupted run would (with
    ``overwrite=True``: continues an interrupted overwriting run).
    ``export=True`` finishes with the Paddle Inference export that fast prediction runs on.
    With ``config.ensemble_size > 1`` each member trains on its own (own seed, early stopping
    and checkpoint), ``workers`` of them at once in separate processes (default: as many as
    there are members and CPU cores); the result does not depend on ``workers``. Then, with
    ``config.distill`` (the default), one student encoder learns what the members predict
    together, on varied batches of the training texts and ``unlabeled_texts`` (blank ones
    skipped; their words join the vocabulary, the members read those they never trained on as
    ``[UNK]``, and the student learns them from the teacher), and the model directory predicts
    with it alone, unless its dev accuracy is more than half a point below the ensemble's (see
    :mod:`.distill`). ``device``: ``cpu``, or ``gpu``/``gpu:N`` with ``paddlepaddle-gpu``.
    """
    from newsclf.runtime import check_device, configure_paddle, use_device

    config.validate()
    workers = check_count(workers, "workers", optional=True)
    device = check_device(device)
    if unlabeled_texts is not None:
        check_unlabeled_allowed(config)
        unlabeled_texts = unlabeled_text_list(unlabeled_texts, "unlabeled_texts")
    if config.teacher != "none":  # before any training: the teacher is needed at its end
        from newsclf.pretrained.teacher import check_teacher

        check_teacher(config.teacher)
    output = OutputDirectory(output_dir, overwrite=overwrite, resume=resume)
    output.check()  # before Paddle's seconds of import; checked again holding the lock
    classes = resolve_classes(train_data, dev_data, class_names)
    # read once: what the model trains with is what its directory keeps
    user_dict = read_user_dictionary(config.user_dict) if config.user_dict else None
    configure_paddle()
    use_device(device)
    parallel = Parallel()
    if parallel.writer:
        for warning in data_warnings(train_data, dev_data, classes):
            log(f"warning: {warning}")
    if workers is None:
        workers = min(config.ensemble_size, os.cpu_count() or 1)
    if not parallel.writer:
        work_dir = Path(parallel.broadcast(None))
        _train_locked(config, train_data, dev_data, unlabeled_texts or [], work_dir, classes,
                      False, lambda message: None, resume, parallel, 1,
                      output.resume_flags(work_dir), user_dict, device)
        return TrainResult(output.path, {})
    with output.lock():
        target_existed = output.path.exists()
        work_dir = output.prepare()
        parallel.broadcast(str(work_dir))
        replacing = work_dir == output.staging
        resume_flags = output.resume_flags(work_dir)
        try:
            metrics = _train_locked(config, train_data, dev_data, unlabeled_texts or [],
                                    work_dir, classes, progress, log, resume, parallel, workers,
                                    resume_flags, user_dict, device)
            if export:
                _export(work_dir, log)
        except NewsclfError as exc:
            if (replacing or not target_existed) and not any(work_dir.iterdir()):
                work_dir.rmdir()  # refused before writing anything: no empty folder left
            if isinstance(exc, TrainingDiverged):
                raise TrainingDiverged(f"{exc}, then {_after_divergence(output, work_dir)}",
                                       exc.reason) from None
            raise
        except KeyboardInterrupt:
            if replacing:
                log(f"{output.path} keeps its old model; this run continues with {resume_flags}")
            raise
        output.finish(work_dir)
        if replacing:
            log(f"the new model replaced the old one in {output.path}")
        return TrainResult(output.path, metrics)


def _after_divergence(output: OutputDirectory, work_dir: Path) -> str:
    """How to train again after a run into ``work_dir`` diverged, and what ``output`` keeps.
    Its checkpoint stays, as after an interruption, but --resume would repeat the settings that
    diverged (a checkpoint continues with its own settings only)."""
    if work_dir == output.staging:
        return f"train again with --overwrite ({output.path} keeps its old model)"
    if work_dir.is_dir() and any(work_dir.iterdir()):
        return (f"train again with --overwrite ({output.path} keeps the checkpoint of the "
                "epochs that finished, but --resume would continue with these settings)")
    return "train again"


def _export(model_dir: Path, log) -> None:
    from newsclf.model.export import export_model, export_summary

    try:
        log(f"exported for fast prediction: {export_summary(export_model(model_dir))}")
    except NewsclfError as exc:
        log(f"warning: no inference export, prediction will use the dynamic graph: {exc}")


def _train_locked(config, train_data, dev_data, unlabeled_texts, work_dir: Path, classes,
                  progress, log, resume, parallel: Parallel, workers: int,
                  resume_flags: str, user_dict=None, device: str = "cpu") -> dict:
    """Train into ``work_dir`` (the output directory or its staging directory) and write the
    model there; returns the metrics ({} on the processes that do not write). ``resume_flags``
    are the options that continue the run if it is interrupted; ``user_dict`` is the
    :class:`~newsclf.tokenize.UserDictionary` read from ``config.user_dict``."""
    started = time.perf_counter()
    config, automatic = _sized_config(config, len(train_data), len(unlabeled_texts), work_dir,
                                      resume, log)
    tokenizer = Tokenizer(config.tokenizer, user_dict)
    vocab, train_ids, unlabeled_ids = _vocabulary_and_ids(config, tokenizer, train_data.texts,
                                                          unlabeled_texts, parallel)
    class_index = {name: i for i, name in enumerate(classes)}
    y_train = np.array([class_index[label] for label in train_data.labels], dtype=np.int64)
    dev_ids = encode_texts(tokenizer, vocab, dev_data.texts, config.max_len) if dev_data else None
    y_dev = (np.array([class_index[label] for label in dev_data.labels], dtype=np.int64)
             if dev_data else None)
    log(f"{len(train_ids)} training texts, {len(dev_data) if dev_data else 0} dev texts, "
        + (f"{len(unlabeled_ids)} unlabelled texts, " if unlabeled_ids else "")
        + f"{len(classes)} classes, vocabulary {len(vocab)}")
    if parallel.world > 1:
        log(f"data-parallel training on {parallel.world} processes")
    run_identity = {"config": config.to_dict(), "classes": classes, "vocab_size": len(vocab),
                    "vocab_head": vocab.tokens[:1000], "n_train": len(train_ids),
                    "n_dev": len(dev_data) if dev_data else 0,
                    "train_sha256": sha256_texts(train_data.texts, train_data.labels),
                    "dev_sha256": sha256_texts(dev_data.texts, dev_data.labels) if dev_data
                    else None, "unlabeled_sha256": sha256_texts(unlabeled_texts),
                    "user_dict_sha256": sha256_bytes(user_dict.text.encode("utf-8"))
                    if user_dict else None}
    n_student = len(train_ids) + len(unlabeled_ids)
    # the members learn from the labelled texts only: entries found only in the unlabelled
    # ones are [UNK] to them (their dev texts mapped so, their weights made so after training)
    unseen = unseen_entries(len(vocab), train_ids) if unlabeled_ids else None
    members_dev_ids = ([np.where(unseen[ids], UNK_ID, ids) for ids in dev_ids]
                       if unseen is not None and dev_ids is not None else dev_ids)
    setup = RunSetup(config, classes, vocab, train_ids, y_train, members_dev_ids, y_dev,
                     run_identity, work_dir, resume, resume_flags, automatic=tuple(automatic),
                     user_dict=user_dict, device=device,
                     student_settings=(student_config(config, automatic, n_student)
                                       if config.distilling else None))
    n_members = config.ensemble_size
    total_texts = len(train_ids) * n_members * config.epochs
    if setup.student_settings is not None:
        total_texts += n_student * setup.student_settings.epochs * config.distill_rounds
    reporter = Reporter(log, progress, config, total_texts,
                        work_dir / TRAIN_LOG if parallel.writer else None, setup.student_settings)
    try:
        if workers > 1 and n_members > 1 and parallel.world == 1:
            results = train_members_in_processes(setup, reporter, workers)
        else:
            results = [train_member(member, setup, reporter, parallel)
                       for member in range(n_members)]
        if unseen is not None:
            from newsclf.model.layers import embedding_rows_as_unk

            results = [dataclasses.replace(result,
                                           weights=embedding_rows_as_unk(result.weights, unseen))
                       for result in results]
        if config.teacher != "none":
            setup = dataclasses.replace(setup, pretrained=_pretrained_teacher(
                setup, results, train_data.texts + list(unlabeled_texts),
                dev_data.texts if dev_data else None, log))
        if config.pretrained_embeddings and student_start(config) == "random":
            from newsclf.pretrained.embeddings import entry_vectors
            from newsclf.pretrained.teacher import teacher_encoder

            encoder = teacher_encoder(config.teacher)
            setup = dataclasses.replace(setup, initial_embedding=entry_vectors(
                encoder, vocab.tokens, config.d_model))
            log(f"the student's {len(vocab)} embeddings start from {encoder.name}'s input "
                "embeddings")
        students = (train_students(dataclasses.replace(setup, dev_ids=dev_ids), results,
                                   unlabeled_ids, reporter, parallel)
                    if config.distilling else [])
    finally:
        reporter.close()
    if not parallel.writer:
        return {}
    # the dev texts the saved model will give no label (as Predictor.classify decides)
    dev_no_label = [not has_known_token(ids) for ids in dev_ids] if dev_ids is not None else None
    return _save(setup, results, students, len(unlabeled_ids), dev_data, dev_no_label,
                 parallel.world, log, started)


def _sized_config(config, n_train: int, n_unlabeled: int, work_dir: Path, resume: bool,
                  log) -> tuple:
    """The run's settings with the automatic ones chosen for its data size (or, resuming a
    run started before they followed it, as that run had them), and the names of those still
    chosen automatically; the choice is logged."""
    automatic = config.automatic()
    config = config.for_training_size(n_train, n_unlabeled=n_unlabeled)
    saved = checkpoint_settings(work_dir) if resume else {}
    kept = any(name in saved and saved[name] != getattr(config, name) for name in automatic)
    if kept:
        config = dataclasses.replace(config, **{name: saved[name] for name in automatic
                                                if name in saved})
    if automatic:
        log(", ".join(f"{name} {getattr(config, name)}" for name in automatic)
            + (" (as the interrupted run had them)" if kept else
               f" (chosen for {n_train} training texts"
               + (f" and {n_unlabeled} unlabelled ones" if n_unlabeled else "")
               + "; give " + " / ".join("--" + name.replace("_", "-") for name in automatic)
               + (" to set it)" if len(automatic) == 1 else " to set them)")))
    return config, [] if kept else automatic


def _vocabulary_and_ids(config, tokenizer, train_texts, unlabeled_texts, parallel: Parallel):
    """The vocabulary built from the training and unlabelled texts (by the writing process,
    broadcast to the others), and both lists of texts encoded with it."""
    train_features = [tokenizer.features(text) for text in train_texts]
    unlabeled_features = [tokenizer.features(text) for text in unlabeled_texts]
    vocab = Vocab(parallel.broadcast(
        Vocab.build(train_features + unlabeled_features, config.min_freq,
                    config.max_vocab).tokens if parallel.writer else None))
    if len(vocab) <= 2:  # [PAD] and [UNK] alone: nothing to learn from
        raise NewsclfError(f"no token of the training texts occurs {config.min_freq} times or "
                           "more, so the vocabulary is empty: lower --min-freq (min_freq), or "
                           "give texts that have words in them")
    return vocab, *([vocab.encode(f, config.max_len, tokenizer.n_features) for f in features]
                    for features in (train_features, unlabeled_features))


def _pretrained_teacher(setup: RunSetup, members: list[MemberResult], texts: list,
                        dev_texts: list | None, log):
    """The student's pretrained teacher (:mod:`newsclf.pretrained.teacher`) for the student's
    ``texts`` (labelled, then unlabelled), its share beside the ``members`` chosen on dev."""
    from newsclf.evaluation.metrics import accuracy_and_macro_f1
    from newsclf.layouts import TEACHER_DIR
    from newsclf.pretrained.teacher import best_mix, pretrained_teacher, teacher_encoder

    teacher = pretrained_teacher(teacher_encoder(setup.config.teacher), texts, setup.y_train,
                                 dev_texts, len(setup.classes),
                                 setup.output_dir / CHECKPOINT_DIR / TEACHER_DIR,
                                 setup.config.seed, log, on_cpu=setup.device == "cpu")
    if teacher.dev_probabilities is None:
        teacher.weight = 0.5
        log(f"pretrained teacher: {teacher.name}; no dev data to weigh it against the members: "
            "half the student's teacher")
        return teacher
    members_dev = np.mean([member.probabilities for member in members], axis=0)
    teacher.weight = best_mix(members_dev, teacher.dev_probabilities, setup.y_dev)
    n_classes = len(setup.classes)
    alone = accuracy_and_macro_f1(setup.y_dev, teacher.dev_probabilities.argmax(1), n_classes)
    mixed = accuracy_and_macro_f1(setup.y_dev, ((1 - teacher.weight) * members_dev
                                                + teacher.weight * teacher.dev_probabilities)
                                  .argmax(1), n_classes)
    teacher.dev_scores = {"dev_accuracy": alone[0], "dev_macro_f1": alone[1],
                          "with_members_dev_accuracy": mixed[0]}
    log(f"pretrained teacher: {teacher.name}, dev accuracy {alone[0]:.4f}; "
        f"with the members, weighted {teacher.weight:g}: {mixed[0]:.4f}")
    return teacher


def unseen_entries(vocab_size: int, train_ids: list) -> np.ndarray:
    """Whether each vocabulary entry is absent from the labelled texts ``train_ids``."""
    unseen = np.ones(vocab_size, dtype=bool)
    unseen[[PAD_ID, UNK_ID]] = False
    for ids in train_ids:
        unseen[ids] = False
    return unseen


def _summary(result: MemberResult, has_dev: bool) -> dict:
    """One trained encoder in ``metrics.json``: seed, best epoch, epochs run, its dev scores."""
    best = result.history[result.best_epoch - 1]
    return {"seed": result.seed, "best_epoch": result.best_epoch,
            "epochs_run": len(result.history),
            **{k: best[k] for k in ("dev_accuracy", "dev_macro_f1") if has_dev}}


def _save(setup: RunSetup, results: list[MemberResult], students: list[MemberResult],
          n_unlabeled: int, dev_data, dev_no_label, world_size: int, log,
          started: float) -> dict:
    """Write the model directory (the one encoder, the ensemble, or the student distilled from
    it: the best round's), its dev evaluation and metrics; returns the metrics."""
    from newsclf.evaluation import EvaluationResult
    from newsclf.evaluation.metrics import accuracy_and_macro_f1

    has_dev, n_members = dev_data is not None, len(results)
    metrics = {"n_train": len(setup.train_ids), "n_dev": len(dev_data) if has_dev else 0}
    ensemble_probabilities = (np.mean([result.probabilities for result in results], axis=0)
                              if has_dev and n_members > 1 else None)
    # the one encoder the directory predicts with; None: the ensemble
    kept = results[0] if n_members == 1 else None
    distillation = None
    student = best_round(students) if students else None
    kept_round = students.index(student) + 1 if students else None
    if len(students) > 1:
        log(f"of the {len(students)} rounds' students, round {kept_round}'s did best on dev: "
            "it is the student kept" if has_dev else f"no dev data to compare the "
            f"{len(students)} rounds' students: the last round's is the student kept")
    if student is not None:
        taught = setup.student_settings
        student_scores, teacher_scores = _summary(student, has_dev), {}
        if has_dev:
            teacher_scores = dict(zip(("dev_accuracy", "dev_macro_f1"), accuracy_and_macro_f1(
                setup.y_dev, ensemble_probabilities.argmax(axis=1), len(setup.classes))))
        if student_replaces_ensemble(student_scores.get("dev_accuracy"),
                                     teacher_scores.get("dev_accuracy"), log):
            kept = student
        predicts_with = "ensemble" if kept is None else "student"
        distillation = {"members": n_members, "alpha": taught.distill_alpha,
                        "temperature": taught.distill_temperature,
                        "splice": taught.distill_splice,
                        "token_dropout": taught.distill_token_dropout,
                        "n_unlabeled": n_unlabeled, "student_seed": student.seed,
                        "student_start": student_start(setup.config),
                        "student_epochs": taught.epochs, "student_patience": taught.patience,
                        "rounds": len(students), "kept_round": kept_round,
                        "predicts_with": predicts_with}
        if setup.pretrained is not None:
            distillation["pretrained_teacher"] = {
                "name": setup.pretrained.name, "weight": setup.pretrained.weight,
                **setup.pretrained.recipe, **setup.pretrained.dev_scores}
            metrics.update(pretrained_teacher=distillation["pretrained_teacher"])
        metrics.update(n_unlabeled=n_unlabeled, predicts_with=predicts_with)
        if len(students) > 1:
            metrics.update(student_rounds=[_summary(each, has_dev) for each in students],
                           kept_round=kept_round)

    if kept is not None:
        weights, probabilities = kept.weights, kept.probabilities
        metrics.update(best_epoch=kept.best_epoch, epochs_run=len(kept.history))
    else:
        from newsclf.model.layers import ensemble_weights

        weights = ensemble_weights([result.weights for result in results])
        probabilities = ensemble_probabilities
        metrics.update(ensemble_size=n_members)
    if n_members > 1:
        metrics.update(members=[_summary(result, has_dev) for result in results])
    if student is not None:
        metrics.update(student=student_scores, **({"teacher": teacher_scores} if has_dev else {}))
    save_model_dir(setup.output_dir, weights=weights, **setup.model_dir_contents(
        world_size, one_encoder=kept is not None, distillation=distillation))
    if has_dev:
        dev_result = EvaluationResult.from_predictions(setup.classes, dev_data.texts,
                                                       dev_data.labels, probabilities,
                                                       no_label=dev_no_label)
        metrics.update(dev_accuracy=dev_result.accuracy, dev_macro_f1=dev_result.macro_f1)
        dev_result.save(setup.output_dir / EVAL_DEV)
    write_json(setup.output_dir / METRICS, metrics)
    members = f"{n_members} members, best epochs {', '.join(str(r.best_epoch) for r in results)}"
    description = (f"best epoch {kept.best_epoch}" if n_members == 1 else
                   members if kept is None else
                   f"student of {members}: best epoch {kept.best_epoch}")
    log(f"{description}; model saved ({time.perf_counter() - started:.0f}s)")
    return metrics
