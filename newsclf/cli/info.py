"""newsclf info: what a model directory is, and which engines can run it here."""

from __future__ import annotations

import argparse
import json


def add_parser(commands) -> argparse.ArgumentParser:
    info = commands.add_parser(
        "info", help="describe a model directory: classes, dev scores, settings, engines",
        description="Describe a model directory without running it: classes, dev scores, "
                    "architecture and size, training settings, library versions, and which "
                    "inference engines can run it on this machine.")
    info.add_argument("model", nargs="?", metavar="DIR",
                      help="model directory (written by 'newsclf train')")
    info.add_argument("--model", dest="model_option", metavar="DIR",
                      help="the same, given as the other commands take it")
    info.add_argument("--json", action="store_true", help="print it as JSON")
    return info


def run(args: argparse.Namespace) -> None:
    from newsclf.errors import NewsclfError
    from newsclf.info import format_info, model_info

    given = {path for path in (args.model, args.model_option) if path}
    if len(given) != 1:
        raise NewsclfError("give one model directory: newsclf info DIR")
    description = model_info(given.pop())
    if args.json:
        print(json.dumps(description, ensure_ascii=False, indent=2))
    else:
        print(format_info(description))
