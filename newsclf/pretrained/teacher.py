"""The pretrained teacher: a pretrained encoder (multilingual-e5-small, or a Hugging Face
BERT-family model) with its top layers and a classification head fine-tuned on the labelled
texts (:mod:`.finetune`), whose class probabilities of the run's texts the student learns
beside the members' (:mod:`newsclf.training.student`).

The probabilities are computed once per run and cached in the run directory
(``checkpoint/teacher/probabilities.safetensors``, with the hash of the texts, labels, seed,
recipe and encoder they belong to), so a resumed run or a later distillation round reads them back. Their
dev score is reported, and their share in the student's teacher is the one that does best on
dev with the members'.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from newsclf.files import sha256_texts, write_atomic
from newsclf.layouts import TEACHER_PROBABILITIES

MIX_WEIGHTS = tuple(np.round(np.arange(0.0, 1.01, 0.1), 2))


@dataclass
class PretrainedTeacher:
    """The teacher's probabilities: of each student text (labelled then unlabelled), and of
    each dev text; ``weight`` its share beside the members' probabilities; ``recipe`` how it
    was trained."""

    name: str
    train_probabilities: np.ndarray
    dev_probabilities: np.ndarray | None
    recipe: dict
    weight: float = 1.0
    dev_scores: dict = field(default_factory=dict)


def cached_array(path: Path, key: str, compute) -> np.ndarray:
    """``compute()``, or what an earlier call with the same ``key`` saved at ``path``."""
    from safetensors.numpy import load_file, save

    if path.is_file():
        saved = load_file(path)
        if bytes(saved["key"]).decode("ascii") == key:
            return saved["array"]
    array = np.ascontiguousarray(compute(), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, save({"array": array,
                             "key": np.frombuffer(key.encode("ascii"), np.uint8)}))
    return array


def recipe() -> dict:
    """The fine-tuning recipe's settings (part of the cache key, and recorded)."""
    from newsclf.pretrained import finetune

    return {"tuned_layers": finetune.TUNED_LAYERS, "learning_rate": finetune.LEARNING_RATE,
            "warmup_share": finetune.WARMUP_SHARE, "weight_decay": finetune.WEIGHT_DECAY,
            "batch_size": finetune.BATCH_SIZE, "sorting_pool": finetune.SORTING_POOL,
            "dropout": finetune.DROPOUT, "max_epochs": finetune.MAX_EPOCHS,
            "text_passes": finetune.TEXT_PASSES, "pool_scale": finetune.POOL_SCALE,
            "max_pieces": finetune.MAX_PIECES}


def teacher_encoder(teacher: str):
    """The pretrained encoder a ``--teacher`` value names: ``e5`` (the bundled
    multilingual-e5-small) or the directory of a Hugging Face BERT-family model. A directory
    is read (config and tokenizer, not the weights) and refused here if it does not fit."""
    if teacher == "e5":
        from newsclf.pretrained.encoder import E5

        return E5()
    from newsclf.pretrained.hf import HFEncoder

    return HFEncoder(teacher)


def check_teacher(teacher: str) -> None:
    """Refuse, before any training, a teacher that cannot be had (cheaply: e5's file is found,
    a directory is read with its weights' headers only)."""
    if teacher == "e5":
        from newsclf.pretrained.e5file import bundled_e5_path

        bundled_e5_path()
    else:
        teacher_encoder(teacher).check_weights()


def pretrained_teacher(encoder, texts: list[str], labels: np.ndarray,
                       dev_texts: list[str] | None, n_classes: int, folder: Path, seed: int,
                       log, on_cpu: bool = True) -> PretrainedTeacher:
    """The teacher of a run made of ``encoder`` (:func:`teacher_encoder`): ``texts`` are the
    student's (the ``len(labels)`` labelled ones first), ``folder`` the cache. ``on_cpu``:
    whether Paddle computes on the CPU, where ONNX Runtime scores the texts faster (on a GPU,
    Paddle does)."""
    from newsclf.pretrained.finetune import epochs_for, tuned_layers

    everything = list(texts) + list(dev_texts or [])
    labels = np.asarray(labels, dtype=np.int64)
    settings = recipe()
    key = hashlib.sha256(json.dumps(
        [sha256_texts(everything), labels.tolist(), n_classes, seed, settings,
         encoder.identity()]).encode()).hexdigest()
    probabilities = cached_array(folder / TEACHER_PROBABILITIES, key, lambda: _probabilities(
        encoder, everything, labels, n_classes, seed, log, "auto" if on_cpu else "paddle"))
    settings.update(tuned_layers=tuned_layers(encoder.sizes.layers),
                    epochs=epochs_for(len(labels)))
    return PretrainedTeacher(f"{encoder.name}, top layers fine-tuned",
                             probabilities[:len(texts)],
                             probabilities[len(texts):] if dev_texts else None, settings)


def _probabilities(encoder, texts: list[str], labels: np.ndarray, n_classes: int, seed: int,
                   log, engine: str = "auto") -> np.ndarray:
    """The tuned teacher's class probabilities of ``texts`` (the labelled ones first)."""
    from newsclf.pretrained.encoder import run_layers
    from newsclf.pretrained.finetune import (DROPOUT, Classifier, fine_tune,
                                             lower_states, tuned_layers)
    from newsclf.runtime import math_threads

    with math_threads(2):
        piece_lists = [_cut(encoder.piece_ids(text)) for text in texts]
        network, row_of = encoder.network(piece_lists, dropout=DROPOUT)
        log(f"pretrained teacher: {encoder.name}, states of the {len(labels)} labelled texts")
        states = lower_states(network, piece_lists[:len(labels)], row_of,
                              encoder.sizes.layers - tuned_layers(encoder.sizes.layers))
        tuned = fine_tune(network, states, labels, n_classes, seed, log)
        log(f"pretrained teacher: scoring {len(texts)} texts")
        scores = run_layers(Classifier(network, tuned), network, piece_lists, row_of,
                            n_classes, batch_size=128, engine=engine, threads=2)
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)


def _cut(ids: list[int]) -> list[int]:
    """The first pieces of a text and its closing one, :data:`~.finetune.MAX_PIECES` in all."""
    from newsclf.pretrained.finetune import MAX_PIECES

    return ids if len(ids) <= MAX_PIECES else ids[:MAX_PIECES - 1] + ids[-1:]


def best_mix(members_dev: np.ndarray, teacher_dev: np.ndarray, y_dev: np.ndarray) -> float:
    """The share of the pretrained teacher's dev probabilities in a mean with the members'
    that gives the best dev accuracy (the smaller share on ties)."""
    accuracies = [(((1 - w) * members_dev + w * teacher_dev).argmax(1) == y_dev).mean()
                  for w in MIX_WEIGHTS]
    return float(MIX_WEIGHTS[int(np.argmax(accuracies))])
