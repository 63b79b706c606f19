"""newsclf baseline: TF-IDF + linear SVM baselines scored on your data."""

from __future__ import annotations

import argparse

from newsclf.cli.common import add_data_options, read_labelled_files

def add_parser(commands) -> argparse.ArgumentParser:
    baseline = commands.add_parser(
        "baseline", help="score TF-IDF + linear SVM baselines on your data",
        description="Train classical baselines (TF-IDF character 1-3-grams or jieba word "
                    "1-2-grams + LinearSVC) on the training data and score them on the dev data: "
                    "the bar a Transformer has to clear on this data.")
    baseline.add_argument("--train", required=True, metavar="PATH", help="training data")
    baseline.add_argument("--dev", required=True, metavar="PATH", help="dev data")
    baseline.add_argument("--model", dest="baselines", action="append",
                          choices=("tfidf-char-svm", "tfidf-word-svm"),
                          help="which baseline (repeat; default: both)")
    add_data_options(baseline)
    return baseline


def run(args: argparse.Namespace) -> None:
    from newsclf.baseline import BASELINES, run_baseline
    from newsclf.training import resolve_classes

    class_names, train_data, dev_data = read_labelled_files(args, args.train, args.dev)
    resolve_classes(train_data, dev_data, class_names)  # the same checks as training
    print(f"{'baseline':<16} {'dev acc':>8} {'macro-F1':>9} {'train s':>8} {'predict/s':>10}")
    for name in args.baselines or list(BASELINES):
        result = run_baseline(name, train_data.texts, train_data.labels, dev_data.texts,
                              dev_data.labels)
        print(f"{name:<16} {result.accuracy:>8.4f} {result.macro_f1:>9.4f} "
              f"{result.train_seconds:>8.1f} {result.predict_rows_per_second:>10.0f}")
