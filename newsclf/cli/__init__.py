"""The ``newsclf`` command line: one module per subcommand, each a thin layer over the library.

Each command module has ``add_parser(commands)`` and ``run(args)``. Exit codes: 0 success, 2 a
user error (one line on stderr saying what to fix), 1 a bug (traceback), 130 interrupted (SIGINT,
Ctrl-C), 143 terminated (SIGTERM); a stopped command says so in one line on stderr.
Paddle is imported only by the commands that need it, so ``--help`` answers fast.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings

from newsclf import __version__
from newsclf.cli import baseline, evaluate, explain, export, info, predict, serve, train
from newsclf.errors import NewsclfError
from newsclf.files import disk_full
from newsclf.runtime import Terminated, raise_terminated, tune_allocator

COMMANDS = {module.__name__.rsplit(".", 1)[1]: module
            for module in (train, evaluate, predict, explain, export, baseline, serve, info)}


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line, as every other user error, pointing at the
    command's ``--help`` instead of printing the whole usage (its subcommands' parsers too)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="newsclf", description="Classify Chinese news by topic with a Transformer encoder.")
    parser.add_argument("--version", action="version", version=f"newsclf {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        module.add_parser(commands)
    parser.set_defaults(command_parsers=commands.choices)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line's arguments; one not known is the error of the command it follows (or
    of ``newsclf`` itself, given before the command)."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        given = sys.argv[1:] if argv is None else list(argv)
        before_command = unknown[0] in given[:given.index(args.command)]
        (parser if before_command else args.command_parsers[args.command]).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _one_line_warnings(command: str):
    """A ``warnings.showwarning`` that prints ``newsclf COMMAND: warning: MESSAGE``, without
    the file, line and source text Python adds."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"newsclf {command}: warning: {message}", file=file or sys.stderr)
    return show


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    tune_allocator()  # this process is newsclf's own
    previous_sigterm = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(args.command)
            COMMANDS[args.command].run(args)
    except NewsclfError as exc:
        print(f"newsclf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"newsclf {args.command}: {'terminated' if terminated else 'interrupted'}",
              file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a write newsclf did not name the file of
        full = disk_full(exc, exc.filename)
        if full is None:
            raise
        print(f"newsclf {args.command}: error: {full}", file=sys.stderr)
        return 2
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    return 0
