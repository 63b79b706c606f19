"""The ``newsclf`` command line: one subcommand per library entry point.

Exit codes: 0 success, 2 a user error (one line on stderr saying what to fix), 1 a bug
(traceback), 130 interrupted. Paddle is imported only by the subcommands that need it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from newsclf import __version__
from newsclf.config import POOLINGS, POSITIONS, TOKENIZERS, TrainConfig
from newsclf.errors import NewsclfError
from newsclf.explain import add_explain_parser, cmd_explain

_CHOICES = {"tokenizer": TOKENIZERS, "pooling": POOLINGS, "position": POSITIONS}
_HELP = {
    "tokenizer": "word: jieba words; char: characters; mixed: characters with their bigram and "
                 "jieba word",
    "user_dict": "jieba user dictionary file (copied into the model directory)",
    "min_freq": "keep vocabulary entries seen at least this often in training",
    "max_vocab": "vocabulary size cap (most frequent kept)",
    "max_len": "positions kept per text (longer texts are truncated)",
    "d_model": "width of embeddings and encoder",
    "n_heads": "attention heads per layer",
    "n_layers": "encoder layers",
    "d_ff": "feed-forward width inside each layer",
    "dropout": "dropout in the encoder and before the classifier",
    "attn_dropout": "dropout on attention weights",
    "emb_dropout": "dropout on the input embeddings",
    "pre_ln": "layer norm before each sub-layer (pre-LN) instead of after",
    "pooling": "how token vectors become one text vector",
    "position": "positional encoding",
    "ensemble_size": "encoders trained independently (own seeds); predictions average their "
                     "probabilities",
    "epochs": "maximum epochs",
    "batch_size": "texts per training step",
    "lr": "peak learning rate (AdamW)",
    "weight_decay": "AdamW weight decay",
    "warmup": "share of steps spent warming the learning rate up",
    "clip_norm": "gradient clipping by global norm (0: off)",
    "label_smoothing": "label smoothing of the training loss",
    "token_dropout": "probability of replacing a token by [UNK] in training",
    "patience": "stop after this many epochs without dev macro-F1 gain",
    "seed": "random seed (same seed and data: same metrics)",
}


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", metavar="PATH",
                        help="class-names file, one per line; labels may then be ids (line N = id N)")
    parser.add_argument("--format", choices=("tsv", "csv"),
                        help="data format (default: by extension, .csv is CSV, else TSV)")
    parser.add_argument("--text-column", default="text", metavar="NAME",
                        help="CSV column holding the text (default: text)")
    parser.add_argument("--label-column", default="label", metavar="NAME",
                        help="CSV column holding the label (default: label)")
    parser.add_argument("--encoding", default="auto",
                        help="file encoding (default: auto = UTF-8, UTF-8 with BOM or GBK/GB18030)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsclf", description="Classify Chinese news by topic with a Transformer encoder.")
    parser.add_argument("--version", action="version", version=f"newsclf {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a model on labelled texts",
                                description="Train a model and write its directory.")
    train.add_argument("--train", required=True, metavar="PATH", help="training data (TSV or CSV)")
    train.add_argument("--dev", metavar="PATH",
                       help="dev data for early stopping and model selection (recommended)")
    train.add_argument("--output", required=True, metavar="DIR", help="model directory to write")
    _add_data_options(train)
    train.add_argument("--config", metavar="FILE",
                       help="JSON file of settings (the names below, with underscores); "
                            "flags given on the command line win")
    train.add_argument("--resume", action="store_true",
                       help="continue an interrupted run from OUTPUT/checkpoint (same data and "
                            "settings; ends as the uninterrupted run would)")
    train.add_argument("--no-export", action="store_true",
                       help="skip the Paddle Inference export at the end (prediction then runs "
                            "on the slower dynamic graph until 'newsclf export')")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--workers", type=int, metavar="N",
                       help="ensemble members trained at once, one process and CPU core each "
                            "(default: as many as members and cores allow; results do not "
                            "depend on it)")
    defaults = TrainConfig()
    group = train.add_argument_group("model and training settings")
    for field in fields(TrainConfig):
        default = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{_HELP.get(field.name, '')} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            kind = str if default is None else type(default)
            group.add_argument(flag, dest=field.name, type=kind, default=None,
                               choices=_CHOICES.get(field.name), help=help_text,
                               metavar=None if field.name in _CHOICES else field.name.upper())

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
    _add_data_options(baseline)

    export = commands.add_parser(
        "export", help="write the Paddle Inference graph that fast prediction runs on",
        description="Export a model directory's network as a static graph (DIR/inference) and "
                    "check that it gives the same logits; 'newsclf train' does this already.")
    export.add_argument("--model", required=True, metavar="DIR", help="model directory")

    evaluate = commands.add_parser(
        "evaluate", help="score a model on labelled texts: metrics, confusion matrix, mistakes",
        description="Score a model on labelled data and write metrics.json, "
                    "classification_report.txt, confusion_matrix.csv/_normalized.csv/.png and "
                    "misclassified.csv.")
    evaluate.add_argument("--model", required=True, metavar="DIR", help="model directory")
    evaluate.add_argument("--data", required=True, metavar="PATH", help="labelled data (TSV or CSV)")
    evaluate.add_argument("--output", metavar="DIR",
                          help="where to write the reports (default: DIR/eval-<data file name>)")
    evaluate.add_argument("--batch-size", type=int, default=256, metavar="N",
                          help="texts per model call (default: 256)")
    _add_data_options(evaluate)

    predict = commands.add_parser(
        "predict", help="label texts or a CSV/TSV/text file with a trained model",
        description="Label texts with a trained model: --text for a few, --input/--output for "
                    "a file of any size (every input column kept, one output row per input row).")
    predict.add_argument("--model", required=True, metavar="DIR", help="model directory")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", action="append", metavar="TEXT",
                        help="a text to classify (repeat for several); prints label and score")
    source.add_argument("--input", metavar="FILE",
                        help="CSV (header), TSV (header) or .txt (one text per line); - for stdin")
    predict.add_argument("--output", metavar="FILE",
                         help="where to write the labelled rows (.csv or .tsv; - for stdout)")
    predict.add_argument("--text-column", default="text", metavar="NAME",
                         help="column holding the text (default: text)")
    predict.add_argument("--format", choices=("csv", "tsv", "txt"),
                         help="input format (default: by extension; .tsv TSV, .txt text, else CSV)")
    predict.add_argument("--encoding", default="auto",
                         help="input encoding (default: auto = UTF-8, UTF-8 with BOM or GBK)")
    predict.add_argument("--top-k", type=int, default=1, metavar="K",
                         help="also give the K most likely classes (default: 1)")
    predict.add_argument("--probabilities", action="store_true",
                         help="add one prob_<class> column per class")
    predict.add_argument("--excel", action="store_true",
                         help="write UTF-8 with BOM so Excel shows Chinese correctly")
    predict.add_argument("--long-text", choices=("truncate", "chunk"), default="truncate",
                         help="texts longer than the model's max_len: keep the start (truncate) or "
                              "average over windows covering all of it (chunk)")
    predict.add_argument("--batch-size", type=int, default=256, metavar="N",
                         help="texts per model call (default: 256)")
    predict.add_argument("--workers", type=int, metavar="N",
                         help="processes sharing tokenization and inference (default: one per "
                              "core, at most 4, for files of 50,000 rows or more; else 1)")
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_explain_parser(commands)
    return parser


def _train_config(args: argparse.Namespace) -> TrainConfig:
    values = TrainConfig.from_file(args.config).to_dict() if args.config else {}
    for field in fields(TrainConfig):
        given = getattr(args, field.name)
        if given is not None:
            values[field.name] = given
    return TrainConfig.from_dict(values, source="command line")


def _read_labelled_files(args, *paths):
    """The class names of ``--classes`` (or None) and each labelled file (None for None)."""
    from newsclf.data import read_class_names, read_labelled

    class_names = read_class_names(args.classes, args.encoding) if args.classes else None
    return class_names, *(
        None if path is None else
        read_labelled(path, class_names, fmt=args.format, text_column=args.text_column,
                      label_column=args.label_column, encoding=args.encoding)
        for path in paths)


def cmd_train(args: argparse.Namespace) -> None:
    from newsclf.train import train

    config = _train_config(args)
    class_names, train_data, dev_data = _read_labelled_files(args, args.train, args.dev)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    result = train(config, train_data, dev_data, args.output, class_names,
                   progress=not args.no_progress, log=log, resume=args.resume,
                   export=not args.no_export, workers=args.workers)
    metrics = result.metrics
    if "dev_accuracy" in metrics:
        if "members" in metrics:
            kept = f"ensemble of {len(metrics['members'])}, best epochs " + ", ".join(
                f"{m['best_epoch']} of {m['epochs_run']}" for m in metrics["members"])
        else:
            kept = f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}"
        print(f"dev accuracy {metrics['dev_accuracy']:.4f}  macro-F1 {metrics['dev_macro_f1']:.4f}  "
              f"({kept})")
    print(f"model written to {result.output_dir}")


def cmd_baseline(args: argparse.Namespace) -> None:
    from newsclf.baseline import BASELINES, run_baseline
    from newsclf.train import resolve_classes

    class_names, train_data, dev_data = _read_labelled_files(args, args.train, args.dev)
    resolve_classes(train_data, dev_data, class_names)  # the same checks as training
    print(f"{'baseline':<16} {'dev acc':>8} {'macro-F1':>9} {'train s':>8} {'predict/s':>10}")
    for name in args.baselines or list(BASELINES):
        result = run_baseline(name, train_data.texts, train_data.labels, dev_data.texts,
                              dev_data.labels)
        print(f"{name:<16} {result.accuracy:>8.4f} {result.macro_f1:>9.4f} "
              f"{result.train_seconds:>8.1f} {result.predict_rows_per_second:>10.0f}")


def cmd_export(args: argparse.Namespace) -> None:
    from newsclf.predict import export_model

    info = export_model(args.model)
    print(f"exported to {args.model}/inference (max logit difference "
          f"{info['max_abs_logit_difference']:.1e} over {info['checked_lengths']} lengths)")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from pathlib import Path

    from newsclf.evaluate import evaluate
    from newsclf.predict import Predictor

    predictor = Predictor.from_dir(args.model)
    _, data = _read_labelled_files(args, args.data)
    result = evaluate(predictor, data.texts, data.labels, batch_size=args.batch_size)
    output = Path(args.output) if args.output else Path(args.model) / f"eval-{Path(args.data).stem}"
    result.save(output)
    print(result.summary())
    print(f"reports written to {output}")


def cmd_predict(args: argparse.Namespace) -> None:
    from newsclf.predict import Predictor, predict_file

    if args.top_k < 1:
        raise NewsclfError(f"--top-k must be at least 1, got {args.top_k}")
    if args.input is not None and not args.output:
        raise NewsclfError("--input needs --output FILE (or --output - for standard output)")
    predictor = Predictor.from_dir(args.model)
    if args.text is not None:
        results = predictor.predict(args.text, top_k=args.top_k, long_text=args.long_text)
        for text, best in zip(args.text, results):
            ranked = "  ".join(f"{item['label']} {item['score']:.3f}" for item in best)
            print(f"{ranked}\t{text}")
        return
    summary = predict_file(
        predictor, args.input, args.output, text_column=args.text_column, fmt=args.format,
        encoding=args.encoding, top_k=args.top_k, probabilities=args.probabilities,
        batch_size=args.batch_size, excel=args.excel, long_text=args.long_text,
        workers=args.workers, progress=not args.no_progress)
    if args.output != "-":
        print(f"{summary['rows']} rows labelled ({summary['empty']} empty) in "
              f"{summary['seconds']:.1f}s -> {args.output}", file=sys.stderr)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "export": cmd_export, "baseline": cmd_baseline, "explain": cmd_explain}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except NewsclfError as exc:
        print(f"newsclf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"newsclf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
