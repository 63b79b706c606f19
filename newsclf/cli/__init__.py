"""The ``newsclf`` command line: one module per subcommand, each a thin layer over the library.

Each command module has ``add_parser(commands)`` and ``run(args)``. Exit codes: 0 success, 2 a
user error (one line on stderr saying what to fix), 1 a bug (traceback), 130 interrupted.
Paddle is imported only by the commands that need it, so ``--help`` answers fast.
"""

from __future__ import annotations

import argparse
import sys

from newsclf import __version__
from newsclf.cli import baseline, evaluate, explain, export, predict, train
from newsclf.errors import NewsclfError

COMMANDS = {module.__name__.rsplit(".", 1)[1]: module
            for module in (train, evaluate, predict, explain, export, baseline)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsclf", description="Classify Chinese news by topic with a Transformer encoder.")
    parser.add_argument("--version", action="version", version=f"newsclf {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        module.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from newsclf.runtime import tune_allocator

    tune_allocator()  # this process is newsclf's own
    try:
        COMMANDS[args.command].run(args)
    except NewsclfError as exc:
        print(f"newsclf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"newsclf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0
