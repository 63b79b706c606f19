"""Train newsclf's defaults and a TF-IDF + LinearSVC baseline on THUCNews headlines, same split.

Prints one table (dev accuracy, macro-F1, training seconds, prediction headlines/s) and the same
as JSON. Usage:

    python benchmarks/train_thucnews.py [--data ../shared/data/thucnews-headlines] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from newsclf import Predictor, TrainConfig
from newsclf.baseline import run_baseline
from newsclf.data import read_class_names, read_labelled
from newsclf.train import train

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/thucnews-headlines")
    parser.add_argument("--output", type=Path, help="where to keep the trained model "
                                                     "(default: a temporary directory)")
    parser.add_argument("--baseline", default="tfidf-char-svm")
    args = parser.parse_args()
    if not (args.data / "train.txt").is_file():
        sys.exit(f"THUCNews headlines not found in {args.data} (expected train.txt, dev.txt, class.txt)")

    classes = read_class_names(args.data / "class.txt")
    train_data = read_labelled(args.data / "train.txt", classes)
    dev_data = read_labelled(args.data / "dev.txt", classes)
    rows = []

    output = args.output or Path(tempfile.mkdtemp(prefix="newsclf-bench-")) / "model"
    started = time.perf_counter()
    result = train(TrainConfig(), train_data, dev_data, output, classes, progress=False,
                   log=lambda message: print(message, file=sys.stderr, flush=True))
    train_seconds = time.perf_counter() - started
    predictor = Predictor.from_dir(output)
    started = time.perf_counter()
    predictor.predict(dev_data.texts)
    predict_rate = len(dev_data) / (time.perf_counter() - started)
    rows.append({"model": "newsclf (defaults)", "dev_accuracy": result.metrics["dev_accuracy"],
                 "dev_macro_f1": result.metrics["dev_macro_f1"],
                 "train_seconds": train_seconds, "predict_rows_per_second": predict_rate})

    baseline = run_baseline(args.baseline, train_data.texts, train_data.labels,
                            dev_data.texts, dev_data.labels)
    rows.append({"model": baseline.name, "dev_accuracy": baseline.accuracy,
                 "dev_macro_f1": baseline.macro_f1, "train_seconds": baseline.train_seconds,
                 "predict_rows_per_second": baseline.predict_rows_per_second})

    print(f"THUCNews headlines: {len(train_data)} train, {len(dev_data)} dev")
    print(f"{'model':<22} {'dev acc':>8} {'macro-F1':>9} {'train s':>9} {'predict/s':>10}")
    for row in rows:
        print(f"{row['model']:<22} {row['dev_accuracy']:>8.4f} {row['dev_macro_f1']:>9.4f} "
              f"{row['train_seconds']:>9.1f} {row['predict_rows_per_second']:>10.0f}")
    print(json.dumps({"train": len(train_data), "dev": len(dev_data), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
