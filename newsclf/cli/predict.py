"""newsclf predict: label a few texts, or every row of a file of any size."""

from __future__ import annotations

import argparse
import sys

from newsclf.cli.common import (add_layout_options, add_model_option, at_least_one,
                                given_layout_options, layout_arguments, layout_help,
                                log_to_stderr)
from newsclf.errors import NewsclfError
from newsclf.spec import BACKENDS, LONG_TEXT_MODES


def add_parser(commands) -> argparse.ArgumentParser:
    predict = commands.add_parser("predict", **layout_help(
        help="label texts or a data file with a trained model",
        description="Label texts with a trained model: --text for a few, --input/--output for "
                    "a file of any size (every input column kept, one output row per input row)."))
    add_model_option(predict)
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", metavar="TEXT",
                        help="a text to classify (repeat for several); prints label and score")
    source.add_argument("--input", metavar="FILE",
                        help="data file (CSV, TSV, .xlsx, JSON lines, fastText or one text per "
                             "line; see the layout options below); - for stdin; with "
                             "--scheduler also a quoted glob of files ('big-*.csv')")
    predict.add_argument("--output", metavar="FILE",
                         help="where to write the labelled rows (.csv, .tsv, .xlsx or .jsonl; - "
                              "for CSV on stdout); with --scheduler a new or empty directory "
                              "that receives part-00000.csv, ...")
    add_layout_options(predict, labelled=False)
    predict.add_argument("--top-k", type=at_least_one, default=1, metavar="K",
                         help="also give the K most likely classes (default: 1)")
    predict.add_argument("--probabilities", action="store_true",
                         help="add one prob_<class> column per class")
    predict.add_argument("--excel", action="store_true",
                         help="CSV or TSV output in UTF-8 with BOM, so Excel shows Chinese "
                              "correctly (.xlsx output needs none; refused with .jsonl)")
    predict.add_argument("--long-text", choices=LONG_TEXT_MODES, default="truncate",
                         help="texts longer than the model's max_len: keep the start (truncate, "
                              "the default) or read all of it in windows of max_len, the first "
                              "counting as much as all the others together (chunk) or all the "
                              "same (chunk-mean: for texts without a lead, e.g. transcripts)")
    predict.add_argument("--batch-size", type=at_least_one, default=256, metavar="N",
                         help="texts per model call (default: 256)")
    predict.add_argument("--workers", type=at_least_one, metavar="N",
                         help="processes sharing tokenization and inference (default: one per "
                              "core, at most 4, for files of 50,000 rows or more; else 1)")
    predict.add_argument("--scheduler", metavar="ADDRESS",
                         help="label on a Dask cluster: its scheduler's address "
                              "(tcp://host:8786), or 'local' for one on this machine (--workers "
                              "processes); one CSV part per 5,000 input rows; needs the dask "
                              "extra, and the workers must reach --model at the same path")
    predict.add_argument("--backend", choices=BACKENDS, default="auto",
                         help="what runs the model: auto (default: ONNX Runtime when the onnx "
                              "extra is installed and the model has an ONNX graph, else Paddle "
                              "Inference, else the network itself), onnx, inference or dynamic")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    return predict


def run(args: argparse.Namespace) -> None:
    from newsclf.predict import predict_file
    from newsclf.predictor import Predictor

    if args.input is not None and not args.output:
        raise NewsclfError("--input needs --output FILE (or --output - for standard output)")
    if args.text is not None and args.output:
        raise NewsclfError("--output goes with --input FILE; the results of --text are printed")
    if args.text is not None and args.excel:
        raise NewsclfError("--excel goes with --input/--output (a CSV or TSV file for Excel); "
                           "the results of --text are printed")
    if args.text is not None and args.probabilities:
        raise NewsclfError("--probabilities goes with --input/--output (a prob_<class> column "
                           "per class); for --text, --top-k K prints the K best with their "
                           "scores")
    if args.text is not None and args.scheduler is not None:
        raise NewsclfError("--scheduler goes with --input/--output; --text is labelled here")
    if args.text is not None and (layout_options := given_layout_options(args)):
        raise NewsclfError(f"{', '.join(layout_options)} tell how to read an --input file; "
                           "the texts of --text are read as given")
    if args.text is not None:
        predictor = Predictor.from_dir(args.model, backend=args.backend)
        results = predictor.predict(args.text, top_k=args.top_k, batch_size=args.batch_size,
                                    long_text=args.long_text)
        for text, best in zip(args.text, results):
            if best[0]["label"] is None:
                ranked = f"(no label: {best[0]['error']})"
            else:
                ranked = "  ".join(f"{item['label']} {item['score']:.3f}" for item in best)
            print(f"{ranked}\t{text}")
        return
    if args.scheduler is not None:
        _predict_on_cluster(args)
        return
    summary = predict_file(
        args.model, args.input, args.output, **layout_arguments(args), top_k=args.top_k,
        probabilities=args.probabilities,
        batch_size=args.batch_size, excel=args.excel, long_text=args.long_text,
        workers=args.workers, progress=not args.no_progress, backend=args.backend,
        log=log_to_stderr)
    if args.output != "-":
        rows = f"{summary['rows']} row{'' if summary['rows'] == 1 else 's'}"
        print(f"{rows} labelled ({summary['empty']} without a label, see the "
              f"error column) in {summary['seconds']:.1f}s -> {args.output}", file=sys.stderr)


def _predict_on_cluster(args: argparse.Namespace) -> None:
    from newsclf.dask import cluster_client, predict_files

    if args.output == "-" or args.input == "-":
        raise NewsclfError("--scheduler reads files and writes a directory of parts; standard "
                           "input and output are not possible")
    if args.workers is not None and args.scheduler != "local":
        raise NewsclfError("--workers goes with --scheduler local; a running cluster has the "
                           "workers it was started with")
    with cluster_client(args.scheduler, args.workers) as client:
        summary = predict_files(
            args.model, args.input, args.output, client, **layout_arguments(args),
            top_k=args.top_k, probabilities=args.probabilities, batch_size=args.batch_size,
            excel=args.excel, long_text=args.long_text, backend=args.backend,
            progress=not args.no_progress, log=log_to_stderr)
    print(f"{summary['rows']} rows of {summary['files']} file{'s' * (summary['files'] > 1)} "
          f"labelled ({summary['empty']} without a label, see the error column) in "
          f"{summary['seconds']:.1f}s -> {args.output} ({summary['parts']} "
          f"part{'s' * (summary['parts'] > 1)})", file=sys.stderr)
