"""newsclf's defaults over several seeds against strong baselines on THUCNews, same split.

Baselines: TF-IDF character 1-3-grams + LinearSVC, TF-IDF jieba word 1-2-grams + LinearSVC, and
fastText with character n-grams when the optional ``fasttext`` package is installed
(``pip install ".[benchmarks]"``). Prints one
table with every run, then newsclf's mean and spread (max - min) over the seeds and whether
mean - spread clears the best baseline. Seconds are wall-clock: run on an idle machine. Usage:

    python benchmarks/compare_baselines.py [--seeds 1 2 3] [--data ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import THUCNEWS, baseline_row, load_thucnews, print_table, run_newsclf

from newsclf import TrainConfig
from newsclf.baseline import BASELINES, run_baseline
from newsclf.tokenize import normalize
from newsclf.runtime import tune_allocator


def run_fasttext(train_data, dev_data) -> dict | None:
    """fastText on jieba words with character n-gram subwords (1-3) and word bigrams; the best
    of the settings tried on THUCNews dev (benchmarks/RESULTS.md)."""
    try:
        import fasttext
    except ImportError:
        return None
    import jieba
    from sklearn.metrics import accuracy_score, f1_score

    jieba.setLogLevel(60)

    def line(text):
        return " ".join(word for word in jieba.lcut(normalize(text)) if word.strip())

    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as handle:
        for text, label in zip(train_data.texts, train_data.labels):
            handle.write(f"__label__{label} {line(text)}\n")
    started = time.perf_counter()
    model = fasttext.train_supervised(handle.name, epoch=10, lr=0.1, wordNgrams=2, minn=1,
                                      maxn=3, dim=100, verbose=0)
    train_seconds = time.perf_counter() - started
    Path(handle.name).unlink()
    started = time.perf_counter()
    # model.predict() of fasttext 0.9.3 fails under NumPy 2 (np.array(copy=False)); the
    # binding under it returns [(probability, label)] and is what predict() wraps.
    predicted = [model.f.predict(line(t), 1, 0.0, "strict")[0][1][len("__label__"):]
                 for t in dev_data.texts]
    seconds = time.perf_counter() - started
    return {"model": "fasttext-char-ngrams", "dev_accuracy": accuracy_score(dev_data.labels, predicted),
            "dev_macro_f1": f1_score(dev_data.labels, predicted, average="macro"),
            "train_seconds": train_seconds, "predict_rows_per_second": len(predicted) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=THUCNEWS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--config", type=Path, help="JSON settings to compare instead of the defaults")
    args = parser.parse_args()
    tune_allocator()  # as the newsclf command does, so figures match it
    classes, train_data, dev_data = load_thucnews(args.data)
    config = TrainConfig.from_file(args.config) if args.config else TrainConfig()

    baselines = [baseline_row(run_baseline(name, train_data.texts, train_data.labels,
                                           dev_data.texts, dev_data.labels)) for name in BASELINES]
    fasttext_row = run_fasttext(train_data, dev_data)
    if fasttext_row:
        baselines.append(fasttext_row)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            seeded = TrainConfig.from_dict({**config.to_dict(), "seed": seed})
            runs.append(run_newsclf(seeded, classes, train_data, dev_data,
                                    Path(tmp) / f"seed{seed}", f"newsclf seed {seed}"))
    accuracies = [r["dev_accuracy"] for r in runs]
    mean = sum(accuracies) / len(accuracies)
    spread = max(accuracies) - min(accuracies)
    best = max(baselines, key=lambda r: r["dev_accuracy"])
    print_table(runs + baselines, f"THUCNews headlines: {len(train_data)} train, {len(dev_data)} dev"
                + ("" if fasttext_row else ' (fastText not installed: pip install ".[benchmarks]")'))
    print(f"newsclf dev accuracy over seeds {args.seeds}: mean {mean:.4f}, spread {spread:.4f}; "
          f"best baseline {best['model']} {best['dev_accuracy']:.4f}; mean - spread "
          f"{'clears' if mean - spread > best['dev_accuracy'] else 'does not clear'} it")
    print(json.dumps({"newsclf_runs": runs, "baselines": baselines, "mean": mean, "spread": spread},
                     indent=2))


if __name__ == "__main__":
    main()
