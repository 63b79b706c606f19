"""What several commands share: the model option, the data-file layout options, and reading
labelled files with them."""

from __future__ import annotations

import argparse
import sys

from newsclf.arguments import check_count
from newsclf.datafiles.layout import FORMATS, format_named
from newsclf.errors import DataError, NewsclfError


def at_least_one(text: str) -> int:
    """An argparse type: a count (batch size, workers, top-k) by the rule of
    :func:`~newsclf.arguments.check_count`, refused with the flag's name."""
    try:
        return check_count(int(text), "")
    except (ValueError, NewsclfError):
        raise argparse.ArgumentTypeError(
            f"must be a whole number of at least 1, not {text!r}") from None


LAYOUTS_EPILOG = """\
data layouts (detected; data/README.md has the rules):
  TSV, text first            央行宣布下调存款准备金率<TAB>财经
                             国足主场两球战胜对手<TAB>体育
  TSV, label first           财经<TAB>央行宣布下调存款准备金率
                             体育<TAB>国足主场两球战胜对手
  CSV/TSV with a header      标题,类别
                             央行宣布下调存款准备金率,财经
  Excel (.xlsx)              row 1: 标题 | 类别
                             row 2: 央行宣布下调存款准备金率 | 财经
  JSON lines (.jsonl)        {"text": "央行宣布下调存款准备金率", "label": "财经"}
                             {"text": "国足主场两球战胜对手", "label": "体育"}
  fastText                   __label__财经 央行宣布下调存款准备金率
                             __label__体育 国足主场两球战胜对手
  one text per line          央行宣布下调存款准备金率
  (files to label only)      国足主场两球战胜对手
"""


def layout_help(**options) -> dict:
    """Parser options that show :data:`LAYOUTS_EPILOG` under a command's help."""
    return dict(epilog=LAYOUTS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                **options)


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="model directory (written by 'newsclf train')")


def _row_count(text: str) -> int:
    """An argparse type: a number of rows, 0 or more."""
    if text.strip().isdecimal():
        return int(text)
    raise argparse.ArgumentTypeError(f"must be a whole number of rows, 0 or more, not {text!r}")


def _format_name(value: str) -> str:
    try:
        return format_named(value)
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_LAYOUT_DEFAULTS = {"encoding": "auto", "skip_rows": 0}  # the others' default is None


def add_layout_options(parser: argparse.ArgumentParser, labelled: bool) -> None:
    """``--format``, ``--header``/``--no-header``, ``--text-column`` (and ``--label-column``),
    ``--sheet``, ``--encoding``: what to read when detection is not wanted or not possible."""
    parser.add_argument("--format", type=_format_name, metavar="FORMAT",
                        help=f"{'/'.join(FORMATS)} (default: by extension: .csv, .tsv, "
                             ".xlsx, .jsonl; other files by content: fastText if lines start "
                             "with __label__, TSV if they hold tabs, else one text per line)")
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                        help="whether the first row of a CSV, TSV or Excel file names the "
                             "columns (default: yes if it holds a name such as text, title, "
                             "标题, label, category, 类别)")
    parser.add_argument("--text-column", metavar="NAME|N",
                        help="column holding the text, by name or position from 1 (default: "
                             "detected: text, title, 标题, ... or, of two columns, the one that "
                             "is not the label)")
    if labelled:
        parser.add_argument("--label-column", metavar="NAME|N",
                            help="column holding the label, by name or position from 1 "
                                 "(default: detected: label, category, 类别, ... or, of two "
                                 "columns, the one whose values repeat)")
    parser.add_argument("--sheet", metavar="NAME|N",
                        help="sheet of an .xlsx workbook, by name or position from 1 (default: "
                             "the first)")
    parser.add_argument("--skip-rows", type=_row_count, default=_LAYOUT_DEFAULTS["skip_rows"],
                        metavar="N",
                        help="lines (rows of an Excel sheet) above the table to leave out, such "
                             "as a title (default: 0)")
    parser.add_argument("--encoding", default=_LAYOUT_DEFAULTS["encoding"],
                        help="file encoding (default: auto = UTF-8, UTF-8 with BOM, GBK/GB18030 or Big5)")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", metavar="PATH",
                        help="class-names file, one per line; labels may then be ids (line N = id N)")
    add_layout_options(parser, labelled=True)


def given_layout_options(args: argparse.Namespace) -> list[str]:
    """The layout options given on the command line (not left at their default)."""
    flags = {"format": "--format", "header": "--header/--no-header",
             "text_column": "--text-column", "sheet": "--sheet", "encoding": "--encoding",
             "skip_rows": "--skip-rows"}
    return [flag for name, flag in flags.items()
            if getattr(args, name, None) != _LAYOUT_DEFAULTS.get(name)]


def layout_arguments(args: argparse.Namespace) -> dict:
    """The layout options as keyword arguments of the readers."""
    from newsclf.datafiles.texts import ReadOptions

    return ReadOptions(args.format, args.header, args.text_column, args.sheet,
                       args.encoding, args.skip_rows).as_arguments()


def read_labelled_files(args: argparse.Namespace, *paths):
    """The class names of ``--classes`` (or None) and each labelled file (None for None), each
    file's layout said on stderr."""
    from newsclf.data import read_class_names, read_labelled

    class_names = read_class_names(args.classes, args.encoding) if args.classes else None
    read = []
    for path in paths:
        data = None if path is None else read_labelled(
            path, class_names, label_column=args.label_column, **layout_arguments(args))
        if data is not None:
            log_to_stderr(data.summary())
        read.append(data)
    return class_names, *read


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
