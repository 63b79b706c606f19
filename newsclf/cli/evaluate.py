"""newsclf evaluate: score a model on labelled texts and write the reports."""

from __future__ import annotations

import argparse
import warnings

from newsclf.cli.common import (add_data_options, add_model_option, at_least_one, layout_help,
                                read_labelled_files)


def add_parser(commands) -> argparse.ArgumentParser:
    evaluate = commands.add_parser("evaluate", **layout_help(
        help="score a model on labelled texts: metrics, confusion matrix, mistakes",
        description="Score a model on labelled data and write metrics.json, "
                    "classification_report.txt, confusion_matrix.csv/_normalized.csv/.png and "
                    "misclassified.csv."))
    add_model_option(evaluate)
    evaluate.add_argument("--data", required=True, metavar="PATH", help="labelled data (see the layout options and examples below)")
    evaluate.add_argument("--output", metavar="DIR",
                          help="where to write the reports: a new or empty folder, or one holding "
                               "an earlier report, which they replace (default: "
                               "DIR/eval-<data file name>)")
    evaluate.add_argument("--batch-size", type=at_least_one, default=256, metavar="N",
                          help="texts per model call (default: 256)")
    add_data_options(evaluate)
    return evaluate


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from newsclf.datafiles import NumericLabelsWarning
    from newsclf.datafiles.labelled import named_by_numbers
    from newsclf.evaluation import evaluate
    from newsclf.evaluation.report import check_report_dir
    from newsclf.layouts import EVAL_REPORTS_PREFIX
    from newsclf.predictor import Predictor

    output = (Path(args.output) if args.output
              else Path(args.model) / f"{EVAL_REPORTS_PREFIX}{Path(args.data).stem}")
    check_report_dir(output, args.data)  # before the predictions, not after
    predictor = Predictor.from_dir(args.model)
    with warnings.catch_warnings():
        if named_by_numbers(predictor.classes_):
            # the model's classes are named by these numbers: nothing to name
            warnings.simplefilter("ignore", NumericLabelsWarning)
        _, data = read_labelled_files(args, args.data)
    result = evaluate(predictor, data.texts, data.labels, batch_size=args.batch_size)
    result.save(output)
    print(result.summary())
    print(f"reports written to {output}")
