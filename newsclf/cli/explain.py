"""newsclf explain: which tokens a prediction rests on, in the terminal or as HTML."""

from __future__ import annotations

import argparse
import sys

from newsclf.cli.common import add_model_option

from newsclf.errors import NewsclfError


def add_parser(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "explain", help="show which tokens a prediction rests on (attention rollout)",
        description="Classify one text and show the importance of each of its tokens "
                    "(attention rollout over the encoder's layers and heads); optionally write "
                    "a self-contained HTML page.")
    add_model_option(parser)
    parser.add_argument("--text", required=True, action="append", metavar="TEXT",
                        help="a text to explain (repeat for several; --html takes one)")
    parser.add_argument("--html", metavar="FILE",
                        help="also write the explanation as a self-contained HTML page")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="list the N most important tokens (default: 10)")
    parser.add_argument("--color", action=argparse.BooleanOptionalAction, default=None,
                        help="shade tokens with terminal colours (default: when printing to a "
                             "terminal)")
    return parser


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from newsclf.explain import explain
    from newsclf.files import write_atomic
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
        if not target.parent.is_dir():
            raise NewsclfError(f"{target.parent}: output folder does not exist")
    predictor = Predictor.from_dir(args.model)
    explanations = [explain(predictor, text) for text in args.text]
    print("\n\n".join(explanation.to_terminal(color=args.color, top=args.top)
                      for explanation in explanations))
    if target is not None:
        try:
            write_atomic(target, explanations[0].to_html(top=args.top))
        except OSError as exc:
            raise NewsclfError(f"{target}: cannot write ({exc.strerror})") from None
        print(f"explanation written to {target}", file=sys.stderr)
