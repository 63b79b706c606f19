"""Shared pieces of the THUCNews benchmarks: loading the split, timing newsclf, printing tables."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from newsclf import Predictor, TrainConfig
from newsclf.data import read_class_names, read_labelled
from newsclf.training import train

ROOT = Path(__file__).resolve().parents[1]
THUCNEWS = ROOT.parent / "shared/data/thucnews-headlines"


def load_thucnews(directory: Path = THUCNEWS):
    if not (directory / "train.txt").is_file():
        sys.exit(f"THUCNews headlines not found in {directory} (expected train.txt, dev.txt, class.txt)")
    classes = read_class_names(directory / "class.txt")
    return (classes, read_labelled(directory / "train.txt", classes),
            read_labelled(directory / "dev.txt", classes))


def run_newsclf(config: TrainConfig, classes, train_data, dev_data, output: Path,
                name: str = "newsclf") -> dict:
    """Train (timed, including tokenization, vocabulary and the inference export), then time
    prediction of the dev texts end to end (tokenization + model)."""
    started = time.perf_counter()
    result = train(config, train_data, dev_data, output, classes, progress=False,
                   log=lambda message: print(f"[{name}] {message}", file=sys.stderr, flush=True))
    train_seconds = time.perf_counter() - started
    predictor = Predictor.from_dir(output)
    predictor.predict(dev_data.texts[:256])
    started = time.perf_counter()
    predictor.predict(dev_data.texts)
    return {"model": name, "dev_accuracy": result.metrics["dev_accuracy"],
            "dev_macro_f1": result.metrics["dev_macro_f1"], "train_seconds": train_seconds,
            "predict_rows_per_second": len(dev_data) / (time.perf_counter() - started),
            "best_epoch": result.metrics.get("best_epoch") or
            [member["best_epoch"] for member in result.metrics["members"]], "seed": config.seed}


def baseline_row(result) -> dict:
    return {"model": result.name, "dev_accuracy": result.accuracy, "dev_macro_f1": result.macro_f1,
            "train_seconds": result.train_seconds,
            "predict_rows_per_second": result.predict_rows_per_second}


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'model':<28} {'dev acc':>8} {'macro-F1':>9} {'train s':>9} {'predict/s':>10}")
    for row in rows:
        print(f"{row['model']:<28} {row['dev_accuracy']:>8.4f} {row['dev_macro_f1']:>9.4f} "
              f"{row['train_seconds']:>9.1f} {row['predict_rows_per_second']:>10.0f}")
