"""How newsclf's defaults fare against TF-IDF + LinearSVC on tasks that differ the way users'
data differs, all built from the shared THUCNews headlines (dev scores, never the test split).

Tasks (``--tasks`` picks some; all by default):

- ``size-N``: N training headlines drawn at random (stratified by class), all 10 classes;
  N in 1,000, 5,000, 15,000 and 45,000 (the whole training file);
- ``classes-4``: 4 of the 10 classes, 5,000 training headlines;
- ``merged-5``: the 10 classes merged into 5 (random pairs), 5,000 headlines;
- ``imbalanced``: 15,000 headlines where one class is 10x rarer than the others.

Dev sets are the THUCNews dev headlines of the task's classes (with merged names where merged).
For each task both models train in the same run: newsclf with ``TrainConfig()`` (or
``--config``) and the SVM of ``newsclf baseline`` (TF-IDF character 1-3-grams, C=30, its tuned
setting). Prints dev accuracy, macro-F1 and training seconds (wall, on an idle machine) per task,
and the gap in accuracy points.

With ``--unlabeled``, each ``size-N`` task smaller than the training file also trains newsclf
with the training headlines it did not draw given as unlabelled texts (their labels removed;
texts equal to a drawn one left out), and prints that run's dev accuracy and its gain over the
labelled-only run. Usage:

    python benchmarks/generalization.py [--tasks size-1000 size-5000 ...] [--seed 1] [--config F]
                                        [--unlabeled]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from common import THUCNEWS, baseline_row, load_thucnews, run_newsclf

from newsclf import TrainConfig
from newsclf.baseline import run_baseline
from newsclf.datafiles.labelled import LabelledData
from newsclf.runtime import tune_allocator

SIZES = (1000, 5000, 15000, 45000)
TASKS = tuple(f"size-{n}" for n in SIZES) + ("classes-4", "merged-5", "imbalanced")


def stratified(data: LabelledData, size: int, rng: random.Random,
               weights: dict[str, float] | None = None) -> LabelledData:
    """``size`` rows of ``data`` (all of it if size >= len), classes in their proportions times
    ``weights`` (a class missing from ``weights`` counts 1)."""
    by_class = defaultdict(list)
    for index, label in enumerate(data.labels):
        by_class[label].append(index)
    weights = weights or {}
    mass = {label: len(rows) * weights.get(label, 1.0) for label, rows in by_class.items()}
    total = sum(mass.values())
    chosen = []
    for label, rows in sorted(by_class.items()):
        want = min(len(rows), round(size * mass[label] / total))
        chosen += rng.sample(rows, want)
    rng.shuffle(chosen)
    return LabelledData([data.texts[i] for i in chosen], [data.labels[i] for i in chosen],
                        f"{data.source} ({len(chosen)} rows)")


def relabelled(data: LabelledData, mapping: dict[str, str]) -> LabelledData:
    """The rows whose class is in ``mapping``, with the class renamed by it."""
    rows = [(text, mapping[label]) for text, label in zip(data.texts, data.labels) if label in mapping]
    return LabelledData([t for t, _ in rows], [label for _, label in rows], data.source)


def build_task(name: str, classes: list[str], train: LabelledData, dev: LabelledData,
               rng: random.Random):
    """(class names, training data, dev data) of one task."""
    if name.startswith("size-"):
        return classes, stratified(train, int(name.split("-")[1]), rng), dev
    if name == "classes-4":
        kept = rng.sample(classes, 4)
        mapping = {label: label for label in kept}
        return kept, stratified(relabelled(train, mapping), 5000, rng), relabelled(dev, mapping)
    if name == "merged-5":
        shuffled = rng.sample(classes, len(classes))
        mapping = {}
        for first, second in zip(shuffled[::2], shuffled[1::2]):
            mapping[first] = mapping[second] = f"{first}+{second}"
        merged = sorted(set(mapping.values()))
        return merged, stratified(relabelled(train, mapping), 5000, rng), relabelled(dev, mapping)
    if name == "imbalanced":
        rare = rng.choice(classes)
        return classes, stratified(train, 15000, rng, {rare: 0.1}), dev
    raise SystemExit(f"unknown task {name!r}; choose from {', '.join(TASKS)}")


def undrawn_texts(train: LabelledData, drawn: LabelledData) -> list[str]:
    """The texts of ``train`` not in ``drawn`` (none equal to a drawn one), in their order."""
    taken = set(drawn.texts)
    return [text for text in train.texts if text not in taken]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=THUCNEWS)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seed", type=int, default=1, help="seed of the task sampling and of newsclf")
    parser.add_argument("--config", type=Path, help="JSON settings to compare instead of the defaults")
    parser.add_argument("--unlabeled", action="store_true",
                        help="size-N tasks also train with the undrawn headlines as unlabelled texts")
    args = parser.parse_args()
    tune_allocator()
    classes, train, dev = load_thucnews(args.data)
    base = TrainConfig.from_file(args.config) if args.config else TrainConfig()
    config = TrainConfig.from_dict({**base.to_dict(), "seed": args.seed})
    rows = []
    print(f"{'task':<12} {'train':>6} {'classes':>7} {'newsclf acc':>11} {'F1':>7} {'s':>6}"
          f" {'SVM acc':>8} {'F1':>7} {'s':>5} {'gap':>6}"
          + (f" {'+unlabelled':>11} {'s':>6} {'gain':>6}" if args.unlabeled else ""), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.tasks:
            task_classes, task_train, task_dev = build_task(name, classes, train, dev,
                                                            random.Random(f"{args.seed}-{name}"))
            ours = run_newsclf(config, task_classes, task_train, task_dev, Path(tmp) / name, name)
            svm = baseline_row(run_baseline("tfidf-char-svm", task_train.texts, task_train.labels,
                                            task_dev.texts, task_dev.labels))
            gap = 100 * (ours["dev_accuracy"] - svm["dev_accuracy"])
            row = {"task": name, "train_rows": len(task_train), "classes": len(task_classes),
                   "newsclf": ours, "svm": svm, "gap_points": gap}
            line = (f"{name:<12} {len(task_train):>6} {len(task_classes):>7} "
                    f"{ours['dev_accuracy']:>11.4f} {ours['dev_macro_f1']:>7.4f} "
                    f"{ours['train_seconds']:>6.0f} {svm['dev_accuracy']:>8.4f} "
                    f"{svm['dev_macro_f1']:>7.4f} {svm['train_seconds']:>5.1f} {gap:>+6.2f}")
            if ours["pretrained_teacher"]:  # its own dev accuracy, and with the members
                teacher = ours["pretrained_teacher"]
                line += (f"  teacher {teacher['dev_accuracy']:.4f} (x{teacher['weight']:g} "
                         f"with the members: {teacher['with_members_dev_accuracy']:.4f})")
            undrawn = (undrawn_texts(train, task_train)
                       if args.unlabeled and name.startswith("size-") else [])
            if undrawn:
                more = run_newsclf(config, task_classes, task_train, task_dev,
                                   Path(tmp) / f"{name}-unlabeled", f"{name} +unlabelled",
                                   unlabeled_texts=undrawn)
                gain = 100 * (more["dev_accuracy"] - ours["dev_accuracy"])
                row.update(unlabeled_rows=len(undrawn), with_unlabeled=more, gain_points=gain)
                line += f" {more['dev_accuracy']:>11.4f} {more['train_seconds']:>6.0f} {gain:>+6.2f}"
            rows.append(row)
            print(line, flush=True)
    print(json.dumps(rows, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
