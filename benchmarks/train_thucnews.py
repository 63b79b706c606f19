"""Train newsclf's defaults and a TF-IDF + LinearSVC baseline on THUCNews headlines, same split.

Prints one table (dev accuracy, macro-F1, training seconds, prediction headlines/s) and the same
as JSON. Run it on an otherwise idle machine: the seconds are wall-clock. Usage:

    python benchmarks/train_thucnews.py [--data ../shared/data/thucnews-headlines] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import THUCNEWS, baseline_row, load_thucnews, print_table, run_newsclf

from newsclf import TrainConfig
from newsclf.baseline import run_baseline
from newsclf.runtime import tune_allocator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=THUCNEWS)
    parser.add_argument("--output", type=Path,
                        help="where to keep the trained model (default: a temporary directory)")
    parser.add_argument("--baseline", default="tfidf-char-svm")
    args = parser.parse_args()
    tune_allocator()  # as the newsclf command does, so figures match it
    classes, train_data, dev_data = load_thucnews(args.data)
    output = args.output or Path(tempfile.mkdtemp(prefix="newsclf-bench-")) / "model"
    rows = [run_newsclf(TrainConfig(), classes, train_data, dev_data, output, "newsclf (defaults)"),
            baseline_row(run_baseline(args.baseline, train_data.texts, train_data.labels,
                                      dev_data.texts, dev_data.labels))]
    print_table(rows, f"THUCNews headlines: {len(train_data)} train, {len(dev_data)} dev")
    print(json.dumps({"train": len(train_data), "dev": len(dev_data), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
