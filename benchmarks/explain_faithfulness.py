"""Faithfulness of ``newsclf explain``'s token scores on THUCNews dev headlines.

Comprehensiveness (DeYoung et al., 2020, ERASER): for each method (attention rollout,
occlusion, integrated gradients) and each k (1, 3, 5), the k tokens the method scores highest
are deleted from the model's input and the drop in the predicted class's probability is
averaged over the texts; the same for k tokens drawn at random (mean over ``--draws`` seeded
draws per text). A method whose top tokens matter to the model drops the probability well
beyond random. Deleting and scoring are the library's (:func:`newsclf.explain.delete_positions`,
:func:`newsclf.explain.model_probabilities`: the dynamic graph, as the attributions). A text with
fewer than k + 1 positions is left out for that k. Also prints the seconds ``explain()`` takes
per text with each method (one text at a time, as the command runs it: tokenization, the
attention pass and ``predict_proba`` included). Prints Markdown tables. Usage:

    python benchmarks/explain_faithfulness.py --model DIR [--texts 500] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from common import THUCNEWS

from newsclf import Predictor
from newsclf.data import read_class_names, read_labelled
from newsclf.explain import IG_STEPS, METHODS, delete_positions, explain, model_probabilities
from newsclf.runtime import tune_allocator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory")
    parser.add_argument("--data", type=Path, default=THUCNEWS,
                        help="THUCNews headlines directory (dev.txt, class.txt)")
    parser.add_argument("--texts", type=int, default=500, help="dev headlines to sample")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample and the draws")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3, 5],
                        help="numbers of tokens to delete")
    parser.add_argument("--draws", type=int, default=5, help="random deletions per text and k")
    parser.add_argument("--steps", type=int, default=IG_STEPS,
                        help="integrated-gradients steps")
    args = parser.parse_args()
    if not (args.data / "dev.txt").is_file():
        sys.exit(f"THUCNews headlines not found in {args.data} (expected dev.txt, class.txt)")
    if args.texts < 1 or args.draws < 1 or min(args.ks) < 1:
        sys.exit("--texts, --draws and --ks must be at least 1")
    tune_allocator()  # as the newsclf command does, so timings match it

    dev = read_labelled(args.data / "dev.txt", read_class_names(args.data / "class.txt"))
    rng = np.random.default_rng(args.seed)
    sample = rng.choice(len(dev), size=min(args.texts, len(dev)), replace=False)
    predictor = Predictor.from_dir(args.model)
    _, problems = predictor.classify([dev.texts[i] for i in sample])
    texts = [dev.texts[i] for i, problem in zip(sample, problems) if problem is None]
    for method in METHODS:  # warm-up: kernels per shape, jieba's dictionary
        explain(predictor, texts[0], method=method, steps=args.steps)

    ks = sorted(set(args.ks))
    seconds = {method: 0.0 for method in METHODS}
    drops = {(name, k): [] for name in (*METHODS, "random") for k in ks}
    lengths = []
    for text in texts:
        ids = predictor.encode([text])[0]
        n = len(ids)
        lengths.append(n)
        rankings = {}
        for method in METHODS:
            started = time.perf_counter()
            explanation = explain(predictor, text, method=method, steps=args.steps)
            seconds[method] += time.perf_counter() - started
            rankings[method] = explanation.top_positions(max(ks))
        target = list(predictor.classes_).index(explanation.label)
        variants, owners = [ids], [None]
        for k in (k for k in ks if n >= k + 1):
            for method in METHODS:
                variants.append(delete_positions(ids, rankings[method][:k]))
                owners.append((method, k))
            for _ in range(args.draws):
                variants.append(delete_positions(ids, rng.choice(n, size=k, replace=False)))
                owners.append(("random", k))
        p = model_probabilities(predictor, variants)[:, target]
        per_text = {}
        for owner, probability in zip(owners[1:], p[1:]):
            per_text.setdefault(owner, []).append(p[0] - probability)
        for owner, values in per_text.items():
            drops[owner].append(float(np.mean(values)))

    lengths = np.array(lengths)
    print(f"{len(texts)} THUCNews dev headlines (seed {args.seed}; {len(sample) - len(texts)} "
          f"with nothing to classify left out), {lengths.min()}-{lengths.max()} positions "
          f"(median {int(np.median(lengths))}); model {args.model} ({predictor.spec.tokenizer} "
          f"tokenizer, ensemble of {predictor.spec.ensemble_size}), integrated gradients "
          f"{args.steps} steps, random: {args.draws} draws per text")
    print()
    print("Mean drop in the predicted class's probability after deleting the top-k tokens:")
    print()
    print(f"| method | {' | '.join(f'k = {k}' for k in ks)} | seconds per text |")
    print("| --- |" + " ---: |" * (len(ks) + 1))
    for name in (*METHODS, "random"):
        cells = " | ".join(f"{np.mean(drops[name, k]):.3f}" for k in ks)
        timing = f"{seconds[name] / len(texts):.3f}" if name in seconds else ""
        label = f"`{name}`" if name in METHODS else f"random ({args.draws} draws)"
        print(f"| {label} | {cells} | {timing} |")
    print()
    for k in ks:
        used = len(drops["random", k])
        print(f"k = {k}: {used} texts ({len(texts) - used} shorter than {k + 1} positions "
              "left out)")


if __name__ == "__main__":
    main()
