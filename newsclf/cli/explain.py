"""newsclf explain: which tokens a prediction rests on, in the terminal or as HTML."""

from __future__ import annotations

import argparse
import sys

from newsclf.cli.common import add_model_option
from newsclf.errors import NewsclfError
from newsclf.spec import EXPLAIN_METHODS, IG_STEPS


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "explain", help="show which tokens a prediction rests on, or push it for and against",
        description="Classify one text and score each of its tokens: by attention rollout "
                    "(where the information the classifier reads comes from; the default), or, "
                    "signed, by occlusion or integrated gradients (which tokens push the "
                    "predicted label's probability up, and which push it down); optionally "
                    "write a self-contained HTML page.")
    add_model_option(parser)
    parser.add_argument("--text", required=True, action="append", metavar="TEXT",
                        help="a text to explain (repeat for several; --html takes one)")
    parser.add_argument(
        "--method", choices=EXPLAIN_METHODS, default="rollout",
        help="how to score tokens: rollout (attention rollout: importance >= 0, summing to 1; "
             "the default), occlusion (how much the label's probability drops when the token "
             "is deleted: + for the label, - against it), integrated-gradients (the label's "
             f"probability traced from no token embeddings to the text, {IG_STEPS} steps: + for, "
             "- against)")
    parser.add_argument("--html", metavar="FILE",
                        help="also write the explanation as a self-contained HTML page (a "
                             "name ending in .html)")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="list the N most important tokens (signed methods: N for and "
                             "N against the label; default: 10)")
    parser.add_argument("--color", action=argparse.BooleanOptionalAction, default=None,
                        help="shade tokens with terminal colours (default: when printing to a "
                             "terminal)")
    return parser


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from newsclf.explain import explain
    from newsclf.files import refuse_read_only, write_atomic
    from newsclf.predictor import Predictor

    if args.top < 1:
        raise NewsclfError(f"--top must be at least 1, got {args.top}")
    target = None
    if args.html and len(args.text) > 1:
        raise NewsclfError(f"--html writes one text's explanation; got {len(args.text)} --text "
                           "options: give one, or leave out --html to see them all")
    if args.html:
        target = Path(args.html)
        if target.is_dir():
            raise NewsclfError(f"{target}: is a directory; give an HTML file name")
        if target.suffix.lower() not in (".html", ".htm"):
            # an existing file is replaced: only a page, never a model's or a data file
            raise NewsclfError(f"{target}: --html writes a web page; give a file name ending "
                               "in .html")
        refuse_read_only(target)
        if not target.parent.is_dir():
            raise NewsclfError(f"{target.parent}: output folder does not exist")
    predictor = Predictor.from_dir(args.model)
    for i, text in enumerate(args.text):
        try:
            explanation = explain(predictor, text, method=args.method)
        except NewsclfError as exc:
            if len(args.text) == 1:
                raise
            raise NewsclfError(f"--text number {i + 1} ({text[:20]!r}): {exc}") from None
        print(("\n" if i else "") + explanation.to_terminal(color=args.color, top=args.top),
              flush=True)
    if target is not None:
        try:
            write_atomic(target, explanation.to_html(top=args.top))
        except OSError as exc:
            raise NewsclfError(f"{target}: cannot write ({exc.strerror})") from None
        print(f"explanation written to {target}", file=sys.stderr)
