"""What several commands share: the data-file options and reading labelled files with them."""

from __future__ import annotations

import argparse
import sys


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="model directory (written by 'newsclf train')")


def add_data_options(parser: argparse.ArgumentParser) -> None:
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


def read_labelled_files(args: argparse.Namespace, *paths):
    """The class names of ``--classes`` (or None) and each labelled file (None for None)."""
    from newsclf.data import read_class_names, read_labelled

    class_names = read_class_names(args.classes, args.encoding) if args.classes else None
    return class_names, *(
        None if path is None else
        read_labelled(path, class_names, fmt=args.format, text_column=args.text_column,
                      label_column=args.label_column, encoding=args.encoding)
        for path in paths)


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
